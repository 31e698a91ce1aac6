//! Kayenta's two effect sizes: the mean ratio and the common-language effect
//! size (CLES, Vargha-Delaney A).
//!
//! Both take the canary `x` first and the baseline `y` second (crate
//! convention; Kayenta's own helpers take the control first). Neither rejects
//! odd input: an empty sample gives NaN, which the Kayenta classifier treats
//! as "no effect-size gate", exactly as Kayenta does.

use crate::rank::average_ranks;
use serde::{Deserialize, Serialize};

/// Which effect size gates a High/Low decision (`effectSize.measure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum EffectSizeMeasure {
    /// `mean(x) / mean(y)`; 1.0 means no change.
    #[default]
    #[serde(rename = "meanRatio")]
    MeanRatio,
    /// `P(x > y) + ½·P(x = y)`; 0.5 means no change.
    #[serde(rename = "cles")]
    Cles,
}

impl EffectSizeMeasure {
    /// Kayenta's spelling in canary configs.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectSizeMeasure::MeanRatio => "meanRatio",
            EffectSizeMeasure::Cles => "cles",
        }
    }

    /// The value meaning "no effect": Kayenta's default for every threshold.
    pub fn neutral(self) -> f64 {
        match self {
            EffectSizeMeasure::MeanRatio => 1.0,
            EffectSizeMeasure::Cles => 0.5,
        }
    }

    /// Computes this effect size of canary `x` against baseline `y`.
    pub fn compute(self, x: &[f64], y: &[f64]) -> f64 {
        match self {
            EffectSizeMeasure::MeanRatio => mean_ratio(x, y),
            EffectSizeMeasure::Cles => cles(x, y),
        }
    }
}

/// Arithmetic mean with the usual second-pass correction (as commons-math's
/// `Mean`, which Kayenta uses); NaN for an empty slice.
pub fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let n = values.len() as f64;
    let first = values.iter().sum::<f64>() / n;
    if !first.is_finite() {
        return first;
    }
    let correction = values.iter().map(|v| v - first).sum::<f64>() / n;
    first + correction
}

/// `mean(x) / mean(y)`, or NaN when either mean is exactly 0 (Kayenta PR
/// #527: a ratio against a zero mean is "not available", not ±inf) or either
/// sample is empty.
pub fn mean_ratio(x: &[f64], y: &[f64]) -> f64 {
    let mx = mean(x);
    let my = mean(y);
    if mx == 0.0 || my == 0.0 || mx.is_nan() || my.is_nan() {
        return f64::NAN;
    }
    mx / my
}

/// CLES of canary `x` over baseline `y`: `(2·R₁ − m(m+1)) / (2·m·n)` with
/// `R₁` the sum of the average ranks of `x` in the pooled sample, `m = |x|`,
/// `n = |y|`; equals `P(X > Y) + ½·P(X = Y)`. NaN when a sample is empty or
/// contains NaN.
pub fn cles(x: &[f64], y: &[f64]) -> f64 {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let pooled: Vec<f64> = x.iter().chain(y).copied().collect();
    let ranks = average_ranks(&pooled);
    let r1: f64 = ranks.ranks[..x.len()].iter().sum();
    let m = x.len() as f64;
    let n = y.len() as f64;
    (2.0 * r1 - m * (m + 1.0)) / (2.0 * m * n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_ratio_is_nan_on_zero_or_empty_means() {
        assert_eq!(mean_ratio(&[2.0, 4.0], &[1.0, 2.0]), 2.0);
        assert!(mean_ratio(&[1.0], &[0.0, 0.0]).is_nan());
        assert!(mean_ratio(&[0.0], &[1.0]).is_nan());
        assert!(mean_ratio(&[], &[1.0]).is_nan());
        assert!(mean_ratio(&[-1.0, 1.0], &[1.0]).is_nan());
    }

    #[test]
    fn cles_counts_ties_as_half() {
        assert_eq!(cles(&[1.0, 2.0], &[1.0, 2.0]), 0.5);
        assert_eq!(cles(&[3.0], &[1.0, 2.0]), 1.0);
        assert_eq!(cles(&[0.0], &[1.0, 2.0]), 0.0);
        assert_eq!(cles(&[1.0], &[1.0, 0.0]), 0.75);
        assert!(cles(&[], &[1.0]).is_nan());
    }

    #[test]
    fn measure_names_and_neutral_values() {
        assert_eq!(EffectSizeMeasure::Cles.as_str(), "cles");
        assert_eq!(EffectSizeMeasure::MeanRatio.neutral(), 1.0);
        assert_eq!(EffectSizeMeasure::Cles.neutral(), 0.5);
        let m: EffectSizeMeasure = serde_json::from_str("\"meanRatio\"").unwrap();
        assert_eq!(m, EffectSizeMeasure::MeanRatio);
    }
}

//! Kayenta's three effect sizes (`EffectSizes.scala`): the mean ratio, the
//! common-language effect size (CLES, Vargha-Delaney A) and Cohen's d with
//! the pooled standard deviation.
//!
//! All take the canary `x` first and the baseline `y` second (crate
//! convention; Kayenta's own helpers take the control first). None rejects
//! odd input: where the measure is undefined (an empty sample, a zero mean
//! for the ratio, no pooled spread for Cohen's d) the function returns NaN,
//! as Kayenta's does, and the Kayenta classifier turns that into "no
//! effect-size gate" and an absent (`None`) effect size in its result.

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
    /// Signed Cohen's d, `(mean(x) − mean(y)) / pooled sd`; 0 means no
    /// change. Kayenta computes it (`EffectSizes.cohenD`, unsigned) but its
    /// classifier never selects it; see [`cohen_d`].
    #[serde(rename = "cohenD")]
    CohenD,
}

impl EffectSizeMeasure {
    /// Kayenta's spelling in canary configs.
    pub fn as_str(self) -> &'static str {
        match self {
            EffectSizeMeasure::MeanRatio => "meanRatio",
            EffectSizeMeasure::Cles => "cles",
            EffectSizeMeasure::CohenD => "cohenD",
        }
    }

    /// Kayenta's spelling (`"meanRatio"`, `"cles"`, `"cohenD"`), exactly;
    /// `None` for anything else.
    pub fn from_kayenta(s: &str) -> Option<Self> {
        Some(match s {
            "meanRatio" => EffectSizeMeasure::MeanRatio,
            "cles" => EffectSizeMeasure::Cles,
            "cohenD" => EffectSizeMeasure::CohenD,
            _ => return None,
        })
    }

    /// A name for sentences (`"mean ratio"`, `"CLES"`, `"Cohen's d"`).
    pub fn display_name(self) -> &'static str {
        match self {
            EffectSizeMeasure::MeanRatio => "mean ratio",
            EffectSizeMeasure::Cles => "CLES",
            EffectSizeMeasure::CohenD => "Cohen's d",
        }
    }

    /// The value meaning "no effect": the default of every threshold
    /// (Kayenta's 1.0 and 0.5; 0 for Cohen's d, which Kayenta's config does
    /// not select).
    pub fn neutral(self) -> f64 {
        match self {
            EffectSizeMeasure::MeanRatio => 1.0,
            EffectSizeMeasure::Cles => 0.5,
            EffectSizeMeasure::CohenD => 0.0,
        }
    }

    /// Computes this effect size of canary `x` against baseline `y`.
    pub fn compute(self, x: &[f64], y: &[f64]) -> f64 {
        match self {
            EffectSizeMeasure::MeanRatio => mean_ratio(x, y),
            EffectSizeMeasure::Cles => cles(x, y),
            EffectSizeMeasure::CohenD => cohen_d(x, y),
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

/// Bias-corrected sample variance as commons-math's `Variance` (which
/// Kayenta's `DescriptiveStatistics.std` and `EffectSizes.cohenD` use): the
/// corrected two-pass formula `(Σd² − (Σd)²/n) / (n − 1)` with
/// `d = v − mean`. 0 for one value, NaN for an empty slice.
pub fn sample_variance(values: &[f64]) -> f64 {
    match values.len() {
        0 => f64::NAN,
        1 => 0.0,
        n => {
            let m = mean(values);
            let (mut sum_sq, mut sum) = (0.0, 0.0);
            for v in values {
                let d = v - m;
                sum_sq += d * d;
                sum += d;
            }
            let n = n as f64;
            (sum_sq - sum * sum / n) / (n - 1.0)
        }
    }
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

/// Cohen's d of canary `x` over baseline `y` with the pooled standard
/// deviation:
///
/// ```text
/// s_p = sqrt( ((m − 1)·s_x² + (n − 1)·s_y²) / (m + n − 2) )
/// d   = (mean(x) − mean(y)) / s_p
/// ```
///
/// with `m = |x|`, `n = |y|` and `s_x`, `s_y` the sample (n − 1) standard
/// deviations. Reference: Cohen (1988), *Statistical Power Analysis for the
/// Behavioral Sciences*, §2.5; Kayenta `EffectSizes.cohenD` (kayenta-judge
/// `stats/EffectSizes.scala`), computed the same way (standard deviations
/// squared back from `sqrt` of commons-math's variance, so the last digits
/// agree).
///
/// **Signed**, unlike Kayenta's, which returns `|d|`: positive when the
/// canary mean is larger, so the classifier's gate (`d ≥ allowedIncrease`
/// for High, `d ≤ allowedDecrease` for Low) reads like the other measures'.
/// `cohen_d(x, y).abs()` is Kayenta's value.
///
/// Edge cases, all NaN ("undefined", no gate) unless stated:
/// * a sample is empty (Kayenta's summary statistics would be zeros and give
///   a meaningless number);
/// * any value is NaN;
/// * `m = n = 1`: no degrees of freedom for the pooled spread (Kayenta: 0/0,
///   NaN too); with one side of one value, the other side alone gives `s_p`;
/// * zero pooled spread (both sides constant): NaN when the means are equal
///   (0/0, as Kayenta), ±∞ in the direction of the difference otherwise
///   (Kayenta: +∞).
pub fn cohen_d(x: &[f64], y: &[f64]) -> f64 {
    if x.is_empty() || y.is_empty() || x.iter().chain(y).any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let (m, n) = (x.len() as f64, y.len() as f64);
    if m + n - 2.0 <= 0.0 {
        return f64::NAN;
    }
    let sx = sample_variance(x).sqrt();
    let sy = sample_variance(y).sqrt();
    let pooled = (((m - 1.0) * sx.powi(2) + (n - 1.0) * sy.powi(2)) / (m + n - 2.0)).sqrt();
    let diff = mean(x) - mean(y);
    if pooled == 0.0 {
        return if diff == 0.0 {
            f64::NAN
        } else {
            f64::INFINITY.copysign(diff)
        };
    }
    diff / pooled
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
        assert_eq!(EffectSizeMeasure::CohenD.neutral(), 0.0);
        let m: EffectSizeMeasure = serde_json::from_str("\"meanRatio\"").unwrap();
        assert_eq!(m, EffectSizeMeasure::MeanRatio);
        for m in [
            EffectSizeMeasure::MeanRatio,
            EffectSizeMeasure::Cles,
            EffectSizeMeasure::CohenD,
        ] {
            let json = serde_json::to_string(&m).unwrap();
            assert_eq!(json, format!("\"{}\"", m.as_str()));
            assert_eq!(EffectSizeMeasure::from_kayenta(m.as_str()), Some(m));
        }
        // Kayenta's names are matched exactly.
        assert_eq!(EffectSizeMeasure::from_kayenta("cohend"), None);
        assert_eq!(EffectSizeMeasure::from_kayenta("cohen"), None);
    }

    /// Kayenta StatisticSuite "Effect Size: Cohen's D" (kayenta-judge
    /// `src/test/scala/com/netflix/kayenta/judge/StatisticSuite.scala`,
    /// commit a69573be): `3.03821 ± 1e-5`. The test passes the arrays in
    /// swapped order; Kayenta's value is unsigned, ours is signed.
    #[test]
    fn cohen_d_matches_kayenta_statistic_suite() {
        let canary = [5.0, 5.0, 5.0, 10.0, 10.0, 10.0];
        let baseline = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0];
        let d = cohen_d(&canary, &baseline);
        assert!((d - 3.03821).abs() < 1e-5, "{d}");
        assert_eq!(cohen_d(&baseline, &canary), -d);
        // Exactly: means 7.5 and 1.5, variances 7.5 and 0.3, s_p = sqrt(3.9).
        assert!((d - 6.0 / 3.9f64.sqrt()).abs() < 1e-14);
        assert_eq!(EffectSizeMeasure::CohenD.compute(&canary, &baseline), d);
    }

    #[test]
    fn cohen_d_edge_cases() {
        // n = 0 and NaN: undefined.
        assert!(cohen_d(&[], &[1.0, 2.0]).is_nan());
        assert!(cohen_d(&[1.0, 2.0], &[]).is_nan());
        assert!(cohen_d(&[1.0, f64::NAN], &[1.0, 2.0]).is_nan());
        // n = 1 on both sides: no degrees of freedom.
        assert!(cohen_d(&[3.0], &[1.0]).is_nan());
        // n = 1 on one side: the other side's spread alone (sd of 2,3,4 = 1).
        assert_eq!(cohen_d(&[1.0], &[2.0, 3.0, 4.0]), -2.0);
        assert_eq!(cohen_d(&[2.0, 3.0, 4.0], &[1.0]), 2.0);
        // Zero variance: equal means undefined, different means ±∞.
        assert!(cohen_d(&[2.0, 2.0], &[2.0, 2.0, 2.0]).is_nan());
        assert_eq!(cohen_d(&[3.0, 3.0], &[2.0, 2.0]), f64::INFINITY);
        assert_eq!(cohen_d(&[0.0, 0.0], &[2.0, 2.0]), f64::NEG_INFINITY);
        // Zero variance on one side only is fine.
        assert_eq!(cohen_d(&[2.0, 2.0, 2.0], &[1.0, 3.0, 2.0]), 0.0);
    }

    #[test]
    fn sample_variance_is_commons_math_variance() {
        // Kayenta StatisticSuite "Summary Statistics: List": std 4.9295 ± 1e-4.
        let v = sample_variance(&[1.0, 1.0, 1.0, 10.0, 10.0, 10.0]);
        assert!((v.sqrt() - 4.9295).abs() < 1e-4);
        assert_eq!(v, 24.3);
        // "Summary Statistics: Scalar": std 0 for one value.
        assert_eq!(sample_variance(&[4.0]), 0.0);
        assert!(sample_variance(&[]).is_nan());
    }
}

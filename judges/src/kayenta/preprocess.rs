//! Kayenta's per-side preprocessing: NaN handling, optional IQR outlier
//! removal, and the descriptive statistics attached to each result.
//!
//! Order, as in `NetflixACAJudge.transformMetric`: NaN remove/replace first,
//! then (only with `outliers.strategy = remove`) the IQR detector with
//! reduced sensitivity, then `{count, mean, min, max, std}` of what is left.
//! Infinities are left alone here, as in Kayenta; the classifier decides
//! what they mean.

use crate::effect_size::{mean, sample_variance};
use crate::kayenta::config::{MetricSettings, NanStrategy, OutlierStrategy};
use serde::{Deserialize, Serialize};

/// Drops every NaN.
pub fn remove_nans(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| !v.is_nan()).collect()
}

/// Replaces every NaN by `with` (Kayenta's `replace` uses 0.0).
pub fn replace_nans(values: &[f64], with: f64) -> Vec<f64> {
    values
        .iter()
        .map(|&v| if v.is_nan() { with } else { v })
        .collect()
}

/// The `p`-th percentile (`0 ≤ p ≤ 100`) of an ascending slice by the R-7
/// estimator (linear interpolation between order statistics, numpy's
/// default, commons-math `EstimationType.R_7`). NaN for an empty slice.
pub fn percentile_r7_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    if n == 0 || p.is_nan() {
        return f64::NAN;
    }
    let p = p.clamp(0.0, 100.0) / 100.0;
    let h = (n - 1) as f64 * p; // 0-based position
    let lo = h.floor() as usize;
    let frac = h - lo as f64;
    if lo + 1 >= n || frac == 0.0 {
        // No interpolation (also keeps `0 · ∞` from producing NaN).
        return sorted[lo.min(n - 1)];
    }
    sorted[lo] + frac * (sorted[lo + 1] - sorted[lo])
}

/// [`percentile_r7_sorted`] of an unsorted slice (sorts a copy; NaN must
/// have been removed).
pub fn percentile_r7(values: &[f64], p: f64) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    percentile_r7_sorted(&sorted, p)
}

/// Kayenta's IQR detector: `true` marks an outlier.
///
/// Fences `Q1 − factor·IQR` and `Q3 + factor·IQR` (R-7 quartiles); with
/// `reduce_sensitivity` they are widened to at least the 1st and 99th
/// percentiles, so at most the outer 1% on each side can go. Values strictly
/// outside the fences are outliers.
pub fn iqr_outliers(values: &[f64], factor: f64, reduce_sensitivity: bool) -> Vec<bool> {
    if values.is_empty() {
        return Vec::new();
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable_by(f64::total_cmp);
    let q1 = percentile_r7_sorted(&sorted, 25.0);
    let q3 = percentile_r7_sorted(&sorted, 75.0);
    let iqr = q3 - q1;
    let mut lower = q1 - factor * iqr;
    let mut upper = q3 + factor * iqr;
    if reduce_sensitivity {
        lower = lower.min(percentile_r7_sorted(&sorted, 1.0));
        upper = upper.max(percentile_r7_sorted(&sorted, 99.0));
    }
    values.iter().map(|&v| v < lower || v > upper).collect()
}

/// Kayenta's KSigma detector (unused by its judge, provided for parity):
/// `|x − mean| > k · σ` with the population standard deviation.
pub fn ksigma_outliers(values: &[f64], k: f64) -> Vec<bool> {
    if values.is_empty() {
        return Vec::new();
    }
    let m = mean(values);
    // commons-math `StatUtils.populationVariance`: the corrected two-pass
    // formula, divided by n.
    let n = values.len() as f64;
    let (sum_sq, sum) = values.iter().fold((0.0, 0.0), |(q, s), v| {
        let d = v - m;
        (q + d * d, s + d)
    });
    let sd = ((sum_sq - sum * sum / n) / n).sqrt();
    values.iter().map(|&v| (v - m).abs() > k * sd).collect()
}

/// Keeps the values whose mask entry is `false`.
pub fn remove_flagged(values: &[f64], outliers: &[bool]) -> Vec<f64> {
    values
        .iter()
        .zip(outliers)
        .filter(|(_, &out)| !out)
        .map(|(&v, _)| v)
        .collect()
}

/// `{count, mean, min, max, std}` of a preprocessed side, as Kayenta reports
/// it: `std` is the sample (n − 1) standard deviation (0 for one value) and
/// an empty side reports all zeros, not NaN.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct DescriptiveStats {
    pub count: usize,
    pub mean: f64,
    pub min: f64,
    pub max: f64,
    pub std: f64,
}

/// Computes [`DescriptiveStats`].
pub fn describe(values: &[f64]) -> DescriptiveStats {
    if values.is_empty() {
        return DescriptiveStats::default();
    }
    let m = mean(values);
    DescriptiveStats {
        count: values.len(),
        mean: m,
        min: values.iter().copied().fold(f64::INFINITY, f64::min),
        max: values.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        // `sqrt(StatUtils.variance)`, as Kayenta's `DescriptiveStatistics.std`.
        std: sample_variance(values).sqrt(),
    }
}

/// One side after preprocessing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessed {
    /// What the classifier tests.
    pub values: Vec<f64>,
    /// NaNs removed or replaced.
    pub nan_count: usize,
    /// Values dropped as outliers.
    pub outliers_removed: usize,
    /// Statistics of `values`.
    pub stats: DescriptiveStats,
}

/// Applies a metric's NaN strategy and outlier strategy to one side.
pub fn preprocess(values: &[f64], settings: &MetricSettings) -> Preprocessed {
    let nan_count = values.iter().filter(|v| v.is_nan()).count();
    let cleaned = match settings.nan_strategy {
        NanStrategy::Remove => remove_nans(values),
        NanStrategy::Replace => replace_nans(values, 0.0),
    };
    let (values, outliers_removed) = match settings.outlier_strategy {
        OutlierStrategy::Keep => (cleaned, 0),
        OutlierStrategy::Remove => {
            let mask = iqr_outliers(&cleaned, settings.outlier_factor, true);
            let kept = remove_flagged(&cleaned, &mask);
            let removed = cleaned.len() - kept.len();
            (kept, removed)
        }
    };
    let stats = describe(&values);
    Preprocessed {
        values,
        nan_count,
        outliers_removed,
        stats,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nan_handling() {
        assert_eq!(remove_nans(&[1.0, f64::NAN, 2.0]), vec![1.0, 2.0]);
        assert!(remove_nans(&[f64::NAN]).is_empty());
        assert_eq!(replace_nans(&[f64::NAN, 2.0], 0.0), vec![0.0, 2.0]);
        // Infinities are not NaN and stay.
        assert_eq!(remove_nans(&[f64::INFINITY]), vec![f64::INFINITY]);
    }

    #[test]
    fn percentile_edges() {
        assert!(percentile_r7(&[], 50.0).is_nan());
        assert_eq!(percentile_r7(&[3.0], 1.0), 3.0);
        assert_eq!(percentile_r7(&[1.0, 2.0], 0.0), 1.0);
        assert_eq!(percentile_r7(&[1.0, 2.0], 100.0), 2.0);
        assert_eq!(percentile_r7(&[1.0, f64::INFINITY], 100.0), f64::INFINITY);
    }

    #[test]
    fn reduced_sensitivity_keeps_the_inner_98_percent() {
        // Constant data with one spike: IQR = 0 so the plain fences are the
        // constant itself, but the 99th percentile keeps the fence wide
        // enough for the spike only when it is not in the outer 1%.
        let mut v = vec![1.0; 10];
        v.push(20.0);
        let plain = iqr_outliers(&v, 3.0, false);
        assert!(plain[10]);
        let reduced = iqr_outliers(&v, 3.0, true);
        // P99 of 11 values interpolates between 1 and 20: 1 + 0.9·19 = 18.1.
        assert!(reduced[10]);
        let kept = remove_flagged(&v, &reduced);
        assert_eq!(kept.len(), 10);
    }

    #[test]
    fn describe_empty_is_zeros() {
        assert_eq!(describe(&[]), DescriptiveStats::default());
        let d = describe(&[4.0]);
        assert_eq!(
            (d.count, d.mean, d.min, d.max, d.std),
            (1, 4.0, 4.0, 4.0, 0.0)
        );
    }

    #[test]
    fn preprocess_counts_what_it_did() {
        let s = MetricSettings {
            outlier_strategy: OutlierStrategy::Remove,
            outlier_factor: 1.5,
            ..MetricSettings::default()
        };
        let p = preprocess(
            &[21.0, 23.0, f64::NAN, 24.0, 25.0, 50.0, 29.0, 23.0, 21.0],
            &s,
        );
        assert_eq!(p.nan_count, 1);
        assert_eq!(p.outliers_removed, 1);
        assert_eq!(p.values, vec![21.0, 23.0, 24.0, 25.0, 29.0, 23.0, 21.0]);
        let r = preprocess(
            &[f64::NAN, 1.0],
            &MetricSettings {
                nan_strategy: NanStrategy::Replace,
                ..MetricSettings::default()
            },
        );
        assert_eq!(r.values, vec![0.0, 1.0]);
        assert_eq!(r.stats.count, 2);
    }
}

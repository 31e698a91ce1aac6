//! Kayenta users' failure cases (research notes `kayenta.md` §4.2 and §1.8),
//! each shown twice: what Kayenta's Mann-Whitney classifier says about the
//! time-series points users fed it, and what the count-based sequential judge
//! (the bucket-label e-process) says about the request counts behind those
//! points.
//!
//! The counts are constructed to be consistent with the points: a point is a
//! per-interval ratio or quantile of the interval's counts.

use verdict_judges::kayenta::classifier::{classify, Label};
use verdict_judges::kayenta::config::{Direction, MetricSettings};
use verdict_judges::sequential::{BucketLabelConfig, BucketLabelEProcess};

const ALPHA: f64 = 0.05;

fn increase() -> MetricSettings {
    MetricSettings {
        direction: Direction::Increase,
        ..MetricSettings::default()
    }
}

/// Feeds per-look `(canary, baseline)` bucket increments; returns the first
/// rejecting look (1-based), if any, and the final always-valid p-value.
fn first_rejection(
    weight: f64,
    harmful: Option<Vec<bool>>,
    looks: &[(Vec<u64>, Vec<u64>)],
) -> (Option<usize>, f64) {
    let k = looks[0].0.len();
    let mut e = BucketLabelEProcess::new(
        BucketLabelConfig {
            rho0: weight,
            kappa: 200.0,
            alpha: ALPHA,
            harmful,
        },
        k,
    )
    .unwrap();
    let mut first = None;
    let mut p = 1.0;
    for (t, (c, b)) in looks.iter().enumerate() {
        let look = e.observe(c, b).unwrap();
        p = look.always_valid_p;
        if look.reject && first.is_none() {
            first = Some(t + 1);
        }
    }
    (first, p)
}

/// spinnaker/spinnaker#5622, kayenta#426: a baseline with zero errors, a
/// canary with new errors in a few intervals. Error-rate points: the
/// baseline is all 0, the canary 0 except four intervals.
#[test]
fn new_errors_on_a_zero_error_baseline() {
    // 30 one-minute looks; canary 500 requests per look (5 %), baseline 9500.
    let error_looks = [6, 13, 21, 27]; // 1-based looks where the canary errs
    let canary_errors = |t: usize| if error_looks.contains(&t) { 8 } else { 0 };
    let canary_points: Vec<f64> = (1..=30).map(|t| canary_errors(t) as f64 / 500.0).collect();
    let baseline_points = vec![0.0; 30];

    // Kayenta: HL shift 0 (most pairwise differences are 0), interval lower
    // end 0, not above the band: Pass. (With 6 erring looks of 30 instead of
    // 4 it says High: the zero-width interval at 0 then meets the band edge
    // and the rank test at 0 is significant.)
    let kayenta = classify(&increase(), &baseline_points, &canary_points);
    assert_eq!(kayenta.label, Label::Pass, "{kayenta:?}");
    let shift = kayenta.shift.expect("the test ran");
    assert_eq!(shift.estimate, 0.0);
    assert!(shift.lower <= 0.0, "{shift:?}");

    // Counts: 32 canary errors in 15 000 requests (0.2 %) against 0 in
    // 285 000. Under H0 each error is canary with probability 5 %.
    let looks: Vec<(Vec<u64>, Vec<u64>)> = (1..=30)
        .map(|t| {
            let e = canary_errors(t);
            (vec![e, 500 - e], vec![0, 9500])
        })
        .collect();
    let (first, p) = first_rejection(0.05, Some(vec![true, false]), &looks);
    let first = first.unwrap_or_else(|| panic!("not rejected, p = {p}"));
    // kappa = 200 puts the prior on canary shares near 5 %, so a handful of
    // canary-only errors is not yet enough (8 at look 6 are not): it rejects
    // at the second erring look, 16 errors and none in the baseline. (With
    // 12 errors spread over four looks it does not reject within 30 looks:
    // the price of a prior tuned to small deviations.)
    assert_eq!(first, 13, "p = {p}");
    assert!(p < 1e-3, "p = {p}");
}

/// spinnaker/spinnaker#6278 (2021-07-12 comment): baseline ten 1.0 s, canary
/// seven 100.0 s and three 1.0 s: Kayenta passes (interval ≈ [6.8e-5, 99],
/// band ±24.75).
#[test]
fn sparse_latency_spikes() {
    let baseline_points = vec![1.0; 10];
    let mut canary_points = vec![100.0; 7];
    canary_points.extend([1.0; 3]);
    let kayenta = classify(&increase(), &baseline_points, &canary_points);
    assert_eq!(kayenta.label, Label::Pass, "{kayenta:?}");
    let shift = kayenta.shift.expect("the test ran");
    assert!(shift.lower < shift.bound, "{shift:?}");
    assert!((shift.bound - 24.75).abs() < 0.01, "{shift:?}");

    // The counts behind such p99 points: histogram buckets le = [10, 50,
    // 200, +Inf] ms. Canary 1000 requests per look (10 %), baseline 9000.
    // In 7 of 10 looks, 20 canary requests (2 %) land in (50, 200] ms, so
    // the canary's p99 is about 125 ms; the baseline never leaves the first
    // bucket.
    let looks: Vec<(Vec<u64>, Vec<u64>)> = (0..10)
        .map(|t| {
            let slow = if t < 7 { 20 } else { 0 };
            (vec![1000 - slow, 0, slow, 0], vec![9000, 0, 0, 0])
        })
        .collect();
    let harmful = Some(vec![false, true, true, true]);
    let (first, p) = first_rejection(0.10, harmful, &looks);
    let first = first.unwrap_or_else(|| panic!("not rejected, p = {p}"));
    assert!(first <= 2, "rejected only at look {first}");
    assert!(p < 1e-6, "p = {p}");
}

/// kayenta#780 / spinnaker#6278: "increase in metric variability": the
/// baseline is bimodal (1-9 and 100-106), the canary tight (10-17). Kayenta
/// passes; the distributions plainly differ.
#[test]
fn bimodal_baseline_against_a_tight_canary() {
    let baseline_points: Vec<f64> = (0..20)
        .map(|i| {
            if i % 2 == 0 {
                1.0 + (i / 2 % 9) as f64
            } else {
                100.0 + (i / 2 % 7) as f64
            }
        })
        .collect();
    let canary_points: Vec<f64> = (0..20).map(|i| 10.0 + (i % 8) as f64).collect();
    let either = MetricSettings::default(); // direction Either
    let kayenta = classify(&either, &baseline_points, &canary_points);
    assert_eq!(kayenta.label, Label::Pass, "{kayenta:?}");

    // Counts: histogram le = [10, 20, 100, 200, +Inf] ms. Baseline: half the
    // requests in the first bucket, half in (100, 200]. Canary: all in
    // (10, 20]. Canary 100 per look (10 %), baseline 900. Without a harmful
    // mask the e-process rejects on any change of the distribution.
    let looks: Vec<(Vec<u64>, Vec<u64>)> = (0..20)
        .map(|_| (vec![0, 100, 0, 0, 0], vec![450, 0, 0, 450, 0]))
        .collect();
    let (first, p) = first_rejection(0.10, None, &looks);
    assert_eq!(first, Some(1), "p = {p}");
}

//! Kayenta's metric labels and the `NetflixACAJudge` Mann-Whitney classifier.

use serde::{Deserialize, Serialize};

/// A metric's classification. Serialized as Kayenta's exact strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    Pass,
    High,
    Low,
    Nodata,
    NodataFailMetric,
    Error,
}

impl Label {
    /// Kayenta's string (`"NodataFailMetric"`, …).
    pub fn kayenta_name(self) -> &'static str {
        match self {
            Label::Pass => "Pass",
            Label::High => "High",
            Label::Low => "Low",
            Label::Nodata => "Nodata",
            Label::NodataFailMetric => "NodataFailMetric",
            Label::Error => "Error",
        }
    }

    /// Verdict's snake_case name (`pass`, `high`, `low`, `nodata`,
    /// `nodata_fail`, `error`).
    pub fn verdict_name(self) -> &'static str {
        match self {
            Label::Pass => "pass",
            Label::High => "high",
            Label::Low => "low",
            Label::Nodata => "nodata",
            Label::NodataFailMetric => "nodata_fail",
            Label::Error => "error",
        }
    }

    /// Parses Kayenta's string.
    pub fn from_kayenta(s: &str) -> Option<Self> {
        Some(match s {
            "Pass" => Label::Pass,
            "High" => Label::High,
            "Low" => Label::Low,
            "Nodata" => Label::Nodata,
            "NodataFailMetric" => Label::NodataFailMetric,
            "Error" => Label::Error,
            _ => return None,
        })
    }
}

// ---------------------------------------------------------------------------
// The NetflixACAJudge metric classifier.
// ---------------------------------------------------------------------------

use crate::effect_size::{mean_ratio, EffectSizeMeasure};
use crate::hodges_lehmann::{hodges_lehmann, HodgesLehmannConfig};
use crate::kayenta::config::{Direction, MetricSettings, NanStrategy};
use crate::kayenta::preprocess::{preprocess, DescriptiveStats};
use crate::mann_whitney::{mann_whitney, MannWhitneyConfig, Method};
use crate::rank::average_ranks;
use crate::Alternative;
use statrs::distribution::{ContinuousCDF, Normal};

/// The classifier's global knobs. Kayenta hard-codes 0.25 and 0.98; its own
/// tests use other values, so they are parameters here.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClassifierParams {
    /// Half-width of the band around zero, as a fraction of `|estimate|`.
    pub tolerance: f64,
    /// Two-sided confidence level of the Hodges-Lehmann interval.
    pub conf_level: f64,
    /// `Some(false)` (default): the asymptotic interval with continuity
    /// correction, as Kayenta; `None`: R's rule (exact for small untied
    /// samples); `Some(true)`: exact.
    pub exact: Option<bool>,
}

impl Default for ClassifierParams {
    fn default() -> Self {
        ClassifierParams {
            tolerance: 0.25,
            conf_level: 0.98,
            exact: Some(false),
        }
    }
}

/// The Hodges-Lehmann shift (canary − baseline) and how it was judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ShiftJudgement {
    /// Hodges-Lehmann estimate of the location shift.
    pub estimate: f64,
    /// Interval ends; `lower ≤ upper` always.
    pub lower: f64,
    pub upper: f64,
    /// Requested two-sided confidence level.
    pub conf_level: f64,
    /// Level the order statistics actually achieve.
    pub achieved_conf_level: f64,
    /// False when the samples are too small for the requested level (the
    /// interval is then the whole range of pairwise differences, as Kayenta's
    /// clamped root finder reports it).
    pub conf_level_achievable: bool,
    /// `tolerance · |estimate|`: the interval must clear `±bound`.
    pub bound: f64,
    /// Whether the interval lies entirely above `+bound` / below `−bound`.
    pub above_band: bool,
    pub below_band: bool,
}

/// Everything the classifier found out about one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricClassification {
    pub label: Label,
    /// Whether this result fails the canary outright when it is not Pass.
    pub critical: bool,
    /// A sentence with the numbers for every non-pass label; `None` for Pass.
    pub reason: Option<String>,
    /// Statistics of the preprocessed baseline (control) and canary.
    pub control: DescriptiveStats,
    pub experiment: DescriptiveStats,
    /// Kayenta's "deviation" (`resultMetadata.ratio`), always finite: 1.0
    /// when the classifier returns before testing (no data, identical
    /// samples, one distinct value), as Kayenta; otherwise the mean ratio
    /// canary/baseline, or 1.0 where that is undefined (a mean is 0), where
    /// Kayenta reports NaN (Verdict deviation 10: a NaN here cannot be
    /// stored or serialized as JSON). [`Self::mean_ratio`] tells the cases
    /// apart.
    pub deviation: f64,
    /// Mean ratio canary/baseline of the preprocessed samples; `None` when
    /// undefined (a side is empty or a mean is 0; Kayenta's NaN, which its
    /// report shows as "N/A").
    pub mean_ratio: Option<f64>,
    pub effect_size_measure: EffectSizeMeasure,
    /// The gating effect size; `None` when undefined or infinite (Kayenta's
    /// NaN: no gate; an infinite Cohen's d of two constant samples passes
    /// any gate, so it gates the same way).
    pub effect_size: Option<f64>,
    /// The shift interval, when the test ran.
    pub shift: Option<ShiftJudgement>,
    /// Two-sided Mann-Whitney p-value (not used for the decision; Kayenta
    /// computes none).
    pub p_value: Option<f64>,
}

/// [`classify_with`] with Kayenta's fixed parameters (tolerance 0.25,
/// confidence 0.98, asymptotic interval).
pub fn classify(
    metric: &MetricSettings,
    control: &[f64],
    experiment: &[f64],
) -> MetricClassification {
    classify_with(&ClassifierParams::default(), metric, control, experiment)
}

/// Classifies one metric as `NetflixACAJudge-v1.0` does: preprocess both
/// sides (NaN strategy, outliers), handle missing data, then compare the
/// Hodges-Lehmann interval of the shift with the tolerance band and gate the
/// result by the effect size; escalate critical metrics.
///
/// `control` is the baseline, `experiment` the canary; raw values, NaN
/// allowed.
pub fn classify_with(
    params: &ClassifierParams,
    metric: &MetricSettings,
    control: &[f64],
    experiment: &[f64],
) -> MetricClassification {
    let c = preprocess(control, metric);
    let e = preprocess(experiment, metric);
    let measure = metric.effect_size.measure;
    let ratio = finite(mean_ratio(&e.values, &c.values));
    let mut out = MetricClassification {
        label: Label::Pass,
        critical: false,
        reason: None,
        control: c.stats,
        experiment: e.stats,
        deviation: ratio.unwrap_or(KAYENTA_NO_DEVIATION),
        mean_ratio: ratio,
        effect_size_measure: measure,
        effect_size: finite(measure.compute(&e.values, &c.values)),
        shift: None,
        p_value: None,
    };
    let error = |mut out: MetricClassification, why: String| {
        out.label = Label::Error;
        // Verdict deviation: Kayenta leaves `critical` false on errors.
        out.critical = metric.critical;
        out.reason = Some(format!("cannot classify: {why}"));
        out
    };

    if !(params.tolerance >= 0.0 && params.tolerance.is_finite()) {
        return error(out, format!("invalid tolerance {}", params.tolerance));
    }
    if !(params.conf_level > 0.0 && params.conf_level < 1.0) {
        return error(
            out,
            format!("invalid confidence level {}", params.conf_level),
        );
    }
    for (side, values) in [("baseline", &c.values), ("canary", &e.values)] {
        if let Some(v) = values.iter().find(|v| v.is_infinite()) {
            return error(
                out,
                format!("the {side} contains {v}, which no shift or mean can be computed from"),
            );
        }
    }

    // (a) missing data. Kayenta's early returns all report deviation 1.0.
    if c.values.is_empty() || e.values.is_empty() {
        out.deviation = KAYENTA_NO_DEVIATION;
        if metric.nan_strategy == NanStrategy::Replace {
            return out; // Kayenta PR #339: with `replace`, no data passes.
        }
        let mut sides = Vec::new();
        for (side, raw, p) in [("baseline", control, &c), ("canary", experiment, &e)] {
            if p.values.is_empty() {
                sides.push(if raw.is_empty() {
                    format!("the {side} returned no values")
                } else {
                    format!("the {side} has only NaN ({} values)", p.nan_count)
                });
            }
        }
        let what = sides.join(" and ");
        if metric.must_have_data && !metric.critical {
            out.label = Label::NodataFailMetric;
            out.reason = Some(format!("no data: {what}, and the metric must have data"));
        } else {
            out.label = Label::Nodata;
            out.critical = metric.critical;
            out.reason = Some(format!("no data: {what}"));
        }
        return out;
    }

    // (b) identical samples, (c) one distinct value overall.
    let mut sc = c.values.clone();
    let mut se = e.values.clone();
    sc.sort_unstable_by(f64::total_cmp);
    se.sort_unstable_by(f64::total_cmp);
    // Both sides all zeros lands here: Pass with deviation 1.0 (Kayenta
    // ClassifierSuite "Mann-Whitney Zero Mean: Pass Metric"), not the
    // undefined 0/0 mean ratio.
    if sc == se {
        out.deviation = KAYENTA_NO_DEVIATION;
        return out;
    }
    let first = sc[0];
    if sc.iter().chain(&se).all(|&v| v == first) {
        out.deviation = KAYENTA_NO_DEVIATION;
        return out;
    }

    // (e) the shift interval. Two constant sides need no special case (and
    // no noise): every pairwise difference is the same, so is the interval.
    let hl_config = HodgesLehmannConfig {
        alternative: Alternative::TwoSided,
        conf_level: params.conf_level,
        correct: true,
        exact: params.exact,
    };
    let hl = match hodges_lehmann(&e.values, &c.values, &hl_config) {
        Ok(hl) => hl,
        Err(err) => return error(out, err.to_string()),
    };
    let mw_method = match params.exact {
        Some(false) => Method::Asymptotic,
        Some(true) => Method::Exact,
        None => Method::Auto,
    };
    out.p_value = mann_whitney(
        &e.values,
        &c.values,
        &MannWhitneyConfig {
            alternative: Alternative::TwoSided,
            method: mw_method,
            use_continuity: true,
        },
    )
    .ok()
    .map(|mw| mw.p_value);

    // (f) the band, (h) the decision.
    let estimate = hl.estimate;
    let lower = hl.lower.min(hl.upper);
    let upper = hl.lower.max(hl.upper);
    let bound = params.tolerance * estimate.abs();
    let q = Normal::new(0.0, 1.0)
        .expect("standard normal")
        .inverse_cdf(1.0 - (1.0 - params.conf_level) / 2.0);
    // An interval end from order statistics is a step of the rank statistic.
    // When it coincides with the band edge, whether the edge itself belongs
    // to the confidence set decides; the test at that shift says so.
    let above_band = lower > bound
        || (lower == bound && shift_statistic(&e.values, &c.values, lower).is_some_and(|z| z > q));
    let below_band = upper < -bound
        || (upper == -bound
            && shift_statistic(&e.values, &c.values, upper).is_some_and(|z| z < -q));
    let judgement = ShiftJudgement {
        estimate,
        lower,
        upper,
        conf_level: params.conf_level,
        achieved_conf_level: hl.achieved_conf_level,
        conf_level_achievable: hl.conf_level_achievable,
        bound,
        above_band,
        below_band,
    };
    out.shift = Some(judgement);

    let es = &metric.effect_size;
    let effect = out.effect_size;
    let high = metric.direction.allows_increase()
        && above_band
        && effect.is_none_or(|e| e >= es.allowed_increase);
    let low = !high
        && metric.direction.allows_decrease()
        && below_band
        && effect.is_none_or(|e| e <= es.allowed_decrease);
    if !(high || low) {
        return out;
    }
    out.label = if high { Label::High } else { Label::Low };
    // (i) critical escalation.
    out.critical = metric.critical
        && effect.is_none_or(|e| {
            if high {
                e >= es.critical_increase
            } else {
                e <= es.critical_decrease
            }
        });
    out.reason = Some(explain(params, metric, &out, &judgement));
    out
}

/// The reason sentence of a High or Low.
fn explain(
    params: &ClassifierParams,
    metric: &MetricSettings,
    out: &MetricClassification,
    j: &ShiftJudgement,
) -> String {
    let high = out.label == Label::High;
    let es = &metric.effect_size;
    let level = if j.conf_level_achievable {
        format!("{}% CI", num(100.0 * j.conf_level))
    } else {
        format!(
            "range of all differences; {}% is not achievable with these sample sizes",
            num(100.0 * j.conf_level)
        )
    };
    let mut s = format!(
        "canary is {}: HL shift {}{} ({} {} to {}) lies {} the ±{}% tolerance band of ±{}",
        if high { "higher" } else { "lower" },
        if j.estimate > 0.0 { "+" } else { "" },
        num(j.estimate),
        level,
        num(j.lower),
        num(j.upper),
        if high { "above" } else { "below" },
        num(100.0 * params.tolerance),
        num(j.bound),
    );
    let measure_name = es.measure.display_name();
    let (threshold, critical_threshold, cmp) = if high {
        (es.allowed_increase, es.critical_increase, "≥")
    } else {
        (es.allowed_decrease, es.critical_decrease, "≤")
    };
    match out.effect_size {
        None => {
            let why = match es.measure {
                EffectSizeMeasure::MeanRatio => "a mean is 0",
                EffectSizeMeasure::Cles => "a side is empty",
                EffectSizeMeasure::CohenD => "no spread within either side",
            };
            s.push_str(&format!(
                ", {measure_name} undefined ({why}), so no effect-size gate"
            ));
        }
        Some(effect) => s.push_str(&format!(
            ", {measure_name} {} {cmp} allowed {}",
            num(effect),
            num(threshold)
        )),
    }
    if es.measure != EffectSizeMeasure::MeanRatio {
        if let Some(ratio) = out.mean_ratio {
            s.push_str(&format!(" (mean ratio {})", num(ratio)));
        }
    }
    if out.critical {
        if out.effect_size.is_none() {
            s.push_str("; critical metric");
        } else {
            s.push_str(&format!(
                "; critical: {measure_name} {cmp} {}",
                num(critical_threshold)
            ));
        }
    } else if metric.critical {
        s.push_str(&format!(
            "; not critical: {measure_name} does not reach {}",
            num(critical_threshold)
        ));
    }
    if let Some(p) = out.p_value {
        s.push_str(&format!(", Mann-Whitney p = {}", num(p)));
    }
    s
}

/// Kayenta's deviation when it has none to report (its early returns).
const KAYENTA_NO_DEVIATION: f64 = 1.0;

/// `Some(x)` for a finite `x`: NaN and ±∞ never reach a result.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Compact number formatting for reasons: 4 significant digits.
fn num(x: f64) -> String {
    if x == 0.0 {
        return "0".into();
    }
    if !x.is_finite() {
        return format!("{x}");
    }
    let a = x.abs();
    if (1e-3..1e6).contains(&a) {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        let t = format!("{x:.decimals$}");
        if t.contains('.') {
            t.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            t
        }
    } else {
        format!("{x:.3e}")
    }
}

/// Kayenta's standardised rank statistic for a hypothesised shift `mu`
/// (its `wdiff` with `q = 0`): rank `(x − mu) ++ y` with average ranks,
/// `dz = W − nx(nx+1)/2 − nx·ny/2`, continuity correction `½·sign(dz)`,
/// tie-corrected σ of the pooled ranks; returns `(dz − c)/σ`, or `None` when
/// σ = 0 (every value tied) or a sample is empty.
///
/// Positive means the shifted canary `x − mu` still ranks above `y`. The
/// classifier uses it only to decide whether an interval end that falls
/// exactly on the band edge is open.
pub fn shift_statistic(x: &[f64], y: &[f64], mu: f64) -> Option<f64> {
    if x.is_empty() || y.is_empty() {
        return None;
    }
    let nx = x.len() as f64;
    let ny = y.len() as f64;
    let pooled: Vec<f64> = x.iter().map(|v| v - mu).chain(y.iter().copied()).collect();
    let ranks = average_ranks(&pooled);
    let w: f64 = ranks.ranks[..x.len()].iter().sum();
    let dz = w - nx * (nx + 1.0) / 2.0 - nx * ny / 2.0;
    let correction = if dz == 0.0 { 0.0 } else { 0.5 * dz.signum() };
    let n = nx + ny;
    let sigma = (nx * ny / 12.0 * ((n + 1.0) - ranks.tie_term / (n * (n - 1.0)))).sqrt();
    if sigma.is_nan() || sigma <= 0.0 {
        return None;
    }
    Some((dz - correction) / sigma)
}

/// Kayenta's `MeanInequalityClassifier` (benchmarking only): High if the
/// canary mean is larger, Low if smaller, as the direction permits.
pub fn classify_mean_inequality(
    direction: Direction,
    control: &[f64],
    experiment: &[f64],
) -> Label {
    let mc = crate::effect_size::mean(control);
    let me = crate::effect_size::mean(experiment);
    if direction.allows_increase() && me > mc {
        Label::High
    } else if direction.allows_decrease() && me < mc {
        Label::Low
    } else {
        Label::Pass
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kayenta::config::EffectSizeSettings;

    const NAN: f64 = f64::NAN;

    fn metric() -> MetricSettings {
        MetricSettings::default()
    }

    #[test]
    fn labels_have_kayenta_and_verdict_names() {
        for (l, k, v) in [
            (Label::Pass, "Pass", "pass"),
            (Label::High, "High", "high"),
            (Label::Low, "Low", "low"),
            (Label::Nodata, "Nodata", "nodata"),
            (Label::NodataFailMetric, "NodataFailMetric", "nodata_fail"),
            (Label::Error, "Error", "error"),
        ] {
            assert_eq!(l.kayenta_name(), k);
            assert_eq!(l.verdict_name(), v);
            assert_eq!(Label::from_kayenta(k), Some(l));
            assert_eq!(serde_json::to_string(&l).unwrap(), format!("\"{k}\""));
        }
    }

    #[test]
    fn empty_after_nan_removal_is_nodata() {
        let r = classify(&metric(), &[1.0, 2.0], &[NAN, NAN]);
        assert_eq!(r.label, Label::Nodata);
        assert!(!r.critical);
        assert_eq!(
            r.reason.as_deref(),
            Some("no data: the canary has only NaN (2 values)")
        );
        assert_eq!(r.experiment, DescriptiveStats::default());
        assert_eq!(r.control.count, 2);
    }

    #[test]
    fn critical_nodata_stays_critical_and_must_have_data_fails_the_metric() {
        let critical = MetricSettings {
            critical: true,
            must_have_data: true,
            ..metric()
        };
        let r = classify(&critical, &[], &[1.0]);
        assert_eq!((r.label, r.critical), (Label::Nodata, true));
        let must = MetricSettings {
            must_have_data: true,
            ..metric()
        };
        let r = classify(&must, &[], &[]);
        assert_eq!((r.label, r.critical), (Label::NodataFailMetric, false));
        assert!(r.reason.unwrap().contains("must have data"));
    }

    #[test]
    fn replace_strategy_passes_on_no_data() {
        let replace = MetricSettings {
            nan_strategy: NanStrategy::Replace,
            must_have_data: true,
            critical: true,
            ..metric()
        };
        let r = classify(&replace, &[], &[1.0, 2.0]);
        assert_eq!((r.label, r.critical, r.reason), (Label::Pass, false, None));
    }

    #[test]
    fn identical_and_single_valued_samples_pass_without_a_test() {
        let r = classify(&metric(), &[3.0, 1.0, 2.0], &[1.0, 2.0, 3.0]);
        assert_eq!(r.label, Label::Pass);
        assert!(r.shift.is_none());
        let r = classify(&metric(), &[5.0, 5.0], &[5.0, 5.0, 5.0]);
        assert_eq!(r.label, Label::Pass);
        assert_eq!(r.deviation, 1.0);
    }

    /// Kayenta ClassifierSuite "Mann-Whitney Zero Mean: Pass Metric"
    /// (kayenta-judge `src/test/scala/com/netflix/kayenta/judge/
    /// ClassifierSuite.scala`, commit a69573be): both sides all zeros →
    /// Pass with deviation exactly 1.0 (the identical-data early return).
    #[test]
    fn all_zero_arms_pass_with_deviation_one() {
        let r = classify(&metric(), &[0.0; 5], &[0.0; 5]);
        assert_eq!(
            (r.label, r.critical, r.deviation),
            (Label::Pass, false, 1.0)
        );
        assert_eq!((r.mean_ratio, r.effect_size), (None, None));
        assert!(r.shift.is_none());
        // Different lengths: the one-distinct-value return, same answer.
        let r = classify(&metric(), &[0.0; 3], &[0.0; 7]);
        assert_eq!((r.label, r.deviation), (Label::Pass, 1.0));
        // Zeros after NaN replacement, critical metric: still Pass, 1.0.
        let m = MetricSettings {
            nan_strategy: NanStrategy::Replace,
            critical: true,
            ..metric()
        };
        let r = classify(&m, &[NAN, 0.0, NAN], &[0.0, NAN]);
        assert_eq!(
            (r.label, r.critical, r.deviation),
            (Label::Pass, false, 1.0)
        );
    }

    /// Kayenta's early returns all report deviation 1.0
    /// (`MannWhitneyClassifier.classify`): missing data, identical data.
    #[test]
    fn early_returns_report_deviation_one() {
        let r = classify(&metric(), &[1.0, 2.0], &[]);
        assert_eq!(
            (r.label, r.deviation, r.mean_ratio),
            (Label::Nodata, 1.0, None)
        );
        // Identical multisets in another order: exactly 1.0, whatever the
        // summation order does to the means' last bits.
        let a = [0.1, 0.2, 0.3, 1e-17, 7.0];
        let b = [7.0, 1e-17, 0.3, 0.2, 0.1];
        let r = classify(&metric(), &a, &b);
        assert_eq!((r.label, r.deviation), (Label::Pass, 1.0));
    }

    /// No classifier result carries NaN or ±∞ in its deviation, mean ratio
    /// or effect size, whatever the input.
    #[test]
    fn results_never_carry_non_finite_numbers() {
        let inputs: [&[f64]; 9] = [
            &[],
            &[NAN],
            &[0.0; 4],
            &[0.0, 0.0, 1.0],
            &[5.0; 4],
            &[-1.0, 1.0],
            &[1.0, f64::INFINITY],
            &[f64::NEG_INFINITY, 2.0],
            &[3.0, 4.0, 5.0, 6.0],
        ];
        for measure in [
            EffectSizeMeasure::MeanRatio,
            EffectSizeMeasure::Cles,
            EffectSizeMeasure::CohenD,
        ] {
            for nan_strategy in [NanStrategy::Remove, NanStrategy::Replace] {
                let m = MetricSettings {
                    nan_strategy,
                    effect_size: EffectSizeSettings::neutral(measure),
                    ..metric()
                };
                for c in inputs {
                    for e in inputs {
                        let r = classify(&m, c, e);
                        let what = format!("{measure:?} {nan_strategy:?} {c:?} {e:?}: {r:?}");
                        assert!(r.deviation.is_finite(), "{what}");
                        assert!(r.mean_ratio.is_none_or(f64::is_finite), "{what}");
                        assert!(r.effect_size.is_none_or(f64::is_finite), "{what}");
                        let json = serde_json::to_value(&r).unwrap();
                        assert!(json["deviation"].is_number(), "{what}");
                    }
                }
            }
        }
    }

    #[test]
    fn cohen_d_gates_like_the_other_measures() {
        let control = [10.0, 11.0, 12.0, 10.5, 11.5, 10.2, 11.8, 10.9, 11.1, 12.2];
        let canary: Vec<f64> = control.iter().map(|v| v + 5.0).collect();
        let d = crate::effect_size::cohen_d(&canary, &control);
        assert!(d > 5.0, "{d}");
        let with = |allowed_increase: f64, allowed_decrease: f64| MetricSettings {
            effect_size: EffectSizeSettings {
                allowed_increase,
                allowed_decrease,
                ..EffectSizeSettings::neutral(EffectSizeMeasure::CohenD)
            },
            ..metric()
        };
        let r = classify(&with(0.0, 0.0), &control, &canary);
        assert_eq!((r.label, r.effect_size), (Label::High, Some(d)));
        let reason = r.reason.unwrap();
        assert!(reason.contains("Cohen's d"), "{reason}");
        assert!(reason.contains("(mean ratio"), "{reason}");
        // Above the shift test but below the allowed d: Pass.
        assert_eq!(
            classify(&with(d + 0.1, 0.0), &control, &canary).label,
            Label::Pass
        );
        // Decrease: d is negative, gated by d ≤ allowed_decrease.
        let r = classify(&with(0.0, -0.5), &canary, &control);
        assert_eq!((r.label, r.effect_size), (Label::Low, Some(-d)));
        assert_eq!(
            classify(&with(0.0, -d - 0.1), &canary, &control).label,
            Label::Pass
        );
        // Two constants: d is infinite, reported as undefined, no gate.
        let r = classify(&with(100.0, 0.0), &[1.0; 5], &[2.0; 5]);
        assert_eq!((r.label, r.effect_size), (Label::High, None));
    }

    #[test]
    fn infinities_are_an_error_that_keeps_the_critical_flag() {
        let critical = MetricSettings {
            critical: true,
            ..metric()
        };
        let r = classify(&critical, &[1.0, 2.0], &[1.0, f64::INFINITY]);
        assert_eq!((r.label, r.critical), (Label::Error, true));
        assert!(r.reason.unwrap().contains("inf"));
    }

    #[test]
    fn invalid_parameters_are_an_error() {
        let p = ClassifierParams {
            conf_level: 1.0,
            ..ClassifierParams::default()
        };
        let r = classify_with(&p, &metric(), &[1.0, 2.0], &[3.0, 4.0]);
        assert_eq!(r.label, Label::Error);
    }

    #[test]
    fn constant_but_different_sides_need_no_noise() {
        let r = classify(&metric(), &[1.0; 5], &[10.0; 5]);
        assert_eq!(r.label, Label::High);
        let s = r.shift.unwrap();
        assert_eq!((s.estimate, s.lower, s.upper), (9.0, 9.0, 9.0));
        assert_eq!(s.bound, 2.25);
        assert_eq!(r.deviation, 10.0);
        // Deterministic: the same answer every time.
        assert_eq!(classify(&metric(), &[1.0; 5], &[10.0; 5]), r);
        // A zero side: mean ratio undefined, so no gate; still High.
        let r = classify(&metric(), &[0.0; 5], &[4.0; 5]);
        assert_eq!(r.label, Label::High);
        assert_eq!(
            (r.mean_ratio, r.effect_size, r.deviation),
            (None, None, 1.0)
        );
        let r = classify(&metric(), &[4.0; 5], &[0.0; 5]);
        assert_eq!(r.label, Label::Low);
    }

    #[test]
    fn direction_and_effect_size_gate_high_and_low() {
        let control = [10.0, 11.0, 12.0, 10.5, 11.5, 10.2, 11.8, 10.9, 11.1, 12.2];
        let canary: Vec<f64> = control.iter().map(|v| v + 5.0).collect();
        assert_eq!(classify(&metric(), &control, &canary).label, Label::High);
        let down = MetricSettings {
            direction: Direction::Decrease,
            ..metric()
        };
        assert_eq!(classify(&down, &control, &canary).label, Label::Pass);
        assert_eq!(classify(&down, &canary, &control).label, Label::Low);
        // A mean ratio of about 1.45 does not reach an allowed increase of 1.5.
        let gated = MetricSettings {
            effect_size: EffectSizeSettings {
                allowed_increase: 1.5,
                ..EffectSizeSettings::default()
            },
            ..metric()
        };
        let r = classify(&gated, &control, &canary);
        assert_eq!(r.label, Label::Pass);
        assert!(r.shift.unwrap().above_band);
    }

    #[test]
    fn critical_escalation_needs_the_critical_effect() {
        let control = [10.0, 11.0, 12.0, 10.5, 11.5, 10.2, 11.8, 10.9, 11.1, 12.2];
        let canary: Vec<f64> = control.iter().map(|v| v + 5.0).collect();
        let mut m = MetricSettings {
            critical: true,
            ..metric()
        };
        let r = classify(&m, &control, &canary);
        assert_eq!((r.label, r.critical), (Label::High, true));
        let reason = r.reason.unwrap();
        assert!(
            reason.starts_with("canary is higher: HL shift +5"),
            "{reason}"
        );
        assert!(reason.contains("98% CI"), "{reason}");
        assert!(reason.contains("critical"), "{reason}");
        m.effect_size.critical_increase = 2.0;
        let r = classify(&m, &control, &canary);
        assert_eq!((r.label, r.critical), (Label::High, false));
    }

    #[test]
    fn sparse_zero_ties_at_the_band_edge_are_resolved_by_the_test() {
        // Mostly zeros; the canary has many more non-zero values. The
        // interval's lower end and the estimate both sit on the zero step.
        let mut control = vec![0.0; 40];
        control[3] = 1.0;
        let mut canary = vec![0.0; 40];
        for v in canary.iter_mut().take(15) {
            *v = 2.0;
        }
        let r = classify(&metric(), &control, &canary);
        let s = r.shift.unwrap();
        assert!(s.lower <= s.upper);
        assert_eq!(r.label, Label::High, "{r:?}");
    }

    #[test]
    fn shift_statistic_matches_its_definition() {
        // x = [3, 4], y = [1, 2]: W = 7, dz = 7 − 3 − 2 = 2, c = 0.5,
        // σ = sqrt(4/12 · 5) → z = 1.5 / 1.29099…
        let z = shift_statistic(&[3.0, 4.0], &[1.0, 2.0], 0.0).unwrap();
        assert!((z - 1.5 / (5.0f64 / 3.0).sqrt()).abs() < 1e-12);
        assert!(shift_statistic(&[1.0], &[1.0], 0.0).is_none());
        assert!(shift_statistic(&[], &[1.0], 0.0).is_none());
    }

    #[test]
    fn mean_inequality() {
        assert_eq!(
            classify_mean_inequality(Direction::Either, &[1.0], &[2.0]),
            Label::High
        );
        assert_eq!(
            classify_mean_inequality(Direction::Increase, &[2.0], &[1.0]),
            Label::Pass
        );
        assert_eq!(
            classify_mean_inequality(Direction::Decrease, &[2.0], &[1.0]),
            Label::Low
        );
    }

    #[test]
    fn numbers_in_reasons_are_compact() {
        assert_eq!(num(12.3456), "12.35");
        assert_eq!(num(0.5), "0.5");
        assert_eq!(num(3.52e-5), "3.520e-5");
        assert_eq!(num(98.0), "98");
        assert_eq!(num(-2.25), "-2.25");
    }
}

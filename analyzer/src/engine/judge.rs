//! Judging one metric: from both arms' data to a [`MetricVerdict`].
//!
//! The statistics live in `verdict_judges`; this module chooses the test
//! for the metric's kind and judge, maps Verdict's config onto it, applies
//! absolute guardrails, and turns fetch failures and empty arms into
//! `error` and `nodata` verdicts with a reason (never a pass).

use super::fetch::{ArmData, FetchError};
use super::sequential::{judge_sequential, SequentialState};
use crate::config::analysis::{
    Analysis, AnalysisConfig, Direction, JudgeKind, Metric, MinData, COMPARABLE_VOLUME_RATIO,
};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use verdict_judges::decision::{DecisionPolicy, MetricOutcome, StepBudget, StepMinimum};
use verdict_judges::kayenta::classifier::{classify, Label};
use verdict_judges::kayenta::config::{
    EffectSizeSettings, MetricSettings, NanStrategy, OutlierStrategy,
};
use verdict_judges::kayenta::scorer::ScoredMetric;
use verdict_judges::proportions::{fisher_exact, two_proportion_z, TwoProportionConfig};
use verdict_judges::welch::{welch, WelchConfig};
use verdict_judges::Alternative;

/// What every metric's judgement shares within one look.
#[derive(Debug, Clone, Copy)]
pub struct JudgeContext {
    pub min_data: MinData,
    /// The run's alpha divided among its metrics (Bonferroni).
    pub alpha_per_metric: f64,
    pub weight: Option<f64>,
    /// The canary's share of the requests the look's count metrics saw
    /// (whatever the weight was meant to be), when any counted requests.
    pub canary_share: Option<f64>,
    /// The look's time (unix seconds).
    pub now: f64,
    /// How long after a weight change the data may still show the old
    /// split (scrape lag and the query step): the analysis's `step`.
    pub settle_seconds: f64,
}

impl JudgeContext {
    /// The context of one look of `analysis`: its alpha split evenly across
    /// its metrics (Bonferroni), so more metrics never mean more false aborts.
    pub fn new(analysis: &Analysis, weight: Option<f64>) -> Self {
        JudgeContext {
            min_data: analysis.config.min_data,
            alpha_per_metric: analysis.config.alpha / analysis.metrics.len().max(1) as f64,
            weight,
            canary_share: None,
            now: 0.0,
            settle_seconds: analysis.config.step.as_secs_f64(),
        }
    }

    /// The context at time `now` (unix seconds).
    pub fn at(mut self, now: f64) -> Self {
        self.now = now;
        self
    }

    /// The context with the canary's observed share of requests, from the
    /// look's counter and histogram arms (the first metric that counted
    /// requests in both arms).
    pub fn observing<'a>(
        mut self,
        arms: impl IntoIterator<Item = (Option<&'a ArmData>, Option<&'a ArmData>)>,
    ) -> Self {
        self.canary_share = arms.into_iter().find_map(|arms| match arms {
            (
                Some(c @ (ArmData::Counts { .. } | ArmData::Buckets { .. })),
                Some(b @ (ArmData::Counts { .. } | ArmData::Buckets { .. })),
            ) if c.size() + b.size() > 0 => Some(c.size() as f64 / (c.size() + b.size()) as f64),
            _ => None,
        });
        self
    }
}

/// Why a quantile gauge's arms cannot be compared at this look: their
/// request volumes differ by more than [`COMPARABLE_VOLUME_RATIO`].
fn quantile_not_comparable(metric: &Metric, ctx: &JudgeContext) -> Option<String> {
    let q = metric.config.quantile?;
    let share = ctx.canary_share?;
    let ratio = COMPARABLE_VOLUME_RATIO;
    if share * (1.0 + ratio) >= 1.0 && share * (1.0 + ratio) <= ratio {
        return None;
    }
    Some(format!(
        "not compared at this look: a {q} quantile from the canary's {:.1}% of the requests is \
         not comparable with the baseline's from {:.1}% (a quantile of fewer requests lands \
         higher); judged once the arms' volumes are within {ratio}x, until then it takes no part",
        100.0 * share,
        100.0 * (1.0 - share)
    ))
}

/// A short description of one arm's data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ArmSummary {
    // Field adapters, since serde reads a tagged enum's fields from a
    // buffer that the store's codec cannot reach (crate::json).
    Points {
        count: usize,
        #[serde(with = "crate::json::float")]
        mean: f64,
        #[serde(with = "crate::json::float")]
        min: f64,
        #[serde(with = "crate::json::float")]
        max: f64,
    },
    Counts {
        errors: u64,
        total: u64,
        #[serde(with = "crate::json::float")]
        rate: f64,
    },
    Buckets {
        total: u64,
        #[serde(with = "crate::json::bucket_bounds")]
        le: Vec<f64>,
        counts: Vec<u64>,
    },
}

impl ArmSummary {
    fn of(data: &ArmData) -> Self {
        match data {
            ArmData::Points { values } => ArmSummary::Points {
                count: values.len(),
                mean: values.iter().sum::<f64>() / values.len().max(1) as f64,
                min: values.iter().cloned().fold(f64::INFINITY, f64::min),
                max: values.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
            },
            ArmData::Counts { errors, total } => ArmSummary::Counts {
                errors: *errors,
                total: *total,
                rate: *errors as f64 / (*total).max(1) as f64,
            },
            ArmData::Buckets { le, counts } => ArmSummary::Buckets {
                total: counts.iter().sum(),
                le: le.clone(),
                counts: counts.clone(),
            },
        }
    }

    /// The canary's headline value, for guardrails: the mean of points or
    /// the error ratio.
    fn value(&self) -> Option<f64> {
        match self {
            ArmSummary::Points { mean, .. } => Some(*mean),
            ArmSummary::Counts { rate, .. } => Some(*rate),
            ArmSummary::Buckets { .. } => None,
        }
    }
}

/// The judgement of one metric at one look, with its explanation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MetricVerdict {
    pub name: String,
    pub group: String,
    pub judge: JudgeKind,
    #[serde(serialize_with = "label_name", deserialize_with = "label_of_name")]
    pub classification: Label,
    pub critical: bool,
    pub muted: bool,
    /// Whether the minimum data is met, so the verdict counts.
    pub enough_data: bool,
    /// Why, in words and numbers; empty for a plain pass.
    pub reason: String,
    pub canary: Option<ArmSummary>,
    pub baseline: Option<ArmSummary>,
    /// The test's numbers: estimate, interval, p-value, effect size...
    pub statistics: Value,
    /// The metric backend itself failed (not the data). Stored with the
    /// look, so that a duplicate delivery after a restart is answered as
    /// the first one was (Argo: 503, not an inconclusive 200).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    source_failed: bool,
}

fn label_name<S: serde::Serializer>(label: &Label, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(label.verdict_name())
}

/// Reads [`label_name`]'s output back (looks read from the run store).
fn label_of_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Label, D::Error> {
    let name = String::deserialize(d)?;
    [
        Label::Pass,
        Label::High,
        Label::Low,
        Label::Nodata,
        Label::NodataFailMetric,
        Label::Error,
    ]
    .into_iter()
    .find(|l| l.verdict_name() == name)
    .ok_or_else(|| serde::de::Error::custom(format!("unknown classification {name:?}")))
}

impl MetricVerdict {
    /// The verdict as the decision rule consumes it.
    pub fn outcome(&self) -> MetricOutcome {
        MetricOutcome {
            scored: ScoredMetric {
                name: self.name.clone(),
                label: self.classification,
                critical: self.critical,
                muted: self.muted,
                groups: vec![self.group.clone()],
                reason: (!self.reason.is_empty()).then(|| self.reason.clone()),
            },
            enough_data: self.enough_data,
        }
    }

    /// Whether the metric backend itself failed (as opposed to the data).
    pub fn source_failed(&self) -> bool {
        self.source_failed
    }
}

/// Where a look stands in its rollout step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepClock {
    /// How long the current step has lasted (seconds).
    pub elapsed_seconds: f64,
    /// Whether the step began after the run's first look (a weight change or
    /// an opening of the traffic gate), so that its own minimum applies; the
    /// run's first step is covered by `min_data.duration`.
    pub later_step: bool,
}

impl StepClock {
    /// A look judged on its own, outside any rollout step (`verdict judge`,
    /// the simulation's fixed windows): no budget spent, no step minimum.
    pub const UNSTEPPED: StepClock = StepClock {
        elapsed_seconds: 0.0,
        later_step: false,
    };
}

/// The decision policy of an analysis at one look.
pub fn policy(cfg: &AnalysisConfig, min_duration_met: bool, step: StepClock) -> DecisionPolicy {
    DecisionPolicy {
        thresholds: cfg.thresholds,
        group_weights: cfg.groups.clone(),
        min_duration_met,
        step_budget: cfg.step_budget.map(|budget| StepBudget {
            elapsed_seconds: step.elapsed_seconds,
            budget_seconds: budget.duration.as_secs_f64(),
            on_undecided: budget.on_undecided,
        }),
        step_minimum: step.later_step.then(|| StepMinimum {
            elapsed_seconds: step.elapsed_seconds,
            minimum_seconds: cfg.min_step_duration().as_secs_f64(),
        }),
    }
}

/// Judges one metric from its arms' fetch results.
/// `sequential` is the metric's state in the run (used by the sequential
/// judge only; created on its first look).
pub fn judge_metric(
    metric: &Metric,
    ctx: &JudgeContext,
    canary: Result<Option<ArmData>, FetchError>,
    baseline: Result<Option<ArmData>, FetchError>,
    sequential: &mut Option<SequentialState>,
) -> MetricVerdict {
    let mut v = MetricVerdict::unjudged(metric);
    let (canary, baseline) = match (canary, baseline) {
        (Err(e), _) | (_, Err(e)) => return v.fetch_failed(metric, &e),
        (Ok(c), Ok(b)) => (c, b),
    };
    v.canary = canary.as_ref().map(ArmSummary::of);
    v.baseline = baseline.as_ref().map(ArmSummary::of);
    let (canary, baseline) = match (canary, baseline) {
        (Some(c), Some(b)) => (c, b),
        (c, _) => return v.no_data(metric, if c.is_none() { "canary" } else { "baseline" }),
    };
    if let Some(reason) = quantile_not_comparable(metric, ctx) {
        v.classification = Label::Nodata;
        v.muted = true;
        v.reason = reason;
        return v;
    }
    match (metric.judge, &canary, &baseline) {
        (JudgeKind::MannWhitney, ArmData::Points { values: c }, ArmData::Points { values: b }) => {
            judge_mann_whitney(&mut v, metric, ctx, c, b)
        }
        (JudgeKind::Welch, ArmData::Points { values: c }, ArmData::Points { values: b }) => {
            judge_welch(&mut v, metric, ctx, c, b)
        }
        (
            JudgeKind::Proportion,
            ArmData::Counts {
                errors: ce,
                total: ct,
            },
            ArmData::Counts {
                errors: be,
                total: bt,
            },
        ) => judge_proportion(&mut v, metric, ctx, [*ce, *be], [*ct, *bt]),
        (JudgeKind::Sequential, c @ (ArmData::Counts { .. } | ArmData::Buckets { .. }), b) => {
            judge_sequential(&mut v, metric, ctx, c, b, sequential)
        }
        (judge, c, _) => {
            v.classification = Label::Error;
            v.critical = metric.config.critical;
            v.reason = format!(
                "judge {} cannot judge {} data",
                judge.as_str(),
                kind_name(c)
            );
        }
    }
    apply_guardrail(&mut v, metric);
    v
}

impl MetricVerdict {
    /// A pass with no data and no reason yet: what judging starts from.
    fn unjudged(metric: &Metric) -> Self {
        let cfg = &metric.config;
        MetricVerdict {
            name: cfg.name.clone(),
            group: cfg.group.clone(),
            judge: metric.judge,
            classification: Label::Pass,
            critical: false,
            muted: cfg.muted,
            enough_data: false,
            reason: String::new(),
            canary: None,
            baseline: None,
            statistics: Value::Null,
            source_failed: false,
        }
    }

    /// An arm could not be fetched: an error, critical when the metric is
    /// (a broken critical metric must not let the canary through).
    fn fetch_failed(mut self, metric: &Metric, e: &FetchError) -> Self {
        self.source_failed = matches!(e, FetchError::Source(_));
        self.classification = Label::Error;
        self.critical = metric.config.critical;
        self.reason = format!("cannot fetch data: {e}");
        self
    }

    /// `arm` has no data in the window: no data, never a pass. A metric
    /// declared must-have-data is conclusive without data.
    fn no_data(mut self, metric: &Metric, arm: &str) -> Self {
        let cfg = &metric.config;
        self.classification = if cfg.must_have_data && !cfg.critical {
            Label::NodataFailMetric
        } else {
            Label::Nodata
        };
        self.critical = cfg.critical;
        self.enough_data = cfg.must_have_data;
        self.reason = format!(
            "no data for the {arm} in the window (no traffic yet, or the series is missing or NaN)"
        );
        self
    }
}

fn kind_name(data: &ArmData) -> &'static str {
    match data {
        ArmData::Points { .. } => "point",
        ArmData::Counts { .. } => "count",
        ArmData::Buckets { .. } => "bucket",
    }
}

/// Kayenta's classifier: HL interval vs a ±25 % band, effect-size gate.
fn judge_mann_whitney(
    v: &mut MetricVerdict,
    metric: &Metric,
    ctx: &JudgeContext,
    c: &[f64],
    b: &[f64],
) {
    let cfg = &metric.config;
    let es = cfg.effect_size;
    let neutral = EffectSizeSettings::neutral(es.measure);
    let settings = cfg.kayenta.unwrap_or(MetricSettings {
        direction: cfg.direction,
        nan_strategy: NanStrategy::Remove,
        outlier_strategy: OutlierStrategy::Keep,
        outlier_factor: 3.0,
        critical: cfg.critical,
        must_have_data: cfg.must_have_data,
        muted: cfg.muted,
        effect_size: EffectSizeSettings {
            measure: es.measure,
            allowed_increase: es.allowed_increase.unwrap_or(neutral.allowed_increase),
            allowed_decrease: es.allowed_decrease.unwrap_or(neutral.allowed_decrease),
            critical_increase: es.critical_increase.unwrap_or(neutral.critical_increase),
            critical_decrease: es.critical_decrease.unwrap_or(neutral.critical_decrease),
        },
    });
    let result = classify(&settings, b, c);
    v.classification = result.label;
    v.critical = result.critical;
    v.reason = result.reason.clone().unwrap_or_default();
    v.enough_data = c.len() >= ctx.min_data.points && b.len() >= ctx.min_data.points;
    v.statistics = serde_json::to_value(&result).unwrap_or(Value::Null);
}

fn alternative(direction: Direction) -> Alternative {
    match direction {
        Direction::Increase => Alternative::Greater,
        Direction::Decrease => Alternative::Less,
        Direction::Either => Alternative::TwoSided,
    }
}

/// Labels a difference from its interval: High when the whole interval is
/// above `+margin`, Low when below `−margin`, in the directions that count.
fn label_from_interval(direction: Direction, lo: f64, hi: f64, margin: f64) -> Label {
    if !matches!(direction, Direction::Decrease) && lo > margin {
        Label::High
    } else if !matches!(direction, Direction::Increase) && hi < -margin {
        Label::Low
    } else {
        Label::Pass
    }
}

fn judge_welch(v: &mut MetricVerdict, metric: &Metric, ctx: &JudgeContext, c: &[f64], b: &[f64]) {
    let cfg = &metric.config;
    let alpha = ctx.alpha_per_metric;
    v.enough_data = c.len() >= ctx.min_data.points && b.len() >= ctx.min_data.points;
    match welch(
        c,
        b,
        &WelchConfig {
            alternative: alternative(cfg.direction),
            conf_level: 1.0 - alpha,
        },
    ) {
        Ok(w) => {
            let diff = w.mean_x - w.mean_y;
            v.classification =
                label_from_interval(cfg.direction, w.conf_int.0, w.conf_int.1, cfg.margin);
            v.critical = cfg.critical && v.classification != Label::Pass;
            if v.classification != Label::Pass {
                v.reason = format!(
                    "canary mean {:.6} vs baseline {:.6}: difference {:+.6}, {:.1}% interval [{:.6}, {:.6}] \
                     excludes the margin ±{} (Welch t = {:.3}, p = {:.3e}, alpha {:.3e})",
                    w.mean_x, w.mean_y, diff, 100.0 * (1.0 - alpha), w.conf_int.0, w.conf_int.1,
                    cfg.margin, w.t, w.p_value, alpha
                );
            }
            v.statistics = json!({
                "test": "welch-t", "difference": crate::json::number(diff),
                "conf_int": crate::json::interval(w.conf_int.0, w.conf_int.1),
                "conf_level": 1.0 - alpha, "t": crate::json::number(w.t),
                "df": crate::json::number(w.df), "p_value": crate::json::number(w.p_value),
            });
        }
        Err(e) => {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = format!("Welch t-test failed: {e}");
        }
    }
}

/// Error (or failure) rates: Newcombe interval of the rate difference for
/// the decision (it behaves near zero errors, where Wald does not), the
/// z-test and, for small tables, Fisher's exact p-value for the report.
fn judge_proportion(
    v: &mut MetricVerdict,
    metric: &Metric,
    ctx: &JudgeContext,
    errors: [u64; 2],
    totals: [u64; 2],
) {
    let cfg = &metric.config;
    let alpha = ctx.alpha_per_metric;
    v.enough_data = totals[0] >= ctx.min_data.requests && totals[1] >= ctx.min_data.requests;
    // A one-sided test at alpha uses one end of a two-sided 1 − 2·alpha interval.
    let conf_level = match cfg.direction {
        Direction::Either => 1.0 - alpha,
        _ => 1.0 - 2.0 * alpha,
    };
    let z = two_proportion_z(
        errors,
        totals,
        &TwoProportionConfig {
            alternative: alternative(cfg.direction),
            correction: false,
            conf_level,
        },
    );
    match z {
        Ok(z) => {
            let (lo, hi) = z.newcombe_int;
            v.classification = label_from_interval(cfg.direction, lo, hi, cfg.margin);
            v.critical = cfg.critical && v.classification != Label::Pass;
            let fisher = (errors.iter().sum::<u64>() < 1000)
                .then(|| {
                    fisher_exact(
                        [
                            [errors[0], totals[0] - errors[0]],
                            [errors[1], totals[1] - errors[1]],
                        ],
                        alternative(cfg.direction),
                    )
                    .ok()
                })
                .flatten();
            let rate = |i: usize| errors[i] as f64 / totals[i] as f64;
            if v.classification != Label::Pass {
                v.reason = format!(
                    "canary rate {:.4}% ({}/{}) vs baseline {:.4}% ({}/{}): difference {:+.4} points, \
                     {:.1}% interval [{:+.4}, {:+.4}] points excludes the margin ±{} points (z p = {:.3e})",
                    100.0 * rate(0), errors[0], totals[0], 100.0 * rate(1), errors[1], totals[1],
                    100.0 * z.diff, 100.0 * conf_level, 100.0 * lo, 100.0 * hi, 100.0 * cfg.margin, z.p_value
                );
            }
            v.statistics = json!({
                "test": "two-proportion", "difference": crate::json::number(z.diff),
                "newcombe_int": crate::json::interval(lo, hi), "conf_level": conf_level,
                "z": crate::json::number(z.z), "p_value": crate::json::number(z.p_value),
                "fisher_p_value": fisher.map(|f| crate::json::number(f.p_value)),
            });
        }
        Err(e) => {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = format!("proportion test failed: {e}");
        }
    }
}

/// Absolute bounds on the canary alone (Flagger's thresholdRange): a breach
/// is a regression whatever the comparison says.
fn apply_guardrail(v: &mut MetricVerdict, metric: &Metric) {
    let g = metric.config.guardrail;
    let Some(value) = v.canary.as_ref().and_then(ArmSummary::value) else {
        return;
    };
    let breach = match (g.min, g.max) {
        (Some(min), _) if value < min => Some((Label::Low, format!("below the minimum {min}"))),
        (_, Some(max)) if value > max => Some((Label::High, format!("above the maximum {max}"))),
        _ => None,
    };
    if let Some((label, why)) = breach {
        v.classification = label;
        v.critical = metric.config.critical;
        v.enough_data = true;
        let text = format!("canary value {value:.6} is {why} (guardrail)");
        v.reason = if v.reason.is_empty() {
            text
        } else {
            format!("{text}; {}", v.reason)
        };
    }
}

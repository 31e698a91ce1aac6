//! Analysis configs: what Kayenta calls canary configs. A named set of
//! metrics, each with a PromQL template per arm, its kind, its judge and its
//! place in the score, plus the run's thresholds.
//!
//! Example (YAML; see `docs/configuration.md` for every field):
//!
//! ```yaml
//! metrics:
//!   - name: p99-latency
//!     kind: gauge
//!     canary:   'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{namespace}}",app="{{name}}-canary"}[1m])))'
//!     baseline: 'histogram_quantile(0.99, sum by (le) (rate(http_request_duration_seconds_bucket{namespace="{{namespace}}",app="{{name}}-primary"}[1m])))'
//!     direction: increase
//!     critical: true
//!     group: latency
//!   - name: errors
//!     kind: counter
//!     canary:   {errors: 'sum(http_requests_total{app="{{name}}-canary",code=~"5.."})', total: 'sum(http_requests_total{app="{{name}}-canary"})'}
//!     baseline: {errors: 'sum(http_requests_total{app="{{name}}-primary",code=~"5.."})', total: 'sum(http_requests_total{app="{{name}}-primary"})'}
//!     group: errors
//! groups: {latency: 40, errors: 60}
//! thresholds: {pass: 95, marginal: 75}
//! ```

use super::duration::PromDuration;
use super::template::{QueryTemplate, TemplateError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
pub use verdict_judges::decision::UndecidedAction;
pub use verdict_judges::effect_size::EffectSizeMeasure;
pub use verdict_judges::kayenta::config::Direction;
/// Thresholds are the scorer's own type, checked at load.
pub use verdict_judges::kayenta::scorer::ScoreThresholds;

/// One analysis config, validated.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnalysisConfig {
    #[serde(default)]
    pub description: String,
    pub metrics: Vec<MetricConfig>,
    /// Group weights (percent). Groups without a weight share the rest of 100.
    #[serde(default)]
    pub groups: BTreeMap<String, f64>,
    #[serde(default = "default_thresholds")]
    pub thresholds: ScoreThresholds,
    #[serde(default)]
    pub min_data: MinData,
    /// How far before a run's first look its window starts, so the first
    /// look already has data (Flagger calls one interval after the traffic shift).
    #[serde(default = "default_lookback")]
    pub lookback: PromDuration,
    /// Resolution of range queries.
    #[serde(default = "default_step")]
    pub step: PromDuration,
    /// Deliveries of the same run closer together than this are one look
    /// (Flagger retries; several replicas of a controller).
    #[serde(default = "default_dedup")]
    pub dedup_window: PromDuration,
    /// Which window the baseline queries cover.
    #[serde(default)]
    pub baseline_window: BaselineWindow,
    /// Family-wise error rate of the run's statistical tests; split across
    /// metrics (Bonferroni) so ten metrics do not mean ten chances to abort falsely.
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// How long one rollout step (one canary weight) may stay undecided, and
    /// what it then becomes. Absent: a step continues as long as the
    /// controller keeps asking.
    #[serde(default)]
    pub step_budget: Option<StepBudgetConfig>,
    /// The canary weight of each rollout step (`[5, 25, 50, 100]`), for
    /// controllers that never send the weight (Flagger): Verdict counts the
    /// steps itself, one per opening of the traffic gate, and checks the
    /// traffic split against the step's weight. A webhook's `stepWeights`
    /// metadata overrides it. Absent: the split is not checked, and a
    /// promote says so.
    #[serde(default)]
    pub steps: Option<StepWeights>,
}

/// Checks a list of canary weights (a step schedule, a replay's): non-empty,
/// each in (0, 100].
pub fn check_weights(weights: &[f64]) -> Result<(), String> {
    if weights.is_empty() {
        return Err("at least one weight is needed".into());
    }
    match weights.iter().find(|w| !(**w > 0.0 && **w <= 100.0)) {
        Some(w) => Err(format!("weight {w} is not in (0, 100]")),
        None => Ok(()),
    }
}

/// The canary weight of each rollout step, in percent: strictly increasing,
/// each in (0, 100]. Step 1 is the first weight after the first increase
/// from 0.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>", into = "Vec<f64>")]
pub struct StepWeights(Vec<f64>);

impl StepWeights {
    pub fn new(weights: Vec<f64>) -> Result<Self, String> {
        check_weights(&weights)?;
        if let Some(pair) = weights.windows(2).find(|p| p[1] <= p[0]) {
            return Err(format!(
                "step weights must increase: {} is followed by {}",
                pair[0], pair[1]
            ));
        }
        Ok(StepWeights(weights))
    }

    /// Parses a webhook's `stepWeights` metadata: numbers separated by
    /// commas or spaces (`"5,25,50,100"`, `"5, 25, 50"`), each optionally
    /// followed by `%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let weights = text
            .split([',', ' '])
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.trim_end_matches('%')
                    .parse::<f64>()
                    .map_err(|_| format!("step weight {t:?} is not a number"))
            })
            .collect::<Result<Vec<f64>, String>>()?;
        Self::new(weights)
    }

    /// The weight of step `step` (1-based); none before the first step or
    /// beyond the last.
    pub fn weight_of(&self, step: usize) -> Option<f64> {
        step.checked_sub(1).and_then(|i| self.0.get(i)).copied()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<f64>> for StepWeights {
    type Error = String;
    fn try_from(weights: Vec<f64>) -> Result<Self, String> {
        Self::new(weights)
    }
}

impl From<StepWeights> for Vec<f64> {
    fn from(steps: StepWeights) -> Vec<f64> {
        steps.0
    }
}

/// The time budget of a rollout step.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StepBudgetConfig {
    /// Time from the step's first look (its first look at the current weight).
    pub duration: PromDuration,
    /// `abort` or `inconclusive`; required, so the choice is explicit.
    pub on_undecided: UndecidedAction,
}

fn default_lookback() -> PromDuration {
    PromDuration::from_secs(60)
}
fn default_step() -> PromDuration {
    PromDuration::from_secs(15)
}
fn default_dedup() -> PromDuration {
    PromDuration::from_secs(5)
}
fn default_alpha() -> f64 {
    0.05
}

/// The window of the baseline arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum BaselineWindow {
    /// The same window as the canary: a baseline deployment (or the primary)
    /// serving at the same time. The default, and the stronger evidence.
    #[default]
    Same,
    /// A window as long as the canary's, ending when the run began: the
    /// primary's own traffic before the rollout, for setups without a
    /// concurrent baseline (e.g. blue-green pre-promotion). Weaker evidence:
    /// time-of-day and load changes are confounded with the change.
    BeforeRollout,
}

impl BaselineWindow {
    /// What the canary is compared against, in words (for answers and logs).
    pub fn describe(self) -> &'static str {
        match self {
            BaselineWindow::Same => "baseline arm of the analysis config, same window",
            BaselineWindow::BeforeRollout => {
                "baseline arm over an equally long window before the run began"
            }
        }
    }
}

/// An analysis's thresholds when it names none: pass at 95, marginal at 75.
pub fn default_thresholds() -> ScoreThresholds {
    ScoreThresholds {
        pass: 95.0,
        marginal: 75.0,
    }
}

/// Minimum evidence per arm before any promote.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MinData {
    /// Points per arm for gauge metrics.
    #[serde(default = "default_min_points")]
    pub points: usize,
    /// Requests per arm for counter and histogram metrics.
    #[serde(default = "default_min_requests")]
    pub requests: u64,
    /// Minimum run duration before promote.
    #[serde(default)]
    pub duration: PromDuration,
    /// Minimum duration of each rollout step after the first before it may
    /// promote: a step's first look has seen none of its new weight's
    /// traffic. Absent: the analysis's `step` (one query resolution, the
    /// least time in which the new weight shows in the data).
    #[serde(default)]
    pub step_duration: Option<PromDuration>,
}

fn default_min_points() -> usize {
    10
}
fn default_min_requests() -> u64 {
    200
}

impl Default for MinData {
    fn default() -> Self {
        MinData {
            points: default_min_points(),
            requests: default_min_requests(),
            duration: PromDuration::default(),
            step_duration: None,
        }
    }
}

/// What a metric's series are, which decides how they are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MetricKind {
    /// A gauge or derived series (latency quantile, CPU, accuracy): judged
    /// on its points, Kayenta style.
    Gauge,
    /// A pair of counters (errors or failures, and the total): judged on
    /// integer increments, the request being the unit.
    Counter,
    /// A classic histogram's `_bucket` counters: judged on bucket increments.
    Histogram,
}

/// The statistical judge of one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JudgeKind {
    /// Kayenta's classifier: Hodges-Lehmann interval against a tolerance
    /// band, gated by an effect size (gauges).
    MannWhitney,
    /// Welch's t-test on the points (gauges, e.g. accuracy per batch).
    Welch,
    /// Two-proportion z / Fisher test on the counts (counters), fixed horizon.
    Proportion,
    /// Anytime-valid bucket-label e-process (counters, histograms): stays
    /// valid however often the controller looks.
    Sequential,
}

impl JudgeKind {
    /// The name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            JudgeKind::MannWhitney => "mann-whitney",
            JudgeKind::Welch => "welch",
            JudgeKind::Proportion => "proportion",
            JudgeKind::Sequential => "sequential",
        }
    }
}

impl MetricKind {
    /// The name as written in configs.
    pub fn as_str(self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
            MetricKind::Histogram => "histogram",
        }
    }

    /// The judge used when a metric does not name one.
    pub fn default_judge(self) -> JudgeKind {
        match self {
            MetricKind::Gauge => JudgeKind::MannWhitney,
            MetricKind::Counter | MetricKind::Histogram => JudgeKind::Sequential,
        }
    }

    fn allows(self, judge: JudgeKind) -> bool {
        matches!(
            (self, judge),
            (MetricKind::Gauge, JudgeKind::MannWhitney | JudgeKind::Welch)
                | (
                    MetricKind::Counter,
                    JudgeKind::Proportion | JudgeKind::Sequential
                )
                | (MetricKind::Histogram, JudgeKind::Sequential)
        )
    }
}

/// The query (or queries) of one arm.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum ArmQueries {
    /// Gauge and histogram metrics: one PromQL expression.
    Single(String),
    /// Counter metrics: the bad events and the total.
    Counter { errors: String, total: String },
}

/// Kayenta's effect-size gate (see `verdict_judges::kayenta`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct EffectSize {
    #[serde(default)]
    pub measure: EffectSizeMeasure,
    pub allowed_increase: Option<f64>,
    pub allowed_decrease: Option<f64>,
    pub critical_increase: Option<f64>,
    pub critical_decrease: Option<f64>,
}

/// An absolute bound on the canary alone, like Flagger's `thresholdRange`
/// (inclusive: a value equal to a bound passes).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Guardrail {
    pub min: Option<f64>,
    pub max: Option<f64>,
}

/// One metric of an analysis config, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricConfig {
    pub name: String,
    pub kind: MetricKind,
    pub canary: ArmQueries,
    pub baseline: ArmQueries,
    #[serde(default)]
    pub judge: Option<JudgeKind>,
    /// Which change counts against the canary; Verdict defaults to
    /// `increase` (latency, errors), Kayenta to `either`.
    #[serde(default = "default_direction")]
    pub direction: Direction,
    #[serde(default)]
    pub critical: bool,
    #[serde(default = "default_group")]
    pub group: String,
    #[serde(default)]
    pub must_have_data: bool,
    #[serde(default)]
    pub muted: bool,
    #[serde(default)]
    pub effect_size: EffectSize,
    #[serde(default)]
    pub guardrail: Guardrail,
    /// Tolerated harm before a metric counts as regressed, in the metric's
    /// units for gauges and as an absolute rate difference for counters
    /// (0.001 = 0.1 percentage points) and, for histograms, as an absolute
    /// difference of the slow share (requests above `slow_above`). For the
    /// sequential judge a margin also makes promotion wait until an
    /// anytime-valid confidence sequence shows the canary within it
    /// (non-inferiority), not merely no harm found.
    #[serde(default)]
    pub margin: f64,
    /// Histograms: buckets whose upper bound `le` exceeds this are "slow";
    /// only an excess of canary requests there is a regression.
    #[serde(default)]
    pub slow_above: Option<f64>,
    /// Gauges: the gauge is this quantile of per-request values (0.99 for a
    /// `histogram_quantile(0.99, ...)` p99). A quantile estimated from few
    /// requests is not comparable with one from many (it lands in higher
    /// buckets), so the metric takes part only while the arms' request
    /// volumes in the look are within [`COMPARABLE_VOLUME_RATIO`] of each
    /// other; otherwise it is reported, muted, with the reason.
    #[serde(default)]
    pub quantile: Option<f64>,
    /// Kayenta's own settings of a metric converted from a Kayenta canary
    /// config (NaN strategy, outliers...); they override the fields above
    /// for the Mann-Whitney judge. Not written in Verdict's format.
    #[serde(skip)]
    pub kayenta: Option<verdict_judges::kayenta::config::MetricSettings>,
}

/// The largest ratio of the arms' request volumes at which a quantile
/// gauge's arms are compared: a canary share between 1/3 and 2/3.
pub const COMPARABLE_VOLUME_RATIO: f64 = 2.0;

fn default_direction() -> Direction {
    Direction::Increase
}

fn default_group() -> String {
    "default".into()
}

/// A metric with its templates parsed and defaults resolved.
#[derive(Debug, Clone)]
pub struct Metric {
    pub config: MetricConfig,
    pub judge: JudgeKind,
    pub canary: Queries,
    pub baseline: Queries,
}

/// Parsed templates of one arm.
#[derive(Debug, Clone)]
pub enum Queries {
    Single(QueryTemplate),
    Counter {
        errors: QueryTemplate,
        total: QueryTemplate,
    },
}

impl Queries {
    /// Every template of the arm.
    pub fn templates(&self) -> Vec<&QueryTemplate> {
        match self {
            Queries::Single(t) => vec![t],
            Queries::Counter { errors, total } => vec![errors, total],
        }
    }
}

/// A validated analysis.
#[derive(Debug, Clone)]
pub struct Analysis {
    pub name: String,
    pub config: AnalysisConfig,
    pub metrics: Vec<Metric>,
    /// The Kayenta canary config this analysis was converted from
    /// (`kayenta_configs`), served unchanged by `GET /canaryConfig`.
    pub kayenta_source: Option<std::sync::Arc<verdict_judges::kayenta::config::CanaryConfig>>,
}

/// One problem found while validating, with the config path of the field.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub path: String,
    pub message: String,
}

impl AnalysisConfig {
    /// The least time a rollout step after the first lasts before it may
    /// promote (see [`MinData::step_duration`]).
    pub fn min_step_duration(&self) -> PromDuration {
        self.min_data.step_duration.unwrap_or(self.step)
    }

    /// Validates and resolves defaults; reports every problem, not just the first.
    pub fn validate(self, name: &str, path_prefix: &str) -> Result<Analysis, Vec<FieldError>> {
        let mut errors = Vec::new();
        macro_rules! err {
            ($path:expr, $message:expr $(,)?) => {
                errors.push(FieldError {
                    path: $path,
                    message: $message,
                })
            };
        }
        if self.metrics.is_empty() {
            err!(
                format!("{path_prefix}.metrics"),
                "at least one metric is required".into()
            );
        }
        if let Err(e) = self.thresholds.check() {
            err!(format!("{path_prefix}.thresholds"), e);
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            err!(
                format!("{path_prefix}.alpha"),
                format!("must be strictly between 0 and 1, got {}", self.alpha),
            );
        }
        if self.step.0.is_zero() {
            err!(format!("{path_prefix}.step"), "must be positive".into());
        }
        if let Some(budget) = self.step_budget {
            if budget.duration.0.is_zero() {
                err!(
                    format!("{path_prefix}.step_budget.duration"),
                    "must be positive".into()
                );
            } else if budget.duration.0 < self.min_step_duration().0 {
                // Otherwise every later step would time out before it may promote.
                err!(
                    format!("{path_prefix}.step_budget.duration"),
                    format!(
                        "must be at least the step's minimum ({}: min_data.step_duration, or step)",
                        self.min_step_duration()
                    ),
                );
            } else if budget.duration.0 < self.min_data.duration.0 {
                // Otherwise every step would time out before it may promote.
                err!(
                    format!("{path_prefix}.step_budget.duration"),
                    format!(
                        "must be at least min_data.duration ({})",
                        self.min_data.duration
                    ),
                );
            }
        }
        for (group, weight) in &self.groups {
            if !(weight.is_finite() && *weight >= 0.0) {
                err!(
                    format!("{path_prefix}.groups.{group}"),
                    format!("weight must be a non-negative number, got {weight}"),
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut metrics = Vec::new();
        for (i, m) in self.metrics.iter().enumerate() {
            let at = format!("{path_prefix}.metrics[{i}]");
            if m.name.trim().is_empty() {
                err!(format!("{at}.name"), "must not be empty".into());
            } else if !seen.insert(m.name.clone()) {
                err!(
                    format!("{at}.name"),
                    format!("duplicate metric name {:?}", m.name)
                );
            }
            let judge = m.judge.unwrap_or_else(|| m.kind.default_judge());
            if !m.kind.allows(judge) {
                err!(
                    format!("{at}.judge"),
                    format!(
                        "judge {} cannot judge a {} metric",
                        judge.as_str(),
                        m.kind.as_str()
                    ),
                );
            }
            if !(m.margin.is_finite() && m.margin >= 0.0) {
                err!(
                    format!("{at}.margin"),
                    "must be a non-negative number".into()
                );
            }
            if m.kind == MetricKind::Histogram
                && judge == JudgeKind::Sequential
                && m.margin > 0.0
                && m.slow_above.is_none()
            {
                err!(
                    format!("{at}.margin"),
                    "a histogram's margin applies to its slow share: set slow_above too".into()
                );
            }
            if let Some(q) = m.quantile {
                if m.kind != MetricKind::Gauge {
                    err!(
                        format!("{at}.quantile"),
                        "only applies to gauge metrics".into()
                    );
                } else if !(q > 0.0 && q < 1.0) {
                    err!(
                        format!("{at}.quantile"),
                        format!("must be strictly between 0 and 1, got {q}")
                    );
                }
            }
            if m.slow_above.is_some() && m.kind != MetricKind::Histogram {
                err!(
                    format!("{at}.slow_above"),
                    "only applies to histogram metrics".into()
                );
            }
            let mut arm = |arm: &str, q: &ArmQueries| -> Option<Queries> {
                let parse = |field: String, text: &str, errs: &mut Vec<FieldError>| {
                    QueryTemplate::parse(text)
                        .map_err(|e: TemplateError| {
                            errs.push(FieldError {
                                path: field,
                                message: format!("bad query template: {e}"),
                            })
                        })
                        .ok()
                };
                match (m.kind, q) {
                    (MetricKind::Counter, ArmQueries::Counter { errors: e, total }) => {
                        let e = parse(format!("{at}.{arm}.errors"), e, &mut errors);
                        let t = parse(format!("{at}.{arm}.total"), total, &mut errors);
                        Some(Queries::Counter {
                            errors: e?,
                            total: t?,
                        })
                    }
                    (MetricKind::Counter, ArmQueries::Single(_)) => {
                        errors.push(FieldError {
                            path: format!("{at}.{arm}"),
                            message: "a counter metric needs {errors: <query>, total: <query>}"
                                .into(),
                        });
                        None
                    }
                    (_, ArmQueries::Single(text)) => {
                        parse(format!("{at}.{arm}"), text, &mut errors).map(Queries::Single)
                    }
                    (kind, ArmQueries::Counter { .. }) => {
                        errors.push(FieldError {
                            path: format!("{at}.{arm}"),
                            message: format!("a {} metric takes one query string", kind.as_str()),
                        });
                        None
                    }
                }
            };
            let canary = arm("canary", &m.canary);
            let baseline = arm("baseline", &m.baseline);
            if let (Some(canary), Some(baseline)) = (canary, baseline) {
                metrics.push(Metric {
                    config: m.clone(),
                    judge,
                    canary,
                    baseline,
                });
            }
        }
        if errors.is_empty() {
            Ok(Analysis {
                name: name.to_string(),
                config: self,
                metrics,
                kayenta_source: None,
            })
        } else {
            Err(errors)
        }
    }
}

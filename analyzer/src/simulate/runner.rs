//! One simulated run: generate the traffic, then feed every judge look by
//! look and record when each would first abort and first promote.
//!
//! Every judge sees **the same traffic** of the run. Each judge is monitored
//! over *all* looks (it is not stopped by its own promote), so a run yields
//! both "did it ever abort within the looks" (the peeking false-alarm
//! measure) and "what did the decision rule do first" (abort, promote, or
//! neither: inconclusive).

use super::rng::{derive_seed, Rng};
use super::traffic::{
    histogram_quantile, ArmCounts, ArmModel, Traffic, TrafficParams, BUCKETS, LATENCY_BOUNDS_MS,
    SLOW_FROM,
};
use super::SimConfig;
use crate::config::analysis::Analysis;
use crate::engine::fetch::ArmData;
use crate::engine::judge::{policy, JudgeContext, StepClock};
use crate::engine::judgement::judge_look;
use crate::engine::sequential::SequentialStates;
use std::collections::BTreeMap;
use std::sync::Arc;
use verdict_judges::decision::{decide, Action, DecisionPolicy, MetricOutcome};
use verdict_judges::kayenta::classifier::classify;
use verdict_judges::kayenta::config::{Direction, MetricSettings};
use verdict_judges::kayenta::scorer::{ScoreThresholds, ScoredMetric};
use verdict_judges::sequential::{
    tuned_tau2, BucketLabelConfig, BucketLabelEProcess, MixtureConfig, ProportionDifferenceSequence,
};

/// The metrics a scenario can judge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// errors / requests, harmful when higher.
    ErrorRate,
    /// The 8-bucket latency histogram, harmful when the slow buckets
    /// (> 200 ms) gain mass.
    Latency,
    /// correct / scored model predictions, harmful when lower.
    Accuracy,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::ErrorRate => "error rate",
            Metric::Latency => "latency histogram",
            Metric::Accuracy => "model accuracy",
        }
    }

    /// +1 when higher is harmful, -1 when lower is harmful.
    fn harm_sign(self) -> f64 {
        match self {
            Metric::ErrorRate | Metric::Latency => 1.0,
            Metric::Accuracy => -1.0,
        }
    }

    /// Promote tolerance of the normal-mixture CS, on the harm scale: the
    /// canary is promoted when the CS shows the harm below this.
    pub fn margin(self) -> f64 {
        match self {
            // Error rate: +0.5 points (half of the doubled-rate effect).
            Metric::ErrorRate => 0.005,
            // Slow fraction: +1.5 points (half of the +20 % shift, 15 % -> 18 %).
            Metric::Latency => 0.015,
            // Accuracy: a 2-point drop is the non-inferiority margin.
            Metric::Accuracy => 0.02,
        }
    }

    /// Bucket counts for the bucket-label e-process and its harmful mask.
    fn buckets(self, a: &ArmCounts) -> Vec<u64> {
        match self {
            Metric::ErrorRate => vec![a.errors, a.requests - a.errors],
            Metric::Latency => a.buckets.to_vec(),
            Metric::Accuracy => vec![a.scored - a.correct, a.correct],
        }
    }

    fn harmful_mask(self) -> Vec<bool> {
        match self {
            Metric::ErrorRate | Metric::Accuracy => vec![true, false],
            Metric::Latency => (0..BUCKETS).map(|k| k >= SLOW_FROM).collect(),
        }
    }

    /// `(successes, trials)` for the proportion sequence.
    fn proportion(self, a: &ArmCounts) -> (u64, u64) {
        match self {
            Metric::ErrorRate => (a.errors, a.requests),
            Metric::Latency => (a.slow(), a.requests),
            Metric::Accuracy => (a.correct, a.scored),
        }
    }

    /// The baseline proportion and the expected trials per request, for
    /// tuning the mixture to the planned end of the step.
    fn design(self, base: &ArmModel) -> (f64, f64) {
        match self {
            Metric::ErrorRate => (base.error_rate, 1.0),
            Metric::Latency => (base.slow_fraction(), 1.0),
            Metric::Accuracy => (base.accuracy, base.score_fraction),
        }
    }

    /// The Prometheus-like point Kayenta users would query over a `rate()`
    /// window, and its direction.
    fn point(self, a: &ArmCounts) -> f64 {
        let ratio = |num: u64, den: u64| {
            if den == 0 {
                f64::NAN
            } else {
                num as f64 / den as f64
            }
        };
        match self {
            // rate(errors[5m]) / rate(requests[5m])
            Metric::ErrorRate => ratio(a.errors, a.requests),
            // histogram_quantile(0.9, rate(latency_bucket[5m]))
            Metric::Latency => histogram_quantile(0.9, &a.buckets),
            // rate(correct[5m]) / rate(scored[5m])
            Metric::Accuracy => ratio(a.correct, a.scored),
        }
    }

    fn kayenta_direction(self) -> Direction {
        match self {
            Metric::ErrorRate | Metric::Latency => Direction::Increase,
            Metric::Accuracy => Direction::Decrease,
        }
    }
}

/// The judges compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Judge {
    /// The daemon's sequential judge itself (`engine::judge::judge_metric`
    /// with the metric's margin, then `decision::decide`): the bucket-label
    /// e-process aborts, the non-inferiority confidence sequence gates
    /// promotion. Told the canary weight of every look (the traffic-split
    /// check on), as with a schedule of `steps`.
    Verdict,
    /// The same judge told no weight, as Flagger and Argo call it without a
    /// schedule: the request-level tests condition on each look's split.
    VerdictWeightUnknown,
    BucketLabel,
    NormalMixture,
    /// Kayenta judged at every look, however few points there are.
    KayentaMannWhitney,
    /// Kayenta judged only from `kayenta_min_points` points per arm on.
    KayentaMannWhitneyMinPoints,
}

pub const JUDGES: [Judge; 6] = [
    Judge::Verdict,
    Judge::VerdictWeightUnknown,
    Judge::BucketLabel,
    Judge::NormalMixture,
    Judge::KayentaMannWhitney,
    Judge::KayentaMannWhitneyMinPoints,
];

impl Judge {
    pub fn name(self) -> &'static str {
        match self {
            Judge::Verdict => "Verdict sequential judge (daemon rule, with margin)",
            Judge::VerdictWeightUnknown => "Verdict sequential judge, weight unknown",
            Judge::BucketLabel => "bucket-label e-process",
            Judge::NormalMixture => "normal-mixture CS (proportion)",
            Judge::KayentaMannWhitney => "Kayenta MW on rate() points, every look",
            Judge::KayentaMannWhitneyMinPoints => "Kayenta MW on rate() points, from 50 points",
        }
    }
}

/// First look (1-based) at which a judge would abort / promote, monitoring
/// all looks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JudgeOutcome {
    pub first_abort: Option<u32>,
    pub first_promote: Option<u32>,
}

/// What the decision rule does first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleOutcome {
    Abort(u32),
    Promote(u32),
    Inconclusive,
}

impl JudgeOutcome {
    /// Abort wins a tie (the rule checks abort before promote).
    pub fn rule(&self) -> RuleOutcome {
        match (self.first_abort, self.first_promote) {
            (Some(a), Some(p)) if p < a => RuleOutcome::Promote(p),
            (Some(a), _) => RuleOutcome::Abort(a),
            (None, Some(p)) => RuleOutcome::Promote(p),
            (None, None) => RuleOutcome::Inconclusive,
        }
    }
}

/// A simulated situation: the canary's model and the metrics judged.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub name: &'static str,
    pub canary: ArmModel,
    pub baseline: ArmModel,
    pub metrics: Vec<Metric>,
    /// Whether the canary is truly worse (then a promote is false).
    pub canary_worse: bool,
    /// The canary's weight steps through these within the run (see
    /// [`TrafficParams::steps`]); none: the configured weight throughout.
    pub steps: Option<&'static [f64]>,
}

/// A rollout's steps within one run: no canary traffic, then 5, 25, 50 and
/// 100 % of it, each for a fifth of the looks.
pub const ROLLOUT_STEPS: &[f64] = &[0.0, 0.05, 0.25, 0.5, 1.0];

/// The scenarios of the report, in order: each at a fixed 5 % weight,
/// then each again with the weight stepping through [`ROLLOUT_STEPS`].
pub fn scenarios() -> Vec<Scenario> {
    let fixed = fixed_weight_scenarios();
    let stepped: Vec<Scenario> = fixed
        .iter()
        .map(|s| Scenario {
            name: match s.name {
                "identical arms" => "identical arms, weight 0 → 5 → 25 → 50 → 100 %",
                "(a) error rate doubled (1 % -> 2 %)" => {
                    "(a) error rate doubled, weight 0 → 5 → 25 → 50 → 100 %"
                }
                "(c) model accuracy -2 points (90 % -> 88 %)" => {
                    "(c) model accuracy -2 points, weight 0 → 5 → 25 → 50 → 100 %"
                }
                _ => "(b) slow latency buckets +20 %, weight 0 → 5 → 25 → 50 → 100 %",
            },
            steps: Some(ROLLOUT_STEPS),
            ..s.clone()
        })
        .collect();
    fixed.into_iter().chain(stepped).collect()
}

fn fixed_weight_scenarios() -> Vec<Scenario> {
    let base = ArmModel::baseline();
    vec![
        Scenario {
            name: "identical arms",
            canary: base,
            baseline: base,
            metrics: vec![Metric::ErrorRate, Metric::Latency, Metric::Accuracy],
            canary_worse: false,
            steps: None,
        },
        Scenario {
            name: "(a) error rate doubled (1 % -> 2 %)",
            canary: ArmModel {
                error_rate: 2.0 * base.error_rate,
                ..base
            },
            baseline: base,
            metrics: vec![Metric::ErrorRate],
            canary_worse: true,
            steps: None,
        },
        Scenario {
            name: "(b) slow latency buckets +20 % (15 % -> 18 % of requests > 200 ms)",
            canary: base.with_slow_shift(1.2),
            baseline: base,
            metrics: vec![Metric::Latency],
            canary_worse: true,
            steps: None,
        },
        Scenario {
            name: "(c) model accuracy -2 points (90 % -> 88 %)",
            canary: ArmModel {
                accuracy: base.accuracy - 0.02,
                ..base
            },
            baseline: base,
            metrics: vec![Metric::Accuracy],
            canary_worse: true,
            steps: None,
        },
    ]
}

/// One run of one scenario: an outcome per (metric, judge), metrics in the
/// scenario's order, judges in [`JUDGES`] order.
pub fn run_one(
    config: &SimConfig,
    scenario_index: usize,
    scenario: &Scenario,
    run: u64,
) -> Vec<JudgeOutcome> {
    let mut rng = Rng::seed_from(derive_seed(config.seed, scenario_index as u64, run));
    let params = TrafficParams {
        steps: scenario.steps,
        ..TrafficParams::new(config.requests_per_look, config.weight)
    };
    let traffic = Traffic::generate(
        params,
        config.looks,
        &scenario.canary,
        &scenario.baseline,
        &mut rng,
    );
    let increments = traffic.look_increments();
    let mut out = Vec::with_capacity(scenario.metrics.len() * JUDGES.len());
    let weights: Vec<f64> = (0..config.looks)
        .map(|t| params.weight_of_look(t, config.looks))
        .collect();
    for &metric in &scenario.metrics {
        out.push(daemon_judge(
            config,
            metric,
            &scenario.baseline,
            &increments,
            Some(&weights),
        ));
        out.push(daemon_judge(
            config,
            metric,
            &scenario.baseline,
            &increments,
            None,
        ));
        out.push(bucket_label(config, metric, &increments));
        out.push(normal_mixture(
            config,
            metric,
            &scenario.baseline,
            &increments,
        ));
        let (every_look, min_points) = kayenta(config, metric, &traffic);
        out.push(every_look);
        out.push(min_points);
    }
    out
}

/// The analysis config a user would write for `metric` (see
/// `docs/statistics/simulation.md`): a critical sequential metric with the
/// metric's margin, its minimum requests set to what the canary receives by
/// the first look a promote is allowed.
fn daemon_analysis(config: &SimConfig, metric: Metric, base: &ArmModel) -> Analysis {
    let (_, trials_per_request) = metric.design(base);
    let min_requests =
        (config.requests_per_look * config.weight * trials_per_request * config.min_looks as f64)
            .floor() as u64;
    let (kind, extra) = match metric {
        Metric::Latency => ("histogram", "slow_above: 0.2"),
        Metric::ErrorRate | Metric::Accuracy => ("counter", ""),
    };
    let queries = match kind {
        "histogram" => "canary: c\n        baseline: b".to_string(),
        _ => "canary: {errors: ce, total: ct}\n        baseline: {errors: be, total: bt}".into(),
    };
    let text = format!(
        "analyses:\n  sim:\n    alpha: {alpha}\n    min_data: {{requests: {min_requests}}}\n    metrics:\n      - name: {name}\n        kind: {kind}\n        judge: sequential\n        critical: true\n        margin: {margin}\n        {extra}\n        {queries}\n",
        alpha = config.alpha,
        name = metric.name().replace(' ', "-"),
        margin = metric.margin(),
    );
    let mut loaded = crate::config::load_str(std::path::Path::new("simulation.yaml"), &text, [])
        .unwrap_or_else(|e| panic!("simulation analysis config: {e}\n{text}"));
    let analysis = loaded.analyses.remove("sim").expect("analysis sim");
    Arc::unwrap_or_clone(analysis)
}

/// What the engine would fetch for `metric` from cumulative counts.
fn arm_data(metric: Metric, a: &ArmCounts) -> ArmData {
    match metric {
        Metric::ErrorRate => ArmData::Counts {
            errors: a.errors,
            total: a.requests,
        },
        Metric::Accuracy => ArmData::Counts {
            errors: a.scored - a.correct,
            total: a.scored,
        },
        Metric::Latency => ArmData::Buckets {
            le: LATENCY_BOUNDS_MS.iter().map(|ms| ms / 1000.0).collect(),
            counts: a.buckets.to_vec(),
        },
    }
}

/// Seconds per look (the simulated looks are one minute apart).
const LOOK_SECONDS: f64 = 60.0;

/// The daemon's judge and decision rule at every look, on cumulative
/// counts as the engine fetches them (each look sees the whole run so far),
/// told the canary weight of each look (`weights`, as a fraction) or none.
fn daemon_judge(
    config: &SimConfig,
    metric: Metric,
    base: &ArmModel,
    increments: &[(ArmCounts, ArmCounts)],
    weights: Option<&[f64]>,
) -> JudgeOutcome {
    let analysis = daemon_analysis(config, metric, base);
    let mut sequential = SequentialStates::new();
    let (mut canary, mut baseline) = (ArmCounts::default(), ArmCounts::default());
    let mut outcome = JudgeOutcome::default();
    for (t, (c, b)) in increments.iter().enumerate() {
        let look_no = t as u32 + 1;
        canary.add(c);
        baseline.add(b);
        // The engine's weight: the step's percentage, none before the first
        // increase (as `StepWeights::weight_of` gives it).
        let weight = weights.map(|w| 100.0 * w[t]).filter(|w| *w > 0.0);
        let ctx = JudgeContext::new(&analysis, weight).at(LOOK_SECONDS * look_no as f64);
        let arms = (
            Ok(Some(arm_data(metric, &canary))),
            Ok(Some(arm_data(metric, &baseline))),
        );
        let policy = policy(
            &analysis.config,
            t + 1 >= config.min_looks,
            StepClock::UNSTEPPED,
        );
        let judgement = judge_look(&analysis, &ctx, [arms], &mut sequential, &policy);
        match judgement.decision.action {
            Action::Abort => {
                outcome.first_abort = Some(look_no);
                break;
            }
            Action::Promote if outcome.first_promote.is_none() => {
                outcome.first_promote = Some(look_no)
            }
            _ => {}
        }
    }
    outcome
}

fn bucket_label(
    config: &SimConfig,
    metric: Metric,
    increments: &[(ArmCounts, ArmCounts)],
) -> JudgeOutcome {
    let mask = metric.harmful_mask();
    let mut e = BucketLabelEProcess::new(
        BucketLabelConfig {
            rho0: config.weight,
            kappa: config.kappa,
            alpha: config.alpha,
            harmful: Some(mask.clone()),
        },
        mask.len(),
    )
    .expect("valid bucket-label config");
    let mut outcome = JudgeOutcome::default();
    for (t, (c, b)) in increments.iter().enumerate() {
        let look_no = t as u32 + 1;
        let look = e
            .observe(&metric.buckets(c), &metric.buckets(b))
            .expect("valid increments");
        if look.reject {
            outcome.first_abort = Some(look_no);
            break; // latched: nothing later changes the outcome
        }
        if outcome.first_promote.is_none() && t + 1 >= config.min_looks {
            // Minimum data reached without rejecting.
            outcome.first_promote = Some(look_no);
        }
    }
    outcome
}

fn normal_mixture(
    config: &SimConfig,
    metric: Metric,
    base: &ArmModel,
    increments: &[(ArmCounts, ArmCounts)],
) -> JudgeOutcome {
    // tau^2 tuned to the variance of the difference expected at the planned
    // end of the step (a design choice made before seeing data).
    let (p, trials_per_request) = metric.design(base);
    let n_total = config.requests_per_look * config.looks as f64 * trials_per_request;
    let (n_c, n_b) = (n_total * config.weight, n_total * (1.0 - config.weight));
    let v_target = p * (1.0 - p) * (1.0 / n_c + 1.0 / n_b);
    let mut seq = ProportionDifferenceSequence::new(MixtureConfig {
        tau2: tuned_tau2(v_target, config.alpha).expect("valid tau2"),
        alpha: config.alpha,
        theta0: 0.0,
        min_n_per_arm: config.min_n_per_arm,
    })
    .expect("valid mixture config");
    let sign = metric.harm_sign();
    let mut outcome = JudgeOutcome::default();
    for (t, (c, b)) in increments.iter().enumerate() {
        let look_no = t as u32 + 1;
        let look = seq
            .observe(metric.proportion(c), metric.proportion(b))
            .expect("valid increments");
        let Some(est) = look.outcome.estimate() else {
            continue;
        };
        // The running CS on the harm scale (harm = sign * (canary - baseline)).
        let (a, z) = (sign * est.cs_running.lower, sign * est.cs_running.upper);
        let (harm_lower, harm_upper) = (a.min(z), a.max(z));
        if harm_lower > 0.0 {
            outcome.first_abort = Some(look_no);
            break;
        }
        if outcome.first_promote.is_none()
            && t + 1 >= config.min_looks
            && harm_upper < metric.margin()
        {
            outcome.first_promote = Some(look_no);
        }
    }
    outcome
}

/// Kayenta's classifier and the decision rule at every look. Returns the
/// outcome when every look is judged, and when looks with fewer than
/// `kayenta_min_points` points per arm are skipped (the same classifications,
/// so computed once).
fn kayenta(config: &SimConfig, metric: Metric, traffic: &Traffic) -> (JudgeOutcome, JudgeOutcome) {
    let (canary, baseline) = traffic.rate_points(|a| metric.point(a));
    let settings = MetricSettings {
        direction: metric.kayenta_direction(),
        critical: true, // "abort at the first High"
        ..MetricSettings::default()
    };
    let policy_at = |min_duration_met| DecisionPolicy {
        thresholds: ScoreThresholds {
            pass: 75.0,
            marginal: 50.0,
        },
        group_weights: BTreeMap::from([("sim".to_string(), 100.0)]),
        min_duration_met,
        step_budget: None,
        step_minimum: None,
    };
    let per_look = traffic.params.substeps_per_look;
    let mut every = JudgeOutcome::default();
    let mut guarded = JudgeOutcome::default();
    for t in 0..config.looks {
        if every.first_abort.is_some() && guarded.first_abort.is_some() {
            break;
        }
        let k = (t + 1) * per_look;
        let cls = classify(&settings, &baseline[..k], &canary[..k]);
        let metric_outcome = MetricOutcome {
            scored: ScoredMetric {
                name: metric.name().to_string(),
                label: cls.label,
                critical: cls.critical,
                muted: false,
                groups: vec!["sim".to_string()],
                reason: cls.reason,
            },
            enough_data: k >= config.kayenta_min_points,
        };
        let decision = decide(&[metric_outcome], &policy_at(t + 1 >= config.min_looks));
        let look_no = t as u32 + 1;
        let record = |o: &mut JudgeOutcome| match decision.action {
            Action::Abort if o.first_abort.is_none() => o.first_abort = Some(look_no),
            Action::Promote if o.first_abort.is_none() && o.first_promote.is_none() => {
                o.first_promote = Some(look_no)
            }
            _ => {}
        };
        record(&mut every);
        if k >= config.kayenta_min_points {
            record(&mut guarded);
        }
    }
    (every, guarded)
}

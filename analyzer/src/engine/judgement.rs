//! A look's judgement: every metric judged ([`judge_metric`]), then the
//! decision drawn from the verdicts ([`decide`]).
//!
//! The one place where judging and deciding are composed. The engine's
//! looks, `verdict judge` and `verdict simulate` all call [`judge_look`],
//! so what the daemon answers, what the CLI prints and what the simulation
//! measures cannot drift apart.

use super::fetch::{ArmData, FetchError};
use super::judge::{judge_metric, JudgeContext, MetricVerdict};
use super::sequential::SequentialStates;
use crate::config::analysis::{Analysis, JudgeKind};
use verdict_judges::decision::{decide, Action, Decision, DecisionPolicy};

/// One metric's arms as fetched: canary, then baseline.
pub type FetchedArms = (
    Result<Option<ArmData>, FetchError>,
    Result<Option<ArmData>, FetchError>,
);

/// Every metric's verdict, in the analysis's order, and the decision.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub verdicts: Vec<MetricVerdict>,
    pub decision: Decision,
}

/// Judges each metric of `analysis` on its arms (`fetched`, in the
/// analysis's order), carrying the sequential judges' state in
/// `sequential`, and decides under `policy`.
///
/// A promote of an analysis with request-level (sequential) metrics but no
/// weight in `ctx` says that the traffic split was not checked: never a
/// silent pass.
pub fn judge_look(
    analysis: &Analysis,
    ctx: &JudgeContext,
    fetched: impl IntoIterator<Item = FetchedArms>,
    sequential: &mut SequentialStates,
    policy: &DecisionPolicy,
) -> Judgement {
    let verdicts: Vec<MetricVerdict> = analysis
        .metrics
        .iter()
        .zip(fetched)
        .map(|(metric, (canary, baseline))| {
            let state = sequential.entry(metric.config.name.clone()).or_default();
            judge_metric(metric, ctx, canary, baseline, state)
        })
        .collect();
    let outcomes: Vec<_> = verdicts.iter().map(MetricVerdict::outcome).collect();
    let mut decision = decide(&outcomes, policy);
    if decision.action == Action::Promote
        && ctx.weight.is_none()
        && analysis
            .metrics
            .iter()
            .any(|m| m.judge == JudgeKind::Sequential)
    {
        decision.reasons.push(
            "the traffic split was not checked (no weight: give the analysis `steps` or the \
             webhook `stepWeights`; the request-level tests do not need one)"
                .into(),
        );
    }
    Judgement { verdicts, decision }
}

//! From metric verdicts to promote / continue / abort.
//!
//! The score is Kayenta's ([`crate::kayenta::scorer`]): per-group pass
//! percentages, weighted. On top of it, the rules a rollout gate needs,
//! applied in this order:
//!
//! 1. **abort** when a critical metric regressed (High or Low): it aborts alone;
//! 2. **inconclusive** when any metric could not be judged (query error,
//!    broken data): an error is never a promote and never a silent pass;
//! 3. **abort** (fail fast) when no further data can save the step: the
//!    score it would have if every metric still short of data passed (its
//!    *ceiling*) is below `marginal`. With enough data everywhere the
//!    ceiling is the score itself;
//! 4. **promote** when the score reaches `pass`, every metric has enough
//!    data (no "no data" anywhere), the run has lasted its minimum duration
//!    and the current rollout step its own minimum ([`StepMinimum`]): the
//!    evidence is cumulative, so without the step's minimum a step whose
//!    new weight has not reached a single data point yet would pass on the
//!    earlier steps' data alone;
//! 5. **continue** otherwise: not enough evidence yet, either way. When a
//!    metric is shown regressed but the rule still waits, the first reason
//!    says so and what the score can still reach;
//! 6. but when the rollout step's time budget has run out and the look would
//!    still continue, the configured [`UndecidedAction`] instead (abort, or
//!    inconclusive to hand the step to a human): a step never waits forever,
//!    and running out of time is never a promote.
//!
//! Muted metrics are reported but take no part. A run with no unmuted
//! metric is inconclusive.

use crate::kayenta::classifier::Label;
use crate::kayenta::scorer::{
    score, GroupScore, ScoreClassification, ScoreThresholds, ScoredMetric,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What a rollout controller should do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The evidence supports moving on (next step, or full promotion).
    Promote,
    /// Not enough evidence yet; keep the current step and look again.
    Continue,
    /// A regression is shown: roll back.
    Abort,
    /// The analysis could not be done (errors); hold, and tell a human.
    Inconclusive,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Promote => "promote",
            Action::Continue => "continue",
            Action::Abort => "abort",
            Action::Inconclusive => "inconclusive",
        }
    }
}

/// One metric's verdict as the decision needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricOutcome {
    pub scored: ScoredMetric,
    /// Whether the metric's minimum data (points or requests per arm) is
    /// met, so its verdict may count toward promote or abort.
    pub enough_data: bool,
}

/// The run-level settings of a decision.
#[derive(Debug, Clone, PartialEq)]
pub struct DecisionPolicy {
    pub thresholds: ScoreThresholds,
    pub group_weights: BTreeMap<String, f64>,
    /// Whether the run has lasted its configured minimum duration.
    pub min_duration_met: bool,
    /// The current step's time budget, when one is configured.
    pub step_budget: Option<StepBudget>,
    /// How long the current step has lasted against its minimum, when the
    /// look belongs to a known step.
    pub step_minimum: Option<StepMinimum>,
}

/// How long the current rollout step has lasted against the least time in
/// which its traffic can show in the data (a step begins when the weight
/// changes, so its first look has seen none of it).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepMinimum {
    /// Seconds since the step began.
    pub elapsed_seconds: f64,
    pub minimum_seconds: f64,
}

impl StepMinimum {
    pub fn met(&self) -> bool {
        self.elapsed_seconds >= self.minimum_seconds
    }
}

/// What a step whose time budget ran out without a decision becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UndecidedAction {
    /// Roll back: the canary could not show it is good enough in time.
    Abort,
    /// Hold and tell a human (Argo pauses; Flagger counts a failed check).
    Inconclusive,
}

impl UndecidedAction {
    fn action(self) -> Action {
        match self {
            UndecidedAction::Abort => Action::Abort,
            UndecidedAction::Inconclusive => Action::Inconclusive,
        }
    }
}

/// How long the current rollout step has lasted against its budget.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepBudget {
    /// Seconds since the step began (its first look at the current weight).
    pub elapsed_seconds: f64,
    pub budget_seconds: f64,
    pub on_undecided: UndecidedAction,
}

impl StepBudget {
    pub fn exhausted(&self) -> bool {
        self.elapsed_seconds >= self.budget_seconds
    }
}

/// A decision with its score and the reasons behind it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub action: Action,
    /// Kayenta-style score, 0-100.
    pub score: f64,
    pub classification: ScoreClassification,
    /// Most important first.
    pub reasons: Vec<String>,
    pub groups: Vec<GroupScore>,
}

impl Decision {
    /// A decision for a look that could not be taken.
    pub fn inconclusive(reason: impl Into<String>) -> Self {
        Decision {
            action: Action::Inconclusive,
            score: 0.0,
            classification: ScoreClassification::Fail,
            reasons: vec![reason.into()],
            groups: Vec::new(),
        }
    }

    /// One line: the score and the reasons.
    pub fn summary(&self) -> String {
        let mut s = format!("score {:.2}", self.score);
        for r in &self.reasons {
            s.push_str("; ");
            s.push_str(r);
        }
        s
    }
}

fn describe(m: &ScoredMetric) -> String {
    match &m.reason {
        Some(r) if !r.is_empty() => format!("{} is {}: {r}", m.name, m.label.verdict_name()),
        _ => format!("{} is {}", m.name, m.label.verdict_name()),
    }
}

/// Applies the rules of the module documentation.
pub fn decide(outcomes: &[MetricOutcome], policy: &DecisionPolicy) -> Decision {
    let scored: Vec<ScoredMetric> = outcomes.iter().map(|o| o.scored.clone()).collect();
    let result = score(&scored, &policy.group_weights, policy.thresholds);
    let active: Vec<&MetricOutcome> = outcomes.iter().filter(|o| !o.scored.muted).collect();
    let make = |action: Action, reasons: Vec<String>| Decision {
        action,
        score: result.score,
        classification: result.classification,
        reasons,
        groups: result.group_scores.clone(),
    };
    if active.is_empty() {
        return make(
            Action::Inconclusive,
            vec!["no unmuted metric to judge".into()],
        );
    }
    let regressed = |o: &&&MetricOutcome| matches!(o.scored.label, Label::High | Label::Low);

    let critical: Vec<String> = active
        .iter()
        .filter(|o| o.scored.critical)
        .filter(regressed)
        .map(|o| format!("critical metric {}", describe(&o.scored)))
        .collect();
    if !critical.is_empty() {
        return make(Action::Abort, critical);
    }

    let errors: Vec<String> = active
        .iter()
        .filter(|o| o.scored.label == Label::Error)
        .map(|o| describe(&o.scored))
        .collect();
    if !errors.is_empty() {
        return make(Action::Inconclusive, errors);
    }

    let all_enough = active.iter().all(|o| o.enough_data);
    let mut reasons: Vec<String> = active
        .iter()
        .filter(regressed)
        .map(|o| describe(&o.scored))
        .collect();
    let ceiling = ceiling(outcomes, policy);
    if ceiling < policy.thresholds.marginal {
        let why = if all_enough {
            format!(
                "score {:.2} is below marginal {}",
                result.score, policy.thresholds.marginal
            )
        } else {
            format!(
                "score {:.2} is below marginal {} and cannot recover: at most {:.2} even if every \
                 metric still short of data passed",
                result.score, policy.thresholds.marginal, ceiling
            )
        };
        reasons.insert(0, why);
        return make(Action::Abort, reasons);
    }
    let shown: Vec<&str> = active
        .iter()
        .filter(regressed)
        .map(|o| o.scored.name.as_str())
        .collect();

    let no_data: Vec<&&MetricOutcome> = active
        .iter()
        .filter(|o| matches!(o.scored.label, Label::Nodata | Label::NodataFailMetric))
        .collect();
    if result.score >= policy.thresholds.pass && all_enough && no_data.is_empty() {
        let step_short = policy.step_minimum.filter(|s| !s.met());
        if policy.min_duration_met && step_short.is_none() {
            return make(
                Action::Promote,
                vec![format!(
                    "score {:.2} reaches pass {} with enough data for every metric",
                    result.score, policy.thresholds.pass
                )],
            );
        }
        if !policy.min_duration_met {
            reasons.push("minimum analysis duration not reached yet".into());
        }
        if let Some(step) = step_short {
            reasons.push(format!(
                "the current step has lasted {:.0} s of its minimum {:.0} s",
                step.elapsed_seconds, step.minimum_seconds
            ));
        }
    }
    if no_data.len() == active.len() {
        reasons.push("no data for any metric yet".into());
    } else {
        reasons.extend(no_data.iter().map(|o| describe(&o.scored)));
    }
    reasons.extend(
        active
            .iter()
            .filter(|o| {
                !o.enough_data && !matches!(o.scored.label, Label::Nodata | Label::NodataFailMetric)
            })
            .map(|o| format!("{} needs more data", o.scored.name)),
    );
    if reasons.is_empty() {
        reasons.push(format!(
            "score {:.2} is between marginal {} and pass {}",
            result.score, policy.thresholds.marginal, policy.thresholds.pass
        ));
    }
    if !shown.is_empty() {
        // Said first: a regression is the news, whatever the rule waits on.
        reasons.insert(
            0,
            format!(
                "regression shown in {}; not an abort yet: the score can still reach {:.2} \
                 (marginal {}, pass {})",
                shown.join(", "),
                ceiling,
                policy.thresholds.marginal,
                policy.thresholds.pass
            ),
        );
    }
    match policy.step_budget.filter(StepBudget::exhausted) {
        Some(budget) => {
            reasons.insert(
                0,
                format!(
                    "the step's time budget of {:.0} s ran out undecided after {:.0} s ({} by configuration)",
                    budget.budget_seconds,
                    budget.elapsed_seconds,
                    budget.on_undecided.action().as_str()
                ),
            );
            make(budget.on_undecided.action(), reasons)
        }
        None => make(Action::Continue, reasons),
    }
}

/// The score the look would have if every metric still short of data
/// (its minimum not met, or no data yet) turned out a pass: the most
/// further data can bring. Metrics with enough data keep their label.
fn ceiling(outcomes: &[MetricOutcome], policy: &DecisionPolicy) -> f64 {
    let hoped: Vec<ScoredMetric> = outcomes
        .iter()
        .map(|o| {
            let mut m = o.scored.clone();
            if !o.enough_data && m.label != Label::Error {
                m.label = Label::Pass;
            }
            m
        })
        .collect();
    score(&hoped, &policy.group_weights, policy.thresholds).score
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(name: &str, label: Label, critical: bool, enough: bool) -> MetricOutcome {
        MetricOutcome {
            scored: ScoredMetric {
                name: name.into(),
                label,
                critical,
                muted: false,
                groups: vec!["g".into()],
                reason: None,
            },
            enough_data: enough,
        }
    }

    fn policy() -> DecisionPolicy {
        DecisionPolicy {
            thresholds: ScoreThresholds {
                pass: 95.0,
                marginal: 75.0,
            },
            group_weights: BTreeMap::new(),
            min_duration_met: true,
            step_budget: None,
            step_minimum: None,
        }
    }

    #[test]
    fn all_pass_with_enough_data_promotes() {
        let d = decide(
            &[
                metric("a", Label::Pass, false, true),
                metric("b", Label::Pass, true, true),
            ],
            &policy(),
        );
        assert_eq!(d.action, Action::Promote);
        assert_eq!(d.score, 100.0);
    }

    #[test]
    fn a_critical_regression_aborts_even_without_enough_data_elsewhere() {
        let d = decide(
            &[
                metric("lat", Label::High, true, true),
                metric("b", Label::Pass, false, false),
            ],
            &policy(),
        );
        assert_eq!(d.action, Action::Abort);
        assert!(
            d.reasons[0].contains("critical metric lat is high"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn errors_are_inconclusive_never_promote() {
        let d = decide(
            &[
                metric("a", Label::Pass, false, true),
                metric("b", Label::Error, false, true),
            ],
            &policy(),
        );
        assert_eq!(d.action, Action::Inconclusive);
    }

    #[test]
    fn missing_data_is_never_a_promote() {
        let d = decide(
            &[
                metric("a", Label::Pass, false, true),
                metric("b", Label::Nodata, false, false),
            ],
            &policy(),
        );
        assert_eq!(d.action, Action::Continue);
        let d = decide(&[metric("a", Label::Nodata, true, false)], &policy());
        assert_eq!(d.action, Action::Continue);
        assert!(d.summary().contains("no data"));
    }

    #[test]
    fn a_low_score_aborts_as_soon_as_no_further_data_can_save_it() {
        let m = [
            metric("a", Label::High, false, true),
            metric("b", Label::Pass, false, true),
        ];
        assert_eq!(decide(&m, &policy()).action, Action::Abort);
        // b is short of data, but even passing it leaves the score at 50.
        let m = [
            metric("a", Label::High, false, true),
            metric("b", Label::Pass, false, false),
        ];
        let d = decide(&m, &policy());
        assert_eq!(d.action, Action::Abort);
        assert!(
            d.reasons[0].contains("cannot recover: at most 50.00"),
            "{:?}",
            d.reasons
        );
        // Three metrics still short of data could bring it to 75: wait, and
        // say that a regression is shown.
        let m = [
            metric("a", Label::High, false, true),
            metric("b", Label::Pass, false, false),
            metric("c", Label::Nodata, false, false),
            metric("d", Label::Pass, false, false),
        ];
        let d = decide(&m, &policy());
        assert_eq!(d.action, Action::Continue);
        assert!(
            d.reasons[0].starts_with(
                "regression shown in a; not an abort yet: the score can still reach 75.00"
            ),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn a_regression_short_of_data_does_not_abort_alone() {
        // A High that more data may overturn counts as hoped-for in the ceiling.
        let m = [
            metric("a", Label::High, false, false),
            metric("b", Label::Pass, false, true),
        ];
        let d = decide(&m, &policy());
        assert_eq!(d.action, Action::Continue);
        assert!(
            d.reasons[0].starts_with("regression shown in a"),
            "{:?}",
            d.reasons
        );
    }

    #[test]
    fn insufficient_data_or_duration_continues() {
        let d = decide(&[metric("a", Label::Pass, false, false)], &policy());
        assert_eq!(d.action, Action::Continue);
        assert!(d.summary().contains("a needs more data"));
        let mut p = policy();
        p.min_duration_met = false;
        let d = decide(&[metric("a", Label::Pass, false, true)], &p);
        assert_eq!(d.action, Action::Continue);
    }

    #[test]
    fn a_step_shorter_than_its_minimum_continues_whatever_the_evidence() {
        let good = [metric("a", Label::Pass, false, true)];
        let mut p = policy();
        p.step_minimum = Some(StepMinimum {
            elapsed_seconds: 14.0,
            minimum_seconds: 30.0,
        });
        let d = decide(&good, &p);
        assert_eq!(d.action, Action::Continue);
        assert!(
            d.summary()
                .contains("the current step has lasted 14 s of its minimum 30 s"),
            "{}",
            d.summary()
        );
        // Met exactly at the minimum.
        p.step_minimum.as_mut().unwrap().elapsed_seconds = 30.0;
        assert_eq!(decide(&good, &p).action, Action::Promote);
        // A short step never delays an abort.
        p.step_minimum.as_mut().unwrap().elapsed_seconds = 0.0;
        let bad = [metric("a", Label::High, true, false)];
        assert_eq!(decide(&bad, &p).action, Action::Abort);
        // Nor does it hide a missing duration: both are said.
        p.min_duration_met = false;
        let d = decide(&good, &p);
        assert_eq!(d.action, Action::Continue);
        assert!(d.summary().contains("minimum analysis duration"));
        assert!(d.summary().contains("the current step has lasted 0 s"));
    }

    #[test]
    fn an_exhausted_step_budget_ends_an_undecided_step_as_configured() {
        let undecided = [metric("a", Label::Pass, false, false)];
        for (on_undecided, action) in [
            (UndecidedAction::Abort, Action::Abort),
            (UndecidedAction::Inconclusive, Action::Inconclusive),
        ] {
            let mut p = policy();
            p.step_budget = Some(StepBudget {
                elapsed_seconds: 600.0,
                budget_seconds: 600.0,
                on_undecided,
            });
            let d = decide(&undecided, &p);
            assert_eq!(d.action, action);
            assert!(
                d.reasons[0].contains("time budget of 600 s"),
                "{:?}",
                d.reasons
            );
            // Within the budget the step simply continues.
            p.step_budget.as_mut().unwrap().elapsed_seconds = 599.0;
            assert_eq!(decide(&undecided, &p).action, Action::Continue);
        }
    }

    #[test]
    fn an_exhausted_step_budget_never_overrides_a_decision() {
        let mut p = policy();
        p.step_budget = Some(StepBudget {
            elapsed_seconds: 1e6,
            budget_seconds: 1.0,
            on_undecided: UndecidedAction::Inconclusive,
        });
        let promote = [metric("a", Label::Pass, false, true)];
        assert_eq!(decide(&promote, &p).action, Action::Promote);
        let abort = [metric("a", Label::High, true, true)];
        assert_eq!(decide(&abort, &p).action, Action::Abort);
        // Waiting for the minimum duration is undecided too: the budget ends it.
        p.min_duration_met = false;
        p.step_budget.as_mut().unwrap().on_undecided = UndecidedAction::Abort;
        assert_eq!(decide(&promote, &p).action, Action::Abort);
    }

    #[test]
    fn all_muted_is_inconclusive() {
        let mut m = metric("a", Label::Pass, false, true);
        m.scored.muted = true;
        assert_eq!(decide(&[m], &policy()).action, Action::Inconclusive);
    }
}

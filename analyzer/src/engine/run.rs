//! Runs and looks: the engine's memory of an analysis.
//!
//! A run is one rollout of one revision, keyed the way its controller names
//! it (Flagger: namespace, name, checksum; Argo: an explicit run id). Each
//! webhook call is a look: one window, one judgement of every metric, one
//! decision. Every look is kept in the run store, where a run is explained
//! afterwards; in memory a run holds only what the next look needs: its
//! latest look (a duplicate delivery gets the same answer) and where its
//! current rollout step began.

use super::judge::MetricVerdict;
use super::judge::StepClock;
use super::sequential::SequentialStates;
use crate::config::analysis::AnalysisConfig;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use verdict_judges::decision::Decision;
use verdict_judges::kayenta::classifier::Label;

/// Who asked, and for which rollout.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "controller", rename_all = "kebab-case")]
pub enum RunKey {
    Flagger {
        namespace: String,
        name: String,
        checksum: String,
    },
    Argo {
        run: String,
    },
    /// Offline: `verdict replay` and `verdict judge`.
    Replay {
        name: String,
    },
    /// One execution of the Kayenta-compatible API (`POST /canary`).
    Kayenta {
        execution: String,
    },
}

impl std::fmt::Display for RunKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RunKey::Flagger {
                namespace,
                name,
                checksum,
            } => write!(f, "flagger/{namespace}/{name}/{checksum}"),
            RunKey::Argo { run } => write!(f, "argo/{run}"),
            RunKey::Replay { name } => write!(f, "replay/{name}"),
            RunKey::Kayenta { execution } => write!(f, "kayenta/{execution}"),
        }
    }
}

/// The analysis window of a look, in unix seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LookWindow {
    pub start: f64,
    pub end: f64,
    pub step_seconds: f64,
}

impl LookWindow {
    /// The window of a look over `window`.
    pub fn of(window: &crate::source::Window) -> Self {
        LookWindow {
            start: window.start,
            end: window.end,
            step_seconds: window.step.as_secs_f64(),
        }
    }
}

/// One judgement of every metric and the decision drawn from it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Look {
    /// 1-based position in the run.
    pub number: usize,
    /// When the look was taken (unix seconds).
    pub time: f64,
    pub window: LookWindow,
    /// What the canary was compared against (X-03: say which baseline).
    pub baseline: String,
    /// Canary traffic weight when known (percent): sent by the controller,
    /// or the schedule's weight of the step.
    pub weight: Option<f64>,
    /// The rollout step the look belongs to, counted by the openings of the
    /// traffic gate (1 = the first weight); absent while the gate has never
    /// opened (a controller that does not call it, or before the first
    /// increase).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<usize>,
    pub metrics: Vec<MetricVerdict>,
    pub decision: Decision,
}

impl Look {
    /// Whether the canary has had no traffic in the look's whole window
    /// while the baseline has: no metric has canary data (every one is "no
    /// data"), and some metric has baseline data, so the queries work. The
    /// window reaches back to the run's start, so this holds only before
    /// the canary's first request.
    pub fn canary_idle(&self) -> bool {
        !self.metrics.is_empty()
            && self.metrics.iter().all(|m| {
                m.canary.is_none()
                    && matches!(m.classification, Label::Nodata | Label::NodataFailMetric)
            })
            && self.metrics.iter().any(|m| m.baseline.is_some())
    }
}

/// An opening of the traffic gate (Flagger's `confirm-traffic-increase`
/// answered 200): the controller raises the weight, and step `step`
/// begins. Recorded in the run store before it is answered, so a restarted
/// daemon or another replica counts the same steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StepOpening {
    /// The step that begins (1 at the first increase from weight 0).
    pub step: usize,
    /// When the gate opened (unix seconds).
    pub at: f64,
    /// The look whose decision opened it; a look opens the gate once.
    pub after_look: usize,
}

/// One rollout under analysis.
#[derive(Debug, Clone)]
pub struct Run {
    /// The run's id in the run store, once recorded there.
    pub id: Option<i64>,
    pub key: RunKey,
    pub analysis: String,
    /// Start of the analysis window: the first look minus the lookback.
    pub window_start: f64,
    pub first_look: f64,
    /// Variables the queries were rendered with (name, namespace, metadata).
    pub vars: BTreeMap<String, String>,
    /// The latest committed look.
    last_look: Option<Arc<Look>>,
    /// The current rollout step: the weight of the latest unbroken series of
    /// looks at one weight, and the time of its first look.
    step: Option<(Option<f64>, f64)>,
    /// The latest opening of the traffic gate, when the controller calls it.
    pub opened: Option<StepOpening>,
    /// Set once the controller reported the rollout finished.
    pub closed: Option<String>,
    /// Sequential judges' state, by metric name.
    pub sequential: SequentialStates,
}

impl Run {
    pub fn new(
        key: RunKey,
        analysis: &str,
        now: f64,
        lookback_seconds: f64,
        vars: BTreeMap<String, String>,
    ) -> Self {
        Run {
            id: None,
            key,
            analysis: analysis.to_string(),
            window_start: now - lookback_seconds,
            first_look: now,
            vars,
            last_look: None,
            step: None,
            opened: None,
            closed: None,
            sequential: BTreeMap::new(),
        }
    }

    pub fn last_look(&self) -> Option<&Arc<Look>> {
        self.last_look.as_ref()
    }

    /// Makes `look` the run's latest look, following the rollout step.
    pub fn push_look(&mut self, look: Arc<Look>) {
        match self.step {
            Some((weight, _)) if weight == look.weight => {}
            _ => self.step = Some((look.weight, look.time)),
        }
        self.last_look = Some(look);
    }

    /// Replaces the looks with `looks` (oldest first, as read back from the
    /// store): enough of them to reach the start of the current step.
    pub fn resume_looks(&mut self, looks: Vec<Look>) {
        self.last_look = None;
        self.step = None;
        for look in looks {
            self.push_look(Arc::new(look));
        }
    }

    /// The current step as the traffic gate counts it: 0 before its first
    /// opening (or when the controller never calls it).
    pub fn step(&self) -> usize {
        self.opened.map_or(0, |o| o.step)
    }

    /// Whether the run has lasted the analysis's minimum duration at `now`.
    pub fn min_duration_met(&self, cfg: &AnalysisConfig, now: f64) -> bool {
        now - self.first_look >= cfg.min_data.duration.as_secs_f64()
    }

    /// Where a look at `weight` taken at `now` stands in its step.
    pub fn step_clock(&self, weight: Option<f64>, now: f64) -> StepClock {
        let started = self.step_started(weight, now);
        StepClock {
            elapsed_seconds: now - started,
            // An opening of the gate begins a step even at the run's first
            // look (its weight goes up after it).
            later_step: self.opened.is_some() || started > self.first_look,
        }
    }

    /// When the current rollout step began, for a look at `weight` taken at
    /// `now`: the latest opening of the traffic gate when there was one (the
    /// controller raised the weight then); otherwise the first of the latest
    /// unbroken series of looks at this weight, or `now` when the weight
    /// just changed. Without either the run is one step, begun at its first
    /// look.
    pub fn step_started(&self, weight: Option<f64>, now: f64) -> f64 {
        if let Some(opened) = self.opened {
            return opened.at;
        }
        if weight.is_none() {
            return self.first_look;
        }
        match self.step {
            Some((step_weight, started)) if step_weight == weight => started,
            _ => now,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(number: usize, time: f64, weight: Option<f64>) -> Arc<Look> {
        Arc::new(Look {
            number,
            time,
            window: LookWindow {
                start: 0.0,
                end: time,
                step_seconds: 15.0,
            },
            baseline: "same window".into(),
            weight,
            step: None,
            metrics: Vec::new(),
            decision: Decision::inconclusive("test"),
        })
    }

    fn run() -> Run {
        Run::new(
            RunKey::Replay { name: "r".into() },
            "a",
            100.0,
            60.0,
            BTreeMap::new(),
        )
    }

    #[test]
    fn the_step_begins_at_the_first_look_of_the_latest_weight() {
        let mut r = run();
        // No look yet: a step begins now.
        assert_eq!(r.step_started(Some(5.0), 100.0), 100.0);
        r.push_look(look(1, 100.0, Some(5.0)));
        r.push_look(look(2, 160.0, Some(5.0)));
        assert_eq!(r.step_started(Some(5.0), 220.0), 100.0);
        // A new weight: its step begins with this look.
        assert_eq!(r.step_started(Some(25.0), 220.0), 220.0);
        r.push_look(look(3, 220.0, Some(25.0)));
        r.push_look(look(4, 280.0, Some(25.0)));
        assert_eq!(r.step_started(Some(25.0), 340.0), 220.0);
        // Back to an earlier weight: a new step, not the old one.
        r.push_look(look(5, 340.0, Some(5.0)));
        assert_eq!(r.step_started(Some(5.0), 400.0), 340.0);
        // Without weights the run is one step.
        assert_eq!(r.step_started(None, 400.0), 100.0);
        assert_eq!(r.last_look().unwrap().number, 5);
    }

    #[test]
    fn an_opening_of_the_gate_begins_the_step_whatever_the_weights() {
        let mut r = run();
        assert_eq!(r.step(), 0);
        r.push_look(look(1, 100.0, None));
        assert_eq!(r.step_started(None, 115.0), 100.0);
        r.opened = Some(StepOpening {
            step: 1,
            at: 101.0,
            after_look: 1,
        });
        assert_eq!(r.step(), 1);
        // The step's looks carry its scheduled weight, or none: the step
        // began at the opening either way, not at its first look.
        r.push_look(look(2, 116.0, Some(5.0)));
        assert_eq!(r.step_started(Some(5.0), 131.0), 101.0);
        assert_eq!(r.step_started(None, 131.0), 101.0);
    }

    /// A look whose metrics have these (classification, canary, baseline).
    fn look_of(metrics: &[(&str, bool, bool)]) -> Look {
        let arm = |present: bool| {
            present.then(
                || serde_json::json!({"kind": "counts", "errors": 0, "total": 9, "rate": 0.0}),
            )
        };
        let metrics: Vec<serde_json::Value> = metrics
            .iter()
            .map(|&(label, canary, baseline)| {
                serde_json::json!({"name": "m", "group": "g", "judge": "sequential",
                    "classification": label, "critical": false, "muted": false,
                    "enough_data": false, "reason": "", "canary": arm(canary),
                    "baseline": arm(baseline), "statistics": null})
            })
            .collect();
        let mut l = Look::clone(&look(1, 100.0, None));
        l.metrics = crate::json::from_str(&serde_json::to_string(&metrics).unwrap()).unwrap();
        l
    }

    #[test]
    fn the_canary_is_idle_only_without_canary_data_and_with_baseline_data() {
        // Flagger's first confirm-traffic-increase: no canary request yet.
        assert!(look_of(&[("nodata", false, true), ("nodata", false, false)]).canary_idle());
        // Queries that find nothing for either arm prove nothing: not idle.
        assert!(!look_of(&[("nodata", false, false)]).canary_idle());
        // Any canary data, or a metric that could not be judged: not idle.
        assert!(!look_of(&[("nodata", false, true), ("pass", true, true)]).canary_idle());
        assert!(!look_of(&[("nodata", false, true), ("error", false, false)]).canary_idle());
        assert!(!look_of(&[]).canary_idle());
    }

    #[test]
    fn resumed_looks_give_the_same_step_as_the_looks_taken() {
        let looks: Vec<Arc<Look>> = [(5.0, 100.0), (25.0, 160.0), (25.0, 220.0), (25.0, 280.0)]
            .iter()
            .enumerate()
            .map(|(i, &(w, t))| look(i + 1, t, Some(w)))
            .collect();
        let mut taken = run();
        for l in &looks {
            taken.push_look(l.clone());
        }
        let mut resumed = run();
        resumed.resume_looks(looks.iter().map(|l| Look::clone(l)).collect());
        for (weight, now) in [(Some(25.0), 340.0), (Some(50.0), 340.0), (None, 340.0)] {
            assert_eq!(
                resumed.step_started(weight, now),
                taken.step_started(weight, now)
            );
        }
        assert_eq!(resumed.step_started(Some(25.0), 340.0), 160.0);
        assert_eq!(resumed.last_look().unwrap().number, 4);
        resumed.resume_looks(Vec::new());
        assert!(resumed.last_look().is_none());
    }
}

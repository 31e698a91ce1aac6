//! Runs and looks: the engine's memory of an analysis.
//!
//! A run is one rollout of one revision, keyed the way its controller names
//! it (Flagger: namespace, name, checksum; Argo: an explicit run id). Each
//! webhook call is a look: one window, one judgement of every metric, one
//! decision. Looks are kept so duplicate deliveries get the same answer and
//! so a run can be explained afterwards.

use super::judge::MetricVerdict;
use super::sequential::SequentialState;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use verdict_judges::decision::Decision;

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
    /// Canary traffic weight when known (percent).
    pub weight: Option<f64>,
    pub metrics: Vec<MetricVerdict>,
    pub decision: Decision,
}

/// One rollout under analysis.
#[derive(Debug, Clone, Serialize)]
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
    pub looks: Vec<Look>,
    /// Set once the controller reported the rollout finished.
    pub closed: Option<String>,
    /// Sequential judges' state, by metric name.
    pub sequential: BTreeMap<String, Option<SequentialState>>,
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
            looks: Vec::new(),
            closed: None,
            sequential: BTreeMap::new(),
        }
    }

    pub fn last_look(&self) -> Option<&Look> {
        self.looks.last()
    }

    /// When the current rollout step began, for a look at `weight` taken at
    /// `now`: the first of the latest unbroken series of looks at this
    /// weight, or `now` when the weight just changed. Without a weight the
    /// run is one step, begun at its first look.
    pub fn step_started(&self, weight: Option<f64>, now: f64) -> f64 {
        if weight.is_none() {
            return self.first_look;
        }
        self.looks
            .iter()
            .rev()
            .take_while(|l| l.weight == weight)
            .last()
            .map_or(now, |l| l.time)
    }
}

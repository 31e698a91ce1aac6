//! Replay: walk a recording exactly as the daemon would have, one look per
//! interval, through the daemon's own code path.
//!
//! The recording's series answer the *rendered* queries of the analysis
//! ([`source::plan`]), and every look is an [`Engine::look`] with the
//! replay clock as `now`, so fetching, increments, judges, sequential state
//! and the decision rule are the ones `verdict serve` runs; only the origin
//! of the series differs (a test drives the HTTP API over the same data,
//! held whole in a [`crate::source::memory::MemorySource`], and compares
//! every look). The replay itself does not hold the recording: it streams
//! it by time ([`stream`]), so memory is bounded by a run's window, not by
//! the recording's length.
//!
//! A recording longer than one rollout replays as consecutive rollouts: a
//! run takes one look per `interval`, with the canary weight stepping
//! through `weights` every `step_every`; it ends at promote or abort, or
//! when its weight schedule is complete, and the next run starts at its last
//! look. Each look's window is bounded by one run's length, and the source
//! finds it by binary search, so replaying a year costs linear time.
//!
//! Looks are handed to a sink as they are taken and only per-run summaries
//! are kept, so memory does not grow with the number of looks.

pub mod backtest;
pub mod source;
pub mod stream;

use crate::engine::run::{Look, RunKey};

use crate::engine::{Analyses, Engine, EngineError, LookRequest};
use crate::store::memory::MemoryStore;
use crate::telemetry::Telemetry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use stream::StreamedSource;
use verdict_judges::decision::Action;
use verdict_judges::kayenta::classifier::Label;

/// When looks happen and at which canary weight.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// Time between looks (Flagger's `analysis.interval`).
    pub interval: Duration,
    /// Canary weights (percent), one step each.
    pub weights: Vec<f64>,
    /// How long each weight is held.
    pub step_every: Duration,
}

impl Default for Schedule {
    /// One look a minute; 5 → 25 → 50 → 100 % every 5 minutes.
    fn default() -> Self {
        Schedule {
            interval: Duration::from_secs(60),
            weights: vec![5.0, 25.0, 50.0, 100.0],
            step_every: Duration::from_secs(300),
        }
    }
}

pub use crate::config::analysis::check_weights;

impl Schedule {
    /// Checks the schedule.
    pub fn check(&self) -> Result<(), String> {
        if self.interval.is_zero() {
            return Err("the interval must be positive".into());
        }
        if self.step_every.is_zero() {
            return Err("step-every must be positive".into());
        }
        check_weights(&self.weights)
    }

    /// Looks per weight step (at least one).
    fn looks_per_step(&self) -> usize {
        ((self.step_every.as_secs_f64() / self.interval.as_secs_f64()).round() as usize).max(1)
    }

    /// Looks in one complete run.
    pub fn looks_per_run(&self) -> usize {
        self.looks_per_step() * self.weights.len()
    }

    /// The weight of a run's look `index` (0-based).
    pub fn weight(&self, index: usize) -> f64 {
        self.weights[(index / self.looks_per_step()).min(self.weights.len() - 1)]
    }
}

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplaySpec {
    /// Names the runs (`replay/<name>#<n>`).
    pub name: String,
    pub analysis: String,
    pub vars: BTreeMap<String, String>,
    pub schedule: Schedule,
    /// The recording's first and last sample time.
    pub start: f64,
    pub end: f64,
    /// Stop after this many rollouts (`None`: until the data ends). A
    /// recording of one rollout's traffic replays best as one run: later
    /// runs would start at a weight its traffic does not follow.
    pub max_runs: Option<usize>,
}

/// How one run ended.
#[derive(Debug, Clone, Serialize)]
pub struct RunSummary {
    /// 1-based.
    pub run: usize,
    pub start: f64,
    /// Time of the last look.
    pub end: f64,
    pub looks: usize,
    /// The last look's decision.
    pub action: Action,
    /// Promote or abort reached (rather than the schedule or data running out).
    pub decided: bool,
    /// The data ended before the run's schedule did, undecided.
    pub incomplete: bool,
    /// Seconds from the run's start to its last look.
    pub time_to_decision: f64,
    /// Per metric, the first look time at which it was classified high or low.
    pub first_flagged: BTreeMap<String, f64>,
}

/// The result of a whole replay.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    pub runs: Vec<RunSummary>,
    pub looks: usize,
    /// The worst outcome over the runs (abort, inconclusive, continue,
    /// promote, in that order), ignoring a trailing incomplete run when an
    /// earlier one exists.
    pub decision: Action,
    /// The run that gave [`Self::decision`].
    pub decisive_run: usize,
    /// Seconds from that run's start to its last look.
    pub time_to_decision: f64,
}

impl ReplaySummary {
    /// The first abort at or after `from`, as (run, time).
    pub fn first_abort_from(&self, from: f64) -> Option<&RunSummary> {
        self.runs
            .iter()
            .find(|r| r.action == Action::Abort && r.end >= from)
    }

    /// Aborts before `before`.
    pub fn aborts_before(&self, before: f64) -> usize {
        self.runs
            .iter()
            .filter(|r| r.action == Action::Abort && r.end < before)
            .count()
    }
}

/// Why a replay could not run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Recording(#[from] crate::recording::RecordingError),
    #[error("{0}")]
    Engine(#[from] EngineError),
    #[error("{0}")]
    Invalid(String),
}

/// How bad an outcome is, for "the worst run".
fn severity(action: Action) -> u8 {
    match action {
        Action::Promote => 0,
        Action::Continue => 1,
        Action::Inconclusive => 2,
        Action::Abort => 3,
    }
}

/// Whether a classification flags the metric as worse.
pub fn flagged(label: Label) -> bool {
    matches!(label, Label::High | Label::Low)
}

/// What a replay runs on: the daemon's engine over the streamed
/// recording, with a memory store that keeps only the latest closed runs (a
/// year replays as tens of thousands of runs; the looks go to the sink).
pub struct Replayer {
    engine: Engine,
    source: Arc<StreamedSource>,
}

impl Replayer {
    pub fn new(analyses: Analyses, source: Arc<StreamedSource>) -> Replayer {
        let engine = Engine::new(analyses, source.clone(), Arc::new(Telemetry::new()))
            .with_store(Arc::new(MemoryStore::keeping_closed_runs(KEPT_CLOSED_RUNS)));
        Replayer { engine, source }
    }

    /// The engine the looks are taken by.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// Closed runs a replay's store keeps.
const KEPT_CLOSED_RUNS: usize = 16;

/// Replays `spec` on `replayer`, handing each look to `sink` with its run
/// number.
pub async fn replay(
    replayer: &Replayer,
    spec: &ReplaySpec,
    mut sink: impl FnMut(usize, &Look),
) -> Result<ReplaySummary, ReplayError> {
    spec.schedule.check().map_err(ReplayError::Invalid)?;
    if replayer.source.schedule() != spec.schedule {
        return Err(ReplayError::Invalid(
            "the recording was opened for another schedule than the replay's".into(),
        ));
    }
    let engine = &replayer.engine;
    let interval = spec.schedule.interval.as_secs_f64();
    let per_run = spec.schedule.looks_per_run();
    let mut runs = Vec::new();
    let mut looks = 0;
    let mut run_start = spec.start;
    while spec.max_runs.is_none_or(|max| runs.len() < max) {
        let number = runs.len() + 1;
        let key = RunKey::Replay {
            name: format!("{}#{number}", spec.name),
        };
        let mut summary = RunSummary {
            run: number,
            start: run_start,
            end: run_start,
            looks: 0,
            action: Action::Continue,
            decided: false,
            incomplete: false,
            time_to_decision: 0.0,
            first_flagged: BTreeMap::new(),
        };
        for index in 0..per_run {
            let now = run_start + (index + 1) as f64 * interval;
            if now > spec.end {
                summary.incomplete = true;
                break;
            }
            replayer.source.advance(now)?;
            let look = engine
                .look(LookRequest {
                    key: key.clone(),
                    analysis: spec.analysis.clone(),
                    vars: spec.vars.clone(),
                    now,
                    weight: Some(spec.schedule.weight(index)),
                    steps: None,
                })
                .await?;
            looks += 1;
            sink(number, &look);
            summary.looks += 1;
            summary.end = look.time;
            summary.action = look.decision.action;
            for m in &look.metrics {
                if flagged(m.classification) {
                    summary
                        .first_flagged
                        .entry(m.name.clone())
                        .or_insert(look.time);
                }
            }
            if matches!(look.decision.action, Action::Promote | Action::Abort) {
                summary.decided = true;
                break;
            }
        }
        // As Flagger's post-rollout hook: the run is over.
        engine
            .close(&spec.analysis, &key, "replayed", summary.end)
            .await;
        if summary.looks == 0 {
            break;
        }
        summary.incomplete &= !summary.decided;
        summary.time_to_decision = summary.end - summary.start;
        run_start = summary.end;
        runs.push(summary);
    }
    if runs.is_empty() {
        return Err(ReplayError::Invalid(format!(
            "the recording spans {:.0} s, shorter than one interval ({interval} s): no look to take",
            spec.end - spec.start
        )));
    }
    let candidates: Vec<&RunSummary> = match runs.split_last() {
        Some((last, earlier)) if last.incomplete && !earlier.is_empty() => earlier.iter().collect(),
        _ => runs.iter().collect(),
    };
    let decisive = candidates
        .iter()
        .copied()
        .fold(None::<&RunSummary>, |worst, r| match worst {
            Some(w) if severity(w.action) >= severity(r.action) => Some(w),
            _ => Some(r),
        })
        .expect("at least one run");
    Ok(ReplaySummary {
        decision: decisive.action,
        decisive_run: decisive.run,
        time_to_decision: decisive.time_to_decision,
        looks,
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_steps_weights() {
        let s = Schedule::default();
        assert_eq!(s.looks_per_run(), 20);
        let weights: Vec<f64> = (0..22).map(|i| s.weight(i)).collect();
        assert_eq!(weights[0], 5.0);
        assert_eq!(weights[4], 5.0);
        assert_eq!(weights[5], 25.0);
        assert_eq!(weights[19], 100.0);
        assert_eq!(weights[21], 100.0);
        let coarse = Schedule {
            interval: Duration::from_secs(600),
            ..Schedule::default()
        };
        assert_eq!(coarse.looks_per_run(), 4);
        assert!(Schedule {
            weights: vec![0.0],
            ..Schedule::default()
        }
        .check()
        .is_err());
        assert!(check_weights(&[]).is_err());
        assert!(check_weights(&[5.0, 101.0]).is_err());
    }
}

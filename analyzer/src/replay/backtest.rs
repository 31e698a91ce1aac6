//! Backtest: replay every recording of a manifest, in parallel, and check
//! each against its expected outcome.
//!
//! * `healthy`: any abort is a false abort;
//! * `regressed`: an abort at or after `regression_start` (the recording's
//!   start when not given) catches it; an abort before is a false abort;
//!   no abort is a missed regression;
//! * `no-promote`: any promote is a false promote (missing data, a broken
//!   traffic split: nothing may be promoted on such evidence). Time to detect is measured from
//!   `regression_start`, overall (the aborting look) and per metric (the
//!   first look at which the metric is classified high or low, within a run).
//!
//! Each recording gets its own engine over its own source, so replays share
//! nothing and run on as many threads as the machine has.

use super::stream::open;
use super::{replay, ReplayError, ReplaySpec, ReplaySummary, Replayer, Schedule};
use crate::config::Config;
use crate::recording::manifest::{Entry, Expected, Manifest};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use verdict_judges::decision::Action;

/// What to backtest.
pub struct Backtest<'a> {
    pub manifest: &'a Manifest,
    /// Directory the manifest's files are relative to.
    pub base: &'a Path,
    pub config: &'a Config,
    /// The analysis when neither the entry nor the manifest names one.
    pub analysis: Option<&'a str>,
    /// Template variables (the manifest's, overridden by the caller's).
    pub vars: BTreeMap<String, String>,
    /// The schedule when an entry does not override it.
    pub schedule: Schedule,
    /// Worker threads.
    pub threads: usize,
}

/// One recording's result.
#[derive(Debug, Clone, Serialize)]
pub struct EntryResult {
    pub file: PathBuf,
    pub description: String,
    pub analysis: String,
    pub expected: Expected,
    /// Why it could not be replayed (counts as a failed expectation).
    pub error: Option<String>,
    pub decision: Option<Action>,
    pub runs: usize,
    pub looks: usize,
    pub false_aborts: usize,
    pub false_promotes: usize,
    pub missed: bool,
    /// Seconds from the regression's start to the aborting look.
    pub time_to_detect: Option<f64>,
    /// Per metric, seconds from the regression's start to its first flag.
    pub metric_time_to_detect: BTreeMap<String, f64>,
}

impl EntryResult {
    /// Whether the recording gave what its manifest expects.
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.false_aborts == 0 && self.false_promotes == 0 && !self.missed
    }
}

/// Time-to-detect statistics over recordings (seconds).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Detection {
    pub detected: usize,
    pub median: f64,
    pub max: f64,
}

impl Detection {
    fn of(mut times: Vec<f64>) -> Option<Detection> {
        if times.is_empty() {
            return None;
        }
        times.sort_by(f64::total_cmp);
        let n = times.len();
        let median = if n % 2 == 1 {
            times[n / 2]
        } else {
            (times[n / 2 - 1] + times[n / 2]) / 2.0
        };
        Some(Detection {
            detected: n,
            median,
            max: times[n - 1],
        })
    }
}

/// The whole backtest.
#[derive(Debug, Clone, Serialize)]
pub struct BacktestReport {
    pub entries: Vec<EntryResult>,
    pub healthy: usize,
    pub regressed: usize,
    /// Healthy (or pre-regression) aborts, over all recordings.
    pub false_aborts: usize,
    pub missed_regressions: usize,
    pub no_promote: usize,
    /// Promotes of recordings that must not promote.
    pub false_promotes: usize,
    pub errors: usize,
    pub time_to_detect: Option<Detection>,
    pub metric_time_to_detect: BTreeMap<String, Detection>,
}

impl BacktestReport {
    pub fn passed(&self) -> bool {
        self.entries.iter().all(EntryResult::passed)
    }
}

impl Backtest<'_> {
    fn analysis_of(&self, entry: &Entry) -> Result<String, String> {
        entry
            .analysis
            .clone()
            .or_else(|| self.analysis.map(String::from))
            .or_else(|| self.manifest.analysis.clone())
            .ok_or_else(|| {
                "no analysis: name one with --analysis, in the manifest, or per recording".into()
            })
    }

    fn schedule_of(&self, entry: &Entry) -> Schedule {
        Schedule {
            interval: entry.interval.map_or(self.schedule.interval, |d| d.0),
            weights: entry
                .weights
                .clone()
                .unwrap_or_else(|| self.schedule.weights.clone()),
            step_every: entry.step_every.map_or(self.schedule.step_every, |d| d.0),
        }
    }

    /// Replays one entry on the current thread.
    pub fn run_entry(&self, entry: &Entry) -> EntryResult {
        let mut result = EntryResult {
            file: entry.file.clone(),
            description: entry.description.clone(),
            analysis: String::new(),
            expected: entry.expected,
            error: None,
            decision: None,
            runs: 0,
            looks: 0,
            false_aborts: 0,
            false_promotes: 0,
            missed: false,
            time_to_detect: None,
            metric_time_to_detect: BTreeMap::new(),
        };
        let outcome = self
            .analysis_of(entry)
            .map_err(ReplayError::Invalid)
            .and_then(|analysis| {
                result.analysis = analysis.clone();
                self.replay_entry(entry, &analysis)
            });
        match outcome {
            Err(e) => result.error = Some(e.to_string()),
            Ok((summary, start)) => judge_entry(&mut result, entry, &summary, start),
        }
        result
    }

    fn replay_entry(
        &self,
        entry: &Entry,
        analysis_name: &str,
    ) -> Result<(ReplaySummary, f64), ReplayError> {
        let analysis = self.config.analyses.get(analysis_name).ok_or_else(|| {
            ReplayError::Engine(crate::engine::EngineError::UnknownAnalysis(
                analysis_name.to_string(),
            ))
        })?;
        let schedule = self.schedule_of(entry);
        let loaded = open(
            &self.base.join(&entry.file),
            analysis,
            &self.vars,
            &schedule,
        )?;
        let replayer = Replayer::new(self.config.analyses.clone(), loaded.source);
        let spec = ReplaySpec {
            name: entry.file.display().to_string(),
            analysis: analysis_name.to_string(),
            vars: self.vars.clone(),
            schedule,
            start: loaded.span.0,
            end: loaded.span.1,
            max_runs: None,
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            // The engine bounds each look's fetches with a timer.
            .enable_time()
            .build()
            .map_err(|e| ReplayError::Invalid(format!("cannot start a runtime: {e}")))?;
        let summary = runtime.block_on(replay(&replayer, &spec, |_, _| {}))?;
        Ok((summary, loaded.span.0))
    }

    /// Replays every entry on `threads` workers; `done` is called as each
    /// finishes (from the worker's thread).
    pub fn run(&self, done: &(dyn Fn(&EntryResult) + Sync)) -> BacktestReport {
        let entries = &self.manifest.recordings;
        let next = AtomicUsize::new(0);
        let results: Mutex<Vec<Option<EntryResult>>> = Mutex::new(vec![None; entries.len()]);
        std::thread::scope(|scope| {
            for _ in 0..self.threads.clamp(1, entries.len().max(1)) {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    let Some(entry) = entries.get(i) else { break };
                    let result = self.run_entry(entry);
                    done(&result);
                    results.lock().expect("results lock")[i] = Some(result);
                });
            }
        });
        let entries: Vec<EntryResult> = results
            .into_inner()
            .expect("results lock")
            .into_iter()
            .map(|r| r.expect("every entry replayed"))
            .collect();
        summarize(entries)
    }
}

fn judge_entry(result: &mut EntryResult, entry: &Entry, summary: &ReplaySummary, start: f64) {
    result.decision = Some(summary.decision);
    result.runs = summary.runs.len();
    result.looks = summary.looks;
    match entry.expected {
        Expected::Healthy => {
            result.false_aborts = summary.aborts_before(f64::INFINITY);
        }
        Expected::NoPromote => {
            result.false_promotes = summary
                .runs
                .iter()
                .filter(|r| r.action == Action::Promote)
                .count();
        }
        Expected::Regressed => {
            let from = entry.regression_start.unwrap_or(start);
            result.false_aborts = summary.aborts_before(from);
            match summary.first_abort_from(from) {
                Some(run) => result.time_to_detect = Some(run.end - from),
                None => result.missed = true,
            }
            for run in &summary.runs {
                for (metric, &t) in &run.first_flagged {
                    if t >= from {
                        let ttd = t - from;
                        result
                            .metric_time_to_detect
                            .entry(metric.clone())
                            .and_modify(|x| *x = x.min(ttd))
                            .or_insert(ttd);
                    }
                }
            }
        }
    }
}

fn summarize(entries: Vec<EntryResult>) -> BacktestReport {
    let mut per_metric: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for e in &entries {
        for (m, &t) in &e.metric_time_to_detect {
            per_metric.entry(m.clone()).or_default().push(t);
        }
    }
    BacktestReport {
        healthy: entries
            .iter()
            .filter(|e| e.expected == Expected::Healthy)
            .count(),
        regressed: entries
            .iter()
            .filter(|e| e.expected == Expected::Regressed)
            .count(),
        false_aborts: entries.iter().map(|e| e.false_aborts).sum(),
        missed_regressions: entries.iter().filter(|e| e.missed).count(),
        no_promote: entries
            .iter()
            .filter(|e| e.expected == Expected::NoPromote)
            .count(),
        false_promotes: entries.iter().map(|e| e.false_promotes).sum(),
        errors: entries.iter().filter(|e| e.error.is_some()).count(),
        time_to_detect: Detection::of(entries.iter().filter_map(|e| e.time_to_detect).collect()),
        metric_time_to_detect: per_metric
            .into_iter()
            .filter_map(|(m, t)| Some((m, Detection::of(t)?)))
            .collect(),
        entries,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detection_statistics() {
        assert_eq!(Detection::of(vec![]), None);
        assert_eq!(
            Detection::of(vec![60.0, 180.0, 120.0]),
            Some(Detection {
                detected: 3,
                median: 120.0,
                max: 180.0
            })
        );
        assert_eq!(Detection::of(vec![60.0, 120.0]).unwrap().median, 90.0);
    }
}

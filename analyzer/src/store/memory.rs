//! The memory backend: the [`Store`] interface with nothing persisted.
//!
//! For `store: {backend: memory}` (a throwaway daemon; Verdict warns at
//! start that a restart forgets every run) and for the offline paths that
//! build an engine without a configured store. Same semantics as the SQL
//! backends (open-run uniqueness, one look per number, retention keeping
//! each run's latest look), kept in maps under one mutex.

use super::{
    BoxFuture, EventRecord, MigrationStatus, NewRun, NotificationRecord, OpenRun, Recorded,
    RunDetail, RunFilter, RunSummary, RunSync, SequentialStates, Store, StoreError, StoredLook,
};
use crate::engine::run::{Look, RunKey};
use crate::kayenta_api::repository::KayentaRepositories;
use std::collections::BTreeMap;
use std::sync::Mutex;

struct RunRow {
    summary: RunSummary,
    window_start: f64,
    vars: BTreeMap<String, String>,
}

#[derive(Default)]
struct Data {
    runs: Vec<RunRow>,
    looks: BTreeMap<(i64, usize), StoredLook>,
    events: Vec<EventRecord>,
    notifications: Vec<NotificationRecord>,
}

/// Runs and looks in memory.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
    /// The Kayenta API's records, in `kayenta_api::repository`'s maps.
    kayenta: KayentaRepositories,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        f(&mut self.data.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

impl Data {
    fn run_index(&self, id: i64) -> Option<usize> {
        usize::try_from(id - 1)
            .ok()
            .filter(|i| *i < self.runs.len())
    }

    fn open_index(&self, analysis: &str, key: &RunKey) -> Option<usize> {
        self.runs.iter().position(|r| {
            r.summary.ended_at.is_none() && r.summary.analysis == analysis && r.summary.key == *key
        })
    }

    fn run_looks(&self, id: i64) -> impl DoubleEndedIterator<Item = &StoredLook> {
        self.looks.range((id, 0)..=(id, usize::MAX)).map(|(_, l)| l)
    }
}

impl Store for MemoryStore {
    fn backend(&self) -> &'static str {
        "memory"
    }

    fn kayenta(self: std::sync::Arc<Self>) -> KayentaRepositories {
        self.kayenta.clone()
    }

    fn open_run<'a>(
        &'a self,
        run: &'a NewRun,
        keep_looks: usize,
    ) -> BoxFuture<'a, Result<OpenRun, StoreError>> {
        ready(Ok(self.with(|d| {
            let index = d.open_index(&run.analysis, &run.key).unwrap_or_else(|| {
                let (namespace, name) = run.namespace_and_name();
                d.runs.push(RunRow {
                    summary: RunSummary {
                        id: d.runs.len() as i64 + 1,
                        analysis: run.analysis.clone(),
                        key: run.key.clone(),
                        namespace,
                        name,
                        config_hash: run.config_hash.clone(),
                        verdict_version: run.verdict_version.clone(),
                        started_at: run.started_at,
                        ended_at: None,
                        outcome: None,
                        decision: None,
                        score: None,
                        looks: 0,
                        last_look_at: None,
                    },
                    window_start: run.window_start,
                    vars: run.vars.clone(),
                });
                d.runs.len() - 1
            });
            let row = &d.runs[index];
            let id = row.summary.id;
            let mut latest: Vec<&StoredLook> = d.run_looks(id).rev().take(keep_looks).collect();
            let sequential = latest
                .first()
                .map(|l| l.sequential.clone())
                .unwrap_or_default();
            latest.reverse();
            OpenRun {
                id,
                started_at: row.summary.started_at,
                window_start: row.window_start,
                vars: row.vars.clone(),
                looks: latest.into_iter().map(|l| l.look.clone()).collect(),
                sequential,
            }
        })))
    }

    fn sync_run(&self, id: i64, after: usize) -> BoxFuture<'_, Result<RunSync, StoreError>> {
        ready(Ok(self.with(|d| RunSync {
            closed: d
                .run_index(id)
                .is_none_or(|i| d.runs[i].summary.ended_at.is_some()),
            newer: d
                .run_looks(id)
                .next_back()
                .filter(|l| l.look.number > after)
                .cloned(),
        })))
    }

    fn record_look<'a>(
        &'a self,
        id: i64,
        look: &'a Look,
        sequential: &'a SequentialStates,
    ) -> BoxFuture<'a, Result<Recorded, StoreError>> {
        ready(self.with(|d| {
            let index = d
                .run_index(id)
                .ok_or_else(|| StoreError::Backend(format!("no run {id}")))?;
            if let Some(winner) = d.looks.get(&(id, look.number)) {
                return Ok(Recorded::Lost(Box::new(winner.clone())));
            }
            d.looks.insert(
                (id, look.number),
                StoredLook {
                    look: look.clone(),
                    sequential: sequential.clone(),
                },
            );
            let s = &mut d.runs[index].summary;
            s.decision = Some(look.decision.action);
            s.score = Some(look.decision.score);
            s.looks = s.looks.max(look.number as u64);
            s.last_look_at = Some(look.time);
            Ok(Recorded::Inserted)
        }))
    }

    fn close_run<'a>(
        &'a self,
        analysis: &'a str,
        key: &'a RunKey,
        outcome: &'a str,
        at: f64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>> {
        ready(Ok(self.with(|d| {
            d.open_index(analysis, key).map(|i| {
                let s = &mut d.runs[i].summary;
                s.ended_at = Some(at);
                s.outcome = Some(outcome.to_string());
                s.id
            })
        })))
    }

    fn record_event<'a>(&'a self, event: &'a EventRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|d| {
            let run_id = d
                .runs
                .iter()
                .rev()
                .find(|r| r.summary.analysis == event.analysis && r.summary.key == event.key)
                .map(|r| r.summary.id);
            d.events.push(EventRecord {
                run_id,
                ..event.clone()
            });
        });
        ready(Ok(()))
    }

    fn record_notification<'a>(
        &'a self,
        notification: &'a NotificationRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|d| d.notifications.push(notification.clone()));
        ready(Ok(()))
    }

    fn list_runs<'a>(
        &'a self,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>> {
        ready(Ok(self.with(|d| {
            let mut runs: Vec<RunSummary> = d
                .runs
                .iter()
                .map(|r| r.summary.clone())
                .filter(|s| filter.matches(s))
                .collect();
            runs.sort_by(|a, b| b.started_at.total_cmp(&a.started_at).then(b.id.cmp(&a.id)));
            runs.truncate(filter.effective_limit());
            runs
        })))
    }

    fn get_run(&self, id: i64) -> BoxFuture<'_, Result<Option<RunDetail>, StoreError>> {
        ready(Ok(self.with(|d| {
            let row = &d.runs[d.run_index(id)?];
            Some(RunDetail {
                run: row.summary.clone(),
                vars: row.vars.clone(),
                looks: d.run_looks(id).map(|l| l.look.clone()).collect(),
                events: d
                    .events
                    .iter()
                    .filter(|e| e.run_id == Some(id))
                    .cloned()
                    .collect(),
                notifications: d
                    .notifications
                    .iter()
                    .filter(|n| n.run_id == id)
                    .cloned()
                    .collect(),
            })
        })))
    }

    fn delete_looks_before(&self, cutoff: f64) -> BoxFuture<'_, Result<u64, StoreError>> {
        ready(Ok(self.with(|d| {
            let latest: BTreeMap<i64, u64> = d
                .runs
                .iter()
                .map(|r| (r.summary.id, r.summary.looks))
                .collect();
            let before = d.looks.len();
            d.looks.retain(|(run, number), l| {
                l.look.time >= cutoff || *number as u64 >= latest.get(run).copied().unwrap_or(0)
            });
            (before - d.looks.len()) as u64
        })))
    }

    fn migration_status(&self) -> BoxFuture<'_, Result<Vec<MigrationStatus>, StoreError>> {
        ready(Ok(Vec::new()))
    }

    fn migrate_up(&self) -> BoxFuture<'_, Result<Vec<i64>, StoreError>> {
        ready(Ok(Vec::new()))
    }

    fn migrate_down(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>> {
        ready(Ok(None))
    }
}

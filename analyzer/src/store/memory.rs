//! The memory backend: the [`Store`] interface with nothing persisted.
//!
//! For `store: {backend: memory}` (a throwaway daemon; Verdict warns at
//! start that a restart forgets every run) and for the offline paths that
//! build an engine without a configured store. Same semantics as the SQL
//! backends (open-run uniqueness, one look per number, retention keeping
//! each run's latest look), kept in maps under one mutex.
//!
//! A replay of a year takes tens of thousands of runs one after another;
//! [`MemoryStore::keeping_closed_runs`] bounds what it holds to the open
//! runs and the latest closed ones, and looking up the open run of a
//! rollout costs the same however many runs came before.

use super::{
    BoxFuture, EventRecord, MigrationStatus, NewRun, NotificationRecord, OpenRun, Recorded,
    RunDetail, RunFilter, RunSummary, RunSync, SequentialStates, Store, StoreError, StoredLook,
};
use crate::engine::run::{Look, RunKey, StepOpening};
use crate::kayenta_api::repository::KayentaRepositories;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

struct RunRow {
    summary: RunSummary,
    window_start: f64,
    vars: BTreeMap<String, String>,
    opened: Option<StepOpening>,
}

#[derive(Default)]
struct Data {
    /// By id; ids count from 1 and are never reused.
    runs: BTreeMap<i64, RunRow>,
    last_id: i64,
    /// The open run of each (analysis, key).
    open: HashMap<(String, RunKey), i64>,
    /// Closed runs, in the order they closed.
    closed: VecDeque<i64>,
    looks: BTreeMap<(i64, usize), KeptLook>,
    events: Vec<EventRecord>,
    notifications: Vec<NotificationRecord>,
}

/// A recorded look, shared with the engine's run rather than copied (a
/// replay records hundreds of thousands); copied out only when read back.
#[derive(Clone)]
struct KeptLook {
    look: Arc<Look>,
    sequential: SequentialStates,
}

impl KeptLook {
    fn stored(&self) -> StoredLook {
        StoredLook {
            look: (*self.look).clone(),
            sequential: self.sequential.clone(),
        }
    }
}

/// Runs and looks in memory.
#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
    /// Closed runs kept (with their looks, events and notifications);
    /// `None` keeps all.
    closed_limit: Option<usize>,
    /// The Kayenta API's records, in `kayenta_api::repository`'s maps.
    kayenta: KayentaRepositories,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A store that forgets a closed run, with its looks, once `limit`
    /// newer runs have closed (open runs are always kept).
    pub fn keeping_closed_runs(limit: usize) -> Self {
        MemoryStore {
            closed_limit: Some(limit),
            ..Self::default()
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        f(&mut self.data.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

impl Data {
    fn open_id(&self, analysis: &str, key: &RunKey) -> Option<i64> {
        self.open.get(&(analysis.to_string(), key.clone())).copied()
    }

    /// Drops the oldest closed runs beyond `limit`, with all they hold.
    fn forget_closed_beyond(&mut self, limit: usize) {
        while self.closed.len() > limit {
            let Some(id) = self.closed.pop_front() else {
                break;
            };
            self.runs.remove(&id);
            let numbers: Vec<usize> = self.run_looks(id).map(|l| l.look.number).collect();
            for number in numbers {
                self.looks.remove(&(id, number));
            }
            self.events.retain(|e| e.run_id != Some(id));
            self.notifications.retain(|n| n.run_id != id);
        }
    }

    fn run_looks(&self, id: i64) -> impl DoubleEndedIterator<Item = &KeptLook> {
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
            let id = d.open_id(&run.analysis, &run.key).unwrap_or_else(|| {
                let (namespace, name) = run.namespace_and_name();
                d.last_id += 1;
                let id = d.last_id;
                d.open.insert((run.analysis.clone(), run.key.clone()), id);
                d.runs.insert(
                    id,
                    RunRow {
                        summary: RunSummary {
                            id,
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
                        opened: None,
                    },
                );
                id
            });
            let row = &d.runs[&id];
            let mut latest: Vec<&KeptLook> = d.run_looks(id).rev().take(keep_looks).collect();
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
                looks: latest.into_iter().map(|l| (*l.look).clone()).collect(),
                sequential,
                opened: row.opened,
            }
        })))
    }

    fn sync_run(&self, id: i64, after: usize) -> BoxFuture<'_, Result<RunSync, StoreError>> {
        ready(Ok(self.with(|d| RunSync {
            closed: d.runs.get(&id).is_none_or(|r| r.summary.ended_at.is_some()),
            newer: d
                .run_looks(id)
                .next_back()
                .filter(|l| l.look.number > after)
                .map(KeptLook::stored),
            opened: d.runs.get(&id).and_then(|r| r.opened),
        })))
    }

    fn open_step<'a>(
        &'a self,
        id: i64,
        opening: &'a StepOpening,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        ready(Ok(self.with(|d| {
            let Some(row) = d.runs.get_mut(&id) else {
                return false;
            };
            let current = row.opened.map_or(0, |o| o.step);
            let open = row.summary.ended_at.is_none() && current + 1 == opening.step;
            if open {
                row.opened = Some(*opening);
            }
            open
        })))
    }

    fn record_look<'a>(
        &'a self,
        id: i64,
        look: &'a Arc<Look>,
        sequential: &'a SequentialStates,
    ) -> BoxFuture<'a, Result<Recorded, StoreError>> {
        ready(self.with(|d| {
            if !d.runs.contains_key(&id) {
                return Err(StoreError::Backend(format!("no run {id}")));
            }
            if let Some(winner) = d.looks.get(&(id, look.number)) {
                return Ok(Recorded::Lost(Box::new(winner.stored())));
            }
            d.looks.insert(
                (id, look.number),
                KeptLook {
                    look: look.clone(),
                    sequential: sequential.clone(),
                },
            );
            let s = &mut d.runs.get_mut(&id).expect("checked above").summary;
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
            let id = d.open.remove(&(analysis.to_string(), key.clone()))?;
            let s = &mut d.runs.get_mut(&id)?.summary;
            s.ended_at = Some(at);
            s.outcome = Some(outcome.to_string());
            d.closed.push_back(id);
            if let Some(limit) = self.closed_limit {
                d.forget_closed_beyond(limit);
            }
            Some(id)
        })))
    }

    fn record_event<'a>(&'a self, event: &'a EventRecord) -> BoxFuture<'a, Result<(), StoreError>> {
        self.with(|d| {
            let run_id = d
                .runs
                .values()
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
                .values()
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
            let row = d.runs.get(&id)?;
            Some(RunDetail {
                run: row.summary.clone(),
                vars: row.vars.clone(),
                looks: d.run_looks(id).map(|l| (*l.look).clone()).collect(),
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
                .values()
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

#[cfg(test)]
mod tests {
    use super::*;

    fn new_run(name: &str) -> NewRun {
        NewRun {
            analysis: "web".into(),
            key: RunKey::Replay { name: name.into() },
            config_hash: "h".into(),
            verdict_version: "v".into(),
            started_at: 0.0,
            window_start: 0.0,
            vars: BTreeMap::new(),
        }
    }

    async fn open(store: &MemoryStore, name: &str) -> i64 {
        store.open_run(&new_run(name), 10).await.unwrap().id
    }

    async fn close(store: &MemoryStore, name: &str) -> Option<i64> {
        let key = RunKey::Replay { name: name.into() };
        store.close_run("web", &key, "done", 1.0).await.unwrap()
    }

    #[tokio::test]
    async fn an_open_run_is_found_again_and_a_closed_one_is_not_reopened() {
        let store = MemoryStore::new();
        let a = open(&store, "a").await;
        assert_eq!(open(&store, "a").await, a);
        assert_eq!(close(&store, "a").await, Some(a));
        assert_eq!(close(&store, "a").await, None);
        let again = open(&store, "a").await;
        assert_ne!(again, a, "a closed run is never reopened");
        assert!(store.get_run(a).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn keeping_closed_runs_forgets_the_oldest_closed_ones_only() {
        let store = MemoryStore::keeping_closed_runs(1);
        let open_one = open(&store, "still-open").await;
        let a = open(&store, "a").await;
        close(&store, "a").await;
        assert!(store.get_run(a).await.unwrap().is_some());
        let b = open(&store, "b").await;
        close(&store, "b").await;
        assert!(store.get_run(a).await.unwrap().is_none(), "a is forgotten");
        assert!(store.get_run(b).await.unwrap().is_some());
        assert!(store.get_run(open_one).await.unwrap().is_some());
        // Ids keep counting: a new run never takes a forgotten one's id.
        assert!(open(&store, "c").await > b);
    }
}

//! Where posted canary configs and executions live.
//!
//! Two small traits, one per kind of record: [`CanaryConfigRepository`]
//! (configs posted through `/canaryConfig`; configs from the daemon's
//! `kayenta_configs` files are not stored here, they come with the
//! analyses) and [`ExecutionRepository`] (executions and their outcomes).
//! Three backends implement both: the run store's SQLite and PostgreSQL
//! backends (`store::sqlite::kayenta`, `store::postgres::kayenta`, on the
//! store's own connection or pool and its migrations), and the maps here
//! for a daemon whose store is `memory`. [`crate::store::Store::kayenta`]
//! hands out the pair that belongs to a store.
//!
//! The methods are async (boxed futures, like the store's) and short: one
//! statement or one small transaction each.

use super::execution::{Execution, Outcome};
use crate::source::BoxFuture;
use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};
use verdict_judges::kayenta::config::CanaryConfig;

/// A store failure (the in-memory backend never fails).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RepositoryError {
    /// The backend failed or its data cannot be read.
    #[error("store: {0}")]
    Backend(String),
    /// A unique key is taken (a config's name, posted concurrently on two
    /// replicas).
    #[error("{0}")]
    Conflict(String),
}

/// Canary configs posted through the API, keyed by id (`CanaryConfig::id`
/// is always set on a stored config). Names are unique.
pub trait CanaryConfigRepository: Send + Sync {
    /// Every stored config, by id.
    fn list(&self) -> BoxFuture<'_, Result<Vec<CanaryConfig>, RepositoryError>>;
    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CanaryConfig>, RepositoryError>>;
    /// Inserts or replaces the config under its id.
    fn put(&self, config: CanaryConfig) -> BoxFuture<'_, Result<(), RepositoryError>>;
    /// Whether there was a config to delete.
    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, RepositoryError>>;
}

/// Which executions to list (`GET /canary/executions`), newest first.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ExecutionFilter {
    /// Only executions started with this `application`.
    pub application: Option<String>,
    /// Only executions in one of these statuses (`Outcome::status`);
    /// `None` for all.
    pub statuses: Option<Vec<String>>,
    /// Skip this many (paging).
    pub offset: usize,
    /// At most this many; `None` for all.
    pub limit: Option<usize>,
}

impl ExecutionFilter {
    /// Every execution still running (what a restarted daemon re-launches).
    pub fn running() -> Self {
        ExecutionFilter {
            statuses: Some(vec![Outcome::Running.status().to_string()]),
            ..Self::default()
        }
    }

    /// Whether `e` passes the application and status conditions (the
    /// memory backend's query; the SQL backends say the same in SQL).
    pub fn matches(&self, e: &Execution) -> bool {
        self.application
            .as_ref()
            .is_none_or(|a| e.params.application.as_ref() == Some(a))
            && self
                .statuses
                .as_ref()
                .is_none_or(|s| s.iter().any(|s| s == e.outcome.status()))
    }
}

/// Executions, keyed by id.
pub trait ExecutionRepository: Send + Sync {
    fn insert(&self, execution: Execution) -> BoxFuture<'_, Result<(), RepositoryError>>;
    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Execution>, RepositoryError>>;
    /// Records how a running execution ended, at `end_millis`. An execution
    /// that has ended already keeps its outcome (the first to finish wins:
    /// a re-launched execution judged twice is recorded once).
    fn finish<'a>(
        &'a self,
        id: &'a str,
        outcome: Outcome,
        end_millis: i64,
    ) -> BoxFuture<'a, Result<(), RepositoryError>>;
    /// Executions passing `filter`, newest first (by start time, then id).
    fn list<'a>(
        &'a self,
        filter: &'a ExecutionFilter,
    ) -> BoxFuture<'a, Result<Vec<Execution>, RepositoryError>>;
    /// Deletes the executions that ended before `cutoff_millis` (by their
    /// end time, or their start time if they were recorded ended); running
    /// ones stay whatever their age. Returns how many were deleted.
    fn delete_ended_before(
        &self,
        cutoff_millis: i64,
    ) -> BoxFuture<'_, Result<u64, RepositoryError>>;
}

/// When an ended execution ended, for retention: its end time, or its start
/// time if it was recorded ended (a request refused at once).
fn ended_at(e: &Execution) -> Option<i64> {
    (!matches!(e.outcome, Outcome::Running))
        .then(|| e.end_time_millis.unwrap_or(e.build_time_millis))
}

/// The two repositories of one backend.
#[derive(Clone)]
pub struct KayentaRepositories {
    pub configs: Arc<dyn CanaryConfigRepository>,
    pub executions: Arc<dyn ExecutionRepository>,
}

impl Default for KayentaRepositories {
    fn default() -> Self {
        Self::in_memory()
    }
}

impl KayentaRepositories {
    /// Fresh in-memory repositories (nothing survives the process).
    pub fn in_memory() -> Self {
        KayentaRepositories {
            configs: Arc::new(MemoryConfigs::default()),
            executions: Arc::new(MemoryExecutions::default()),
        }
    }
}

fn ready<T: Send + 'static>(value: T) -> BoxFuture<'static, T> {
    Box::pin(std::future::ready(value))
}

/// Configs in a map, for a daemon without a persistent store.
#[derive(Default)]
pub struct MemoryConfigs {
    configs: Mutex<BTreeMap<String, CanaryConfig>>,
}

impl MemoryConfigs {
    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, CanaryConfig>> {
        self.configs.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl CanaryConfigRepository for MemoryConfigs {
    fn list(&self) -> BoxFuture<'_, Result<Vec<CanaryConfig>, RepositoryError>> {
        ready(Ok(self.map().values().cloned().collect()))
    }

    fn get<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<CanaryConfig>, RepositoryError>> {
        ready(Ok(self.map().get(id).cloned()))
    }

    fn put(&self, config: CanaryConfig) -> BoxFuture<'_, Result<(), RepositoryError>> {
        let result = match config.id.clone() {
            None => Err(RepositoryError::Backend(
                "a stored config needs an id".into(),
            )),
            Some(id) => {
                let mut map = self.map();
                match map
                    .values()
                    .find(|c| c.name == config.name && c.id != config.id)
                {
                    Some(other) => Err(RepositoryError::Conflict(format!(
                        "a canary config named {:?} exists already (id {:?})",
                        config.name,
                        other.id.clone().unwrap_or_default()
                    ))),
                    None => {
                        map.insert(id, config);
                        Ok(())
                    }
                }
            }
        };
        ready(result)
    }

    fn delete<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<bool, RepositoryError>> {
        ready(Ok(self.map().remove(id).is_some()))
    }
}

/// Executions kept in memory: the newest [`MemoryExecutions::CAPACITY`];
/// older finished ones are forgotten first, so memory stays bounded however
/// long the daemon runs.
#[derive(Default)]
pub struct MemoryExecutions {
    inner: Mutex<ExecutionMap>,
}

#[derive(Default)]
struct ExecutionMap {
    by_id: BTreeMap<String, Execution>,
    /// Ids in insertion order, for eviction.
    order: VecDeque<String>,
}

impl MemoryExecutions {
    /// Executions kept (a poller reads its result within minutes).
    pub const CAPACITY: usize = 10_000;

    fn map(&self) -> std::sync::MutexGuard<'_, ExecutionMap> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl ExecutionRepository for MemoryExecutions {
    fn insert(&self, execution: Execution) -> BoxFuture<'_, Result<(), RepositoryError>> {
        let mut map = self.map();
        while map.by_id.len() >= Self::CAPACITY {
            // Forget the oldest finished execution; running ones stay.
            let position = map.order.iter().position(|id| {
                map.by_id
                    .get(id)
                    .is_none_or(|e| !matches!(e.outcome, Outcome::Running))
            });
            match position.and_then(|i| map.order.remove(i)) {
                Some(id) => {
                    map.by_id.remove(&id);
                }
                None => break,
            }
        }
        map.order.push_back(execution.id.clone());
        map.by_id.insert(execution.id.clone(), execution);
        ready(Ok(()))
    }

    fn get<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<Execution>, RepositoryError>> {
        ready(Ok(self.map().by_id.get(id).cloned()))
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        outcome: Outcome,
        end_millis: i64,
    ) -> BoxFuture<'a, Result<(), RepositoryError>> {
        let mut map = self.map();
        let result = match map.by_id.get_mut(id) {
            None => Err(RepositoryError::Backend(format!("no execution {id:?}"))),
            Some(execution) => {
                if matches!(execution.outcome, Outcome::Running) {
                    execution.outcome = outcome;
                    execution.end_time_millis = Some(end_millis);
                }
                Ok(())
            }
        };
        ready(result)
    }

    fn list<'a>(
        &'a self,
        filter: &'a ExecutionFilter,
    ) -> BoxFuture<'a, Result<Vec<Execution>, RepositoryError>> {
        let map = self.map();
        let mut all: Vec<&Execution> = map.by_id.values().filter(|e| filter.matches(e)).collect();
        all.sort_by(|a, b| (b.build_time_millis, &b.id).cmp(&(a.build_time_millis, &a.id)));
        let page = all
            .into_iter()
            .skip(filter.offset)
            .take(filter.limit.unwrap_or(usize::MAX))
            .cloned()
            .collect();
        ready(Ok(page))
    }

    fn delete_ended_before(
        &self,
        cutoff_millis: i64,
    ) -> BoxFuture<'_, Result<u64, RepositoryError>> {
        let mut map = self.map();
        let before = map.by_id.len();
        map.by_id
            .retain(|_, e| ended_at(e).is_none_or(|t| t >= cutoff_millis));
        let ExecutionMap { by_id, order } = &mut *map;
        order.retain(|id| by_id.contains_key(id));
        ready(Ok((before - map.by_id.len()) as u64))
    }
}

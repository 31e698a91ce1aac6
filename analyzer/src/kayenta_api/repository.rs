//! Where posted canary configs and executions live.
//!
//! Two small traits so a persistent store can replace the in-memory maps
//! without touching the rest: [`CanaryConfigRepository`] (configs posted
//! through `/canaryConfig`; configs from the daemon's `kayenta_configs`
//! files are not stored here, they come with the analyses) and
//! [`ExecutionRepository`] (executions and their outcomes). The methods are
//! synchronous and short: a store implements them with a quick local
//! transaction; nothing holds a lock across an await.

use super::execution::{Execution, Outcome};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use verdict_judges::kayenta::config::CanaryConfig;

/// A store failure (the in-memory store never fails).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("store: {0}")]
pub struct RepositoryError(pub String);

/// Canary configs posted through the API, keyed by id (`CanaryConfig::id`
/// is always set on a stored config).
pub trait CanaryConfigRepository: Send + Sync {
    fn list(&self) -> Result<Vec<CanaryConfig>, RepositoryError>;
    fn get(&self, id: &str) -> Result<Option<CanaryConfig>, RepositoryError>;
    /// Inserts or replaces the config under its id.
    fn put(&self, config: CanaryConfig) -> Result<(), RepositoryError>;
    /// Whether there was a config to delete.
    fn delete(&self, id: &str) -> Result<bool, RepositoryError>;
}

/// Executions, keyed by id.
pub trait ExecutionRepository: Send + Sync {
    fn insert(&self, execution: Execution) -> Result<(), RepositoryError>;
    fn get(&self, id: &str) -> Result<Option<Execution>, RepositoryError>;
    /// Records how a running execution ended, at `end_millis`.
    fn finish(&self, id: &str, outcome: Outcome, end_millis: i64) -> Result<(), RepositoryError>;
}

/// Configs in a map, for a daemon without a persistent store.
#[derive(Default)]
pub struct MemoryConfigs {
    configs: Mutex<BTreeMap<String, CanaryConfig>>,
}

impl CanaryConfigRepository for MemoryConfigs {
    fn list(&self) -> Result<Vec<CanaryConfig>, RepositoryError> {
        Ok(self
            .configs
            .lock()
            .expect("configs lock")
            .values()
            .cloned()
            .collect())
    }

    fn get(&self, id: &str) -> Result<Option<CanaryConfig>, RepositoryError> {
        Ok(self.configs.lock().expect("configs lock").get(id).cloned())
    }

    fn put(&self, config: CanaryConfig) -> Result<(), RepositoryError> {
        let id = config
            .id
            .clone()
            .ok_or_else(|| RepositoryError("a stored config needs an id".into()))?;
        self.configs
            .lock()
            .expect("configs lock")
            .insert(id, config);
        Ok(())
    }

    fn delete(&self, id: &str) -> Result<bool, RepositoryError> {
        Ok(self
            .configs
            .lock()
            .expect("configs lock")
            .remove(id)
            .is_some())
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
}

impl ExecutionRepository for MemoryExecutions {
    fn insert(&self, execution: Execution) -> Result<(), RepositoryError> {
        let mut map = self.inner.lock().expect("executions lock");
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
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<Execution>, RepositoryError> {
        Ok(self
            .inner
            .lock()
            .expect("executions lock")
            .by_id
            .get(id)
            .cloned())
    }

    fn finish(&self, id: &str, outcome: Outcome, end_millis: i64) -> Result<(), RepositoryError> {
        let mut map = self.inner.lock().expect("executions lock");
        let execution = map
            .by_id
            .get_mut(id)
            .ok_or_else(|| RepositoryError(format!("no execution {id:?}")))?;
        execution.outcome = outcome;
        execution.end_time_millis = Some(end_millis);
        Ok(())
    }
}

//! The run store: Verdict's audit trail and its memory across restarts.
//!
//! Every run (rollout × analysis), every look with its full explanation and
//! the sequential judges' state after it, every Flagger `event` webhook and
//! every notification sent are written here. One interface ([`Store`]),
//! three backends:
//!
//! * [`sqlite`]: a file beside the daemon (the default; no other service).
//!   WAL with `synchronous=FULL`, so a look answered is a look on disk, even
//!   after `kill -9` or a power cut.
//! * [`postgres`]: for several replicas behind one Service. Replicas agree
//!   through the database's unique keys, never through in-process locks: one
//!   open run per (analysis, key), one look per (run, number). A replica
//!   that loses a race to record a look returns the winner's look.
//! * [`memory`]: nothing survives the process (tests, throwaway runs).
//!
//! The engine commits each look before the webhook is answered
//! ([`crate::engine::Engine::look`]); a look that cannot be committed is
//! answered "cannot judge". The Kayenta API keeps its posted canary
//! configs and executions here too ([`kayenta`]). Schemas are versioned,
//! reversible and shipped in the binary ([`migrations`]); old looks are
//! pruned by [`retention`].

pub mod kayenta;
pub mod memory;
pub mod migrations;
pub mod postgres;
pub mod retention;
pub mod sqlite;

use crate::config::store::{StoreBackend, StoreSettings};
use crate::config::Config;
use crate::engine::run::{Look, RunKey, StepOpening};
use crate::kayenta_api::repository::KayentaRepositories;
pub use crate::source::BoxFuture;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use verdict_judges::decision::Action;

/// Why the store could not do what was asked.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open the run store: {0}")]
    Open(String),
    #[error("run store operation failed: {0}")]
    Backend(String),
    #[error("stored data cannot be read: {0}")]
    Corrupt(String),
    #[error("migration {version} ({name}) failed; the database is as it was before it: {error}")]
    Migration {
        version: i64,
        name: String,
        error: String,
    },
    #[error("the database has schema version {0}, which this Verdict does not know (a newer Verdict migrated it)")]
    UnknownSchema(i64),
}

pub use crate::engine::sequential::SequentialStates;

/// A run as it starts: what the engine knows at its first look.
#[derive(Debug, Clone)]
pub struct NewRun {
    pub analysis: String,
    pub key: RunKey,
    /// [`config_hash`] of the analysis the run is judged by.
    pub config_hash: String,
    pub verdict_version: String,
    /// Time of the first look (unix seconds).
    pub started_at: f64,
    /// Start of the analysis window (first look minus the lookback).
    pub window_start: f64,
    pub vars: BTreeMap<String, String>,
}

impl NewRun {
    /// Namespace and name of the rollout, for filtering: from a Flagger key,
    /// else from the template variables (Argo's `args`).
    pub fn namespace_and_name(&self) -> (Option<String>, Option<String>) {
        match &self.key {
            RunKey::Flagger {
                namespace, name, ..
            } => (Some(namespace.clone()), Some(name.clone())),
            _ => (
                self.vars.get("namespace").cloned(),
                self.vars.get("name").cloned(),
            ),
        }
    }

    /// The controller that asked (`flagger`, `argo`, `replay`, `kayenta`).
    pub fn controller(&self) -> &'static str {
        match self.key {
            RunKey::Flagger { .. } => "flagger",
            RunKey::Argo { .. } => "argo",
            RunKey::Replay { .. } => "replay",
            RunKey::Kayenta { .. } => "kayenta",
        }
    }
}

/// A look as stored: the look and the sequential state after it.
#[derive(Debug, Clone)]
pub struct StoredLook {
    pub look: Look,
    pub sequential: SequentialStates,
}

/// An open run as the store has it: what a daemon resumes from.
#[derive(Debug, Clone)]
pub struct OpenRun {
    pub id: i64,
    pub started_at: f64,
    pub window_start: f64,
    pub vars: BTreeMap<String, String>,
    /// The run's latest looks, oldest first (at most the number asked for).
    pub looks: Vec<Look>,
    /// The sequential state after the latest look (empty before any).
    pub sequential: SequentialStates,
    /// The latest opening of the traffic gate, if any.
    pub opened: Option<StepOpening>,
}

impl OpenRun {
    /// Time of the latest delivery the run has seen.
    pub fn last_seen(&self) -> f64 {
        self.looks.last().map_or(self.started_at, |l| l.time)
    }
}

/// What the store has on a run beyond a given look number.
#[derive(Debug, Clone)]
pub struct RunSync {
    /// The run was closed (by a `post-rollout` on any replica).
    pub closed: bool,
    /// The latest look, when its number is above the one asked about.
    pub newer: Option<StoredLook>,
    /// The latest opening of the traffic gate, if any.
    pub opened: Option<StepOpening>,
}

/// The outcome of recording a look.
#[derive(Debug, Clone)]
pub enum Recorded {
    /// This look is now look `number` of the run.
    Inserted,
    /// Another replica recorded this look number first: its look.
    Lost(Box<StoredLook>),
}

/// Filters of [`Store::list_runs`]; every field narrows the result.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub analysis: Option<String>,
    /// The run's latest decision.
    pub decision: Option<Action>,
    /// Runs started at or after this time (unix seconds).
    pub since: Option<f64>,
    /// Runs started before this time (unix seconds).
    pub until: Option<f64>,
    /// Most runs returned, newest first; [`DEFAULT_LIST_LIMIT`] when absent.
    pub limit: Option<usize>,
}

/// Runs listed when no limit is given.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The largest limit honoured.
pub const MAX_LIST_LIMIT: usize = 10_000;

impl RunFilter {
    pub fn effective_limit(&self) -> usize {
        self.limit
            .unwrap_or(DEFAULT_LIST_LIMIT)
            .clamp(1, MAX_LIST_LIMIT)
    }

    /// Whether `run` passes the filter (the memory backend's query; the SQL
    /// backends express the same conditions in SQL).
    pub fn matches(&self, run: &RunSummary) -> bool {
        let eq = |want: &Option<String>, have: &Option<String>| {
            want.as_ref().is_none_or(|w| have.as_ref() == Some(w))
        };
        eq(&self.namespace, &run.namespace)
            && eq(&self.name, &run.name)
            && self.analysis.as_ref().is_none_or(|a| *a == run.analysis)
            && self.decision.is_none_or(|d| run.decision == Some(d))
            && self.since.is_none_or(|s| run.started_at >= s)
            && self.until.is_none_or(|u| run.started_at < u)
    }
}

/// A run's summary: kept after its looks are pruned by retention.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: i64,
    pub analysis: String,
    pub key: RunKey,
    pub namespace: Option<String>,
    pub name: Option<String>,
    /// Hash of the analysis config the run was judged by ([`config_hash`]).
    pub config_hash: String,
    pub verdict_version: String,
    pub started_at: f64,
    /// When the controller reported the rollout finished (or Verdict gave
    /// the run up as abandoned).
    pub ended_at: Option<f64>,
    /// How it ended: Flagger's phase at `post-rollout`, or `abandoned`.
    pub outcome: Option<String>,
    /// The latest look's decision.
    pub decision: Option<Action>,
    pub score: Option<f64>,
    /// Looks taken (including any pruned by retention).
    pub looks: u64,
    pub last_look_at: Option<f64>,
}

/// A Flagger `event` webhook as received.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    pub received_at: f64,
    pub analysis: String,
    pub key: RunKey,
    /// The latest run of that key under that analysis, when there is one.
    pub run_id: Option<i64>,
    pub namespace: String,
    pub name: String,
    pub phase: String,
    /// Flagger's `eventType` metadata (`Normal`, `Warning`).
    pub event_type: String,
    pub message: String,
    /// The metadata as sent.
    pub metadata: BTreeMap<String, String>,
}

/// A notification sent (or given up on) about a run's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NotificationRecord {
    pub run_id: i64,
    pub sent_at: f64,
    /// The configured channel's name.
    pub channel: String,
    pub decision: Action,
    /// Delivery attempts made (1 when the first succeeded).
    pub attempts: u32,
    pub ok: bool,
    /// The last attempt's error when `ok` is false.
    pub error: Option<String>,
}

/// A run with every stored look explained.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunDetail {
    pub run: RunSummary,
    pub vars: BTreeMap<String, String>,
    /// Looks not yet pruned by retention, oldest first.
    pub looks: Vec<Look>,
    pub events: Vec<EventRecord>,
    pub notifications: Vec<NotificationRecord>,
}

/// One migration's state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MigrationStatus {
    pub version: i64,
    pub name: String,
    /// When it was applied (unix seconds); `None` when pending.
    pub applied_at: Option<f64>,
}

/// The run store. Object-safe (boxed futures, like
/// [`crate::source::SeriesSource`]), so the engine holds one
/// `Arc<dyn Store>` whatever the backend.
pub trait Store: Send + Sync {
    /// The backend's name (`sqlite`, `postgres`, `memory`).
    fn backend(&self) -> &'static str;

    /// The open run of `run.analysis` and `run.key`, created from `run` when
    /// there is none, with at most `keep_looks` of its latest looks.
    fn open_run<'a>(
        &'a self,
        run: &'a NewRun,
        keep_looks: usize,
    ) -> BoxFuture<'a, Result<OpenRun, StoreError>>;

    /// Whether run `id` was closed, and its latest look if numbered above
    /// `after` (another replica took it).
    fn sync_run(&self, id: i64, after: usize) -> BoxFuture<'_, Result<RunSync, StoreError>>;

    /// Records `look` as look `look.number` of run `id`, with the sequential
    /// state after it, and updates the run's summary, in one transaction.
    /// The look comes shared: the memory store keeps it without a copy.
    fn record_look<'a>(
        &'a self,
        id: i64,
        look: &'a Arc<Look>,
        sequential: &'a SequentialStates,
    ) -> BoxFuture<'a, Result<Recorded, StoreError>>;

    /// Closes the open run of `analysis` and `key`, if any; returns its id.
    /// Records that the traffic gate of open run `id` opened: step
    /// `opening.step` begins. Succeeds only from the step before it (false
    /// otherwise: another replica opened it first, or the run was closed),
    /// so a step is counted once whoever answers the gate.
    fn open_step<'a>(
        &'a self,
        id: i64,
        opening: &'a StepOpening,
    ) -> BoxFuture<'a, Result<bool, StoreError>>;

    fn close_run<'a>(
        &'a self,
        analysis: &'a str,
        key: &'a RunKey,
        outcome: &'a str,
        at: f64,
    ) -> BoxFuture<'a, Result<Option<i64>, StoreError>>;

    /// Records a Flagger `event` webhook (its `run_id` is resolved here).
    fn record_event<'a>(&'a self, event: &'a EventRecord) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Records a notification sent about a run.
    fn record_notification<'a>(
        &'a self,
        notification: &'a NotificationRecord,
    ) -> BoxFuture<'a, Result<(), StoreError>>;

    /// Runs matching `filter`, newest first.
    fn list_runs<'a>(
        &'a self,
        filter: &'a RunFilter,
    ) -> BoxFuture<'a, Result<Vec<RunSummary>, StoreError>>;

    /// One run with its looks, events and notifications.
    fn get_run(&self, id: i64) -> BoxFuture<'_, Result<Option<RunDetail>, StoreError>>;

    /// Deletes looks taken before `cutoff` (unix seconds), except each run's
    /// latest look (a run resumes from it); returns how many were deleted.
    fn delete_looks_before(&self, cutoff: f64) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Every migration this binary ships, applied or pending.
    fn migration_status(&self) -> BoxFuture<'_, Result<Vec<MigrationStatus>, StoreError>>;

    /// Applies every pending migration, each in its own transaction;
    /// returns the versions applied.
    fn migrate_up(&self) -> BoxFuture<'_, Result<Vec<i64>, StoreError>>;

    /// Reverts the latest applied migration; returns its version.
    fn migrate_down(&self) -> BoxFuture<'_, Result<Option<i64>, StoreError>>;

    /// The Kayenta API's repositories (posted canary configs, executions)
    /// on this store: its tables, its connection or pool ([`crate::store::kayenta`]).
    fn kayenta(self: Arc<Self>) -> KayentaRepositories;
}

/// Connects to the configured store without migrating it (`verdict migrate`).
pub async fn connect(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let settings: &StoreSettings = &config.settings.store;
    Ok(match settings.backend {
        StoreBackend::Memory => Arc::new(memory::MemoryStore::new()),
        StoreBackend::Sqlite => {
            let path = settings.sqlite_path(&config.path);
            Arc::new(sqlite::SqliteStore::open(&path).await?)
        }
        StoreBackend::Postgres => {
            let url = config
                .credentials
                .store_url
                .as_ref()
                .map(crate::secret::Secret::expose)
                .ok_or_else(|| StoreError::Open("no PostgreSQL URL was read".into()))?;
            Arc::new(postgres::PostgresStore::connect(url, settings.pool_size).await?)
        }
    })
}

/// Connects to the configured store and applies pending migrations (start-up).
pub async fn open(config: &Config) -> Result<Arc<dyn Store>, StoreError> {
    let store = connect(config).await?;
    let applied = store.migrate_up().await?;
    if !applied.is_empty() {
        tracing::info!(backend = store.backend(), versions = ?applied, "run store migrated");
    }
    Ok(store)
}

/// A hash of an analysis config: FNV-1a (64 bit, hex) of the config as
/// Verdict parsed it (its `Debug` form, whose maps are ordered), so two
/// spellings of one definition hash alike. Two runs with the same hash and
/// Verdict version were judged by the same definition.
pub fn config_hash(config: &impl std::fmt::Debug) -> String {
    let text = format!("{config:?}");
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{hash:016x}")
}

/// Text of a value for a JSON column, non-finite floats included
/// ([`crate::json::to_string`]): what is written can be read back.
/// A run's stored step columns (`step`, `step_opened_at`,
/// `step_after_look`) as the latest opening of its traffic gate: none at
/// step 0, before the gate ever opened.
fn step_opening(step: i64, at: Option<f64>, after_look: Option<i64>) -> Option<StepOpening> {
    match (usize::try_from(step), at, after_look.map(usize::try_from)) {
        (Ok(step), Some(at), Some(Ok(after_look))) if step > 0 => Some(StepOpening {
            step,
            at,
            after_look,
        }),
        _ => None,
    }
}

fn to_json(value: &impl Serialize) -> Result<String, StoreError> {
    crate::json::to_string(value).map_err(|e| StoreError::Corrupt(format!("cannot encode: {e}")))
}

/// A value from a JSON column, as [`to_json`] or an older version wrote it.
fn from_json<T: for<'de> Deserialize<'de>>(what: &str, text: &str) -> Result<T, StoreError> {
    crate::json::from_str(text).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

/// A decision read back from its `as_str` spelling.
fn action_of(text: &str) -> Result<Action, StoreError> {
    [
        Action::Promote,
        Action::Continue,
        Action::Abort,
        Action::Inconclusive,
    ]
    .into_iter()
    .find(|a| a.as_str() == text)
    .ok_or_else(|| StoreError::Corrupt(format!("unknown decision {text:?}")))
}

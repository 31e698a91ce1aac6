//! The core of the Kayenta-compatible API: a canary-config registry,
//! executions, and Kayenta-shaped results. No HTTP here; `api::kayenta`
//! maps requests and errors onto it.
//!
//! **Configs.** Two sources, one namespace: the daemon's `kayenta_configs`
//! files (they come with the analyses, so a config reload updates them) and
//! configs posted to `/canaryConfig` (a [`CanaryConfigRepository`]). File
//! configs are read-only here: their id is their `id` field, or their name
//! when they have none; `PUT` and `DELETE` on them are refused (edit the
//! file), and a posted config may not take a file config's id or name, so
//! a look-up by name (Argo Rollouts') always finds exactly one config. A
//! posted config is validated by the same converter the files go through
//! (`config::kayenta`), so a config the daemon could not judge is refused
//! when it is posted, with the reason, not when it is first run.
//!
//! **Executions.** `start` checks the request ([`execution::prepare`]),
//! records the execution as running and judges it in a tokio task on the
//! engine (the fetch, judge and score code every webhook look uses), over
//! the scopes' `[start, end]`. The poller reads the outcome from the
//! [`ExecutionRepository`]; `GET /canary/executions` lists them.
//!
//! **Restarts.** With a persistent store (SQLite, PostgreSQL) configs and
//! executions survive the daemon. An execution still running when the
//! daemon stopped is judged again at start-up ([`KayentaApi::resume`]):
//! its scopes are a fixed interval, so judging it again gives the answer
//! the first attempt would have given. One that can no longer be judged
//! (its config no longer converts) ends `terminal` with the reason; none
//! is ever reported `succeeded` without a judgement.
//!
//! **Judges.** `GET /judges` and `POST /judges/judge` ([`judge`]) judge
//! metric data sent inline, without querying anything.

pub mod execution;
pub mod judge;
pub mod model;
pub mod repository;

use crate::engine::Engine;
use crate::telemetry::{KayentaExecution, StoreOperation};
use execution::{Execution, Outcome};
use model::{
    AdhocExecutionRequest, ConfigOrigin, ConfigSummary, ExecutionException, ExecutionParams,
    ExecutionRequest, ExecutionStatusResponse,
};
use repository::{
    CanaryConfigRepository, ExecutionFilter, ExecutionRepository, KayentaRepositories,
    RepositoryError,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use verdict_judges::kayenta::config::CanaryConfig;
use verdict_judges::splitmix64::SplitMix64;

/// Why a request to the Kayenta API was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KayentaError {
    /// No such config or execution.
    #[error("{0}")]
    NotFound(String),
    /// A malformed request or a config Verdict cannot judge.
    #[error("{0}")]
    Invalid(String),
    /// The id or name is taken, or the config comes from a file.
    #[error("{0}")]
    Conflict(String),
    /// Well-formed data that cannot give a trustworthy judgement (a metric
    /// that could not be judged, or a passing score on too little data).
    #[error("{0}")]
    CannotJudge(String),
    #[error(transparent)]
    Store(RepositoryError),
}

impl From<RepositoryError> for KayentaError {
    fn from(e: RepositoryError) -> Self {
        match e {
            RepositoryError::Conflict(m) => KayentaError::Conflict(m),
            other => KayentaError::Store(other),
        }
    }
}

/// Orca's execution statuses, the words `GET /canary/executions?statuses=`
/// takes (Verdict's executions are only ever `RUNNING`, `SUCCEEDED` or
/// `TERMINAL`; the others match nothing).
pub const ORCA_STATUSES: [&str; 12] = [
    "NOT_STARTED",
    "RUNNING",
    "PAUSED",
    "SUSPENDED",
    "SUCCEEDED",
    "FAILED_CONTINUE",
    "TERMINAL",
    "CANCELED",
    "REDIRECT",
    "STOPPED",
    "BUFFERED",
    "SKIPPED",
];

/// Attempts to record an execution's outcome (a store blip should not
/// leave it `running` until the next start-up); 0.5 s, 1 s, 2 s, 4 s apart.
const FINISH_ATTEMPTS: u32 = 5;

/// `GET /canary/executions`' page size when none is given (Kayenta's).
pub const DEFAULT_EXECUTIONS_LIMIT: usize = 20;

/// The Kayenta API's state: the engine and the two repositories.
pub struct KayentaApi {
    engine: Arc<Engine>,
    configs: Arc<dyn CanaryConfigRepository>,
    executions: Arc<dyn ExecutionRepository>,
    /// Ids need to be unique, not secret: a seeded generator.
    ids: std::sync::Mutex<SplitMix64>,
}

impl KayentaApi {
    /// An API over `engine` with in-memory repositories.
    pub fn in_memory(engine: Arc<Engine>) -> Self {
        Self::new(engine, KayentaRepositories::in_memory())
    }

    /// An API over `engine` with the given repositories (a store's:
    /// [`crate::store::Store::kayenta`]).
    pub fn new(engine: Arc<Engine>, repositories: KayentaRepositories) -> Self {
        let KayentaRepositories {
            configs,
            executions,
        } = repositories;
        static INSTANCE: AtomicU64 = AtomicU64::new(0);
        let seed = now_millis() as u64 ^ INSTANCE.fetch_add(1, Ordering::Relaxed).rotate_left(40);
        KayentaApi {
            engine,
            configs,
            executions,
            ids: std::sync::Mutex::new(SplitMix64::new(seed)),
        }
    }

    /// A new UUID-shaped id.
    fn new_id(&self) -> String {
        let mut rng = self.ids.lock().expect("id generator lock");
        let (a, b) = (rng.next_u64(), rng.next_u64());
        format!(
            "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xffff,
            b >> 48,
            b & 0xffff_ffff_ffff
        )
    }

    /// Configs from the daemon's `kayenta_configs` files, by id.
    fn file_configs(&self) -> BTreeMap<String, CanaryConfig> {
        self.engine
            .analyses()
            .values()
            .filter_map(|a| a.kayenta_source.as_deref())
            .map(|c| {
                let id = c.id.clone().unwrap_or_else(|| c.name.clone());
                let mut c = c.clone();
                c.id = Some(id.clone());
                (id, c)
            })
            .collect()
    }

    /// `GET /canaryConfig`: summaries of every config, file configs first,
    /// restricted to those listing `application` when it is given.
    pub async fn list_configs(
        &self,
        application: Option<&str>,
    ) -> Result<Vec<ConfigSummary>, KayentaError> {
        let files = self
            .file_configs()
            .into_values()
            .map(|c| (c, ConfigOrigin::File));
        let posted = self
            .configs
            .list()
            .await?
            .into_iter()
            .map(|c| (c, ConfigOrigin::Api));
        Ok(files
            .chain(posted)
            .filter(|(c, _)| application.is_none_or(|app| c.applications.iter().any(|a| a == app)))
            .map(|(c, origin)| ConfigSummary {
                id: c.id.clone().unwrap_or_default(),
                name: c.name,
                updated_timestamp: c.updated_timestamp,
                updated_timestamp_iso: c.updated_timestamp_iso,
                applications: c.applications,
                origin,
            })
            .collect())
    }

    /// `GET /canaryConfig/{id}`.
    pub async fn get_config(&self, id: &str) -> Result<CanaryConfig, KayentaError> {
        if let Some(c) = self.file_configs().remove(id) {
            return Ok(c);
        }
        self.configs
            .get(id)
            .await?
            .ok_or_else(|| KayentaError::NotFound(format!("canary config {id:?} not found")))
    }

    /// Checks a config for storing: a name Kayenta accepts, applications,
    /// and a conversion to an analysis Verdict can judge.
    async fn check_storable(&self, config: &CanaryConfig, id: &str) -> Result<(), KayentaError> {
        let name_ok = !config.name.is_empty()
            && config
                .name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !name_ok {
            return Err(KayentaError::Invalid(format!(
                "canary config name {:?} must be letters, digits, '-' and '_'",
                config.name
            )));
        }
        if config.applications.is_empty() {
            return Err(KayentaError::Invalid(
                "canary config must list at least one application".into(),
            ));
        }
        judge::check_judge_name(config)?;
        execution::convert(config)
            .and_then(|a| {
                a.validate(&config.name, "").map(|_| ()).map_err(|errors| {
                    errors
                        .iter()
                        .map(|e| format!("{}: {}", e.path, e.message))
                        .collect::<Vec<_>>()
                        .join("; ")
                })
            })
            .map_err(|e| KayentaError::Invalid(format!("canary config is not usable: {e}")))?;
        let files = self.file_configs();
        if files.contains_key(id) {
            return Err(KayentaError::Conflict(format!(
                "canary config {id:?} comes from the daemon's kayenta_configs and is read-only here; edit the file"
            )));
        }
        // Names are unique, so Argo's look-up by name finds one config.
        let posted = self.configs.list().await?;
        let clash = files
            .values()
            .chain(posted.iter())
            .find(|c| c.name == config.name && c.id.as_deref() != Some(id))
            .map(|c| c.id.clone().unwrap_or_default());
        if let Some(other) = clash {
            return Err(KayentaError::Conflict(format!(
                "a canary config named {:?} exists already (id {other:?})",
                config.name
            )));
        }
        Ok(())
    }

    fn stamp(config: &mut CanaryConfig, id: &str, created: Option<(i64, String)>) {
        let now = now_millis();
        let iso = iso_millis(now);
        config.id = Some(id.to_string());
        let (created, created_iso) = created.unwrap_or((now, iso.clone()));
        config.created_timestamp = Some(created);
        config.created_timestamp_iso = Some(created_iso);
        config.updated_timestamp = Some(now);
        config.updated_timestamp_iso = Some(iso);
    }

    /// `POST /canaryConfig`: stores a new config; returns its id.
    pub async fn create_config(&self, mut config: CanaryConfig) -> Result<String, KayentaError> {
        let id = config.id.clone().unwrap_or_else(|| self.new_id());
        if self.configs.get(&id).await?.is_some() {
            return Err(KayentaError::Conflict(format!(
                "canary config {id:?} exists already; PUT /canaryConfig/{id} replaces it"
            )));
        }
        self.check_storable(&config, &id).await?;
        Self::stamp(&mut config, &id, None);
        self.configs.put(config).await?;
        Ok(id)
    }

    /// `PUT /canaryConfig/{id}`: replaces a posted config; returns its id.
    pub async fn update_config(
        &self,
        id: &str,
        mut config: CanaryConfig,
    ) -> Result<String, KayentaError> {
        self.check_storable(&config, id).await?;
        let existing = self
            .configs
            .get(id)
            .await?
            .ok_or_else(|| KayentaError::NotFound(format!("canary config {id:?} not found")))?;
        let created = existing
            .created_timestamp
            .zip(existing.created_timestamp_iso);
        Self::stamp(&mut config, id, created);
        self.configs.put(config).await?;
        Ok(id.to_string())
    }

    /// `DELETE /canaryConfig/{id}`.
    pub async fn delete_config(&self, id: &str) -> Result<(), KayentaError> {
        if self.file_configs().contains_key(id) {
            return Err(KayentaError::Conflict(format!(
                "canary config {id:?} comes from the daemon's kayenta_configs and is read-only here; edit the file"
            )));
        }
        if self.configs.delete(id).await? {
            Ok(())
        } else {
            Err(KayentaError::NotFound(format!(
                "canary config {id:?} not found"
            )))
        }
    }

    /// `POST /canary/{configId}`: starts an execution of a known config.
    pub async fn start(
        &self,
        config_id: &str,
        params: ExecutionParams,
        request: ExecutionRequest,
    ) -> Result<String, KayentaError> {
        let config = self.get_config(config_id).await?;
        self.launch(Some(config_id.to_string()), config, params, request)
            .await
    }

    /// `POST /canary`: starts an execution of an inline config.
    pub async fn start_adhoc(
        &self,
        mut params: ExecutionParams,
        request: AdhocExecutionRequest,
    ) -> Result<String, KayentaError> {
        let config = request
            .canary_config
            .ok_or_else(|| KayentaError::Invalid("canaryConfig is required".into()))?;
        let execution_request = request
            .execution_request
            .ok_or_else(|| KayentaError::Invalid("executionRequest is required".into()))?;
        params.application.get_or_insert_with(|| "ad-hoc".into());
        self.launch(None, config, params, execution_request).await
    }

    async fn launch(
        &self,
        config_id: Option<String>,
        config: CanaryConfig,
        params: ExecutionParams,
        request: ExecutionRequest,
    ) -> Result<String, KayentaError> {
        let judgement = execution::prepare(&config, &request)?;
        let id = self.new_id();
        self.executions
            .insert(Execution {
                id: id.clone(),
                config_id,
                config,
                request,
                params,
                build_time_millis: now_millis(),
                end_time_millis: None,
                outcome: Outcome::Running,
            })
            .await?;
        self.engine
            .telemetry()
            .kayenta_execution(KayentaExecution::Started);
        self.spawn_judgement(id.clone(), judgement);
        Ok(id)
    }

    /// Judges a recorded running execution in the background and records
    /// how it ended.
    fn spawn_judgement(&self, task_id: String, judgement: execution::Judgement) {
        let telemetry = self.engine.telemetry().clone();
        let engine = self.engine.clone();
        let executions = self.executions.clone();
        tokio::spawn(async move {
            let outcome = execution::judge(&engine, &task_id, &judgement).await;
            let status = outcome.status();
            match &outcome {
                Outcome::Terminal(reasons) => {
                    tracing::warn!(execution = %task_id, ?reasons, "kayenta execution terminal")
                }
                _ => tracing::info!(execution = %task_id, status, "kayenta execution complete"),
            }
            if let Some(ended) = outcome.ended() {
                telemetry.kayenta_execution(ended);
            }
            let end = now_millis();
            let mut delay = std::time::Duration::from_millis(500);
            for attempt in 1..=FINISH_ATTEMPTS {
                let Err(e) = executions.finish(&task_id, outcome.clone(), end).await else {
                    break;
                };
                telemetry.store_failed(StoreOperation::KayentaFinish);
                if attempt == FINISH_ATTEMPTS {
                    // The execution stays `running` in the store: the next
                    // start-up judges it again.
                    tracing::error!(execution = %task_id, error = %e, "cannot record the outcome");
                    break;
                }
                tracing::warn!(execution = %task_id, error = %e, attempt, "cannot record the outcome yet; retrying");
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        });
    }

    /// Judges again every execution a previous daemon left running (see
    /// the module documentation); returns how many were re-launched. An
    /// execution that no longer passes [`execution::prepare`] ends
    /// `terminal` with the reason instead.
    pub async fn resume(&self) -> Result<usize, KayentaError> {
        let running = self.executions.list(&ExecutionFilter::running()).await?;
        let mut resumed = 0;
        for e in running {
            match execution::prepare(&e.config, &e.request) {
                Ok(judgement) => {
                    tracing::info!(execution = %e.id, "kayenta execution left running by a previous daemon: judging it again");
                    self.engine
                        .telemetry()
                        .kayenta_execution(KayentaExecution::Resumed);
                    self.spawn_judgement(e.id, judgement);
                    resumed += 1;
                }
                Err(why) => {
                    let reason = format!(
                        "the daemon restarted while this execution ran, and it cannot be judged again: {why}"
                    );
                    tracing::warn!(execution = %e.id, reason, "kayenta execution terminal");
                    self.engine
                        .telemetry()
                        .kayenta_execution(KayentaExecution::Terminal);
                    self.executions
                        .finish(&e.id, Outcome::Terminal(vec![reason]), now_millis())
                        .await?;
                }
            }
        }
        Ok(resumed)
    }

    /// `GET /canary/{id}`: the execution in Kayenta's status shape.
    pub async fn status(&self, id: &str) -> Result<ExecutionStatusResponse, KayentaError> {
        let e =
            self.executions.get(id).await?.ok_or_else(|| {
                KayentaError::NotFound(format!("canary execution {id:?} not found"))
            })?;
        Ok(status_response(e))
    }

    /// `GET /canary/executions`: executions of `application` (`ad-hoc` when
    /// absent or empty, as Kayenta), newest first, `limit` per `page`
    /// (1-based), restricted to `statuses` (Orca's words, comma-separated,
    /// any case) when given.
    pub async fn list_executions(
        &self,
        application: Option<&str>,
        limit: Option<&str>,
        page: Option<&str>,
        statuses: Option<&str>,
    ) -> Result<Vec<ExecutionStatusResponse>, KayentaError> {
        let positive = |name: &str, value: Option<&str>, default: usize| match value {
            None => Ok(default),
            Some(text) => match text.trim().parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(KayentaError::Invalid(format!(
                    "{name} must be a whole number of at least 1, got {text:?}"
                ))),
            },
        };
        let limit =
            positive("limit", limit, DEFAULT_EXECUTIONS_LIMIT)?.min(crate::store::MAX_LIST_LIMIT);
        let page = positive("page", page, 1)?;
        let statuses = match statuses.map(str::trim).filter(|s| !s.is_empty()) {
            None => None,
            Some(text) => Some(
                text.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(|s| {
                        let upper = s.to_ascii_uppercase();
                        if ORCA_STATUSES.contains(&upper.as_str()) {
                            Ok(upper.to_ascii_lowercase())
                        } else {
                            Err(KayentaError::Invalid(format!(
                                "statuses: {s:?} is not an execution status (one of {})",
                                ORCA_STATUSES.join(", ")
                            )))
                        }
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        let application = application
            .filter(|a| !a.is_empty())
            .unwrap_or("ad-hoc")
            .to_string();
        let filter = ExecutionFilter {
            application: Some(application),
            statuses,
            offset: (page - 1).saturating_mul(limit),
            limit: Some(limit),
        };
        Ok(self
            .executions
            .list(&filter)
            .await?
            .into_iter()
            .map(status_response)
            .collect())
    }

    /// `POST /judges/judge`: judges the metric-set-pair list of `request`
    /// with the config `config_id` names or the one inline (exactly one of
    /// the two), at `pass` and `marginal` ([`judge::judge_pairs`]).
    pub async fn judge_direct(
        &self,
        config_id: Option<&str>,
        request: model::DirectJudgeRequest,
        pass: f64,
        marginal: f64,
    ) -> Result<model::DirectJudgeResult, KayentaError> {
        let config = match (config_id, request.canary_config) {
            (Some(id), None) => self.get_config(id).await?,
            (None, Some(inline)) => inline,
            (Some(_), Some(_)) => {
                return Err(KayentaError::Invalid(
                    "give canaryConfigId or an inline canaryConfig, not both".into(),
                ))
            }
            (None, None) => return Err(KayentaError::Invalid(
                "canaryConfigId is required (or send {\"canaryConfig\", \"metricSetPairList\"})"
                    .into(),
            )),
        };
        judge::judge_pairs(
            &config,
            &request.metric_set_pair_list,
            verdict_judges::kayenta::scorer::ScoreThresholds { pass, marginal },
        )
    }
}

/// An execution in Kayenta's status shape (`ExecutionMapper.fromExecution`).
fn status_response(e: Execution) -> ExecutionStatusResponse {
    let status = e.outcome.status();
    let complete = !matches!(e.outcome, Outcome::Running);
    let (result, exception) = match e.outcome {
        Outcome::Running => (None, None),
        Outcome::Succeeded(result) => (Some(*result), None),
        Outcome::Terminal(reasons) => (
            None,
            Some(ExecutionException {
                exception_type: "VerdictExecutionError".into(),
                should_retry: false,
                timestamp: e.end_time_millis.unwrap_or(e.build_time_millis),
                details: serde_json::json!({
                    "error": reasons.first().cloned().unwrap_or_default(),
                    "errors": reasons,
                }),
            }),
        ),
    };
    ExecutionStatusResponse {
        id: e.id.clone(),
        pipeline_id: e.id,
        complete,
        status: status.into(),
        execution_status: status.to_ascii_uppercase(),
        stage_status: BTreeMap::from([("judge".to_string(), status.to_string())]),
        result,
        exception,
        canary_config_id: e.config_id,
        config: e.config,
        canary_execution_request: e.request,
        params: e.params,
        build_time_millis: e.build_time_millis,
        build_time_iso: iso_millis(e.build_time_millis),
        start_time_millis: e.build_time_millis,
        start_time_iso: iso_millis(e.build_time_millis),
        end_time_millis: e.end_time_millis,
        end_time_iso: e.end_time_millis.map(iso_millis),
    }
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Unix milliseconds as an ISO-8601 instant (`2025-01-01T10:00:00.123Z`).
fn iso_millis(millis: i64) -> String {
    chrono::DateTime::from_timestamp_millis(millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

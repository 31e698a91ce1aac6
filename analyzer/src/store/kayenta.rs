//! The Kayenta API's records in the run store: what the SQL backends share.
//!
//! Posted canary configs and executions (`kayenta_api::repository`) live in
//! the tables of migration 2 (`kayenta_configs`, `kayenta_executions`). The
//! SQLite and PostgreSQL implementations (`sqlite::kayenta`,
//! `postgres::kayenta`) differ only in their SQL; this module holds the one
//! mapping between an [`Execution`] and its row, and the error conversion.
//! The JSON columns hold the API's own shapes (the config, the request, the
//! query parameters, the outcome with Kayenta's judge result and Verdict's
//! look), so a stored execution answers `GET /canary/{id}` exactly as it did
//! before a restart.

use super::{from_json, to_json, StoreError};
use crate::kayenta_api::execution::{Execution, Outcome};
use crate::kayenta_api::repository::RepositoryError;
use verdict_judges::kayenta::config::CanaryConfig;

impl From<StoreError> for RepositoryError {
    fn from(e: StoreError) -> Self {
        RepositoryError::Backend(e.to_string())
    }
}

/// An execution's columns, in `kayenta_executions` order.
#[derive(Debug, Clone)]
pub struct ExecutionRow {
    pub id: String,
    pub config_id: Option<String>,
    pub application: Option<String>,
    pub status: String,
    pub build_millis: i64,
    pub end_millis: Option<i64>,
    pub config_json: String,
    pub request_json: String,
    pub params_json: String,
    pub outcome_json: String,
}

/// Column list of [`ExecutionRow`], for SELECT and INSERT.
pub const EXECUTION_COLUMNS: &str = "id, config_id, application, status, build_millis, \
     end_millis, config_json, request_json, params_json, outcome_json";

impl ExecutionRow {
    pub fn of(e: &Execution) -> Result<Self, StoreError> {
        Ok(ExecutionRow {
            id: e.id.clone(),
            config_id: e.config_id.clone(),
            application: e.params.application.clone(),
            status: e.outcome.status().to_string(),
            build_millis: e.build_time_millis,
            end_millis: e.end_time_millis,
            config_json: to_json(&e.config)?,
            request_json: to_json(&e.request)?,
            params_json: to_json(&e.params)?,
            outcome_json: to_json(&e.outcome)?,
        })
    }

    pub fn into_execution(self) -> Result<Execution, StoreError> {
        let what = |column: &str| format!("kayenta execution {:?} {column}", self.id);
        Ok(Execution {
            config_id: self.config_id.clone(),
            config: from_json(&what("config"), &self.config_json)?,
            request: from_json(&what("request"), &self.request_json)?,
            params: from_json(&what("parameters"), &self.params_json)?,
            build_time_millis: self.build_millis,
            end_time_millis: self.end_millis,
            outcome: from_json::<Outcome>(&what("outcome"), &self.outcome_json)?,
            id: self.id,
        })
    }
}

/// A stored config's columns: id, name, updated time (ms), JSON.
pub fn config_row(config: &CanaryConfig) -> Result<(String, String, i64, String), StoreError> {
    let id = config
        .id
        .clone()
        .ok_or_else(|| StoreError::Backend("a stored canary config needs an id".into()))?;
    Ok((
        id,
        config.name.clone(),
        config.updated_timestamp.unwrap_or(0),
        to_json(config)?,
    ))
}

/// A config read back from its JSON column.
pub fn config_of(id: &str, json: &str) -> Result<CanaryConfig, StoreError> {
    from_json(&format!("canary config {id:?}"), json)
}

/// The conflict a unique name raises when two configs claim it.
pub fn name_taken(name: &str) -> RepositoryError {
    RepositoryError::Conflict(format!("a canary config named {name:?} exists already"))
}

/// `LIMIT` of a filter: SQL wants a number; "all" is the largest one.
pub fn sql_limit(limit: Option<usize>) -> i64 {
    limit.map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX))
}

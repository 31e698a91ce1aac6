//! Reading the audit trail back: `GET /v1/runs` (filtered summaries,
//! newest first) and `GET /v1/runs/{id}` (a run with every stored look
//! explained, its Flagger events and notifications). Thin over
//! [`crate::store::Store`]; the shapes are documented in docs/api.md.

use super::Json;
use super::{ApiError, AppState};
use crate::store::{RunFilter, StoreError};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use verdict_judges::decision::Action;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/runs", get(list))
        .route("/v1/runs/{id}", get(show))
}

/// Query parameters of `GET /v1/runs`, as text (parsed by [`RunsQuery::filter`]).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsQuery {
    pub namespace: Option<String>,
    pub name: Option<String>,
    pub analysis: Option<String>,
    pub decision: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
    pub limit: Option<String>,
}

impl RunsQuery {
    /// The store filter; a one-line error for a value that does not parse.
    pub fn filter(&self) -> Result<RunFilter, String> {
        let decision = self
            .decision
            .as_deref()
            .map(|d| {
                [
                    Action::Promote,
                    Action::Continue,
                    Action::Abort,
                    Action::Inconclusive,
                ]
                .into_iter()
                .find(|a| a.as_str() == d)
                .ok_or_else(|| {
                    format!("decision {d:?} must be promote, continue, abort or inconclusive")
                })
            })
            .transpose()?;
        let limit = self
            .limit
            .as_deref()
            .map(|l| match l.parse::<usize>() {
                Ok(n) if n >= 1 => Ok(n),
                _ => Err(format!("limit {l:?} must be a positive integer")),
            })
            .transpose()?;
        Ok(RunFilter {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            analysis: self.analysis.clone(),
            decision,
            since: self
                .since
                .as_deref()
                .map(|t| parse_time("since", t))
                .transpose()?,
            until: self
                .until
                .as_deref()
                .map(|t| parse_time("until", t))
                .transpose()?,
            limit,
        })
    }
}

/// A time as unix seconds or RFC 3339 (`2026-11-22T05:00:00Z`).
pub fn parse_time(field: &str, text: &str) -> Result<f64, String> {
    if let Ok(x) = text.parse::<f64>() {
        if x.is_finite() {
            return Ok(x);
        }
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis() as f64 / 1000.0)
        .map_err(|_| format!("{field} {text:?} must be unix seconds or an RFC 3339 time"))
}

fn unavailable(e: StoreError) -> ApiError {
    ApiError {
        status: StatusCode::SERVICE_UNAVAILABLE,
        message: format!("run store unavailable: {e}"),
    }
}

async fn list(
    State(state): State<AppState>,
    query: Result<Query<RunsQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let filter = query.filter().map_err(ApiError::bad_request)?;
    let runs = state
        .engine
        .store()
        .list_runs(&filter)
        .await
        .map_err(unavailable)?;
    Ok(Json(serde_json::json!({ "runs": runs })).into_response())
}

async fn show(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let id: i64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("run id {id:?} must be an integer")))?;
    match state
        .engine
        .store()
        .get_run(id)
        .await
        .map_err(unavailable)?
    {
        Some(run) => Ok(Json(run).into_response()),
        None => Err(ApiError {
            status: StatusCode::NOT_FOUND,
            message: format!("no run {id}"),
        }),
    }
}

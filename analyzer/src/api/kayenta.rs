//! Kayenta's REST API (kayenta.md §3), for Argo Rollouts' `kayenta` provider
//! and Kayenta users' scripts: thin handlers over [`crate::kayenta_api`].
//!
//! * `GET /canaryConfig` (`application`, `configurationAccountName` tolerated),
//!   `GET|PUT|DELETE /canaryConfig/{id}`, `POST /canaryConfig`;
//! * `POST /canary/{configId}` and the inline-config `POST /canary`, answered
//!   `{"canaryExecutionId": ...}`; account and pipeline query parameters are
//!   accepted and echoed (Verdict has one metrics source);
//! * `GET /canary/{id}`: Kayenta's execution status.
//!
//! Bodies are parsed leniently as Kayenta does (unknown fields ignored, no
//! content type required); a body that is not the expected JSON is a 400.
//! Errors are Spring's JSON error shape, `{"status", "error", "message"}`,
//! the message on one line.

use super::{one_line, AppState};
use crate::kayenta_api::model::{
    AdhocExecutionRequest, CanaryConfigIdResponse, CanaryExecutionResponse, ExecutionParams,
    ExecutionRequest,
};
use crate::kayenta_api::KayentaError;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use verdict_judges::kayenta::config::CanaryConfig;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/canaryConfig", get(list_configs).post(create_config))
        .route(
            "/canaryConfig/{id}",
            get(get_config).put(update_config).delete(delete_config),
        )
        .route("/canary", post(start_adhoc))
        .route("/canary/{id}", get(status).post(start))
}

/// A refused request, as Spring reports it.
pub struct KayentaApiError(KayentaError);

impl From<KayentaError> for KayentaApiError {
    fn from(e: KayentaError) -> Self {
        KayentaApiError(e)
    }
}

impl IntoResponse for KayentaApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            KayentaError::NotFound(_) => StatusCode::NOT_FOUND,
            KayentaError::Invalid(_) => StatusCode::BAD_REQUEST,
            KayentaError::Conflict(_) => StatusCode::CONFLICT,
            KayentaError::Store(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let body = serde_json::json!({
            "status": status.as_u16(),
            "error": status.canonical_reason().unwrap_or(""),
            "message": one_line(&self.0.to_string()),
        });
        (status, Json(body)).into_response()
    }
}

type Answer<T> = Result<Json<T>, KayentaApiError>;

/// Parses a JSON body, refusing anything else with the parser's reason.
fn body<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, KayentaApiError> {
    serde_json::from_slice(bytes)
        .map_err(|e| KayentaError::Invalid(format!("malformed {what}: {e}")).into())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ListParams {
    application: Option<String>,
}

async fn list_configs(
    State(state): State<AppState>,
    Query(params): Query<ListParams>,
) -> Answer<Vec<crate::kayenta_api::model::ConfigSummary>> {
    Ok(Json(
        state.kayenta.list_configs(params.application.as_deref())?,
    ))
}

async fn get_config(State(state): State<AppState>, Path(id): Path<String>) -> Answer<CanaryConfig> {
    Ok(Json(state.kayenta.get_config(&id)?))
}

async fn create_config(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Answer<CanaryConfigIdResponse> {
    let config = body(&bytes, "canary config")?;
    Ok(Json(CanaryConfigIdResponse {
        canary_config_id: state.kayenta.create_config(config)?,
    }))
}

async fn update_config(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer<CanaryConfigIdResponse> {
    let config = body(&bytes, "canary config")?;
    Ok(Json(CanaryConfigIdResponse {
        canary_config_id: state.kayenta.update_config(&id, config)?,
    }))
}

async fn delete_config(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, KayentaApiError> {
    state.kayenta.delete_config(&id)?;
    Ok(StatusCode::NO_CONTENT)
}

async fn start(
    State(state): State<AppState>,
    Path(config_id): Path<String>,
    Query(params): Query<ExecutionParams>,
    bytes: Bytes,
) -> Answer<CanaryExecutionResponse> {
    let request: ExecutionRequest = body(&bytes, "canary execution request")?;
    Ok(Json(CanaryExecutionResponse {
        canary_execution_id: state.kayenta.start(&config_id, params, request)?,
    }))
}

async fn start_adhoc(
    State(state): State<AppState>,
    Query(params): Query<ExecutionParams>,
    bytes: Bytes,
) -> Answer<CanaryExecutionResponse> {
    let request: AdhocExecutionRequest = body(&bytes, "ad-hoc canary execution request")?;
    Ok(Json(CanaryExecutionResponse {
        canary_execution_id: state.kayenta.start_adhoc(params, request)?,
    }))
}

async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<crate::kayenta_api::model::ExecutionStatusResponse> {
    Ok(Json(state.kayenta.status(&id)?))
}

//! Kayenta's REST API (docs/api.md "Kayenta's API"; docs/controllers.md §2.7), for Argo Rollouts' `kayenta` provider
//! and Kayenta users' scripts: thin handlers over [`crate::kayenta_api`].
//!
//! * `GET /canaryConfig` (`application`, `configurationAccountName` tolerated),
//!   `GET|PUT|DELETE /canaryConfig/{id}`, `POST /canaryConfig`;
//! * `POST /canary/{configId}` and the inline-config `POST /canary`, answered
//!   `{"canaryExecutionId": ...}`; account and pipeline query parameters are
//!   accepted and echoed (Verdict has one metrics source);
//! * `GET /canary/{id}`: Kayenta's execution status; `GET /canary/executions`
//!   (`application`, `limit`, `page`, `statuses`) lists them;
//! * `GET /judges` and `POST /judges/judge` (`canaryConfigId`,
//!   `passThreshold`, `marginalThreshold`; the metric-set-pair list in the
//!   body, since Verdict stores none).
//!
//! Bodies are parsed leniently as Kayenta does (unknown fields ignored, no
//! content type required); a body that is not the expected JSON is a 400.
//! Errors are Spring's JSON error shape, `{"status", "error", "message"}`,
//! the message on one line.

use super::Json;
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
use axum::Router;
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
        .route("/canary/executions", get(list_executions))
        .route("/judges", get(list_judges))
        .route("/judges/judge", post(judge))
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
            KayentaError::CannotJudge(_) => StatusCode::UNPROCESSABLE_ENTITY,
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
        state
            .kayenta
            .list_configs(params.application.as_deref())
            .await?,
    ))
}

async fn get_config(State(state): State<AppState>, Path(id): Path<String>) -> Answer<CanaryConfig> {
    Ok(Json(state.kayenta.get_config(&id).await?))
}

async fn create_config(
    State(state): State<AppState>,
    bytes: Bytes,
) -> Answer<CanaryConfigIdResponse> {
    let config = body(&bytes, "canary config")?;
    Ok(Json(CanaryConfigIdResponse {
        canary_config_id: state.kayenta.create_config(config).await?,
    }))
}

async fn update_config(
    State(state): State<AppState>,
    Path(id): Path<String>,
    bytes: Bytes,
) -> Answer<CanaryConfigIdResponse> {
    let config = body(&bytes, "canary config")?;
    Ok(Json(CanaryConfigIdResponse {
        canary_config_id: state.kayenta.update_config(&id, config).await?,
    }))
}

async fn delete_config(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, KayentaApiError> {
    state.kayenta.delete_config(&id).await?;
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
        canary_execution_id: state.kayenta.start(&config_id, params, request).await?,
    }))
}

async fn start_adhoc(
    State(state): State<AppState>,
    Query(params): Query<ExecutionParams>,
    bytes: Bytes,
) -> Answer<CanaryExecutionResponse> {
    let request: AdhocExecutionRequest = body(&bytes, "ad-hoc canary execution request")?;
    Ok(Json(CanaryExecutionResponse {
        canary_execution_id: state.kayenta.start_adhoc(params, request).await?,
    }))
}

async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Answer<crate::kayenta_api::model::ExecutionStatusResponse> {
    Ok(Json(state.kayenta.status(&id).await?))
}

/// `GET /canary/executions`' query; numbers are read by the core, so a bad
/// one is refused in Spring's shape with the reason.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ExecutionListParams {
    application: Option<String>,
    limit: Option<String>,
    page: Option<String>,
    statuses: Option<String>,
}

async fn list_executions(
    State(state): State<AppState>,
    Query(params): Query<ExecutionListParams>,
) -> Answer<Vec<crate::kayenta_api::model::ExecutionStatusResponse>> {
    Ok(Json(
        state
            .kayenta
            .list_executions(
                params.application.as_deref(),
                params.limit.as_deref(),
                params.page.as_deref(),
                params.statuses.as_deref(),
            )
            .await?,
    ))
}

async fn list_judges() -> Json<Vec<crate::kayenta_api::model::JudgeInfo>> {
    Json(crate::kayenta_api::judge::judges())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JudgeParams {
    canary_config_id: Option<String>,
    metric_set_pair_list_id: Option<String>,
    pass_threshold: Option<String>,
    marginal_threshold: Option<String>,
}

/// A required number of the query.
fn threshold(name: &str, value: Option<&str>) -> Result<f64, KayentaApiError> {
    let text = value.ok_or_else(|| KayentaError::Invalid(format!("{name} is required")))?;
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| {
            KayentaError::Invalid(format!("{name} must be a number, got {text:?}")).into()
        })
}

async fn judge(
    State(state): State<AppState>,
    Query(params): Query<JudgeParams>,
    bytes: Bytes,
) -> Answer<crate::kayenta_api::model::DirectJudgeResult> {
    if let Some(id) = &params.metric_set_pair_list_id {
        return Err(KayentaError::Invalid(format!(
            "metricSetPairListId {id:?}: Verdict stores no metric-set-pair lists; send the list in the body"
        ))
        .into());
    }
    let pass = threshold("passThreshold", params.pass_threshold.as_deref())?;
    let marginal = threshold("marginalThreshold", params.marginal_threshold.as_deref())?;
    let request = body(&bytes, "metric-set-pair list")?;
    Ok(Json(
        state
            .kayenta
            .judge_direct(params.canary_config_id.as_deref(), request, pass, marginal)
            .await?,
    ))
}

//! Probes and Verdict's own metrics.
//!
//! * `/healthz`: the process answers (liveness).
//! * `/readyz`: a config is loaded and the metric backend answers
//!   (readiness); a pod that cannot reach Prometheus takes no webhooks.
//! * `/metrics`: Prometheus exposition of [`crate::telemetry`].

use super::AppState;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    if state.engine.analyses().is_empty() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "no analysis configs loaded".to_string(),
        );
    }
    let probe = tokio::time::timeout(std::time::Duration::from_secs(3), state.source.ready()).await;
    match probe {
        Ok(Ok(())) => (StatusCode::OK, "ready".to_string()),
        Ok(Err(e)) => (StatusCode::SERVICE_UNAVAILABLE, format!("not ready: {e}")),
        Err(_) => (
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: metric backend did not answer within 3s".to_string(),
        ),
    }
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.engine.telemetry().render(),
    )
}

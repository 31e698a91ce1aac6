//! The HTTP API: thin axum handlers that parse, call the engine and map its
//! decision to each controller's protocol.
//!
//! * [`flagger`]: `POST /v1/flagger/{analysis}/{hook}` for every Flagger hook type;
//! * [`argo`]: `GET|POST /v1/argo/{analysis}` for Argo Rollouts' `web` provider;
//! * [`health`]: `/healthz`, `/readyz`, `/metrics`;
//! * [`runs`]: `GET /v1/runs`, `GET /v1/runs/{id}` (the recorded runs);
//! * [`auth`]: the token every route but the probes and `/metrics` requires.
//! * [`kayenta`]: Kayenta's `/canaryConfig` and `/canary` endpoints.
//! * [`unrouted`]: one-line bodies for axum's empty 404 and 405 answers.
//!
//! Bad input is a 4xx with a one-line reason and changes nothing.

pub mod argo;
pub mod auth;
pub mod flagger;
pub mod health;
pub mod kayenta;
pub mod runs;
pub mod unrouted;

use crate::engine::Engine;
use crate::source::SeriesSource;
use axum::extract::{MatchedPath, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

/// A JSON answer written with Verdict's conventions ([`crate::json`]): a
/// non-finite float is a string, never a `null` that cannot be read back.
/// Used in place of `axum::Json` for every body the API writes.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match crate::json::to_vec(&self.0) {
            Ok(body) => (
                [(
                    axum::http::header::CONTENT_TYPE,
                    axum::http::HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response(),
            Err(e) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot encode the answer: {e}"),
            )
                .into_response(),
        }
    }
}

/// Largest request body accepted (webhook payloads are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Where the handlers read the time of a look from (unix seconds).
///
/// Serving uses the wall clock ([`wall_clock`]). Serving recorded data as
/// if it were live needs another: a replay of a past rollout runs on a
/// replay clock, and the integration tests pin the clock to the time of the
/// data they backfilled (promtool only backfills the past). The clock is the
/// only source of "now" in the handlers; the engine takes it from the
/// request ([`crate::engine::LookRequest::now`]).
pub type Clock = Arc<dyn Fn() -> f64 + Send + Sync>;

/// The wall clock, in unix seconds.
pub fn wall_clock() -> Clock {
    Arc::new(crate::clock::now)
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    pub source: Arc<dyn SeriesSource>,
    /// The time of each look; [`wall_clock`] when serving.
    pub clock: Clock,
    /// The API tokens in force (authentication off when it holds none).
    pub auth: Arc<auth::Authenticator>,
    /// Kayenta-compatible configs and executions (in memory unless
    /// replaced with [`AppState::with_kayenta`]).
    pub kayenta: Arc<crate::kayenta_api::KayentaApi>,
}

impl AppState {
    /// State for serving: looks are taken at wall-clock time.
    pub fn new(engine: Arc<Engine>, source: Arc<dyn SeriesSource>) -> Self {
        AppState {
            kayenta: Arc::new(crate::kayenta_api::KayentaApi::in_memory(engine.clone())),
            engine,
            source,
            clock: wall_clock(),
            auth: Arc::new(auth::Authenticator::disabled()),
        }
    }

    /// The same state requiring the tokens of `auth`.
    pub fn with_auth(self, auth: Arc<auth::Authenticator>) -> Self {
        AppState { auth, ..self }
    }

    /// The same state with another Kayenta API (e.g. backed by a store).
    pub fn with_kayenta(self, kayenta: Arc<crate::kayenta_api::KayentaApi>) -> Self {
        AppState { kayenta, ..self }
    }

    /// The same state with another clock (replay, tests).
    pub fn with_clock(self, clock: Clock) -> Self {
        AppState { clock, ..self }
    }

    /// The time of a look taken now, by this state's clock.
    pub fn now(&self) -> f64 {
        (self.clock)()
    }
}

/// The whole API.
pub fn router(state: AppState) -> Router {
    let routes = Router::new()
        .merge(flagger::routes())
        .merge(argo::routes())
        .merge(health::routes())
        .merge(kayenta::routes())
        .merge(runs::routes())
        // Every route merged above needs a token but the open ones; keep
        // this layer after the last merge.
        .layer(middleware::from_fn_with_state(
            state.clone(),
            auth::require_token,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state);
    // axum sets a 405's `Allow` header outside the layers of the router that
    // routed it, so the layer that explains empty answers wraps the whole
    // router (its only route) to see that header.
    Router::new()
        .fallback_service(routes)
        .layer(middleware::from_fn(unrouted::explain_empty))
}

/// Counts and times every request by route template and status.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let started = Instant::now();
    let response = next.run(req).await;
    state
        .engine
        .telemetry()
        .http_request(&route, response.status(), started.elapsed());
    response
}

/// A request the API refuses: status and a one-line reason (plain text, so
/// Flagger shows it verbatim in its events).
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        ApiError {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, one_line(&self.message)).into_response()
    }
}

/// Flagger shows the body in one event line; keep it one line.
pub fn one_line(text: &str) -> String {
    text.replace(['\n', '\r'], " ")
}

impl From<crate::engine::EngineError> for ApiError {
    fn from(e: crate::engine::EngineError) -> Self {
        match e {
            crate::engine::EngineError::UnknownAnalysis(_) => ApiError {
                status: StatusCode::NOT_FOUND,
                message: e.to_string(),
            },
            crate::engine::EngineError::BadVariable { .. } => {
                ApiError::bad_request(format!("rejected: {e}"))
            }
        }
    }
}

/// Deepest JSON nesting accepted in a request body. Flagger's and Argo's
/// payloads are two or three levels deep.
pub const MAX_JSON_DEPTH: usize = 32;

/// Refuses JSON nested deeper than [`MAX_JSON_DEPTH`], anywhere in the body
/// (serde skips unknown fields without a depth limit; such a payload is no
/// controller's). A byte scan: brackets inside strings do not count.
pub fn check_nesting(body: &[u8]) -> Result<(), ApiError> {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(ApiError::bad_request(format!(
                        "JSON nested deeper than {MAX_JSON_DEPTH} levels"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Refuses a body declared as anything but JSON. A body without a
/// `Content-Type` is read as JSON (Argo's raw `body` sends none); Flagger and
/// Argo's `jsonBody` send `application/json`.
pub fn require_json(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<(), ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    let Some(value) = headers.get(axum::http::header::CONTENT_TYPE) else {
        return Ok(());
    };
    let media = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|m| m.trim().to_ascii_lowercase());
    match media {
        Some(m)
            if m == "application/json"
                || (m.starts_with("application/") && m.ends_with("+json")) =>
        {
            Ok(())
        }
        _ => Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            message: "the body must be JSON (Content-Type: application/json)".into(),
        }),
    }
}

/// Checks a metadata / argument key: it becomes a template variable name.
pub fn check_var_name(key: &str) -> Result<(), ApiError> {
    let ok = !key.is_empty()
        && key.len() <= 64
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "metadata key {key:?} must be 1-64 letters, digits, '_', '-' or '.'"
        )))
    }
}

/// Optional canary weight from metadata or arguments.
pub fn parse_weight(vars: &BTreeMap<String, String>) -> Result<Option<f64>, ApiError> {
    match vars.get("weight") {
        None => Ok(None),
        Some(w) => match w.trim().trim_end_matches('%').parse::<f64>() {
            Ok(x) if (0.0..=100.0).contains(&x) => Ok(Some(x)),
            _ => Err(ApiError::bad_request(format!(
                "weight {w:?} must be a number between 0 and 100"
            ))),
        },
    }
}

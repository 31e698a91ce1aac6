//! Flagger webhooks (docs/controllers.md §1): one route per analysis and hook type,
//! `POST /v1/flagger/{analysis}/{hook}`, with Flagger's payload as it sends it.
//!
//! Flagger passes a hook when the status is at most 202 and fails it
//! otherwise, showing a 4xx body in its events (5xx bodies are dropped and
//! retried), so every "no" here is a 4xx with a one-line reason:
//!
//! | hook | promote | continue | abort | inconclusive (error) |
//! |---|---|---|---|---|
//! | `pre-rollout`, `rollout` | 200 | 200 | 409 | 424 |
//! | `confirm-traffic-increase` | 200 `open`, once per look | 423, but 200 `open` before the first increase while the canary has had no traffic | 409 | 424 |
//! | `confirm-promotion` | 200 | 423 | 409 | 424 |
//! | `rollback` | 404 | 404 | **200** | 404 |
//! | `confirm-rollout`, `post-rollout`, `event` | 200, no look | | | |
//!
//! Flagger calls `confirm-traffic-increase` before every weight increase,
//! the first one from weight 0 included, when the canary cannot have had
//! any request yet: that gate opens while the canary has had no traffic in
//! the run's window and the baseline has (so the queries work). From then
//! on it holds until the decision is promote, so the weight moves on only
//! once the evidence is in, and never while a metric is shown regressed.
//! Flagger never sends the weight: each opening begins the next step
//! ([`Engine::gate`]), whose weight comes from the analysis's `steps` or
//! the webhook's `stepWeights` metadata (`"5,25,50,100"`, malformed: 400),
//! and whose own minimum duration must pass before it promotes.
//!
//! A rollout check that cannot be judged fails (fail closed, counted toward
//! Flagger's threshold); a rollback is only ever requested on evidence.
//! Every body starts with the decision (`promote`, `continue`, ...).

use super::{check_var_name, one_line, parse_weight, ApiError, AppState};
use crate::config::analysis::StepWeights;
use crate::config::template::{validate_k8s_name, validate_token};
use crate::engine::run::RunKey;
use crate::engine::{Engine, GateAnswer, LookRequest};
use crate::telemetry::{Controller, FlaggerEventType, StoreOperation};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde::Deserialize;
use std::collections::BTreeMap;
use verdict_judges::decision::{Action, Decision};

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/flagger/{analysis}/{hook}", post(handle))
}

/// Flagger's `CanaryWebhookPayload`. Unknown fields are ignored (Flagger
/// may add some); metadata values are strings, as Go's map[string]string.
#[derive(Debug, Clone, Deserialize)]
pub struct FlaggerWebhook {
    pub name: String,
    pub namespace: String,
    #[serde(default)]
    pub phase: String,
    #[serde(default)]
    pub checksum: String,
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
}

/// Flagger's webhook types (the CRD enum; an empty type means `rollout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    ConfirmRollout,
    PreRollout,
    Rollout,
    ConfirmTrafficIncrease,
    ConfirmPromotion,
    PostRollout,
    Rollback,
    Event,
}

impl HookType {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "confirm-rollout" => HookType::ConfirmRollout,
            "pre-rollout" => HookType::PreRollout,
            "rollout" => HookType::Rollout,
            "confirm-traffic-increase" => HookType::ConfirmTrafficIncrease,
            "confirm-promotion" => HookType::ConfirmPromotion,
            "post-rollout" => HookType::PostRollout,
            "rollback" => HookType::Rollback,
            "event" => HookType::Event,
            _ => return None,
        })
    }
}

impl FlaggerWebhook {
    /// Parses and validates a payload; names must be Kubernetes names, so
    /// nothing else can reach a query template. The API token
    /// (`metadata.token`) is removed here: it is never a template variable.
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        super::check_nesting(body)?;
        let mut hook: FlaggerWebhook = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("malformed Flagger webhook: {e}")))?;
        validate_k8s_name("name", &hook.name).map_err(ApiError::bad_request)?;
        validate_k8s_name("namespace", &hook.namespace).map_err(ApiError::bad_request)?;
        validate_token("checksum", &hook.checksum).map_err(ApiError::bad_request)?;
        super::auth::strip_token(&mut hook.metadata);
        for key in hook.metadata.keys() {
            check_var_name(key)?;
        }
        Ok(hook)
    }

    pub fn key(&self) -> RunKey {
        RunKey::Flagger {
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            checksum: self.checksum.clone(),
        }
    }

    /// Template variables: metadata first, then the payload's own fields,
    /// which metadata cannot override.
    pub fn vars(&self) -> BTreeMap<String, String> {
        let mut vars = self.metadata.clone();
        vars.insert("name".into(), self.name.clone());
        vars.insert("namespace".into(), self.namespace.clone());
        vars.insert("checksum".into(), self.checksum.clone());
        vars.insert("phase".into(), self.phase.clone());
        vars.entry("target".into())
            .or_insert_with(|| self.name.clone());
        vars
    }
}

async fn handle(
    State(state): State<AppState>,
    Path((analysis, hook)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::require_json(&headers, &body)?;
    let hook_type = HookType::parse(&hook).ok_or_else(|| ApiError {
        status: StatusCode::NOT_FOUND,
        message: format!(
            "unknown Flagger hook type {hook:?} (confirm-rollout, pre-rollout, rollout, \
             confirm-traffic-increase, confirm-promotion, post-rollout, rollback, event)"
        ),
    })?;
    let payload = FlaggerWebhook::parse(&body)?;
    let engine = &state.engine;
    if !engine.analyses().contains_key(&analysis) {
        return Err(crate::engine::EngineError::UnknownAnalysis(analysis).into());
    }
    match hook_type {
        HookType::Event => record_event(&state, analysis, &payload).await,
        HookType::ConfirmRollout => Ok((StatusCode::OK, "rollout may start").into_response()),
        HookType::PostRollout => {
            let closed = engine
                .close(&analysis, &payload.key(), &payload.phase, state.now())
                .await;
            let text = if closed { "run closed" } else { "no open run" };
            Ok((StatusCode::OK, text).into_response())
        }
        _ => {
            let vars = payload.vars();
            let weight = parse_weight(&vars)?;
            let steps = match payload.metadata.get("stepWeights") {
                Some(text) => Some(StepWeights::parse(text).map_err(|e| {
                    ApiError::bad_request(format!("metadata stepWeights {text:?}: {e}"))
                })?),
                None => None,
            };
            let request = LookRequest {
                key: payload.key(),
                analysis,
                vars,
                now: state.now(),
                weight,
                steps,
            };
            Ok(look_and_answer(engine, hook_type, request).await)
        }
    }
}

/// The `event` hook: counted by type, logged, and recorded in the run
/// store (a 503 when it cannot be recorded, so Flagger's log shows it).
async fn record_event(
    state: &AppState,
    analysis: String,
    payload: &FlaggerWebhook,
) -> Result<Response, ApiError> {
    let engine = &state.engine;
    let kind = FlaggerEventType::of(payload.metadata.get("eventType").map(String::as_str));
    engine.telemetry().flagger_event(kind);
    tracing::info!(
        run = %payload.key(),
        event_type = kind.as_str(),
        message = payload.metadata.get("eventMessage").map(String::as_str).unwrap_or(""),
        "flagger event"
    );
    let event = crate::store::EventRecord {
        received_at: state.now(),
        analysis,
        key: payload.key(),
        run_id: None,
        namespace: payload.namespace.clone(),
        name: payload.name.clone(),
        phase: payload.phase.clone(),
        event_type: kind.as_str().to_string(),
        message: payload
            .metadata
            .get("eventMessage")
            .cloned()
            .unwrap_or_default(),
        metadata: payload.metadata.clone(),
    };
    if let Err(e) = engine.store().record_event(&event).await {
        engine.telemetry().store_failed(StoreOperation::RecordEvent);
        tracing::error!("run store: {e}");
        return Err(ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: format!("event not recorded: {e}"),
        });
    }
    Ok((StatusCode::OK, "event recorded").into_response())
}

/// Takes the look (at the traffic gate, the gate's answer) within the
/// answer budget and maps it to Flagger.
async fn look_and_answer(engine: &Engine, hook: HookType, request: LookRequest) -> Response {
    let answered = async {
        if hook == HookType::ConfirmTrafficIncrease {
            engine.gate(request).await
        } else {
            let look = engine.look(request).await?;
            Ok(GateAnswer {
                decision: look.decision.clone(),
                look,
                opened: None,
            })
        }
    };
    match tokio::time::timeout(Engine::answer_budget(), answered).await {
        Ok(Ok(answer)) => {
            let (status, text) = match answer.opened {
                Some(_) => (
                    StatusCode::OK,
                    format!("open: {}", answer.decision.summary()),
                ),
                None => respond(hook, &answer.decision),
            };
            (status, one_line(&text)).into_response()
        }
        Ok(Err(e)) => ApiError::from(e).into_response(),
        Err(_) => {
            engine
                .telemetry()
                .answer_budget_exceeded(Controller::Flagger);
            // Out of time: answer as "cannot judge", which fails closed.
            let d = Decision::inconclusive("the analysis did not finish within the answer budget");
            let (status, text) = respond(hook, &d);
            (status, text).into_response()
        }
    }
}

/// The Flagger status and body for a decision (see the module table).
pub fn respond(hook: HookType, decision: &Decision) -> (StatusCode, String) {
    let why = decision.summary();
    match (hook, decision.action) {
        (HookType::Rollback, Action::Abort) => (StatusCode::OK, format!("roll back: {why}")),
        (HookType::Rollback, _) => (StatusCode::NOT_FOUND, format!("no rollback: {why}")),
        (_, Action::Abort) => (StatusCode::CONFLICT, format!("regressed: {why}")),
        (_, Action::Inconclusive) => (
            StatusCode::FAILED_DEPENDENCY,
            format!("cannot judge: {why}"),
        ),
        // The traffic gate opens only through `Engine::gate` (an answer
        // with an opening); a promote it did not open on holds.
        (HookType::ConfirmTrafficIncrease, Action::Promote) => {
            (StatusCode::LOCKED, format!("continue: {why}"))
        }
        (_, Action::Promote) => (StatusCode::OK, format!("promote: {why}")),
        // A rollout check passes while the evidence builds up; the gates
        // hold the weight instead (a failed check would count toward a
        // rollback that nothing has shown to be needed).
        (HookType::PreRollout | HookType::Rollout, Action::Continue) => {
            (StatusCode::OK, format!("continue: {why}"))
        }
        (_, Action::Continue) => (StatusCode::LOCKED, format!("continue: {why}")),
    }
}

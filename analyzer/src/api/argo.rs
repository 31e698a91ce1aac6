//! Argo Rollouts' `web` metric provider (docs/controllers.md §2.3): `GET` or `POST`
//! `/v1/argo/{analysis}` with the run's identity in the query string or a
//! JSON body (`jsonBody`), answered with 200 and a JSON decision:
//!
//! ```json
//! {"decision":"abort","score":33.33,"reason":"...","metrics":[...],"look":3,"run":"argo/..."}
//! ```
//!
//! so a template's `jsonPath: "{$.decision}"` with `successCondition:
//! result == "promote"` and `failureCondition: result == "abort"` works:
//! `continue` and `inconclusive` satisfy neither, which Argo records as
//! Inconclusive. Regressions are 200 (a non-2xx is an Argo *Error*, tolerated
//! four times); non-2xx means a malformed request (400), an unknown analysis
//! (404), or a metric backend that answered nothing at all (503, so that
//! Argo's consecutive-error limit applies, docs/controllers.md A-11).
//!
//! With `format=text` the body is just the decision word (`text/plain`), for
//! templates without `jsonPath` (docs/controllers.md A-05).
//!
//! Parameters: `run` (an explicit run id) or `namespace` + `rollout` +
//! `canary-hash` (the run is those, plus `phase`); `stable-hash`, `phase`
//! (`step`, `background`, `pre-promotion`, `post-promotion`), `weight` and any
//! other argument become template variables.

use super::Json;
use super::{check_var_name, parse_weight, ApiError, AppState};
use crate::config::template::{validate_k8s_name, validate_token};
use crate::engine::run::{Look, RunKey};
use crate::engine::{Engine, LookRequest};
use crate::telemetry::Controller;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Serialize;
use std::collections::BTreeMap;
use verdict_judges::decision::Action;

pub fn routes() -> Router<AppState> {
    Router::new().route("/v1/argo/{analysis}", get(handle).post(handle))
}

/// The JSON answer. Field names and types are stable: templates address
/// them with JSONPath and expr conditions.
#[derive(Debug, Clone, Serialize)]
pub struct ArgoAnswer {
    pub decision: Action,
    pub score: f64,
    pub reason: String,
    pub run: String,
    pub look: usize,
    pub window: crate::engine::run::LookWindow,
    /// What the canary was compared against.
    pub baseline: String,
    pub metrics: Vec<crate::engine::judge::MetricVerdict>,
}

impl ArgoAnswer {
    fn from_look(key: &RunKey, look: &Look) -> Self {
        ArgoAnswer {
            decision: look.decision.action,
            score: look.decision.score,
            reason: look.decision.summary(),
            run: key.to_string(),
            look: look.number,
            window: look.window,
            baseline: look.baseline.clone(),
            metrics: look.metrics.clone(),
        }
    }
}

/// Arguments from the query string and, for POST, a flat JSON object.
pub fn arguments(query: Option<&str>, body: &[u8]) -> Result<BTreeMap<String, String>, ApiError> {
    let mut args = BTreeMap::new();
    if let Some(q) = query {
        for (k, v) in form_urlencoded_pairs(q)? {
            args.insert(k, v);
        }
    }
    if !body.iter().all(u8::is_ascii_whitespace) {
        super::check_nesting(body)?;
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("malformed JSON body: {e}")))?;
        for (k, v) in object {
            let v = match v {
                serde_json::Value::String(s) => s,
                serde_json::Value::Number(n) => n.to_string(),
                serde_json::Value::Bool(b) => b.to_string(),
                other => {
                    return Err(ApiError::bad_request(format!(
                        "argument {k:?} must be a string or number, got {other}"
                    )))
                }
            };
            args.insert(k, v);
        }
    }
    // A token belongs in the Authorization header; one passed as an
    // argument is never a template variable.
    super::auth::strip_token(&mut args);
    for key in args.keys() {
        check_var_name(key)?;
    }
    Ok(args)
}

/// Splits `a=b&c=d`, percent-decoding; Argo does not encode arguments, so
/// a raw `=` inside a value (`app=guestbook`) is kept as part of the value.
fn form_urlencoded_pairs(q: &str) -> Result<Vec<(String, String)>, ApiError> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((percent_decode(k)?, percent_decode(v)?))
        })
        .collect()
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bad = || ApiError::bad_request(format!("bad percent-encoding in {s:?}"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ApiError::bad_request("query string is not UTF-8"))
}

/// The run key and template variables of a request.
pub fn identify(
    args: &BTreeMap<String, String>,
) -> Result<(RunKey, BTreeMap<String, String>), ApiError> {
    let mut vars = args.clone();
    for k in ["namespace", "rollout"] {
        if let Some(v) = args.get(k) {
            validate_k8s_name(k, v).map_err(ApiError::bad_request)?;
        }
    }
    for k in ["canary-hash", "stable-hash", "run"] {
        if let Some(v) = args.get(k) {
            validate_token(k, v).map_err(ApiError::bad_request)?;
        }
    }
    let phase = args.get("phase").map(String::as_str).unwrap_or("step");
    if !matches!(
        phase,
        "step" | "background" | "pre-promotion" | "post-promotion"
    ) {
        return Err(ApiError::bad_request(format!(
            "phase {phase:?} must be step, background, pre-promotion or post-promotion"
        )));
    }
    let run =
        match args.get("run") {
            Some(run) => run.clone(),
            None => match (
                args.get("namespace"),
                args.get("rollout"),
                args.get("canary-hash"),
            ) {
                (Some(ns), Some(ro), Some(hash)) => format!("{ns}/{ro}/{hash}/{phase}"),
                _ => return Err(ApiError::bad_request(
                    "identify the run with `run`, or with `namespace`, `rollout` and `canary-hash`",
                )),
            },
        };
    if let Some(ro) = args.get("rollout") {
        vars.entry("name".into()).or_insert_with(|| ro.clone());
    }
    vars.insert("phase".into(), phase.into());
    Ok((RunKey::Argo { run }, vars))
}

async fn handle(
    State(state): State<AppState>,
    Path(analysis): Path<String>,
    RawQuery(query): RawQuery,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    super::require_json(&headers, &body)?;
    let args = arguments(query.as_deref(), &body)?;
    let (key, vars) = identify(&args)?;
    let weight = parse_weight(&vars)?;
    let engine: &Engine = &state.engine;
    let request = LookRequest {
        key: key.clone(),
        analysis,
        vars,
        now: state.now(),
        weight,
        steps: None,
    };
    match tokio::time::timeout(Engine::answer_budget(), engine.look(request)).await {
        Ok(Ok(look)) => {
            if look.metrics.iter().all(|m| m.source_failed()) {
                return Err(ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    message: format!("metric backend unavailable: {}", look.decision.summary()),
                });
            }
            // A-05: a template without jsonPath reads the raw body as `result`.
            if args.get("format").map(String::as_str) == Some("text") {
                return Ok(look.decision.action.as_str().into_response());
            }
            Ok(Json(ArgoAnswer::from_look(&key, &look)).into_response())
        }
        Ok(Err(e)) => Err(e.into()),
        Err(_) => {
            engine.telemetry().answer_budget_exceeded(Controller::Argo);
            Err(ApiError {
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: "the analysis did not finish within the answer budget".into(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_body_arguments_merge() {
        let args = arguments(
            Some("namespace=test&rollout=guestbook&canary-hash=abc&selector=app=guestbook%20x"),
            br#"{"stable-hash":"def","weight":25}"#,
        )
        .unwrap();
        assert_eq!(args["selector"], "app=guestbook x");
        assert_eq!(args["weight"], "25");
        let (key, vars) = identify(&args).unwrap();
        assert_eq!(
            key,
            RunKey::Argo {
                run: "test/guestbook/abc/step".into()
            }
        );
        assert_eq!(vars["name"], "guestbook");
    }

    #[test]
    fn malformed_requests_are_refused() {
        assert!(arguments(None, b"[1,2]").is_err());
        assert!(arguments(Some("a=%zz"), b"").is_err());
        assert!(arguments(None, br#"{"x":{"nested":1}}"#).is_err());
        let args = arguments(Some("namespace=Bad_NS&rollout=r&canary-hash=h"), b"").unwrap();
        assert!(identify(&args).is_err());
        let args = arguments(Some("rollout=r"), b"").unwrap();
        assert!(identify(&args).is_err());
        let args = arguments(Some("run=r1&phase=sometimes"), b"").unwrap();
        assert!(identify(&args).is_err());
    }
}

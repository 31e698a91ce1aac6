//! The Argo Rollouts driver against a local receiver whose answers the
//! test chooses: the web provider's request (args resolved into the
//! shipped template's body and header), Errors and the consecutive-error
//! limit, Inconclusive pausing the rollout (docs/controllers.md §2.2-§2.6),
//! and templates this driver must refuse. No Verdict, no Prometheus.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use verdict_e2e::argo::{
    AnalysisPhase, AnalysisTemplate, ArgValue, Outcome, Rollout, RolloutSpec, Step,
};
use verdict_e2e::load::CanaryWeight;

const SHIPPED: &str = include_str!("../../../templates/argo/analysistemplates.yaml");
const INTERVAL: Duration = Duration::from_millis(100);
const RETRY: Duration = Duration::from_millis(60);

/// What the receiver answers, and what it was sent.
#[derive(Default)]
struct Receiver {
    /// `None`: 503; otherwise a 200 with this decision.
    decision: Option<&'static str>,
    requests: Vec<(Option<String>, Option<String>, serde_json::Value)>,
}

async fn answer(
    State(state): State<Arc<Mutex<Receiver>>>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let mut r = state.lock().expect("receiver state");
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    r.requests.push((
        header("authorization"),
        header("content-type"),
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    ));
    match r.decision {
        None => (StatusCode::SERVICE_UNAVAILABLE, "backend down").into_response(),
        Some(d) => axum::Json(serde_json::json!({"decision": d, "look": 1})).into_response(),
    }
}

async fn receiver(decision: Option<&'static str>) -> (String, Arc<Mutex<Receiver>>) {
    let state = Arc::new(Mutex::new(Receiver {
        decision,
        requests: Vec::new(),
    }));
    let app = Router::new()
        .route("/v1/argo/{analysis}", post(answer))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    (format!("http://{addr}"), state)
}

fn spec(origin: &str) -> RolloutSpec {
    let template = AnalysisTemplate::from_yaml(SHIPPED, "verdict-step")
        .expect("the shipped template")
        .scaled(INTERVAL, None)
        .with_origin(origin)
        .expect("origin");
    let mut steps = Vec::new();
    for w in [5, 25] {
        steps.push(Step::SetWeight(w));
        steps.push(Step::Analysis {
            template: template.clone(),
            args: vec![
                (
                    "namespace".into(),
                    ArgValue::FieldRef("metadata.namespace".into()),
                ),
                ("rollout".into(), ArgValue::FieldRef("metadata.name".into())),
                ("canary-hash".into(), ArgValue::LatestHash),
                ("stable-hash".into(), ArgValue::StableHash),
                ("weight".into(), ArgValue::Value(w.to_string())),
            ],
        });
    }
    RolloutSpec {
        name: "podinfo".into(),
        namespace: "test".into(),
        canary_hash: "abc123".into(),
        stable_hash: "def456".into(),
        steps,
        secrets: BTreeMap::from([(
            ("verdict-api-token".to_string(), "token".to_string()),
            "s3cret-token-0123456789".to_string(),
        )]),
        error_retry: RETRY,
        deadline: Duration::from_secs(10),
    }
}

#[tokio::test]
async fn the_shipped_template_is_sent_resolved_and_promote_passes_every_step() {
    let (url, state) = receiver(Some("promote")).await;
    let weight = Arc::new(CanaryWeight::default());
    let report = Rollout::new(spec(&url), weight.clone())
        .expect("driver")
        .run()
        .await;
    let timeline = report.timeline();
    assert_eq!(report.outcome, Outcome::Promoted, "{timeline}");
    assert_eq!(weight.get(), 100);
    // consecutiveSuccessLimit: 1 from the template: the first promote
    // ends each step's run.
    assert_eq!(report.runs.len(), 2, "{timeline}");
    assert!(report.runs.iter().all(|r| r.measurements.len() == 1));
    let requests = &state.lock().expect("state").requests;
    assert_eq!(requests.len(), 2);
    let (auth, content_type, body) = &requests[1];
    assert_eq!(auth.as_deref(), Some("Bearer s3cret-token-0123456789"));
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(
        body,
        &serde_json::json!({"namespace": "test", "rollout": "podinfo",
            "canary-hash": "abc123", "stable-hash": "def456",
            "phase": "step", "weight": "25"})
    );
    assert_eq!(report.runs[0].args["verdict-token"], "*****");
    assert_eq!(
        report.runs[0].measurements[0].value.as_deref(),
        Some("\"promote\"")
    );
}

#[tokio::test]
async fn five_consecutive_errors_abort_and_are_retried_after_the_retry_delay() {
    let (url, _state) = receiver(None).await;
    let weight = Arc::new(CanaryWeight::default());
    let report = Rollout::new(spec(&url), weight.clone())
        .expect("driver")
        .run()
        .await;
    let timeline = report.timeline();
    assert_eq!(
        report.outcome,
        Outcome::Aborted {
            step: 1,
            phase: AnalysisPhase::Error
        },
        "{timeline}"
    );
    assert_eq!(weight.get(), 0, "an abort sends all traffic to stable");
    let run = &report.runs[0];
    // consecutiveErrorLimit 4: the fifth Error in a row errors the metric;
    // Errors do not count toward `count`.
    assert_eq!(run.measurements.len(), 5, "{timeline}");
    assert_eq!(run.counters.count, 0);
    assert!(run
        .measurements
        .iter()
        .all(|m| m.phase == AnalysisPhase::Error
            && m.message.starts_with("received non 2xx response code: 503")));
    for pair in run.measurements.windows(2) {
        let gap = pair[1].started - pair[0].finished;
        assert!(
            gap >= RETRY.as_secs_f64() * 0.9 && gap < INTERVAL.as_secs_f64(),
            "retried {gap:.3} s after an Error:\n{timeline}"
        );
    }
}

#[tokio::test]
async fn count_inconclusive_measurements_pause_the_rollout_and_abort_fails_it() {
    let (url, _state) = receiver(Some("continue")).await;
    let weight = Arc::new(CanaryWeight::default());
    let report = Rollout::new(spec(&url), weight.clone())
        .expect("driver")
        .run()
        .await;
    let timeline = report.timeline();
    assert_eq!(
        report.outcome,
        Outcome::Paused { step: 1, weight: 5 },
        "{timeline}"
    );
    assert_eq!(weight.get(), 5, "a paused rollout keeps its weight");
    // count 15, inconclusiveLimit 14 from the template.
    assert_eq!(report.runs[0].counters.inconclusive, 15, "{timeline}");

    let (url, _state) = receiver(Some("abort")).await;
    let report = Rollout::new(spec(&url), Arc::new(CanaryWeight::default()))
        .expect("driver")
        .run()
        .await;
    assert_eq!(
        report.outcome,
        Outcome::Aborted {
            step: 1,
            phase: AnalysisPhase::Failed
        },
        "failureLimit 0: the first abort fails the run\n{}",
        report.timeline()
    );
    assert_eq!(report.runs[0].measurements.len(), 1);
}

#[test]
fn templates_the_driver_does_not_implement_are_refused() {
    assert!(AnalysisTemplate::from_yaml(SHIPPED, "verdict-step").is_ok());
    for (from, to, why) in [
        (
            r#"successCondition: result == "promote""#,
            r#"successCondition: result != "abort""#,
            "condition",
        ),
        (
            r#"jsonPath: "{$.decision}""#,
            r#"jsonPath: "{$.metrics[0].name}""#,
            "JSONPath",
        ),
        (
            "      interval: 1m\n",
            "      interval: 1m\n      initialDelay: 30s\n",
            "initialDelay",
        ),
        (
            "          method: POST\n",
            "          method: POST\n          insecure: true\n",
            "insecure",
        ),
        ("      interval: 1m\n", "      interval: 1d\n", "duration"),
    ] {
        assert!(
            SHIPPED.contains(from),
            "the shipped template changed: {from}"
        );
        let changed = SHIPPED.replacen(from, to, 1);
        let error = AnalysisTemplate::from_yaml(&changed, "verdict-step")
            .expect_err(&format!("a template with {to:?} must be refused"));
        assert!(
            error.0.contains(why) || error.0.contains(to.trim()),
            "{why}: {error}"
        );
    }
    let missing = AnalysisTemplate::from_yaml(SHIPPED, "no-such-template");
    assert!(missing.is_err());
}

//! The Flagger driver against a local receiver whose answers the test
//! chooses: Flagger's reading of statuses and timeouts (docs/controllers.md §1.4,
//! §1.5), without Verdict or Prometheus.

use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use verdict_e2e::flagger::{Canary, HookType, Phase, RollbackCause, Rollout, Webhook};
use verdict_e2e::load::CanaryWeight;

/// `/ok` answers 200, `/no-content` 204, `/slow` 200 after a second.
async fn receiver() -> String {
    let app = Router::new()
        .route("/ok", post(|| async { "ok" }))
        .route("/no-content", post(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/slow",
            post(|| async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                "too late"
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

#[tokio::test]
async fn a_204_fails_a_check_and_a_timed_out_rollback_hook_is_no_rollback() {
    let url = receiver().await;
    let hook = |kind: HookType, path: &str, timeout_ms: u64| Webhook {
        name: kind.as_str().into(),
        hook: kind,
        url: format!("{url}{path}"),
        timeout: Duration::from_millis(timeout_ms),
        metadata: BTreeMap::new(),
    };
    let canary = Canary {
        name: "podinfo".into(),
        namespace: "test".into(),
        checksum: "85d557f47b".into(),
        interval: Duration::from_millis(300),
        threshold: 2,
        step_weights: vec![50, 100],
        webhooks: vec![
            hook(HookType::ConfirmRollout, "/ok", 1000),
            hook(HookType::PreRollout, "/ok", 1000),
            // 204 is a failure for Flagger (status > 202).
            hook(HookType::Rollout, "/no-content", 1000),
            // Would answer 200 (roll back) but only after its timeout.
            hook(HookType::Rollback, "/slow", 100),
            hook(HookType::PostRollout, "/ok", 1000),
        ],
        max_ticks: 10,
    };
    let weight = Arc::new(CanaryWeight::default());
    let report = Rollout::new(canary, weight.clone())
        .expect("driver")
        .run()
        .await;
    let timeline = report.timeline();
    assert_eq!(report.phase, Phase::Failed, "{timeline}");
    // Tick 0 confirms, 1 runs pre-rollout and moves to 50 %, 2 and 3 fail
    // their rollout check, 4 rolls back at the threshold.
    assert_eq!(
        report.rollback,
        Some((4, RollbackCause::Threshold)),
        "{timeline}"
    );
    assert_eq!(report.ticks[1].weight, 0);
    assert_eq!(report.ticks[2].weight, 50);
    assert_eq!(
        weight.get(),
        0,
        "a rollback routes all traffic to the primary"
    );
    let calls: Vec<_> = report.ticks.iter().flat_map(|t| &t.calls).collect();
    let rollbacks: Vec<_> = calls
        .iter()
        .filter(|c| c.hook == HookType::Rollback)
        .collect();
    assert_eq!(rollbacks.len(), 4, "{timeline}");
    assert!(
        rollbacks
            .iter()
            .all(|c| c.status.is_none() && c.detail == "timed out"),
        "{timeline}"
    );
    let rollouts: Vec<_> = calls
        .iter()
        .filter(|c| c.hook == HookType::Rollout)
        .collect();
    assert_eq!(rollouts.len(), 2, "{timeline}");
    assert!(rollouts
        .iter()
        .all(|c| c.status == Some(204) && !c.passed()));
    assert_eq!(report.ticks.last().map(|t| t.failed_checks), Some(2));
    assert!(
        calls
            .iter()
            .any(|c| c.hook == HookType::PostRollout && c.passed()),
        "post-rollout is called after a rollback: {timeline}"
    );
}

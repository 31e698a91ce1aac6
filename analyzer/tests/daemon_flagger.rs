//! Verdict as Flagger sees it: webhooks against a daemon that queries a real
//! Prometheus holding a known rollout (docs/controllers.md §1.3-1.5, cases F-01 to
//! F-15, X-02). Every test has its own Prometheus and daemon; the daemon's
//! clock is pinned to the data (see `support::daemon`).
//!
//! A Flagger tick calls `rollback`, then `rollout`, then (at max weight)
//! `confirm-promotion`, all with the same payload; [`tick`] does the same.

mod support;

use std::time::{Duration, Instant};
use support::daemon::{Answer, Daemon};
use support::scenario::{config, Presence, Scenario};

/// §1.3, a `rollout` hook whose spec has metadata.
const PAYLOAD: &str = r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b","metadata":{"baseline":"primary","window":"2m"}}"#;
/// §1.3, the same hook without metadata.
const PAYLOAD_NO_METADATA: &str =
    r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}"#;
/// §1.3, the event hook.
const EVENT: &str = r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b",
 "metadata":{"eventMessage":"Advance podinfo.test canary weight 20","eventType":"Normal",
             "timestamp":"1753100000123","environment":"test"}}"#;

/// Whether Flagger counts a status as success (`callWebhook`: > 202 fails).
fn flagger_passes(status: u16) -> bool {
    (200..=202).contains(&status)
}

/// POSTs a hook and checks what must hold for every answer: never a status
/// Flagger would misread (203-299, F-03), never a 5xx (its body would be
/// dropped), and a one-line text body.
async fn hook(d: &Daemon, analysis: &str, hook: &str, payload: &str) -> Answer {
    let a = d
        .post_json(&format!("/v1/flagger/{analysis}/{hook}"), payload)
        .await;
    assert!(
        !(203..=299).contains(&a.status),
        "F-03: {hook} answered {} (Flagger counts 203-299 as failure): {}",
        a.status,
        a.body
    );
    assert!(
        a.status < 500,
        "{hook} answered a 5xx: {} {}",
        a.status,
        a.body
    );
    assert!(!a.body.contains('\n'), "body is not one line: {:?}", a.body);
    a
}

/// The answers of one Flagger tick at max weight.
#[derive(Debug)]
struct Tick {
    rollback: Answer,
    rollout: Answer,
    confirm_promotion: Answer,
}

async fn tick(d: &Daemon, analysis: &str, payload: &str) -> Tick {
    Tick {
        rollback: hook(d, analysis, "rollback", payload).await,
        rollout: hook(d, analysis, "rollout", payload).await,
        confirm_promotion: hook(d, analysis, "confirm-promotion", payload).await,
    }
}

/// The tick of a run that must be aborted: rollback 200 (roll back now),
/// rollout 409 (a failed check), promotion refused.
fn assert_aborts(t: &Tick) {
    assert_eq!(t.rollback.status, 200, "{t:#?}");
    assert!(t.rollback.body.starts_with("roll back: "), "{t:#?}");
    assert_eq!(t.rollout.status, 409, "{t:#?}");
    assert!(t.rollout.body.starts_with("regressed: "), "{t:#?}");
    assert_eq!(t.confirm_promotion.status, 409, "{t:#?}");
}

/// The tick of a run that must not be promoted, nor rolled back.
fn assert_holds(t: &Tick) {
    assert!(!flagger_passes(t.confirm_promotion.status), "{t:#?}");
    assert!(!flagger_passes(t.rollback.status), "{t:#?}");
}

async fn looks(d: &Daemon) -> f64 {
    d.metric_sum("verdict_looks_total", &[]).await
}

/// A daemon for tests that never reach a backend (refusals, parsing).
async fn daemon_without_backend() -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    Daemon::start(&config(&format!("http://127.0.0.1:{port}")), 600.0).await
}

#[tokio::test]
async fn healthy_canary_passes_every_look_and_the_gates_open() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 60.0).await;

    // One minute in: 5 points per arm, fewer than the 10 required.
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_eq!(t.rollback.status, 404, "{t:#?}");
    assert!(t.rollback.body.starts_with("no rollback: "), "{t:#?}");
    assert_eq!(t.rollout.status, 200, "{t:#?}");
    assert_eq!(t.confirm_promotion.status, 423, "{t:#?}");
    assert!(
        t.confirm_promotion.body.contains("latency needs more data"),
        "{t:#?}"
    );
    let ti = hook(&d, "checkout", "confirm-traffic-increase", PAYLOAD).await;
    assert_eq!(ti.status, 423, "{ti:?}");

    // Once the data suffices, every look passes and the gates open.
    for at in [300.0, 450.0, 600.0] {
        d.at(at);
        let t = tick(&d, "checkout", PAYLOAD).await;
        assert_eq!(t.rollback.status, 404, "at {at}: {t:#?}");
        assert_eq!(t.rollout.status, 200, "at {at}: {t:#?}");
        assert!(
            t.rollout.body.starts_with("promote: score 100.00"),
            "{t:#?}"
        );
        assert_eq!(t.confirm_promotion.status, 200, "at {at}: {t:#?}");
        assert!(t.confirm_promotion.body.starts_with("promote: "), "{t:#?}");
        let ti = hook(&d, "checkout", "confirm-traffic-increase", PAYLOAD).await;
        assert_eq!(ti.status, 200, "{ti:?}");
    }
    // One look per tick: the hooks of a tick share it.
    assert_eq!(looks(&d).await, 4.0);
    assert_eq!(
        d.metric_sum("verdict_looks_total", &[r#"decision="promote""#])
            .await,
        3.0
    );

    // F-12: post-rollout closes the run; a later look starts a new one.
    let post =
        r#"{"name":"podinfo","namespace":"test","phase":"Succeeded","checksum":"85d557f47b"}"#;
    let a = hook(&d, "checkout", "post-rollout", post).await;
    assert_eq!((a.status, a.body.as_str()), (200, "run closed"));
    assert!(
        !d.metrics()
            .await
            .contains("run=\"flagger/test/podinfo/85d557f47b\""),
        "a closed run keeps its verdict_run_score"
    );
    let a = hook(&d, "checkout", "post-rollout", post).await;
    assert_eq!((a.status, a.body.as_str()), (200, "no open run"));
}

#[tokio::test]
async fn latency_regression_aborts() {
    // p99 up 60 % on the canary: Mann-Whitney / Hodges-Lehmann calls it high.
    let prom = Scenario::healthy()
        .with_canary(|c| c.latency = 0.32)
        .start();
    let d = Daemon::start(&config(&prom.url), 300.0).await;
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_aborts(&t);
    assert!(t.rollout.body.contains("latency is high"), "{t:#?}");
    assert!(t.rollout.body.contains("below marginal 75"), "{t:#?}");
}

#[tokio::test]
async fn error_spike_aborts_by_both_counter_judges() {
    // 5 % errors on the canary against 0.5 %.
    let prom = Scenario::healthy()
        .with_canary(|c| c.error_rate = 0.05)
        .start();
    let d = Daemon::start(&config(&prom.url), 300.0).await;
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_aborts(&t);
    let why = &t.rollback.body;
    assert!(
        why.contains("errors is high: anytime-valid test shows the canary's error odds"),
        "{why}"
    );
    assert!(why.contains("error-rate is high: canary rate"), "{why}");
}

#[tokio::test]
async fn critical_metric_regression_aborts_alone() {
    let prom = Scenario::healthy()
        .with_canary(|c| c.latency = 0.32)
        .start();
    let d = Daemon::start(&config(&prom.url), 300.0).await;
    // Latency weighs 10 %: the score (90) alone would only hold...
    let lenient = tick(&d, "checkout-lenient", PAYLOAD).await;
    assert_eq!(lenient.rollback.status, 404, "{lenient:#?}");
    assert_eq!(lenient.rollout.status, 200, "{lenient:#?}");
    assert_eq!(lenient.confirm_promotion.status, 423, "{lenient:#?}");
    assert!(lenient.rollout.body.contains("score 90.00"), "{lenient:#?}");
    // ...but a critical metric's regression aborts whatever the score. Same
    // payload, same moment, another analysis: another run.
    let critical = tick(&d, "checkout-critical", PAYLOAD).await;
    assert_aborts(&critical);
    assert!(
        critical
            .rollback
            .body
            .contains("critical metric latency is high"),
        "{critical:#?}"
    );
    assert_eq!(looks(&d).await, 2.0);
}

#[tokio::test]
async fn missing_series_never_promotes() {
    let prom = Scenario::healthy()
        .with_canary(|c| c.latency_series = Presence::Absent)
        .start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_holds(&t);
    assert_eq!(t.confirm_promotion.status, 423, "{t:#?}");
    assert!(
        t.confirm_promotion.body.contains("no data for the canary"),
        "{t:#?}"
    );
}

#[tokio::test]
async fn nan_only_series_never_promotes() {
    let prom = Scenario::healthy()
        .with_canary(|c| c.latency_series = Presence::NanOnly)
        .start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_holds(&t);
    assert_eq!(t.confirm_promotion.status, 423, "{t:#?}");
    assert!(
        t.confirm_promotion.body.contains("latency is nodata"),
        "{t:#?}"
    );
}

#[tokio::test]
async fn stopped_prometheus_never_promotes_and_is_not_ready() {
    let mut prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let ready = d.get("/readyz").await;
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));

    prom.stop();
    let ready = d.get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.starts_with("not ready: "), "{ready:?}");
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_holds(&t);
    // Cannot judge: the counted check fails closed, the gate stays shut,
    // and nothing is rolled back without evidence.
    assert_eq!(t.rollout.status, 424, "{t:#?}");
    assert!(t.rollout.body.starts_with("cannot judge: "), "{t:#?}");
    assert_eq!(t.confirm_promotion.status, 424, "{t:#?}");
    assert_eq!(t.rollback.status, 404, "{t:#?}");
    assert!(
        d.metric_sum("verdict_query_errors_total", &[r#"metric="latency""#])
            .await
            >= 1.0
    );
    // /healthz is liveness only.
    assert_eq!(d.get("/healthz").await.body, "ok");
}

#[tokio::test]
async fn injection_attempts_are_rejected_before_any_query() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let bad_name = r#"{"name":"x\"} or vector(1) #","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}"#;
    let a = hook(&d, "checkout", "rollout", bad_name).await;
    assert_eq!(a.status, 400, "{a:?}");
    assert!(a.body.contains("name"), "{a:?}");

    // `windowed` puts {{window}} in a range, outside any string.
    let bad_window = r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b","metadata":{"window":"1m]) or vector(1) #"}}"#;
    for h in ["rollout", "rollback", "confirm-promotion"] {
        let a = hook(&d, "windowed", h, bad_window).await;
        assert_eq!(a.status, 400, "{h}: {a:?}");
        assert!(a.body.starts_with("rejected: "), "{a:?}");
    }
    let bad_key =
        r#"{"name":"podinfo","namespace":"test","checksum":"85d557f47b","metadata":{"a b":"1"}}"#;
    assert_eq!(hook(&d, "checkout", "rollout", bad_key).await.status, 400);
    assert_eq!(looks(&d).await, 0.0, "a rejected payload took a look");

    // The same hook with a harmless window is judged (healthy or regressed:
    // the smoothed series are judged on their own terms).
    let a = hook(&d, "windowed", "rollout", PAYLOAD).await;
    assert!([200, 409].contains(&a.status), "{a:?}");
    assert_eq!(looks(&d).await, 1.0);
}

#[tokio::test]
async fn payload_shapes_of_flagger_are_accepted() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    // F-03: what Flagger's client counts as a pass (status <= 202); the
    // `hook` helper asserts Verdict never answers 203-299.
    assert!(flagger_passes(200) && flagger_passes(202));
    assert!(!flagger_passes(203) && !flagger_passes(204));
    // F-01 with metadata, F-04 without.
    for payload in [PAYLOAD, PAYLOAD_NO_METADATA] {
        let a = hook(&d, "checkout", "rollout", payload).await;
        assert_eq!(a.status, 200, "{payload}: {a:?}");
    }
    // F-05: unknown fields are ignored; metadata values are strings.
    let extra = r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b",
        "iteration":3,"canaryWeight":20,"labels":{"a":"b"},
        "metadata":{"window":"2m","minRequests":"100","token":"s3cr3t"}}"#;
    let a = hook(&d, "checkout", "rollout", extra).await;
    assert_eq!(a.status, 200, "{a:?}");
    // F-11: confirm-rollout passes in any phase, without a look.
    for phase in ["Initialized", "Succeeded", "Failed", "Waiting"] {
        let p = PAYLOAD_NO_METADATA.replace("Progressing", phase);
        let a = hook(&d, "checkout", "confirm-rollout", &p).await;
        assert_eq!(a.status, 200, "{phase}: {a:?}");
    }
    // All of these were one look: same run, same moment.
    assert_eq!(looks(&d).await, 1.0);
}

#[tokio::test]
async fn event_hook_answers_fast_without_a_look() {
    let d = daemon_without_backend().await;
    let started = Instant::now();
    let a = hook(&d, "checkout", "event", EVENT).await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "F-13: took {:?}",
        started.elapsed()
    );
    assert_eq!((a.status, a.body.as_str()), (200, "event recorded"));
    let warning = EVENT.replace("Normal", "Warning");
    assert_eq!(hook(&d, "checkout", "event", &warning).await.status, 200);
    let m = d.metrics().await;
    use support::daemon::metric_sum;
    assert_eq!(
        metric_sum(&m, "verdict_flagger_events_total", &[r#"type="Normal""#]),
        1.0
    );
    assert_eq!(
        metric_sum(&m, "verdict_flagger_events_total", &[r#"type="Warning""#]),
        1.0
    );
    assert_eq!(metric_sum(&m, "verdict_looks_total", &[]), 0.0);
}

#[tokio::test]
async fn another_checksum_is_an_independent_run() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let first = hook(&d, "checkout", "rollout", PAYLOAD).await;
    let other = PAYLOAD.replace("85d557f47b", "6b8f9c4d5");
    let second = hook(&d, "checkout", "rollout", &other).await;
    assert_eq!((first.status, second.status), (200, 200));
    // Same moment, yet two looks: the new checksum is not a duplicate of
    // the old run, and each has its own score.
    assert_eq!(looks(&d).await, 2.0);
    let m = d.metrics().await;
    for run in [
        "flagger/test/podinfo/85d557f47b",
        "flagger/test/podinfo/6b8f9c4d5",
    ] {
        assert!(
            m.contains(&format!(r#"run="{run}""#)),
            "no verdict_run_score for {run}:\n{m}"
        );
    }
    assert_eq!(
        d.metric_sum("verdict_duplicate_deliveries_total", &[])
            .await,
        0.0
    );
}

#[tokio::test]
async fn duplicate_delivery_gets_the_same_answer_without_a_second_look() {
    let prom = Scenario::healthy()
        .with_canary(|c| c.error_rate = 0.05)
        .start();
    let d = Daemon::start(&config(&prom.url), 300.0).await;
    let first = hook(&d, "checkout", "rollout", PAYLOAD).await;
    d.at(303.0); // a Flagger retry, within the 5 s dedup window
    let again = hook(&d, "checkout", "rollout", PAYLOAD).await;
    assert_eq!((first.status, &first.body), (again.status, &again.body));
    assert_eq!(looks(&d).await, 1.0);
    assert_eq!(
        d.metric_sum("verdict_duplicate_deliveries_total", &[])
            .await,
        1.0
    );
    // The next tick is a new look.
    d.at(360.0);
    let next = hook(&d, "checkout", "rollout", PAYLOAD).await;
    assert_eq!(next.status, 409, "{next:?}");
    assert_eq!(looks(&d).await, 2.0);
}

#[tokio::test]
async fn low_traffic_neither_aborts_nor_promotes() {
    // A handful of requests per arm, a quarter of the canary's failing.
    let prom = Scenario::healthy()
        .with_both(|a| a.rps = 0.02)
        .with_canary(|c| c.error_rate = 0.25)
        .start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let t = tick(&d, "checkout", PAYLOAD).await;
    assert_holds(&t);
    assert_eq!(t.rollout.status, 200, "{t:#?}");
    assert_eq!(t.confirm_promotion.status, 423, "{t:#?}");
    assert!(
        t.confirm_promotion.body.contains("needs more data"),
        "{t:#?}"
    );
}

#[tokio::test]
async fn refusals_have_their_status() {
    let d = daemon_without_backend().await;
    let a = hook(&d, "nosuch", "rollout", PAYLOAD).await;
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.body.contains("unknown analysis"), "{a:?}");
    let a = hook(&d, "checkout", "promote-now", PAYLOAD).await;
    assert_eq!(a.status, 404, "{a:?}");
    assert!(a.body.contains("unknown Flagger hook type"), "{a:?}");
    for bad in [
        r#"{"name":"podinfo""#,
        "not json",
        r#"{"namespace":"test"}"#,
        "[]",
    ] {
        let a = hook(&d, "checkout", "rollout", bad).await;
        assert_eq!(a.status, 400, "{bad}: {a:?}");
    }
    let big = format!(
        r#"{{"name":"podinfo","namespace":"test","checksum":"1","metadata":{{"pad":"{}"}}}}"#,
        "x".repeat(65 * 1024)
    );
    let a = hook(&d, "checkout", "rollout", &big).await;
    assert_eq!(a.status, 413, "{a:?}");
}

#[tokio::test]
async fn probes_and_metrics() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    assert_eq!(d.get("/healthz").await.status, 200);
    assert_eq!(d.get("/readyz").await.status, 200);
    // Exercise a look, a duplicate and an event, then read /metrics.
    hook(&d, "checkout", "rollout", PAYLOAD).await;
    hook(&d, "checkout", "rollout", PAYLOAD).await;
    hook(&d, "checkout", "event", EVENT).await;
    let m = d.metrics().await;
    for name in [
        "verdict_looks_total",
        "verdict_look_duration_seconds",
        "verdict_run_score",
        "verdict_judge_duration_seconds",
        "verdict_query_duration_seconds",
        "verdict_query_errors_total",
        "verdict_duplicate_deliveries_total",
        "verdict_http_requests_total",
        "verdict_http_request_duration_seconds",
        "verdict_flagger_events_total",
        "verdict_config_reloads_total",
    ] {
        assert!(
            m.contains(&format!("# TYPE {name} ")),
            "/metrics lacks the documented {name}:\n{m}"
        );
    }
    assert_eq!(
        support::daemon::metric_sum(
            &m,
            "verdict_http_requests_total",
            &[
                r#"route="/v1/flagger/{analysis}/{hook}""#,
                r#"status="200""#
            ]
        ),
        3.0
    );
}

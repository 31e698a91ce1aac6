//! Verdict as Argo Rollouts' `web` provider sees it, against a real
//! Prometheus holding a known rollout (docs/controllers.md §2.3-2.4, cases A-01 to
//! A-11 where they apply to Verdict's JSON, X-01, X-02).
//!
//! The reference template reads `{$.decision}` with `successCondition:
//! result == "promote"` and `failureCondition: result == "abort"`, so the
//! tests check the decision string, that regressions are 200 (a non-2xx is an
//! Argo *Error*, not a failure), and that a dead backend is a non-2xx.

mod support;

use serde_json::Value;
use support::daemon::{Answer, Daemon};
use support::scenario::{config, Presence, Scenario};

/// The reference template's arguments, as Argo puts them in the URL.
const ARGS: &str =
    "namespace=test&rollout=podinfo&canary-hash=6b8f9c&stable-hash=5d7c4b&phase=step";

/// A-07/A-08: every 200 carries `decision` as one of the four words, and
/// field names and types stay the same.
fn decision(a: &Answer) -> String {
    assert_eq!(a.status, 200, "{a:?}");
    let v = a.json();
    let d = v["decision"]
        .as_str()
        .unwrap_or_else(|| panic!("A-08: no decision string in {v}"));
    assert!(
        ["promote", "continue", "abort", "inconclusive"].contains(&d),
        "A-04: decision {d:?}"
    );
    assert!(v["score"].is_number(), "A-06: score is not a number: {v}");
    assert!(v["reason"].is_string(), "{v}");
    assert!(v["run"].is_string(), "{v}");
    assert!(v["look"].is_u64(), "{v}");
    for k in ["start", "end", "step_seconds"] {
        assert!(v["window"][k].is_number(), "window.{k}: {v}");
    }
    assert!(v["baseline"].is_string(), "X-03: {v}");
    let metrics = v["metrics"].as_array().expect("metrics array");
    assert!(!metrics.is_empty(), "{v}");
    for m in metrics {
        for k in ["name", "group", "judge", "classification", "reason"] {
            assert!(m[k].is_string(), "metric {k}: {m}");
        }
        for k in ["critical", "muted", "enough_data"] {
            assert!(m[k].is_boolean(), "metric {k}: {m}");
        }
    }
    d.to_string()
}

async fn argo(d: &Daemon, analysis: &str, args: &str) -> Answer {
    d.get(&format!("/v1/argo/{analysis}?{args}")).await
}

#[tokio::test]
async fn healthy_canary_is_promoted() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 60.0).await;
    // One minute in, too few points: neither condition holds (Inconclusive).
    assert_eq!(decision(&argo(&d, "checkout", ARGS).await), "continue");
    for at in [300.0, 600.0] {
        d.at(at);
        let a = argo(&d, "checkout", ARGS).await;
        assert_eq!(decision(&a), "promote", "{a:?}");
        let v = a.json();
        assert_eq!(v["score"].as_f64(), Some(100.0));
        assert_eq!(v["run"], "argo/test/podinfo/6b8f9c/step");
        // X-03: the window the look used, in unix seconds.
        let base = support::prometheus::base_time() as f64;
        assert_eq!(v["window"]["start"].as_f64(), Some(base + 60.0 - 300.0));
        assert_eq!(v["window"]["end"].as_f64(), Some(base + at));
    }
    let v = argo(&d, "checkout", ARGS).await.json();
    assert_eq!(v["look"], 3, "a duplicate call is the same look: {v}");
    let latency = &v["metrics"][0];
    assert_eq!(latency["name"], "latency");
    assert_eq!(latency["judge"], "mann-whitney");
    assert_eq!(latency["canary"]["kind"], "points");
    assert_eq!(latency["canary"]["count"], 41);
    assert_eq!(v["metrics"][1]["canary"]["kind"], "counts");
}

#[tokio::test]
async fn regressions_are_a_200_abort() {
    // Latency (Mann-Whitney), errors (sequential and proportion), and a
    // critical latency metric that aborts alone.
    let cases = [
        (
            Scenario::healthy().with_canary(|c| c.latency = 0.32),
            "checkout",
            "latency is high",
        ),
        (
            Scenario::healthy().with_canary(|c| c.error_rate = 0.05),
            "checkout",
            "errors is high",
        ),
        (
            Scenario::healthy().with_canary(|c| c.latency = 0.32),
            "checkout-critical",
            "critical metric latency is high",
        ),
    ];
    for (scenario, analysis, why) in cases {
        let prom = scenario.start();
        let d = Daemon::start(&config(&prom.url), 300.0).await;
        let a = argo(&d, analysis, ARGS).await;
        assert_eq!(decision(&a), "abort", "{analysis}: {a:?}");
        assert!(a.json()["reason"].as_str().unwrap().contains(why), "{a:?}");
    }
}

#[tokio::test]
async fn missing_or_nan_data_is_never_promoted() {
    for presence in [Presence::Absent, Presence::NanOnly] {
        let prom = Scenario::healthy()
            .with_canary(|c| c.latency_series = presence)
            .start();
        let d = Daemon::start(&config(&prom.url), 600.0).await;
        let a = argo(&d, "checkout", ARGS).await;
        assert_eq!(decision(&a), "continue", "{presence:?}: {a:?}");
        let v = a.json();
        assert_eq!(v["metrics"][0]["classification"], "nodata", "{v}");
        assert_eq!(v["metrics"][0]["canary"], Value::Null, "{v}");
    }
}

#[tokio::test]
async fn dead_backend_is_an_error_not_a_decision() {
    let mut prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    prom.stop();
    // A-11: a non-2xx, so Argo counts an Error (and aborts after its limit).
    let a = argo(&d, "checkout", ARGS).await;
    assert_eq!(a.status, 503, "{a:?}");
    assert!(a.body.starts_with("metric backend unavailable"), "{a:?}");
    assert!(!a.body.contains("\"promote\""), "{a:?}");
}

#[tokio::test]
async fn arguments_by_post_and_unencoded_values() {
    let prom = Scenario::healthy()
        .with_canary(|c| c.error_rate = 0.05)
        .start();
    let d = Daemon::start(&config(&prom.url), 300.0).await;
    let get = argo(&d, "checkout", ARGS).await;
    // A-09: the same arguments as a jsonBody (another canary hash, so it is
    // a look of its own rather than a duplicate).
    let body = r#"{"namespace":"test","rollout":"podinfo","canary-hash":"7c9d0e","stable-hash":"5d7c4b","phase":"step"}"#;
    let post = d.post_json("/v1/argo/checkout", body).await;
    assert_eq!(decision(&get), "abort");
    assert_eq!(decision(&post), "abort", "{post:?}");
    assert_eq!(post.json()["run"], "argo/test/podinfo/7c9d0e/step");
    assert_eq!(post.json()["look"], 1);
    assert_eq!(get.json()["score"], post.json()["score"]);
    // Query and body merge; numbers in a jsonBody are accepted as strings.
    // (The scenario splits traffic 50/50, so that is the canary weight.)
    let post = d
        .post_json(
            "/v1/argo/checkout?namespace=test&rollout=podinfo",
            r#"{"canary-hash":"8d0e1f","weight":50}"#,
        )
        .await;
    assert_eq!(decision(&post), "abort", "{post:?}");
    // A-10: Argo inserts argument values into the URL unencoded.
    let a = argo(&d, "checkout", &format!("{ARGS}&selector=app=guestbook")).await;
    assert_eq!(decision(&a), "abort", "{a:?}");
}

#[tokio::test]
async fn same_data_same_window_same_answer() {
    // X-01: two fresh daemons, same data, same clock: the same JSON.
    let prom = Scenario::healthy()
        .with_canary(|c| {
            c.error_rate = 0.012;
            c.latency = 0.215;
        })
        .start();
    let mut answers = Vec::new();
    for _ in 0..2 {
        let d = Daemon::start(&config(&prom.url), 450.0).await;
        let a = argo(&d, "checkout", ARGS).await;
        decision(&a);
        answers.push(a.json());
    }
    assert_eq!(answers[0], answers[1]);
}

#[tokio::test]
async fn low_traffic_is_neither_promote_nor_abort() {
    // X-02: a handful of requests, a quarter of the canary's failing.
    let prom = Scenario::healthy()
        .with_both(|a| a.rps = 0.02)
        .with_canary(|c| c.error_rate = 0.25)
        .start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let a = argo(&d, "checkout", ARGS).await;
    assert_eq!(decision(&a), "continue", "{a:?}");
    let v = a.json();
    for m in &v["metrics"].as_array().unwrap()[1..] {
        assert_eq!(m["enough_data"], false, "{m}");
        assert!(m["canary"]["total"].as_u64().unwrap() < 200, "{m}");
    }
}

#[tokio::test]
async fn refusals_have_their_status() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let injected = [
        // A quote in a Kubernetes name, percent-encoded and raw.
        "namespace=test&rollout=x%22%7D%20or%20vector(1)%20%23&canary-hash=6b8f9c".to_string(),
        "namespace=test&rollout=x\"}&canary-hash=6b8f9c".to_string(),
        // A value in a bare template position (`windowed` has `[{{window}}]`).
        format!("{ARGS}&window=1m%5D)%20or%20vector(1)%20%23"),
    ];
    for args in &injected {
        let a = argo(&d, "windowed", args).await;
        assert_eq!(a.status, 400, "{args}: {a:?}");
    }
    assert_eq!(d.metric_sum("verdict_looks_total", &[]).await, 0.0);
    // A harmless window is judged (whatever the judgement: averaging over
    // 2 m smooths the noise away, and Kayenta's band is relative to the shift).
    let a = argo(&d, "windowed", &format!("{ARGS}&window=2m")).await;
    decision(&a);
    assert_eq!(d.metric_sum("verdict_looks_total", &[]).await, 1.0);

    assert_eq!(argo(&d, "nosuch", ARGS).await.status, 404);
    for bad in ["rollout=podinfo", "run=r1&phase=sometimes", "a=%zz"] {
        assert_eq!(argo(&d, "checkout", bad).await.status, 400, "{bad}");
    }
    for body in ["{not json", "[1,2]", r#"{"run":{"nested":1}}"#] {
        let a = d.post_json("/v1/argo/checkout", body).await;
        assert_eq!(a.status, 400, "{body}: {a:?}");
    }
    let big = format!(r#"{{"run":"r1","pad":"{}"}}"#, "x".repeat(65 * 1024));
    assert_eq!(d.post_json("/v1/argo/checkout", big).await.status, 413);
}

/// A-05: a template without `jsonPath` compares the raw body, so
/// `format=text` answers with the bare decision word.
#[tokio::test]
async fn plain_text_mode_answers_the_bare_decision() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let a = argo(&d, "checkout", &format!("{ARGS}&format=text")).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, "promote", "{a:?}");
}

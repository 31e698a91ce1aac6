//! Faults of Prometheus, end to end: a real Prometheus holding a healthy
//! rollout, the fault proxy (`support::fault_proxy`) in front of it, and
//! Verdict in-process behind the proxy. Each test switches one fault on,
//! takes one look through the Flagger `rollout` and `confirm-promotion`
//! hooks and one through the Argo endpoint, then switches the fault off and
//! takes the next look.
//!
//! What must hold under every fault (docs/faults.md):
//! * a clear reason in the answer (asserted on the text);
//! * never a promote: the gate (`confirm-promotion`) stays shut, Argo's
//!   decision is not `promote`, and neither is the look the engine recorded;
//! * an answer from the look itself, inside the answer budget: the request
//!   returns, with the fault's reason rather than the handler's "did not
//!   finish" fallback (`verdict_answer_budget_exceeded_total` stays 0);
//! * once the fault clears, the next look is a normal healthy one.

mod support;

use serde_json::{json, Value};
use std::time::Instant;
use support::daemon::{Answer, Daemon};
use support::fault_proxy::{for_each_series, result_mut, Fault, FaultProxy};
use support::prometheus::{OpenMetrics, PrometheusServer};
use support::scenario::{config, Scenario, STEP};
use verdict::engine::run::RunKey;
use verdict_judges::decision::Action;

const PAYLOAD: &str =
    r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}"#;
/// The clock of the faulted look, and of the look after the fault clears
/// (beyond the 5 s dedup window, so it is a new look of the same run).
const FAULT_AT: f64 = 570.0;
const HEALED_AT: f64 = 600.0;
/// Range queries one look of `checkout` issues: latency (2), and two
/// counter metrics of two queries per arm (8).
const QUERIES_PER_LOOK: usize = 10;

struct Rig {
    _prom: PrometheusServer,
    proxy: FaultProxy,
    d: Daemon,
}

/// The healthy scenario behind a proxy, and Verdict on `config` (the
/// scenario's config, through `tweak`).
async fn rig(tweak: impl FnOnce(String) -> String) -> Rig {
    rig_on(Scenario::healthy().openmetrics(), tweak).await
}

async fn rig_on(data: OpenMetrics, tweak: impl FnOnce(String) -> String) -> Rig {
    let prom = data.start();
    let proxy = FaultProxy::start(&prom.url).await;
    let d = Daemon::start(&tweak(config(&proxy.url)), FAULT_AT).await;
    Rig {
        _prom: prom,
        proxy,
        d,
    }
}

/// The answers of one look under a fault.
#[derive(Debug)]
struct Faulted {
    rollout: Answer,
    confirm_promotion: Answer,
    argo: Answer,
}

fn argo_path(analysis: &str) -> String {
    format!("/v1/argo/{analysis}?namespace=test&rollout=podinfo&canary-hash=abc")
}

async fn timed(what: &str, answer: impl std::future::Future<Output = Answer>) -> Answer {
    let started = Instant::now();
    let a = answer.await;
    eprintln!(
        "{what}: {} after {:.2} s: {}",
        a.status,
        started.elapsed().as_secs_f64(),
        a.body
    );
    a
}

/// Switches `fault` on and takes one look through each API; checks what
/// must hold under every fault.
async fn look_under(r: &mut Rig, fault: Fault, analysis: &str) -> Faulted {
    // Refused connections are not requests the proxy could count.
    let counted = !matches!(fault, Fault::Pass | Fault::Down);
    r.proxy.set(fault).await;
    r.d.at(FAULT_AT);
    let hook = |h: &str| format!("/v1/flagger/{analysis}/{h}");
    let rollout = timed("rollout", r.d.post_json(&hook("rollout"), PAYLOAD)).await;
    let confirm_promotion = timed(
        "confirm-promotion",
        r.d.post_json(&hook("confirm-promotion"), PAYLOAD),
    )
    .await;
    let argo = timed("argo", r.d.get(&argo_path(analysis))).await;
    let f = Faulted {
        rollout,
        confirm_promotion,
        argo,
    };
    if counted {
        assert!(r.proxy.faulted() > 0, "the fault never applied: {f:#?}");
    }
    // Never a promote, in either protocol or in the engine's record.
    assert_ne!(f.confirm_promotion.status, 200, "{f:#?}");
    if f.argo.status == 200 {
        assert_ne!(f.argo.json()["decision"], "promote", "{f:#?}");
    } else {
        assert_eq!(f.argo.status, 503, "{f:#?}");
    }
    let key = RunKey::Flagger {
        namespace: "test".into(),
        name: "podinfo".into(),
        checksum: "85d557f47b".into(),
    };
    let run =
        r.d.engine
            .run(analysis, &key)
            .await
            .expect("the run exists");
    let look = run.last_look().expect("the faulted look was recorded");
    assert_ne!(look.decision.action, Action::Promote, "{f:#?}");
    // The look answered, not the handler's budget fallback.
    assert_eq!(
        r.d.metric_sum("verdict_answer_budget_exceeded_total", &[])
            .await,
        0.0,
        "{f:#?}"
    );
    f
}

/// Cannot judge: Flagger's counted check fails with the reason (424), and
/// Argo gets the reason as a 503 (`backend_down`: no metric answered) or
/// as an `inconclusive` decision.
fn assert_cannot_judge(f: &Faulted, reason: &str, backend_down: bool) {
    assert_eq!(f.rollout.status, 424, "{f:#?}");
    assert!(f.rollout.body.starts_with("cannot judge: "), "{f:#?}");
    assert!(f.rollout.body.contains(reason), "want {reason:?}: {f:#?}");
    assert_eq!(f.confirm_promotion.status, 424, "{f:#?}");
    if backend_down {
        assert_eq!(f.argo.status, 503, "{f:#?}");
        assert!(
            f.argo.body.starts_with("metric backend unavailable: "),
            "{f:#?}"
        );
        assert!(f.argo.body.contains(reason), "want {reason:?}: {f:#?}");
    } else {
        assert_eq!(f.argo.status, 200, "{f:#?}");
        let j = f.argo.json();
        assert_eq!(j["decision"], "inconclusive", "{f:#?}");
        assert!(
            j["reason"].as_str().unwrap_or("").contains(reason),
            "want {reason:?}: {f:#?}"
        );
    }
}

/// Not enough evidence: the rollout check passes with the reason, the gate
/// holds (423), Argo says `continue`.
fn assert_holds(f: &Faulted, reason: &str) {
    assert_eq!(f.rollout.status, 200, "{f:#?}");
    assert!(f.rollout.body.contains(reason), "want {reason:?}: {f:#?}");
    assert_eq!(f.confirm_promotion.status, 423, "{f:#?}");
    assert!(
        f.confirm_promotion.body.contains(reason),
        "want {reason:?}: {f:#?}"
    );
    assert_eq!(f.argo.status, 200, "{f:#?}");
    let j = f.argo.json();
    assert_eq!(j["decision"], "continue", "{f:#?}");
    assert!(
        j["reason"].as_str().unwrap_or("").contains(reason),
        "want {reason:?}: {f:#?}"
    );
}

/// The fault clears; the next look of both runs is the healthy promote the
/// data supports.
async fn heals(r: &mut Rig) {
    r.proxy.set(Fault::Pass).await;
    r.d.at(HEALED_AT);
    let rollout = r.d.post_json("/v1/flagger/checkout/rollout", PAYLOAD).await;
    assert_eq!(rollout.status, 200, "{rollout:?}");
    assert!(
        rollout.body.starts_with("promote: score 100.00"),
        "{rollout:?}"
    );
    let gate =
        r.d.post_json("/v1/flagger/checkout/confirm-promotion", PAYLOAD)
            .await;
    assert_eq!(gate.status, 200, "{gate:?}");
    assert!(gate.body.starts_with("promote: "), "{gate:?}");
    let argo = r.d.get(&argo_path("checkout")).await;
    assert_eq!(argo.status, 200, "{argo:?}");
    assert_eq!(argo.json()["decision"], "promote", "{argo:?}");
}

/// Whether a rendered query selects the canary arm.
fn canary(query: &str) -> bool {
    query.contains(r#"track="canary""#)
}

/// Whether a rendered query is the canary arm of the latency gauge.
fn canary_latency(query: &str) -> bool {
    canary(query) && query.contains("request_latency_p99_seconds")
}

#[tokio::test]
async fn prometheus_down_is_refused_connections_and_never_promotes() {
    let mut r = rig(|c| c).await;
    let f = look_under(&mut r, Fault::Down, "checkout").await;
    assert_cannot_judge(&f, "metric backend unreachable", true);
    assert!(f.rollout.body.contains("Connection refused"), "{f:#?}");
    assert!(
        r.d.metric_sum("verdict_fetch_errors_total", &[r#"kind="unreachable""#])
            .await
            >= QUERIES_PER_LOOK as f64 / 2.0
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn slow_prometheus_is_cut_off_by_the_look_budget_and_frees_the_run() {
    // A per-request timeout far beyond the answer budget: only the engine's
    // fetch budget can end the look in time.
    let mut r = rig(|c| c.replace("timeout: 2s", "timeout: 60s")).await;
    r.proxy
        .set(Fault::Delay(std::time::Duration::from_secs(30)))
        .await;
    // Two deliveries of one look at once: the second waits for the run's
    // lock, which the slow first one must release within the budget.
    let (a, b) = tokio::join!(
        timed(
            "rollout 1",
            r.d.post_json("/v1/flagger/checkout/rollout", PAYLOAD)
        ),
        timed(
            "rollout 2",
            r.d.post_json("/v1/flagger/checkout/rollout", PAYLOAD)
        ),
    );
    for x in [&a, &b] {
        assert_eq!(x.status, 424, "{x:?}");
        assert!(
            x.body.contains(&format!(
                "timed out after {:?}",
                verdict::engine::Engine::fetch_budget()
            )),
            "{x:?}"
        );
    }
    let f = look_under(
        &mut r,
        Fault::Delay(std::time::Duration::from_secs(30)),
        "checkout",
    )
    .await;
    assert_cannot_judge(&f, "metric backend timed out after 4s", true);
    assert_eq!(
        r.d.metric_sum("verdict_looks_total", &[]).await,
        2.0,
        "one look per run: the concurrent delivery was a duplicate"
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn server_errors_are_retried_then_reported() {
    let mut r = rig(|c| c.replace("retries: 0", "retries: 1")).await;
    let fault = Fault::Status {
        status: 503,
        retry_after: None,
    };
    let f = look_under(&mut r, fault, "checkout").await;
    assert_cannot_judge(&f, "answered HTTP 503", true);
    assert!(
        f.rollout.body.contains("gave up after 2 attempts"),
        "{f:#?}"
    );
    assert_eq!(
        r.proxy.faulted(),
        2 * 2 * QUERIES_PER_LOOK,
        "two attempts per query"
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn rate_limiting_without_retry_after_backs_off_then_reports() {
    let mut r = rig(|c| c.replace("retries: 0", "retries: 1")).await;
    let fault = Fault::Status {
        status: 429,
        retry_after: None,
    };
    let f = look_under(&mut r, fault, "checkout").await;
    assert_cannot_judge(&f, "answered HTTP 429", true);
    assert!(
        f.rollout.body.contains("gave up after 2 attempts"),
        "{f:#?}"
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn rate_limiting_with_a_short_retry_after_waits_and_retries() {
    let mut r = rig(|c| c.replace("retries: 0", "retries: 1")).await;
    let fault = Fault::Status {
        status: 429,
        retry_after: Some("1".into()),
    };
    let f = look_under(&mut r, fault, "checkout").await;
    assert_cannot_judge(&f, "answered HTTP 429", true);
    assert!(
        f.rollout.body.contains("gave up after 2 attempts"),
        "{f:#?}"
    );
    assert_eq!(
        r.proxy.faulted(),
        2 * 2 * QUERIES_PER_LOOK,
        "two attempts per query"
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn rate_limiting_with_a_long_retry_after_waits_at_most_max_backoff() {
    // An hour asked for, 1 s (the default max_backoff) waited: the answer
    // still comes inside the budget, with the 429 as its reason.
    let mut r = rig(|c| c.replace("retries: 0", "retries: 1")).await;
    let fault = Fault::Status {
        status: 429,
        retry_after: Some("3600".into()),
    };
    let f = look_under(&mut r, fault, "checkout").await;
    assert_cannot_judge(&f, "answered HTTP 429", true);
    assert!(
        f.rollout.body.contains("gave up after 2 attempts"),
        "{f:#?}"
    );
    assert_eq!(
        r.proxy.faulted(),
        2 * 2 * QUERIES_PER_LOOK,
        "two attempts per query"
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn one_empty_arm_is_no_data_and_holds() {
    let mut r = rig(|c| c).await;
    let fault = Fault::rewrite(|query, mut answer| {
        if canary_latency(query) {
            result_mut(&mut answer).clear();
        }
        answer
    });
    let f = look_under(&mut r, fault, "checkout").await;
    assert_holds(&f, "latency is nodata: no data for the canary");
    heals(&mut r).await;
}

#[tokio::test]
async fn series_cut_short_need_more_data_and_hold() {
    let mut r = rig(|c| c).await;
    let fault = Fault::rewrite(|_, mut answer| {
        for_each_series(&mut answer, |s| {
            if let Some(values) = s["values"].as_array_mut() {
                values.truncate(3);
            }
        });
        answer
    });
    let f = look_under(&mut r, fault, "checkout").await;
    assert_holds(&f, "latency needs more data");
    heals(&mut r).await;
}

#[tokio::test]
async fn nan_and_infinite_values_are_no_data() {
    let mut r = rig(|c| c).await;
    let fault = Fault::rewrite(|query, mut answer| {
        if canary_latency(query) {
            for_each_series(&mut answer, |s| {
                if let Some(values) = s["values"].as_array_mut() {
                    for (i, v) in values.iter_mut().enumerate() {
                        v[1] = json!(["NaN", "+Inf", "-Inf"][i % 3]);
                    }
                }
            });
        }
        answer
    });
    let f = look_under(&mut r, fault, "checkout").await;
    assert_holds(&f, "latency is nodata: no data for the canary");
    heals(&mut r).await;
}

#[tokio::test]
async fn empty_results_everywhere_hold() {
    let mut r = rig(|c| c).await;
    let fault = Fault::rewrite(|_, mut answer| {
        result_mut(&mut answer).clear();
        answer
    });
    let f = look_under(&mut r, fault, "checkout").await;
    assert_holds(&f, "no data for any metric yet");
    heals(&mut r).await;
}

#[tokio::test]
async fn a_response_of_50_megabytes_is_refused_while_it_streams() {
    let mut r = rig(|c| c).await;
    let f = look_under(&mut r, Fault::Huge { bytes: 50 << 20 }, "checkout").await;
    assert_cannot_judge(&f, "response is larger than 8388608 bytes", true);
    assert!(
        r.d.metric_sum("verdict_fetch_errors_total", &[r#"kind="too_large""#])
            .await
            >= 1.0
    );
    heals(&mut r).await;
}

#[tokio::test]
async fn the_response_limit_is_configurable_and_applies_to_real_answers() {
    // Prometheus announces the length of these answers: refused unread.
    let mut r = rig(|c| c.replace("retries: 0", "retries: 0\n  max_response_bytes: 100")).await;
    let f = look_under(&mut r, Fault::Pass, "checkout").await;
    assert_cannot_judge(&f, "response is larger than 100 bytes", true);
}

#[tokio::test]
async fn several_series_where_one_is_expected_cannot_be_judged() {
    let mut r = rig(|c| c).await;
    let fault = Fault::rewrite(|_, mut answer| {
        let result = result_mut(&mut answer);
        let extra: Vec<Value> = result
            .iter()
            .map(|s| {
                let mut s = s.clone();
                s["metric"]["pod"] = json!("podinfo-extra");
                s
            })
            .collect();
        result.extend(extra);
        answer
    });
    let f = look_under(&mut r, fault, "checkout").await;
    assert_cannot_judge(&f, "query returned 2 series", false);
    heals(&mut r).await;
}

#[tokio::test]
async fn truncated_json_cannot_be_judged() {
    let mut r = rig(|c| c).await;
    let f = look_under(&mut r, Fault::Truncate { fraction: 0.5 }, "checkout").await;
    assert_cannot_judge(&f, "not a Prometheus API answer", true);
    heals(&mut r).await;
}

#[tokio::test]
async fn a_body_that_is_not_json_cannot_be_judged() {
    let mut r = rig(|c| c).await;
    let body = b"<html><body>502 Bad Gateway</body></html>".to_vec();
    let f = look_under(&mut r, Fault::Body(body), "checkout").await;
    assert_cannot_judge(&f, "not a Prometheus API answer", true);
    assert!(f.rollout.body.contains("502 Bad Gateway"), "{f:#?}");
    heals(&mut r).await;
}

/// Histogram buckets of both arms: identical traffic, three buckets.
fn with_histograms(om: OpenMetrics) -> OpenMetrics {
    let les = [0.1, 0.5, f64::INFINITY];
    let points: Vec<(f64, [f64; 3])> = (0..=40)
        .map(|i| {
            let n = i as f64 * 150.0;
            (i as f64 * STEP, [0.6 * n, 0.95 * n, n])
        })
        .collect();
    ["primary", "canary"].iter().fold(om, |om, track| {
        let labels = [("namespace", "test"), ("app", "podinfo"), ("track", *track)];
        om.histogram_buckets("request_duration_seconds", &labels, les, &points)
    })
}

#[tokio::test]
async fn histogram_arms_whose_buckets_do_not_pair_cannot_be_judged() {
    let data = with_histograms(Scenario::healthy().openmetrics());
    let bucket_analysis = |c: String| {
        let arm = |track: &str| {
            format!(
                "'sum by (le) (request_duration_seconds_bucket{{namespace=\"{{{{namespace}}}}\",app=\"{{{{name}}}}\",track=\"{track}\"}})'"
            )
        };
        format!(
            "{c}\x20 buckets:\n    lookback: 5m\n    step: 15s\n    min_data: {{points: 10, requests: 200}}\n    metrics:\n\
             \x20     - name: latency-buckets\n        kind: histogram\n        judge: sequential\n\
             \x20       canary: {}\n        baseline: {}\n",
            arm("canary"),
            arm("primary")
        )
    };
    let mut r = rig_on(data, bucket_analysis).await;
    // The canary's buckets are cut at other bounds than the baseline's,
    // none shared below +Inf (with one shared, the arms are judged on it).
    let fault = Fault::rewrite(|query, mut answer| {
        if canary(query) {
            for_each_series(&mut answer, |s| {
                if s["metric"]["le"] == "0.5" {
                    s["metric"]["le"] = json!("0.25");
                } else if s["metric"]["le"] == "0.1" {
                    s["metric"]["le"] = json!("0.05");
                }
            });
        }
        answer
    });
    let f = look_under(&mut r, fault, "buckets").await;
    assert_cannot_judge(&f, "do not pair with baseline buckets", false);
    // Cleared: the same run judges the paired buckets again.
    r.proxy.set(Fault::Pass).await;
    r.d.at(HEALED_AT);
    let a = r.d.post_json("/v1/flagger/buckets/rollout", PAYLOAD).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.starts_with("promote: ") || a.body.starts_with("continue: "),
        "{a:?}"
    );
}

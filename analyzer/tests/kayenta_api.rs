//! Verdict as Argo Rollouts' `kayenta` provider and Kayenta users see it
//! (docs/api.md "Kayenta's API", docs/controllers.md §2.7, cases K-01 to K-05), against a real
//! Prometheus holding a known rollout.
//!
//! [`argo_measurement`] replays the provider's exact requests
//! (`metricproviders/kayenta/kayenta.go`): the config look-up with the
//! storage account in the `configurationAccountName` slot, the start with
//! its string-formatted body (`region`, not `location`; integer
//! thresholds), polls of `GET /canary/{id}` until `complete`, then the
//! provider's own rule: the score truncated to an int, `>= pass`
//! Successful, `>= marginal` Inconclusive, else Failed; a missing score is
//! an Error.

mod support;

use serde_json::{json, Value};
use std::time::Duration;
use support::daemon::{Answer, Daemon};
use support::scenario::Scenario;

const CONFIG: &str = "podinfo-argo";
const PASS: i64 = 90;
const MARGINAL: i64 = 75;

/// A daemon config reading the podinfo Kayenta config (and Kayenta's own
/// Prometheus example) from `fixtures/kayenta`.
fn daemon_config(url: &str) -> String {
    format!(
        "prometheus:\n  url: {url}\n  timeout: 2s\n  retries: 0\n\
         kayenta_configs:\n\
         \x20 - ../fixtures/kayenta/podinfo-argo.json\n\
         \x20 - ../fixtures/kayenta/kayenta-integration-prometheus-cpu-only.json\n"
    )
}

/// What Argo Rollouts records for one measurement.
#[derive(Debug, PartialEq)]
enum Phase {
    Successful,
    Inconclusive,
    Failed,
    /// A non-200 or a missing field (Argo's MarkMeasurementError).
    Error(String),
}

/// One Argo-style scope detail, marshalled as the provider's Go struct is.
fn scope_detail(scope: &str, base: i64) -> String {
    let iso = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    format!(
        r#"{{"scope":"{scope}","region":"","step":15,"start":"{}","end":"{}"}}"#,
        iso(base),
        iso(base + 600)
    )
}

/// The provider's start body (its `jobPayloadFormat`, whitespace included).
fn argo_body(base: i64) -> String {
    format!(
        "\n\t\t\t\t\t\t\t{{\n\t\t\t\t\t\t\t\t\"scopes\": {{\n\t\t\t\t\t\t\t\t\t\t\"default\":{{\"controlScope\": {}, \"experimentScope\": {}}}\n\t\t\t\t\t\t\t\t}},\n                                \"thresholds\" : {{\n                                    \"pass\": {PASS},\n                                    \"marginal\": {MARGINAL}\n                                }}\n                            }}",
        scope_detail("primary", base),
        scope_detail("canary", base)
    )
}

/// What the test client needs of a Verdict: the in-process [`Daemon`], or
/// a real `verdict serve` ([`Serve`]).
trait Api {
    async fn get(&self, path: &str) -> Answer;
    async fn post_json(&self, path: &str, body: String) -> Answer;
}

impl Api for Daemon {
    async fn get(&self, path: &str) -> Answer {
        Daemon::get(self, path).await
    }
    async fn post_json(&self, path: &str, body: String) -> Answer {
        Daemon::post_json(self, path, body).await
    }
}

/// Polls `GET /canary/{id}` until `complete` (Argo waits 15 s between
/// polls; the test polls faster).
async fn poll(d: &impl Api, id: &str) -> Value {
    for _ in 0..600 {
        let a = d.get(&format!("/canary/{id}")).await;
        assert_eq!(a.status, 200, "K-03: {a:?}");
        let v = a.json();
        let complete = v["complete"]
            .as_bool()
            .unwrap_or_else(|| panic!("K-05: no boolean `complete` in {v}"));
        if complete {
            return v;
        }
        assert_eq!(v["status"], "running", "{v}");
        assert!(v.get("result").is_none(), "{v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("execution {id} did not complete in 30 s");
}

/// The provider's whole measurement; returns its phase and the final status.
async fn argo_measurement(d: &impl Api, base: i64) -> (Phase, Value) {
    // K-01: the look-up passes the storage account as the configuration account.
    let list = d
        .get("/canaryConfig?application=podinfo&configurationAccountName=verdict-storage")
        .await;
    assert_eq!(list.status, 200, "K-01: {list:?}");
    let id = list.json().as_array().expect("K-01: a JSON array")[..]
        .iter()
        .find(|c| c["name"] == CONFIG)
        .and_then(|c| c["id"].as_str())
        .unwrap_or_else(|| panic!("K-01: {CONFIG} not listed: {}", list.body))
        .to_string();
    // K-02
    let started = d
        .post_json(
            &format!("/canary/{id}?application=podinfo&metricsAccountName=prometheus&configurationAccountName=verdict-config&storageAccountName=verdict-storage"),
            argo_body(base),
        )
        .await;
    assert_eq!(started.status, 200, "K-02: {started:?}");
    let execution = started.json()["canaryExecutionId"]
        .as_str()
        .expect("K-02: canaryExecutionId")
        .to_string();
    assert!(!execution.is_empty());
    // K-03/K-04
    let status = poll(d, &execution).await;
    let phase = match status["result"]["judgeResult"]["score"]["score"].as_f64() {
        None => Phase::Error("Missing Score".into()),
        Some(score) => {
            let score = score as i64; // Argo truncates
            if score >= PASS {
                Phase::Successful
            } else if score >= MARGINAL {
                Phase::Inconclusive
            } else {
                Phase::Failed
            }
        }
    };
    (phase, status)
}

fn classification_of(status: &Value, metric: &str) -> String {
    status["result"]["judgeResult"]["results"]
        .as_array()
        .expect("results")
        .iter()
        .find(|r| r["name"] == metric)
        .unwrap_or_else(|| panic!("no result for {metric}: {status}"))["classification"]
        .as_str()
        .expect("classification")
        .to_string()
}

async fn run_scenario(scenario: Scenario) -> (Phase, Value) {
    let prometheus = scenario.start();
    let d = Daemon::start(&daemon_config(&prometheus.url), 900.0).await;
    argo_measurement(&d, prometheus.base).await
}

/// K-04: a healthy canary is Successful, every metric Pass, with Kayenta's
/// fields and Verdict's explanation beside them.
#[tokio::test]
async fn healthy_canary_is_successful() {
    let (phase, status) = run_scenario(Scenario::healthy()).await;
    assert_eq!(phase, Phase::Successful, "{status}");
    assert_eq!(status["status"], "succeeded");
    assert_eq!(status["executionStatus"], "SUCCEEDED");
    let judge = &status["result"]["judgeResult"];
    assert_eq!(judge["judgeName"], "NetflixACAJudge-v1.0");
    assert_eq!(judge["score"]["score"], 100.0, "{status}");
    assert_eq!(judge["score"]["classification"], "Pass");
    assert_eq!(classification_of(&status, "p99 latency"), "Pass");
    assert_eq!(classification_of(&status, "5xx ratio"), "Pass");
    let groups: Vec<&str> = judge["groupScores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["latency", "errors"]);
    let latency = &judge["results"][0];
    assert_eq!(
        latency["experimentMetadata"]["stats"]["count"], 41,
        "{latency}"
    );
    assert!(latency["resultMetadata"]["ratio"].as_f64().unwrap() > 0.9);
    // Verdict's explanation: the window is the scopes' interval.
    let verdict = &status["result"]["verdict"];
    assert_eq!(verdict["decision"]["action"], "promote", "{verdict}");
    let window = &verdict["window"];
    assert_eq!(
        window["end"].as_f64().unwrap() - window["start"].as_f64().unwrap(),
        600.0
    );
    assert_eq!(window["step_seconds"], 15.0);
    assert!(verdict["metrics"][0]["statistics"].is_object(), "{verdict}");
    assert_eq!(status["result"]["canaryDuration"], "PT10M");
    // The request and the accounts are echoed.
    assert_eq!(status["application"], "podinfo");
    assert_eq!(status["storageAccountName"], "verdict-storage");
    assert_eq!(status["canaryExecutionRequest"]["thresholds"]["pass"], 90.0);
}

/// K-04: a slower canary in a group weighted 20 scores 80: Inconclusive.
#[tokio::test]
async fn latency_regression_in_a_light_group_is_inconclusive() {
    let (phase, status) =
        run_scenario(Scenario::healthy().with_canary(|c| c.latency = 0.300)).await;
    assert_eq!(phase, Phase::Inconclusive, "{status}");
    let judge = &status["result"]["judgeResult"];
    assert_eq!(judge["score"]["score"], 80.0, "{status}");
    assert_eq!(judge["score"]["classification"], "Marginal");
    assert_eq!(classification_of(&status, "p99 latency"), "High");
    assert_eq!(classification_of(&status, "5xx ratio"), "Pass");
    let reason = status["result"]["verdict"]["metrics"][0]["reason"]
        .as_str()
        .unwrap();
    assert!(!reason.is_empty(), "Verdict says why: {status}");
}

/// K-04: a canary failing 10 % of requests fails its critical metric: score 0, Failed.
#[tokio::test]
async fn error_regression_of_a_critical_metric_fails() {
    let (phase, status) =
        run_scenario(Scenario::healthy().with_canary(|c| c.error_rate = 0.10)).await;
    assert_eq!(phase, Phase::Failed, "{status}");
    let score = &status["result"]["judgeResult"]["score"];
    assert_eq!(score["score"], 0.0, "{status}");
    assert_eq!(score["classification"], "Fail");
    assert!(
        score["classificationReason"]
            .as_str()
            .unwrap()
            .starts_with("Canary Failed"),
        "{score}"
    );
    assert_eq!(classification_of(&status, "5xx ratio"), "High");
}

/// A dead metric backend ends the execution terminal with the reason and no
/// score, which Argo records as an Error: never a passing score.
#[tokio::test]
async fn a_dead_backend_ends_terminal_without_a_score() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let d = Daemon::start(&daemon_config(&format!("http://127.0.0.1:{port}")), 900.0).await;
    let (phase, status) = argo_measurement(&d, support::prometheus::base_time()).await;
    assert_eq!(phase, Phase::Error("Missing Score".into()), "{status}");
    assert_eq!(status["status"], "terminal");
    assert_eq!(status["executionStatus"], "TERMINAL");
    assert!(status.get("result").is_none());
    let errors = status["exception"]["details"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2, "{status}");
    assert!(
        errors[0].as_str().unwrap().contains("could not be judged"),
        "{status}"
    );
    let m = d.metrics().await;
    assert_eq!(
        support::daemon::metric_sum(
            &m,
            "verdict_kayenta_executions_total",
            &["status=\"terminal\""]
        ),
        1.0
    );
}

/// Too few points to judge: the score would pass, but Verdict does not
/// promote on thin data, so the execution ends terminal with the reason.
#[tokio::test]
async fn thin_data_never_passes() {
    let prometheus = Scenario::healthy().start();
    let d = Daemon::start(&daemon_config(&prometheus.url), 900.0).await;
    let id = "podinfo-argo";
    let base = prometheus.base;
    let iso = |t: i64| {
        chrono::DateTime::from_timestamp(t, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    // Two minutes at a 60 s step: three points per arm, fewer than 10.
    let scope =
        |s: &str| json!({"scope": s, "start": iso(base + 120), "end": iso(base + 240), "step": 60});
    let body = json!({"scopes": {"default": {"controlScope": scope("primary"), "experimentScope": scope("canary")}},
                      "thresholds": {"pass": 90, "marginal": 75}});
    let started = d
        .post_json(&format!("/canary/{id}"), body.to_string())
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    let status = poll(&d, started.json()["canaryExecutionId"].as_str().unwrap()).await;
    assert_eq!(status["status"], "terminal", "{status}");
    let error = status["exception"]["details"]["error"].as_str().unwrap();
    assert!(error.contains("cannot support promoting"), "{status}");
}

/// The inline-config `POST /canary` judges a config that is not stored.
#[tokio::test]
async fn adhoc_execution_judges_an_inline_config() {
    let prometheus = Scenario::healthy()
        .with_canary(|c| c.latency = 0.300)
        .start();
    let d = Daemon::start(&daemon_config(&prometheus.url), 900.0).await;
    let mut config: Value = serde_json::from_str(
        &std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap(),
    )
    .unwrap();
    config["name"] = json!("inline podinfo");
    let body = format!(
        r#"{{"canaryConfig": {config}, "executionRequest": {}}}"#,
        argo_body(prometheus.base)
    );
    let started = d.post_json("/canary?metricsAccountName=m", body).await;
    assert_eq!(started.status, 200, "{started:?}");
    let status = poll(&d, started.json()["canaryExecutionId"].as_str().unwrap()).await;
    assert_eq!(status["application"], "ad-hoc", "{status}");
    assert!(status.get("canaryConfigId").is_none());
    assert_eq!(
        status["result"]["judgeResult"]["score"]["score"], 80.0,
        "{status}"
    );
}

fn message(a: &Answer, status: u16) -> String {
    assert_eq!(a.status, status, "{a:?}");
    let v = a.json();
    assert_eq!(v["status"], status, "{v}");
    let m = v["message"].as_str().expect("message").to_string();
    assert!(!m.contains('\n'));
    m
}

/// Config CRUD: posted configs are validated by the converter, listed next
/// to the file configs, replaced and deleted; file configs are read-only.
#[tokio::test]
async fn canary_config_crud() {
    let d = Daemon::start(&daemon_config("http://127.0.0.1:9"), 900.0).await;
    let fixture = std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap();
    let mut config: Value = serde_json::from_str(&fixture).unwrap();

    // File configs are listed, with an id, and read-only.
    let all = d.get("/canaryConfig").await.json();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["integration-test-canary-config", "podinfo-argo"]);
    let got = d.get("/canaryConfig/podinfo-argo").await;
    assert_eq!(got.status, 200);
    assert_eq!(got.json()["metrics"][1]["name"], "5xx ratio");
    assert!(message(
        &d.put_json("/canaryConfig/podinfo-argo", fixture.clone())
            .await,
        409
    )
    .contains("read-only"));
    assert!(message(&d.delete("/canaryConfig/podinfo-argo").await, 409).contains("read-only"));
    // The same name again would make a look-up by name ambiguous.
    assert!(
        message(&d.post_json("/canaryConfig", fixture.clone()).await, 409)
            .contains("exists already")
    );

    // Create, with an unknown field Kayenta would ignore.
    config["name"] = json!("podinfo-posted");
    config["applications"] = json!(["podinfo", "other"]);
    config["somethingNew"] = json!({"ignored": true});
    let created = d.post_json("/canaryConfig", config.to_string()).await;
    assert_eq!(created.status, 200, "{created:?}");
    let id = created.json()["canaryConfigId"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = d.get(&format!("/canaryConfig/{id}")).await.json();
    assert_eq!(stored["id"], id.as_str());
    assert!(stored["createdTimestamp"].is_i64());
    let listed = d.get("/canaryConfig?application=other").await.json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    assert_eq!(listed[0]["origin"], "api");
    // Posting the same id again is refused; PUT replaces.
    let mut again = config.clone();
    again["id"] = json!(id);
    again["name"] = json!("podinfo-again");
    assert_eq!(
        d.post_json("/canaryConfig", again.to_string()).await.status,
        409
    );
    config["description"] = json!("replaced");
    let put = d
        .put_json(&format!("/canaryConfig/{id}"), config.to_string())
        .await;
    assert_eq!(put.status, 200, "{put:?}");
    assert_eq!(put.json()["canaryConfigId"], id.as_str());
    let replaced = d.get(&format!("/canaryConfig/{id}")).await.json();
    assert_eq!(replaced["description"], "replaced");
    assert_eq!(replaced["createdTimestamp"], stored["createdTimestamp"]);
    // Delete.
    assert_eq!(d.delete(&format!("/canaryConfig/{id}")).await.status, 204);
    assert_eq!(d.get(&format!("/canaryConfig/{id}")).await.status, 404);
    assert_eq!(d.delete(&format!("/canaryConfig/{id}")).await.status, 404);
    assert_eq!(
        d.put_json(&format!("/canaryConfig/{id}"), config.to_string())
            .await
            .status,
        404
    );

    // Invalid configs are refused with the converter's reason.
    let graphite =
        std::fs::read_to_string("../fixtures/kayenta/upstream-samples/graphite-sample-config.json")
            .unwrap();
    let mut graphite: Value = serde_json::from_str(&graphite).unwrap();
    graphite["name"] = json!("graphite-sample");
    graphite["applications"] = json!(["x"]);
    let m = message(
        &d.post_json("/canaryConfig", graphite.to_string()).await,
        400,
    );
    assert!(m.contains("\"graphite\" is not supported"), "{m}");
    let mut no_scope = config.clone();
    no_scope["name"] = json!("no-scope");
    no_scope["metrics"][0]["query"]["customInlineTemplate"] = json!("PromQL:up");
    let m = message(
        &d.post_json("/canaryConfig", no_scope.to_string()).await,
        400,
    );
    assert!(
        m.contains("metrics[0].query") && m.contains("${scope}"),
        "{m}"
    );
    let mut bad_name = config.clone();
    bad_name["name"] = json!("has spaces");
    assert!(message(
        &d.post_json("/canaryConfig", bad_name.to_string()).await,
        400
    )
    .contains("letters, digits"));
    let mut no_apps = config.clone();
    no_apps["name"] = json!("no-apps");
    no_apps["applications"] = json!([]);
    assert!(message(
        &d.post_json("/canaryConfig", no_apps.to_string()).await,
        400
    )
    .contains("application"));
    assert!(
        message(&d.post_json("/canaryConfig", "{not json").await, 400)
            .contains("malformed canary config")
    );
}

/// Malformed execution requests are 4xx with the reason; nothing starts.
#[tokio::test]
async fn malformed_execution_requests_are_refused() {
    let d = Daemon::start(&daemon_config("http://127.0.0.1:9"), 900.0).await;
    let base = support::prometheus::base_time();
    let good: Value = serde_json::from_str(&argo_body(base)).unwrap();
    let start = |body: Value| {
        let d = &d;
        async move { d.post_json("/canary/podinfo-argo", body.to_string()).await }
    };
    let cases: Vec<(Value, &str)> = vec![
        (
            {
                let mut b = good.clone();
                b.as_object_mut().unwrap().remove("thresholds");
                b
            },
            "must contain thresholds",
        ),
        (
            {
                let mut b = good.clone();
                b["thresholds"] = json!({"pass": 50, "marginal": 75});
                b
            },
            "marginal <= pass",
        ),
        (
            {
                let mut b = good.clone();
                b["scopes"] = json!({"other": b["scopes"]["default"].clone()});
                b
            },
            "scopes has no \"default\"",
        ),
        (
            {
                let mut b = good.clone();
                b["scopes"]["default"]["controlScope"]["end"] = json!("yesterday");
                b
            },
            "not an ISO-8601 instant",
        ),
        (
            {
                let mut b = good.clone();
                let s = b["scopes"]["default"]["experimentScope"]["start"].clone();
                b["scopes"]["default"]["experimentScope"]["end"] = s;
                b
            },
            "ends before it starts",
        ),
        (
            {
                let mut b = good.clone();
                b["scopes"]["default"]["controlScope"]["start"] = json!("2020-01-01T00:00:00Z");
                b
            },
            "same interval",
        ),
        (
            {
                let mut b = good.clone();
                b["scopes"]["default"]["experimentScope"]
                    .as_object_mut()
                    .unwrap()
                    .remove("scope");
                b
            },
            "experimentScope.scope is required",
        ),
        (
            {
                let mut b = good.clone();
                b["scopes"]["default"]["experimentScope"]["step"] = json!(-5);
                b
            },
            "positive number of seconds",
        ),
        (
            {
                let mut b = good.clone();
                b["scopes"]["default"]["controlScope"]["extendedScopeParams"] =
                    json!({"canary_scope": "x"});
                b
            },
            "override the scope",
        ),
    ];
    for (body, expected) in cases {
        let m = message(&start(body.clone()).await, 400);
        assert!(m.contains(expected), "{expected:?} not in {m:?} for {body}");
    }
    assert!(
        message(&d.post_json("/canary/podinfo-argo", "[1,2]").await, 400)
            .contains("malformed canary execution request")
    );
    assert!(message(
        &d.post_json("/canary/no-such-config", good.to_string())
            .await,
        404
    )
    .contains("not found"));
    assert!(message(&d.get("/canary/no-such-execution").await, 404).contains("not found"));
    let m = message(
        &d.post_json("/canary", r#"{"executionRequest": {}}"#).await,
        400,
    );
    assert!(m.contains("canaryConfig is required"), "{m}");
    // A judge Verdict does not serve, as Kayenta refuses it.
    let mut dredd: Value = serde_json::from_str(
        &std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap(),
    )
    .unwrap();
    dredd["judge"]["name"] = json!("dredd-v1.0");
    let m = message(
        &d.post_json(
            "/canary",
            json!({"canaryConfig": dredd, "executionRequest": good}).to_string(),
        )
        .await,
        400,
    );
    assert!(
        m.contains("Unable to resolve canary judge \"dredd-v1.0\""),
        "{m}"
    );
    dredd["name"] = json!("dredd-config");
    let m = message(&d.post_json("/canaryConfig", dredd.to_string()).await, 400);
    assert!(m.contains("Unable to resolve canary judge"), "{m}");
    let m = d.metrics().await;
    assert_eq!(
        support::daemon::metric_sum(
            &m,
            "verdict_kayenta_executions_total",
            &["status=\"started\""]
        ),
        0.0
    );
}

/// Kayenta's own example configs: the Prometheus one loads as a daemon
/// config file (above) and judges; the New Relic ad-hoc request parses and
/// is refused with the reason (Verdict reads Prometheus only).
#[tokio::test]
async fn kayentas_own_examples() {
    let d = Daemon::start(&daemon_config("http://127.0.0.1:9"), 900.0).await;
    let cpu = d.get("/canaryConfig/integration-test-canary-config").await;
    assert_eq!(cpu.status, 200, "{cpu:?}");
    assert_eq!(cpu.json()["classifier"]["groupWeights"]["pod-group"], 100.0);
    let adhoc =
        std::fs::read_to_string("../fixtures/kayenta/upstream-samples/newrelic-adhoc-request.json")
            .unwrap();
    let m = message(&d.post_json("/canary", adhoc).await, 400);
    assert!(m.contains("\"newrelic\" is not supported"), "{m}");
    // Its epoch-millisecond strings and string step are read as Kayenta reads them.
    let mut request: Value = serde_json::from_str::<Value>(
        &std::fs::read_to_string(
            "../fixtures/kayenta/upstream-samples/newrelic-adhoc-request.json",
        )
        .unwrap(),
    )
    .unwrap()["executionRequest"]
        .take();
    for side in ["controlScope", "experimentScope"] {
        request["scopes"]["default"][side]["extendedScopeParams"] = json!({"namespace": "prod"});
    }
    let started = d
        .post_json(
            "/canary/integration-test-canary-config",
            request.to_string(),
        )
        .await;
    assert_eq!(started.status, 200, "{started:?}");
    let status = poll(&d, started.json()["canaryExecutionId"].as_str().unwrap()).await;
    // The backend at port 9 is down: terminal, never a score.
    assert_eq!(status["status"], "terminal", "{status}");
    assert_eq!(
        status["canaryExecutionRequest"]["scopes"]["default"]["controlScope"]["step"],
        "10"
    );
}

/// A daemon config on the SQLite file `db` (a restart finds it again).
fn daemon_config_on(url: &str, db: &std::path::Path) -> String {
    format!(
        "{}store: {{backend: sqlite, path: {:?}}}\n",
        daemon_config(url),
        db.display().to_string()
    )
}

/// Starts an execution of `config` with Argo's body; returns its id.
async fn start_execution(d: &Daemon, path: &str, base: i64) -> String {
    let started = d.post_json(path, argo_body(base)).await;
    assert_eq!(started.status, 200, "{started:?}");
    started.json()["canaryExecutionId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// `GET /canary/executions`: an application's executions, newest first,
/// paged with `limit`/`page`, filtered by Orca `statuses`; the ad-hoc ones
/// when no application is given; bad parameters are 400 with the reason.
#[tokio::test]
async fn executions_are_listed_as_kayenta_lists_them() {
    let prometheus = Scenario::healthy().start();
    let d = Daemon::start(&daemon_config(&prometheus.url), 900.0).await;
    let base = prometheus.base;
    let succeeded = start_execution(&d, "/canary/podinfo-argo?application=podinfo", base).await;
    poll(&d, &succeeded).await;
    tokio::time::sleep(Duration::from_millis(5)).await;
    // A window of three points per arm: terminal (thin data).
    let thin = {
        let mut body: Value = serde_json::from_str(&argo_body(base)).unwrap();
        for side in ["controlScope", "experimentScope"] {
            body["scopes"]["default"][side]["end"] =
                json!(chrono::DateTime::from_timestamp(base + 30, 0)
                    .unwrap()
                    .to_rfc3339());
        }
        let a = d
            .post_json("/canary/podinfo-argo?application=podinfo", body.to_string())
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        a.json()["canaryExecutionId"].as_str().unwrap().to_string()
    };
    assert_eq!(poll(&d, &thin).await["status"], "terminal");
    tokio::time::sleep(Duration::from_millis(5)).await;
    let config = std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap();
    let adhoc = start_execution_adhoc(&d, &config, base).await;
    poll(&d, &adhoc).await;

    let ids = |path: &str| {
        let d = &d;
        let path = path.to_string();
        async move {
            let a = d.get(&path).await;
            assert_eq!(a.status, 200, "{path}: {a:?}");
            a.json()
                .as_array()
                .unwrap_or_else(|| panic!("{path}: not an array"))
                .iter()
                .map(|e| e["id"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        ids("/canary/executions?application=podinfo").await,
        [thin.as_str(), succeeded.as_str()]
    );
    assert_eq!(
        ids("/canary/executions?application=podinfo&statuses=TERMINAL").await,
        [thin.as_str()]
    );
    assert_eq!(
        ids("/canary/executions?application=podinfo&statuses=running,%20succeeded").await,
        [succeeded.as_str()]
    );
    assert_eq!(
        ids("/canary/executions?application=podinfo&limit=1&page=2").await,
        [succeeded.as_str()]
    );
    assert_eq!(
        ids("/canary/executions?application=podinfo&limit=1&page=3").await,
        Vec::<String>::new()
    );
    assert_eq!(ids("/canary/executions").await, [adhoc.as_str()]);
    assert_eq!(
        ids("/canary/executions?application=").await,
        [adhoc.as_str()]
    );
    // Each entry is the execution's whole status, as GET /canary/{id}.
    let listed = d.get("/canary/executions?application=podinfo").await.json();
    let one = d.get(&format!("/canary/{succeeded}")).await.json();
    assert_eq!(listed[1], one);
    assert_eq!(listed[1]["result"]["judgeResult"]["score"]["score"], 100.0);
    // Bad parameters.
    for (query, expected) in [
        ("limit=0", "limit must be a whole number"),
        ("limit=ten", "limit must be a whole number"),
        ("page=-1", "page must be a whole number"),
        (
            "statuses=RUNNING,DONE",
            "\"DONE\" is not an execution status",
        ),
    ] {
        let m = message(&d.get(&format!("/canary/executions?{query}")).await, 400);
        assert!(m.contains(expected), "{query}: {m}");
    }
}

/// Starts an inline-config execution with Argo's scopes; returns its id.
async fn start_execution_adhoc(d: &Daemon, config: &str, base: i64) -> String {
    let body = format!(
        r#"{{"canaryConfig": {config}, "executionRequest": {}}}"#,
        argo_body(base)
    );
    let started = d.post_json("/canary", body).await;
    assert_eq!(started.status, 200, "{started:?}");
    started.json()["canaryExecutionId"]
        .as_str()
        .unwrap()
        .to_string()
}

/// One metric set pair as Kayenta stores it (scopes and attributes are
/// accepted and ignored).
fn metric_pair(name: &str, control: &[f64], experiment: &[f64]) -> Value {
    json!({
        "name": name, "id": format!("id-{name}"), "tags": {"pod": "a"},
        "values": {"control": control, "experiment": experiment},
        "scopes": {"control": {"startTimeIso": "2025-01-01T10:00:00Z", "startTimeMillis": 1735725600000i64, "stepMillis": 60000}},
        "attributes": {"control": {"query": "up"}}
    })
}

/// `n` points around `level`, with a little deterministic spread.
fn points(level: f64, n: usize) -> Vec<f64> {
    (0..n)
        .map(|i| level * (1.0 + 0.02 * ((i * 7) % 5) as f64))
        .collect()
}

/// `GET /judges` lists Kayenta's judge; `POST /judges/judge` judges a
/// metric-set-pair list sent in the body with a stored or inline config,
/// Kayenta's fields with Verdict's explanation beside them; bad requests
/// are 4xx with the reason, and a passing score on thin data is refused.
#[tokio::test]
async fn judges_are_listed_and_judge_metric_set_pairs() {
    let d = Daemon::start(&daemon_config("http://127.0.0.1:9"), 900.0).await;
    let judges = d.get("/judges").await;
    assert_eq!(judges.status, 200);
    assert_eq!(
        judges.json(),
        json!([{"name": "NetflixACAJudge-v1.0", "visible": true}])
    );

    let judge = "/judges/judge?canaryConfigId=podinfo-argo&passThreshold=90&marginalThreshold=75&storageAccountName=s";
    let healthy = json!([
        metric_pair("p99 latency", &points(0.2, 40), &points(0.2, 40)),
        metric_pair("5xx ratio", &points(0.01, 40), &points(0.01, 40)),
    ]);
    let a = d.post_json(judge, healthy.to_string()).await;
    assert_eq!(a.status, 200, "{a:?}");
    let r = a.json();
    assert_eq!(r["judgeName"], "NetflixACAJudge-v1.0");
    assert_eq!(r["score"]["score"], 100.0, "{r}");
    assert_eq!(r["score"]["classification"], "Pass");
    assert_eq!(r["results"][0]["id"], "id-p99 latency");
    assert_eq!(r["results"][0]["tags"]["pod"], "a");
    assert_eq!(r["results"][0]["classification"], "Pass");
    assert_eq!(r["results"][0]["experimentMetadata"]["stats"]["count"], 40);
    assert_eq!(r["results"][1]["groups"], json!(["errors"]));
    let names: Vec<&str> = r["groupScores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["latency", "errors"]);
    assert_eq!(r["verdict"]["metrics"][0]["enough_data"], true);
    assert_eq!(
        r["verdict"]["metrics"][0]["statistics"]["control"]["count"],
        40
    );

    // A regressed critical metric fails the canary, with the reason.
    let regressed = json!([
        metric_pair("p99 latency", &points(0.2, 40), &points(0.2, 40)),
        metric_pair("5xx ratio", &points(0.01, 40), &points(0.1, 40)),
    ]);
    let r = d.post_json(judge, regressed.to_string()).await.json();
    assert_eq!(r["score"]["score"], 0.0, "{r}");
    assert_eq!(r["score"]["classification"], "Fail");
    assert_eq!(r["results"][1]["classification"], "High");
    assert!(r["results"][1]["critical"].as_bool().unwrap());
    assert!(!r["verdict"]["metrics"][1]["reason"]
        .as_str()
        .unwrap()
        .is_empty());
    assert!(
        r["verdict"]["metrics"][1]["statistics"]["shift"].is_object(),
        "the interval behind the label: {r}"
    );

    // The config inline, with NaN and null values as Jackson writes them.
    let config: Value = serde_json::from_str(
        &std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap(),
    )
    .unwrap();
    let mut slower = points(0.3, 40);
    slower[3] = f64::NAN;
    let mut with_gaps = json!([
        metric_pair("p99 latency", &points(0.2, 40), &slower),
        metric_pair("5xx ratio", &points(0.01, 40), &points(0.01, 40)),
    ]);
    with_gaps[0]["values"]["experiment"][3] = json!("NaN");
    with_gaps[0]["values"]["control"][5] = Value::Null;
    let inline = json!({"canaryConfig": config, "metricSetPairList": with_gaps, "unknown": 1});
    let a = d
        .post_json(
            "/judges/judge?passThreshold=90&marginalThreshold=75",
            inline.to_string(),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    let r = a.json();
    assert_eq!(r["score"]["score"], 80.0, "{r}");
    assert_eq!(r["score"]["classification"], "Marginal");
    assert_eq!(r["results"][0]["classification"], "High");
    assert_eq!(r["results"][0]["experimentMetadata"]["stats"]["count"], 39);

    // Refusals, each with its reason.
    let thin = json!([
        metric_pair("p99 latency", &points(0.2, 3), &points(0.2, 3)),
        metric_pair("5xx ratio", &points(0.01, 40), &points(0.01, 40)),
    ]);
    let m = message(&d.post_json(judge, thin.to_string()).await, 422);
    assert!(m.contains("cannot support promoting"), "{m}");
    assert!(m.contains("3 control and 3 experiment points"), "{m}");
    // A metric of the config without a pair: its weighted group is absent,
    // so Kayenta's score fails the canary...
    let missing = json!([metric_pair(
        "p99 latency",
        &points(0.2, 40),
        &points(0.2, 40)
    )]);
    let r = d.post_json(judge, missing.to_string()).await.json();
    assert_eq!(r["score"]["score"], 20.0, "{r}");
    // ...and with unweighted groups it would pass without the metric: refused.
    let mut unweighted = config.clone();
    unweighted["classifier"]["groupWeights"] = json!({});
    let m = message(
        &d.post_json(
            "/judges/judge?passThreshold=90&marginalThreshold=75",
            json!({"canaryConfig": unweighted, "metricSetPairList": missing}).to_string(),
        )
        .await,
        422,
    );
    assert!(
        m.contains("\"5xx ratio\" of the config has no metric set pair"),
        "{m}"
    );
    let cases: Vec<(String, String, u16, &str)> = vec![
        (
            "/judges/judge?canaryConfigId=podinfo-argo&metricSetPairListId=abc&passThreshold=90&marginalThreshold=75".into(),
            healthy.to_string(),
            400,
            "stores no metric-set-pair lists",
        ),
        (
            "/judges/judge?canaryConfigId=podinfo-argo&marginalThreshold=75".into(),
            healthy.to_string(),
            400,
            "passThreshold is required",
        ),
        (
            "/judges/judge?canaryConfigId=podinfo-argo&passThreshold=high&marginalThreshold=75".into(),
            healthy.to_string(),
            400,
            "passThreshold must be a number",
        ),
        (
            "/judges/judge?canaryConfigId=podinfo-argo&passThreshold=50&marginalThreshold=75".into(),
            healthy.to_string(),
            400,
            "marginal <= pass",
        ),
        (judge.into(), "{not json".into(), 400, "malformed metric-set-pair list"),
        (judge.into(), "42".into(), 400, "expected a metric-set-pair list"),
        (judge.into(), "[]".into(), 400, "nothing to judge"),
        (
            judge.into(),
            json!([metric_pair("cpu", &[1.0], &[1.0])]).to_string(),
            400,
            "Could not find metric config for \"cpu\"",
        ),
        (
            judge.into(),
            json!([{"name": "p99 latency", "values": {"control": [1.0]}}]).to_string(),
            400,
            "values has no \"experiment\"",
        ),
        (
            judge.into(),
            json!([{"name": "p99 latency", "values": {"control": [1.0, "x"], "experiment": [1.0]}}]).to_string(),
            400,
            "metricSetPairList[0].values.control[1]",
        ),
        (
            judge.into(),
            json!({"canaryConfig": config, "metricSetPairList": healthy}).to_string(),
            400,
            "not both",
        ),
        (
            "/judges/judge?passThreshold=90&marginalThreshold=75".into(),
            healthy.to_string(),
            400,
            "canaryConfigId is required",
        ),
        (
            "/judges/judge?canaryConfigId=nope&passThreshold=90&marginalThreshold=75".into(),
            healthy.to_string(),
            404,
            "not found",
        ),
    ];
    for (path, body, status, expected) in cases {
        let m = message(&d.post_json(&path, body.clone()).await, status);
        assert!(
            m.contains(expected),
            "{expected:?} not in {m:?} for {path} {body}"
        );
    }
    let mut dredd = config.clone();
    dredd["judge"]["name"] = json!("dredd-v1.0");
    let m = message(
        &d.post_json(
            "/judges/judge?passThreshold=90&marginalThreshold=75",
            json!({"canaryConfig": dredd, "metricSetPairList": healthy}).to_string(),
        )
        .await,
        400,
    );
    assert!(
        m.contains("Unable to resolve canary judge \"dredd-v1.0\""),
        "{m}"
    );
}

/// What a daemon stopped mid-judgement leaves in its SQLite file: an
/// execution recorded `running`. The next daemon on the file judges it
/// again (its scopes are a fixed interval) and it completes with a real
/// judgement; one that can no longer be judged ends terminal with the
/// reason. Neither is ever `succeeded` without a judgement.
#[tokio::test]
async fn an_execution_left_running_is_judged_again_at_start() {
    use verdict::kayenta_api::execution::{Execution, Outcome};
    let prometheus = Scenario::healthy()
        .with_canary(|c| c.latency = 0.300)
        .start();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("verdict.db");
    {
        let store = std::sync::Arc::new(
            verdict::store::sqlite::SqliteStore::open(&db)
                .await
                .unwrap(),
        );
        verdict::store::Store::migrate_up(store.as_ref())
            .await
            .unwrap();
        let repos = verdict::store::Store::kayenta(store);
        let config = support::kayenta_store::podinfo_config("podinfo-argo", "podinfo-argo");
        let request: verdict::kayenta_api::model::ExecutionRequest =
            serde_json::from_str(&argo_body(prometheus.base)).unwrap();
        let running = |id: &str, request| Execution {
            id: id.into(),
            config_id: Some("podinfo-argo".into()),
            config: config.clone(),
            request,
            params: Default::default(),
            build_time_millis: 1_000,
            end_time_millis: None,
            outcome: Outcome::Running,
        };
        repos
            .executions
            .insert(running("left-running", request.clone()))
            .await
            .unwrap();
        // A request this Verdict no longer accepts (no thresholds).
        let mut unjudgeable = request;
        unjudgeable.thresholds = None;
        repos
            .executions
            .insert(running("cannot-resume", unjudgeable))
            .await
            .unwrap();
    }
    let d = Daemon::start(&daemon_config_on(&prometheus.url, &db), 900.0).await;
    let status = poll(&d, "left-running").await;
    assert_eq!(status["status"], "succeeded", "{status}");
    let judge = &status["result"]["judgeResult"];
    assert_eq!(judge["score"]["score"], 80.0, "{status}");
    assert_eq!(judge["results"][0]["classification"], "High");
    assert_eq!(status["result"]["verdict"]["window"]["step_seconds"], 15.0);
    let status = poll(&d, "cannot-resume").await;
    assert_eq!(status["status"], "terminal", "{status}");
    assert!(status.get("result").is_none());
    let error = status["exception"]["details"]["error"].as_str().unwrap();
    assert!(
        error.contains("cannot be judged again") && error.contains("thresholds"),
        "{error}"
    );
    assert_eq!(
        d.metric_sum("verdict_kayenta_executions_total", &["status=\"resumed\""])
            .await,
        1.0
    );
}

/// The real `verdict serve` binary, killed with SIGKILL on drop.
struct Serve {
    child: std::process::Child,
    url: String,
    client: reqwest::Client,
}

impl Serve {
    async fn start(config: &std::path::Path, url: &str) -> Serve {
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["serve", "--config"])
            .arg(config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start verdict serve");
        verdict::tls::install_crypto_provider();
        let serve = Serve {
            child,
            url: url.to_string(),
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
        };
        for _ in 0..400 {
            if let Ok(r) = serve.client.get(format!("{url}/healthz")).send().await {
                if r.status().is_success() {
                    return serve;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("verdict serve did not become healthy");
    }

    /// SIGKILL: nothing runs after it, as with a node lost or an OOM kill.
    fn kill(mut self) {
        self.child.kill().expect("kill -9");
        self.child.wait().unwrap();
    }

    async fn answer(r: reqwest::RequestBuilder) -> Answer {
        let r = r.send().await.expect("request to verdict serve");
        let status = r.status().as_u16();
        Answer {
            status,
            body: r.text().await.unwrap(),
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Api for Serve {
    async fn get(&self, path: &str) -> Answer {
        Serve::answer(self.client.get(format!("{}{path}", self.url))).await
    }
    async fn post_json(&self, path: &str, body: String) -> Answer {
        Serve::answer(
            self.client
                .post(format!("{}{path}", self.url))
                .header("content-type", "application/json")
                .body(body),
        )
        .await
    }
}

/// `verdict serve` on a SQLite file, killed with SIGKILL while an execution
/// is being judged (its Prometheus held up by a slow proxy), then started
/// again on the same file: the posted config, the execution completed
/// before the kill (byte for byte) and the interrupted one, judged again
/// to a real result, are all there, and Argo's look-up still finds the
/// config.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verdict_serve_keeps_configs_and_executions_across_kill_9() {
    use support::fault_proxy::{Fault, FaultProxy};
    let prometheus = Scenario::healthy().start();
    let mut proxy = FaultProxy::start(&prometheus.url).await;
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("verdict.yaml");
    std::fs::write(
        &config,
        format!(
            "listen: 127.0.0.1:{port}\nprometheus: {{url: \"{}\", retries: 0, timeout: 5s}}\n\
             store: {{backend: sqlite, path: verdict.db}}\n",
            proxy.url
        ),
    )
    .unwrap();
    let url = format!("http://127.0.0.1:{port}");
    let first = Serve::start(&config, &url).await;

    // The config is posted through the API (the daemon has no config files).
    let fixture = std::fs::read_to_string("../fixtures/kayenta/podinfo-argo.json").unwrap();
    let created = first.post_json("/canaryConfig", fixture).await;
    assert_eq!(created.status, 200, "{created:?}");
    let config_id = created.json()["canaryConfigId"]
        .as_str()
        .unwrap()
        .to_string();
    let stored = first
        .get(&format!("/canaryConfig/{config_id}"))
        .await
        .json();
    // Argo's whole measurement, completed before the kill.
    let (phase, done) = argo_measurement(&first, prometheus.base).await;
    assert_eq!(phase, Phase::Successful, "{done}");
    // Another one, held up by a slow Prometheus: running at the kill.
    proxy.set(Fault::Delay(Duration::from_secs(60))).await;
    let held = first
        .post_json(
            &format!("/canary/{config_id}?application=podinfo"),
            argo_body(prometheus.base),
        )
        .await;
    assert_eq!(held.status, 200, "{held:?}");
    let held = held.json()["canaryExecutionId"]
        .as_str()
        .unwrap()
        .to_string();
    let running = first.get(&format!("/canary/{held}")).await.json();
    assert_eq!(running["status"], "running", "{running}");
    first.kill();
    proxy.set(Fault::Pass).await;

    let second = Serve::start(&config, &url).await;
    let listed = second
        .get("/canaryConfig?application=podinfo&configurationAccountName=verdict-storage")
        .await
        .json();
    assert_eq!(listed[0]["id"], config_id.as_str(), "{listed}");
    assert_eq!(listed[0]["origin"], "api");
    assert_eq!(
        second
            .get(&format!("/canaryConfig/{config_id}"))
            .await
            .json(),
        stored
    );
    let id = done["id"].as_str().unwrap();
    assert_eq!(second.get(&format!("/canary/{id}")).await.json(), done);
    let resumed = poll(&second, &held).await;
    assert_eq!(resumed["status"], "succeeded", "{resumed}");
    assert_eq!(
        resumed["result"]["judgeResult"]["score"]["score"], 100.0,
        "{resumed}"
    );
    assert_eq!(
        resumed["result"]["verdict"]["metrics"][1]["name"],
        "5xx ratio"
    );
    assert_eq!(resumed["buildTimeMillis"], running["buildTimeMillis"]);
    let metrics = second.get("/metrics").await.body;
    assert_eq!(
        support::daemon::metric_sum(
            &metrics,
            "verdict_kayenta_executions_total",
            &["status=\"resumed\""]
        ),
        1.0
    );
    let executions = second
        .get("/canary/executions?application=podinfo")
        .await
        .json();
    let ids: Vec<&str> = executions
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [held.as_str(), id]);
    // And Argo's provider, run again against the restarted daemon.
    let (phase, _) = argo_measurement(&second, prometheus.base).await;
    assert_eq!(phase, Phase::Successful);
}

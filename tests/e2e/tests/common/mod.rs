//! What the end-to-end rollout tests share: Verdict's analysis, the
//! services, Prometheus readiness and the log. Included by each test as
//! `mod common;` next to the analyzer's `daemon` and `prometheus` support
//! modules.

#![allow(dead_code)] // each test binary uses a different subset

use crate::prometheus::PrometheusServer;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use verdict_e2e::load::{CanaryWeight, LoadStats};

/// The Kubernetes namespace of every scenario.
pub const NAMESPACE: &str = "e2e";
/// Prometheus' scrape interval.
pub const SCRAPE: Duration = Duration::from_secs(1);

/// Verdict's config (`PROMETHEUS_URL` and `ANALYSIS_NAME` to replace, see
/// [`verdict_config`]): one analysis for short intervals. `step: 1s` matches
/// the scrape interval; `lookback` covers the interval before the first
/// look; the dedup window joins the rollback and rollout hooks of one tick
/// into one look; `min_data` makes promotion wait for a few hundred
/// requests per arm and three intervals.
pub const VERDICT_CONFIG: &str = r#"
prometheus:
  url: PROMETHEUS_URL
  timeout: 2s
  retries: 1
analyses:
  ANALYSIS_NAME:
    description: End-to-end rollout test of the e2e-app service.
    lookback: 5s
    step: 1s
    dedup_window: 500ms
    alpha: 0.05
    min_data: {requests: 300, duration: 12s}
    metrics:
      - name: errors
        kind: counter
        judge: sequential
        critical: true
        canary:
          errors: 'sum(http_requests_total{namespace="{{namespace}}",app="{{name}}-canary",code=~"5.."})'
          total: 'sum(http_requests_total{namespace="{{namespace}}",app="{{name}}-canary"})'
        baseline:
          errors: 'sum(http_requests_total{namespace="{{namespace}}",app="{{name}}-primary",code=~"5.."})'
          total: 'sum(http_requests_total{namespace="{{namespace}}",app="{{name}}-primary"})'
      - name: latency
        kind: histogram
        judge: sequential
        critical: true
        slow_above: 0.025
        canary: 'sum by (le) (http_request_duration_seconds_bucket{namespace="{{namespace}}",app="{{name}}-canary"})'
        baseline: 'sum by (le) (http_request_duration_seconds_bucket{namespace="{{namespace}}",app="{{name}}-primary"})'
      - name: accuracy
        kind: counter
        judge: sequential
        critical: true
        canary:
          errors: 'sum(model_predictions_scored_total{namespace="{{namespace}}",app="{{name}}-canary",correct="false"})'
          total: 'sum(model_predictions_scored_total{namespace="{{namespace}}",app="{{name}}-canary"})'
        baseline:
          errors: 'sum(model_predictions_scored_total{namespace="{{namespace}}",app="{{name}}-primary",correct="false"})'
          total: 'sum(model_predictions_scored_total{namespace="{{namespace}}",app="{{name}}-primary"})'
"#;

/// [`VERDICT_CONFIG`] on `prometheus` with the analysis named `analysis`.
pub fn verdict_config(prometheus: &str, analysis: &str) -> String {
    VERDICT_CONFIG
        .replace("PROMETHEUS_URL", prometheus)
        .replace("ANALYSIS_NAME", analysis)
}

/// Verdict's config as a user writes it from `templates/analysis/`: the
/// analyses of `http-service.yaml` and `ml-model.yaml` as shipped, with the
/// Prometheus URL replaced by `prometheus`.
pub fn template_config(prometheus: &str) -> String {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../templates/analysis");
    let mut config = serde_yaml::Mapping::new();
    let mut analyses = serde_yaml::Mapping::new();
    for file in ["http-service.yaml", "ml-model.yaml"] {
        let text = std::fs::read_to_string(format!("{root}/{file}"))
            .unwrap_or_else(|e| panic!("templates/analysis/{file}: {e}"));
        let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("template YAML");
        let shipped = doc["analyses"].as_mapping().expect("analyses").clone();
        analyses.extend(shipped);
    }
    let mut settings = serde_yaml::Mapping::new();
    settings.insert("url".into(), prometheus.into());
    config.insert("prometheus".into(), settings.into());
    config.insert("analyses".into(), analyses.into());
    serde_yaml::to_string(&config).expect("config YAML")
}

/// The scrape labels of one of `name`'s pods as Kubernetes names them
/// (`<name>-<hash>-<id>`, the primary `<name>-primary-<hash>-<id>`): what
/// the templates' `pod=~...` selectors match.
pub fn pod_labels(name: &str, primary: bool) -> Vec<(String, String)> {
    let pod = if primary {
        format!("{name}-primary-5d8f7c9b4-x7k2p")
    } else {
        format!("{name}-7b6d5c4f3-q9w8e")
    };
    vec![("namespace".into(), NAMESPACE.into()), ("pod".into(), pod)]
}

/// A running `e2e-app`, killed on drop. Its stdin stays open while the
/// guard lives; the service exits by itself when it closes.
pub struct Service {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// `127.0.0.1:PORT`.
    pub address: String,
}

impl Service {
    pub fn start(seed: u64, faults: &[&str]) -> Service {
        let mut child = Command::new(env!("CARGO_BIN_EXE_e2e-app"))
            .arg("--seed")
            .arg(seed.to_string())
            .args(faults)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start e2e-app");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("read e2e-app's address");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("e2e-app did not say where it listens: {line:?}"))
            .to_string();
        Service {
            child,
            url: format!("http://{address}"),
            address,
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Switches `canary`'s faults on (`POST /admin/faults`) `delay` after the
/// weight first reaches `at_weight` (at once for 0, before the first
/// traffic increase); returns the time just before the switch (a lower
/// bound of the regression's onset).
pub async fn switch_faults_on(
    weight: Arc<CanaryWeight>,
    canary: String,
    at_weight: u32,
    delay: Duration,
) -> f64 {
    if at_weight > 0 {
        while weight.get() < at_weight {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(delay).await;
    }
    let onset = unix_now();
    let answer = reqwest::Client::new()
        .post(format!("{canary}/admin/faults"))
        .send()
        .await
        .expect("switch the canary's faults on");
    assert_eq!(answer.status().as_u16(), 200, "POST /admin/faults");
    onset
}

pub fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs_f64()
}

/// Writes to the real stderr, past the test harness' capture, so the
/// timelines are in the CI log of a passing run too.
pub fn log(text: &str) {
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// Waits until Prometheus has scraped every target successfully.
pub async fn wait_scraped(prometheus: &PrometheusServer, targets: usize) {
    verdict::tls::install_crypto_provider();
    let client = reqwest::Client::new();
    let started = Instant::now();
    loop {
        let body: serde_json::Value = client
            .get(format!("{}/api/v1/query", prometheus.url))
            .query(&[("query", "count(up == 1)")])
            .send()
            .await
            .expect("query Prometheus")
            .json()
            .await
            .expect("Prometheus answers JSON");
        let up = body["data"]["result"][0]["value"][1]
            .as_str()
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        if up == targets {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "Prometheus scraped {up} of {targets} targets after a minute:\n{}",
            prometheus.log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

pub fn describe_load(load: &LoadStats) -> String {
    format!(
        "load: {:.0} req/s; baseline {} sent, {} ok, {} 5xx, {} failed; canary {} sent, {} ok, {} 5xx, {} failed\n",
        load.achieved_rate(),
        load.baseline.sent,
        load.baseline.ok,
        load.baseline.server_errors,
        load.baseline.failed,
        load.canary.sent,
        load.canary.ok,
        load.canary.server_errors,
        load.canary.failed,
    )
}

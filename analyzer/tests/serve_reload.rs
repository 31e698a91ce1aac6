//! `verdict serve` as a process: refusing a bad config at start, reloading on
//! SIGHUP (keeping the last good config when the new one is invalid), and
//! stopping cleanly on SIGTERM. The real binary, a real Prometheus from the
//! harness, a free loopback port; every wait is bounded.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use support::daemon::metric_sum;
use support::scenario::{config, Scenario};

/// Longest wait for anything the daemon does (start, reload, stop).
const WAIT: Duration = Duration::from_secs(30);

const PAYLOAD: &str =
    r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"c0ffee01"}"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The scenario's config served on `port`. The scenario's data lies hours in
/// the past and the binary looks at wall-clock time, so the lookback reaches
/// back far enough for the looks to find the data.
fn serve_config(prometheus: &str, port: u16) -> String {
    format!(
        "listen: 127.0.0.1:{port}\n{}",
        config(prometheus).replace("lookback: 5m", "lookback: 6h")
    )
}

/// A running `verdict serve`; killed on drop if the test did not stop it.
struct Served {
    child: Child,
    url: String,
    log: PathBuf,
    client: reqwest::Client,
}

impl Served {
    fn start(config_file: &Path, port: u16, log: PathBuf) -> Served {
        let child = spawn(config_file, &log);
        Served {
            child,
            url: format!("http://127.0.0.1:{port}"),
            log,
            client: {
                verdict::tls::install_crypto_provider();
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(10))
                    .build()
                    .expect("HTTP client")
            },
        }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn wait_healthy(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("verdict serve exited early ({status}):\n{}", self.log());
            }
            if let Ok(r) = self
                .client
                .get(format!("{}/healthz", self.url))
                .send()
                .await
            {
                if r.status() == 200 {
                    return;
                }
            }
            assert!(
                started.elapsed() < WAIT,
                "verdict serve not healthy after {WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// POSTs a Flagger `rollout` hook; status and body.
    async fn rollout(&self, analysis: &str, payload: &str) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}/v1/flagger/{analysis}/rollout", self.url))
            .header("content-type", "application/json")
            .body(payload.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST rollout: {e}\n{}", self.log()));
        (r.status().as_u16(), r.text().await.expect("body"))
    }

    async fn metric(&self, name: &str, labels: &[&str]) -> f64 {
        let r = self
            .client
            .get(format!("{}/metrics", self.url))
            .send()
            .await
            .expect("GET /metrics");
        metric_sum(&r.text().await.expect("body"), name, labels)
    }

    /// Waits until `name{labels}` reaches `at_least`.
    async fn wait_metric(&self, name: &str, labels: &[&str], at_least: f64) {
        let started = Instant::now();
        while self.metric(name, labels).await < at_least {
            assert!(
                started.elapsed() < WAIT,
                "{name}{labels:?} did not reach {at_least} within {WAIT:?}:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{signal} failed");
    }

    /// Waits for the process to exit (bounded).
    async fn wait_exit(&mut self) -> ExitStatus {
        let started = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                started.elapsed() < WAIT,
                "verdict serve still running {WAIT:?} after the signal:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn(config_file: &Path, log: &Path) -> Child {
    let log = std::fs::File::create(log).expect("create log");
    Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("serve")
        .arg("--config")
        .arg(config_file)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log handle"))
        .stderr(log)
        .spawn()
        .expect("start verdict serve")
}

#[test]
fn invalid_config_at_start_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("verdict.yaml");
    let text = format!(
        "listen: 127.0.0.1:{}\n\
         prometheus:\n  url: http://127.0.0.1:9\n\
         analyses:\n  checkout:\n    metrics:\n\
         \x20     - name: latency\n        kind: gauge\n        judge: coin-flip\n\
         \x20       canary: 'up'\n        baseline: 'up'\n",
        free_port()
    );
    std::fs::write(&file, text).expect("write config");
    let out = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("serve")
        .arg("--config")
        .arg(&file)
        .stdin(Stdio::null())
        .output()
        .expect("run verdict serve");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    // `judge: coin-flip` is on line 9.
    let place = format!("{}:9", file.display());
    assert!(stderr.contains(&place), "no {place} in:\n{stderr}");
    assert!(stderr.contains("coin-flip"), "{stderr}");
    assert!(stderr.contains("refusing to start"), "{stderr}");
}

#[tokio::test]
async fn sighup_reload_keeps_the_last_good_config_and_applies_valid_changes() {
    let prom = Scenario::healthy().start();
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("verdict.yaml");
    let port = free_port();
    let good = serve_config(&prom.url, port);
    std::fs::write(&file, &good).expect("write config");
    let mut d = Served::start(&file, port, dir.path().join("verdict.log"));
    d.wait_healthy().await;

    let looks = || d.metric("verdict_looks_total", &[]);
    let (status, body) = d.rollout("checkout", PAYLOAD).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(looks().await, 1.0);
    let (status, body) = d.rollout("canary-extra", PAYLOAD).await;
    assert_eq!(status, 404, "{body}");

    // The file turns invalid: the reload is refused and counted, the old
    // analyses keep serving.
    std::fs::write(
        &file,
        good.replace("judge: mann-whitney", "judge: coin-flip"),
    )
    .expect("write invalid config");
    d.signal("HUP");
    d.wait_metric(
        "verdict_config_reloads_total",
        &[r#"result="failure""#],
        1.0,
    )
    .await;
    assert_eq!(
        d.metric("verdict_config_reloads_total", &[r#"result="success""#])
            .await,
        0.0
    );
    assert!(d.log().contains("config reload refused"), "{}", d.log());
    let (status, body) = d
        .rollout("checkout", &PAYLOAD.replace("c0ffee01", "c0ffee02"))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(looks().await, 2.0, "the old analysis no longer takes looks");

    // A valid change adding an analysis: applied, counted, reachable.
    let extra = good.replace("  windowed:\n", "  canary-extra:\n");
    assert_ne!(extra, good, "the scenario config changed shape");
    std::fs::write(&file, &extra).expect("write new config");
    d.signal("HUP");
    d.wait_metric(
        "verdict_config_reloads_total",
        &[r#"result="success""#],
        1.0,
    )
    .await;
    let payload =
        r#"{"name":"podinfo","namespace":"test","checksum":"c0ffee03","metadata":{"window":"2m"}}"#;
    let (status, body) = d.rollout("canary-extra", payload).await;
    assert!(
        status == 200 || (400..500).contains(&status) && status != 404,
        "{status} {body}"
    );
    assert_eq!(looks().await, 3.0, "the new analysis did not take a look");
    // The analysis it replaced is gone.
    assert_eq!(d.rollout("windowed", payload).await.0, 404);

    // SIGTERM: a clean stop.
    d.signal("TERM");
    let status = d.wait_exit().await;
    assert_eq!(status.code(), Some(0), "{}", d.log());
    assert!(d.log().contains("verdict stopped"), "{}", d.log());
}

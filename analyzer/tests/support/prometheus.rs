//! A real Prometheus server, preloaded with deterministic data, for tests.
//!
//! Why a real server rather than a mock of the HTTP API: the source must
//! agree with what Prometheus actually answers (result shapes, error types
//! and status codes, NaN spellings, lookback/staleness at the edges of a
//! window), and a mock would only encode our own assumptions.
//!
//! How: the test writes OpenMetrics text (see [`OpenMetrics`]); `promtool tsdb
//! create-blocks-from openmetrics` turns it into TSDB blocks in a temporary
//! directory; `prometheus` serves that directory on a free loopback port with
//! no scrape targets, so nothing but the test data is ever in it.
//!
//! Constraints this works around:
//! * promtool only backfills data older than the head block and cuts blocks
//!   at 2 h boundaries, so all data sits at [`base_time`] (now − 3 h, rounded
//!   down to a 2 h boundary) plus small offsets;
//! * tests run in parallel, so every server has its own port (chosen at run
//!   time, retried if another process grabs it first) and its own directory.
//!
//! For end-to-end tests whose data is produced live,
//! [`PrometheusServer::start_scraping`] starts a server that scrapes
//! loopback targets from a generated config instead; the port and
//! directory handling are the same.
//!
//! `prometheus` and `promtool` must be on PATH: run
//! `scripts/install-test-deps.sh`.

#![allow(dead_code)] // each test binary uses a different subset

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How long a server may take to become ready before the test fails. Generous
/// because CI machines are shared; a healthy start takes well under a second.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Attempts at finding a port no other process grabbed in the meantime.
const PORT_ATTEMPTS: usize = 5;

/// Unix seconds that all test data is relative to: now − 3 h, rounded down
/// to a multiple of 2 h. Fixed for the life of the test process, so every
/// test in a binary agrees on it even across a 2 h boundary.
pub fn base_time() -> i64 {
    static BASE: OnceLock<i64> = OnceLock::new();
    *BASE.get_or_init(|| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("system clock before 1970")
            .as_secs() as i64;
        const TWO_HOURS: i64 = 2 * 3600;
        (now - 3 * 3600).div_euclid(TWO_HOURS) * TWO_HOURS
    })
}

/// A running Prometheus serving the data it was started with. Killed on drop.
pub struct PrometheusServer {
    /// Base URL, e.g. `http://127.0.0.1:41234`.
    pub url: String,
    /// [`base_time`], for convenience.
    pub base: i64,
    child: Option<Child>,
    tempdir: tempfile::TempDir,
}

impl PrometheusServer {
    /// Backfills `text` (OpenMetrics, ending in `# EOF`) and starts a server
    /// on it; returns once `/-/ready` answers 200. Panics with the reason (and
    /// the server's log) if anything fails.
    pub fn start_with_openmetrics(text: &str) -> PrometheusServer {
        let promtool = find_on_path("promtool");
        let (tempdir, data_dir) = work_dir();
        let dir = tempdir.path();

        // promtool rejects an input without samples; an empty server is fine.
        if text.lines().any(|l| !l.is_empty() && !l.starts_with('#')) {
            let input = dir.join("data.om");
            std::fs::write(&input, text).expect("write OpenMetrics file");
            let out = Command::new(&promtool)
                .args(["tsdb", "create-blocks-from", "openmetrics"])
                .arg(&input)
                .arg(&data_dir)
                .output()
                .expect("run promtool");
            if !out.status.success() {
                panic!(
                    "promtool could not backfill the test data ({}):\n{}{}\n--- input ---\n{}",
                    out.status,
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr),
                    text
                );
            }
        }

        // No scrape_configs: nothing but the backfilled data ever lands in
        // the TSDB, so results are deterministic.
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, "global:\n  evaluation_interval: 1h\n").expect("write config");
        Self::serve(tempdir, &config, &data_dir)
    }

    /// Starts a server that scrapes `targets` live every `interval` (for
    /// end-to-end tests whose data is produced while the test runs); returns
    /// once `/-/ready` answers 200. Each target's `labels` are attached to
    /// every series scraped from it, as a Kubernetes service discovery
    /// would attach `app` and `namespace`.
    pub fn start_scraping(targets: &[ScrapeTarget], interval: Duration) -> PrometheusServer {
        let (tempdir, data_dir) = work_dir();
        let dir = tempdir.path();
        let config = dir.join("prometheus.yml");
        std::fs::write(&config, scrape_config(targets, interval)).expect("write config");
        Self::serve(tempdir, &config, &data_dir)
    }

    /// Runs `prometheus` on `config` and `data_dir` (inside `tempdir`, which
    /// the server keeps) on a free port, retrying when another process took
    /// the port first.
    fn serve(tempdir: tempfile::TempDir, config: &Path, data_dir: &Path) -> PrometheusServer {
        let prometheus = find_on_path("prometheus");
        let dir = tempdir.path();
        let log_path = dir.join("prometheus.log");
        for attempt in 1..=PORT_ATTEMPTS {
            let port = free_port();
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let log = std::fs::File::create(&log_path).expect("create log file");
            let log_err = log.try_clone().expect("clone log file handle");
            let mut child = Command::new(&prometheus)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", data_dir.display()))
                .arg(format!("--web.listen-address={addr}"))
                // Retention counts back from the newest sample; 100 years
                // keeps everything we backfilled.
                .arg("--storage.tsdb.retention.time=100y")
                .arg("--log.level=info")
                .current_dir(dir)
                .stdin(Stdio::null())
                .stdout(log)
                .stderr(log_err)
                .spawn()
                .unwrap_or_else(|e| panic!("start {}: {e}", prometheus.display()));

            match wait_ready(&mut child, addr, data_dir, &log_path) {
                Ok(()) => {
                    return PrometheusServer {
                        url: format!("http://{addr}"),
                        base: base_time(),
                        child: Some(child),
                        tempdir,
                    }
                }
                Err(StartError::PortTaken) if attempt < PORT_ATTEMPTS => {
                    let _ = child.kill();
                    let _ = child.wait();
                    continue;
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "Prometheus did not become ready on {addr}: {e:?}\n--- log tail ---\n{}",
                        log_tail(&log_path, 30)
                    );
                }
            }
        }
        unreachable!("the last port attempt either returns or panics")
    }

    /// Kills the server (an outage). Idempotent; the URL stays unanswered.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The server's log so far (for debugging a failing test).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.tempdir.path().join("prometheus.log")).unwrap_or_default()
    }
}

impl Drop for PrometheusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A fresh temporary directory for one server, with its empty `data`
/// directory inside.
fn work_dir() -> (tempfile::TempDir, PathBuf) {
    let tempdir = tempfile::Builder::new()
        .prefix("verdict-prometheus-")
        .tempdir()
        .expect("create temporary directory");
    let data_dir = tempdir.path().join("data");
    std::fs::create_dir(&data_dir).expect("create data directory");
    (tempdir, data_dir)
}

/// One scrape target of [`PrometheusServer::start_scraping`].
#[derive(Debug, Clone)]
pub struct ScrapeTarget {
    /// `host:port`, e.g. `127.0.0.1:41236`; `/metrics` is scraped.
    pub address: String,
    /// Labels attached to every series of the target (e.g. `app`, `namespace`).
    pub labels: Vec<(String, String)>,
}

/// A config scraping `targets` every `interval` (whole milliseconds, the
/// finest Prometheus duration), one job per target so each keeps its labels.
fn scrape_config(targets: &[ScrapeTarget], interval: Duration) -> String {
    let ms = interval.as_millis().max(1);
    let mut out = format!(
        "global:\n  scrape_interval: {ms}ms\n  scrape_timeout: {ms}ms\n  evaluation_interval: 1h\nscrape_configs:\n"
    );
    for (i, target) in targets.iter().enumerate() {
        let _ = writeln!(out, "  - job_name: target-{i}");
        let _ = writeln!(out, "    static_configs:");
        let _ = writeln!(out, "      - targets: ['{}']", target.address);
        if !target.labels.is_empty() {
            let _ = writeln!(out, "        labels:");
            for (k, v) in &target.labels {
                let _ = writeln!(out, "          {k}: '{}'", v.replace('\'', "''"));
            }
        }
    }
    out
}

#[derive(Debug)]
enum StartError {
    PortTaken,
    Exited(std::process::ExitStatus),
    NotReadyAfter(Duration),
}

fn wait_ready(
    child: &mut Child,
    addr: SocketAddr,
    data_dir: &Path,
    log: &Path,
) -> Result<(), StartError> {
    let started = Instant::now();
    let mut delay = Duration::from_millis(10);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let text = std::fs::read_to_string(log).unwrap_or_default();
            return Err(if text.contains("address already in use") {
                StartError::PortTaken
            } else {
                StartError::Exited(status)
            });
        }
        match ready_and_ours(addr, data_dir) {
            Readiness::Ours => return Ok(()),
            Readiness::Foreign => return Err(StartError::PortTaken),
            Readiness::NotYet => {}
        }
        if started.elapsed() > READY_TIMEOUT {
            return Err(StartError::NotReadyAfter(READY_TIMEOUT));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(100));
    }
}

/// A minimal `GET` over a plain socket, returning status and body: the
/// harness is synchronous and must work inside `#[tokio::test]`, where a
/// blocking HTTP client would panic.
fn http_get(addr: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(200)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).ok()?;
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_owned()))
}

/// Whether the server at `addr` is ready *and is ours*: with ports chosen
/// at run time, another test's server could have taken the port between our
/// probe and our bind, and must not be mistaken for ours.
fn ready_and_ours(addr: SocketAddr, data_dir: &Path) -> Readiness {
    match http_get(addr, "/-/ready") {
        Some((200, _)) => {}
        _ => return Readiness::NotYet,
    }
    match http_get(addr, "/api/v1/status/flags") {
        Some((200, body)) if body.contains(&*data_dir.to_string_lossy()) => Readiness::Ours,
        Some((200, _)) => Readiness::Foreign,
        _ => Readiness::NotYet,
    }
}

enum Readiness {
    NotYet,
    Ours,
    Foreign,
}

/// A port that was free a moment ago. Another process may take it before
/// Prometheus binds it; [`PrometheusServer::start_with_openmetrics`] retries.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("bind an ephemeral loopback port")
}

fn find_on_path(name: &str) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not on PATH; run scripts/install-test-deps.sh to install Prometheus"
            )
        })
}

fn log_tail(path: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// Builds OpenMetrics text for [`PrometheusServer::start_with_openmetrics`].
///
/// Timestamps are **seconds after [`base_time`]**; points of one series must
/// be in increasing time order (promtool rejects anything else). Series of
/// the same metric may be added in several calls; they are grouped into one
/// metric family as OpenMetrics requires.
///
/// ```ignore
/// let text = OpenMetrics::new()
///     .counter("http_requests_total", &[("pod", "a")], &[(0.0, 1.0), (30.0, 4.0)])
///     .gauge("cpu", &[], &[(0.0, 0.5)])
///     .render();
/// ```
#[derive(Debug, Default, Clone)]
pub struct OpenMetrics {
    families: Vec<Family>,
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    kind: &'static str,
    lines: Vec<String>,
}

impl OpenMetrics {
    pub fn new() -> Self {
        Self::default()
    }

    /// A counter series named `name` (the name you query; conventionally
    /// ending in `_total`).
    pub fn counter(mut self, name: &str, labels: &[(&str, &str)], points: &[(f64, f64)]) -> Self {
        let family = name.strip_suffix("_total").unwrap_or(name);
        let lines = points
            .iter()
            .map(|&(t, v)| sample_line(name, labels, None, t, v))
            .collect();
        self.add(family, "counter", lines);
        self
    }

    /// A gauge series.
    pub fn gauge(mut self, name: &str, labels: &[(&str, &str)], points: &[(f64, f64)]) -> Self {
        let lines = points
            .iter()
            .map(|&(t, v)| sample_line(name, labels, None, t, v))
            .collect();
        self.add(name, "gauge", lines);
        self
    }

    /// The `<name>_bucket` series of a classic histogram: `les` are the upper
    /// bounds (include `f64::INFINITY`), and each point gives the
    /// *cumulative* bucket counts at one time, in the order of `les`.
    /// `_sum` and `_count` are not written (Verdict does not use them).
    pub fn histogram_buckets<const N: usize>(
        mut self,
        name: &str,
        labels: &[(&str, &str)],
        les: [f64; N],
        points: &[(f64, [f64; N])],
    ) -> Self {
        let bucket = format!("{name}_bucket");
        let mut lines = Vec::new();
        for (t, counts) in points {
            for (le, count) in les.iter().zip(counts) {
                lines.push(sample_line(&bucket, labels, Some(*le), *t, *count));
            }
        }
        self.add(name, "histogram", lines);
        self
    }

    fn add(&mut self, family: &str, kind: &'static str, lines: Vec<String>) {
        match self.families.iter_mut().find(|f| f.name == family) {
            Some(f) => {
                assert_eq!(f.kind, kind, "metric family {family} used with two types");
                f.lines.extend(lines);
            }
            None => self.families.push(Family {
                name: family.to_owned(),
                kind,
                lines,
            }),
        }
    }

    /// The OpenMetrics text, ending with `# EOF`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in &self.families {
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind);
            for line in &f.lines {
                out.push_str(line);
                out.push('\n');
            }
        }
        out.push_str("# EOF\n");
        out
    }

    /// Renders and starts a server on the result.
    pub fn start(&self) -> PrometheusServer {
        PrometheusServer::start_with_openmetrics(&self.render())
    }
}

fn sample_line(name: &str, labels: &[(&str, &str)], le: Option<f64>, t: f64, v: f64) -> String {
    let mut pairs: Vec<String> = labels
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
        .collect();
    if let Some(le) = le {
        pairs.push(format!("le=\"{}\"", format_value(le)));
    }
    let labels = if pairs.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", pairs.join(","))
    };
    let ts = base_time() as f64 + t;
    format!("{name}{labels} {} {ts}", format_value(v))
}

fn format_value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's Display is the shortest round-tripping decimal.
        format!("{v}")
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

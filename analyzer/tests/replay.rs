//! Record, replay and backtest (issue 4).
//!
//! * replay == serve: for recordings built here (and every recording of
//!   `fixtures/recordings/manifest.yaml` when it exists), the decisions of
//!   `verdict replay` equal those of the real HTTP API driven with Flagger
//!   `rollout` webhooks at the same look times over the same data;
//! * formats: CSV, Parquet and query_range JSON read to the same recording;
//!   malformed files are refused with file, row and column;
//! * `verdict record` against a real Prometheus, round-tripped through
//!   replay and compared with the daemon serving that Prometheus;
//! * `verdict backtest` over a manifest: exit 0 when every expectation
//!   holds, 1 when one fails.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use verdict::api::flagger::{respond, HookType};
use verdict::api::{self, AppState};
use verdict::config::Config;
use verdict::engine::run::{Look, RunKey};
use verdict::engine::Engine;
use verdict::recording::{self, Arm};
use verdict::replay::source::load;
use verdict::replay::{replay, stream, ReplaySpec, ReplaySummary, Replayer, Schedule};
use verdict::telemetry::Telemetry;
use verdict_judges::decision::Action;
use verdict_judges::splitmix64::SplitMix64;

/// Start of the recordings built here (2023-11-14T22:13:20Z).
const T0: f64 = 1_700_000_000.0;
const STEP: f64 = 15.0;
const LES: [f64; 5] = [0.1, 0.25, 0.5, 1.0, f64::INFINITY];

/// An analysis with one metric of each kind, queries keyed by app name.
const CONFIG: &str = r#"
prometheus:
  url: http://127.0.0.1:9
analyses:
  web:
    lookback: 1m
    step: 15s
    min_data: {points: 10, requests: 200}
    groups: {latency: 40, errors: 60}
    metrics:
      - name: p99-latency
        kind: gauge
        group: latency
        canary: 'p99_seconds{namespace="{{namespace}}",app="{{name}}-canary"}'
        baseline: 'p99_seconds{namespace="{{namespace}}",app="{{name}}-primary"}'
      - name: errors
        kind: counter
        group: errors
        canary: {errors: 'sum(errors_total{app="{{name}}-canary"})', total: 'sum(requests_total{app="{{name}}-canary"})'}
        baseline: {errors: 'sum(errors_total{app="{{name}}-primary"})', total: 'sum(requests_total{app="{{name}}-primary"})'}
      - name: latency
        kind: histogram
        group: latency
        slow_above: 0.25
        canary: 'sum by (le) (latency_seconds_bucket{app="{{name}}-canary"})'
        baseline: 'sum by (le) (latency_seconds_bucket{app="{{name}}-primary"})'
"#;

fn vars() -> BTreeMap<String, String> {
    [("name", "checkout"), ("namespace", "shop")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn config_in(dir: &Path) -> (PathBuf, Config) {
    let path = dir.join("verdict.yaml");
    std::fs::write(&path, CONFIG).unwrap();
    let config = verdict::config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    (path, config)
}

/// How an arm behaves in a generated recording.
#[derive(Clone, Copy)]
struct Behaviour {
    latency: f64,
    error_rate: f64,
    /// Probability of each bucket of [`LES`] (non-cumulative).
    buckets: [f64; 5],
}

const GOOD: Behaviour = Behaviour {
    latency: 0.2,
    error_rate: 0.005,
    buckets: [0.3, 0.5, 0.15, 0.04, 0.01],
};
const BAD: Behaviour = Behaviour {
    latency: 0.3,
    error_rate: 0.05,
    buckets: [0.15, 0.35, 0.3, 0.12, 0.08],
};

/// Writes a CSV recording of `minutes` of 15 s samples: both arms GOOD,
/// the canary BAD from `regress_at` seconds on.
fn write_recording(path: &Path, minutes: u32, regress_at: Option<f64>, seed: u64) {
    let mut rng = SplitMix64::new(seed);
    let mut normal = move || {
        let (u, v) = (rng.next_open01(), rng.next_open01());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    };
    let mut out = String::from("timestamp,metric,arm,value,le\n");
    for arm in [Arm::Baseline, Arm::Canary] {
        let (mut errors, mut total) = (0.0f64, 0.0f64);
        let mut cumulative = [0.0f64; 5];
        for i in 0..=(minutes * 4) {
            let t = i as f64 * STEP;
            let b = match (arm, regress_at) {
                (Arm::Canary, Some(r)) if t >= r => BAD,
                _ => GOOD,
            };
            let ts = T0 + t;
            let a = arm.as_str();
            let p99 = b.latency * (1.0 + 0.05 * normal());
            out.push_str(&format!("{ts},p99-latency,{a},{p99},\n"));
            if i > 0 {
                let n = (300.0 + 17.0 * normal()).round().max(0.0);
                let e = (n * b.error_rate + (n * b.error_rate).sqrt() * normal())
                    .round()
                    .clamp(0.0, n);
                total += n;
                errors += e;
                let mut left = n;
                for (k, p) in b.buckets.iter().enumerate() {
                    let c = if k == 4 {
                        left
                    } else {
                        (n * p).round().min(left)
                    };
                    left -= c;
                    for slot in cumulative.iter_mut().skip(k) {
                        *slot += c;
                    }
                }
            }
            out.push_str(&format!("{ts},errors:errors,{a},{errors},\n"));
            out.push_str(&format!("{ts},errors:total,{a},{total},\n"));
            for (le, c) in LES.iter().zip(cumulative) {
                let le = recording::format_le(*le);
                out.push_str(&format!("{ts},latency,{a},{c},{le}\n"));
            }
        }
    }
    std::fs::write(path, out).unwrap();
}

/// Replays `path` as `verdict replay` does (in time buckets of
/// `bucket_seconds` when given, else the default); returns every look with
/// its run.
async fn replay_looks(
    config: &Config,
    analysis: &str,
    path: &Path,
    vars: &BTreeMap<String, String>,
    schedule: &Schedule,
    bucket_seconds: Option<f64>,
) -> (Vec<(usize, Look)>, ReplaySummary) {
    let cfg = &config.analyses[analysis];
    let loaded = match bucket_seconds {
        None => stream::open(path, cfg, vars, schedule),
        Some(b) => stream::open_in_buckets(path, cfg, vars, schedule, b),
    }
    .unwrap_or_else(|e| panic!("{e}"));
    let replayer = Replayer::new(config.analyses.clone(), loaded.source);
    let spec = ReplaySpec {
        name: path.display().to_string(),
        analysis: analysis.to_string(),
        vars: vars.clone(),
        schedule: schedule.clone(),
        start: loaded.span.0,
        end: loaded.span.1,
        max_runs: None,
    };
    let mut looks = Vec::new();
    let summary = replay(&replayer, &spec, |run, look| {
        looks.push((run, look.clone()))
    })
    .await
    .unwrap();
    (looks, summary)
}

/// A time bucket much shorter than a run: the stream reads a bucket and
/// drops old samples every few looks.
const SHORT_BUCKET: f64 = 45.0;

/// Verdict's HTTP API over `engine`, its clock read from `clock`.
async fn serve(
    engine: Arc<Engine>,
    source: Arc<dyn verdict::source::SeriesSource>,
    clock: Arc<AtomicU64>,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let reading = clock.clone();
    let state = AppState::new(engine, source).with_clock(Arc::new(move || {
        f64::from_bits(reading.load(Ordering::SeqCst))
    }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, api::router(state))
            .with_graceful_shutdown(async {
                let _ = rx.await;
            })
            .await
            .unwrap();
    });
    (url, tx)
}

/// Drives Flagger webhooks at the replay's look times against `engine`
/// (served over HTTP) and checks each answer and stored look against the
/// replay's. `at` maps a look time to the daemon clock.
async fn assert_serve_matches(
    label: &str,
    url: &str,
    engine: &Engine,
    clock: &AtomicU64,
    analysis: &str,
    vars: &BTreeMap<String, String>,
    looks: &[(usize, Look)],
) {
    verdict::tls::install_crypto_provider();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    let mut metadata: BTreeMap<String, String> = vars
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "name" | "namespace"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let payload = |run: usize, metadata: &BTreeMap<String, String>| {
        serde_json::json!({
            "name": vars["name"], "namespace": vars["namespace"], "phase": "Progressing",
            "checksum": format!("run{run}"), "metadata": metadata,
        })
        .to_string()
    };
    let post = |hook: &str, body: String| {
        client
            .post(format!("{url}/v1/flagger/{analysis}/{hook}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let mut previous_run = None;
    for (run, replayed) in looks {
        if let Some(previous) = previous_run.filter(|p| p != run) {
            let r = post("post-rollout", payload(previous, &metadata))
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
        }
        previous_run = Some(*run);
        clock.store(replayed.time.to_bits(), Ordering::SeqCst);
        let weight = replayed.weight.expect("replay looks carry a weight");
        metadata.insert("weight".into(), format!("{weight}"));
        let r = post("rollout", payload(*run, &metadata)).await.unwrap();
        let status = r.status().as_u16();
        let body = r.text().await.unwrap();
        let (want_status, want_body) = respond(HookType::Rollout, &replayed.decision);
        let at = format!("{label}: run {run} look {}", replayed.number);
        assert_eq!(
            (status, body.as_str()),
            (want_status.as_u16(), want_body.as_str()),
            "{at}"
        );
        let key = RunKey::Flagger {
            namespace: vars["namespace"].clone(),
            name: vars["name"].clone(),
            checksum: format!("run{run}"),
        };
        let served = engine.run(analysis, &key).await.expect("run exists");
        let served = served.last_look().expect("a look");
        assert_eq!(served.number, replayed.number, "{at}");
        assert_eq!(served.time, replayed.time, "{at}");
        assert_eq!(served.weight, replayed.weight, "{at}");
        assert_eq!(served.window, replayed.window, "{at}");
        assert_eq!(served.decision, replayed.decision, "{at}");
        assert_eq!(
            serde_json::to_value(&served.metrics).unwrap(),
            serde_json::to_value(&replayed.metrics).unwrap(),
            "{at}"
        );
    }
}

/// Replays `path`, then serves the same recording, held whole in memory,
/// over HTTP and checks every look agrees; also replays it in buckets
/// short enough that most of it is dropped and read again between runs,
/// which must give the same looks. Returns the replay.
async fn replay_equals_serve(
    label: &str,
    config: &Config,
    analysis: &str,
    path: &Path,
    vars: &BTreeMap<String, String>,
    schedule: &Schedule,
) -> (Vec<(usize, Look)>, ReplaySummary) {
    let (looks, summary) = replay_looks(config, analysis, path, vars, schedule, None).await;
    assert!(!looks.is_empty(), "{label}: no looks");
    let (short, _) = replay_looks(config, analysis, path, vars, schedule, Some(SHORT_BUCKET)).await;
    assert_eq!(
        serde_json::to_value(&short).unwrap(),
        serde_json::to_value(&looks).unwrap(),
        "{label}: replayed in {SHORT_BUCKET} s buckets"
    );
    let loaded = load(
        recording::read(path).unwrap(),
        &config.analyses[analysis],
        vars,
    )
    .unwrap();
    let source: Arc<dyn verdict::source::SeriesSource> = Arc::new(loaded.source);
    let engine = Arc::new(Engine::new(
        config.analyses.clone(),
        source.clone(),
        Arc::new(Telemetry::new()),
    ));
    let clock = Arc::new(AtomicU64::new(0f64.to_bits()));
    let (url, stop) = serve(engine.clone(), source, clock.clone()).await;
    assert_serve_matches(label, &url, &engine, &clock, analysis, vars, &looks).await;
    let _ = stop.send(());
    (looks, summary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_equals_serve_on_built_recordings() {
    let dir = tempfile::tempdir().unwrap();
    let (_, config) = config_in(dir.path());
    let healthy = dir.path().join("healthy.csv");
    let regressed = dir.path().join("regressed.csv");
    write_recording(&healthy, 60, None, 1);
    write_recording(&regressed, 40, Some(600.0), 2);
    // Both arms get equal traffic here, so the rollout holds the canary at
    // 50 % (the fixtures test weight steps with traffic that follows them;
    // a 5 % step on this data is a broken split and never promotes).
    let schedule = Schedule {
        weights: vec![50.0],
        ..Schedule::default()
    };

    let (looks, summary) =
        replay_equals_serve("healthy", &config, "web", &healthy, &vars(), &schedule).await;
    assert!(
        summary.runs.iter().all(|r| r.action != Action::Abort),
        "healthy recording aborted: {:?}",
        summary.runs
    );
    // A 60-minute recording is several consecutive rollouts.
    assert!(summary.runs.len() >= 2, "{:?}", summary.runs);
    assert_eq!(looks.len(), summary.looks);
    assert!(looks.iter().all(|(_, l)| l.weight == Some(50.0)));

    let (_, summary) =
        replay_equals_serve("regressed", &config, "web", &regressed, &vars(), &schedule).await;
    let abort = summary
        .first_abort_from(T0 + 600.0)
        .unwrap_or_else(|| panic!("regression not caught: {:?}", summary.runs));
    assert!(abort.end - (T0 + 600.0) <= 600.0, "{:?}", summary.runs);
    assert_eq!(summary.decision, Action::Abort);
    assert_eq!(summary.aborts_before(T0 + 600.0), 0, "{:?}", summary.runs);
}

/// The shipped fixtures, when their manifest is in the tree.
fn fixtures_manifest() -> Option<PathBuf> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("fixtures")
        .join("recordings")
        .join("manifest.yaml");
    path.is_file().then_some(path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_equals_serve_on_every_fixture() {
    let Some(path) = fixtures_manifest() else {
        eprintln!("fixtures/recordings/manifest.yaml not in the tree: nothing to check");
        return;
    };
    let (file, manifest) = verdict::recording::manifest::Manifest::load(&path).unwrap();
    let base = verdict::recording::manifest::Manifest::base(&file);
    let config_path = base.join(manifest.config.as_ref().expect("manifest names its config"));
    let config = verdict::config::load(&config_path).unwrap_or_else(|e| panic!("{e}"));
    for entry in &manifest.recordings {
        let analysis = entry
            .analysis
            .clone()
            .or_else(|| manifest.analysis.clone())
            .expect("an analysis");
        let defaults = Schedule::default();
        let schedule = Schedule {
            interval: entry.interval.map_or(defaults.interval, |d| d.0),
            weights: entry.weights.clone().unwrap_or(defaults.weights),
            step_every: entry.step_every.map_or(defaults.step_every, |d| d.0),
        };
        replay_equals_serve(
            &entry.file.display().to_string(),
            &config,
            &analysis,
            &base.join(&entry.file),
            &manifest.vars,
            &schedule,
        )
        .await;
    }
}

#[test]
fn csv_parquet_and_query_range_json_read_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("r.csv");
    write_recording(&csv, 10, Some(300.0), 3);
    let from_csv = recording::read(&csv).unwrap();
    assert_eq!(from_csv.len(), 2 * 41 * 8);
    // Parquet and CSV written by the table writer read back equal.
    for name in ["r.parquet", "again.csv"] {
        let path = dir.path().join(name);
        recording::table::write(&path, &from_csv).unwrap();
        assert_eq!(recording::read(&path).unwrap(), from_csv, "{name}");
    }
    // The same series as Prometheus query_range answers.
    let json_dir = dir.path().join("json");
    std::fs::create_dir(&json_dir).unwrap();
    let mut files: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for s in &from_csv.series {
        let metric = match s.le {
            Some(le) => serde_json::json!({"le": recording::format_le(le)}),
            None => serde_json::json!({}),
        };
        let values: Vec<serde_json::Value> = s
            .samples
            .iter()
            .map(|p| serde_json::json!([p.timestamp, p.value.to_string()]))
            .collect();
        files
            .entry(format!("{}.{}.json", s.metric, s.arm.as_str()))
            .or_default()
            .push(serde_json::json!({"metric": metric, "values": values}));
    }
    for (name, result) in files {
        let answer = serde_json::json!({"status": "success",
            "data": {"resultType": "matrix", "result": result}});
        std::fs::write(json_dir.join(name), answer.to_string()).unwrap();
    }
    assert_eq!(recording::read(&json_dir).unwrap(), from_csv);
}

#[test]
fn unsorted_rows_and_rfc3339_times_are_fine() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("u.csv");
    std::fs::write(
        &path,
        "metric,arm,timestamp,value\n\
         m,canary,1700000030,3\n\
         m,canary,2023-11-14T22:13:20Z,1\n\
         m,canary,1700000015.0,NaN\n",
    )
    .unwrap();
    let r = recording::read(&path).unwrap();
    let times: Vec<f64> = r.series[0].samples.iter().map(|p| p.timestamp).collect();
    assert_eq!(times, vec![T0, T0 + 15.0, T0 + 30.0]);
    assert!(r.series[0].samples[1].value.is_nan());
}

/// A malformed file: name, contents, the row and column the error must
/// name, and words it must contain.
type MalformedCase<'a> = (&'a str, &'a str, Option<u64>, Option<&'a str>, &'a str);

#[test]
fn malformed_files_name_the_file_row_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[MalformedCase] = &[
        ("empty.csv", "", None, None, "empty"),
        ("header-only.csv", "timestamp,metric,arm,value\n", None, None, "no rows"),
        (
            "missing-column.csv",
            "timestamp,metric,value\n1700000000,m,1\n",
            None,
            Some("arm"),
            "missing column",
        ),
        (
            "bad-arm.csv",
            "timestamp,metric,arm,value\n1700000000,m,canary,1\n1700000015,m,primary,1\n",
            Some(2),
            Some("arm"),
            "primary",
        ),
        (
            "bad-timestamp.csv",
            "timestamp,metric,arm,value\n1700000000,m,canary,1\n1700000015,m,canary,1\nyesterday,m,canary,1\n",
            Some(3),
            Some("timestamp"),
            "yesterday",
        ),
        (
            "bad-value.csv",
            "timestamp,metric,arm,value\n1700000000,m,canary,fast\n",
            Some(1),
            Some("value"),
            "fast",
        ),
        (
            "bad-le.csv",
            "timestamp,metric,arm,value,le\n1700000000,m,canary,1,high\n",
            Some(1),
            Some("le"),
            "high",
        ),
        (
            "empty-metric.csv",
            "timestamp,metric,arm,value\n1700000000,,canary,1\n",
            Some(1),
            Some("metric"),
            "empty metric",
        ),
        (
            "not-parquet.parquet",
            "timestamp,metric,arm,value\n",
            None,
            None,
            "Parquet",
        ),
        ("unknown.txt", "x", None, None, "unknown recording format"),
    ];
    for (name, text, row, column, words) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let e = recording::read(&path).expect_err(name);
        assert_eq!(e.file, path, "{name}: {e}");
        assert_eq!(e.row, *row, "{name}: {e}");
        assert_eq!(e.column.as_deref(), *column, "{name}: {e}");
        let shown = e.to_string();
        assert!(
            shown.contains(name) && shown.contains(words),
            "{name}: {shown}"
        );
    }
    assert!(recording::read(&dir.path().join("absent.csv")).is_err());
}

fn verdict_bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
}

/// A recordings directory: config, two recordings and a manifest.
fn backtest_dir(regressed_expected: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    config_in(dir.path());
    write_recording(&dir.path().join("healthy.csv"), 30, None, 4);
    write_recording(&dir.path().join("regressed.csv"), 30, Some(300.0), 5);
    std::fs::write(
        dir.path().join("manifest.yaml"),
        format!(
            "config: verdict.yaml\nanalysis: web\nvars: {{name: checkout, namespace: shop}}\n\
             recordings:\n  - file: healthy.csv\n    expected: healthy\n    description: A/A\n\
             \x20 - file: regressed.csv\n    expected: {regressed_expected}\n    regression_start: {}\n",
            T0 + 300.0
        ),
    )
    .unwrap();
    dir
}

#[test]
fn backtest_passes_when_expectations_hold_and_fails_otherwise() {
    let dir = backtest_dir("regressed");
    let out = verdict_bin()
        .args(["backtest", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("false aborts 0, missed regressions 0"),
        "{stdout}"
    );
    assert!(stdout.contains("caught after"), "{stdout}");
    assert!(stdout.contains("backtest passed"), "{stdout}");

    let out = verdict_bin()
        .args(["backtest", "--json", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["false_aborts"], 0);
    assert!(report["time_to_detect"]["median"].as_f64().unwrap() > 0.0);
    assert!(
        report["metric_time_to_detect"].as_object().unwrap().len() >= 2,
        "{report}"
    );

    let dir = backtest_dir("healthy");
    let out = verdict_bin()
        .args(["backtest", "--data"])
        .arg(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAIL") && stdout.contains("backtest FAILED"),
        "{stdout}"
    );
}

#[test]
fn replay_cli_prints_a_table_or_json_and_refuses_bad_files() {
    let dir = backtest_dir("regressed");
    // The manifest beside the file supplies config, analysis and vars.
    let report = dir.path().join("report.html");
    let out = verdict_bin()
        .args(["replay", "--data"])
        .arg(dir.path().join("regressed.csv"))
        .arg("--report")
        .arg(&report)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("p99-latency") && stdout.contains("weight"),
        "{stdout}"
    );
    assert!(stdout.contains("decision: abort"), "{stdout}");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("<svg") && html.contains("p99-latency"),
        "{html}"
    );
    assert!(
        html.contains("decision: abort"),
        "the report carries the summary"
    );

    let out = verdict_bin()
        .args([
            "replay",
            "--json",
            "--interval",
            "30s",
            "--weights",
            "10,100",
            "--step-every",
            "2m",
        ])
        .arg("--config")
        .arg(dir.path().join("verdict.yaml"))
        .args([
            "--analysis",
            "web",
            "--vars",
            "name=checkout",
            "namespace=shop",
            "--data",
        ])
        .arg(dir.path().join("healthy.csv"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let looks = v["looks"].as_array().unwrap();
    assert!(!looks.is_empty());
    assert_eq!(looks[0]["weight"], 10.0);
    assert_eq!(
        looks[1]["time"].as_f64().unwrap() - looks[0]["time"].as_f64().unwrap(),
        30.0
    );
    assert_ne!(v["summary"]["decision"], "abort", "{}", v["summary"]);
    assert!(v["summary"]["runs"].as_array().unwrap().len() > 1);

    // --runs 1: one rollout, then stop; 0 is refused.
    let runs = |n: &str| {
        verdict_bin()
            .args(["replay", "--json", "--runs", n, "--data"])
            .arg(dir.path().join("healthy.csv"))
            .output()
            .unwrap()
    };
    let out = runs("1");
    assert_eq!(out.status.code(), Some(0));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["summary"]["runs"].as_array().unwrap().len(), 1);
    assert_eq!(runs("0").status.code(), Some(2));

    // Nowhere to spill the recording: exit 2, the reason, nothing on stdout.
    let out = verdict_bin()
        .env("TMPDIR", dir.path().join("no-such-dir"))
        .args(["replay", "--json", "--data"])
        .arg(dir.path().join("healthy.csv"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("cannot spill the recording"), "{stderr}");
    assert!(out.stdout.is_empty());

    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "timestamp,metric,arm,value\n1700000000,p99-latency,canary,slow\n",
    )
    .unwrap();
    let out = verdict_bin()
        .args(["replay", "--data"])
        .arg(&bad)
        .arg("--config")
        .arg(dir.path().join("verdict.yaml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("bad.csv: row 1, column \"value\""),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_from_prometheus_round_trips_through_replay() {
    use support::daemon::Daemon;
    use support::prometheus::base_time;
    use support::scenario::{config as scenario_config, Scenario};

    let scenario = Scenario::healthy().with_canary(|c| c.error_rate = 0.08);
    let prometheus = scenario.start();
    let yaml = scenario_config(&prometheus.url);
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("verdict.yaml");
    std::fs::write(&config_path, &yaml).unwrap();
    let base = base_time() as f64;
    let out_path = dir.path().join("rec.parquet");
    let out = tokio::task::spawn_blocking({
        let (config_path, out_path) = (config_path.clone(), out_path.clone());
        move || {
            verdict_bin()
                .arg("record")
                .arg("--config")
                .arg(&config_path)
                .args([
                    "--analysis",
                    "checkout",
                    "--vars",
                    "name=podinfo",
                    "namespace=test",
                ])
                .args([
                    "--from",
                    &format!("{base}"),
                    "--to",
                    &format!("{}", base + 600.0),
                ])
                .arg("--out")
                .arg(&out_path)
                .output()
                .unwrap()
        }
    })
    .await
    .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = recording::read(&out_path).unwrap();
    let names: Vec<&str> = rec.metric_names().into_iter().collect();
    assert_eq!(
        names,
        vec![
            "error-rate:errors",
            "error-rate:total",
            "errors:errors",
            "errors:total",
            "latency"
        ]
    );
    // Prometheus evaluated every 15 s over 600 s: 41 points per series.
    assert!(
        rec.series.iter().all(|s| s.samples.len() == 41),
        "{:?}",
        rec.series
            .iter()
            .map(|s| s.samples.len())
            .collect::<Vec<_>>()
    );

    // Replay the recording, then ask the daemon on the live Prometheus at
    // the same times: the same decisions.
    let config = verdict::config::load(&config_path).unwrap();
    let vars: BTreeMap<String, String> = [("name", "podinfo"), ("namespace", "test")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let schedule = Schedule {
        interval: Duration::from_secs(60),
        // The scenario sends both arms 10 requests/s.
        weights: vec![50.0],
        step_every: Duration::from_secs(300),
    };
    let (looks, summary) =
        replay_looks(&config, "checkout", &out_path, &vars, &schedule, None).await;
    assert_eq!(summary.decision, Action::Abort, "{:?}", summary.runs);
    let daemon = Daemon::start(&yaml, looks[0].1.time - base).await;
    let engine = daemon.engine.clone();
    // Drive the same webhooks, moving the daemon's clock look by look.
    let mut previous = None;
    for (run, replayed) in &looks {
        if let Some(p) = previous.filter(|p| p != run) {
            let a = daemon
                .post_json(
                    "/v1/flagger/checkout/post-rollout",
                    format!(r#"{{"name":"podinfo","namespace":"test","checksum":"run{p}"}}"#),
                )
                .await;
            assert_eq!(a.status, 200);
        }
        previous = Some(*run);
        daemon.at(replayed.time - base);
        let a = daemon
            .post_json(
                "/v1/flagger/checkout/rollout",
                format!(
                    r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"run{run}","metadata":{{"weight":"{}"}}}}"#,
                    replayed.weight.unwrap()
                ),
            )
            .await;
        let (status, body) = respond(HookType::Rollout, &replayed.decision);
        let at = format!("run {run} look {}", replayed.number);
        assert_eq!(
            (a.status, a.body.as_str()),
            (status.as_u16(), body.as_str()),
            "{at}"
        );
        let key = RunKey::Flagger {
            namespace: "test".into(),
            name: "podinfo".into(),
            checksum: format!("run{run}"),
        };
        let served = engine.run("checkout", &key).await.unwrap();
        assert_eq!(
            served.last_look().unwrap().decision,
            replayed.decision,
            "{at}"
        );
    }
}

/// `verdict record` against a Prometheus that is not there: exit 1 with
/// the reason, and the file it was to write is left as it was, with no
/// partial file beside it.
#[test]
fn a_failed_record_leaves_the_output_as_it_was() {
    let dir = tempfile::tempdir().unwrap();
    let (config_path, _) = config_in(dir.path());
    let out_path = dir.path().join("kept.csv");
    std::fs::write(&out_path, "an earlier recording\n").unwrap();
    let out = verdict_bin()
        .arg("record")
        .arg("--config")
        .arg(&config_path)
        .args([
            "--analysis",
            "web",
            "--vars",
            "name=checkout",
            "namespace=shop",
        ])
        .args(["--from", "1700000000", "--to", "1700000600", "--out"])
        .arg(&out_path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("unreachable"), "{stderr}");
    assert_eq!(
        std::fs::read_to_string(&out_path).unwrap(),
        "an earlier recording\n"
    );
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["kept.csv", "verdict.yaml"]);
}

#[test]
fn backtest_over_the_fixtures_catches_every_regression_without_false_aborts() {
    let Some(manifest) = fixtures_manifest() else {
        eprintln!("fixtures/recordings/manifest.yaml not in the tree: nothing to check");
        return;
    };
    let out = verdict_bin()
        .args(["backtest", "--json", "--data"])
        .arg(manifest.parent().unwrap())
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr)));
    let failed: Vec<&serde_json::Value> = report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["error"] != serde_json::Value::Null
                || e["false_aborts"] != 0
                || e["false_promotes"] != 0
                || e["missed"] == true
        })
        .collect();
    assert!(failed.is_empty(), "{failed:#?}");
    assert_eq!(report["false_aborts"], 0);
    assert_eq!(report["missed_regressions"], 0);
    assert_eq!(report["false_promotes"], 0);
    assert!(report["healthy"].as_u64().unwrap() >= 1 && report["regressed"].as_u64().unwrap() >= 1);
    assert_eq!(out.status.code(), Some(0));
}

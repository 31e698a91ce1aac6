//! What is written can be read back: arbitrary looks (histograms whose last
//! bound is `+Inf`, NaN deviations, infinite interval ends, empty arms,
//! huge counts) recorded through every store backend (memory, SQLite, a
//! real PostgreSQL) read back equal, and so do they through
//! `GET /v1/runs/{id}` and `verdict runs show --json`.
//!
//! "Equal" is compared on the text the JSON codec writes
//! (`verdict::json::to_string`), which tells NaN, +inf and -inf apart and
//! is exact for every finite float.

mod support;

use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use support::postgres::PgServer;
use verdict::engine::run::{Look, RunKey};
use verdict::json::{number, to_string};
use verdict::store::{NewRun, RunDetail, Store};

/// Floats as statistics produce them: ordinary, extreme, and non-finite.
fn float() -> impl Strategy<Value = f64> {
    prop_oneof![
        4 => -1e6..1e6f64,
        1 => Just(f64::NAN),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(0.0),
        1 => Just(f64::MAX),
        1 => Just(f64::MIN_POSITIVE),
    ]
}

/// Counts up to the largest a JSON number holds exactly in every reader.
fn count() -> impl Strategy<Value = u64> {
    prop_oneof![
        0..1000u64,
        Just(0),
        Just(u64::MAX / 2),
        1u64 << 52..1u64 << 62
    ]
}

/// One arm's summary, or none (an empty arm).
fn arm() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        (0..10_000usize, float(), float(), float()).prop_map(|(count, mean, min, max)| {
            json!({"kind": "points", "count": count, "mean": number(mean),
                   "min": number(min), "max": number(max)})
        }),
        (count(), count(), float()).prop_map(|(errors, total, rate)| {
            json!({"kind": "counts", "errors": errors, "total": total, "rate": number(rate)})
        }),
        proptest::collection::vec((0.0..10.0f64, count()), 0..6).prop_map(|buckets| {
            // Ascending bounds ending at +Inf, as Prometheus histograms do.
            let mut le: Vec<f64> = buckets.iter().map(|b| b.0).collect();
            le.sort_by(f64::total_cmp);
            le.push(f64::INFINITY);
            let mut counts: Vec<u64> = buckets.iter().map(|b| b.1).collect();
            counts.push(7);
            let total: u64 = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
            json!({"kind": "buckets", "total": total,
                   "le": le.into_iter().map(number).collect::<Vec<_>>(), "counts": counts})
        }),
    ]
}

fn metric() -> impl Strategy<Value = Value> {
    (
        "[a-z][a-z0-9-]{0,12}",
        prop_oneof![
            Just("pass"),
            Just("high"),
            Just("low"),
            Just("nodata"),
            Just("error")
        ],
        any::<bool>(),
        arm(),
        arm(),
        (float(), float(), float(), float()),
    )
        .prop_map(|(name, label, critical, canary, baseline, (e, lo, hi, p))| {
            json!({
                "name": name, "group": "default", "judge": "sequential",
                "classification": label, "critical": critical, "muted": false,
                "enough_data": !critical, "reason": format!("{name} <b>&\"quoted\""),
                "canary": canary, "baseline": baseline,
                "statistics": {"estimate": number(e), "interval": [number(lo), number(hi)],
                               "p_value": number(p), "canary_share_by_bucket": [number(p), null]},
            })
        })
}

fn look(number: usize) -> impl Strategy<Value = Look> {
    (
        proptest::collection::vec(metric(), 0..4),
        proptest::option::of(0.0..100.0f64),
        0.0..100.0f64,
    )
        .prop_map(move |(metrics, weight, score)| {
            let look = json!({
                "number": number,
                "time": 1_000.0 + 60.0 * number as f64,
                "window": {"start": 0.5, "end": 1_000.0 + 60.0 * number as f64, "step_seconds": 15.0},
                "baseline": "the primary, same window",
                "weight": weight,
                "metrics": metrics,
                "decision": {"action": "continue", "score": score, "classification": "Marginal",
                             "reasons": ["a <script>alert(1)</script> reason"], "groups": []},
            });
            verdict::json::from_str(&look.to_string()).expect("a well-formed look")
        })
}

fn new_run(name: &str) -> NewRun {
    NewRun {
        analysis: "web".into(),
        key: RunKey::Replay { name: name.into() },
        config_hash: "0".into(),
        verdict_version: "test".into(),
        started_at: 1_000.0,
        window_start: 940.0,
        vars: BTreeMap::new(),
    }
}

/// Records `looks` as one run and returns the run's id.
async fn record(store: &dyn Store, name: &str, looks: &[Look]) -> i64 {
    let run = store.open_run(&new_run(name), 10).await.expect("open run");
    for look in looks {
        store
            .record_look(run.id, &Arc::new(look.clone()), &Default::default())
            .await
            .expect("record look");
    }
    run.id
}

fn texts(looks: &[Look]) -> Vec<String> {
    looks.iter().map(|l| to_string(l).unwrap()).collect()
}

/// Runs the property: every generated run of looks reads back equal.
fn every_run_reads_back(store: Arc<dyn Store>, cases: u32) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let strategy = (1..6usize).prop_flat_map(|n| (1..=n).map(look).collect::<Vec<_>>().boxed());
    let mut runner = TestRunner::new(Config {
        cases,
        ..Config::default()
    });
    let runs = AtomicUsize::new(0);
    runner
        .run(&strategy, |looks| {
            let run = runs.fetch_add(1, Ordering::SeqCst);
            let detail: RunDetail = rt.block_on(async {
                let id = record(store.as_ref(), &format!("r{run}"), &looks).await;
                store.get_run(id).await.expect("read").expect("the run")
            });
            prop_assert_eq!(texts(&detail.looks), texts(&looks));
            Ok(())
        })
        .unwrap();
}

#[test]
fn looks_round_trip_through_the_memory_store() {
    every_run_reads_back(Arc::new(verdict::store::memory::MemoryStore::new()), 64);
}

#[test]
fn looks_round_trip_through_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(async {
        let s = verdict::store::sqlite::SqliteStore::open(&dir.path().join("runs.db"))
            .await
            .unwrap();
        s.migrate_up().await.unwrap();
        s
    });
    every_run_reads_back(Arc::new(store), 64);
}

#[test]
fn looks_round_trip_through_postgresql() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database("roundtrip");
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(async {
        let s = verdict::store::postgres::PostgresStore::connect(&url, 2)
            .await
            .unwrap();
        s.migrate_up().await.unwrap();
        s
    });
    every_run_reads_back(Arc::new(store), 32);
}

/// A look like the one the issue found unreadable: a histogram arm whose
/// last bound is `+Inf` and a NaN deviation, read back through the HTTP API
/// and the CLI from one SQLite file; and a look an older version wrote
/// (`null` for those numbers) still reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_histogram_look_reads_back_through_the_api_and_the_cli() {
    verdict::tls::install_crypto_provider();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("runs.db");
    let config = dir.path().join("verdict.yaml");
    std::fs::write(
        &config,
        format!(
            "store: {{backend: sqlite, path: {}}}\nanalyses:\n  web:\n    metrics:\n      - name: p95\n        kind: gauge\n        canary: 'a'\n        baseline: 'b'\n",
            db.display()
        ),
    )
    .unwrap();
    let store = verdict::store::sqlite::SqliteStore::open(&db)
        .await
        .unwrap();
    store.migrate_up().await.unwrap();
    let mut runner = TestRunner::deterministic();
    let mut looks: Vec<Look> = (1..=3)
        .map(|n| look(n).new_tree(&mut runner).unwrap().current())
        .collect();
    looks[0].metrics = vec![verdict::json::from_str(
        &json!({
            "name": "latency-buckets", "group": "latency", "judge": "sequential",
            "classification": "pass", "critical": false, "muted": false, "enough_data": true,
            "reason": "", "statistics": {"deviation": "NaN", "interval": ["-inf", "inf"]},
            "canary": {"kind": "buckets", "total": 3, "le": [0.1, "+Inf"], "counts": [1, 2]},
            "baseline": {"kind": "buckets", "total": 4, "le": [0.1, "inf"], "counts": [3, 1]},
        })
        .to_string(),
    )
    .unwrap()];
    let store: Arc<dyn Store> = Arc::new(store);
    let id = record(store.as_ref(), "hist", &looks).await;
    let expected = texts(&looks);

    // The CLI an operator uses, in JSON and as text.
    let runs_show = |json: bool| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["runs", "show"])
            .args(json.then_some("--json"))
            .arg("--config")
            .arg(&config)
            .arg(id.to_string())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    let shown: RunDetail =
        verdict::json::from_str(&runs_show(true)).expect("runs show --json is readable");
    assert_eq!(texts(&shown.looks), expected);
    runs_show(false);

    // The HTTP API, on the production router.
    let engine = Arc::new(
        verdict::engine::Engine::new(
            Default::default(),
            Arc::new(verdict::source::memory::MemorySource::new()),
            Arc::new(verdict::telemetry::Telemetry::new()),
        )
        .with_store(store.clone()),
    );
    let state = verdict::api::AppState::new(
        engine,
        Arc::new(verdict::source::memory::MemorySource::new()),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, verdict::api::router(state))
            .await
            .unwrap()
    });
    let body = reqwest::get(format!("http://{addr}/v1/runs/{id}"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let served: RunDetail = verdict::json::from_str(&body).expect("GET /v1/runs/{id} is readable");
    assert_eq!(texts(&served.looks), expected);
    assert!(body.contains(r#""le":[0.1,"inf"]"#), "{body}");

    // What an older version wrote: serde_json's null for +Inf and NaN.
    let old = to_string(&looks[0])
        .unwrap()
        .replace(r#""le":[0.1,"inf"]"#, r#""le":[0.1,null]"#)
        .replace(r#""score":"#, r#""score":null,"was":"#);
    assert!(old.contains(r#""le":[0.1,null]"#), "{old}");
    let read: Look = verdict::json::from_str(&old).expect("an old look still reads");
    let le = match &read.metrics[0].canary {
        Some(verdict::engine::judge::ArmSummary::Buckets { le, .. }) => le.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(le, vec![0.1, f64::INFINITY]);
}

//! Scenarios shared by the SQLite and PostgreSQL store tests: an engine
//! over exact in-memory series (sequential counter and histogram judges,
//! whose state must survive a restart; a histogram's looks hold its
//! `le = +Inf` bound, which must read back), and checks that hold for
//! every backend.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::Path;
use std::sync::Arc;
use verdict::engine::run::{Look, RunKey};
use verdict::engine::{Engine, LookRequest};
use verdict::source::memory::MemorySource;
use verdict::source::{Sample, Series};
use verdict::store::Store;
use verdict::telemetry::Telemetry;

/// An analysis with a sequential counter and a sequential histogram metric
/// (the e-process states are part of the run) and a gauge-free decision.
pub const CONFIG: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    dedup_window: 5s
    min_data: {requests: 100}
    metrics:
      - name: errors
        kind: counter
        judge: sequential
        canary: {errors: 'err{arm="canary"}', total: 'req{arm="canary"}'}
        baseline: {errors: 'err{arm="primary"}', total: 'req{arm="primary"}'}
      - name: latency
        kind: histogram
        judge: sequential
        slow_above: 0.25
        canary: 'sum by (le) (lat_bucket{arm="canary"})'
        baseline: 'sum by (le) (lat_bucket{arm="primary"})'
"#;

/// Cumulative counter at `rate` per second, sampled every 15 s from 0.
fn counter(rate: f64) -> Vec<Series> {
    vec![cumulative(rate, Default::default())]
}

fn cumulative(rate: f64, labels: std::collections::BTreeMap<String, String>) -> Series {
    let samples = (0..=2000)
        .map(|i| {
            let t = 15.0 * i as f64;
            Sample {
                timestamp: t,
                value: (rate * t).floor(),
            }
        })
        .collect();
    Series { labels, samples }
}

/// A cumulative histogram: `rates` per second at or below each bound of
/// 0.1, 0.25, 0.5 and +Inf.
fn histogram(rates: [f64; 4]) -> Vec<Series> {
    ["0.1", "0.25", "0.5", "+Inf"]
        .iter()
        .zip(rates)
        .map(|(le, rate)| cumulative(rate, [("le".to_string(), le.to_string())].into()))
        .collect()
}

/// A canary slightly worse than its baseline: the evidence builds up over
/// looks, so each look's e-value depends on the state carried from the
/// previous ones.
pub fn source() -> MemorySource {
    let mut s = MemorySource::new();
    s.insert(r#"err{arm="canary"}"#, counter(0.09));
    s.insert(r#"req{arm="canary"}"#, counter(2.0));
    s.insert(r#"err{arm="primary"}"#, counter(0.06));
    s.insert(r#"req{arm="primary"}"#, counter(2.0));
    s.insert(
        r#"sum by (le) (lat_bucket{arm="canary"})"#,
        histogram([1.0, 1.6, 1.85, 2.0]),
    );
    s.insert(
        r#"sum by (le) (lat_bucket{arm="primary"})"#,
        histogram([1.0, 1.7, 1.9, 2.0]),
    );
    s
}

/// An engine on `store` (memory when `None`) over [`source`].
pub fn engine(store: Option<Arc<dyn Store>>) -> Engine {
    let config = verdict::config::load_str(Path::new("t.yaml"), CONFIG, Vec::new()).unwrap();
    let e = Engine::new(
        config.analyses,
        Arc::new(source()),
        Arc::new(Telemetry::new()),
    );
    match store {
        Some(s) => e.with_store(s),
        None => e,
    }
}

pub fn key() -> RunKey {
    RunKey::Replay {
        name: "checkout".into(),
    }
}

/// Time of look `n` (1-based): one a minute.
pub fn time_of(n: usize) -> f64 {
    600.0 + 60.0 * n as f64
}

pub fn request(n: usize) -> LookRequest {
    LookRequest {
        key: key(),
        analysis: "web".into(),
        vars: [("name".to_string(), "app".to_string())]
            .into_iter()
            .collect(),
        now: time_of(n),
        weight: None,
        steps: None,
    }
}

pub async fn look(e: &Engine, n: usize) -> Look {
    (*e.look(request(n)).await.unwrap()).clone()
}

/// Looks 1..=`total`, with the daemon restarted after look `restart_after`:
/// the first engine (on `first`) takes the early looks and is dropped, the
/// second (on `second`, the same database) takes the rest. Each resumed
/// look must equal, number, decision and statistics, the look of an
/// engine that never restarted; and a fresh engine without the history
/// must disagree, so the check can fail.
pub async fn restart_resumes_identically(
    first: Arc<dyn Store>,
    second: Arc<dyn Store>,
    restart_after: usize,
    total: usize,
) {
    let uninterrupted = engine(None);
    let mut expected = Vec::new();
    for n in 1..=total {
        expected.push(look(&uninterrupted, n).await);
    }
    let a = engine(Some(first));
    for n in 1..=restart_after {
        let got = look(&a, n).await;
        assert_eq!(
            verdict::json::to_string(&got).unwrap(),
            verdict::json::to_string(&expected[n - 1]).unwrap()
        );
    }
    drop(a);
    let b = engine(Some(second));
    for n in restart_after + 1..=total {
        let got = look(&b, n).await;
        assert_eq!(got.number, n, "numbering continues after the restart");
        assert_eq!(
            verdict::json::to_string(&got).unwrap(),
            verdict::json::to_string(&expected[n - 1]).unwrap(),
            "look {n} after a restart differs from the uninterrupted run"
        );
    }
    assert!(
        matches!(
            &expected[total - 1].metrics[1].canary,
            Some(verdict::engine::judge::ArmSummary::Buckets { le, .. })
                if le.last() == Some(&f64::INFINITY)
        ),
        "the scenario judges a histogram with its +Inf bucket: {:?}",
        expected[total - 1].metrics[1]
    );
    // Without the stored state the same look is judged differently.
    let amnesiac = look(&engine(None), restart_after + 1).await;
    assert_ne!(
        verdict::json::to_string(&amnesiac.metrics[0].statistics).unwrap(),
        verdict::json::to_string(&expected[restart_after].metrics[0].statistics).unwrap(),
        "the scenario must depend on the carried state"
    );
}

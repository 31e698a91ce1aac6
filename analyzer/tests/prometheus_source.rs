//! The Prometheus source against a real Prometheus (backfilled with known
//! data by the shared harness) and, for the HTTP failure modes a healthy
//! Prometheus never produces (503, 429), against a tiny loopback stub.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use support::prometheus::{OpenMetrics, PrometheusServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use verdict::config::duration::PromDuration;
use verdict::secret::Secret;
use verdict::source::increments::{
    counter_increase, histogram_increments, sum_counter_increase, Bucket,
};
use verdict::source::prometheus::{PrometheusSettings, PrometheusSource};
use verdict::source::{SourceError, Window};

fn source(url: &str) -> PrometheusSource {
    let mut config = PrometheusSettings::new(url);
    config.timeout = PromDuration::from_secs(5);
    config.retries = 2;
    config.backoff = Duration::from_millis(20);
    config.max_backoff = Duration::from_millis(200);
    PrometheusSource::new(&config).expect("valid config")
}

/// `[base + from, base + to]` every `step` seconds.
fn window(server: &PrometheusServer, from: i64, to: i64, step: u64) -> Window {
    Window {
        start: (server.base + from) as f64,
        end: (server.base + to) as f64,
        step: Duration::from_secs(step),
    }
}

fn values(series: &verdict::source::Series) -> Vec<f64> {
    series.samples.iter().map(|s| s.value).collect()
}

#[tokio::test]
async fn range_query_returns_the_loaded_series() {
    let server = OpenMetrics::new()
        .counter(
            "reqs_total",
            &[("pod", "a")],
            &[(0.0, 1.0), (30.0, 4.0), (60.0, 9.0)],
        )
        .counter(
            "reqs_total",
            &[("pod", "b")],
            &[(0.0, 2.0), (30.0, 2.0), (60.0, 3.0)],
        )
        .gauge(
            "temp",
            &[],
            &[(0.0, f64::NAN), (30.0, 1.5), (60.0, f64::INFINITY)],
        )
        .start();
    let src = source(&server.url);
    src.ready().await.expect("server is ready");

    let w = window(&server, 0, 60, 30);
    let series = src
        .query_range("reqs_total", &w)
        .await
        .expect("query succeeds");
    assert_eq!(series.len(), 2, "{series:?}");
    let a = series
        .iter()
        .find(|s| s.labels["pod"] == "a")
        .expect("pod a");
    assert_eq!(a.labels["__name__"], "reqs_total");
    assert_eq!(values(a), vec![1.0, 4.0, 9.0]);
    let ts: Vec<f64> = a.samples.iter().map(|s| s.timestamp).collect();
    let base = server.base as f64;
    assert_eq!(ts, vec![base, base + 30.0, base + 60.0]);
    assert_eq!(sum_counter_increase(&series, &w), Some(8.0 + 1.0));

    // Non-finite values come through as f64, not as errors.
    let temp = src
        .query_range("temp", &window(&server, 0, 60, 30))
        .await
        .expect("gauge query");
    let v = values(&temp[0]);
    assert!(v[0].is_nan());
    assert_eq!(&v[1..], &[1.5, f64::INFINITY]);
}

#[tokio::test]
async fn counter_reset_gives_the_right_increase() {
    // 10 -> 15 (+5), restart, 0 -> 3 (+3), 3 -> 7 (+4): 12 in total, where
    // last - first would say -3 and increase() would extrapolate.
    let server = OpenMetrics::new()
        .counter(
            "errors_total",
            &[("pod", "a")],
            &[(0.0, 10.0), (15.0, 15.0), (30.0, 3.0), (45.0, 7.0)],
        )
        .start();
    let w = window(&server, 0, 45, 15);
    let series = source(&server.url)
        .query_range("errors_total", &w)
        .await
        .expect("query succeeds");
    assert_eq!(series.len(), 1);
    assert_eq!(values(&series[0]), vec![10.0, 15.0, 3.0, 7.0]);
    assert_eq!(counter_increase(&series[0].samples, &w), Some(12.0));
}

#[tokio::test]
async fn histogram_buckets_give_per_bucket_increments() {
    let les = [0.1, 0.5, f64::INFINITY];
    let server = OpenMetrics::new()
        .histogram_buckets(
            "latency_seconds",
            &[("pod", "a")],
            les,
            &[
                (0.0, [2.0, 8.0, 10.0]),
                (30.0, [4.0, 15.0, 20.0]),
                (60.0, [7.0, 20.0, 30.0]),
            ],
        )
        .histogram_buckets(
            "latency_seconds",
            &[("pod", "b")],
            les,
            // pod b restarts between 30 and 60
            &[
                (0.0, [5.0, 5.0, 5.0]),
                (30.0, [6.0, 7.0, 9.0]),
                (60.0, [1.0, 1.0, 2.0]),
            ],
        )
        .start();
    let w = window(&server, 0, 60, 30);
    let series = source(&server.url)
        .query_range("latency_seconds_bucket", &w)
        .await
        .expect("query succeeds");
    assert_eq!(series.len(), 6);
    // Cumulative increases: a = [5, 12, 20], b = [1+1, 2+1, 4+2] = [2, 3, 6];
    // summed [7, 15, 26]; per bucket [7, 8, 11].
    assert_eq!(
        histogram_increments(&series, &w).expect("pairs up"),
        vec![
            Bucket {
                le: 0.1,
                increase: 7.0
            },
            Bucket {
                le: 0.5,
                increase: 8.0
            },
            Bucket {
                le: f64::INFINITY,
                increase: 11.0
            },
        ]
    );
}

#[tokio::test]
async fn unknown_metric_is_empty_not_an_error() {
    let server = OpenMetrics::new()
        .gauge("present", &[], &[(0.0, 1.0)])
        .start();
    let series = source(&server.url)
        .query_range("absent_metric_total", &window(&server, 0, 60, 30))
        .await
        .expect("empty result is not an error");
    assert!(series.is_empty(), "{series:?}");
}

#[tokio::test]
async fn malformed_query_is_bad_query_without_retries() {
    let server = PrometheusServer::start_with_openmetrics("# EOF\n");
    let mut config = PrometheusSettings::new(&server.url);
    config.retries = 3;
    config.backoff = Duration::from_secs(2); // a retry would show in the time
    let src = PrometheusSource::new(&config).expect("valid config");
    let started = Instant::now();
    let err = src
        .query_range("sum(rate(x[5m]", &window(&server, 0, 60, 30))
        .await
        .expect_err("malformed query");
    assert!(
        matches!(&err, SourceError::BadQuery(m) if m.contains("parse error")),
        "{err:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "retried a bad query"
    );
}

#[tokio::test]
async fn stopped_server_is_unreachable_within_bounded_time() {
    let mut server = PrometheusServer::start_with_openmetrics("# EOF\n");
    let src = source(&server.url);
    src.ready().await.expect("up before the outage");
    server.stop();

    let started = Instant::now();
    let err = src
        .query_range("up", &window(&server, 0, 60, 30))
        .await
        .expect_err("server is down");
    let elapsed = started.elapsed();
    assert!(
        matches!(&err, SourceError::Unreachable(m) if m.contains("3 attempts")),
        "{err:?}"
    );
    // 2 retries with 20 ms and 40 ms backoff (+ jitter); connection refused
    // is immediate on loopback.
    assert!(
        elapsed >= Duration::from_millis(60),
        "{elapsed:?}: did not retry"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}: not bounded");
    assert!(matches!(
        src.ready().await,
        Err(SourceError::Unreachable(_))
    ));
}

// ---------------------------------------------------------------------------
// Loopback stub for answers a real Prometheus does not give on demand.

const EMPTY_MATRIX: &str = r#"{"status":"success","data":{"resultType":"matrix","result":[]}}"#;

/// A canned HTTP response.
#[derive(Clone)]
struct Canned {
    status: &'static str,
    headers: &'static str,
    body: &'static str,
}

const OK: Canned = Canned {
    status: "200 OK",
    headers: "Content-Type: application/json\r\n",
    body: EMPTY_MATRIX,
};
const UNAVAILABLE: Canned = Canned {
    status: "503 Service Unavailable",
    headers: "Content-Type: text/plain\r\n",
    body: "upstream connect error",
};

struct Stub {
    url: String,
    requests: Arc<AtomicUsize>,
    heads: Arc<Mutex<Vec<String>>>,
}

/// Serves `responses` in order (the last one repeats), one per connection,
/// on a loopback port; records each request head.
async fn stub(responses: Vec<Canned>) -> Stub {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    let requests = Arc::new(AtomicUsize::new(0));
    let heads = Arc::new(Mutex::new(Vec::new()));
    let (count, seen) = (requests.clone(), heads.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match conn.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let i = count.fetch_add(1, Ordering::SeqCst);
            seen.lock()
                .expect("stub lock")
                .push(String::from_utf8_lossy(&head).into_owned());
            let r = &responses[i.min(responses.len() - 1)];
            let text = format!(
                "HTTP/1.1 {}\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{}",
                r.status,
                r.headers,
                r.body.len(),
                r.body
            );
            let _ = conn.write_all(text.as_bytes()).await;
            let _ = conn.shutdown().await;
        }
    });
    Stub {
        url,
        requests,
        heads,
    }
}

const ANY_WINDOW: Window = Window {
    start: 1_700_000_000.0,
    end: 1_700_000_060.0,
    step: Duration::from_secs(30),
};

#[tokio::test]
async fn retries_5xx_then_succeeds() {
    let stub = stub(vec![UNAVAILABLE, UNAVAILABLE, OK]).await;
    let series = source(&stub.url)
        .query_range("up", &ANY_WINDOW)
        .await
        .expect("third attempt succeeds");
    assert!(series.is_empty());
    assert_eq!(stub.requests.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn persistent_5xx_is_http_error_after_bounded_retries() {
    let stub = stub(vec![UNAVAILABLE]).await;
    let err = source(&stub.url)
        .query_range("up", &ANY_WINDOW)
        .await
        .expect_err("never recovers");
    assert!(
        matches!(&err, SourceError::Http { status: 503, message } if message.contains("upstream connect error")),
        "{err:?}"
    );
    assert_eq!(
        stub.requests.load(Ordering::SeqCst),
        3,
        "1 attempt + 2 retries"
    );
}

#[tokio::test]
async fn honours_retry_after_on_429() {
    let limited = Canned {
        status: "429 Too Many Requests",
        headers: "Retry-After: 1\r\nContent-Type: text/plain\r\n",
        body: "slow down",
    };
    let stub = stub(vec![limited, OK]).await;
    let mut config = PrometheusSettings::new(&stub.url);
    config.backoff = Duration::from_millis(10);
    config.max_backoff = Duration::from_secs(5);
    let src = PrometheusSource::new(&config).expect("valid config");
    let started = Instant::now();
    src.query_range("up", &ANY_WINDOW)
        .await
        .expect("succeeds after waiting");
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_secs(1),
        "{elapsed:?}: ignored Retry-After"
    );
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert_eq!(stub.requests.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn retry_after_is_capped() {
    let limited = Canned {
        status: "429 Too Many Requests",
        headers: "Retry-After: 3600\r\n",
        body: "",
    };
    let stub = stub(vec![limited, OK]).await;
    let started = Instant::now();
    source(&stub.url) // max_backoff 200 ms
        .query_range("up", &ANY_WINDOW)
        .await
        .expect("succeeds after a capped wait");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn client_errors_are_not_retried() {
    let denied = Canned {
        status: "403 Forbidden",
        headers: "Content-Type: text/plain\r\n",
        body: "no access",
    };
    let stub = stub(vec![denied, OK]).await;
    let err = source(&stub.url)
        .query_range("up", &ANY_WINDOW)
        .await
        .expect_err("403 is final");
    assert!(
        matches!(err, SourceError::Http { status: 403, .. }),
        "{err:?}"
    );
    assert_eq!(stub.requests.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn sends_bearer_token() {
    let stub = stub(vec![OK]).await;
    let mut config = PrometheusSettings::new(&stub.url);
    config.credentials.bearer_token = Some(Secret::new("tok123"));
    PrometheusSource::new(&config)
        .expect("valid config")
        .query_range("up", &ANY_WINDOW)
        .await
        .expect("succeeds");
    let heads = stub.heads.lock().expect("stub lock").clone();
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer tok123"),
        "{heads:?}"
    );
    assert!(
        heads[0].starts_with("GET /api/v1/query_range?"),
        "{heads:?}"
    );
}

#[tokio::test]
async fn sends_basic_auth() {
    let stub = stub(vec![OK]).await;
    let mut config = PrometheusSettings::new(&stub.url);
    config.credentials.basic_auth = Some(("user".into(), Secret::new("pass")));
    PrometheusSource::new(&config)
        .expect("valid config")
        .query_range("up", &ANY_WINDOW)
        .await
        .expect("succeeds");
    let heads = stub.heads.lock().expect("stub lock").clone();
    // base64("user:pass")
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: basic dxnlcjpwyxnz"),
        "{heads:?}"
    );
}

#[tokio::test]
async fn slow_backend_times_out() {
    // Accepts but never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind loopback");
    let url = format!("http://{}", listener.local_addr().expect("local addr"));
    tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = listener.accept().await {
            open.push(conn);
        }
    });
    let mut config = PrometheusSettings::new(&url);
    config.timeout = PromDuration(Duration::from_millis(200));
    config.retries = 1;
    config.backoff = Duration::from_millis(10);
    let started = Instant::now();
    let err = PrometheusSource::new(&config)
        .expect("valid config")
        .query_range("up", &ANY_WINDOW)
        .await
        .expect_err("no answer");
    assert_eq!(err, SourceError::Timeout(Duration::from_millis(200)));
    assert!(started.elapsed() < Duration::from_secs(2));
}

// ---------------------------------------------------------------------------
// Series that begin during the window, as a canary's do when it starts.

/// A canary whose pod starts 8 minutes in (its series begin at t=480 with
/// small values), beside a baseline that runs all along; a bucket series
/// (le=0.005) exported only from t=540, and an error counter whose first
/// increment is at t=570.
fn canary_starting_mid_window() -> PrometheusServer {
    let les = [0.005, 0.1, f64::INFINITY];
    let baseline: Vec<(f64, [f64; 3])> = (0..=40)
        .map(|i| {
            let k = i as f64;
            (15.0 * k, [k, 8.0 * k + 5.0, 10.0 * k + 10.0])
        })
        .collect();
    let canary: Vec<(f64, [f64; 2])> = (0..=8)
        .map(|i| {
            let k = i as f64;
            (480.0 + 15.0 * k, [2.0 + 8.0 * k, 3.0 + 10.0 * k])
        })
        .collect();
    let canary_fast: Vec<(f64, [f64; 1])> = (0..=4)
        .map(|i| (540.0 + 15.0 * i as f64, [1.0 + i as f64]))
        .collect();
    let requests: Vec<(f64, f64)> = canary.iter().map(|(t, c)| (*t, c[1])).collect();
    let baseline_requests: Vec<(f64, f64)> = baseline.iter().map(|(t, c)| (*t, c[2])).collect();
    OpenMetrics::new()
        .histogram_buckets("latency_seconds", &[("track", "primary")], les, &baseline)
        .histogram_buckets(
            "latency_seconds",
            &[("track", "canary")],
            [0.1, f64::INFINITY],
            &canary,
        )
        .histogram_buckets(
            "latency_seconds",
            &[("track", "canary")],
            [0.005],
            &canary_fast,
        )
        .counter("reqs_total", &[("track", "primary")], &baseline_requests)
        .counter("reqs_total", &[("track", "canary")], &requests)
        .counter(
            "errors_total",
            &[("track", "primary"), ("code", "500")],
            &baseline.iter().map(|(t, _)| (*t, 7.0)).collect::<Vec<_>>(),
        )
        .counter(
            "errors_total",
            &[("track", "canary"), ("code", "500")],
            &[(570.0, 1.0), (585.0, 2.0)],
        )
        .start()
}

#[tokio::test]
async fn series_that_begin_mid_window_count_from_zero() {
    let server = canary_starting_mid_window();
    let src = source(&server.url);
    // Ten minutes of data, the look's window the last five; a fractional
    // start as a webhook's clock gives (Prometheus evaluates from 301).
    let mut w = window(&server, 300, 600, 15);
    w.start += 0.5;
    let query = |track: &str| format!("sum by (le) (latency_seconds_bucket{{track=\"{track}\"}})");

    // The canary's buckets began at 480 and 540: their first values count.
    // Cumulative [1+3, 2+7*8, 3+7*10] = [4, 58, 73] at the last point (585).
    let canary = src.query_range(&query("canary"), &w).await.expect("query");
    assert_eq!(canary.len(), 3, "{canary:?}");
    let counts =
        |buckets: Vec<Bucket>| -> Vec<f64> { buckets.iter().map(|b| b.increase).collect() };
    assert_eq!(
        counts(histogram_increments(&canary, &w).expect("judged, not an error")),
        vec![4.0, 54.0, 15.0]
    );
    // The baseline was there at the start: only what it gained in 300..585.
    let baseline = src.query_range(&query("primary"), &w).await.expect("query");
    assert_eq!(
        counts(histogram_increments(&baseline, &w).expect("pairs up")),
        vec![19.0, 133.0, 38.0]
    );

    // Counters: the canary's requests from 3 at 480, its errors from the
    // first increment at 570; the baseline's errors never moved.
    let one = |q: &'static str| {
        let src = &src;
        let w = &w;
        async move { src.query_range(q, w).await.expect("query") }
    };
    let reqs = one("sum(reqs_total{track=\"canary\"})").await;
    assert_eq!(sum_counter_increase(&reqs, &w), Some(73.0));
    let errors = one("sum(errors_total{track=\"canary\"})").await;
    assert_eq!(sum_counter_increase(&errors, &w), Some(2.0));
    let base_errors = one("sum(errors_total{track=\"primary\"})").await;
    assert_eq!(sum_counter_increase(&base_errors, &w), Some(0.0));

    // The first look after the canary started: one point per series.
    let first = window(&server, 300, 480, 15);
    let canary = src
        .query_range(&query("canary"), &first)
        .await
        .expect("query");
    assert!(canary.iter().all(|s| s.samples.len() == 1), "{canary:?}");
    assert_eq!(
        counts(histogram_increments(&canary, &first).expect("one sample is data")),
        vec![2.0, 1.0]
    );
}

/// The engine's look over the same data: every metric is judged, none is
/// an error, and the canary's arm holds what it counted since it started.
#[tokio::test]
async fn a_look_at_a_canary_that_started_mid_window_is_judged() {
    let server = canary_starting_mid_window();
    let config = format!(
        "prometheus:\n  url: {url}\n  timeout: 5s\n  retries: 0\n\
         analyses:\n  start:\n    lookback: 5m\n    step: 15s\n    min_data: {{points: 3, requests: 10}}\n\
         \x20   metrics:\n\
         \x20     - name: latency-buckets\n        kind: histogram\n        judge: sequential\n\
         \x20       canary: 'sum by (le) (latency_seconds_bucket{{track=\"canary\"}})'\n\
         \x20       baseline: 'sum by (le) (latency_seconds_bucket{{track=\"primary\"}})'\n\
         \x20     - name: errors\n        kind: counter\n        judge: sequential\n\
         \x20       canary: {{errors: 'sum(errors_total{{track=\"canary\"}})', total: 'sum(reqs_total{{track=\"canary\"}})'}}\n\
         \x20       baseline: {{errors: 'sum(errors_total{{track=\"primary\"}})', total: 'sum(reqs_total{{track=\"primary\"}})'}}\n",
        url = server.url
    );
    let config = verdict::config::load_str(
        std::path::Path::new("verdict-test.yaml"),
        &config,
        std::iter::empty(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let source: Arc<dyn verdict::source::SeriesSource> = Arc::new(source(&server.url));
    let engine = verdict::engine::Engine::new(
        config.analyses.clone(),
        source,
        Arc::new(verdict::telemetry::Telemetry::new()),
    );
    // 495.5: the window's grid (from 196) reaches the canary's first point
    // once (481), before its le=0.005 bucket exists; 600.5: all of it.
    for (at, canary_total) in [(495.5, 3), (600.5, 73)] {
        let look = engine
            .look(verdict::engine::LookRequest {
                key: verdict::engine::run::RunKey::Argo {
                    run: format!("first-look-{at}"),
                },
                analysis: "start".into(),
                vars: Default::default(),
                now: server.base as f64 + at,
                weight: None,
                steps: None,
            })
            .await
            .expect("a look");
        for m in &look.metrics {
            let json = serde_json::to_value(m).expect("serialises");
            assert_ne!(json["classification"], "error", "{json}");
            assert_eq!(json["canary"]["total"], canary_total, "{json}");
        }
    }
}

//! Webhook latency of the daemon against a real, local Prometheus.
//!
//! What it answers (docs/benchmarks.md, "Webhook latency"): how long a
//! Flagger `rollout` webhook takes end to end for a 10-metric analysis, and
//! how much of that is spent outside Prometheus (HTTP, rendering, parsing,
//! reducing, judging, deciding, telemetry).
//!
//! How:
//! * a real Prometheus (the integration-test harness, `tests/support`) holds
//!   30 minutes of 15 s samples of a healthy canary and primary: six gauges,
//!   three counter pairs and a classic histogram, drawn from a seeded
//!   generator so every run queries the same numbers;
//! * Verdict runs in-process with the production code path (config, source,
//!   engine, router), its clock pinned to the end of the data;
//! * N `rollout` webhooks with distinct checksums (every one a new run and a
//!   real look, never a duplicate) are sent one at a time, then 8 at a time;
//! * the same queries are then issued directly through the daemon's
//!   `PrometheusSource`, all of one look's at once as the engine issues them,
//!   one look at a time and 8 looks at a time. The difference between the
//!   two is the time spent outside Prometheus;
//! * `/metrics` gives the daemon's own view (look and judge durations) as a
//!   cross-check.
//!
//! Run: `cargo bench -p verdict --bench webhook_latency` (release).
//! `VERDICT_BENCH_N` changes the number of webhooks per phase (default 300).

#[path = "../tests/support/mod.rs"]
mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use support::daemon::{metric_sum, Daemon};
use support::prometheus::{base_time, OpenMetrics};
use support::scenario::{Rng, STEP};
use verdict::source::{SeriesSource, Window};

/// Seconds of data, and where the daemon's clock stands: the end of the data.
const DATA_SECONDS: f64 = 1800.0;
/// Webhooks in flight at once in the concurrent phase.
const CONCURRENCY: usize = 8;
/// Webhooks sent (and discarded) before measuring: connections, page cache.
const WARMUP: usize = 20;
const ANALYSIS: &str = "bench";
/// Webhook and direct measurements alternate in this many rounds per phase.
const ROUNDS: usize = 6;

fn main() {
    // `cargo bench` passes `--bench`; filters and other libtest flags do not
    // apply to this harness-less benchmark.
    let n: usize = std::env::var("VERDICT_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(bench(n));
}

async fn bench(n: usize) {
    let started = Instant::now();
    let prom = data().start();
    eprintln!(
        "prometheus ready on {} ({:.1} s incl. backfill)",
        prom.url,
        started.elapsed().as_secs_f64()
    );
    let d = Daemon::start(&config(&prom.url), DATA_SECONDS).await;
    let checksum = AtomicUsize::new(0);

    // Warm-up, and a check that the looks are real judgements (200 with a
    // score), not refusals or "cannot judge".
    for _ in 0..WARMUP {
        let a = webhook(&d, &checksum).await.1;
        assert!(
            a.status == 200 && a.body.contains("score"),
            "unexpected answer: {} {}",
            a.status,
            a.body
        );
    }
    eprintln!("sample answer: {}", webhook(&d, &checksum).await.1.body);
    // The same queries, straight to Prometheus through a source built the
    // way the daemon builds its own.
    let config = verdict::config::load_str(
        std::path::Path::new("bench.yaml"),
        &config(&prom.url),
        std::iter::empty(),
    )
    .expect("config");
    let source = verdict::cli::serve::prometheus_source(&config).expect("source");
    let analysis = config.analyses[ANALYSIS].clone();
    let vars: BTreeMap<String, String> = [("name", "podinfo"), ("namespace", "test")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let queries: Vec<String> = analysis
        .metrics
        .iter()
        .flat_map(|m| [&m.canary, &m.baseline])
        .flat_map(|q| verdict::engine::fetch::render(q, &vars).expect("render"))
        .collect();
    let now = base_time() as f64 + DATA_SECONDS;
    let window = Window {
        start: now - analysis.config.lookback.as_secs_f64(),
        end: now,
        step: analysis.config.step.0,
    };
    for _ in 0..WARMUP {
        direct_look(source.as_ref(), &queries, &window).await;
    }

    // Webhooks and direct looks alternate in rounds, so both see the same
    // load from whatever else runs on the machine.
    let per_round = n.div_ceil(ROUNDS);
    let mut phases = Vec::new();
    for workers in [1, CONCURRENCY] {
        let before = d.metrics().await;
        let (mut hooks, mut direct) = (Vec::new(), Vec::new());
        for _ in 0..ROUNDS {
            hooks.extend(timed_webhooks(&d, &checksum, per_round, workers).await);
            direct
                .extend(timed_direct(source.as_ref(), &queries, &window, per_round, workers).await);
        }
        let after = d.metrics().await;
        phases.push((workers, Stats::of(hooks), Stats::of(direct), before, after));
    }

    // Every webhook was a look: no duplicates, no errors.
    let last = &phases.last().expect("phases").4;
    let looks = metric_sum(last, "verdict_looks_total", &[]);
    assert_eq!(
        looks as usize,
        WARMUP + 1 + 2 * ROUNDS * per_round,
        "looks taken"
    );
    assert_eq!(
        metric_sum(last, "verdict_duplicate_deliveries_total", &[]),
        0.0
    );
    assert_eq!(metric_sum(last, "verdict_query_errors_total", &[]), 0.0);

    println!();
    println!(
        "webhook latency: {} metrics, {} range queries per look, {} points per series, n = {} per phase",
        analysis.metrics.len(),
        queries.len(),
        ((window.end - window.start) / STEP) as usize + 1,
        ROUNDS * per_round
    );
    println!();
    println!("| measured | concurrency | p50 ms | p99 ms | max ms | mean ms | throughput /s |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for (workers, hooks, direct, _, _) in &phases {
        hooks.row("webhook, end to end", *workers);
        direct.row("same queries, direct", *workers);
    }
    println!();
    println!("| concurrency | outside Prometheus, p50 | outside Prometheus, mean |");
    println!("|---:|---:|---:|");
    for (workers, w, p, _, _) in &phases {
        println!(
            "| {workers} | {:.1} % ({:.2} of {:.2} ms) | {:.1} % ({:.2} of {:.2} ms) |",
            100.0 * (w.p50 - p.p50) / w.p50,
            w.p50 - p.p50,
            w.p50,
            100.0 * (w.mean - p.mean) / w.mean,
            w.mean - p.mean,
            w.mean
        );
    }
    println!();
    println!("daemon's own view (/metrics, mean per look over each phase):");
    println!();
    println!(
        "| concurrency | HTTP request ms | look ms | of which judging ms | queries (look − judging) ms |"
    );
    println!("|---:|---:|---:|---:|---:|");
    for (workers, _, _, from, to) in &phases {
        let mean = |name: &str, labels: &[&str]| {
            let sum = metric_sum(to, &format!("{name}_sum"), labels)
                - metric_sum(from, &format!("{name}_sum"), labels);
            let count = metric_sum(to, &format!("{name}_count"), labels)
                - metric_sum(from, &format!("{name}_count"), labels);
            1000.0 * sum / count
        };
        let http = mean(
            "verdict_http_request_duration_seconds",
            &[r#"route="/v1/flagger/{analysis}/{hook}""#],
        );
        let look = mean("verdict_look_duration_seconds", &[]);
        let judge = mean("verdict_judge_duration_seconds", &[]);
        println!(
            "| {workers} | {http:.2} | {look:.2} | {judge:.3} | {:.2} |",
            look - judge
        );
    }
    drop(d);
    drop(prom);
}

/// Sends one `rollout` webhook with a fresh checksum; returns its latency.
async fn webhook(d: &Daemon, checksum: &AtomicUsize) -> (Duration, support::daemon::Answer) {
    let id = checksum.fetch_add(1, Ordering::SeqCst);
    let payload = format!(
        r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"bench{id:06}","metadata":{{"weight":"20"}}}}"#
    );
    let t = Instant::now();
    let a = d
        .post_json(&format!("/v1/flagger/{ANALYSIS}/rollout"), payload)
        .await;
    (t.elapsed(), a)
}

/// `n` webhooks by `workers` concurrent senders; the latency of each.
async fn timed_webhooks(
    d: &Daemon,
    checksum: &AtomicUsize,
    n: usize,
    workers: usize,
) -> Vec<Duration> {
    let next = AtomicUsize::new(0);
    let results = futures_util::future::join_all((0..workers).map(|_| async {
        let mut mine = Vec::new();
        while next.fetch_add(1, Ordering::SeqCst) < n {
            let (t, a) = webhook(d, checksum).await;
            assert_eq!(a.status, 200, "{}", a.body);
            mine.push(t);
        }
        mine
    }))
    .await;
    results.into_iter().flatten().collect()
}

/// One look's queries, all at once as the engine issues them (the source's
/// concurrency limit applies, as it does to the engine).
async fn direct_look(source: &dyn SeriesSource, queries: &[String], window: &Window) {
    let answers =
        futures_util::future::join_all(queries.iter().map(|q| source.query_range(q, window))).await;
    for a in answers {
        let series = a.expect("direct query");
        assert!(!series.is_empty(), "a query returned nothing");
    }
}

async fn timed_direct(
    source: &dyn SeriesSource,
    queries: &[String],
    window: &Window,
    n: usize,
    workers: usize,
) -> Vec<Duration> {
    let next = AtomicUsize::new(0);
    let results = futures_util::future::join_all((0..workers).map(|_| async {
        let mut mine = Vec::new();
        while next.fetch_add(1, Ordering::SeqCst) < n {
            let t = Instant::now();
            direct_look(source, queries, window).await;
            mine.push(t.elapsed());
        }
        mine
    }))
    .await;
    results.into_iter().flatten().collect()
}

/// Latency summary in milliseconds.
struct Stats {
    p50: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

impl Stats {
    fn of(mut samples: Vec<Duration>) -> Stats {
        samples.sort();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        // Nearest rank.
        let rank = |p: f64| {
            let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
            ms(samples[i - 1])
        };
        let total: f64 = samples.iter().map(|d| ms(*d)).sum();
        Stats {
            p50: rank(0.50),
            p99: rank(0.99),
            max: ms(*samples.last().expect("samples")),
            mean: total / samples.len() as f64,
        }
    }

    fn row(&self, what: &str, concurrency: usize) {
        // Throughput from the mean latency and the number in flight (all
        // workers stay busy for the whole phase).
        let throughput = concurrency as f64 * 1000.0 / self.mean;
        println!(
            "| {what} | {concurrency} | {:.2} | {:.2} | {:.2} | {:.2} | {throughput:.0} |",
            self.p50, self.p99, self.max, self.mean
        );
    }
}

/// Labels of one arm.
fn arm(track: &str) -> [(&'static str, &str); 3] {
    [("namespace", "test"), ("app", "podinfo"), ("track", track)]
}

/// 30 minutes of a healthy canary next to a healthy primary.
fn data() -> OpenMetrics {
    let mut om = OpenMetrics::new();
    let mut rng = Rng::new(20_260_401);
    let times: Vec<f64> = (0..)
        .map(|i| i as f64 * STEP)
        .take_while(|t| *t <= DATA_SECONDS)
        .collect();
    // Gauges: name, typical value, relative noise.
    let gauges = [
        ("request_latency_p99_seconds", 0.2, 0.05),
        ("request_latency_p50_seconds", 0.05, 0.05),
        ("process_cpu_usage_cores", 0.4, 0.10),
        ("process_resident_memory_bytes", 3.0e8, 0.02),
        ("gc_pause_seconds", 0.004, 0.20),
        ("work_queue_depth", 12.0, 0.25),
    ];
    let les = [0.025, 0.05, 0.1, 0.25, 0.5, 1.0, f64::INFINITY];
    for track in ["primary", "canary"] {
        let labels = arm(track);
        for (name, typical, noise) in gauges {
            let points: Vec<(f64, f64)> = times
                .iter()
                .map(|&t| (t, (typical * (1.0 + noise * rng.normal())).max(0.0)))
                .collect();
            om = om.gauge(name, &labels, &points);
        }
        // Requests: 10/s, 0.5 % 500s and 0.2 % 504s, each request's latency
        // log-normal around 60 ms into the histogram's buckets.
        let mut counts = [0u64; 3]; // 200, 500, 504
        let mut buckets = [0u64; 7];
        let mut by_code: [Vec<(f64, f64)>; 3] = Default::default();
        let mut hist = Vec::new();
        for (i, &t) in times.iter().enumerate() {
            if i > 0 {
                for _ in 0..rng.poisson(10.0 * STEP) {
                    let u = rng.uniform();
                    counts[if u < 0.005 {
                        1
                    } else if u < 0.007 {
                        2
                    } else {
                        0
                    }] += 1;
                    let latency = 0.06 * (0.6 * rng.normal()).exp();
                    for (b, le) in buckets.iter_mut().zip(les) {
                        if latency <= le {
                            *b += 1;
                        }
                    }
                }
            }
            for (series, count) in by_code.iter_mut().zip(counts) {
                series.push((t, count as f64));
            }
            hist.push((t, buckets.map(|b| b as f64)));
        }
        for (code, points) in ["200", "500", "504"].iter().zip(&by_code) {
            let mut labels = labels.to_vec();
            labels.push(("code", code));
            om = om.counter("http_requests_total", &labels, points);
        }
        om = om.histogram_buckets("http_request_duration_seconds", &labels, les, &hist);
    }
    om
}

/// The benchmark's config: one analysis of ten metrics covering every kind
/// and judge (6 gauges: Mann-Whitney and Welch; 3 counters: sequential and
/// proportion; 1 histogram: sequential).
fn config(url: &str) -> String {
    let sel = |track: &str| {
        format!(r#"namespace="{{{{namespace}}}}",app="{{{{name}}}}",track="{track}""#)
    };
    let gauge = |name: &str, series: &str, judge: &str| {
        format!(
            "      - name: {name}\n        kind: gauge\n        judge: {judge}\n\
             \x20       canary: '{series}{{{c}}}'\n        baseline: '{series}{{{b}}}'\n",
            c = sel("canary"),
            b = sel("primary")
        )
    };
    let counter = |name: &str, codes: &str, judge: &str| {
        let arm = |track: &str| {
            let s = sel(track);
            format!(
                "{{errors: 'sum(http_requests_total{{{s},code=~\"{codes}\"}})', total: 'sum(http_requests_total{{{s}}})'}}"
            )
        };
        format!(
            "      - name: {name}\n        kind: counter\n        judge: {judge}\n\
             \x20       canary: {c}\n        baseline: {b}\n",
            c = arm("canary"),
            b = arm("primary")
        )
    };
    let histogram = {
        let arm = |track: &str| {
            format!(
                "'sum by (le) (http_request_duration_seconds_bucket{{{}}})'",
                sel(track)
            )
        };
        format!(
            "      - name: latency-histogram\n        kind: histogram\n        judge: sequential\n\
             \x20       canary: {c}\n        baseline: {b}\n",
            c = arm("canary"),
            b = arm("primary")
        )
    };
    let metrics = [
        gauge("p99-latency", "request_latency_p99_seconds", "mann-whitney"),
        gauge("p50-latency", "request_latency_p50_seconds", "mann-whitney"),
        gauge("cpu", "process_cpu_usage_cores", "welch"),
        gauge("memory", "process_resident_memory_bytes", "welch"),
        gauge("gc-pause", "gc_pause_seconds", "mann-whitney"),
        gauge("queue-depth", "work_queue_depth", "welch"),
        counter("errors", "5..", "sequential"),
        counter("error-rate", "5..", "proportion"),
        counter("timeouts", "504", "proportion"),
        histogram,
    ]
    .concat();
    format!(
        "prometheus:\n  url: {url}\n  timeout: 10s\n  retries: 0\n\
         analyses:\n  {ANALYSIS}:\n    lookback: 25m\n    step: 15s\n    metrics:\n{metrics}"
    )
}

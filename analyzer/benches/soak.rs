//! Load and soak: hundreds of concurrent Flagger canaries against a real,
//! local Prometheus, for a bounded time, watching latency, memory and open
//! file descriptors for growth.
//!
//! What it answers (docs/benchmarks.md, "Load and soak"): does Verdict keep
//! answering inside the answer budget with many runs looking every 10 s,
//! and do its memory and connections stay flat while runs come and go?
//!
//! How:
//! * a real Prometheus (the integration-test harness, `tests/support`)
//!   holds the healthy scenario (`support::scenario`) for the whole soak
//!   plus the lookback;
//! * Verdict runs in-process (the daemon harness: production config,
//!   source, engine and router), its clock following the wall clock but
//!   shifted into the data (promtool only backfills the past);
//! * `--runs` slots (default 300), staggered over the interval, each play
//!   canaries one after another, as Flagger does: a `rollout` webhook every
//!   `--interval` seconds (default 10) for `--looks` looks (default 3), then
//!   `post-rollout`, then the next canary with a new checksum. Runs
//!   therefore start, look and close all the time, and about `--runs` are
//!   open at once;
//! * every `--sample` seconds (default 2): this process's RSS
//!   (`/proc/self/status` VmRSS), its open file descriptors and sockets
//!   (`/proc/self/fd`), and the engine's open runs. The load driver shares
//!   the process (its HTTP client and tasks); it is small and constant.
//!
//! Growth: the mean of the last third of the samples is compared with the
//! mean of the middle third (the first third is warm-up). The run fails
//! (exit 1) when RSS grew more than 10 % + 4 MiB, open descriptors more
//! than 20 % + 16, open runs more than 10 % + 10, or when more than 1 % of
//! webhooks were not a 200 answer.
//!
//! Run: `cargo bench -p verdict --bench soak -- --seconds 600` (release), or
//! `cargo test -p verdict --bench soak -- --seconds 60` (test profile, as CI
//! does). Arguments: `--seconds` (default 120), `--runs`, `--interval`,
//! `--looks`, `--sample`.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::daemon::Daemon;
use support::scenario::{config, Scenario};

/// Tolerances of the growth check (see the module docs).
const RSS_GROWTH: f64 = 0.10;
const RSS_SLACK_KIB: f64 = 4096.0;
const FD_GROWTH: f64 = 0.20;
const FD_SLACK: f64 = 16.0;
const RUN_GROWTH: f64 = 0.10;
const RUN_SLACK: f64 = 10.0;
/// Most webhooks that may fail (non-200) before the soak fails.
const MAX_FAILED_FRACTION: f64 = 0.01;
/// Seconds of data behind the clock when the soak starts (the lookback).
const LEAD: f64 = 300.0;

#[derive(Debug, Clone, Copy)]
struct Args {
    seconds: f64,
    runs: usize,
    interval: f64,
    looks: usize,
    sample: f64,
}

impl Args {
    /// Parses `--name value` pairs; anything else (`--bench` from `cargo
    /// bench`, libtest flags from `cargo test`) is ignored.
    fn parse() -> Args {
        let mut a = Args {
            seconds: 120.0,
            runs: 300,
            interval: 10.0,
            looks: 3,
            sample: 2.0,
        };
        let argv: Vec<String> = std::env::args().skip(1).collect();
        let mut i = 0;
        while i < argv.len() {
            let value = argv.get(i + 1).map(String::as_str).unwrap_or("");
            let bad = |name: &str| -> ! {
                eprintln!("soak: {name} needs a positive number, got {value:?}");
                std::process::exit(2)
            };
            let number = |name: &str| {
                value
                    .parse::<f64>()
                    .ok()
                    .filter(|x| *x > 0.0)
                    .unwrap_or_else(|| bad(name))
            };
            match argv[i].as_str() {
                "--seconds" => a.seconds = number("--seconds"),
                "--runs" => a.runs = number("--runs") as usize,
                "--interval" => a.interval = number("--interval"),
                "--looks" => a.looks = number("--looks") as usize,
                "--sample" => a.sample = number("--sample"),
                _ => {
                    i += 1;
                    continue;
                }
            }
            i += 2;
        }
        a
    }
}

/// One sample of the process's resources.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: f64,
    rss_kib: f64,
    fds: f64,
    sockets: f64,
    runs: f64,
}

fn rss_kib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Open descriptors, and how many of them are sockets.
fn fds() -> (f64, f64) {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return (f64::NAN, f64::NAN);
    };
    let (mut all, mut sockets) = (0.0, 0.0);
    for entry in dir.flatten() {
        all += 1.0;
        if std::fs::read_link(entry.path())
            .is_ok_and(|t| t.to_string_lossy().starts_with("socket:"))
        {
            sockets += 1.0;
        }
    }
    (all, sockets)
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Webhook latencies (seconds) by third of the soak, and answers by status.
#[derive(Default)]
struct Record {
    latencies: [Vec<f64>; 3],
    statuses: std::collections::BTreeMap<u16, usize>,
    failures: Vec<String>,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    let failed = runtime.block_on(soak(args));
    if failed {
        std::process::exit(1);
    }
}

async fn soak(args: Args) -> bool {
    let mut scenario = Scenario::healthy();
    scenario.seconds = LEAD + args.seconds + 120.0;
    let started = Instant::now();
    let prom = scenario.start();
    eprintln!(
        "prometheus ready on {} ({:.1} s incl. backfill); {} runs, a look every {} s, {} looks per canary, {} s",
        prom.url,
        started.elapsed().as_secs_f64(),
        args.runs,
        args.interval,
        args.looks,
        args.seconds
    );
    let d = Arc::new(Daemon::start(&config(&prom.url), LEAD).await);
    let t0 = Instant::now();
    let record = Arc::new(Mutex::new(Record::default()));
    let canaries = Arc::new(AtomicU64::new(0));

    // The clock follows the wall clock, shifted into the data.
    let clock = {
        let d = d.clone();
        tokio::spawn(async move {
            loop {
                d.at(LEAD + t0.elapsed().as_secs_f64());
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };

    let mut slots = Vec::new();
    for slot in 0..args.runs {
        let (d, record, canaries) = (d.clone(), record.clone(), canaries.clone());
        slots.push(tokio::spawn(async move {
            let offset = args.interval * slot as f64 / args.runs as f64;
            let mut next = offset;
            'canaries: loop {
                let n = canaries.fetch_add(1, Ordering::SeqCst);
                let payload = format!(
                    r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"c{n}"}}"#
                );
                for _ in 0..args.looks {
                    let wait = next - t0.elapsed().as_secs_f64();
                    if next >= args.seconds {
                        break 'canaries;
                    }
                    if wait > 0.0 {
                        tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                    }
                    let sent = Instant::now();
                    let a = d.post_json("/v1/flagger/checkout/rollout", payload.clone()).await;
                    let latency = sent.elapsed().as_secs_f64();
                    let third = ((next / args.seconds * 3.0) as usize).min(2);
                    let mut r = record.lock().expect("record");
                    r.latencies[third].push(latency);
                    *r.statuses.entry(a.status).or_default() += 1;
                    if a.status != 200 && r.failures.len() < 5 {
                        r.failures.push(format!("{} {}", a.status, a.body));
                    }
                    drop(r);
                    next += args.interval;
                }
                // Flagger closes a canary at its next tick, and the next
                // revision's first look follows at once.
                let wait = next - t0.elapsed().as_secs_f64();
                if next >= args.seconds {
                    break 'canaries;
                }
                if wait > 0.0 {
                    tokio::time::sleep(Duration::from_secs_f64(wait)).await;
                }
                let post = payload.replace("Progressing", "Succeeded");
                let a = d.post_json("/v1/flagger/checkout/post-rollout", post).await;
                assert_eq!(a.status, 200, "post-rollout: {}", a.body);
            }
        }));
    }

    let mut samples = Vec::new();
    let mut next_sample = 0.0;
    while t0.elapsed().as_secs_f64() < args.seconds {
        let wait = next_sample - t0.elapsed().as_secs_f64();
        if wait > 0.0 {
            tokio::time::sleep(Duration::from_secs_f64(wait)).await;
        }
        let (fds, sockets) = fds();
        let s = Sample {
            at: t0.elapsed().as_secs_f64(),
            rss_kib: rss_kib(),
            fds,
            sockets,
            runs: d.engine.open_runs() as f64,
        };
        if samples.len() % 10 == 0 {
            eprintln!(
                "t={:6.1}s rss={:8.0} KiB fds={:5.0} sockets={:5.0} runs={:5.0}",
                s.at, s.rss_kib, s.fds, s.sockets, s.runs
            );
        }
        samples.push(s);
        next_sample += args.sample;
    }
    for s in slots {
        s.await.expect("a canary slot panicked");
    }
    clock.abort();
    let metrics = d.metrics().await;
    let record = record.lock().expect("record");
    report(&args, &samples, &record, &metrics)
}

/// Prints the results; true when the soak failed its checks.
fn report(args: &Args, samples: &[Sample], r: &Record, metrics: &str) -> bool {
    use support::daemon::metric_sum;
    println!();
    println!(
        "soak: {} runs, a rollout webhook per run every {} s, {} looks per canary then post-rollout, {} s",
        args.runs, args.interval, args.looks, args.seconds
    );
    let mut all: Vec<f64> = r.latencies.iter().flatten().copied().collect();
    all.sort_by(f64::total_cmp);
    println!(
        "webhooks: {} ({:.1}/s), statuses {:?}",
        all.len(),
        all.len() as f64 / args.seconds,
        r.statuses
    );
    println!("| part | webhooks | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    for (name, part) in ["first third", "middle third", "last third"]
        .iter()
        .zip(&r.latencies)
    {
        let mut v = part.clone();
        v.sort_by(f64::total_cmp);
        println!(
            "| {name} | {} | {:.1} | {:.1} | {:.1} |",
            v.len(),
            percentile(&v, 0.5) * 1e3,
            percentile(&v, 0.99) * 1e3,
            v.last().copied().unwrap_or(f64::NAN) * 1e3
        );
    }
    println!(
        "| all | {} | {:.1} | {:.1} | {:.1} |",
        all.len(),
        percentile(&all, 0.5) * 1e3,
        percentile(&all, 0.99) * 1e3,
        all.last().copied().unwrap_or(f64::NAN) * 1e3
    );
    println!(
        "daemon: looks {}, duplicates {}, fetch errors {}, answer budget exceeded {}",
        // `+ 0.0`: an empty sum is -0.
        metric_sum(metrics, "verdict_looks_total", &[]) + 0.0,
        metric_sum(metrics, "verdict_duplicate_deliveries_total", &[]) + 0.0,
        metric_sum(metrics, "verdict_fetch_errors_total", &[]) + 0.0,
        metric_sum(metrics, "verdict_answer_budget_exceeded_total", &[]) + 0.0,
    );
    for f in &r.failures {
        println!("failed answer: {f}");
    }

    let third = samples.len() / 3;
    let mean = |s: &[Sample], f: fn(&Sample) -> f64| s.iter().map(f).sum::<f64>() / s.len() as f64;
    let (middle, last) = (&samples[third..2 * third], &samples[2 * third..]);
    println!();
    println!(
        "resources, mean of each third ({} samples every {} s):",
        samples.len(),
        args.sample
    );
    println!("| | first | middle | last | growth last/middle | tolerance |");
    println!("|---|---:|---:|---:|---:|---:|");
    let mut failed = false;
    type Field = fn(&Sample) -> f64;
    let rows: [(&str, Field, f64, f64); 4] = [
        ("RSS KiB", |s| s.rss_kib, RSS_GROWTH, RSS_SLACK_KIB),
        ("open fds", |s| s.fds, FD_GROWTH, FD_SLACK),
        ("sockets", |s| s.sockets, FD_GROWTH, FD_SLACK),
        ("open runs", |s| s.runs, RUN_GROWTH, RUN_SLACK),
    ];
    for (name, field, growth, slack) in rows {
        let (f, m, l) = (
            mean(&samples[..third], field),
            mean(middle, field),
            mean(last, field),
        );
        let grew = l > m * (1.0 + growth) + slack;
        failed |= grew;
        println!(
            "| {name} | {f:.0} | {m:.0} | {l:.0} | {:+.1} % | {:.0} % + {slack} {} |",
            (l / m - 1.0) * 100.0,
            growth * 100.0,
            if grew { "GREW" } else { "ok" }
        );
    }
    let failed_answers = all.len() - r.statuses.get(&200).copied().unwrap_or(0);
    if failed_answers as f64 > MAX_FAILED_FRACTION * all.len() as f64 {
        println!(
            "FAILED: {failed_answers} of {} webhooks were not 200",
            all.len()
        );
        failed = true;
    }
    println!("{}", if failed { "soak FAILED" } else { "soak passed" });
    failed
}

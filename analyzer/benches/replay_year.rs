//! Replaying a year of 15-second data.
//!
//! What it answers (docs/benchmarks.md, "Replay of a year"): how long
//! `verdict replay` takes to read and replay a year of recorded data for a
//! 10-metric analysis, and how much memory it holds at its peak.
//!
//! How:
//! * a seeded generator ([`SplitMix64`]) writes a year (365 days) of 15 s
//!   samples for both arms of ten metrics, seven gauges (latency-like
//!   values with a daily shape and noise) and three counters (an errors and
//!   a total series each, requests with a daily shape), to a Parquet file in
//!   a temporary directory: 2,102,400 points per series per arm;
//! * timed: opening the file as `verdict replay` does
//!   ([`verdict::replay::stream::open`]: reading it and spilling it by time
//!   to a temporary file), and replaying it with the production code path
//!   ([`verdict::replay::replay`] over [`verdict::engine::Engine`]) as
//!   consecutive rollouts, one look per interval;
//! * the timed part runs in a fresh process (the bench runs itself with
//!   `VERDICT_BENCH_REPLAY_FILE` set), so that its peak resident memory,
//!   read from `/proc/self/status` (`VmHWM`) after opening and after
//!   replaying, is the replay's own and not the generator's;
//! * reference, in a third process: reading the same file whole into
//!   memory ([`verdict::recording::read`] and
//!   [`verdict::replay::source::load`], what replays did before they
//!   streamed), whose peak the streamed replay's is compared with.
//!
//! Run: `cargo bench -p verdict --bench replay_year`. Environment:
//! `VERDICT_BENCH_DAYS` (default 365), `VERDICT_BENCH_INTERVAL` (look
//! interval, default `1m`), `VERDICT_BENCH_WEIGHTS` (default `5,25,50,100`),
//! `VERDICT_BENCH_STEP_EVERY` (default `5m`).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use verdict::recording::table::TableWriter;
use verdict::recording::Arm;
use verdict::replay::{replay, ReplaySpec, Replayer, Schedule};
use verdict::source::Sample;
use verdict_judges::splitmix64::SplitMix64;

const STEP: f64 = 15.0;
const T0: f64 = 1_700_000_000.0;
const GAUGES: usize = 7;
const COUNTERS: usize = 3;

fn config_yaml() -> String {
    let mut metrics = String::new();
    for g in 0..GAUGES {
        metrics.push_str(&format!(
            "      - name: gauge-{g}\n        kind: gauge\n        group: latency\n\
             \x20       canary: 'gauge_{g}{{app=\"{{{{name}}}}-canary\"}}'\n\
             \x20       baseline: 'gauge_{g}{{app=\"{{{{name}}}}-primary\"}}'\n"
        ));
    }
    for c in 0..COUNTERS {
        metrics.push_str(&format!(
            "      - name: counter-{c}\n        kind: counter\n        group: errors\n\
             \x20       canary: {{errors: 'sum(errors_{c}{{app=\"{{{{name}}}}-canary\"}})', total: 'sum(requests_{c}{{app=\"{{{{name}}}}-canary\"}})'}}\n\
             \x20       baseline: {{errors: 'sum(errors_{c}{{app=\"{{{{name}}}}-primary\"}})', total: 'sum(requests_{c}{{app=\"{{{{name}}}}-primary\"}})'}}\n"
        ));
    }
    format!(
        "analyses:\n  year:\n    lookback: 1m\n    step: 15s\n    groups: {{latency: 40, errors: 60}}\n    metrics:\n{metrics}"
    )
}

/// Normal deviate (Box-Muller).
fn normal(rng: &mut SplitMix64) -> f64 {
    let (u, v) = (rng.next_open01(), rng.next_open01());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// Daily traffic shape in [0.5, 1.5].
fn daily(t: f64) -> f64 {
    1.0 + 0.5 * (2.0 * std::f64::consts::PI * t / 86_400.0).sin()
}

/// Writes the year, one series after another; returns the row count.
fn generate(path: &std::path::Path, points: usize) -> u64 {
    let mut rng = SplitMix64::new(20_261_122);
    let mut writer = TableWriter::create(path).expect("create the recording");
    let mut rows = 0u64;
    let mut push = |w: &mut TableWriter, metric: &str, arm: Arm, t: f64, value: f64| {
        w.push(
            metric,
            arm,
            None,
            Sample {
                timestamp: T0 + t,
                value,
            },
        )
        .expect("write a row");
        rows += 1;
    };
    for arm in [Arm::Baseline, Arm::Canary] {
        for g in 0..GAUGES {
            let name = format!("gauge-{g}");
            for i in 0..points {
                let t = i as f64 * STEP;
                let v = 0.2 * daily(t) * (1.0 + 0.05 * normal(&mut rng));
                push(&mut writer, &name, arm, t, v);
            }
        }
        for c in 0..COUNTERS {
            let (errors, total) = (format!("counter-{c}:errors"), format!("counter-{c}:total"));
            let (mut e, mut n) = (0.0f64, 0.0f64);
            let mut totals = Vec::with_capacity(points);
            for i in 0..points {
                let t = i as f64 * STEP;
                if i > 0 {
                    let requests = (150.0 * daily(t) + 12.0 * normal(&mut rng))
                        .round()
                        .max(0.0);
                    let failed = (requests * 0.005 + (requests * 0.005).sqrt() * normal(&mut rng))
                        .round()
                        .clamp(0.0, requests);
                    n += requests;
                    e += failed;
                }
                totals.push(n);
                push(&mut writer, &errors, arm, t, e);
            }
            for (i, n) in totals.into_iter().enumerate() {
                push(&mut writer, &total, arm, i as f64 * STEP, n);
            }
        }
    }
    writer.finish().expect("finish the recording");
    rows
}

/// A memory figure of `/proc/self/status` (`VmHWM`, `VmRSS`), in MiB.
fn status_mib(field: &str) -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn peak_rss_mib() -> Option<f64> {
    status_mib("VmHWM:")
}

/// Set (to the recording's path) in the child processes.
const REPLAY_FILE_ENV: &str = "VERDICT_BENCH_REPLAY_FILE";
/// Set in the child that reads the recording whole (the reference).
const WHOLE_ENV: &str = "VERDICT_BENCH_WHOLE";

fn env_duration(name: &str, default: &str) -> Duration {
    let text = std::env::var(name).unwrap_or_else(|_| default.into());
    verdict::config::duration::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn schedule() -> Schedule {
    Schedule {
        interval: env_duration("VERDICT_BENCH_INTERVAL", "1m"),
        weights: std::env::var("VERDICT_BENCH_WEIGHTS")
            .unwrap_or_else(|_| "5,25,50,100".into())
            .split(',')
            .map(|w| w.trim().parse().expect("a weight"))
            .collect(),
        step_every: env_duration("VERDICT_BENCH_STEP_EVERY", "5m"),
    }
}

fn main() {
    if let Ok(path) = std::env::var(REPLAY_FILE_ENV) {
        let path = std::path::Path::new(&path);
        match std::env::var_os(WHOLE_ENV) {
            Some(_) => read_whole(path),
            None => replay_file(path, &schedule()),
        }
        return;
    }
    let days: f64 = std::env::var("VERDICT_BENCH_DAYS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(365.0);
    let points = (days * 86_400.0 / STEP) as usize;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("year.parquet");
    let started = Instant::now();
    let rows = generate(&path, points);
    let size = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
    println!(
        "generated {days} days: {points} points per series per arm, {rows} rows, \
         {:.0} MiB Parquet in {:.1} s (untimed)",
        size as f64 / (1 << 20) as f64,
        started.elapsed().as_secs_f64()
    );
    let exe = std::env::current_exe().expect("this bench's path");
    for whole in [false, true] {
        let mut child = std::process::Command::new(&exe);
        child.env(REPLAY_FILE_ENV, &path);
        if whole {
            child.env(WHOLE_ENV, "1");
        }
        let status = child.status().expect("run a child process");
        assert!(status.success(), "the child process failed: {status}");
    }
}

fn bench_config() -> verdict::config::Config {
    verdict::config::load_str(
        std::path::Path::new("bench.yaml"),
        &config_yaml(),
        std::iter::empty(),
    )
    .unwrap_or_else(|e| panic!("{e}"))
}

fn bench_vars() -> BTreeMap<String, String> {
    [("name".to_string(), "bench".to_string())].into()
}

/// The reference: the recording read whole into memory.
fn read_whole(path: &std::path::Path) {
    let config = bench_config();
    let started = Instant::now();
    let recording = verdict::recording::read(path).expect("read the recording");
    let loaded = verdict::replay::source::load(recording, &config.analyses["year"], &bench_vars())
        .expect("load");
    let read_s = started.elapsed().as_secs_f64();
    let held: usize = loaded
        .source
        .queries()
        .flat_map(|(_, series)| series)
        .map(|s| s.samples.len())
        .sum();
    println!(
        "reference, read whole: {read_s:.2} s, {held} samples held, peak RSS (VmHWM) {:.0} MiB",
        peak_rss_mib().unwrap_or(f64::NAN)
    );
}

/// Opens and replays `path` (the timed part), in its own process.
fn replay_file(path: &std::path::Path, schedule: &Schedule) {
    let rss_start = status_mib("VmRSS:");
    let config = bench_config();
    let vars = bench_vars();

    let t_open = Instant::now();
    let loaded = verdict::replay::stream::open(path, &config.analyses["year"], &vars, schedule)
        .expect("open the recording");
    let open_s = t_open.elapsed().as_secs_f64();
    let rss_open = peak_rss_mib();
    let replayer = Replayer::new(config.analyses.clone(), loaded.source);
    let spec = ReplaySpec {
        name: "year".into(),
        analysis: "year".into(),
        vars,
        schedule: schedule.clone(),
        start: loaded.span.0,
        end: loaded.span.1,
        max_runs: None,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        // The engine bounds each look's fetches with a timer.
        .enable_time()
        .build()
        .expect("runtime");
    let t_replay = Instant::now();
    let summary = runtime
        .block_on(replay(&replayer, &spec, |_, _| {}))
        .expect("replay");
    let replay_s = t_replay.elapsed().as_secs_f64();
    let aborts = summary
        .runs
        .iter()
        .filter(|r| r.action == verdict_judges::decision::Action::Abort)
        .count();
    println!(
        "schedule: interval {:?}, weights {:?}, step every {:?}",
        schedule.interval, schedule.weights, schedule.step_every
    );
    println!(
        "rows: {} ({:.0} MiB as f64 pairs if held whole)",
        loaded.rows,
        loaded.rows as f64 * 16.0 / (1 << 20) as f64
    );
    println!("open:   {open_s:.2} s (read and spill by time)");
    println!(
        "replay: {replay_s:.2} s ({} looks in {} runs, {:.1} µs per look; {aborts} aborts)",
        summary.looks,
        summary.runs.len(),
        replay_s * 1e6 / summary.looks.max(1) as f64
    );
    println!("total:  {:.2} s (open + replay)", open_s + replay_s);
    if let (Some(start), Some(open), Some(peak)) = (rss_start, rss_open, peak_rss_mib()) {
        println!(
            "peak RSS (VmHWM) of the replaying process: {open:.0} MiB by the end of opening, \
             {peak:.0} MiB by the end (resident at its start: {start:.0} MiB)"
        );
    }
}

//! `verdict backtest`: replay every recording of a manifest in parallel and
//! check each against its expected outcome (see [`crate::replay::backtest`]).
//!
//! Exit status: 0 when every expectation holds, 1 when any fails (a false
//! abort, a missed regression, a false promote, or a recording that cannot be replayed), 2
//! for bad input (manifest, config, flags).

use super::replay::{pick_analysis, progress, span, ScheduleArgs};
use crate::recording::manifest::{Expected, Manifest};
use crate::replay::backtest::{Backtest, BacktestReport, EntryResult};
use clap::Args;
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct BacktestArgs {
    /// Directory holding manifest.yaml and the recordings it lists (or the manifest file).
    #[arg(long)]
    pub data: PathBuf,
    /// Config file [default: the manifest's `config`].
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Analysis for recordings that do not name one [default: the manifest's].
    #[arg(long)]
    pub analysis: Option<String>,
    /// Template variables, key=value; override the manifest's.
    #[arg(long, num_args = 1.., value_parser = super::replay::parse_var)]
    pub vars: Vec<(String, String)>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Worker threads [default: the available parallelism].
    #[arg(long)]
    pub threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &BacktestArgs) -> i32 {
    let (file, manifest) = match Manifest::load(&args.data) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let base = Manifest::base(&file);
    let config_path = match (&args.config, &manifest.config) {
        (Some(c), _) => c.clone(),
        (None, Some(c)) => base.join(c),
        (None, None) => {
            eprintln!(
                "{}: no config: give --config or set `config` in the manifest",
                file.display()
            );
            return super::EXIT_BAD_INPUT;
        }
    };
    let config = match crate::config::load(&config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    // The default analysis; entries may name their own.
    let analysis = match pick_analysis(
        &config,
        args.analysis.as_deref(),
        manifest.analysis.as_deref(),
    ) {
        Ok(a) => Some(a),
        Err(_) if manifest.recordings.iter().all(|e| e.analysis.is_some()) => None,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let mut vars = manifest.vars.clone();
    vars.extend(args.vars.iter().cloned());
    let schedule = args.schedule.schedule(None);
    if let Err(e) = schedule.check() {
        eprintln!("{e}");
        return super::EXIT_BAD_INPUT;
    }
    let threads = args
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let backtest = Backtest {
        manifest: &manifest,
        base: &base,
        config: &config,
        analysis: analysis.as_deref(),
        vars,
        schedule,
        threads,
    };
    let bar = if args.json {
        None
    } else {
        progress(manifest.recordings.len() as u64, "recordings")
    };
    let done = |r: &EntryResult| {
        if args.json {
            return;
        }
        let line = entry_line(r);
        match &bar {
            Some(b) => {
                b.println(line);
                b.inc(1);
            }
            None => super::print_line(&line),
        }
    };
    let report = backtest.run(&done);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if args.json {
        super::print_line(&serde_json::to_string(&report).unwrap_or_default());
    } else {
        for line in report_lines(&report) {
            super::print_line(&line);
        }
    }
    if report.passed() {
        0
    } else {
        1
    }
}

/// One recording's line, printed as it finishes.
fn entry_line(r: &EntryResult) -> String {
    let verdict = if r.passed() { "ok  " } else { "FAIL" };
    let expected = match r.expected {
        Expected::Healthy => "healthy",
        Expected::Regressed => "regressed",
        Expected::NoPromote => "no-promote",
    };
    let what = match (&r.error, r.expected) {
        (Some(e), _) => format!("error: {e}"),
        (None, Expected::Healthy) => format!(
            "{} ({} runs, {} looks), {} false abort{}",
            r.decision.map_or("-", |d| d.as_str()),
            r.runs,
            r.looks,
            r.false_aborts,
            if r.false_aborts == 1 { "" } else { "s" }
        ),
        (None, Expected::NoPromote) => format!(
            "{} ({} runs, {} looks), {} false promote{}",
            r.decision.map_or("-", |d| d.as_str()),
            r.runs,
            r.looks,
            r.false_promotes,
            if r.false_promotes == 1 { "" } else { "s" }
        ),
        (None, Expected::Regressed) => match r.time_to_detect {
            Some(t) => format!(
                "caught after {} ({} runs, {} looks){}",
                span(t),
                r.runs,
                r.looks,
                if r.false_aborts > 0 {
                    format!(", {} abort(s) before the regression", r.false_aborts)
                } else {
                    String::new()
                }
            ),
            None => format!(
                "MISSED: {} ({} runs)",
                r.decision.map_or("-", |d| d.as_str()),
                r.runs
            ),
        },
    };
    format!("{verdict} {:<36} {expected:<9} {what}", r.file.display())
}

/// The closing summary.
fn report_lines(report: &BacktestReport) -> Vec<String> {
    let mut lines = vec![format!(
        "{} recordings: {} healthy, {} regressed, {} no-promote; false aborts {}, missed regressions {}, \
         false promotes {}, errors {}",
        report.entries.len(),
        report.healthy,
        report.regressed,
        report.no_promote,
        report.false_aborts,
        report.missed_regressions,
        report.false_promotes,
        report.errors
    )];
    if let Some(d) = &report.time_to_detect {
        lines.push(format!(
            "time to detect (abort): median {}, max {} over {} caught",
            span(d.median),
            span(d.max),
            d.detected
        ));
    }
    for (metric, d) in &report.metric_time_to_detect {
        lines.push(format!(
            "  {metric}: flagged in {} regressed recording{}, median {}, max {}",
            d.detected,
            if d.detected == 1 { "" } else { "s" },
            span(d.median),
            span(d.max)
        ));
    }
    lines.push(if report.passed() {
        "backtest passed".into()
    } else {
        "backtest FAILED".into()
    });
    lines
}

//! `verdict replay`: walk a recording as the daemon would and print each
//! look (see [`crate::replay`] and docs/replay.md).
//!
//! When `--data` names a file listed in a `manifest.yaml` beside it, the
//! manifest supplies the defaults (config, analysis, variables, schedule),
//! so a shipped fixture replays with `verdict replay --data FILE`; flags
//! override them.

use crate::config::duration::{self, PromDuration};
use crate::engine::run::Look;
use crate::recording::manifest::{Entry, Manifest, MANIFEST_FILE};
use crate::replay::stream::open;
use crate::replay::{replay, ReplaySpec, ReplaySummary, Replayer, Schedule};
use crate::report::{render_html, ReportInput, ReportSeries};
use clap::Args;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

/// One template variable, `key=value`.
pub fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("{text:?} is not key=value")),
    }
}

fn parse_duration(text: &str) -> Result<PromDuration, String> {
    duration::parse(text).map(PromDuration)
}

/// A comma-separated weight list (one flag value, not repeated flags).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights(pub Vec<f64>);

fn parse_weights(text: &str) -> Result<Weights, String> {
    let weights = text
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<f64>()
                .map_err(|_| format!("weight {w:?} is not a number"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    crate::replay::check_weights(&weights)?;
    Ok(Weights(weights))
}

/// Look schedule flags, shared by replay and backtest.
#[derive(Debug, Clone, Args)]
pub struct ScheduleArgs {
    /// Time between looks [default: 1m].
    #[arg(long, value_parser = parse_duration)]
    pub interval: Option<PromDuration>,
    /// Canary weights, percent, comma-separated [default: 5,25,50,100].
    #[arg(long, value_parser = parse_weights)]
    pub weights: Option<Weights>,
    /// How long each weight is held [default: 5m].
    #[arg(long, value_parser = parse_duration)]
    pub step_every: Option<PromDuration>,
}

impl ScheduleArgs {
    /// The schedule: these flags, else the manifest entry's, else defaults.
    pub fn schedule(&self, entry: Option<&Entry>) -> Schedule {
        let default = Schedule::default();
        Schedule {
            interval: self
                .interval
                .or(entry.and_then(|e| e.interval))
                .map_or(default.interval, |d| d.0),
            weights: self
                .weights
                .clone()
                .map(|w| w.0)
                .or(entry.and_then(|e| e.weights.clone()))
                .unwrap_or(default.weights),
            step_every: self
                .step_every
                .or(entry.and_then(|e| e.step_every))
                .map_or(default.step_every, |d| d.0),
        }
    }
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Config file holding the analysis [default: the manifest's, else verdict.yaml].
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Analysis to replay [default: the manifest's, or the config's only one].
    #[arg(long)]
    pub analysis: Option<String>,
    /// The recording: a .csv or .parquet long table, or a directory of
    /// <metric>.<arm>.json Prometheus query_range answers.
    #[arg(long)]
    pub data: PathBuf,
    /// Template variables for the queries, key=value (e.g. name=checkout namespace=shop).
    #[arg(long, num_args = 1.., value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    /// Stop after N rollouts [default: replay the whole recording as
    /// consecutive rollouts]. `--runs 1` for a recording of one rollout.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub runs: Option<u64>,
    /// Print JSON (every look and the summary) instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Also write a self-contained HTML report (series, decision timeline, reasons).
    #[arg(long)]
    pub report: Option<PathBuf>,
}

/// The manifest beside `data` and its entry for it, if any.
pub fn manifest_entry(data: &Path) -> Option<(PathBuf, Manifest, Entry)> {
    let dir = data.parent()?;
    let manifest_path = dir.join(MANIFEST_FILE);
    if !manifest_path.is_file() {
        return None;
    }
    let (file, manifest) = Manifest::load(&manifest_path).ok()?;
    let name = data.file_name()?;
    let entry = manifest
        .recordings
        .iter()
        .find(|e| e.file.as_os_str() == name)?
        .clone();
    Some((file, manifest, entry))
}

/// Picks the analysis: the flag, else the manifest's, else the config's only one.
pub fn pick_analysis(
    config: &crate::config::Config,
    flag: Option<&str>,
    manifest: Option<&str>,
) -> Result<String, String> {
    if let Some(name) = flag.or(manifest) {
        return Ok(name.to_string());
    }
    let mut names = config.analyses.keys();
    match (names.next(), names.next()) {
        (Some(only), None) => Ok(only.clone()),
        _ => Err(format!(
            "{} has {} analyses: choose one with --analysis ({})",
            config.path.display(),
            config.analyses.len(),
            config
                .analyses
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Everything a replay needs, resolved from flags and manifest.
struct Resolved {
    config: crate::config::Config,
    analysis: String,
    vars: BTreeMap<String, String>,
    schedule: Schedule,
}

fn resolve(args: &ReplayArgs) -> Result<Resolved, String> {
    let found = manifest_entry(&args.data);
    let config_path = match (&args.config, &found) {
        (Some(c), _) => c.clone(),
        (None, Some((file, m, _))) if m.config.is_some() => {
            Manifest::base(file).join(m.config.as_ref().expect("checked"))
        }
        _ => PathBuf::from("verdict.yaml"),
    };
    let config = crate::config::load(&config_path).map_err(|e| e.to_string())?;
    let (manifest_analysis, mut vars) = match &found {
        Some((_, m, e)) => (
            e.analysis.clone().or_else(|| m.analysis.clone()),
            m.vars.clone(),
        ),
        None => (None, BTreeMap::new()),
    };
    vars.extend(args.vars.iter().cloned());
    let analysis = pick_analysis(
        &config,
        args.analysis.as_deref(),
        manifest_analysis.as_deref(),
    )?;
    let schedule = args.schedule.schedule(found.as_ref().map(|(_, _, e)| e));
    schedule.check()?;
    Ok(Resolved {
        config,
        analysis,
        vars,
        schedule,
    })
}

/// A unix time as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn clock(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{t}"))
}

/// Seconds as a duration (`7m0s` → `7m`).
pub fn span(seconds: f64) -> String {
    duration::format(std::time::Duration::from_secs_f64(seconds.max(0.0)))
}

/// The table's header for `metrics`.
fn header(metrics: &[String]) -> String {
    let mut line = format!("{:<8} {:<19} {:>6}", "look", "time (UTC)", "weight");
    for m in metrics {
        line.push_str(&format!(" {:>12}", truncate(m, 12)));
    }
    line.push_str(&format!(" {:>7}  decision", "score"));
    line
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).chain(['…']).collect()
    }
}

/// One look as a table row: each metric's classification (`*` when it has
/// too little data to count), the score and the decision.
pub fn row(run: usize, look: &Look) -> String {
    let mut line = format!(
        "{:<8} {:<19} {:>6}",
        format!("{run}.{}", look.number),
        clock(look.time),
        look.weight.map_or("-".into(), |w| format!("{w}%"))
    );
    for m in &look.metrics {
        let mark = if m.enough_data { "" } else { "*" };
        line.push_str(&format!(
            " {:>12}",
            format!("{}{mark}", m.classification.verdict_name())
        ));
    }
    line.push_str(&format!(
        " {:>7.2}  {}",
        look.decision.score,
        look.decision.action.as_str()
    ));
    if !look.decision.reasons.is_empty()
        && look.decision.action != verdict_judges::decision::Action::Promote
    {
        line.push_str(&format!(": {}", look.decision.reasons.join("; ")));
    }
    line
}

/// The closing lines: every run's outcome and the final decision.
pub fn summary_lines(summary: &ReplaySummary) -> Vec<String> {
    let mut lines = Vec::new();
    if summary.runs.len() > 1 {
        for r in &summary.runs {
            lines.push(format!(
                "run {}: {} after {} looks ({}){}",
                r.run,
                r.action.as_str(),
                r.looks,
                span(r.time_to_decision),
                if r.incomplete { ", data ended" } else { "" }
            ));
        }
    }
    let decisive = &summary.runs[summary.decisive_run - 1];
    lines.push(format!(
        "decision: {} (run {}, at {}, time to decision {}; {} looks in {} run{})",
        summary.decision.as_str(),
        decisive.run,
        clock(decisive.end),
        span(summary.time_to_decision),
        summary.looks,
        summary.runs.len(),
        if summary.runs.len() == 1 { "" } else { "s" }
    ));
    lines
}

/// A progress bar on a terminal; `None` (plain lines) otherwise.
pub fn progress(total: u64, what: &str) -> Option<indicatif::ProgressBar> {
    if !std::io::stdout().is_terminal() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({elapsed})")
    {
        bar.set_style(style);
    }
    bar.set_message(what.to_string());
    Some(bar)
}

/// `--json`'s document, written as the replay goes (the header fields, each
/// look as it is taken, then the summary) so that no look is held: a
/// month of looks as JSON values would take gigabytes. Nothing is written
/// before the first look, so a replay that fails at once (a bad variable)
/// prints only its error; one that fails later leaves the document short,
/// and the exit status says so.
struct JsonDocument<W: Write> {
    out: std::io::BufWriter<W>,
    /// The header, until it is written with the first look.
    head: Option<String>,
}

impl<W: Write> JsonDocument<W> {
    /// A document to `out` that starts with the fields of `head`, an object.
    fn new(out: W, head: serde_json::Value) -> JsonDocument<W> {
        let head = head.to_string();
        let head = head.strip_suffix('}').unwrap_or(&head).to_string();
        JsonDocument {
            out: std::io::BufWriter::new(out),
            head: Some(head),
        }
    }

    /// The header and the looks array's opening, or the comma before the
    /// next look. Write errors (a closed pipe) end nothing early, as
    /// `print_line`.
    fn next(&mut self) {
        let _ = match self.head.take() {
            Some(head) => write!(self.out, "{head},\"looks\":["),
            None => write!(self.out, ","),
        };
    }

    /// One look, as the daemon stores it, with its run number.
    fn look(&mut self, run: usize, look: &Look) {
        let mut value = serde_json::to_value(look).unwrap_or_default();
        if let Some(obj) = value.as_object_mut() {
            obj.insert("run".into(), run.into());
        }
        self.next();
        let _ = write!(self.out, "{value}");
    }

    fn finish(mut self, summary: &ReplaySummary) {
        if self.head.is_some() {
            // No look: the header, then an empty array.
            self.next();
        }
        let summary = serde_json::to_string(summary).unwrap_or_default();
        let _ = writeln!(self.out, "],\"summary\":{summary}}}");
        let _ = self.out.flush();
    }
}

pub fn run(args: &ReplayArgs) -> i32 {
    let resolved = match resolve(args) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    match execute(args, resolved) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("{}", crate::api::one_line(&e));
            super::EXIT_BAD_INPUT
        }
    }
}

fn execute(args: &ReplayArgs, r: Resolved) -> Result<(), String> {
    let analysis = r
        .config
        .analyses
        .get(&r.analysis)
        .ok_or_else(|| format!("unknown analysis {:?}", r.analysis))?
        .clone();
    // The report plots every recorded sample, so it reads the recording
    // whole; the replay itself streams it.
    let report_series: Vec<ReportSeries> = match &args.report {
        Some(_) => crate::recording::read(&args.data)
            .map_err(|e| e.to_string())?
            .series
            .iter()
            .map(|s| ReportSeries {
                metric: s.metric.clone(),
                arm: s.arm.as_str().to_string(),
                le: s.le,
                points: s.samples.iter().map(|p| (p.timestamp, p.value)).collect(),
            })
            .collect(),
        None => Vec::new(),
    };
    let loaded = open(&args.data, &analysis, &r.vars, &r.schedule).map_err(|e| e.to_string())?;
    if !loaded.unused.is_empty() {
        eprintln!(
            "note: recorded metrics no query of {} reads: {}",
            r.analysis,
            loaded.unused.join(", ")
        );
    }
    if !loaded.missing.is_empty() {
        eprintln!(
            "note: no recorded data for {} (judged as missing data)",
            loaded.missing.join(", ")
        );
    }
    let replayer = Replayer::new(r.config.analyses.clone(), loaded.source);
    let spec = ReplaySpec {
        name: args.data.display().to_string(),
        analysis: r.analysis.clone(),
        vars: r.vars.clone(),
        schedule: r.schedule.clone(),
        start: loaded.span.0,
        end: loaded.span.1,
        max_runs: args.runs.map(|n| n as usize),
    };
    let metrics: Vec<String> = analysis
        .metrics
        .iter()
        .map(|m| m.config.name.clone())
        .collect();
    let expected_looks = ((spec.end - spec.start) / spec.schedule.interval.as_secs_f64()) as u64;
    let bar = if args.json {
        None
    } else {
        progress(expected_looks, "looks")
    };
    let say = |line: &str| match &bar {
        Some(b) => b.println(line),
        None => super::print_line(line),
    };
    let mut json = args.json.then(|| {
        JsonDocument::new(
            std::io::stdout(),
            serde_json::json!({
                "recording": args.data.display().to_string(),
                "analysis": r.analysis,
                "vars": r.vars,
                "schedule": {
                    "interval": span(spec.schedule.interval.as_secs_f64()),
                    "weights": spec.schedule.weights,
                    "step_every": span(spec.schedule.step_every.as_secs_f64()),
                },
            }),
        )
    });
    let mut report_looks: Vec<Look> = Vec::new();
    if !args.json {
        say(&format!(
            "replaying {} with analysis {} ({} to {})",
            args.data.display(),
            r.analysis,
            clock(spec.start),
            clock(spec.end)
        ));
        say(&header(&metrics));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        // The engine bounds each look's fetches with a timer.
        .enable_time()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    let summary = runtime
        .block_on(replay(&replayer, &spec, |run, look| {
            match &mut json {
                Some(doc) => doc.look(run, look),
                None => say(&row(run, look)),
            }
            if args.report.is_some() {
                report_looks.push(look.clone());
            }
            if let Some(b) = &bar {
                b.inc(1);
            }
        }))
        .map_err(|e| e.to_string())?;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    if let Some(path) = &args.report {
        let summary_text = summary_lines(&summary).join("\n");
        let title = format!("Replay of {}", args.data.display());
        let html = render_html(&ReportInput {
            title: &title,
            analysis: &r.analysis,
            looks: &report_looks,
            series: &report_series,
            summary: &summary_text,
        });
        std::fs::write(path, html)
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))?;
        if !args.json {
            eprintln!("report: {}", path.display());
        }
    }
    if let Some(doc) = json {
        doc.finish(&summary);
    } else {
        super::print_line("(* = too little data to count)");
        for line in summary_lines(&summary) {
            super::print_line(&line);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::run::LookWindow;
    use verdict_judges::decision::{Action, Decision};

    fn look(number: usize) -> Look {
        Look {
            number,
            time: 60.0 * number as f64,
            window: LookWindow {
                start: 0.0,
                end: 60.0 * number as f64,
                step_seconds: 15.0,
            },
            baseline: "same window".into(),
            weight: Some(5.0),
            step: None,
            metrics: Vec::new(),
            decision: Decision::inconclusive("no metric"),
        }
    }

    fn summary() -> ReplaySummary {
        ReplaySummary {
            runs: Vec::new(),
            looks: 0,
            decision: Action::Inconclusive,
            decisive_run: 1,
            time_to_decision: 0.0,
        }
    }

    fn document(looks: usize, finish: bool) -> String {
        let mut out = Vec::new();
        let mut doc = JsonDocument::new(&mut out, serde_json::json!({"recording": "r.csv"}));
        for n in 1..=looks {
            doc.look(1, &look(n));
        }
        if finish {
            doc.finish(&summary());
        } else {
            drop(doc);
        }
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn the_json_document_is_whole_with_any_number_of_looks_and_empty_before_the_first() {
        for looks in [0, 1, 3] {
            let text = document(looks, true);
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
            assert_eq!(keys, ["recording", "looks", "summary"], "{text}");
            let numbers: Vec<u64> = v["looks"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l["number"].as_u64().unwrap())
                .collect();
            assert_eq!(numbers, (1..=looks as u64).collect::<Vec<_>>());
            assert!(v["looks"].as_array().unwrap().iter().all(|l| l["run"] == 1));
        }
        // A replay that fails before its first look prints nothing.
        assert_eq!(document(0, false), "");
        // One that fails later leaves a document that does not parse.
        assert!(serde_json::from_str::<serde_json::Value>(&document(2, false)).is_err());
    }
}

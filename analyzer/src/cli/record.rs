//! `verdict record`: run an analysis's queries for both arms against
//! Prometheus over a time range and store the raw series as a recording
//! (CSV or Parquet by the extension of `--out`; see [`crate::recording`]).
//!
//! Queries are rendered with `--vars` exactly as the daemon renders them,
//! evaluated at the analysis's `step`, and split into ranges of at most
//! [`MAX_POINTS_PER_QUERY`] points (Prometheus refuses more than 11,000 per
//! series). A gauge or counter query must return one series per arm; a
//! histogram query one series per `le`.

use super::replay::parse_var;
use crate::config::analysis::{Metric, MetricKind, Queries};
use crate::recording::table::TableWriter;
use crate::recording::{
    parse_le, parse_timestamp, Arm, RecordingError, COUNTER_ERRORS_SUFFIX, COUNTER_TOTAL_SUFFIX,
};
use crate::source::{SeriesSource, Window};
use clap::Args;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Points per range query (below Prometheus' limit of 11,000).
pub const MAX_POINTS_PER_QUERY: f64 = 10_000.0;

#[derive(Debug, Args)]
pub struct RecordArgs {
    /// Config file: Prometheus settings and the analysis.
    #[arg(long, short, default_value = "verdict.yaml")]
    pub config: PathBuf,
    /// Analysis whose queries to record [default: the config's only one].
    #[arg(long)]
    pub analysis: Option<String>,
    /// Template variables, key=value (e.g. name=checkout namespace=shop).
    #[arg(long, num_args = 1.., value_parser = parse_var)]
    pub vars: Vec<(String, String)>,
    /// Start: unix seconds or RFC 3339.
    #[arg(long, value_parser = parse_timestamp)]
    pub from: f64,
    /// End: unix seconds or RFC 3339.
    #[arg(long, value_parser = parse_timestamp)]
    pub to: f64,
    /// Output file, .csv or .parquet.
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: &RecordArgs) -> i32 {
    let config = match crate::config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let analysis = match super::replay::pick_analysis(&config, args.analysis.as_deref(), None)
        .and_then(|name| {
            config
                .analyses
                .get(&name)
                .cloned()
                .ok_or_else(|| format!("unknown analysis {name:?}"))
        }) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    if args.to <= args.from {
        eprintln!("--to must be after --from");
        return super::EXIT_BAD_INPUT;
    }
    let vars: BTreeMap<String, String> = args.vars.iter().cloned().collect();
    let source = match super::serve::prometheus_source(&config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e:#}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    let window = Window {
        start: args.from,
        end: args.to,
        step: analysis.config.step.0,
    };
    match runtime.block_on(record(
        source.as_ref(),
        &analysis.metrics,
        &vars,
        &window,
        &args.out,
    )) {
        Ok(rows) => {
            eprintln!("{}: {rows} rows", args.out.display());
            0
        }
        Err(e) => {
            eprintln!("{}", crate::api::one_line(&e));
            1
        }
    }
}

/// Records every query of `metrics` over `window` into `out`; returns the
/// number of rows written.
pub async fn record(
    source: &dyn SeriesSource,
    metrics: &[Metric],
    vars: &BTreeMap<String, String>,
    window: &Window,
    out: &std::path::Path,
) -> Result<u64, String> {
    // Render everything first: a bad variable writes no file.
    let mut plan = Vec::new();
    for metric in metrics {
        let name = &metric.config.name;
        for (arm, queries) in [
            (Arm::Baseline, &metric.baseline),
            (Arm::Canary, &metric.canary),
        ] {
            let parts = match queries {
                Queries::Single(t) => vec![(name.clone(), t)],
                Queries::Counter { errors, total } => vec![
                    (format!("{name}{COUNTER_ERRORS_SUFFIX}"), errors),
                    (format!("{name}{COUNTER_TOTAL_SUFFIX}"), total),
                ],
            };
            for (recorded, template) in parts {
                let query = template
                    .render(vars)
                    .map_err(|e| format!("metric {name:?}: {e}"))?;
                plan.push((recorded, arm, metric.config.kind, query));
            }
        }
    }
    let mut writer = TableWriter::create(out).map_err(|e| e.to_string())?;
    let mut rows = 0u64;
    let step = window.step.as_secs_f64();
    let span = step * MAX_POINTS_PER_QUERY;
    for (recorded, arm, kind, query) in &plan {
        let mut start = window.start;
        while start <= window.end {
            let end = (start + span).min(window.end);
            let piece = Window {
                start,
                end,
                step: window.step,
            };
            let series = source
                .query_range(query, &piece)
                .await
                .map_err(|e| format!("{recorded}/{}: {query}: {e}", arm.as_str()))?;
            if *kind != MetricKind::Histogram && series.len() > 1 {
                return Err(format!(
                    "{recorded}/{}: the query returned {} series; aggregate each arm to one series",
                    arm.as_str(),
                    series.len()
                ));
            }
            let mut seen_le = std::collections::HashSet::new();
            for s in series {
                let le = match (kind, s.labels.get("le")) {
                    (MetricKind::Histogram, Some(text)) => Some(parse_le(text).map_err(|m| {
                        format!("{recorded}/{}: {m}", arm.as_str())
                    })?),
                    (MetricKind::Histogram, None) => {
                        return Err(format!(
                            "{recorded}/{}: a histogram series without an le label: query the _bucket series, e.g. sum by (le) (...)",
                            arm.as_str()
                        ))
                    }
                    _ => None,
                };
                if !seen_le.insert(le.map(f64::to_bits)) {
                    return Err(format!(
                        "{recorded}/{}: several series with le={}: aggregate the buckets with sum by (le)",
                        arm.as_str(),
                        le.map_or("-".into(), crate::recording::format_le)
                    ));
                }
                for sample in s.samples {
                    writer
                        .push(recorded, *arm, le, sample)
                        .map_err(|e: RecordingError| e.to_string())?;
                    rows += 1;
                }
            }
            // The next piece starts one step after this one's last point.
            start = end + step;
        }
    }
    writer.finish().map_err(|e| e.to_string())?;
    Ok(rows)
}

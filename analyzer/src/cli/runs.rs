//! `verdict runs list` and `verdict runs show ID`: the audit trail from the
//! command line, read from the store the config file names (the same data
//! as `GET /v1/runs`; `--json` prints that JSON).

use crate::api::runs::RunsQuery;
use crate::config;
use crate::store::{self, RunDetail, RunSummary};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    pub command: RunsCommand,
    /// Config file (YAML or TOML) naming the store.
    #[arg(long, short, default_value = "verdict.yaml", global = true)]
    pub config: PathBuf,
    /// Print JSON (the HTTP API's shapes) instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Runs, newest first.
    List {
        #[arg(long)]
        namespace: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        analysis: Option<String>,
        /// promote, continue, abort or inconclusive (the latest look's).
        #[arg(long)]
        decision: Option<String>,
        /// Started at or after (unix seconds or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Started before (unix seconds or RFC 3339).
        #[arg(long)]
        until: Option<String>,
        #[arg(long)]
        limit: Option<String>,
    },
    /// One run with every look explained.
    Show { id: i64 },
}

pub fn run(args: &RunsArgs) -> i32 {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let filter = match &args.command {
        RunsCommand::List {
            namespace,
            name,
            analysis,
            decision,
            since,
            until,
            limit,
        } => {
            let query = RunsQuery {
                namespace: namespace.clone(),
                name: name.clone(),
                analysis: analysis.clone(),
                decision: decision.clone(),
                since: since.clone(),
                until: until.clone(),
                limit: limit.clone(),
            };
            match query.filter() {
                Ok(f) => Some(f),
                Err(e) => {
                    eprintln!("{e}");
                    return super::EXIT_BAD_INPUT;
                }
            }
        }
        RunsCommand::Show { .. } => None,
    };
    let result = super::block_on(async {
        let store = store::connect(&config).await?;
        match (&args.command, filter) {
            (RunsCommand::Show { id }, _) => {
                let run = store.get_run(*id).await?;
                Ok::<_, store::StoreError>(match run {
                    None => Err(format!("no run {id}")),
                    Some(run) if args.json => Ok(json(&run)),
                    Some(run) => Ok(show_text(&run)),
                })
            }
            (_, filter) => {
                let runs = store.list_runs(&filter.unwrap_or_default()).await?;
                Ok(Ok(if args.json {
                    json(&serde_json::json!({ "runs": runs }))
                } else {
                    list_text(&runs)
                }))
            }
        }
    });
    match result {
        Ok(Ok(text)) => {
            super::print_line(text.trim_end());
            0
        }
        Ok(Err(not_found)) => {
            eprintln!("{not_found}");
            1
        }
        Err(e) => {
            eprintln!("{}", crate::api::one_line(&e.to_string()));
            1
        }
    }
}

fn json(value: &impl serde::Serialize) -> String {
    crate::json::to_string_pretty(value).unwrap_or_default()
}

/// A unix time as `YYYY-MM-DD HH:MM:SS` UTC.
pub fn format_time(t: f64) -> String {
    chrono::DateTime::from_timestamp_millis((t * 1000.0).round() as i64)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|| format!("{t}"))
}

fn or_dash(s: Option<String>) -> String {
    s.unwrap_or_else(|| "-".into())
}

/// Rows of cells as aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(c, s)| {
                if c + 1 == row.len() {
                    s.clone()
                } else {
                    format!("{s:<w$}", w = widths[c])
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

/// The `runs list` table.
pub fn list_text(runs: &[RunSummary]) -> String {
    let mut rows = vec![[
        "ID", "STARTED", "ANALYSIS", "RUN", "LOOKS", "DECISION", "SCORE", "ENDED",
    ]
    .map(String::from)
    .to_vec()];
    for r in runs {
        rows.push(vec![
            r.id.to_string(),
            format_time(r.started_at),
            r.analysis.clone(),
            r.key.to_string(),
            r.looks.to_string(),
            or_dash(r.decision.map(|d| d.as_str().to_string())),
            or_dash(r.score.map(|s| format!("{s:.1}"))),
            match (r.ended_at, &r.outcome) {
                (Some(t), Some(o)) => format!("{} ({o})", format_time(t)),
                (Some(t), None) => format_time(t),
                _ => "open".into(),
            },
        ]);
    }
    table(&rows)
}

/// The `runs show` text: the run, then every look with its metrics.
pub fn show_text(d: &RunDetail) -> String {
    let r = &d.run;
    let mut out = format!(
        "run {} · {} · analysis {} (config {}) · verdict {}\nstarted {} · {} · {} look{} · latest decision {}\n",
        r.id,
        r.key,
        r.analysis,
        r.config_hash,
        r.verdict_version,
        format_time(r.started_at),
        match (r.ended_at, &r.outcome) {
            (Some(t), o) => format!("ended {} ({})", format_time(t), o.as_deref().unwrap_or("")),
            _ => "open".into(),
        },
        r.looks,
        if r.looks == 1 { "" } else { "s" },
        or_dash(r.decision.map(|a| a.as_str().to_string())),
    );
    if (d.looks.len() as u64) < r.looks {
        out.push_str(&format!(
            "({} earlier look(s) removed by retention)\n",
            r.looks - d.looks.len() as u64
        ));
    }
    for look in &d.looks {
        out.push_str(&format!(
            "\nlook {} at {} · window {} → {} · weight {} · {} · score {:.1}\n",
            look.number,
            format_time(look.time),
            format_time(look.window.start),
            format_time(look.window.end),
            look.weight.map_or("-".into(), |w| format!("{w}%")),
            look.decision.action.as_str(),
            look.decision.score,
        ));
        for reason in &look.decision.reasons {
            out.push_str(&format!("  reason: {reason}\n"));
        }
        let mut rows = vec![["METRIC", "JUDGE", "RESULT", "WHY"]
            .map(String::from)
            .to_vec()];
        for m in &look.metrics {
            rows.push(vec![
                format!("  {}", m.name),
                m.judge.as_str().to_string(),
                m.classification.verdict_name().to_string(),
                if m.reason.is_empty() {
                    "-".into()
                } else {
                    m.reason.clone()
                },
            ]);
        }
        if !look.metrics.is_empty() {
            rows[0][0] = format!("  {}", rows[0][0]);
            out.push_str(&table(&rows));
        }
    }
    for e in &d.events {
        out.push_str(&format!(
            "\nevent {} {} ({}): {}",
            format_time(e.received_at),
            e.event_type,
            e.phase,
            e.message
        ));
    }
    for n in &d.notifications {
        out.push_str(&format!(
            "\nnotification {} {} {}: {} after {} attempt(s){}",
            format_time(n.sent_at),
            n.channel,
            n.decision.as_str(),
            if n.ok { "sent" } else { "failed" },
            n.attempts,
            n.error
                .as_deref()
                .map(|e| format!(": {e}"))
                .unwrap_or_default()
        ));
    }
    out
}

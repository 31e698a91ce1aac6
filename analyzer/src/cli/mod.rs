//! The command line: `verdict stats | judge | serve | config check`.
//!
//! Each subcommand is a small module that parses its input, calls the
//! library, and prints; errors become one line on stderr and an exit code
//! (2 for bad input, 1 for anything else).

pub mod backtest;
pub mod fixtures;
pub mod judge;
pub mod migrate;
pub mod record;
pub mod replay;
pub mod runs;
pub mod serve;
pub mod simulate;
pub mod stats;

use clap::{Parser, Subcommand};
use std::io::Read;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "verdict",
    version,
    about = "Statistical canary analysis for Flagger and Argo Rollouts"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run one statistical test: JSON request in (stdin or --input), JSON result out.
    Stats {
        /// Request file; standard input when absent.
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// Judge canary against baseline data with a Kayenta or Verdict analysis config.
    Judge(judge::JudgeArgs),
    /// Run the daemon: Flagger webhooks, Argo web provider, probes and metrics.
    Serve {
        /// Config file (YAML or TOML).
        #[arg(long, short, default_value = "verdict.yaml")]
        config: PathBuf,
    },
    /// Seeded simulation: sequential judges vs Kayenta Mann-Whitney on the same traffic.
    Simulate(simulate::SimulateArgs),
    /// Read recorded runs from the store: list, or show one with every look.
    Runs(runs::RunsArgs),
    /// Migrate the run store's schema: up, down (one step), status.
    Migrate(migrate::MigrateArgs),
    /// Record an analysis's queries for both arms from Prometheus into a CSV or Parquet file.
    Record(record::RecordArgs),
    /// Replay a recording through the daemon's engine, one look per interval.
    Replay(replay::ReplayArgs),
    /// Replay every recording of a manifest and check each against its expected outcome.
    Backtest(backtest::BacktestArgs),
    /// Seeded replay fixtures: recordings with expected outcomes.
    Fixtures {
        #[command(subcommand)]
        command: fixtures::FixturesCommand,
    },
    /// Validate configuration files.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check a config file; print every problem with file, line and field.
    Check { file: PathBuf },
}

/// Exit code for bad input (malformed request, invalid config).
pub const EXIT_BAD_INPUT: i32 = 2;

/// Parses arguments and runs; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    match cli.command {
        Command::Stats { input } => run_stats(input),
        Command::Judge(args) => judge::run(&args),
        Command::Serve { config } => serve::run(&config),
        Command::Simulate(args) => simulate::run(&args),
        Command::Runs(args) => runs::run(&args),
        Command::Migrate(args) => migrate::run(&args),
        Command::Record(args) => record::run(&args),
        Command::Replay(args) => replay::run(&args),
        Command::Backtest(args) => backtest::run(&args),
        Command::Fixtures { command } => fixtures::run(&command),
        Command::Config {
            command: ConfigCommand::Check { file },
        } => match crate::config::load(&file) {
            Ok(c) => {
                println!(
                    "{}: ok ({} analysis config{})",
                    file.display(),
                    c.analyses.len(),
                    if c.analyses.len() == 1 { "" } else { "s" }
                );
                0
            }
            Err(e) => {
                eprintln!("{e}");
                EXIT_BAD_INPUT
            }
        },
    }
}

/// Reads a whole file, or stdin for `None`.
pub fn read_input(path: Option<&PathBuf>) -> Result<String, String> {
    match path {
        Some(p) => {
            std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
        }
        None => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .map_err(|e| format!("cannot read standard input: {e}"))?;
            Ok(s)
        }
    }
}

fn run_stats(input: Option<PathBuf>) -> i32 {
    let result = read_input(input.as_ref())
        .and_then(|text| stats::parse(&text))
        .and_then(|req| stats::run(&req).map_err(|e| format!("invalid stats request: {e}")));
    match result {
        Ok(value) => {
            print_line(&value.to_string());
            0
        }
        Err(e) => {
            eprintln!("{}", crate::api::one_line(&e));
            EXIT_BAD_INPUT
        }
    }
}

/// Runs a future on a single-threaded runtime (commands that talk to the store).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a current-thread runtime")
        .block_on(future)
}

/// Prints a line to stdout; a closed pipe (`| head`) is not an error worth a panic.
pub fn print_line(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{text}");
}

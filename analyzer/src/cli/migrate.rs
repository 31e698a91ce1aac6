//! `verdict migrate up|down|status --config C`: the run store's schema.
//!
//! The daemon applies pending migrations at start; this command is for
//! operators who migrate ahead of a rollout, inspect the schema, or revert
//! the latest migration before running an older Verdict.

use crate::config;
use crate::store::{self, Store};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Args)]
pub struct MigrateArgs {
    #[command(subcommand)]
    pub command: MigrateCommand,
    /// Config file (YAML or TOML) naming the store.
    #[arg(long, short, default_value = "verdict.yaml", global = true)]
    pub config: PathBuf,
}

#[derive(Debug, Clone, Copy, Subcommand)]
pub enum MigrateCommand {
    /// Apply every pending migration (each in its own transaction).
    Up,
    /// Revert the latest applied migration.
    Down,
    /// List the migrations this binary ships and which are applied.
    Status,
}

pub fn run(args: &MigrateArgs) -> i32 {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return super::EXIT_BAD_INPUT;
        }
    };
    let result = super::block_on(async {
        let store = store::connect(&config).await?;
        execute(store.as_ref(), args.command).await
    });
    match result {
        Ok(lines) => {
            for line in lines {
                super::print_line(&line);
            }
            0
        }
        Err(e) => {
            eprintln!("{}", crate::api::one_line(&e.to_string()));
            1
        }
    }
}

/// Runs `command` and returns what to print.
pub async fn execute(
    store: &dyn Store,
    command: MigrateCommand,
) -> Result<Vec<String>, store::StoreError> {
    Ok(match command {
        MigrateCommand::Up => {
            let applied = store.migrate_up().await?;
            if applied.is_empty() {
                vec!["up to date".to_string()]
            } else {
                applied.iter().map(|v| format!("applied {v}")).collect()
            }
        }
        MigrateCommand::Down => match store.migrate_down().await? {
            Some(v) => vec![format!("reverted {v}")],
            None => vec!["nothing to revert".to_string()],
        },
        MigrateCommand::Status => {
            let mut lines = vec![format!("{:<8} {:<20} APPLIED", "VERSION", "NAME")];
            for m in store.migration_status().await? {
                lines.push(format!(
                    "{:<8} {:<20} {}",
                    m.version,
                    m.name,
                    m.applied_at
                        .map(super::runs::format_time)
                        .unwrap_or_else(|| "pending".into())
                ));
            }
            lines
        }
    })
}

//! `verdict fixtures generate --out DIR --seed N`: writes the seeded replay
//! fixtures (recordings and manifest; see [`crate::fixtures_gen`]).

use crate::fixtures_gen::{generate, DEFAULT_SEED};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub enum FixturesCommand {
    /// Generate the recordings and their manifest into a directory.
    Generate(GenerateArgs),
}

#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Output directory (created if missing; existing fixture files are overwritten).
    #[arg(long)]
    pub out: PathBuf,
    /// Master seed; the committed fixtures use the default.
    #[arg(long, default_value_t = DEFAULT_SEED)]
    pub seed: u64,
}

pub fn run(command: &FixturesCommand) -> i32 {
    match command {
        FixturesCommand::Generate(args) => match generate(&args.out, args.seed) {
            Ok(paths) => {
                for p in paths {
                    super::print_line(&p.display().to_string());
                }
                0
            }
            Err(e) => {
                eprintln!("{e}");
                1
            }
        },
    }
}

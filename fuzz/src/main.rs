//! `verdict-fuzz`: a bounded, seeded fuzzing session over the targets.
//!
//! ```text
//! verdict-fuzz [--seconds N | --iterations N] [--seed S] [TARGET...]   (default: every target)
//! verdict-fuzz replay TARGET FILE
//! ```
//!
//! Exit 0 when no target panicked, 1 on a finding (each saved under
//! `fuzz/crashes/` and printed with the command that replays it), 2 on bad
//! usage. Without `--seed` the seed is the current time, printed first.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;
use verdict_fuzz::{corpus, execute, fuzz, Budget, Target};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).to_path_buf()
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("verdict-fuzz: {problem}");
    let targets: Vec<&str> = Target::ALL.iter().map(|t| t.name()).collect();
    eprintln!(
        "usage: verdict-fuzz [--seconds N | --iterations N] [--seed S] [TARGET...]\n       \
         verdict-fuzz replay TARGET FILE\ntargets: {}",
        targets.join(" ")
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("replay") {
        let (Some(target), Some(file)) = (args.get(1), args.get(2)) else {
            return usage("replay needs a target and a file");
        };
        let Some(target) = Target::from_name(target) else {
            return usage(&format!("unknown target {target:?}"));
        };
        let input = match std::fs::read(file) {
            Ok(b) => b,
            Err(e) => return usage(&format!("cannot read {file}: {e}")),
        };
        // The panic hook stays on: a replay shows the panic and its place.
        return match execute(target, &input) {
            Ok(outcome) => {
                println!("{}: no panic ({outcome})", target.name());
                ExitCode::SUCCESS
            }
            Err(crash) => {
                println!("{}: panic: {}", target.name(), crash.message);
                ExitCode::from(1)
            }
        };
    }
    let mut budget = Budget::Time(Duration::from_secs(30));
    let mut seed = None;
    let mut targets = Vec::new();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut number = |what: &str| -> Result<u64, ExitCode> {
            it.next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| usage(&format!("{what} needs a whole number")))
        };
        match arg.as_str() {
            "--seconds" => match number("--seconds") {
                Ok(n) => budget = Budget::Time(Duration::from_secs(n)),
                Err(e) => return e,
            },
            "--iterations" => match number("--iterations") {
                Ok(n) => budget = Budget::Iterations(n),
                Err(e) => return e,
            },
            "--seed" => match number("--seed") {
                Ok(n) => seed = Some(n),
                Err(e) => return e,
            },
            name => match Target::from_name(name) {
                Some(t) => targets.push(t),
                None => return usage(&format!("unknown target {name:?}")),
            },
        }
    }
    if targets.is_empty() {
        targets = Target::ALL.to_vec();
    }
    let seed = seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0)
    });
    println!("verdict-fuzz: seed {seed}, budget {budget:?} per target");
    let mut found = false;
    for target in targets {
        let seeds = match corpus(&root().join("corpus"), target) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{}: cannot read the seed corpus: {e}", target.name());
                return ExitCode::from(2);
            }
        };
        let report = fuzz(target, seeds, seed, budget);
        println!(
            "{:>8}: {} executions, {} distinct outcomes, pool {}, {} panics",
            target.name(),
            report.executions,
            report.outcomes,
            report.pool,
            report.crashes.len()
        );
        for crash in &report.crashes {
            found = true;
            let dir = root().join("crashes");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!(
                "{}-{:016x}",
                target.name(),
                fingerprint(&crash.input)
            ));
            let saved = std::fs::write(&file, &crash.input).is_ok();
            println!("  panic: {}", crash.message.replace('\n', " "));
            if saved {
                println!(
                    "  replay: cargo run -p verdict-fuzz -- replay {} {}",
                    target.name(),
                    file.display()
                );
            }
        }
    }
    if found {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// FNV-1a of the input: a stable file name for a finding.
fn fingerprint(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

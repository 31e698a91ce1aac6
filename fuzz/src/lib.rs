//! Fuzzing Verdict's parsers of untrusted input, on stable Rust.
//!
//! Each [`Target`] feeds arbitrary bytes to one parser the way the daemon
//! does and checks what must hold for every input: no panic, and for PromQL
//! templating that no value changes the shape of a rendered query. The
//! recording readers' targets ([`recording`]: CSV, Parquet, query_range
//! answers, the backtest manifest) write the bytes to a scratch file, call
//! the real reader and check what it promises of a recording and of a
//! refusal.
//!
//! Coverage-guided engines (libFuzzer through `cargo fuzz`, AFL++ through
//! `cargo afl`) need a nightly compiler or an instrumented rebuild of every
//! dependency, too slow for CI on two cores. So the driver here ([`fuzz`])
//! is a seeded mutational fuzzer that builds with the workspace: it starts
//! from the committed seed corpus (`fuzz/corpus/<target>/`), stacks byte
//! mutations, dictionary insertions and splices between corpus entries, and
//! keeps an input in its working pool when it produces an outcome not seen
//! before (a new error message shape): a cheap stand-in for coverage that
//! steers it past the first parse error. The same seed and budget in
//! iterations give the same inputs, so any finding is reproducible; a panic
//! is saved under `fuzz/crashes/` with the command that replays it.
//!
//! The targets are plain functions of `&[u8]`, so a coverage-guided engine
//! can drive them by hand (`docs/security.md`).

pub mod mutate;
pub mod recording;
pub mod targets;

use std::collections::HashSet;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
pub use targets::Target;
use verdict_judges::splitmix64::SplitMix64;

/// When a fuzzing session stops.
#[derive(Debug, Clone, Copy)]
pub enum Budget {
    /// After this many executions (reproducible: same seed, same inputs).
    Iterations(u64),
    /// After this much time.
    Time(Duration),
}

/// A panic: the input and what it said.
#[derive(Debug, Clone)]
pub struct Crash {
    pub input: Vec<u8>,
    pub message: String,
}

/// What a session did.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: Target,
    pub executions: u64,
    /// Distinct outcomes seen (the guidance signal).
    pub outcomes: usize,
    /// Inputs in the working pool at the end (seeds plus kept mutants).
    pub pool: usize,
    pub crashes: Vec<Crash>,
}

/// Largest input the fuzzer makes: the daemon's body limit.
pub const MAX_INPUT: usize = verdict::api::MAX_BODY_BYTES;

/// The committed seed corpus of `target`: every file of its directory,
/// in name order.
pub fn corpus(root: &Path, target: Target) -> std::io::Result<Vec<Vec<u8>>> {
    let dir = root.join(target.name());
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    files.sort();
    files.iter().map(std::fs::read).collect()
}

/// Runs `target` on `input`, turning a panic into a [`Crash`].
pub fn execute(target: Target, input: &[u8]) -> Result<String, Crash> {
    panic::catch_unwind(AssertUnwindSafe(|| target.run(input))).map_err(|payload| {
        let message = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_else(|| "panic with a non-string payload".into());
        Crash {
            input: input.to_vec(),
            message,
        }
    })
}

/// Fuzzes `target` from `seeds` with the generator seeded by `seed`, until
/// `budget` is spent. Panics are caught and reported, not propagated; the
/// panic hook is silenced meanwhile so the output stays readable.
pub fn fuzz(target: Target, seeds: Vec<Vec<u8>>, seed: u64, budget: Budget) -> Report {
    let mut rng = SplitMix64::new(seed ^ target.salt());
    let mut pool = if seeds.is_empty() {
        vec![Vec::new()]
    } else {
        seeds
    };
    let mut outcomes = HashSet::new();
    let mut crashes: Vec<Crash> = Vec::new();
    let dictionary = target.dictionary();
    let hook = panic::take_hook();
    panic::set_hook(Box::new(|_| {}));
    // Every seed first, as they are.
    for input in pool.clone() {
        record(execute(target, &input), &mut outcomes, &mut crashes);
    }
    let started = Instant::now();
    let mut executions = pool.len() as u64;
    loop {
        match budget {
            Budget::Iterations(n) if executions >= n => break,
            Budget::Time(t) if started.elapsed() >= t => break,
            _ => {}
        }
        let parent = &pool[rng.next_u64() as usize % pool.len()];
        let other = &pool[rng.next_u64() as usize % pool.len()];
        let input = mutate::mutate(&mut rng, parent, other, dictionary, MAX_INPUT);
        executions += 1;
        if record(execute(target, &input), &mut outcomes, &mut crashes) {
            pool.push(input);
        }
    }
    panic::set_hook(hook);
    Report {
        target,
        executions,
        outcomes: outcomes.len(),
        pool: pool.len(),
        crashes,
    }
}

/// Notes an outcome; true when it is new (the input is worth keeping).
fn record(
    outcome: Result<String, Crash>,
    outcomes: &mut HashSet<String>,
    crashes: &mut Vec<Crash>,
) -> bool {
    match outcome {
        Ok(shape) => outcomes.insert(shape),
        Err(crash) => {
            // One example of each panic message is enough.
            if !crashes.iter().any(|c| c.message == crash.message) {
                crashes.push(crash);
            }
            false
        }
    }
}

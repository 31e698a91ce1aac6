//! The seeded generator of the replay fixtures (`verdict fixtures generate`).
//!
//! Writes one recording per scenario (a CSV long table, see [`csv`]) and a
//! `manifest.yaml` that labels each with its expected outcome, into a
//! directory; `fixtures/recordings/` holds the committed output for the
//! default seed, and a test regenerates it and compares bytes, so the
//! committed files never drift from this code. `docs/fixtures.md` describes
//! the scenarios and the meaning of each expected outcome.
//!
//! Every recording is one hour at 15 s steps of a service at 40 requests/s
//! (0.5 for low traffic) with a daily shape and load noise ([`traffic`]),
//! rolled out with the canary weights 5, 10, 25, 50 % stepped every 15
//! minutes from the first sample. Recording `i` draws from its own generator
//! seeded from `(seed, i)`, so changing one scenario leaves the others' bytes
//! alone.

pub mod csv;
pub mod traffic;

use crate::simulate::rng::{derive_seed, Rng};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use traffic::{Behaviour, Change, Schedule, Traffic};

/// The seed of the committed fixtures.
pub const DEFAULT_SEED: u64 = 20_261_122;

/// Name of the analysis the fixtures are judged with.
pub const ANALYSIS: &str = "web-service";

/// The replay schedule every recording is generated for (and the manifest states).
pub const WEIGHTS: [f64; 4] = [5.0, 10.0, 25.0, 50.0];
pub const STEP_EVERY_SECONDS: i64 = 900;
pub const INTERVAL: &str = "1m";

/// What a replay of a recording must conclude.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expected {
    /// No abort at any look (promote, or still undecided at the end).
    Healthy,
    /// An abort at some look.
    Regressed,
    /// No promote at any look (abort, inconclusive or continue are all fine):
    /// the data cannot support a promotion.
    NoPromote,
}

impl Expected {
    pub fn as_str(self) -> &'static str {
        match self {
            Expected::Healthy => "healthy",
            Expected::Regressed => "regressed",
            Expected::NoPromote => "no-promote",
        }
    }
}

/// One fixture: a file name, its expectation and its traffic.
#[derive(Debug, Clone)]
pub struct Fixture {
    pub file: &'static str,
    pub expected: Expected,
    pub description: &'static str,
    /// When the canary became worse (unix seconds), for time-to-detect.
    pub regression_start: Option<i64>,
    pub traffic: Traffic,
}

/// 2025-11-03T10:00:00Z: the first recording's start; the others start on
/// later days at other hours, so the daily shape differs between them.
const FIRST_START: i64 = 1_762_164_000;
const DAY: i64 = 86_400;
const HOUR: i64 = 3600;
const MINUTE: i64 = 60;

fn traffic(start: i64) -> Traffic {
    Traffic {
        start,
        duration: HOUR,
        requests_per_second: 40.0,
        schedule: Schedule {
            weights: WEIGHTS.to_vec(),
            step_every: STEP_EVERY_SECONDS,
        },
        canary_split: 1.0,
        baseline: Behaviour::normal(),
        canary: Behaviour::normal(),
        change: None,
        canary_gap: None,
        canary_p99_missing: false,
    }
}

/// The scenarios, in manifest order.
pub fn fixtures() -> Vec<Fixture> {
    let at = |day: i64, hour: i64| FIRST_START + day * DAY + (hour - 10) * HOUR;
    let normal = Behaviour::normal();
    let healthy = |file, day, hour, description| Fixture {
        file,
        expected: Expected::Healthy,
        description,
        regression_start: None,
        traffic: traffic(at(day, hour)),
    };
    let regressed =
        |file, description, start: i64, from: i64, until: Option<i64>, canary| Fixture {
            file,
            expected: Expected::Regressed,
            description,
            regression_start: Some(start + from),
            traffic: Traffic {
                change: Some(Change {
                    from: start + from,
                    until: until.map(|u| start + u),
                    canary,
                }),
                ..traffic(start)
            },
        };
    // Zero errors on both arms until the change; then only the canary fails.
    let mut sparse = regressed(
        "sparse-new-errors.csv",
        "baseline has no errors at all; from minute 5 the canary fails 1 % of requests (a few per scrape)",
        at(4, 11),
        5 * MINUTE,
        None,
        Behaviour {
            error_rate: 0.01,
            ..normal
        },
    );
    sparse.traffic.baseline.error_rate = 0.0;
    sparse.traffic.canary.error_rate = 0.0;
    vec![
        healthy(
            "healthy-aa-1.csv",
            0,
            10,
            "A/A: identical arms, morning traffic",
        ),
        healthy(
            "healthy-aa-2.csv",
            1,
            14,
            "A/A: identical arms, afternoon peak",
        ),
        healthy(
            "healthy-aa-3.csv",
            2,
            21,
            "A/A: identical arms, evening decline",
        ),
        regressed(
            "latency-regression.csv",
            "from minute 10 the canary is 15 % slower: about a third more requests above 250 ms",
            at(3, 13),
            10 * MINUTE,
            None,
            Behaviour {
                latency_median: 0.115,
                ..normal
            },
        ),
        regressed(
            "error-spike.csv",
            "the canary fails 4 % of requests from minute 10 to minute 25 (baseline 0.5 %)",
            at(5, 9),
            10 * MINUTE,
            Some(25 * MINUTE),
            Behaviour {
                error_rate: 0.04,
                ..normal
            },
        ),
        sparse,
        regressed(
            "variance-increase.csv",
            "from minute 10 the canary's latency spreads wider (log sd 0.7 to 0.85, same median): p99 up and noisier",
            at(6, 16),
            10 * MINUTE,
            None,
            Behaviour {
                latency_sigma: 0.85,
                ..normal
            },
        ),
        regressed(
            "accuracy-drop.csv",
            "the canary model is right on 88 % of scored predictions, the baseline on 92 % (a 4-point drop)",
            at(7, 12),
            0,
            None,
            Behaviour {
                accuracy: 0.88,
                ..normal
            },
        ),
        Fixture {
            file: "low-traffic.csv",
            expected: Expected::Healthy,
            description: "identical arms at 0.5 requests/s: too little data to decide; must not abort",
            regression_start: None,
            traffic: Traffic {
                requests_per_second: 0.5,
                ..traffic(at(8, 3))
            },
        },
        Fixture {
            file: "missing-data.csv",
            expected: Expected::NoPromote,
            description: "canary scrapes fail (NaN) from minute 20 to 35 and its p99 gauge is never recorded",
            regression_start: None,
            traffic: Traffic {
                canary_gap: Some((at(9, 15) + 20 * MINUTE, at(9, 15) + 35 * MINUTE)),
                canary_p99_missing: true,
                ..traffic(at(9, 15))
            },
        },
        Fixture {
            file: "broken-split.csv",
            expected: Expected::NoPromote,
            description: "the canary receives a quarter of the traffic its weight says (misrouted mesh); arms otherwise identical",
            regression_start: None,
            traffic: Traffic {
                canary_split: 0.25,
                ..traffic(at(10, 11))
            },
        },
    ]
}

/// Why the fixtures could not be written.
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error("cannot create {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Writes every recording and `manifest.yaml` into `out`; returns the paths written.
pub fn generate(out: &Path, seed: u64) -> Result<Vec<PathBuf>, GenerateError> {
    std::fs::create_dir_all(out).map_err(|source| GenerateError::CreateDir {
        path: out.to_path_buf(),
        source,
    })?;
    let fixtures = fixtures();
    let mut written = Vec::new();
    for (i, f) in fixtures.iter().enumerate() {
        let mut rng = Rng::seed_from(derive_seed(seed, i as u64, 0));
        let rows = f.traffic.rows(&mut rng);
        let path = out.join(f.file);
        csv::write_csv(&rows, &path).map_err(|source| GenerateError::Write {
            path: path.clone(),
            source,
        })?;
        written.push(path);
    }
    let path = out.join("manifest.yaml");
    std::fs::write(&path, manifest(&fixtures, seed)).map_err(|source| GenerateError::Write {
        path: path.clone(),
        source,
    })?;
    written.push(path);
    Ok(written)
}

/// The manifest's text (hand-formatted, so its bytes are stable and it
/// carries comments).
pub fn manifest(fixtures: &[Fixture], seed: u64) -> String {
    let weights = WEIGHTS.map(|w| format!("{w}")).join(", ");
    let mut s = format!(
        "# Generated by `verdict fixtures generate --out fixtures/recordings --seed {seed}`;\n\
         # do not edit (a test regenerates and compares). Scenarios: docs/fixtures.md.\n\
         # expected: healthy = no abort at any look; regressed = an abort at some\n\
         # look; no-promote = no promote at any look.\n\
         config: verdict.yaml\n\
         analysis: {ANALYSIS}\n\
         vars: {{name: checkout, namespace: shop}}\n\
         recordings:\n"
    );
    for f in fixtures {
        let _ = writeln!(s, "  - file: {}", f.file);
        let _ = writeln!(s, "    expected: {}", f.expected.as_str());
        let _ = writeln!(s, "    description: \"{}\"", f.description);
        if let Some(t) = f.regression_start {
            let _ = writeln!(s, "    regression_start: {t}");
        }
        let _ = writeln!(s, "    interval: {INTERVAL}");
        let _ = writeln!(s, "    weights: [{weights}]");
        let _ = writeln!(s, "    step_every: {}m", STEP_EVERY_SECONDS / 60);
    }
    s
}

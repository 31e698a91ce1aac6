//! The Parquet seeds (`fuzz/corpus/parquet/`) are real files written by the
//! recording writer (`recording::table::write`), so mutations start from
//! what polars writes and reach its decoders. The ignored test regenerates
//! them:
//!
//! ```sh
//! cargo test -p verdict-fuzz --test parquet_seeds -- --ignored
//! ```
//!
//! The other test checks that the committed files still read back to the
//! recordings they were written from (or are refused, for the bad ones).

use std::path::{Path, PathBuf};
use verdict::recording::{self, table, Arm, RecordedSeries, Recording};
use verdict::source::Sample;

fn seed_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/parquet")
}

fn series(metric: &str, arm: Arm, le: Option<f64>, points: &[(f64, f64)]) -> RecordedSeries {
    RecordedSeries {
        metric: metric.into(),
        arm,
        le,
        samples: points
            .iter()
            .map(|&(timestamp, value)| Sample { timestamp, value })
            .collect(),
    }
}

/// The recordings written as seeds, and whether the reader accepts each.
fn seeds() -> Vec<(&'static str, Recording, bool)> {
    let t = 1_700_000_000.0;
    vec![
        (
            "gauge.parquet",
            Recording {
                series: vec![
                    series(
                        "latency",
                        Arm::Baseline,
                        None,
                        &[(t, 0.21), (t + 15.0, 0.22)],
                    ),
                    series(
                        "latency",
                        Arm::Canary,
                        None,
                        &[(t, 0.2), (t + 15.0, f64::NAN)],
                    ),
                ],
            },
            true,
        ),
        (
            "histogram-counter.parquet",
            Recording {
                series: vec![
                    series("errors:errors", Arm::Canary, None, &[(t, 1.0)]),
                    series("errors:total", Arm::Canary, None, &[(t, 100.0)]),
                    series("h", Arm::Baseline, Some(0.5), &[(t, 3.0), (t + 15.0, 5.0)]),
                    series("h", Arm::Baseline, Some(f64::INFINITY), &[(t, 4.0)]),
                ],
            },
            true,
        ),
        (
            "nan-timestamp.parquet",
            Recording {
                series: vec![series("latency", Arm::Canary, None, &[(f64::NAN, 1.0)])],
            },
            false,
        ),
        (
            "nan-le.parquet",
            Recording {
                series: vec![series("h", Arm::Canary, Some(f64::NAN), &[(t, 1.0)])],
            },
            false,
        ),
    ]
}

/// The seed cut short: no footer, refused before any row is read.
const TRUNCATED: &str = "truncated.parquet";

#[test]
#[ignore = "regenerates the committed seeds"]
fn regenerate_parquet_seeds() {
    std::fs::create_dir_all(seed_dir()).unwrap();
    for (name, recording, _) in seeds() {
        table::write(&seed_dir().join(name), &recording).unwrap();
    }
    let whole = std::fs::read(seed_dir().join("gauge.parquet")).unwrap();
    std::fs::write(seed_dir().join(TRUNCATED), &whole[..whole.len() / 2]).unwrap();
}

#[test]
fn committed_parquet_seeds_read_back() {
    for (name, written, accepted) in seeds() {
        let read = recording::read(&seed_dir().join(name));
        if accepted {
            let read = read.unwrap();
            assert_eq!(read.series.len(), written.series.len(), "{name}");
            for (r, w) in read.series.iter().zip(&written.series) {
                assert_eq!((&r.metric, r.arm, r.le), (&w.metric, w.arm, w.le), "{name}");
                let bits = |s: &[Sample]| {
                    s.iter()
                        .map(|p| (p.timestamp.to_bits(), p.value.to_bits()))
                        .collect::<Vec<_>>()
                };
                assert_eq!(bits(&r.samples), bits(&w.samples), "{name}");
            }
        } else {
            let e = read.unwrap_err();
            assert!(e.to_string().contains(name), "{e}");
        }
    }
    let e = recording::read(&seed_dir().join(TRUNCATED)).unwrap_err();
    assert!(e.to_string().contains(TRUNCATED), "{e}");
}

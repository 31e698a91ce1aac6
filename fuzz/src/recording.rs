//! The recording readers' targets: the readers take paths, so each input is
//! written to a scratch file (or directory) and the real reader opens it.
//!
//! The scratch directory is one per thread (the tests run targets on
//! several threads at once), created on first use, reused by every
//! execution and removed when the thread ends. What must hold: no panic; a
//! recording read has at least one sample, every series sorted by time
//! with finite timestamps, no NaN bucket bound and a metric name; a
//! refusal names the file it is about.

use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use verdict::recording::manifest::{Manifest, MANIFEST_FILE};
use verdict::recording::{self, Recording, RecordingError};

/// A directory of the system's temporary directory, owned by one thread.
struct Scratch {
    dir: PathBuf,
}

impl Scratch {
    fn new() -> Scratch {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = std::env::temp_dir().join(format!(
            "verdict-fuzz-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(dir.join(QUERY_RANGE_DIR)).expect("cannot create a scratch dir");
        Scratch { dir }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

thread_local! {
    static SCRATCH: RefCell<Option<Scratch>> = const { RefCell::new(None) };
}

/// Runs `f` with this thread's scratch directory.
fn with_scratch<T>(f: impl FnOnce(&Path) -> T) -> T {
    SCRATCH.with(|s| {
        let mut s = s.borrow_mut();
        let dir = s.get_or_insert_with(Scratch::new).dir.clone();
        drop(s);
        f(&dir)
    })
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).expect("cannot write the scratch file");
}

/// The subdirectory a query-range input is written into.
const QUERY_RANGE_DIR: &str = "query-range";
/// The metric the query-range files are named for.
const QUERY_RANGE_METRIC: &str = "latency";
/// A line of its own splitting a query-range input into the baseline's
/// answer (before) and the canary's (after).
pub const ARM_SEPARATOR: &str = "\n=== canary\n";

/// A `.csv` table read by `recording::read`.
pub fn csv(input: &[u8]) -> String {
    with_scratch(|dir| {
        let path = dir.join("fuzz.csv");
        write(&path, input);
        outcome(&path, recording::read(&path))
    })
}

/// A `.parquet` table read by `recording::read`.
pub fn parquet(input: &[u8]) -> String {
    with_scratch(|dir| {
        let path = dir.join("fuzz.parquet");
        write(&path, input);
        outcome(&path, recording::read(&path))
    })
}

/// One or two query_range answers (split at [`ARM_SEPARATOR`]) in a
/// directory read by `recording::read`.
pub fn query_range(input: &[u8]) -> String {
    with_scratch(|dir| {
        let dir = dir.join(QUERY_RANGE_DIR);
        let file = |arm: &str| dir.join(format!("{QUERY_RANGE_METRIC}.{arm}.json"));
        let (baseline, canary) = (file("baseline"), file("canary"));
        let _ = std::fs::remove_file(&baseline);
        let _ = std::fs::remove_file(&canary);
        let separator = ARM_SEPARATOR.as_bytes();
        match input.windows(separator.len()).position(|w| w == separator) {
            Some(i) => {
                write(&baseline, &input[..i]);
                write(&canary, &input[i + separator.len()..]);
            }
            None => write(&canary, input),
        }
        outcome(&dir, recording::read(&dir))
    })
}

/// A backtest manifest read by `Manifest::load` (given its directory).
pub fn manifest(input: &[u8]) -> String {
    with_scratch(|dir| {
        let path = dir.join(MANIFEST_FILE);
        write(&path, input);
        match Manifest::load(dir) {
            Err(e) => refusal(&path, &e),
            Ok((file, manifest)) => {
                assert_eq!(file, path, "the manifest was read from elsewhere");
                assert!(
                    !manifest.recordings.is_empty(),
                    "a manifest without recordings was accepted"
                );
                for entry in &manifest.recordings {
                    if let Some(t) = entry.regression_start {
                        assert!(t.is_finite(), "regression_start {t} accepted");
                    }
                    if let Some(weights) = &entry.weights {
                        assert!(
                            !weights.is_empty() && weights.iter().all(|w| *w > 0.0 && *w <= 100.0),
                            "weights {weights:?} accepted"
                        );
                    }
                }
                format!("ok: {} recordings", manifest.recordings.len().min(4))
            }
        }
    })
}

/// Checks what a reader promises and reduces its answer to an outcome.
/// `target` is the file or directory the reader was given; a refusal
/// must name it or a file inside it.
fn outcome(target: &Path, read: Result<Recording, RecordingError>) -> String {
    match read {
        Err(e) => refusal(target, &e),
        Ok(recording) => {
            assert!(
                !recording.is_empty(),
                "a recording without samples was read"
            );
            for s in &recording.series {
                assert!(!s.metric.is_empty(), "a series without a metric name");
                assert!(
                    s.le.is_none_or(|le| !le.is_nan()),
                    "{}: a NaN bucket bound",
                    s.metric
                );
                assert!(
                    s.samples.iter().all(|p| p.timestamp.is_finite()),
                    "{}: a non-finite timestamp",
                    s.metric
                );
                assert!(
                    s.samples.is_sorted_by(|a, b| a.timestamp <= b.timestamp),
                    "{}: samples not sorted by time",
                    s.metric
                );
            }
            let histogram = recording.series.iter().any(|s| s.le.is_some());
            format!(
                "ok: {} series, histogram {histogram}",
                recording.series.len().min(8)
            )
        }
    }
}

fn refusal(target: &Path, e: &RecordingError) -> String {
    assert!(
        e.file.starts_with(target),
        "the error names {} instead of {}: {e}",
        e.file.display(),
        target.display()
    );
    let text = e.to_string();
    assert!(
        text.starts_with(&e.file.display().to_string()),
        "the message does not start with the file: {text}"
    );
    let column = e
        .column
        .as_deref()
        .map(|c| c.split(['[', '.']).next().unwrap_or(""))
        .unwrap_or("");
    // What follows a parenthesis is detail that varies with the input (the
    // columns the file has, polars' context), not a different refusal.
    let message = e.message.split('(').next().unwrap_or("");
    super::targets::shape(&format!("refused {column}: "), message)
}

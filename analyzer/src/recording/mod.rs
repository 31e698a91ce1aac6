//! Recordings: the raw series of an analysis's queries over a time range,
//! stored so that a rollout can be replayed without a cluster.
//!
//! The stored form is a long table (CSV or Parquet, by extension) with one
//! row per sample:
//!
//! | column | meaning |
//! |---|---|
//! | `timestamp` | unix seconds (integer or float) or an RFC 3339 string |
//! | `metric` | the analysis metric's name; a counter metric's two queries are `<metric>:errors` and `<metric>:total` |
//! | `arm` | `baseline` or `canary` |
//! | `value` | the sample; NaN (or an empty cell) is the absence of data |
//! | `le` | optional: a histogram bucket's upper bound (`+Inf` allowed); the value is the cumulative count |
//!
//! A directory of Prometheus `/api/v1/query_range` answers
//! (`<metric>.<arm>.json`, see [`prom_json`]) is read into the same shape.
//!
//! Every reader reports a bad file as a [`RecordingError`] naming the file
//! and, where there is one, the row and the column; nothing panics. Readers
//! work in chunks and hand each checked row to a [`RowSink`] in the file's
//! order ([`read_rows`]): [`read`] collects them into a [`Recording`] (the
//! samples as `(f64, f64)` pairs), and a replay spills them to disk by time
//! (`replay::stream`) so that it holds one run's window, not the file.

pub mod manifest;
mod parquet_pages;
pub mod prom_json;
pub mod table;

use crate::source::Sample;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The two arms of a rollout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Arm {
    Baseline,
    Canary,
}

impl Arm {
    pub fn as_str(self) -> &'static str {
        match self {
            Arm::Baseline => "baseline",
            Arm::Canary => "canary",
        }
    }

    pub fn parse(text: &str) -> Option<Arm> {
        match text {
            "baseline" => Some(Arm::Baseline),
            "canary" => Some(Arm::Canary),
            _ => None,
        }
    }
}

/// The suffixes of a counter metric's two recorded series.
pub const COUNTER_ERRORS_SUFFIX: &str = ":errors";
pub const COUNTER_TOTAL_SUFFIX: &str = ":total";

/// One recorded series: a metric (or counter half), an arm and, for a
/// histogram, one bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordedSeries {
    pub metric: String,
    pub arm: Arm,
    /// Histogram bucket upper bound.
    pub le: Option<f64>,
    /// Sorted by time.
    pub samples: Vec<Sample>,
}

/// A whole recording.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Recording {
    pub series: Vec<RecordedSeries>,
}

impl Recording {
    /// First and last sample time, `None` when there is no sample.
    pub fn span(&self) -> Option<(f64, f64)> {
        let first = self
            .series
            .iter()
            .filter_map(|s| s.samples.first())
            .map(|p| p.timestamp)
            .reduce(f64::min)?;
        let last = self
            .series
            .iter()
            .filter_map(|s| s.samples.last())
            .map(|p| p.timestamp)
            .reduce(f64::max)?;
        Some((first, last))
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.series.iter().map(|s| s.samples.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The recorded metric names (counter halves with their suffix).
    pub fn metric_names(&self) -> std::collections::BTreeSet<&str> {
        self.series.iter().map(|s| s.metric.as_str()).collect()
    }
}

/// Why a recording cannot be read or written: the file, and where known
/// the 1-based data row and the column.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordingError {
    pub file: PathBuf,
    pub row: Option<u64>,
    pub column: Option<String>,
    pub message: String,
}

impl RecordingError {
    pub fn file(file: &Path, message: impl Into<String>) -> Self {
        RecordingError {
            file: file.to_path_buf(),
            row: None,
            column: None,
            message: message.into(),
        }
    }

    pub fn cell(file: &Path, row: u64, column: &str, message: impl Into<String>) -> Self {
        RecordingError {
            file: file.to_path_buf(),
            row: Some(row),
            column: Some(column.to_string()),
            message: message.into(),
        }
    }
}

impl fmt::Display for RecordingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(row) = self.row {
            write!(f, ": row {row}")?;
        }
        if let Some(column) = &self.column {
            write!(f, ", column {column:?}")?;
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for RecordingError {}

/// Reads a recording: a `.csv` or `.parquet` long table, or a directory of
/// Prometheus query_range answers.
pub fn read(path: &Path) -> Result<Recording, RecordingError> {
    let mut builder = SeriesBuilder::default();
    read_rows(path, &mut builder)?;
    Ok(builder.finish())
}

/// Reads a recording's rows into `sink`, in the file's order, without
/// holding them (a replay spills them to disk by time: `replay::stream`).
/// Returns the number of rows; a recording without any is an error.
pub fn read_rows(path: &Path, sink: &mut dyn RowSink) -> Result<u64, RecordingError> {
    if path.is_dir() {
        return prom_json::read_dir_rows(path, sink);
    }
    match table::Format::of(path) {
        Some(format) => table::read_rows(path, format, sink),
        None => Err(RecordingError::file(
            path,
            "unknown recording format: expected a .csv or .parquet file, or a directory of \
             <metric>.<arm>.json query_range answers",
        )),
    }
}

/// Where a reader puts each row it reads. A reader has checked the row
/// (named metric, finite timestamp, no NaN `le`) before it pushes it.
pub trait RowSink {
    fn push(&mut self, metric: &str, arm: Arm, le: Option<f64>, sample: Sample);
}

/// What identifies a recorded series: metric, arm and histogram bucket.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesKey {
    pub metric: String,
    pub arm: Arm,
    pub le: Option<f64>,
}

impl SeriesKey {
    /// The fixed order of a recording's series: metric, arm, then bucket
    /// bound (no bound first), so equal files give equal recordings.
    pub fn order(&self, other: &SeriesKey) -> std::cmp::Ordering {
        (self.metric.as_str(), self.arm)
            .cmp(&(other.metric.as_str(), other.arm))
            .then(
                self.le
                    .unwrap_or(f64::NEG_INFINITY)
                    .total_cmp(&other.le.unwrap_or(f64::NEG_INFINITY)),
            )
    }
}

/// Numbers the series of a recording as its rows arrive (0, 1, ... in
/// order of first appearance). The last key is cached: rows of one series
/// usually come together, and then a row costs no hashing.
#[derive(Debug, Default)]
pub struct SeriesIndex {
    ids: HashMap<(String, Arm, Option<u64>), usize>,
    keys: Vec<SeriesKey>,
    last: Option<(usize, Arm, Option<u64>)>,
}

impl SeriesIndex {
    /// The number of the series a row belongs to.
    pub fn id(&mut self, metric: &str, arm: Arm, le: Option<f64>) -> usize {
        let le_bits = le.map(f64::to_bits);
        if let Some((i, a, l)) = self.last {
            if a == arm && l == le_bits && self.keys[i].metric == metric {
                return i;
            }
        }
        let next = self.keys.len();
        let i = *self
            .ids
            .entry((metric.to_string(), arm, le_bits))
            .or_insert(next);
        if i == next {
            self.keys.push(SeriesKey {
                metric: metric.to_string(),
                arm,
                le,
            });
        }
        self.last = Some((i, arm, le_bits));
        i
    }

    /// The series seen so far, by number.
    pub fn keys(&self) -> &[SeriesKey] {
        &self.keys
    }

    pub fn into_keys(self) -> Vec<SeriesKey> {
        self.keys
    }
}

/// Collects a whole recording in memory.
#[derive(Debug, Default)]
pub(crate) struct SeriesBuilder {
    index: SeriesIndex,
    samples: Vec<Vec<Sample>>,
}

impl RowSink for SeriesBuilder {
    fn push(&mut self, metric: &str, arm: Arm, le: Option<f64>, sample: Sample) {
        let i = self.index.id(metric, arm, le);
        if i == self.samples.len() {
            self.samples.push(Vec::new());
        }
        self.samples[i].push(sample);
    }
}

impl SeriesBuilder {
    /// The recording, every series sorted by time (stable), in the fixed
    /// order of [`SeriesKey::order`].
    pub(crate) fn finish(self) -> Recording {
        let mut series: Vec<RecordedSeries> = self
            .index
            .into_keys()
            .into_iter()
            .zip(self.samples)
            .map(|(key, mut samples)| {
                samples.shrink_to_fit();
                crate::source::sort_by_time(&mut samples);
                RecordedSeries {
                    metric: key.metric,
                    arm: key.arm,
                    le: key.le,
                    samples,
                }
            })
            .collect();
        series.sort_by(|a, b| a.key().order(&b.key()));
        Recording { series }
    }
}

impl RecordedSeries {
    fn key(&self) -> SeriesKey {
        SeriesKey {
            metric: self.metric.clone(),
            arm: self.arm,
            le: self.le,
        }
    }
}

/// Parses a timestamp: unix seconds or RFC 3339.
pub fn parse_timestamp(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if let Ok(x) = text.parse::<f64>() {
        return if x.is_finite() {
            Ok(x)
        } else {
            Err(format!("timestamp {text:?} is not a finite number"))
        };
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp() as f64 + f64::from(t.timestamp_subsec_nanos()) / 1e9)
        .map_err(|_| {
            format!(
                "timestamp {text:?} is neither unix seconds nor RFC 3339 (2023-11-14T22:13:20Z)"
            )
        })
}

/// Parses a sample value: a number, `NaN`, `+Inf`/`-Inf`; empty is NaN.
pub fn parse_value(text: &str) -> Result<f64, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(f64::NAN);
    }
    crate::json::parse_special(text)
        .or_else(|| text.parse::<f64>().ok())
        .ok_or_else(|| format!("value {text:?} is not a number"))
}

/// Parses a bucket bound: a number or `+Inf`; NaN is refused.
pub fn parse_le(text: &str) -> Result<f64, String> {
    crate::source::increments::parse_le(text).map_err(|e| e.to_string())
}

/// Formats a bucket bound as Prometheus writes the `le` label.
pub fn format_le(le: f64) -> String {
    if le == f64::INFINITY {
        "+Inf".into()
    } else {
        le.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_values_and_bounds_parse() {
        assert_eq!(parse_timestamp("1700000000"), Ok(1_700_000_000.0));
        assert_eq!(parse_timestamp("1700000000.5"), Ok(1_700_000_000.5));
        assert_eq!(parse_timestamp("2023-11-14T22:13:20Z"), Ok(1_700_000_000.0));
        assert_eq!(
            parse_timestamp("2023-11-14T23:13:20.25+01:00"),
            Ok(1_700_000_000.25)
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert!(parse_timestamp("inf").is_err());
        assert!(parse_value("NaN").unwrap().is_nan());
        assert!(parse_value("").unwrap().is_nan());
        assert_eq!(parse_value("+Inf"), Ok(f64::INFINITY));
        assert_eq!(parse_value("0.25"), Ok(0.25));
        assert!(parse_value("fast").is_err());
        assert_eq!(parse_le("+Inf"), Ok(f64::INFINITY));
        assert!(parse_le("NaN").is_err());
        assert_eq!(format_le(f64::INFINITY), "+Inf");
        assert_eq!(format_le(0.25), "0.25");
    }

    #[test]
    fn builder_groups_and_sorts() {
        let mut b = SeriesBuilder::default();
        let s = |t: f64| Sample {
            timestamp: t,
            value: t,
        };
        b.push("m", Arm::Canary, None, s(2.0));
        b.push("m", Arm::Baseline, None, s(1.0));
        b.push("m", Arm::Canary, None, s(1.0));
        b.push("h", Arm::Canary, Some(0.5), s(1.0));
        b.push("h", Arm::Canary, Some(f64::INFINITY), s(1.0));
        let r = b.finish();
        let keys: Vec<_> = r
            .series
            .iter()
            .map(|s| (s.metric.as_str(), s.arm, s.le, s.samples.len()))
            .collect();
        assert_eq!(
            keys,
            vec![
                ("h", Arm::Canary, Some(0.5), 1),
                ("h", Arm::Canary, Some(f64::INFINITY), 1),
                ("m", Arm::Baseline, None, 1),
                ("m", Arm::Canary, None, 2),
            ]
        );
        assert_eq!(r.series[3].samples[0].timestamp, 1.0);
        assert_eq!(r.span(), Some((1.0, 2.0)));
    }
}

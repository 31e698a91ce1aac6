//! Where metric data comes from: Prometheus range queries or recordings.
//!
//! Every source answers the same question, "the raw series this query
//! returns over this window", as [`Series`]; the engine turns series into
//! judge inputs with [`increments`] (counters and histograms) or by taking
//! the points (gauges). Keeping the source this dumb is what lets replay and
//! serve agree: only the origin of the series differs.

pub mod increments;
pub mod memory;
pub mod prometheus;

use std::collections::BTreeMap;
use std::time::Duration;

/// A query window: `[start, end]` in unix seconds, sampled every `step`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub start: f64,
    pub end: f64,
    pub step: Duration,
}

impl Window {
    /// The window's length.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64((self.end - self.start).max(0.0))
    }
}

/// One sample of a series. `value` may be NaN or ±inf as Prometheus reports it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// Unix seconds.
    pub timestamp: f64,
    pub value: f64,
}

/// Sorts samples by time, keeping their given order among equal times (a
/// recording's file order, which replays must reproduce exactly).
pub fn sort_by_time(samples: &mut [Sample]) {
    if !samples.is_sorted_by(|a, b| a.timestamp <= b.timestamp) {
        samples.sort_by(|a, b| a.timestamp.total_cmp(&b.timestamp));
    }
}

/// One labelled time series of a range-query result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub samples: Vec<Sample>,
}

impl Series {
    /// The samples inside `window` (both ends included), found by binary
    /// search: the samples must be sorted by time.
    pub fn within(&self, window: &Window) -> Series {
        let samples = &self.samples;
        let from = samples.partition_point(|p| p.timestamp < window.start);
        let to = from + samples[from..].partition_point(|p| p.timestamp <= window.end);
        Series {
            labels: self.labels.clone(),
            samples: samples[from..to].to_vec(),
        }
    }
}

/// Why a source could not answer. Every variant reaches the decision as
/// "error, with this reason" and never as a pass.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SourceError {
    #[error("metric backend unreachable: {0}")]
    Unreachable(String),
    #[error("metric backend timed out after {0:?}")]
    Timeout(Duration),
    #[error("metric backend answered HTTP {status}: {message}")]
    Http { status: u16, message: String },
    #[error("metric backend rejected the query: {0}")]
    BadQuery(String),
    #[error("metric backend returned an unusable response: {0}")]
    BadResponse(String),
    #[error(
        "metric backend response is larger than {limit} bytes (prometheus.max_response_bytes): \
         aggregate the query to fewer series, or raise the limit"
    )]
    TooLarge { limit: usize },
}

impl SourceError {
    /// A short, stable name of the kind of failure, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceError::Unreachable(_) => "unreachable",
            SourceError::Timeout(_) => "timeout",
            SourceError::Http { .. } => "http",
            SourceError::BadQuery(_) => "bad_query",
            SourceError::BadResponse(_) => "bad_response",
            SourceError::TooLarge { .. } => "too_large",
        }
    }
}

/// Anything that answers range queries: Prometheus, or a recording.
///
/// A boxed future (rather than `async fn`) keeps the trait object-safe, so
/// the engine holds one `Arc<dyn SeriesSource>` whatever the origin.
pub trait SeriesSource: Send + Sync {
    fn query_range<'a>(
        &'a self,
        query: &'a str,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Vec<Series>, SourceError>>;

    /// Whether the backend answers at all (readiness).
    fn ready(&self) -> BoxFuture<'_, Result<(), SourceError>>;

    /// For a recording, the time of its first sample: nothing is known
    /// before it, so a series whose first sample is there was already there
    /// when the recording began, not new ([`increments::began_in_window`]
    /// judges from `max(window start, this)`). `None` for a live backend.
    fn recorded_since(&self) -> Option<f64> {
        None
    }
}

/// A boxed, sendable future.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

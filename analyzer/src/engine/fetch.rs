//! From templates to judge inputs: render each arm's queries, fetch the
//! series, and reduce them to what the metric's kind is judged on.
//!
//! * gauge: the finite points of the one series the query returns;
//! * counter: integer increments of the error and total counters;
//! * histogram: integer increments per bucket.
//!
//! NaN and ±inf points are dropped here: they are the absence of data, and
//! an arm left with nothing is "no data", never a number.
//!
//! Counters and histogram buckets are read over the look's window, so a
//! series that began during it (the canary's pods started after the window
//! start, or a labelled counter first incremented) counts from 0, and a
//! series with a single sample is data (`source::increments`). Only
//! histograms that cannot be read at all (no `le`, an unparsable or
//! duplicate `le`, buckets that do not pair or are not cumulative, no `+Inf`
//! bucket) are [`FetchError::Shape`].

use crate::config::analysis::{Metric, MetricKind, Queries};
use crate::config::template::TemplateError;
use crate::source::increments::{
    bucket_counts, counter_increase, histogram_increments, IncrementError,
};
use crate::source::{Series, SeriesSource, SourceError, Window};
use serde::Serialize;
use std::collections::BTreeMap;

/// What one arm of one metric is judged on.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ArmData {
    Points { values: Vec<f64> },
    Counts { errors: u64, total: u64 },
    Buckets { le: Vec<f64>, counts: Vec<u64> },
}

impl ArmData {
    /// Observations behind the data: points, or requests.
    pub fn size(&self) -> u64 {
        match self {
            ArmData::Points { values } => values.len() as u64,
            ArmData::Counts { total, .. } => *total,
            ArmData::Buckets { counts, .. } => counts.iter().sum(),
        }
    }
}

/// Why an arm has no judgeable data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FetchError {
    #[error("{0}")]
    Source(#[from] SourceError),
    #[error("cannot render query: {0}")]
    Template(#[from] TemplateError),
    #[error("query returned {0} series; aggregate each arm to one series (e.g. sum by () or avg)")]
    TooManySeries(usize),
    #[error("{0}")]
    Shape(String),
}

impl FetchError {
    /// A short, stable name of the kind of failure, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            FetchError::Source(e) => e.kind(),
            FetchError::Template(_) => "template",
            FetchError::TooManySeries(_) => "too_many_series",
            FetchError::Shape(_) => "shape",
        }
    }
}

/// Renders every template of a metric's arm; used up front to reject bad
/// webhook values before any query runs.
pub fn render(
    queries: &Queries,
    vars: &BTreeMap<String, String>,
) -> Result<Vec<String>, TemplateError> {
    queries
        .templates()
        .into_iter()
        .map(|t| t.render(vars))
        .collect()
}

/// Fetches one arm of one metric. `Ok(None)` means the backend answered but
/// had no usable data for the window (no series, only NaN, no traffic).
pub async fn fetch_arm(
    source: &dyn SeriesSource,
    metric: &Metric,
    queries: &Queries,
    vars: &BTreeMap<String, String>,
    window: &Window,
) -> Result<Option<ArmData>, FetchError> {
    // Counters are read from where the data begins: a recording's first
    // sample says nothing about whether its series was new then.
    let counted = Window {
        start: window
            .start
            .max(source.recorded_since().unwrap_or(f64::MIN)),
        ..*window
    };
    match (metric.config.kind, queries) {
        (MetricKind::Gauge, Queries::Single(t)) => {
            let series = source.query_range(&t.render(vars)?, window).await?;
            let values: Vec<f64> = single(series)?
                .map(|s| {
                    s.samples
                        .iter()
                        .map(|p| p.value)
                        .filter(|v| v.is_finite())
                        .collect()
                })
                .unwrap_or_default();
            Ok((!values.is_empty()).then_some(ArmData::Points { values }))
        }
        (MetricKind::Counter, Queries::Counter { errors, total }) => {
            let (e, t) = futures_util::join!(
                async {
                    source
                        .query_range(&errors.render(vars)?, window)
                        .await
                        .map_err(FetchError::from)
                },
                async {
                    source
                        .query_range(&total.render(vars)?, window)
                        .await
                        .map_err(FetchError::from)
                }
            );
            let increase = |series: Vec<Series>| -> Result<Option<f64>, FetchError> {
                Ok(single(series)?.and_then(|s| counter_increase(&s.samples, &counted)))
            };
            let total = match increase(t?)? {
                Some(total) if total > 0.0 => total,
                // No requests at all: nothing to judge, whatever errors say.
                _ => return Ok(None),
            };
            // No error series at all usually means "no errors yet": Prometheus
            // has no series until a labelled counter first increments.
            let errors = increase(e?)?.unwrap_or(0.0);
            let (errors, total) = (errors.round() as u64, total.round() as u64);
            if errors > total {
                return Err(FetchError::Shape(format!(
                    "error counter increased by {errors}, more than the total {total}: \
                     do the errors and total queries select the same requests?"
                )));
            }
            Ok(Some(ArmData::Counts { errors, total }))
        }
        (MetricKind::Histogram, Queries::Single(t)) => {
            let series = source.query_range(&t.render(vars)?, window).await?;
            if series.is_empty() {
                return Ok(None);
            }
            let shape = |e: IncrementError| FetchError::Shape(e.to_string());
            let buckets = histogram_increments(&series, &counted).map_err(shape)?;
            let le = buckets.iter().map(|b| b.le).collect();
            let counts = bucket_counts(&buckets).map_err(shape)?;
            if counts.iter().sum::<u64>() == 0 {
                return Ok(None);
            }
            Ok(Some(ArmData::Buckets { le, counts }))
        }
        (kind, _) => Err(FetchError::Shape(format!(
            "queries do not fit a {} metric (validated at load; this is a bug)",
            kind.as_str()
        ))),
    }
}

/// The one series of a result, `None` for an empty result.
fn single(mut series: Vec<Series>) -> Result<Option<Series>, FetchError> {
    match series.len() {
        0 => Ok(None),
        1 => Ok(series.pop()),
        n => Err(FetchError::TooManySeries(n)),
    }
}

//! From a recording to the source the engine queries: each recorded series
//! becomes the answer of the analysis query it was recorded from, keyed by
//! the query text rendered with the replay's variables (the same text the
//! engine renders at every look).
//!
//! * gauge metric `m`: rows `m` → the arm's query, one series;
//! * counter metric `m`: rows `m:errors` and `m:total` → the arm's errors
//!   and total queries;
//! * histogram metric `m`: rows `m` with `le` → the arm's query, one series
//!   per bucket labelled `le`, so `engine::fetch` computes bucket
//!   increments exactly as from Prometheus.
//!
//! A metric with no rows is simply absent (the engine then sees "no data",
//! as from a Prometheus without the series).

use super::ReplayError;
use crate::config::analysis::{Analysis, MetricKind, Queries};
use crate::config::template::QueryTemplate;
use crate::recording::{
    format_le, Arm, RecordedSeries, Recording, COUNTER_ERRORS_SUFFIX, COUNTER_TOTAL_SUFFIX,
};
use crate::source::memory::MemorySource;
use crate::source::{Sample, Series};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A recording loaded for one analysis.
#[derive(Debug)]
pub struct Loaded {
    pub source: MemorySource,
    /// Recorded metric names that no query of the analysis reads.
    pub unused: Vec<String>,
    /// Series the analysis reads that the recording lacks (`metric/arm`).
    pub missing: Vec<String>,
    /// First and last sample time.
    pub span: (f64, f64),
}

/// Loads `recording` for `analysis` with template `vars`.
pub fn load(
    recording: Recording,
    analysis: &Analysis,
    vars: &BTreeMap<String, String>,
) -> Result<Loaded, ReplayError> {
    let span = recording
        .span()
        .ok_or_else(|| ReplayError::Invalid("the recording holds no samples".into()))?;
    let mut by_name: HashMap<(String, Arm), Vec<RecordedSeries>> = HashMap::new();
    for s in recording.series {
        by_name
            .entry((s.metric.clone(), s.arm))
            .or_default()
            .push(s);
    }
    let mut source = MemorySource::new();
    let mut missing = Vec::new();
    let mut used = BTreeSet::new();
    for metric in &analysis.metrics {
        let name = &metric.config.name;
        let kind = metric.config.kind;
        for (arm, queries) in [
            (Arm::Canary, &metric.canary),
            (Arm::Baseline, &metric.baseline),
        ] {
            let parts: Vec<(String, &QueryTemplate)> = match queries {
                Queries::Single(t) => vec![(name.clone(), t)],
                Queries::Counter { errors, total } => vec![
                    (format!("{name}{COUNTER_ERRORS_SUFFIX}"), errors),
                    (format!("{name}{COUNTER_TOTAL_SUFFIX}"), total),
                ],
            };
            for (recorded, template) in parts {
                let query = template.render(vars).map_err(|error| {
                    crate::engine::EngineError::BadVariable {
                        metric: name.clone(),
                        error,
                    }
                })?;
                let Some(series) = by_name.remove(&(recorded.clone(), arm)) else {
                    missing.push(format!("{recorded}/{}", arm.as_str()));
                    continue;
                };
                used.insert(recorded.clone());
                let series = to_series(&recorded, arm, kind, series)?;
                // Two metrics may read the same query (an error rate and an
                // error count over one counter); recorded from one query,
                // their rows agree, and one answer serves both.
                if let Some(existing) = source.answer(&query) {
                    if same_series(existing, &series) {
                        continue;
                    }
                    return Err(ReplayError::Invalid(format!(
                        "metric {name:?}: the recorded series {recorded}/{} answers the rendered \
                         query {query:?}, which another recorded series answers with different \
                         samples",
                        arm.as_str()
                    )));
                }
                source.insert(query, series);
            }
        }
    }
    let unused: BTreeSet<String> = by_name
        .into_keys()
        .map(|(m, _)| m)
        .filter(|m| !used.contains(m))
        .collect();
    Ok(Loaded {
        source,
        unused: unused.into_iter().collect(),
        missing,
        span,
    })
}

/// Whether two answers hold the same series and samples (NaN equal to NaN:
/// a gap recorded twice is the same gap).
fn same_series(a: &[Series], b: &[Series]) -> bool {
    let same_sample = |x: &Sample, y: &Sample| {
        x.timestamp == y.timestamp && x.value.to_bits() == y.value.to_bits()
            || x.timestamp == y.timestamp && x.value.is_nan() && y.value.is_nan()
    };
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.labels == y.labels
                && x.samples.len() == y.samples.len()
                && x.samples
                    .iter()
                    .zip(&y.samples)
                    .all(|(p, q)| same_sample(p, q))
        })
}

/// Recorded rows as the series a query answers.
fn to_series(
    name: &str,
    arm: Arm,
    kind: MetricKind,
    recorded: Vec<RecordedSeries>,
) -> Result<Vec<Series>, ReplayError> {
    let histogram = kind == MetricKind::Histogram;
    let mut out = Vec::with_capacity(recorded.len());
    for s in recorded {
        let mut labels = BTreeMap::new();
        match (histogram, s.le) {
            (true, Some(le)) => {
                labels.insert("le".to_string(), format_le(le));
            }
            (false, None) => {}
            (true, None) => {
                return Err(ReplayError::Invalid(format!(
                    "{name}/{}: a histogram metric's rows need an le (bucket bound)",
                    arm.as_str()
                )))
            }
            (false, Some(le)) => {
                return Err(ReplayError::Invalid(format!(
                    "{name}/{}: rows with le={} but the analysis metric is a {}, not a histogram",
                    arm.as_str(),
                    format_le(le),
                    kind.as_str()
                )))
            }
        }
        out.push(Series {
            labels,
            samples: s.samples,
        });
    }
    Ok(out)
}

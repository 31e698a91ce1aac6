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
//!
//! The mapping ([`plan`]) needs only the recording's series keys, not its
//! samples, so one plan serves both the whole recording in memory
//! ([`load`], what the HTTP tests serve) and the replay's stream
//! (`replay::stream`), which sees the samples a time slice at a time.

use super::ReplayError;
use crate::config::analysis::{Analysis, MetricKind, Queries};
use crate::config::template::QueryTemplate;
use crate::recording::{
    format_le, Arm, Recording, SeriesKey, COUNTER_ERRORS_SUFFIX, COUNTER_TOTAL_SUFFIX,
};
use crate::source::memory::MemorySource;
use crate::source::{Sample, Series};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Which recorded series answer which rendered query.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub answers: Vec<PlannedAnswer>,
    /// Recorded metric names that no query of the analysis reads.
    pub unused: Vec<String>,
    /// Series the analysis reads that the recording lacks (`metric/arm`).
    pub missing: Vec<String>,
}

/// One query's answer: recorded series (by number) with the labels they
/// carry in it, in the recording's series order.
#[derive(Debug, Clone, PartialEq)]
pub struct PlannedAnswer {
    pub query: String,
    pub series: Vec<(usize, BTreeMap<String, String>)>,
    /// Other recorded series that answer the same query, position by
    /// position (two metrics reading one query, an error rate and an error
    /// count over one counter): their samples must equal the answer's.
    pub aliases: Vec<Alias>,
}

/// A second recorded series set answering an already planned query.
#[derive(Debug, Clone, PartialEq)]
pub struct Alias {
    /// `metric/arm` of the alias, for the error.
    pub recorded: String,
    /// Recorded series, position by position with the answer's.
    pub series: Vec<usize>,
}

impl Alias {
    /// The error when the alias's samples differ from the answer's.
    pub fn differs(&self, answer: &PlannedAnswer) -> ReplayError {
        ReplayError::Invalid(format!(
            "the recorded series {} answers the rendered query {:?}, which another recorded \
             series answers with different samples",
            self.recorded, answer.query
        ))
    }
}

/// Maps recorded series (`keys`, numbered by position) to the queries of
/// `analysis` rendered with `vars`.
pub fn plan(
    keys: &[SeriesKey],
    analysis: &Analysis,
    vars: &BTreeMap<String, String>,
) -> Result<Plan, ReplayError> {
    let mut by_name: HashMap<(String, Arm), Vec<usize>> = HashMap::new();
    for (id, key) in keys.iter().enumerate() {
        by_name
            .entry((key.metric.clone(), key.arm))
            .or_default()
            .push(id);
    }
    for ids in by_name.values_mut() {
        ids.sort_by(|a, b| keys[*a].order(&keys[*b]));
    }
    let mut answers: Vec<PlannedAnswer> = Vec::new();
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
                let Some(ids) = by_name.remove(&(recorded.clone(), arm)) else {
                    missing.push(format!("{recorded}/{}", arm.as_str()));
                    continue;
                };
                used.insert(recorded.clone());
                let series = ids
                    .iter()
                    .map(|&id| Ok((id, labels(&recorded, arm, kind, &keys[id])?)))
                    .collect::<Result<Vec<_>, ReplayError>>()?;
                let at = format!("{recorded}/{}", arm.as_str());
                match answers.iter_mut().find(|a| a.query == query) {
                    Some(answer) => {
                        let alias = Alias {
                            recorded: at,
                            series: ids,
                        };
                        let same_labels = answer.series.len() == series.len()
                            && answer.series.iter().zip(&series).all(|(a, b)| a.1 == b.1);
                        if !same_labels {
                            return Err(alias.differs(answer));
                        }
                        answer.aliases.push(alias);
                    }
                    None => answers.push(PlannedAnswer {
                        query,
                        series,
                        aliases: Vec::new(),
                    }),
                }
            }
        }
    }
    let unused: BTreeSet<String> = by_name
        .into_keys()
        .map(|(m, _)| m)
        .filter(|m| !used.contains(m))
        .collect();
    Ok(Plan {
        answers,
        unused: unused.into_iter().collect(),
        missing,
    })
}

/// Whether two series of samples are the same (NaN equal to NaN: a gap
/// recorded twice is the same gap).
pub fn same_samples(a: &[Sample], b: &[Sample]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.timestamp == y.timestamp
                && (x.value.to_bits() == y.value.to_bits() || x.value.is_nan() && y.value.is_nan())
        })
}

/// A recording loaded whole for one analysis.
#[derive(Debug)]
pub struct Loaded {
    pub source: MemorySource,
    pub unused: Vec<String>,
    pub missing: Vec<String>,
    /// First and last sample time.
    pub span: (f64, f64),
}

/// Loads all of `recording` for `analysis` with template `vars`.
pub fn load(
    recording: Recording,
    analysis: &Analysis,
    vars: &BTreeMap<String, String>,
) -> Result<Loaded, ReplayError> {
    let span = recording
        .span()
        .ok_or_else(|| ReplayError::Invalid("the recording holds no samples".into()))?;
    let keys: Vec<SeriesKey> = recording
        .series
        .iter()
        .map(|s| SeriesKey {
            metric: s.metric.clone(),
            arm: s.arm,
            le: s.le,
        })
        .collect();
    let plan = plan(&keys, analysis, vars)?;
    let mut samples: Vec<Vec<Sample>> = recording.series.into_iter().map(|s| s.samples).collect();
    let mut source = MemorySource::new();
    for answer in &plan.answers {
        for alias in &answer.aliases {
            let same = answer
                .series
                .iter()
                .zip(&alias.series)
                .all(|((id, _), alias_id)| same_samples(&samples[*id], &samples[*alias_id]));
            if !same {
                return Err(alias.differs(answer));
            }
        }
        let series = answer
            .series
            .iter()
            .map(|(id, labels)| Series {
                labels: labels.clone(),
                samples: std::mem::take(&mut samples[*id]),
            })
            .collect();
        source.insert(answer.query.clone(), series);
    }
    // As the streamed source: the recording begins at its first row.
    source.set_recorded_since(span.0);
    Ok(Loaded {
        source,
        unused: plan.unused,
        missing: plan.missing,
        span,
    })
}

/// The labels a recorded series carries in its query's answer: `le` for a
/// histogram bucket, none otherwise.
fn labels(
    name: &str,
    arm: Arm,
    kind: MetricKind,
    key: &SeriesKey,
) -> Result<BTreeMap<String, String>, ReplayError> {
    let histogram = kind == MetricKind::Histogram;
    let mut labels = BTreeMap::new();
    match (histogram, key.le) {
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
    Ok(labels)
}

//! A source holding series in memory, keyed by the exact rendered query.
//!
//! Answers range queries the way Prometheus answers for raw series: the
//! samples inside the window, and an empty result for a query it does not
//! know. Replays load recordings into it; engine tests use it to drive looks
//! on exact data.
//!
//! Samples are kept sorted by time (sorted once, on insert), so a window is
//! found by two binary searches and copied out: a look costs the size of
//! its window, not of the recording. That is what lets a year of data
//! replay as thousands of short rollouts in linear time.

use super::{BoxFuture, Series, SeriesSource, SourceError, Window};
use std::collections::HashMap;

/// Series by query text.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: HashMap<String, Vec<Series>>,
    /// The earliest sample of any series: where the recording begins.
    since: Option<f64>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the answer of `query` (the rendered text, as the engine sends it).
    /// Each series' samples are sorted by time here (stable: equal
    /// timestamps keep their order).
    pub fn insert(&mut self, query: impl Into<String>, mut series: Vec<Series>) {
        for s in &mut series {
            super::sort_by_time(&mut s.samples);
            if let Some(first) = s.samples.first() {
                self.since = Some(
                    self.since
                        .map_or(first.timestamp, |t| t.min(first.timestamp)),
                );
            }
        }
        self.series.insert(query.into(), series);
    }

    /// Sets where the recording begins (by default, the earliest sample
    /// inserted), e.g. the first sample of a whole recording of which only
    /// some series are inserted.
    pub fn set_recorded_since(&mut self, since: f64) {
        self.since = Some(since);
    }

    /// The answer of `query`, if it has one.
    pub fn answer(&self, query: &str) -> Option<&[Series]> {
        self.series.get(query).map(Vec::as_slice)
    }

    /// The series of every query (for reports and spans).
    pub fn queries(&self) -> impl Iterator<Item = (&str, &[Series])> {
        self.series.iter().map(|(q, s)| (q.as_str(), s.as_slice()))
    }
}

impl SeriesSource for MemorySource {
    fn query_range<'a>(
        &'a self,
        query: &'a str,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Vec<Series>, SourceError>> {
        let result = self
            .series
            .get(query)
            .map(|all| {
                all.iter()
                    .map(|s| s.within(window))
                    .filter(|s| !s.samples.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(result)))
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn recorded_since(&self) -> Option<f64> {
        self.since
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::source::Sample;
    use std::time::Duration;

    fn series(points: &[(f64, f64)]) -> Series {
        Series {
            labels: Default::default(),
            samples: points
                .iter()
                .map(|&(timestamp, value)| Sample { timestamp, value })
                .collect(),
        }
    }

    fn window(start: f64, end: f64) -> Window {
        Window {
            start,
            end,
            step: Duration::from_secs(15),
        }
    }

    async fn answer(source: &MemorySource, query: &str, w: Window) -> Vec<Vec<f64>> {
        source
            .query_range(query, &w)
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.samples.iter().map(|p| p.timestamp).collect())
            .collect()
    }

    #[tokio::test]
    async fn windows_are_inclusive_and_match_a_linear_filter() {
        // Unsorted on insert, with a duplicate timestamp.
        let points: Vec<(f64, f64)> = [30.0, 0.0, 15.0, 45.0, 15.0, 60.0, 90.0]
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, i as f64))
            .collect();
        let mut source = MemorySource::new();
        source.insert("q", vec![series(&points)]);
        for (start, end) in [
            (0.0, 90.0),
            (15.0, 45.0),
            (14.9, 15.1),
            (16.0, 29.0),
            (-10.0, -1.0),
            (91.0, 100.0),
            (60.0, 60.0),
        ] {
            let mut expected: Vec<f64> = points
                .iter()
                .map(|p| p.0)
                .filter(|&t| t >= start && t <= end)
                .collect();
            expected.sort_by(f64::total_cmp);
            let got = answer(&source, "q", window(start, end)).await;
            if expected.is_empty() {
                assert!(got.is_empty(), "[{start}, {end}]: {got:?}");
            } else {
                assert_eq!(got, vec![expected], "[{start}, {end}]");
            }
        }
        assert!(answer(&source, "unknown", window(0.0, 90.0))
            .await
            .is_empty());
    }
}

//! A source holding series in memory, keyed by the exact rendered query.
//!
//! Answers range queries the way Prometheus answers for raw series: the
//! samples inside the window, and an empty result for a query it does not
//! know. Replays load recordings into it; engine tests use it to drive looks
//! on exact data.

use super::{BoxFuture, Series, SeriesSource, SourceError, Window};
use std::collections::HashMap;

/// Series by query text.
#[derive(Debug, Clone, Default)]
pub struct MemorySource {
    series: HashMap<String, Vec<Series>>,
}

impl MemorySource {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the answer of `query` (the rendered text, as the engine sends it).
    pub fn insert(&mut self, query: impl Into<String>, series: Vec<Series>) {
        self.series.insert(query.into(), series);
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
                    .map(|s| Series {
                        labels: s.labels.clone(),
                        samples: s
                            .samples
                            .iter()
                            .filter(|p| p.timestamp >= window.start && p.timestamp <= window.end)
                            .copied()
                            .collect(),
                    })
                    .filter(|s| !s.samples.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        Box::pin(std::future::ready(Ok(result)))
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(std::future::ready(Ok(())))
    }
}

//! Replaying a recording without holding it.
//!
//! A year of 15-second data is tens of millions of samples, but a look only
//! reads back as far as its run began (and, for a before-rollout baseline,
//! as far again). So a replay never holds the recording:
//!
//! 1. **Spill.** While the file is read ([`crate::recording::read_rows`]),
//!    each row goes into the buffer of its *time bucket* (a fixed span of
//!    at least an hour); when the buffers reach [`SPILL_BUFFER_BYTES`] they
//!    are appended to an anonymous temporary file, one block per bucket,
//!    and an index notes where each bucket's blocks are. Rows keep the
//!    file's order within a bucket. A recording in any row order (series
//!    after series, or time after time) spills the same way.
//! 2. **Plan.** The recorded series are mapped to the analysis's rendered
//!    queries ([`super::source::plan`]): this needs their keys, not their
//!    samples.
//! 3. **Walk.** Before each look the replay calls
//!    [`StreamedSource::advance`] with the look's time: the buckets up to
//!    it are read back, each sorted by time, and whenever the clock enters
//!    a new bucket, samples older than the look's [`horizon`] are dropped. The engine
//!    then queries this source as it would Prometheus.
//!
//! What is held is one horizon plus up to two buckets of samples, and while
//! reading, the spill buffers and one chunk of the file. The answers are the
//! ones the whole recording in memory gives ([`super::source::load`]): the
//! buckets partition time, a stable sort inside a bucket keeps the file's
//! order among equal timestamps as the whole-series sort does, and a
//! window reaching before what was dropped is refused (an error, never a
//! shorter answer) — the tests compare every look of every fixture.

use super::source::{plan, same_samples, PlannedAnswer};
use super::{ReplayError, Schedule};
use crate::config::analysis::{Analysis, BaselineWindow};
use crate::recording::{Arm, RowSink, SeriesIndex, SeriesKey};
use crate::source::{sort_by_time, BoxFuture, Sample, Series, SeriesSource, SourceError, Window};
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Bytes per spilled row: series number (u32), timestamp and value (f64).
const ROW_BYTES: usize = 20;
/// Bytes the spill buffers may take, over all buckets, counted by their
/// capacity, before they are written out.
pub const SPILL_BUFFER_BYTES: usize = 16 << 20;
/// The shortest bucket: shorter ones only mean more, smaller reads.
pub const MIN_BUCKET_SECONDS: f64 = 3600.0;

/// How far back from a look's time its windows can reach, in seconds: a
/// run lasts at most `looks_per_run × interval`, its window starts one
/// lookback before its first look, a before-rollout baseline reaches as
/// far again before that, and one query step is margin.
pub fn horizon(analysis: &Analysis, schedule: &Schedule) -> f64 {
    let cfg = &analysis.config;
    let run = schedule.looks_per_run() as f64 * schedule.interval.as_secs_f64()
        + cfg.lookback.as_secs_f64();
    let reach = match cfg.baseline_window {
        BaselineWindow::Same => run,
        BaselineWindow::BeforeRollout => 2.0 * run,
    };
    reach + cfg.step.as_secs_f64()
}

/// Where one bucket's rows are in the spill file.
#[derive(Debug, Clone, Copy)]
struct Block {
    offset: u64,
    rows: usize,
}

/// Spills rows by time bucket as a reader pushes them.
struct Spiller {
    series: SeriesIndex,
    bucket_seconds: f64,
    /// The bucket being filled, out of `buffers` so that consecutive rows
    /// of one bucket cost no lookup.
    current: (i64, Vec<u8>),
    buffers: HashMap<i64, Vec<u8>>,
    /// The buffers' capacity, in bytes.
    buffered_bytes: usize,
    file: File,
    written: u64,
    blocks: BTreeMap<i64, Vec<Block>>,
    span: Option<(f64, f64)>,
    /// The first write error; reported when the reading ends.
    error: Option<std::io::Error>,
}

impl Spiller {
    fn new(bucket_seconds: f64) -> Result<Spiller, ReplayError> {
        let file = tempfile::tempfile().map_err(spill_error)?;
        Ok(Spiller {
            series: SeriesIndex::default(),
            bucket_seconds,
            current: (i64::MIN, Vec::new()),
            buffers: HashMap::new(),
            buffered_bytes: 0,
            file,
            written: 0,
            blocks: BTreeMap::new(),
            span: None,
            error: None,
        })
    }

    fn flush(&mut self) {
        let current = std::mem::take(&mut self.current.1);
        if !current.is_empty() {
            self.buffers.insert(self.current.0, current);
        }
        // In bucket order, so a bucket's blocks lie close together.
        let mut buffers: Vec<(i64, Vec<u8>)> = self.buffers.drain().collect();
        buffers.sort_unstable_by_key(|(bucket, _)| *bucket);
        for (bucket, bytes) in buffers {
            if self.error.is_some() {
                break;
            }
            if let Err(e) = self.file.write_all(&bytes) {
                self.error = Some(e);
                break;
            }
            self.blocks.entry(bucket).or_default().push(Block {
                offset: self.written,
                rows: bytes.len() / ROW_BYTES,
            });
            self.written += bytes.len() as u64;
        }
        self.buffered_bytes = 0;
    }

    fn finish(mut self) -> Result<Spilled, ReplayError> {
        self.flush();
        if let Some(e) = self.error {
            return Err(spill_error(e));
        }
        Ok(Spilled {
            keys: self.series.into_keys(),
            file: self.file,
            blocks: self.blocks,
            bucket_seconds: self.bucket_seconds,
            span: self.span,
        })
    }
}

impl RowSink for Spiller {
    fn push(&mut self, metric: &str, arm: Arm, le: Option<f64>, sample: Sample) {
        let id = self.series.id(metric, arm, le) as u32;
        let bucket = bucket_of(sample.timestamp, self.bucket_seconds);
        if self.current.0 != bucket {
            let previous = std::mem::replace(
                &mut self.current,
                (bucket, self.buffers.remove(&bucket).unwrap_or_default()),
            );
            if !previous.1.is_empty() {
                self.buffers.insert(previous.0, previous.1);
            }
        }
        let bytes = &mut self.current.1;
        let capacity = bytes.capacity();
        bytes.extend_from_slice(&id.to_le_bytes());
        bytes.extend_from_slice(&sample.timestamp.to_le_bytes());
        bytes.extend_from_slice(&sample.value.to_le_bytes());
        self.buffered_bytes += bytes.capacity() - capacity;
        self.span = Some(match self.span {
            None => (sample.timestamp, sample.timestamp),
            Some((first, last)) => (first.min(sample.timestamp), last.max(sample.timestamp)),
        });
        if self.buffered_bytes >= SPILL_BUFFER_BYTES {
            self.flush();
        }
    }
}

/// The bucket of a time (saturating for absurd times: such rows share the
/// first or last bucket, which changes what is held, not what is answered).
fn bucket_of(timestamp: f64, bucket_seconds: f64) -> i64 {
    (timestamp / bucket_seconds).floor() as i64
}

fn spill_error(e: std::io::Error) -> ReplayError {
    ReplayError::Invalid(format!(
        "cannot spill the recording to a temporary file (TMPDIR): {e}"
    ))
}

/// A recording spilled by time bucket.
struct Spilled {
    keys: Vec<SeriesKey>,
    file: File,
    blocks: BTreeMap<i64, Vec<Block>>,
    bucket_seconds: f64,
    span: Option<(f64, f64)>,
}

impl Spilled {
    /// Reads bucket `bucket`'s rows into `by_series` (indexed by series
    /// number), in the file's order.
    fn read(&self, bucket: i64, by_series: &mut [Vec<Sample>]) -> Result<(), ReplayError> {
        let Some(blocks) = self.blocks.get(&bucket) else {
            return Ok(());
        };
        let mut bytes = Vec::new();
        for block in blocks {
            bytes.resize(block.rows * ROW_BYTES, 0);
            self.file
                .read_exact_at(&mut bytes, block.offset)
                .map_err(spill_error)?;
            for row in bytes.chunks_exact(ROW_BYTES) {
                let id = u32::from_le_bytes(row[0..4].try_into().expect("4 bytes")) as usize;
                let timestamp = f64::from_le_bytes(row[4..12].try_into().expect("8 bytes"));
                let value = f64::from_le_bytes(row[12..20].try_into().expect("8 bytes"));
                by_series[id].push(Sample { timestamp, value });
            }
        }
        Ok(())
    }
}

/// A recording opened for one analysis.
pub struct Streamed {
    pub source: Arc<StreamedSource>,
    /// Recorded metric names that no query of the analysis reads.
    pub unused: Vec<String>,
    /// Series the analysis reads that the recording lacks (`metric/arm`).
    pub missing: Vec<String>,
    /// First and last sample time.
    pub span: (f64, f64),
    /// Rows read.
    pub rows: u64,
}

/// Reads the recording at `path` for `analysis` with template `vars`, to be
/// walked on `schedule`.
pub fn open(
    path: &Path,
    analysis: &Analysis,
    vars: &BTreeMap<String, String>,
    schedule: &Schedule,
) -> Result<Streamed, ReplayError> {
    let horizon = horizon(analysis, schedule);
    open_in_buckets(
        path,
        analysis,
        vars,
        schedule,
        horizon.max(MIN_BUCKET_SECONDS),
    )
}

/// [`open`] with buckets of `bucket_seconds` (at least the horizon's
/// length is sensible; tests use short ones to drop data often).
pub fn open_in_buckets(
    path: &Path,
    analysis: &Analysis,
    vars: &BTreeMap<String, String>,
    schedule: &Schedule,
    bucket_seconds: f64,
) -> Result<Streamed, ReplayError> {
    schedule.check().map_err(ReplayError::Invalid)?;
    if !(bucket_seconds.is_finite() && bucket_seconds > 0.0) {
        return Err(ReplayError::Invalid(format!(
            "bucket of {bucket_seconds} s: it must be a positive number of seconds"
        )));
    }
    let mut spiller = Spiller::new(bucket_seconds)?;
    let rows = crate::recording::read_rows(path, &mut spiller)?;
    let spilled = spiller.finish()?;
    let span = spilled
        .span
        .ok_or_else(|| ReplayError::Invalid("the recording holds no samples".into()))?;
    let plan = plan(&spilled.keys, analysis, vars)?;
    let answers = plan
        .answers
        .iter()
        .map(|a| {
            a.series
                .iter()
                .map(|(_, labels)| Series {
                    labels: labels.clone(),
                    samples: Vec::new(),
                })
                .collect()
        })
        .collect();
    let by_query = plan
        .answers
        .iter()
        .enumerate()
        .map(|(i, a)| (a.query.clone(), i))
        .collect();
    let series_count = spilled.keys.len();
    let state = Held {
        schedule: schedule.clone(),
        spilled,
        plan: plan.answers,
        answers,
        by_query,
        horizon: horizon(analysis, schedule),
        loaded_through: None,
        kept_from: f64::NEG_INFINITY,
        scratch: vec![Vec::new(); series_count],
    };
    Ok(Streamed {
        source: Arc::new(StreamedSource {
            held: Mutex::new(state),
        }),
        unused: plan.unused,
        missing: plan.missing,
        span,
        rows,
    })
}

/// The engine's source during a replay: the planned answers, holding the
/// samples from one horizon before the replay's clock to the end of the
/// clock's bucket.
pub struct StreamedSource {
    held: Mutex<Held>,
}

struct Held {
    /// The schedule the horizon was computed for.
    schedule: Schedule,
    spilled: Spilled,
    plan: Vec<PlannedAnswer>,
    /// Per planned answer, its series with the samples held.
    answers: Vec<Vec<Series>>,
    by_query: HashMap<String, usize>,
    horizon: f64,
    /// The last bucket read.
    loaded_through: Option<i64>,
    /// Samples before this time were dropped.
    kept_from: f64,
    /// One bucket's samples by series number, reused.
    scratch: Vec<Vec<Sample>>,
}

impl StreamedSource {
    /// The schedule the recording was opened for: a replay on another
    /// could reach further back than what is held.
    pub fn schedule(&self) -> Schedule {
        self.held.lock().expect("stream lock").schedule.clone()
    }

    /// Moves the replay's clock to `now`: reads every bucket up to `now`'s
    /// and, if one was read, drops what no look at `now` or later reads.
    /// The clock must not go back by more than the horizon.
    pub fn advance(&self, now: f64) -> Result<(), ReplayError> {
        let mut held = self.held.lock().expect("stream lock");
        let held = &mut *held;
        let target = bucket_of(now, held.spilled.bucket_seconds);
        if held.loaded_through.is_some_and(|b| b >= target) {
            return Ok(());
        }
        let first = held.loaded_through.map_or(i64::MIN, |b| b + 1);
        let buckets: Vec<i64> = held
            .spilled
            .blocks
            .range(first..=target)
            .map(|(b, _)| *b)
            .collect();
        for bucket in buckets {
            held.load(bucket)?;
        }
        held.loaded_through = Some(target);
        let cutoff = now - held.horizon;
        if cutoff > held.kept_from {
            for series in held.answers.iter_mut().flatten() {
                let old = series.samples.partition_point(|p| p.timestamp < cutoff);
                series.samples.drain(..old);
            }
            held.kept_from = cutoff;
        }
        Ok(())
    }
}

impl Held {
    /// Appends bucket `bucket` to the answers, checking aliases.
    fn load(&mut self, bucket: i64) -> Result<(), ReplayError> {
        self.spilled.read(bucket, &mut self.scratch)?;
        for samples in &mut self.scratch {
            sort_by_time(samples);
        }
        for (answer, series) in self.plan.iter().zip(&mut self.answers) {
            for alias in &answer.aliases {
                let same = answer
                    .series
                    .iter()
                    .zip(&alias.series)
                    .all(|((id, _), a)| same_samples(&self.scratch[*id], &self.scratch[*a]));
                if !same {
                    return Err(alias.differs(answer));
                }
            }
            for ((id, _), held) in answer.series.iter().zip(series) {
                held.samples.extend_from_slice(&self.scratch[*id]);
            }
        }
        for samples in &mut self.scratch {
            samples.clear();
        }
        Ok(())
    }

    /// Whether every sample of `window` is held.
    fn covers(&self, window: &Window) -> bool {
        window.start >= self.kept_from
            && self
                .loaded_through
                .is_some_and(|b| bucket_of(window.end, self.spilled.bucket_seconds) <= b)
    }
}

impl SeriesSource for StreamedSource {
    fn query_range<'a>(
        &'a self,
        query: &'a str,
        window: &'a Window,
    ) -> BoxFuture<'a, Result<Vec<Series>, SourceError>> {
        let held = self.held.lock().expect("stream lock");
        let result = if !held.covers(window) {
            // A bug in the horizon, not in the data: refuse rather than
            // answer with part of the window.
            Err(SourceError::BadResponse(format!(
                "the replay does not hold the window {} to {} (samples from {} are held, up to \
                 the clock's bucket)",
                window.start, window.end, held.kept_from
            )))
        } else {
            Ok(held
                .by_query
                .get(query)
                .map(|&i| {
                    held.answers[i]
                        .iter()
                        .map(|s| s.within(window))
                        .filter(|s| !s.samples.is_empty())
                        .collect()
                })
                .unwrap_or_default())
        };
        Box::pin(std::future::ready(result))
    }

    fn ready(&self) -> BoxFuture<'_, Result<(), SourceError>> {
        Box::pin(std::future::ready(Ok(())))
    }

    fn recorded_since(&self) -> Option<f64> {
        self.held
            .lock()
            .expect("stream lock")
            .spilled
            .span
            .map(|s| s.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::replay::source::load;
    use std::time::Duration;
    use verdict_judges::splitmix64::SplitMix64;

    const T0: f64 = 1_700_000_000.0;

    /// Two gauges reading one query (`lat` and `lat-again`) and a counter.
    const CONFIG: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    baseline_window: BASELINE
    metrics:
      - name: lat
        kind: gauge
        canary: 'lat{app="c"}'
        baseline: 'lat{app="b"}'
      - name: lat-again
        kind: gauge
        canary: 'lat{app="c"}'
        baseline: 'lat{app="b"}'
      - name: errors
        kind: counter
        canary: {errors: 'e{app="c"}', total: 't{app="c"}'}
        baseline: {errors: 'e{app="b"}', total: 't{app="b"}'}
"#;

    fn config(baseline: &str) -> Config {
        crate::config::load_str(
            Path::new("v.yaml"),
            &CONFIG.replace("BASELINE", baseline),
            Vec::new(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn schedule() -> Schedule {
        Schedule {
            interval: Duration::from_secs(60),
            weights: vec![10.0, 50.0],
            step_every: Duration::from_secs(180),
        }
    }

    /// Three hours of 15 s rows in shuffled order, with NaN values, rows
    /// repeating a timestamp, and `lat-again` a copy of `lat` (unless
    /// `alias_differs_at`, where one of its values differs).
    fn write_csv(path: &Path, alias_differs_at: Option<usize>) {
        let mut rng = SplitMix64::new(7);
        let mut rows = Vec::new();
        let mut repeats = Vec::new();
        for i in 0..720usize {
            let t = T0 + 15.0 * i as f64;
            for arm in ["baseline", "canary"] {
                let value = if i % 97 == 5 {
                    "NaN".to_string()
                } else {
                    format!("{}", rng.next_open01())
                };
                rows.push(format!("{t},lat,{arm},{value}"));
                let copy = if alias_differs_at == Some(i) && arm == "canary" {
                    "42".to_string()
                } else {
                    value
                };
                rows.push(format!("{t},lat-again,{arm},{copy}"));
                rows.push(format!("{t},errors:errors,{arm},{}", i / 10));
                rows.push(format!("{t},errors:total,{arm},{}", i * 10));
                if i % 50 == 0 {
                    // A second sample at the same time, after the first
                    // in the file: both reads must keep that order.
                    repeats.push(format!("{t},lat,{arm},{}", 1000 + i));
                    repeats.push(format!("{t},lat-again,{arm},{}", 1000 + i));
                }
            }
        }
        // Shuffle the rows (Fisher-Yates), then add the repeats.
        for i in (1..rows.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            rows.swap(i, j);
        }
        rows.extend(repeats);
        let mut text = String::from("timestamp,metric,arm,value\n");
        for row in rows {
            text.push_str(&row);
            text.push('\n');
        }
        std::fs::write(path, text).unwrap();
    }

    /// A query's answer with values as bits, so NaN equals NaN.
    async fn answer(
        source: &dyn SeriesSource,
        query: &str,
        window: &Window,
    ) -> Vec<(BTreeMap<String, String>, Vec<(f64, u64)>)> {
        let series = source.query_range(query, window).await.unwrap();
        series
            .into_iter()
            .map(|s| {
                let points = s
                    .samples
                    .iter()
                    .map(|p| (p.timestamp, p.value.to_bits()))
                    .collect();
                (s.labels, points)
            })
            .collect()
    }

    #[tokio::test]
    async fn windows_equal_the_whole_recording_as_the_clock_advances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_csv(&path, None);
        for baseline in ["same", "before-rollout"] {
            let config = config(baseline);
            let analysis = &config.analyses["web"];
            let vars = BTreeMap::new();
            let whole = load(crate::recording::read(&path).unwrap(), analysis, &vars).unwrap();
            let horizon = horizon(analysis, &schedule());
            for bucket in [40.0, 300.0, MIN_BUCKET_SECONDS] {
                let streamed = open_in_buckets(&path, analysis, &vars, &schedule(), bucket)
                    .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(streamed.span, whole.span);
                assert_eq!(streamed.rows, 720 * 2 * 4 + 15 * 2 * 2);
                assert_eq!(streamed.unused, whole.unused);
                let source = streamed.source;
                let mut now = T0;
                while now < T0 + 3.0 * 3600.0 {
                    source.advance(now).unwrap();
                    for (query, _) in whole.source.queries() {
                        for back in [0.0, 60.0, horizon / 2.0, horizon] {
                            let window = Window {
                                start: now - back,
                                end: now,
                                step: Duration::from_secs(15),
                            };
                            assert_eq!(
                                answer(source.as_ref(), query, &window).await,
                                answer(&whole.source, query, &window).await,
                                "{baseline}, bucket {bucket}: {query} over {back} s at {now}"
                            );
                        }
                    }
                    now += 37.0;
                }
                // Before the horizon is refused once the clock has moved on.
                source.advance(now + bucket.max(horizon) * 2.0).unwrap();
                let old = Window {
                    start: now - horizon,
                    end: now,
                    step: Duration::from_secs(15),
                };
                let e = source
                    .query_range("lat{app=\"c\"}", &old)
                    .await
                    .unwrap_err();
                assert!(e.to_string().contains("does not hold the window"), "{e}");
            }
        }
    }

    #[tokio::test]
    async fn an_alias_that_differs_is_refused_like_the_whole_recording_refuses_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_csv(&path, Some(400));
        let config = config("same");
        let analysis = &config.analyses["web"];
        let vars = BTreeMap::new();
        let whole = load(crate::recording::read(&path).unwrap(), analysis, &vars).unwrap_err();
        let streamed = open_in_buckets(&path, analysis, &vars, &schedule(), 300.0).unwrap();
        // Found when the clock reaches the bucket holding row 400 (100 min).
        streamed.source.advance(T0 + 90.0 * 60.0).unwrap();
        let e = streamed.source.advance(T0 + 110.0 * 60.0).unwrap_err();
        assert_eq!(e, whole);
        assert!(e.to_string().contains("lat-again/canary"), "{e}");
    }

    #[tokio::test]
    async fn a_replay_on_another_schedule_than_the_opening_one_is_refused() {
        // The horizon was sized for the opening schedule: a longer run
        // would reach back past what is held.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("r.csv");
        write_csv(&path, None);
        let config = config("same");
        let streamed = open(
            &path,
            &config.analyses["web"],
            &BTreeMap::new(),
            &schedule(),
        )
        .unwrap();
        let replayer = crate::replay::Replayer::new(config.analyses.clone(), streamed.source);
        let spec = crate::replay::ReplaySpec {
            name: "r".into(),
            analysis: "web".into(),
            vars: BTreeMap::new(),
            schedule: Schedule {
                weights: vec![10.0, 20.0, 50.0],
                ..schedule()
            },
            start: streamed.span.0,
            end: streamed.span.1,
            max_runs: None,
        };
        let mut looks = 0;
        let e = crate::replay::replay(&replayer, &spec, |_, _| looks += 1)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("another schedule"), "{e}");
        assert_eq!(looks, 0);
    }

    #[test]
    fn an_empty_or_unreadable_recording_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let config = config("same");
        let analysis = &config.analyses["web"];
        let path = dir.path().join("empty.csv");
        std::fs::write(&path, "timestamp,metric,arm,value\n").unwrap();
        let e = open(&path, analysis, &BTreeMap::new(), &schedule())
            .err()
            .unwrap();
        assert!(e.to_string().contains("empty.csv"), "{e}");
        let e = open(
            &dir.path().join("none.csv"),
            analysis,
            &BTreeMap::new(),
            &schedule(),
        )
        .err()
        .unwrap();
        assert!(e.to_string().contains("none.csv"), "{e}");
    }

    #[test]
    fn the_horizon_covers_a_run_and_a_before_rollout_baseline() {
        let s = schedule();
        // 6 looks a minute apart, 1 m lookback, 15 s step.
        assert_eq!(
            horizon(&config("same").analyses["web"], &s),
            7.0 * 60.0 + 15.0
        );
        assert_eq!(
            horizon(&config("before-rollout").analyses["web"], &s),
            14.0 * 60.0 + 15.0
        );
    }
}

//! Counter and histogram increments from raw series.
//!
//! The count-based judges (proportions, Poisson rates, bucket-label tests)
//! need *how many events happened* in a window, per arm, as integers. The
//! obvious PromQL answer, `increase(x[w])`, is the wrong one here:
//! `increase()` extrapolates the first and last samples to the window edges
//! and so returns non-integers that are systematically scaled (see the
//! research notes, `statistics.md` section 1). Instead the sources fetch the
//! raw counter values (a range query of the bare counter, evaluated every
//! `step`) and this module takes differences itself:
//!
//! * consecutive differences are summed;
//! * a *drop* between consecutive samples is a counter reset (the process
//!   restarted), and the new value is counted from 0, exactly as Prometheus'
//!   own `increase()` does before it extrapolates;
//! * NaN and ±inf samples are skipped: a counter cannot legitimately hold
//!   them, and the engine treats NaN as "no data".
//!
//! A reset is only visible if a sample lands between the restart and the
//! moment the new counter climbs past the old value, so query with a `step`
//! no longer than the scrape interval when restarts matter.
//!
//! Resets must be detected **per process** (per pod series) *before*
//! aggregating: `sum(counter)` across pods drops whenever one pod restarts and
//! would be misread as a reset of the whole sum. [`sum_counter_increase`] and
//! [`histogram_increments`] therefore accept one series per pod and add the
//! per-series increments; feeding them an already-summed series also works
//! when nothing restarts.
//!
//! ## Series that begin during the window
//!
//! Prometheus has no series for a labelled counter until it first
//! increments, and a new pod's series (a canary that just started) begins
//! when the pod is first scraped. Such a counter started at 0, so its first
//! value *is* an increment: a series that [began during the
//! window](began_in_window) counts its first usable value from 0. A series
//! that was already there when the window started counts only what it
//! gained inside the window; its first value is the baseline. That is one
//! rule, [`began_in_window`], used by counters and histogram buckets alike.
//!
//! Few samples are data, not an error: a series that began with one sample
//! inside the window increased by that sample's value; one that was there
//! all along with one sample increased by 0; a bucket series with no usable
//! sample (only NaN) has no increments. Only input that cannot be read as a
//! histogram at all is an [`IncrementError`]: a series without `le`, an
//! unparsable `le`, duplicate series, groups whose buckets do not pair,
//! increments that are not cumulative beyond scrape skew, or observations
//! without a `+Inf` bucket to hold them.

use std::collections::BTreeMap;

use super::{Sample, Series, Window};

/// The label that carries a classic histogram bucket's upper bound.
pub const LE_LABEL: &str = "le";

/// Why series could not be turned into increments.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum IncrementError {
    /// A histogram series has no `le` label, so it is not a bucket series
    /// (typically the query selected `_sum` or `_count` as well).
    #[error("histogram series without an `le` label: {labels}")]
    MissingLe { labels: String },
    /// An `le` label value is not a number (nor `+Inf`).
    #[error("histogram bucket has an unparsable `le` label {value:?}")]
    BadLe { value: String },
    /// Two series have the same labels, including `le`.
    #[error("duplicate histogram series for le={le} with labels {labels}")]
    DuplicateSeries { le: f64, labels: String },
    /// The series with the same non-`le` labels do not all have the same set
    /// of `le` values, so their buckets cannot be paired into one histogram.
    #[error("histogram series do not pair: labels {labels} have buckets {have:?}, expected {expected:?}")]
    UnpairedBuckets {
        labels: String,
        have: Vec<f64>,
        expected: Vec<f64>,
    },
    /// No `le="+Inf"` bucket while the buckets have increments: the
    /// observations above the largest finite bound would be silently lost.
    #[error("histogram has no le=\"+Inf\" bucket")]
    MissingInfBucket,
    /// A cumulative bucket's increase is clearly smaller than the previous
    /// (lower) bucket's, beyond what scrape skew explains: the input is not a
    /// cumulative histogram.
    #[error("histogram is not cumulative: bucket le={le} increased by {upper}, below le={prev_le} which increased by {lower}")]
    NotCumulative {
        le: f64,
        upper: f64,
        prev_le: f64,
        lower: f64,
    },
    /// A value that should be an event count is NaN, infinite, or clearly
    /// negative.
    #[error("not a count: {value}")]
    NotACount { value: f64 },
}

/// One bucket of a histogram's increments over a window: the number of
/// observations `x` with `previous le < x <= le` (non-cumulative).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    /// Upper bound, `f64::INFINITY` for the `+Inf` bucket.
    pub le: f64,
    /// Observations that fell into this bucket during the window.
    pub increase: f64,
}

/// A sample a counter can hold: finite (NaN and ±inf are skipped).
fn usable(samples: &[Sample]) -> impl Iterator<Item = &Sample> {
    samples.iter().filter(|s| s.value.is_finite())
}

/// How far apart two timestamps may be and still be the same instant:
/// Prometheus stamps samples to the millisecond.
const SAME_INSTANT: f64 = 1e-3;

/// Whether a series began during `window`, so that its counter started at 0
/// and its first value is an increment: **the** rule for series that appear
/// mid-window (a new pod, a labelled counter's first increment, a bucket
/// series first exported), shared by counters and histograms.
///
/// A series that already existed at the window start has a sample within one
/// sampling interval of the start: a Prometheus range query evaluates at
/// the window start (the source rounds it up to a whole second) and finds
/// the series there through its lookback; a recording holds the series'
/// samples every interval, so the first one in the window is less than an
/// interval after the start. So a series began during the window when its
/// first sample (of any value: a NaN sample shows the series existed) is at
/// least one interval after the window start, the interval being the larger
/// of the window's step and the gap between the series' first two samples
/// (a recording sampled more coarsely than the step).
///
/// The rule errs on the side of not counting: a series that began within the
/// first interval of the window looks as if it had been there (its first
/// value is lost, as `increase()` would lose it), and a series whose samples
/// stop for longer than the lookback (5 min) and then resume looks new.
pub fn began_in_window(samples: &[Sample], window: &Window) -> bool {
    let Some(first) = samples.first() else {
        return false;
    };
    let gap = samples
        .get(1)
        .map_or(0.0, |second| second.timestamp - first.timestamp);
    let interval = window.step.as_secs_f64().max(gap);
    interval > 0.0 && first.timestamp - window.start >= interval - SAME_INSTANT
}

/// The increment between two consecutive counter values, treating a drop as
/// a reset to 0 followed by counting up to `cur`.
pub fn step_increase(prev: f64, cur: f64) -> f64 {
    if cur >= prev {
        cur - prev
    } else {
        cur
    }
}

/// How much a counter increased in `window` over its samples there: the sum
/// of the differences between consecutive usable samples, where a drop is a
/// reset and the new value counts from 0, plus the first usable value when
/// the series [began during the window](began_in_window).
///
/// Samples must be in time order (as range queries return them). Returns
/// `None` when there is no usable (finite) sample at all, which is "no
/// data", not zero. One usable sample is data: its value if the series
/// began during the window, else 0.
pub fn counter_increase(samples: &[Sample], window: &Window) -> Option<f64> {
    let steps = counter_increments_per_step(samples, window);
    usable(samples)
        .next()
        .map(|_| steps.iter().map(|s| s.value).sum())
}

/// The counter's increment in each step, stamped with the later sample's
/// timestamp: one entry per pair of consecutive usable samples, preceded by
/// the first usable sample itself (counted from 0) when the series began
/// during the window, with the same reset and NaN rules as
/// [`counter_increase`]. Summing the values gives [`counter_increase`].
/// Useful for sequential tests that look at every step.
pub fn counter_increments_per_step(samples: &[Sample], window: &Window) -> Vec<Sample> {
    let mut out = Vec::new();
    let mut it = usable(samples);
    let Some(first) = it.next() else {
        return out;
    };
    if began_in_window(samples, window) {
        out.push(Sample {
            timestamp: first.timestamp,
            value: step_increase(0.0, first.value),
        });
    }
    let mut prev = first.value;
    for s in it {
        out.push(Sample {
            timestamp: s.timestamp,
            value: step_increase(prev, s.value),
        });
        prev = s.value;
    }
    out
}

/// The total increase in `window` of several counter series (e.g. one per
/// pod, some of which may begin during the window), each with its own reset
/// detection. Series without a usable sample contribute nothing; `None` when
/// no series has one.
pub fn sum_counter_increase(series: &[Series], window: &Window) -> Option<f64> {
    series
        .iter()
        .filter_map(|s| counter_increase(&s.samples, window))
        .fold(None, |acc, x| Some(acc.unwrap_or(0.0) + x))
}

/// Parses an `le` label as Prometheus writes it (`"0.25"`, `"1e+06"`, `"+Inf"`).
pub fn parse_le(value: &str) -> Result<f64, IncrementError> {
    let bad = || IncrementError::BadLe {
        value: value.to_owned(),
    };
    let le = crate::json::parse_special(value)
        .or_else(|| value.trim().parse::<f64>().ok())
        .ok_or_else(bad)?;
    if le.is_nan() {
        return Err(bad());
    }
    Ok(le)
}

fn format_labels(labels: &BTreeMap<String, String>) -> String {
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{{{}}}", inner.join(", "))
}

/// Per-bucket (non-cumulative) increments of a classic histogram over the
/// window, sorted by `le`.
///
/// `series` are the `_bucket` series of one histogram for one arm: either one
/// per `le` (an aggregated query such as `sum by (le) (...)`) or one per `le`
/// *and* pod. Series are grouped by their labels other than `le`; every group
/// must carry the same set of `le` values (otherwise [`IncrementError::UnpairedBuckets`]),
/// each group's buckets get their own counter-reset handling, and the groups
/// are then added up per `le`. Each bucket series is a counter as
/// [`counter_increase`] reads it over `window`: a bucket series (or a pod's
/// whole histogram) that began during the window counts its first value from
/// 0, one with a single sample is data, and one with no usable sample has no
/// increments. The `+Inf` bucket is required once any bucket has increments.
///
/// Cumulative increments are turned into per-bucket counts by differencing
/// neighbouring bounds. Buckets of one scrape are consistent, but series can
/// be sampled at slightly different instants (different scrapes, staleness,
/// aggregation over pods that come and go), so a higher bucket can come out a
/// little *below* a lower one. Such negative differences are clamped to 0 when
/// they are within `1 + 1%` of the lower bucket's increase; larger ones mean
/// the input is not cumulative and give [`IncrementError::NotCumulative`].
///
/// Empty input gives an empty result (the query matched nothing); the caller
/// decides what "no data" means.
pub fn histogram_increments(
    series: &[Series],
    window: &Window,
) -> Result<Vec<Bucket>, IncrementError> {
    if series.is_empty() {
        return Ok(Vec::new());
    }
    // One group per label set without `le` (one per pod, or a single group
    // for an aggregated query), holding that group's buckets.
    type Buckets<'a> = Vec<(f64, &'a [Sample])>;
    let mut groups: BTreeMap<BTreeMap<String, String>, Buckets> = BTreeMap::new();
    for s in series {
        let mut rest = s.labels.clone();
        let le_text = rest
            .remove(LE_LABEL)
            .ok_or_else(|| IncrementError::MissingLe {
                labels: format_labels(&s.labels),
            })?;
        let le = parse_le(&le_text)?;
        let buckets = groups.entry(rest).or_default();
        if buckets.iter().any(|(l, _)| *l == le) {
            return Err(IncrementError::DuplicateSeries {
                le,
                labels: format_labels(&s.labels),
            });
        }
        buckets.push((le, s.samples.as_slice()));
    }

    let mut les_of_first: Option<Vec<f64>> = None;
    let mut cumulative: Vec<(f64, f64)> = Vec::new();
    for (labels, mut buckets) in groups {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        let les: Vec<f64> = buckets.iter().map(|(le, _)| *le).collect();
        match &les_of_first {
            None => {
                cumulative = les.iter().map(|&le| (le, 0.0)).collect();
                les_of_first = Some(les);
            }
            Some(expected) if *expected != les => {
                return Err(IncrementError::UnpairedBuckets {
                    labels: format_labels(&labels),
                    have: les,
                    expected: expected.clone(),
                });
            }
            Some(_) => {}
        }
        for (slot, (_, samples)) in cumulative.iter_mut().zip(&buckets) {
            // No usable sample at all: nothing was counted in this bucket.
            slot.1 += counter_increase(samples, window).unwrap_or(0.0);
        }
    }
    if cumulative
        .last()
        .is_some_and(|(le, _)| *le != f64::INFINITY)
        && cumulative.iter().any(|(_, inc)| *inc != 0.0)
    {
        return Err(IncrementError::MissingInfBucket);
    }

    let mut out = Vec::with_capacity(cumulative.len());
    let mut prev: Option<(f64, f64)> = None;
    for &(le, cum) in &cumulative {
        let increase = match prev {
            None => cum,
            Some((prev_le, lower)) => {
                let diff = cum - lower;
                if diff >= 0.0 {
                    diff
                } else if -diff <= 1.0 + 0.01 * lower.abs() {
                    // Scrape skew, not data: see the function docs.
                    0.0
                } else {
                    return Err(IncrementError::NotCumulative {
                        le,
                        upper: cum,
                        prev_le,
                        lower,
                    });
                }
            }
        };
        out.push(Bucket { le, increase });
        // Difference against the larger of the two so that one skewed bucket
        // does not inflate the next one.
        prev = Some((le, prev.map_or(cum, |(_, lower)| cum.max(lower))));
    }
    Ok(out)
}

/// Rounds an increment to an integer event count for judges that need
/// integers.
///
/// Increments of raw counters are already whole numbers (exact in f64 up to
/// 2^53); rounding only removes floating-point noise, e.g. from sums over
/// pods, or the fractional part of counters that are themselves computed.
/// Rounding is to the nearest integer, halves away from zero (`f64::round`),
/// which is unbiased enough for counts this large and keeps 0.5 → 1.
/// Tiny negative values (down to -0.5) round to 0; NaN, ±inf and anything
/// more negative are [`IncrementError::NotACount`].
pub fn to_count(value: f64) -> Result<u64, IncrementError> {
    if !value.is_finite() || value < -0.5 || value >= u64::MAX as f64 {
        return Err(IncrementError::NotACount { value });
    }
    // In range and finite, so the cast is exact after rounding.
    Ok(value.round().max(0.0) as u64)
}

/// [`to_count`] for every bucket, in the same order.
pub fn bucket_counts(buckets: &[Bucket]) -> Result<Vec<u64>, IncrementError> {
    buckets.iter().map(|b| to_count(b.increase)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The window the test samples start at: every series in it was there
    /// from the start, unless a test shifts it.
    const W: Window = Window {
        start: 1000.0,
        end: 1000.0 + 30.0 * 10.0,
        step: Duration::from_secs(30),
    };

    fn samples(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .enumerate()
            .map(|(i, &value)| Sample {
                timestamp: 1000.0 + 30.0 * i as f64,
                value,
            })
            .collect()
    }

    fn series(labels: &[(&str, &str)], values: &[f64]) -> Series {
        Series {
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            samples: samples(values),
        }
    }

    #[test]
    fn increase_is_last_minus_first_without_resets() {
        assert_eq!(
            counter_increase(&samples(&[10.0, 12.0, 12.0, 20.0]), &W),
            Some(10.0)
        );
    }

    #[test]
    fn a_drop_is_a_reset_counted_from_zero() {
        // 10 -> 15 (+5), reset, 0..3 (+3), 3 -> 7 (+4)
        assert_eq!(
            counter_increase(&samples(&[10.0, 15.0, 3.0, 7.0]), &W),
            Some(12.0)
        );
        // reset straight to 0
        assert_eq!(counter_increase(&samples(&[5.0, 0.0, 2.0]), &W), Some(2.0));
    }

    #[test]
    fn non_finite_samples_are_skipped() {
        let s = samples(&[f64::NAN, 1.0, f64::NAN, 4.0, f64::INFINITY, 6.0]);
        assert_eq!(counter_increase(&s, &W), Some(5.0));
    }

    #[test]
    fn no_usable_sample_is_no_data_and_one_is_data() {
        assert_eq!(counter_increase(&[], &W), None);
        assert_eq!(counter_increase(&samples(&[f64::NAN, f64::NAN]), &W), None);
        // There at the window start: one sample shows no increase.
        assert_eq!(counter_increase(&samples(&[3.0]), &W), Some(0.0));
        assert_eq!(counter_increase(&samples(&[3.0, f64::NAN]), &W), Some(0.0));
        assert_eq!(counter_increase(&samples(&[3.0, 3.0]), &W), Some(0.0));
    }

    /// `values` every 30 s from `offset` seconds after the window start.
    fn from(offset: f64, values: &[f64]) -> Vec<Sample> {
        let mut s = samples(values);
        for p in &mut s {
            p.timestamp += offset;
        }
        s
    }

    #[test]
    fn began_in_window_is_a_first_sample_an_interval_after_the_start() {
        assert!(!began_in_window(&[], &W));
        // At the start (Prometheus found it through its lookback).
        assert!(!began_in_window(&from(0.0, &[1.0, 2.0]), &W));
        // A recording's sample less than an interval after the start.
        assert!(!began_in_window(&from(29.0, &[1.0, 2.0]), &W));
        // One step or more after the start: it was not there before.
        assert!(began_in_window(&from(30.0, &[1.0, 2.0]), &W));
        assert!(began_in_window(&from(29.9995, &[1.0]), &W));
        assert!(began_in_window(&from(90.0, &[1.0]), &W));
        // Sampled every 60 s, coarser than the step: 45 s after the start
        // is still within its own interval, so it may have been there.
        let coarse = [
            Sample {
                timestamp: 1045.0,
                value: 1.0,
            },
            Sample {
                timestamp: 1105.0,
                value: 2.0,
            },
        ];
        assert!(!began_in_window(&coarse, &W));
        // A NaN first sample shows the series existed.
        assert!(began_in_window(&from(60.0, &[f64::NAN, 4.0]), &W));
        assert!(!began_in_window(&from(0.0, &[f64::NAN, 4.0]), &W));
    }

    #[test]
    fn a_series_that_began_in_the_window_counts_its_first_value() {
        // A new pod's counter, first scraped two steps into the window.
        assert_eq!(
            counter_increase(&from(60.0, &[2.0, 5.0, 9.0]), &W),
            Some(9.0)
        );
        // The same values from the window start: 2 was there before.
        assert_eq!(
            counter_increase(&from(0.0, &[2.0, 5.0, 9.0]), &W),
            Some(7.0)
        );
        // A single sample inside the window, after the start: the first look
        // after a canary started, or a labelled counter's first increment.
        assert_eq!(counter_increase(&from(270.0, &[4.0]), &W), Some(4.0));
        // Only NaN, wherever it begins: no data.
        assert_eq!(counter_increase(&from(60.0, &[f64::NAN]), &W), None);
        // NaN first, then a value: the series began at the NaN, from 0.
        assert_eq!(
            counter_increase(&from(60.0, &[f64::NAN, 3.0, 4.0]), &W),
            Some(4.0)
        );
        // A reset right after appearing: 5 from 0, reset, 2 from 0, +2.
        assert_eq!(
            counter_increase(&from(60.0, &[5.0, 2.0, 4.0]), &W),
            Some(9.0)
        );
        let steps = counter_increments_per_step(&from(60.0, &[5.0, 2.0, 4.0]), &W);
        let values: Vec<f64> = steps.iter().map(|s| s.value).collect();
        assert_eq!(values, vec![5.0, 2.0, 2.0]);
        assert_eq!(steps[0].timestamp, 1060.0);
    }

    #[test]
    fn per_step_increments_sum_to_the_increase() {
        let s = samples(&[10.0, 15.0, f64::NAN, 3.0, 7.0]);
        let steps = counter_increments_per_step(&s, &W);
        let values: Vec<f64> = steps.iter().map(|s| s.value).collect();
        assert_eq!(values, vec![5.0, 3.0, 4.0]);
        assert_eq!(steps[1].timestamp, 1090.0);
        assert_eq!(
            values.iter().sum::<f64>(),
            counter_increase(&s, &W).unwrap()
        );
        assert!(counter_increments_per_step(&samples(&[1.0]), &W).is_empty());
    }

    #[test]
    fn sum_over_pods_detects_resets_per_pod() {
        let pods = [
            series(&[("pod", "a")], &[100.0, 110.0, 5.0]), // +10, reset +5
            series(&[("pod", "b")], &[50.0, 60.0, 70.0]),  // +20
            series(&[("pod", "c")], &[7.0]),               // +0
            series(&[("pod", "d")], &[f64::NAN]),          // no data
        ];
        assert_eq!(sum_counter_increase(&pods, &W), Some(35.0));
        assert_eq!(sum_counter_increase(&pods[2..], &W), Some(0.0));
        assert_eq!(sum_counter_increase(&pods[3..], &W), None);
        // A pod that started mid-window: its first value counts.
        let started = Series {
            labels: Default::default(),
            samples: from(120.0, &[3.0, 8.0]),
        };
        assert_eq!(
            sum_counter_increase(&[pods[0].clone(), started], &W),
            Some(15.0 + 8.0)
        );
    }

    #[test]
    fn parses_le_spellings() {
        assert_eq!(parse_le("0.25").unwrap(), 0.25);
        assert_eq!(parse_le("1e+06").unwrap(), 1e6);
        assert_eq!(parse_le("+Inf").unwrap(), f64::INFINITY);
        assert!(matches!(
            parse_le("fast"),
            Err(IncrementError::BadLe { .. })
        ));
        assert!(matches!(parse_le("NaN"), Err(IncrementError::BadLe { .. })));
    }

    #[test]
    fn histogram_cumulative_to_per_bucket() {
        let s = [
            series(&[("le", "+Inf")], &[10.0, 30.0]),
            series(&[("le", "0.1")], &[2.0, 7.0]),
            series(&[("le", "0.5")], &[8.0, 25.0]),
        ];
        let b = histogram_increments(&s, &W).unwrap();
        assert_eq!(
            b,
            vec![
                Bucket {
                    le: 0.1,
                    increase: 5.0
                },
                Bucket {
                    le: 0.5,
                    increase: 12.0
                },
                Bucket {
                    le: f64::INFINITY,
                    increase: 3.0
                },
            ]
        );
        assert_eq!(bucket_counts(&b).unwrap(), vec![5, 12, 3]);
    }

    #[test]
    fn histogram_sums_pods_with_their_own_resets() {
        let s = [
            series(&[("le", "1"), ("pod", "a")], &[5.0, 9.0, 1.0]), // +4 +1
            series(&[("le", "+Inf"), ("pod", "a")], &[6.0, 12.0, 2.0]), // +6 +2
            series(&[("le", "1"), ("pod", "b")], &[0.0, 3.0, 3.0]), // +3
            series(&[("le", "+Inf"), ("pod", "b")], &[0.0, 3.0, 4.0]), // +4
        ];
        let b = histogram_increments(&s, &W).unwrap();
        assert_eq!(
            b[0],
            Bucket {
                le: 1.0,
                increase: 8.0
            }
        );
        assert_eq!(
            b[1],
            Bucket {
                le: f64::INFINITY,
                increase: 4.0
            }
        );
    }

    #[test]
    fn histogram_clamps_small_skew_and_rejects_non_cumulative() {
        let skewed = [
            series(&[("le", "1")], &[0.0, 100.0]),
            series(&[("le", "+Inf")], &[0.0, 99.5]),
        ];
        let b = histogram_increments(&skewed, &W).unwrap();
        assert_eq!(b[1].increase, 0.0);

        let broken = [
            series(&[("le", "1")], &[0.0, 100.0]),
            series(&[("le", "+Inf")], &[0.0, 10.0]),
        ];
        assert!(matches!(
            histogram_increments(&broken, &W),
            Err(IncrementError::NotCumulative { .. })
        ));
    }

    #[test]
    fn histogram_label_errors() {
        let no_le = [series(&[("pod", "a")], &[0.0, 1.0])];
        assert!(matches!(
            histogram_increments(&no_le, &W),
            Err(IncrementError::MissingLe { .. })
        ));

        let no_inf = [series(&[("le", "1")], &[0.0, 1.0])];
        assert_eq!(
            histogram_increments(&no_inf, &W),
            Err(IncrementError::MissingInfBucket)
        );

        let dup = [
            series(&[("le", "1")], &[0.0, 1.0]),
            series(&[("le", "1.0")], &[0.0, 1.0]),
        ];
        assert!(matches!(
            histogram_increments(&dup, &W),
            Err(IncrementError::DuplicateSeries { .. })
        ));

        let unpaired = [
            series(&[("le", "1"), ("pod", "a")], &[0.0, 1.0]),
            series(&[("le", "+Inf"), ("pod", "a")], &[0.0, 1.0]),
            series(&[("le", "+Inf"), ("pod", "b")], &[0.0, 1.0]),
        ];
        assert!(matches!(
            histogram_increments(&unpaired, &W),
            Err(IncrementError::UnpairedBuckets { .. })
        ));

        // Without +Inf but nothing counted: no data rather than an error.
        let quiet = [series(&[("le", "1")], &[3.0, 3.0])];
        assert_eq!(
            histogram_increments(&quiet, &W),
            Ok(vec![Bucket {
                le: 1.0,
                increase: 0.0
            }])
        );

        assert_eq!(histogram_increments(&[], &W), Ok(vec![]));
    }

    fn series_from(le: &str, offset: f64, values: &[f64]) -> Series {
        Series {
            labels: [(LE_LABEL.to_string(), le.to_string())].into(),
            samples: from(offset, values),
        }
    }

    #[test]
    fn few_samples_and_buckets_that_begin_mid_window_are_data() {
        // The first look after the canary started: one sample per bucket,
        // on the window's last step.
        let first_look = [
            series_from("0.005", 270.0, &[1.0]),
            series_from("0.1", 270.0, &[4.0]),
            series_from("+Inf", 270.0, &[5.0]),
        ];
        let b = histogram_increments(&first_look, &W).unwrap();
        assert_eq!(bucket_counts(&b).unwrap(), vec![1, 3, 1]);

        // A bucket series exported only after some minutes, beside buckets
        // there from the start.
        let climb = [10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 24.0];
        let late = [
            series_from("0.005", 180.0, &[2.0, 3.0]), // began: +3
            series_from("0.1", 0.0, &climb),          // +14
            series_from(
                "+Inf",
                0.0,
                &[10.0, 12.0, 14.0, 16.0, 18.0, 20.0, 22.0, 30.0],
            ), // +20
        ];
        let b = histogram_increments(&late, &W).unwrap();
        let les: Vec<f64> = b.iter().map(|b| b.le).collect();
        assert_eq!(les, vec![0.005, 0.1, f64::INFINITY]);
        assert_eq!(bucket_counts(&b).unwrap(), vec![3, 11, 6]);

        // A bucket with only NaN between counted ones cannot be read as a
        // cumulative histogram.
        let hole = [
            series_from("0.1", 0.0, &climb),
            series_from("0.5", 0.0, &[f64::NAN; 8]),
            series_from("+Inf", 0.0, &climb),
        ];
        assert!(matches!(
            histogram_increments(&hole, &W),
            Err(IncrementError::NotCumulative { .. })
        ));

        // A reset right after a bucket appeared.
        let reset = [
            series_from("1", 60.0, &[5.0, 2.0, 4.0]),    // 5 + 2 + 2
            series_from("+Inf", 60.0, &[6.0, 2.0, 5.0]), // 6 + 2 + 3
        ];
        let b = histogram_increments(&reset, &W).unwrap();
        assert_eq!(bucket_counts(&b).unwrap(), vec![9, 2]);

        // Only NaN everywhere: all zero, which the caller reads as no data.
        let nan = [
            series_from("1", 0.0, &[f64::NAN, f64::NAN]),
            series_from("+Inf", 60.0, &[f64::NAN]),
        ];
        let b = histogram_increments(&nan, &W).unwrap();
        assert_eq!(bucket_counts(&b).unwrap(), vec![0, 0]);
    }

    #[test]
    fn counts_round_to_nearest_and_reject_non_counts() {
        assert_eq!(to_count(3.0).unwrap(), 3);
        assert_eq!(to_count(2.9999999).unwrap(), 3);
        assert_eq!(to_count(2.5).unwrap(), 3);
        assert_eq!(to_count(-1e-9).unwrap(), 0);
        assert!(to_count(-1.0).is_err());
        assert!(to_count(f64::NAN).is_err());
        assert!(to_count(f64::INFINITY).is_err());
    }
}

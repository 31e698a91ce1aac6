//! One recording's traffic: per-request draws for a canary and its baseline,
//! accumulated into the counters and gauges Prometheus would hold.
//!
//! Every 15 s scrape interval `(t − 15, t]`:
//!
//! 1. The expected request rate of the whole service is
//!    `rps · (1 + 0.35 sin(2π (h − 9) / 24)) · L(t)`: a daily shape peaking at
//!    15:00 UTC (`h` is the hour of day) times a load factor `L` whose log is
//!    an AR(1) process (slow swings), shared by both arms.
//! 2. The canary gets `weight · split` of it (`split` is 1 unless the
//!    traffic split is broken), the baseline the rest; each arm's count is
//!    Poisson. The weight is the schedule's weight in force at the start of
//!    the interval.
//! 3. Per request: a latency `median · L^0.5 · exp(sigma · z)` (log-normal;
//!    busier means slower, for both arms), binned into the histogram's
//!    buckets; an error with probability `error_rate` (a binomial count); a
//!    model prediction scored with probability 1/2 and, if scored, wrong with
//!    probability `1 − accuracy`.
//!
//! The baseline serves alone for [`WARMUP_SECONDS`] before the recording
//! starts, so its counters start warm (as a long-running primary's do); the
//! canary's start at zero. A labelled error counter has no series until its
//! first increment, as with Prometheus client libraries. The p99 gauge is
//! `histogram_quantile(0.99, ...)` of the last 5 minutes' bucket increments,
//! with PromQL's interpolation (NaN when the arm had no requests): what a
//! recording rule `service:latency_p99:5m` stores.

use super::csv::{Arm, Row, ValueFormat};
use crate::simulate::rng::Rng;

/// Scrape interval and sample spacing, seconds.
pub const STEP_SECONDS: i64 = 15;

/// The baseline's head start before the recording's first sample.
pub const WARMUP_SECONDS: i64 = 3600;

/// Upper bounds of the latency histogram's buckets, seconds.
pub const LATENCY_BOUNDS: [f64; 7] = [0.05, 0.1, 0.25, 0.5, 1.0, 2.5, f64::INFINITY];

/// Fraction of requests whose prediction is scored against ground truth.
const SCORED_FRACTION: f64 = 0.5;

/// Scrape intervals in the p99 gauge's window (5 minutes).
const QUANTILE_WINDOW: usize = 20;

/// Names of the recorded metrics: the analysis metric names of
/// `fixtures/recordings/verdict.yaml`.
pub const LATENCY: &str = "latency";
pub const P99: &str = "p99-latency";
pub const ERRORS: &str = "errors";
pub const ACCURACY: &str = "accuracy";

/// How one arm's requests behave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Behaviour {
    pub error_rate: f64,
    /// Median latency at the mean load, seconds.
    pub latency_median: f64,
    /// Log-scale spread of the latency.
    pub latency_sigma: f64,
    /// Probability that a scored prediction is correct.
    pub accuracy: f64,
}

impl Behaviour {
    /// The service as it normally is: 0.5 % errors, 100 ms median latency
    /// (about 10 % of requests above 250 ms), 92 % accuracy.
    pub fn normal() -> Self {
        Behaviour {
            error_rate: 0.005,
            latency_median: 0.1,
            latency_sigma: 0.7,
            accuracy: 0.92,
        }
    }
}

/// A change of the canary's behaviour during `[from, until)` (unix seconds).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub from: i64,
    pub until: Option<i64>,
    pub canary: Behaviour,
}

/// The canary weight schedule: `weights[i]` percent from `start + i · step_every`.
#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub weights: Vec<f64>,
    pub step_every: i64,
}

impl Schedule {
    /// The weight in force at `t`, for a rollout starting at `start`.
    pub fn weight_at(&self, start: i64, t: i64) -> f64 {
        if t < start || self.weights.is_empty() {
            return 0.0;
        }
        let i = ((t - start) / self.step_every) as usize;
        self.weights[i.min(self.weights.len() - 1)]
    }
}

/// Everything that shapes one recording.
#[derive(Debug, Clone, PartialEq)]
pub struct Traffic {
    /// First sample (unix seconds); the rollout starts here.
    pub start: i64,
    pub duration: i64,
    /// Mean requests per second of the whole service.
    pub requests_per_second: f64,
    pub schedule: Schedule,
    /// Fraction of its weight the canary really receives (1 = a working split).
    pub canary_split: f64,
    pub baseline: Behaviour,
    pub canary: Behaviour,
    pub change: Option<Change>,
    /// Canary scrapes failing during `[from, until)`: its samples are NaN.
    pub canary_gap: Option<(i64, i64)>,
    /// The canary's p99 gauge is not recorded at all.
    pub canary_p99_missing: bool,
}

/// Cumulative counters of one arm.
#[derive(Debug, Clone, Default)]
struct Counters {
    buckets: [u64; LATENCY_BOUNDS.len()],
    requests: u64,
    errors: u64,
    scored: u64,
    wrong: u64,
}

/// Per-series samples of one arm, in the order they are written.
#[derive(Debug, Default)]
struct ArmSeries {
    buckets: Vec<Vec<(i64, f64)>>,
    p99: Vec<(i64, f64)>,
    errors: Vec<(i64, f64)>,
    total: Vec<(i64, f64)>,
    wrong: Vec<(i64, f64)>,
    scored: Vec<(i64, f64)>,
}

/// `histogram_quantile(q, ...)` of per-bucket (non-cumulative) counts, with
/// PromQL's linear interpolation inside the bucket and the `+Inf` rule.
pub fn histogram_quantile(q: f64, counts: &[u64], bounds: &[f64]) -> f64 {
    let total: u64 = counts.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (b, &count) in counts.iter().enumerate() {
        if (below + count) as f64 >= rank && count > 0 {
            if bounds[b].is_infinite() {
                return if b == 0 { f64::NAN } else { bounds[b - 1] };
            }
            let lower = if b == 0 { 0.0 } else { bounds[b - 1] };
            return lower + (bounds[b] - lower) * (rank - below as f64) / count as f64;
        }
        below += count;
    }
    bounds[bounds.len() - 2]
}

fn bucket_of(latency: f64) -> usize {
    LATENCY_BOUNDS
        .iter()
        .position(|&le| latency <= le)
        .unwrap_or(LATENCY_BOUNDS.len() - 1)
}

impl Traffic {
    fn canary_behaviour(&self, t: i64) -> Behaviour {
        match self.change {
            Some(c) if t >= c.from && c.until.is_none_or(|u| t < u) => c.canary,
            _ => self.canary,
        }
    }

    fn in_gap(&self, t: i64) -> bool {
        self.canary_gap.is_some_and(|(a, b)| t >= a && t < b)
    }

    /// Simulates the recording with `rng`; rows grouped by series.
    pub fn rows(&self, rng: &mut Rng) -> Vec<Row> {
        let end = self.start + self.duration;
        let mut counters = [Counters::default(), Counters::default()];
        let mut series = [ArmSeries::default(), ArmSeries::default()];
        for s in &mut series {
            s.buckets = vec![Vec::new(); LATENCY_BOUNDS.len()];
        }
        // Bucket increments of the last minute, per arm (for the p99 gauge).
        let mut recent: [Vec<[u64; LATENCY_BOUNDS.len()]>; 2] = [Vec::new(), Vec::new()];
        let mut log_load = 0.0f64;
        let mut t = self.start - WARMUP_SECONDS;
        while t <= end {
            // The interval (t - 15, t].
            log_load = 0.95 * log_load + 0.03 * rng.normal();
            let load = log_load.exp();
            let hour = (t.rem_euclid(86_400)) as f64 / 3600.0;
            let daily = 1.0 + 0.35 * (std::f64::consts::TAU * (hour - 9.0) / 24.0).sin();
            let rate = self.requests_per_second * daily * load * STEP_SECONDS as f64;
            let weight = self.schedule.weight_at(self.start, t - STEP_SECONDS) / 100.0;
            let canary_share = weight * self.canary_split;
            for (i, arm) in [Arm::Baseline, Arm::Canary].into_iter().enumerate() {
                let (share, behaviour) = match arm {
                    Arm::Baseline => (1.0 - canary_share, self.baseline),
                    Arm::Canary => (canary_share, self.canary_behaviour(t)),
                };
                let n = if t > self.start || arm == Arm::Baseline {
                    rng.poisson(rate * share)
                } else {
                    0
                };
                let mut increment = [0u64; LATENCY_BOUNDS.len()];
                let median = behaviour.latency_median * load.sqrt();
                for _ in 0..n {
                    let latency = median * (behaviour.latency_sigma * rng.normal()).exp();
                    increment[bucket_of(latency)] += 1;
                }
                let errors = rng.binomial(n, behaviour.error_rate);
                let scored = rng.binomial(n, SCORED_FRACTION);
                let wrong = rng.binomial(scored, 1.0 - behaviour.accuracy);
                let c = &mut counters[i];
                for (b, x) in c.buckets.iter_mut().zip(increment) {
                    *b += x;
                }
                c.requests += n;
                c.errors += errors;
                c.scored += scored;
                c.wrong += wrong;
                recent[i].push(increment);
                if recent[i].len() > QUANTILE_WINDOW {
                    recent[i].remove(0);
                }
                if t < self.start {
                    continue;
                }
                let missing = arm == Arm::Canary && self.in_gap(t);
                let value = |x: u64| if missing { f64::NAN } else { x as f64 };
                let s = &mut series[i];
                let mut cumulative = 0;
                for (b, &count) in c.buckets.iter().enumerate() {
                    cumulative += count;
                    s.buckets[b].push((t, value(cumulative)));
                }
                let mut window = [0u64; LATENCY_BOUNDS.len()];
                for inc in &recent[i] {
                    for (w, x) in window.iter_mut().zip(inc) {
                        *w += x;
                    }
                }
                let p99 = histogram_quantile(0.99, &window, &LATENCY_BOUNDS);
                s.p99.push((t, if missing { f64::NAN } else { p99 }));
                // Labelled counters appear at their first increment.
                if c.errors > 0 {
                    s.errors.push((t, value(c.errors)));
                }
                s.total.push((t, value(c.requests)));
                if c.wrong > 0 {
                    s.wrong.push((t, value(c.wrong)));
                }
                s.scored.push((t, value(c.scored)));
            }
            t += STEP_SECONDS;
        }
        let mut rows = Vec::new();
        let mut emit = |metric: String,
                        arm: Arm,
                        le: Option<f64>,
                        format: ValueFormat,
                        points: &[(i64, f64)]| {
            rows.extend(points.iter().map(|&(timestamp, value)| Row {
                timestamp,
                metric: metric.clone(),
                arm,
                value,
                format,
                le,
            }));
        };
        let arms = [Arm::Baseline, Arm::Canary];
        for (i, &arm) in arms.iter().enumerate() {
            for (b, points) in series[i].buckets.iter().enumerate() {
                let le = Some(LATENCY_BOUNDS[b]);
                emit(LATENCY.into(), arm, le, ValueFormat::Count, points);
            }
        }
        for (i, &arm) in arms.iter().enumerate() {
            if !(arm == Arm::Canary && self.canary_p99_missing) {
                emit(P99.into(), arm, None, ValueFormat::Gauge, &series[i].p99);
            }
        }
        for (name, pick) in [
            (
                format!("{ERRORS}:errors"),
                (|s: &ArmSeries| s.errors.clone()) as fn(&ArmSeries) -> Vec<(i64, f64)>,
            ),
            (format!("{ERRORS}:total"), |s| s.total.clone()),
            (format!("{ACCURACY}:errors"), |s| s.wrong.clone()),
            (format!("{ACCURACY}:total"), |s| s.scored.clone()),
        ] {
            for (i, &arm) in arms.iter().enumerate() {
                emit(
                    name.clone(),
                    arm,
                    None,
                    ValueFormat::Count,
                    &pick(&series[i]),
                );
            }
        }
        rows
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_quantile_interpolates_like_promql() {
        let bounds = [0.1, 0.2, f64::INFINITY];
        // 100 requests: 50 below 0.1, 50 in (0.1, 0.2]: the median is 0.1,
        // the 75th percentile halfway into the second bucket.
        assert_eq!(histogram_quantile(0.5, &[50, 50, 0], &bounds), 0.1);
        assert!((histogram_quantile(0.75, &[50, 50, 0], &bounds) - 0.15).abs() < 1e-12);
        // In the +Inf bucket: the largest finite bound.
        assert_eq!(histogram_quantile(0.99, &[50, 40, 10], &bounds), 0.2);
        assert!(histogram_quantile(0.99, &[0, 0, 0], &bounds).is_nan());
    }

    #[test]
    fn schedule_steps_through_weights_and_holds_the_last() {
        let s = Schedule {
            weights: vec![5.0, 10.0],
            step_every: 600,
        };
        assert_eq!(s.weight_at(1000, 999), 0.0);
        assert_eq!(s.weight_at(1000, 1000), 5.0);
        assert_eq!(s.weight_at(1000, 1599), 5.0);
        assert_eq!(s.weight_at(1000, 1600), 10.0);
        assert_eq!(s.weight_at(1000, 99_999), 10.0);
    }
}

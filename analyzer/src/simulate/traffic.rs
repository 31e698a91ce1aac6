//! Seeded traffic generator: what Prometheus would hold for a canary and its
//! baseline, as per-request counts.
//!
//! Time is cut into **sub-steps** (the scrape / query step, 30 s by
//! default); a **look** is `substeps_per_look` sub-steps (1 min by default).
//! Per sub-step:
//!
//! 1. The expected total request count follows a daily shape
//!    `1 + a sin(2 pi (s + phase) / day)` (random phase per run) times a
//!    log-normal load factor (mean 1) shared by both arms: real traffic swings,
//!    and both arms see the same swing.
//! 2. Each arm's request count is Poisson with its share of that mean
//!    (`weight` for the canary, `1 - weight` for the baseline; equivalent to a
//!    Poisson total split binomially at the canary weight).
//! 3. Per request, independently: error with probability `error_rate`; a
//!    latency bucket from `latency` (multinomial over 8 histogram buckets); a
//!    model prediction that is scored with probability `score_fraction` and,
//!    if scored, correct with probability `accuracy`.
//!
//! Before the analysis starts, `window_substeps` warm-up sub-steps are
//! generated (both arms already serving), so the first `rate()` point has a
//! full window, as when an analysis begins after a warm-up delay.
//!
//! From these counts the harness gives the count-based judges the per-look
//! **increments**, and the Kayenta baseline the Prometheus-like points
//! `rate(x[window])` evaluated at **every sub-step** (a range query with
//! step = one sub-step and a window of `window_substeps`): overlapping
//! windows, as in docs/statistics/simulation.md ("Reading").

use super::rng::Rng;

/// Number of latency histogram buckets (`le` labels, the last is `+Inf`).
pub const BUCKETS: usize = 8;

/// Upper bounds of the latency buckets in milliseconds.
pub const LATENCY_BOUNDS_MS: [f64; BUCKETS] = [
    25.0,
    50.0,
    100.0,
    200.0,
    400.0,
    800.0,
    1600.0,
    f64::INFINITY,
];

/// Baseline latency distribution over the buckets (sums to 1).
pub const BASE_LATENCY: [f64; BUCKETS] = [0.30, 0.25, 0.18, 0.12, 0.07, 0.045, 0.025, 0.01];

/// The "slow" buckets are those from this index on (latency above 200 ms):
/// 15 % of the baseline's requests.
pub const SLOW_FROM: usize = 4;

/// Per-request outcome probabilities of one arm.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmModel {
    pub error_rate: f64,
    pub latency: [f64; BUCKETS],
    pub score_fraction: f64,
    pub accuracy: f64,
}

impl ArmModel {
    /// The baseline (and an identical canary): 1 % errors, [`BASE_LATENCY`],
    /// half the requests scored, 90 % accuracy.
    pub fn baseline() -> Self {
        ArmModel {
            error_rate: 0.01,
            latency: BASE_LATENCY,
            score_fraction: 0.5,
            accuracy: 0.90,
        }
    }

    /// Multiplies the probability of each slow bucket by `factor` and
    /// rescales the fast buckets so the distribution still sums to 1.
    pub fn with_slow_shift(mut self, factor: f64) -> Self {
        let slow: f64 = self.latency[SLOW_FROM..].iter().sum();
        let fast = 1.0 - slow;
        let fast_scale = (1.0 - factor * slow) / fast;
        for (k, p) in self.latency.iter_mut().enumerate() {
            *p *= if k >= SLOW_FROM { factor } else { fast_scale };
        }
        self
    }

    /// Probability that a request lands in a slow bucket.
    pub fn slow_fraction(&self) -> f64 {
        self.latency[SLOW_FROM..].iter().sum()
    }
}

/// Counts of one arm over some stretch of time.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArmCounts {
    pub requests: u64,
    pub errors: u64,
    pub buckets: [u64; BUCKETS],
    pub scored: u64,
    pub correct: u64,
}

impl ArmCounts {
    pub fn add(&mut self, other: &ArmCounts) {
        self.requests += other.requests;
        self.errors += other.errors;
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a += b;
        }
        self.scored += other.scored;
        self.correct += other.correct;
    }

    /// `other` subtracted (for sliding windows); `other` must be contained.
    pub fn sub(&mut self, other: &ArmCounts) {
        self.requests -= other.requests;
        self.errors -= other.errors;
        for (a, b) in self.buckets.iter_mut().zip(&other.buckets) {
            *a -= b;
        }
        self.scored -= other.scored;
        self.correct -= other.correct;
    }

    pub fn slow(&self) -> u64 {
        self.buckets[SLOW_FROM..].iter().sum()
    }
}

/// Shape of the traffic.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrafficParams {
    /// Expected requests per look, both arms together, at the daily mean.
    pub requests_per_look: f64,
    /// Canary share of the traffic.
    pub weight: f64,
    /// When set, the canary's share steps through these weights within the
    /// run, in equal parts of its looks (the warm-up at the first), instead
    /// of staying at `weight`: a rollout's 0 → 5 → 25 → 50 → 100 %.
    pub steps: Option<&'static [f64]>,
    /// Sub-steps (query steps) per look.
    pub substeps_per_look: usize,
    /// `rate()` window in sub-steps.
    pub window_substeps: usize,
    /// Relative amplitude of the daily shape.
    pub daily_amplitude: f64,
    /// Length of a day in sub-steps (2880 at 30 s).
    pub day_substeps: f64,
    /// Standard deviation of the log load factor per sub-step.
    pub load_noise_sd: f64,
}

impl TrafficParams {
    pub fn new(requests_per_look: f64, weight: f64) -> Self {
        TrafficParams {
            requests_per_look,
            weight,
            steps: None,
            substeps_per_look: 2,
            window_substeps: 10,
            daily_amplitude: 0.4,
            day_substeps: 2880.0,
            load_noise_sd: 0.15,
        }
    }
}

impl TrafficParams {
    /// The canary's share during look `look` (0-based) of `looks`.
    pub fn weight_of_look(&self, look: usize, looks: usize) -> f64 {
        match self.steps {
            Some(steps) if !steps.is_empty() => {
                let per_step = looks.div_ceil(steps.len()).max(1);
                steps[(look / per_step).min(steps.len() - 1)]
            }
            _ => self.weight,
        }
    }
}

/// One run's traffic: per sub-step counts of each arm, warm-up first.
#[derive(Debug, Clone)]
pub struct Traffic {
    pub params: TrafficParams,
    pub looks: usize,
    /// `(canary, baseline)` per sub-step; the first `window_substeps` are
    /// warm-up.
    pub substeps: Vec<(ArmCounts, ArmCounts)>,
}

fn arm_substep(rng: &mut Rng, mean_requests: f64, model: &ArmModel) -> ArmCounts {
    let requests = rng.poisson(mean_requests);
    let errors = rng.binomial(requests, model.error_rate);
    let buckets = rng.multinomial(requests, &model.latency);
    let scored = rng.binomial(requests, model.score_fraction);
    let correct = rng.binomial(scored, model.accuracy);
    ArmCounts {
        requests,
        errors,
        buckets,
        scored,
        correct,
    }
}

impl Traffic {
    /// Generates `looks` looks (plus the warm-up) of traffic.
    pub fn generate(
        params: TrafficParams,
        looks: usize,
        canary: &ArmModel,
        baseline: &ArmModel,
        rng: &mut Rng,
    ) -> Self {
        let total = params.window_substeps + looks * params.substeps_per_look;
        let per_substep = params.requests_per_look / params.substeps_per_look as f64;
        let phase = rng.uniform() * params.day_substeps;
        let sd = params.load_noise_sd;
        let mut substeps = Vec::with_capacity(total);
        for s in 0..total {
            let daily = 1.0
                + params.daily_amplitude
                    * (std::f64::consts::TAU * (s as f64 + phase) / params.day_substeps).sin();
            let load = (sd * rng.normal() - 0.5 * sd * sd).exp();
            let mean = per_substep * daily * load;
            let look = s.saturating_sub(params.window_substeps) / params.substeps_per_look;
            let weight = params.weight_of_look(look, looks);
            let c = arm_substep(rng, mean * weight, canary);
            let b = arm_substep(rng, mean * (1.0 - weight), baseline);
            substeps.push((c, b));
        }
        Traffic {
            params,
            looks,
            substeps,
        }
    }

    /// Per-look increments `(canary, baseline)` of the analysis (no warm-up).
    pub fn look_increments(&self) -> Vec<(ArmCounts, ArmCounts)> {
        let w = self.params.window_substeps;
        self.substeps[w..]
            .chunks(self.params.substeps_per_look)
            .map(|chunk| {
                let mut c = ArmCounts::default();
                let mut b = ArmCounts::default();
                for (sc, sb) in chunk {
                    c.add(sc);
                    b.add(sb);
                }
                (c, b)
            })
            .collect()
    }

    /// `f(window counts)` at every analysis sub-step, for each arm: point `j`
    /// covers the `window_substeps` sub-steps ending with analysis sub-step
    /// `j`. After look `t` (1-based) the first `t * substeps_per_look` points
    /// exist.
    pub fn rate_points(&self, f: impl Fn(&ArmCounts) -> f64) -> (Vec<f64>, Vec<f64>) {
        let w = self.params.window_substeps;
        let mut wc = ArmCounts::default();
        let mut wb = ArmCounts::default();
        for (c, b) in &self.substeps[1..=w.min(self.substeps.len() - 1)] {
            wc.add(c);
            wb.add(b);
        }
        let n = self.substeps.len() - w;
        let mut canary = Vec::with_capacity(n);
        let mut baseline = Vec::with_capacity(n);
        for j in 0..n {
            // Window = sub-steps j+1 ..= j+w (absolute indices).
            if j > 0 {
                let (c_in, b_in) = &self.substeps[j + w];
                let (c_out, b_out) = &self.substeps[j];
                wc.add(c_in);
                wb.add(b_in);
                wc.sub(c_out);
                wb.sub(b_out);
            }
            canary.push(f(&wc));
            baseline.push(f(&wb));
        }
        (canary, baseline)
    }
}

/// Prometheus' `histogram_quantile(q, ...)` on per-bucket (non-cumulative)
/// counts with [`LATENCY_BOUNDS_MS`]: linear interpolation inside the bucket
/// holding rank `q * total`, the lower edge of the first bucket being 0, and
/// the upper bound of the last finite bucket when the rank falls in `+Inf`.
/// NaN without observations.
pub fn histogram_quantile(q: f64, buckets: &[u64; BUCKETS]) -> f64 {
    let total: u64 = buckets.iter().sum();
    if total == 0 {
        return f64::NAN;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for k in 0..BUCKETS {
        let cum = below + buckets[k];
        if cum as f64 >= rank {
            if k == BUCKETS - 1 {
                return LATENCY_BOUNDS_MS[BUCKETS - 2];
            }
            let start = if k == 0 {
                0.0
            } else {
                LATENCY_BOUNDS_MS[k - 1]
            };
            let end = LATENCY_BOUNDS_MS[k];
            let in_bucket = buckets[k] as f64;
            if in_bucket == 0.0 {
                return end;
            }
            return start + (end - start) * (rank - below as f64) / in_bucket;
        }
        below = cum;
    }
    LATENCY_BOUNDS_MS[BUCKETS - 2]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_shift_keeps_a_distribution() {
        let m = ArmModel::baseline().with_slow_shift(1.2);
        assert!((m.latency.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!((m.slow_fraction() - 0.18).abs() < 1e-12);
        assert!((ArmModel::baseline().slow_fraction() - 0.15).abs() < 1e-12);
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let b = [10, 10, 0, 0, 0, 0, 0, 0];
        assert_eq!(histogram_quantile(0.5, &b), 25.0);
        assert_eq!(histogram_quantile(0.75, &b), 37.5);
        let tail = [0, 0, 0, 0, 0, 0, 0, 5];
        assert_eq!(histogram_quantile(0.9, &tail), 1600.0);
        assert!(histogram_quantile(0.9, &[0; BUCKETS]).is_nan());
    }

    #[test]
    fn windows_and_increments_add_up() {
        let mut rng = Rng::seed_from(11);
        let params = TrafficParams::new(2000.0, 0.05);
        let t = Traffic::generate(
            params,
            6,
            &ArmModel::baseline(),
            &ArmModel::baseline(),
            &mut rng,
        );
        let looks = t.look_increments();
        assert_eq!(looks.len(), 6);
        let total_c: u64 = looks.iter().map(|(c, _)| c.requests).sum();
        let direct: u64 = t.substeps[10..].iter().map(|(c, _)| c.requests).sum();
        assert_eq!(total_c, direct);
        let (pc, pb) = t.rate_points(|a| a.requests as f64);
        assert_eq!(pc.len(), 12);
        assert_eq!(pb.len(), 12);
        for (j, &point) in pc.iter().enumerate() {
            let want: u64 = t.substeps[j + 1..=j + 10]
                .iter()
                .map(|(c, _)| c.requests)
                .sum();
            assert_eq!(point, want as f64, "point {j}");
        }
        // Canary share near the weight.
        let all_b: u64 = t.substeps.iter().map(|(_, b)| b.requests).sum();
        let all_c: u64 = t.substeps.iter().map(|(c, _)| c.requests).sum();
        let share = all_c as f64 / (all_c + all_b) as f64;
        assert!((share - 0.05).abs() < 0.01, "share {share}");
    }
}

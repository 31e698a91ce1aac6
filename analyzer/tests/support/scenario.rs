//! Rollout scenarios for the daemon tests: a canary and its primary serving
//! `podinfo` in namespace `test`, sampled every 15 s, with noise drawn from a
//! seeded generator so every run of a test sees the same numbers.
//!
//! Series (as an exporter plus recording rules would give them):
//! * `request_latency_p99_seconds{namespace,app,track}`: gauge, the p99
//!   latency of each 15 s interval;
//! * `http_requests_total{namespace,app,track,code}`: counters, `code="200"`
//!   and `code="500"`.
//!
//! `track` is `canary` or `primary`. The analyses in [`config`] query them.

#![allow(dead_code)] // each test binary uses a different subset

use super::prometheus::{OpenMetrics, PrometheusServer};

/// Sampling interval of the scenario's series, seconds.
pub const STEP: f64 = 15.0;

/// The project's seeded generator, with the samplers test noise needs.
pub struct Rng(verdict_judges::splitmix64::SplitMix64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(verdict_judges::splitmix64::SplitMix64::new(seed))
    }

    /// Uniform in (0, 1).
    pub fn uniform(&mut self) -> f64 {
        self.0.next_open01()
    }

    /// Standard normal (Box-Muller).
    pub fn normal(&mut self) -> f64 {
        let (u, v) = (self.uniform(), self.uniform());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }

    /// Poisson (Knuth's product method; fine for the means used here).
    pub fn poisson(&mut self, mean: f64) -> u64 {
        let limit = (-mean).exp();
        let mut k = 0;
        let mut p = self.uniform();
        while p > limit {
            k += 1;
            p *= self.uniform();
        }
        k
    }

    /// Binomial by counting successes.
    pub fn binomial(&mut self, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| self.uniform() < p).count() as u64
    }
}

/// How one arm behaves.
#[derive(Debug, Clone, Copy)]
pub struct Arm {
    /// Typical p99 latency, seconds.
    pub latency: f64,
    /// Relative noise of the latency (standard deviation / latency).
    pub latency_noise: f64,
    /// Requests per second.
    pub rps: f64,
    /// Probability that a request fails with a 500.
    pub error_rate: f64,
    /// The latency series: present with values, present with only NaN, or absent.
    pub latency_series: Presence,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    Values,
    NanOnly,
    Absent,
}

impl Arm {
    /// A healthy service: 200 ms p99 ± 5 %, 10 requests/s, 0.5 % errors.
    pub fn healthy() -> Arm {
        Arm {
            latency: 0.200,
            latency_noise: 0.05,
            rps: 10.0,
            error_rate: 0.005,
            latency_series: Presence::Values,
        }
    }
}

/// Both arms over `seconds` of data starting at `base_time()`.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    pub canary: Arm,
    pub primary: Arm,
    pub seconds: f64,
    pub seed: u64,
}

impl Scenario {
    /// A healthy canary next to a healthy primary, ten minutes of data.
    pub fn healthy() -> Scenario {
        Scenario {
            canary: Arm::healthy(),
            primary: Arm::healthy(),
            seconds: 600.0,
            seed: 20_251_122,
        }
    }

    pub fn with_canary(mut self, f: impl FnOnce(&mut Arm)) -> Scenario {
        f(&mut self.canary);
        self
    }

    pub fn with_both(mut self, f: impl Fn(&mut Arm)) -> Scenario {
        f(&mut self.canary);
        f(&mut self.primary);
        self
    }

    pub fn openmetrics(&self) -> OpenMetrics {
        let mut om = OpenMetrics::new();
        let mut rng = Rng::new(self.seed);
        for (track, arm) in [("primary", &self.primary), ("canary", &self.canary)] {
            let labels = [("namespace", "test"), ("app", "podinfo"), ("track", track)];
            let times: Vec<f64> = (0..)
                .map(|i| i as f64 * STEP)
                .take_while(|t| *t <= self.seconds)
                .collect();
            let latency: Vec<(f64, f64)> = times
                .iter()
                .map(|&t| {
                    let v = arm.latency * (1.0 + arm.latency_noise * rng.normal());
                    (
                        t,
                        if arm.latency_series == Presence::NanOnly {
                            f64::NAN
                        } else {
                            v.max(0.001)
                        },
                    )
                })
                .collect();
            if arm.latency_series != Presence::Absent {
                om = om.gauge("request_latency_p99_seconds", &labels, &latency);
            }
            let (mut ok, mut failed) = (0u64, 0u64);
            let mut ok_points = Vec::new();
            let mut failed_points = Vec::new();
            for (i, &t) in times.iter().enumerate() {
                if i > 0 {
                    let n = rng.poisson(arm.rps * STEP);
                    let e = rng.binomial(n, arm.error_rate);
                    ok += n - e;
                    failed += e;
                }
                ok_points.push((t, ok as f64));
                failed_points.push((t, failed as f64));
            }
            let with_code = |code| {
                [
                    ("namespace", "test"),
                    ("app", "podinfo"),
                    ("track", track),
                    ("code", code),
                ]
            };
            om = om
                .counter("http_requests_total", &with_code("200"), &ok_points)
                .counter("http_requests_total", &with_code("500"), &failed_points);
        }
        om
    }

    /// Starts a Prometheus holding the scenario's data.
    pub fn start(&self) -> PrometheusServer {
        self.openmetrics().start()
    }
}

fn arm_selector(track: &str) -> String {
    format!(r#"namespace="{{{{namespace}}}}",app="{{{{name}}}}",track="{track}""#)
}

fn latency_metric(name: &str, extra: &str) -> String {
    format!(
        "      - name: {name}\n        kind: gauge\n        judge: mann-whitney\n        group: latency\n{extra}\
         \x20       canary: 'request_latency_p99_seconds{{{c}}}'\n\
         \x20       baseline: 'request_latency_p99_seconds{{{b}}}'\n",
        c = arm_selector("canary"),
        b = arm_selector("primary"),
    )
}

fn counter_metric(name: &str, judge: &str, extra: &str) -> String {
    let arm = |track| {
        let s = arm_selector(track);
        format!(
            "{{errors: 'sum(http_requests_total{{{s},code=~\"5..\"}})', total: 'sum(http_requests_total{{{s}}})'}}"
        )
    };
    format!(
        "      - name: {name}\n        kind: counter\n        judge: {judge}\n        group: errors\n{extra}\
         \x20       canary: {c}\n        baseline: {b}\n",
        c = arm("canary"),
        b = arm("primary"),
    )
}

/// A whole Verdict config against the Prometheus at `url`, with these analyses:
///
/// * `checkout`: latency (gauge, Mann-Whitney), `errors` (counter,
///   sequential) and `error-rate` (counter, proportion, margin 0.2 points);
///   groups latency 50 / errors 50, so a regression of either group scores
///   50, below marginal 75;
/// * `checkout-critical`: the same with latency critical and weighted 10, so
///   only its criticality can abort on latency;
/// * `checkout-lenient`: latency weighted 10 and not critical (the contrast);
/// * `windowed`: a latency gauge averaged over a metadata-given
///   `[{{window}}]`, a bare template position.
///
/// Lookback 5 m, step 15 s, minimum 10 points and 200 requests per arm.
pub fn config(url: &str) -> String {
    let common = "    lookback: 5m\n    step: 15s\n    min_data: {points: 10, requests: 200}\n";
    let errors = counter_metric("errors", "sequential", "")
        + &counter_metric("error-rate", "proportion", "        margin: 0.002\n");
    let windowed = format!(
        "      - name: latency\n        kind: gauge\n\
         \x20       canary: 'avg_over_time(request_latency_p99_seconds{{{c}}}[{{{{window}}}}])'\n\
         \x20       baseline: 'avg_over_time(request_latency_p99_seconds{{{b}}}[{{{{window}}}}])'\n",
        c = arm_selector("canary"),
        b = arm_selector("primary"),
    );
    format!(
        "prometheus:\n  url: {url}\n  timeout: 2s\n  retries: 0\n\
         analyses:\n\
         \x20 checkout:\n{common}    groups: {{latency: 50, errors: 50}}\n    metrics:\n{l}{errors}\
         \x20 checkout-critical:\n{common}    groups: {{latency: 10, errors: 90}}\n    metrics:\n{lc}{errors}\
         \x20 checkout-lenient:\n{common}    groups: {{latency: 10, errors: 90}}\n    metrics:\n{l}{errors}\
         \x20 windowed:\n{common}    metrics:\n{windowed}",
        l = latency_metric("latency", ""),
        lc = latency_metric("latency", "        critical: true\n"),
    )
}

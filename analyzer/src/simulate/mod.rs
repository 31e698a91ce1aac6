//! `verdict simulate`: a seeded, reproducible simulation comparing the
//! sequential judges with Kayenta's Mann-Whitney classifier on the same
//! simulated canary traffic.
//!
//! # What is simulated
//!
//! A canary at `weight` (5 %) of the traffic and its baseline (the rest),
//! looked at every interval (1 min, two 30 s query steps) for `looks` looks.
//! The traffic ([`traffic`]) has a daily shape and shared load noise; per
//! request it draws an error, a latency bucket (8-bucket histogram) and a
//! scored / correct model prediction. Four scenarios ([`runner::scenarios`]):
//! identical arms, and a canary that is truly worse in one metric: (a) a
//! doubled error rate, (b) +20 % mass in the slow latency buckets, (c) a
//! 2-point accuracy drop.
//!
//! # The judges (per metric)
//!
//! * **bucket-label e-process** on per-look counter increments (K = 2
//!   `[errors, ok]` / `[incorrect, correct]`, K = 8 histogram buckets),
//!   `rho0 = weight`, `kappa`, harmful mask on the bad buckets. Abort: its
//!   latched `reject`. Promote: `min_looks` looks reached without rejecting.
//! * **normal-mixture CS** (`ProportionDifferenceSequence`: error rate, slow
//!   fraction, accuracy), `tau^2` tuned to the variance expected at the last
//!   look, running (intersected) CS on the harm scale. Abort: CS lower end
//!   above 0. Promote: at or after `min_looks`, CS upper end below the
//!   metric's margin ([`runner::Metric::margin`]).
//! * **Kayenta MW**: `classify` (Kayenta's fixed tolerance 0.25 and 98 % HL
//!   interval, metric direction, critical) re-run at every look on all the
//!   `rate()`-like points so far (window 5 min, step 30 s: overlapping), then
//!   `decision::decide` on that one metric: abort at the first High/Low in the
//!   harmful direction; promote when Pass with at least `kayenta_min_points`
//!   points per arm and at or after `min_looks`. Two variants from the same
//!   classifications: judged at every look (with only 2 points per arm at
//!   look 1, where Kayenta's interval is the range of all differences), and
//!   judged only from `kayenta_min_points` (50) points per arm on, as
//!   Spinnaker's guidance asks.
//!
//! Each judge is monitored over all looks. Reported per judge: the rate of
//! *ever* aborting within the looks (the false-alarm rate of peeking, on
//! identical arms), and what the decision rule does first (abort / promote /
//! neither), with the median look of the first abort.
//!
//! # Reproducibility
//!
//! Run `r` of scenario `s` uses its own generator seeded from
//! `(seed, s, r)` ([`rng::derive_seed`]); runs are spread over threads with
//! `std::thread::scope` and collected by index, so the output depends only on
//! the arguments, not on the number of threads or their scheduling.

pub mod report;
pub mod rng;
pub mod runner;
pub mod traffic;

use runner::{run_one, scenarios, JudgeOutcome, Scenario};

/// Parameters of a simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    pub runs: usize,
    pub looks: usize,
    pub seed: u64,
    /// Canary share of the traffic.
    pub weight: f64,
    /// Level of each sequential judge (per metric).
    pub alpha: f64,
    /// Expected requests per look, both arms together.
    pub requests_per_look: f64,
    /// First look at which a promote may happen (minimum duration).
    pub min_looks: usize,
    /// Minimum trials per arm before the normal-mixture CS is evaluated.
    pub min_n_per_arm: u64,
    /// Bucket-label prior concentration.
    pub kappa: f64,
    /// Points per arm Kayenta needs before its Pass counts (Spinnaker's
    /// "at least 50 data points" guidance).
    pub kayenta_min_points: usize,
    /// Worker threads.
    pub threads: usize,
    /// Run only these scenarios (indices into [`runner::scenarios`]); all
    /// when `None`.
    pub only_scenarios: Option<Vec<usize>>,
    /// Judge only these metrics; all of each scenario's when `None`.
    pub only_metrics: Option<Vec<runner::Metric>>,
}

impl SimConfig {
    /// The documented defaults for `runs` runs of `looks` looks.
    pub fn new(runs: usize, looks: usize, seed: u64) -> Self {
        SimConfig {
            runs,
            looks,
            seed,
            weight: 0.05,
            alpha: 0.05,
            requests_per_look: 4000.0,
            min_looks: looks.div_ceil(2),
            min_n_per_arm: 30,
            kappa: 200.0,
            kayenta_min_points: 50,
            threads: 2,
            only_scenarios: None,
            only_metrics: None,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.runs == 0 || self.looks == 0 {
            return Err("--runs and --looks must be at least 1".into());
        }
        if !(self.weight > 0.0 && self.weight < 1.0) {
            return Err(format!("--weight must be in (0, 1), got {}", self.weight));
        }
        if !(self.alpha > 0.0 && self.alpha < 1.0) {
            return Err(format!("--alpha must be in (0, 1), got {}", self.alpha));
        }
        if !(self.requests_per_look.is_finite() && self.requests_per_look > 0.0) {
            return Err("--requests-per-look must be > 0".into());
        }
        if self.min_looks == 0 || self.min_looks > self.looks {
            return Err(format!(
                "--min-looks must be in 1..={}, got {}",
                self.looks, self.min_looks
            ));
        }
        if self.threads == 0 {
            return Err("--threads must be at least 1".into());
        }
        Ok(())
    }
}

/// All runs of one scenario: `outcomes[run][metric * JUDGES.len() + judge]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub outcomes: Vec<Vec<JudgeOutcome>>,
}

impl PartialEq for Scenario {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.metrics == other.metrics
    }
}

/// Runs every selected scenario; deterministic for a given config.
pub fn simulate(config: &SimConfig, mut progress: impl FnMut(&str)) -> Vec<ScenarioResult> {
    let mut results = Vec::new();
    for (index, mut scenario) in scenarios().into_iter().enumerate() {
        if let Some(only) = &config.only_scenarios {
            if !only.contains(&index) {
                continue;
            }
        }
        if let Some(only) = &config.only_metrics {
            scenario.metrics.retain(|m| only.contains(m));
            if scenario.metrics.is_empty() {
                continue;
            }
        }
        let started = std::time::Instant::now();
        let outcomes = run_parallel(config, index, &scenario);
        progress(&format!(
            "{}: {} runs in {:.1} s",
            scenario.name,
            config.runs,
            started.elapsed().as_secs_f64()
        ));
        results.push(ScenarioResult { scenario, outcomes });
    }
    results
}

fn run_parallel(config: &SimConfig, index: usize, scenario: &Scenario) -> Vec<Vec<JudgeOutcome>> {
    let threads = config.threads.min(config.runs).max(1);
    let mut slots: Vec<Option<Vec<JudgeOutcome>>> = vec![None; config.runs];
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|w| {
                s.spawn(move || {
                    (w..config.runs)
                        .step_by(threads)
                        .map(|r| (r, run_one(config, index, scenario, r as u64)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            for (r, outcome) in h.join().expect("simulation worker panicked") {
                slots[r] = Some(outcome);
            }
        }
    });
    slots
        .into_iter()
        .map(|o| o.expect("every run has a result"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::report::summarize;
    use super::runner::{Judge, Metric};
    use super::*;

    /// Few runs, error-rate metric only, so it stays fast in the dev profile.
    fn small(seed: u64, threads: usize) -> SimConfig {
        SimConfig {
            threads,
            only_scenarios: Some(vec![0]),
            only_metrics: Some(vec![Metric::ErrorRate]),
            ..SimConfig::new(60, 30, seed)
        }
    }

    #[test]
    fn deterministic_for_a_seed_whatever_the_threads() {
        let a = simulate(&small(42, 1), |_| {});
        let b = simulate(&small(42, 2), |_| {});
        assert_eq!(a, b);
        let c = simulate(&small(43, 2), |_| {});
        assert_ne!(a, c, "another seed gives other traffic");
    }

    /// Flagger and Argo never send the weight: the daemon's judge told none
    /// must keep its false aborts and its power when the weight steps
    /// within the run (issue 16: within 1.5x of the weight-known rows).
    #[test]
    fn the_daemon_judge_needs_no_weight_when_the_weight_steps() {
        let config = SimConfig {
            threads: 2,
            // Identical arms and the doubled error rate, weight stepping.
            only_scenarios: Some(vec![4, 5]),
            only_metrics: Some(vec![Metric::ErrorRate]),
            ..SimConfig::new(60, 40, 11)
        };
        let results = simulate(&config, |_| {});
        assert!(results.iter().all(|r| r.scenario.steps.is_some()));
        let rows = summarize(&results);
        let pairs = report::weight_unknown_pairs(&rows);
        assert_eq!(pairs.len(), 2);
        for (known, unknown) in pairs {
            let rate = |k: usize, r: &report::Row| k as f64 / r.runs as f64;
            if known.canary_worse {
                let (k, u) = (
                    rate(known.rule_abort, known),
                    rate(unknown.rule_abort, unknown),
                );
                assert!(k >= 0.8, "weight known detects only {k}");
                assert!(u * 1.5 >= k, "weight unknown detects {u}, known {k}");
                let (kl, ul) = (
                    known.median_abort_look.unwrap(),
                    unknown.median_abort_look.unwrap(),
                );
                assert!(ul <= 1.5 * kl, "looks to detect: unknown {ul}, known {kl}");
            } else {
                // alpha = 5 %; 60 runs: a generous bound as below.
                let u = rate(unknown.abort_any, unknown);
                assert!(u <= 0.15, "weight unknown false aborts {u}");
            }
        }
    }

    #[test]
    fn sequential_judge_controls_false_aborts_kayenta_does_not() {
        let results = simulate(&small(7, 2), |_| {});
        let rows = summarize(&results);
        let rate = |judge: Judge| {
            rows.iter()
                .find(|r| r.judge == judge && r.metric == Metric::ErrorRate)
                .map(|r| r.abort_any as f64 / r.runs as f64)
                .expect("row present")
        };
        let bucket = rate(Judge::BucketLabel);
        let mixture = rate(Judge::NormalMixture);
        let kayenta = rate(Judge::KayentaMannWhitney);
        // alpha = 5 %; with 60 runs a generous bound is 15 % (binomial upper
        // tail P(X >= 9 | p = 0.05) < 1 %).
        assert!(bucket <= 0.15, "bucket-label false aborts {bucket}");
        assert!(mixture <= 0.15, "normal-mixture false aborts {mixture}");
        // Overlapping rate() points re-tested at every look: far above alpha.
        assert!(kayenta >= 0.30, "Kayenta false aborts only {kayenta}");
        assert!(kayenta >= bucket + 0.2, "{kayenta} vs {bucket}");
    }
}

//! Conditional odds-ratio e-process: an anytime-valid test that canary
//! requests are no more often "bad" (errors, slow requests) than baseline
//! requests, **whatever the traffic split and however it changes between
//! looks**, with no weight given.
//!
//! # Why conditional
//!
//! A rollout moves the canary's share of traffic at every step, and neither
//! Flagger nor Argo tells the analysis what the share is. A test whose null
//! is "the canary gets share `rho` of every bucket" must know or estimate
//! `rho`; estimated once, it is wrong after the next step, and an e-process
//! whose alternative is centred on a stale share has no power (an erroring
//! canary was promoted that way). This test conditions the share away.
//!
//! # Model
//!
//! Each look's increments form a 2×2 table: requests that are bad
//! (`harmful`) or not, from the canary or the baseline. Condition on the
//! table's margins: the look's bad total `n1`, good total `n0` and canary
//! total `c`. Whatever share of traffic the canary had in that look, if
//! both arms have the same outcome distribution the canary's bad count `x`
//! is hypergeometric; if the canary's odds of a bad outcome are `psi` times
//! the baseline's, it is Fisher's noncentral hypergeometric:
//!
//! ```text
//! f_psi(x | n1, n0, c) = C(n1, x) C(n0, c - x) psi^x / sum_u C(n1, u) C(n0, c - u) psi^u
//! ```
//!
//! The share is in the margin `c` and drops out. With `theta = ln psi` and a
//! prior `pi` on a grid of `theta` values, the e-process is the mixture
//! likelihood ratio of all looks so far:
//!
//! ```text
//! E_T = sum_j pi_j prod_{t <= T} f_{exp theta_j}(x_t | margins_t) / f_1(x_t | margins_t)
//! ```
//!
//! For each fixed `theta` the product is a test martingale under H0 (each
//! factor has conditional mean 1 given the past and the look's margins), and
//! so is their mixture: Ville's inequality bounds `P(sup_T E_T >= 1/alpha)`
//! by `alpha`, for any sequence of splits, any traffic volume over time, and
//! outcome rates that drift with load (a look's table only compares the two
//! arms within that look). A look in which either arm had no traffic, or no
//! request was bad (or none good), has a single possible table: its factor
//! is exactly 1, so such a look neither starts nor moves the test.
//!
//! The evidence accumulates across looks through the common `theta`: the
//! mixture learns the odds ratio, as a Beta mixture learns a share.
//!
//! # Direction
//!
//! One-sided ([`Sidedness::Greater`], the default for a metric that should
//! not increase): the prior sits on `theta > 0` only, so only an excess of
//! bad canary requests builds evidence, and a rejection means harm.
//! Two-sided: the prior is symmetric and the sign of the estimate says which
//! way. The prior is a discretised half-normal (or normal) on `theta` with
//! scale [`OddsRatioConfig::tau`], on [`GRID_POINTS`] points up to
//! [`THETA_MAX`].
//!
//! # Cost
//!
//! A look costs `O(S · G)` exponentials, `S` the number of possible tables
//! (at most `min(n1, n0, c, total - c) + 1`) and `G` the grid size, plus
//! `O(S)` logarithms.

use serde::{Deserialize, Serialize};

use super::{check_alpha, check_positive, p_from_max_log_e};
use crate::error::StatsError;

/// Points of the `theta` grid on each side of 0.
pub const GRID_POINTS: usize = 48;

/// Largest `|theta|` on the grid: an odds ratio of `e^6` (about 400), far
/// beyond any regression a rollout needs to tell apart from "much worse".
pub const THETA_MAX: f64 = 6.0;

/// Which odds ratios the alternative puts its prior on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sidedness {
    /// The canary's odds of a bad outcome are higher (`psi > 1`).
    Greater,
    /// The canary's odds of a bad outcome are lower (`psi < 1`).
    Less,
    /// Either way.
    TwoSided,
}

/// Configuration of an [`OddsRatioEProcess`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct OddsRatioConfig {
    /// Test level in (0, 1).
    pub alpha: f64,
    /// Scale of the (half-)normal prior on `ln psi`; 1 puts most weight on
    /// odds ratios between 1/3 and 3.
    pub tau: f64,
    pub sidedness: Sidedness,
}

/// One look of an [`OddsRatioEProcess`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OddsRatioLook {
    /// Bad and total requests of each arm, over every look so far.
    pub canary_bad: u64,
    pub canary_total: u64,
    pub baseline_bad: u64,
    pub baseline_total: u64,
    /// Looks whose table carried information (both arms had traffic, and
    /// some requests were bad and some good).
    pub informative_looks: u32,
    /// `ln E_T`.
    pub log_e: f64,
    /// `exp(log_e)`, infinite for overwhelming evidence.
    pub e_value: f64,
    /// `min(1, min over looks of 1/E)`; never increases.
    pub always_valid_p: f64,
    /// Posterior mean of `ln psi` under the prior (0 before any evidence):
    /// positive when the canary's odds of a bad outcome are higher.
    pub log_odds_ratio: f64,
    /// `E_T >= 1/alpha` at this look.
    pub crossed: bool,
    /// Latched: some look crossed. The anytime-valid decision.
    pub reject: bool,
}

/// The e-process state: the log likelihood ratio at every grid point, the
/// running maximum of `ln E` and the totals for display. Serializable, so a
/// run resumes it after a restart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OddsRatioEProcess {
    config: OddsRatioConfig,
    /// `theta_j` (grid) and `ln pi_j` (prior).
    theta: Vec<f64>,
    log_prior: Vec<f64>,
    /// `sum_t ln f_{theta_j}(x_t) - ln f_0(x_t)` per grid point.
    log_lr: Vec<f64>,
    max_log_e: f64,
    rejected: bool,
    canary_bad: u64,
    canary_total: u64,
    baseline_bad: u64,
    baseline_total: u64,
    informative_looks: u32,
}

impl OddsRatioEProcess {
    /// A fresh e-process (`E_0 = 1`).
    ///
    /// Errors: `alpha` outside (0, 1); `tau` not finite and > 0.
    pub fn new(config: OddsRatioConfig) -> Result<Self, StatsError> {
        check_alpha(config.alpha)?;
        check_positive("tau", config.tau)?;
        let step = THETA_MAX / GRID_POINTS as f64;
        let positive = (1..=GRID_POINTS).map(|j| j as f64 * step);
        let theta: Vec<f64> = match config.sidedness {
            Sidedness::Greater => positive.collect(),
            Sidedness::Less => positive.map(|t| -t).collect(),
            Sidedness::TwoSided => positive.clone().map(|t| -t).chain(positive).collect(),
        };
        let weights: Vec<f64> = theta
            .iter()
            .map(|t| -0.5 * (t / config.tau).powi(2))
            .collect();
        let norm = log_sum_exp(&weights);
        let log_prior = weights.iter().map(|w| w - norm).collect();
        Ok(Self {
            config,
            log_lr: vec![0.0; theta.len()],
            theta,
            log_prior,
            max_log_e: 0.0,
            rejected: false,
            canary_bad: 0,
            canary_total: 0,
            baseline_bad: 0,
            baseline_total: 0,
            informative_looks: 0,
        })
    }

    pub fn config(&self) -> &OddsRatioConfig {
        &self.config
    }

    /// Whether the test has rejected (latched).
    pub fn rejected(&self) -> bool {
        self.rejected
    }

    /// Absorbs one look's increments: bad and total requests of each arm
    /// since the previous look.
    ///
    /// Errors (state unchanged): a bad count above its total, or totals
    /// that would overflow.
    pub fn observe(
        &mut self,
        (canary_bad, canary_total): (u64, u64),
        (baseline_bad, baseline_total): (u64, u64),
    ) -> Result<OddsRatioLook, StatsError> {
        if canary_bad > canary_total || baseline_bad > baseline_total {
            return Err(StatsError::InvalidParameter {
                name: "bad",
                reason: format!(
                    "bad requests exceed the total: canary {canary_bad}/{canary_total}, \
                     baseline {baseline_bad}/{baseline_total}"
                ),
            });
        }
        let sums = [
            self.canary_bad.checked_add(canary_bad),
            self.canary_total.checked_add(canary_total),
            self.baseline_bad.checked_add(baseline_bad),
            self.baseline_total.checked_add(baseline_total),
            canary_total.checked_add(baseline_total),
        ];
        let [Some(cb), Some(ct), Some(bb), Some(bt), Some(_)] = sums else {
            return Err(StatsError::InvalidParameter {
                name: "counts",
                reason: "cumulative counts overflow u64".into(),
            });
        };
        let table = Table {
            x: canary_bad,
            n1: canary_bad + baseline_bad,
            n0: (canary_total - canary_bad) + (baseline_total - baseline_bad),
            c: canary_total,
        };
        if let Some(increments) = table.log_likelihood_ratios(&self.theta) {
            for (lr, inc) in self.log_lr.iter_mut().zip(increments) {
                *lr += inc;
            }
            self.informative_looks += 1;
        }
        (self.canary_bad, self.canary_total) = (cb, ct);
        (self.baseline_bad, self.baseline_total) = (bb, bt);
        let log_e = self.log_e();
        self.max_log_e = self.max_log_e.max(log_e);
        let crossed = log_e >= (1.0 / self.config.alpha).ln();
        self.rejected |= crossed;
        Ok(OddsRatioLook {
            canary_bad: cb,
            canary_total: ct,
            baseline_bad: bb,
            baseline_total: bt,
            informative_looks: self.informative_looks,
            log_e,
            e_value: log_e.exp(),
            always_valid_p: p_from_max_log_e(self.max_log_e),
            log_odds_ratio: self.posterior_mean(),
            crossed,
            reject: self.rejected,
        })
    }

    /// `ln pi_j + log_lr_j` per grid point: the mixture's terms.
    fn log_terms(&self) -> Vec<f64> {
        self.log_prior
            .iter()
            .zip(&self.log_lr)
            .map(|(p, l)| p + l)
            .collect()
    }

    /// `ln E_T = ln sum_j pi_j exp(log_lr_j)`.
    fn log_e(&self) -> f64 {
        log_sum_exp(&self.log_terms())
    }

    /// Posterior mean of `theta`; 0 while no look carried information.
    fn posterior_mean(&self) -> f64 {
        if self.informative_looks == 0 {
            return 0.0;
        }
        let terms = self.log_terms();
        let norm = log_sum_exp(&terms);
        terms
            .iter()
            .zip(&self.theta)
            .map(|(t, theta)| (t - norm).exp() * theta)
            .sum()
    }
}

/// One look's 2×2 table by its margins: `x` bad canary requests, `n1` bad
/// and `n0` good requests in all, `c` canary requests.
struct Table {
    x: u64,
    n1: u64,
    n0: u64,
    c: u64,
}

impl Table {
    /// `ln f_{theta}(x) - ln f_0(x)` for each `theta`, or `None` when only
    /// one table has these margins (the look carries no information).
    fn log_likelihood_ratios(&self, theta: &[f64]) -> Option<Vec<f64>> {
        let lo = self.c.saturating_sub(self.n0);
        let hi = self.n1.min(self.c);
        if lo >= hi {
            return None;
        }
        // a_u = ln C(n1, u) + ln C(n0, c - u), up to a constant, by the
        // ratio of consecutive terms (no log-gamma per term).
        let (n1, n0, c) = (self.n1 as f64, self.n0 as f64, self.c as f64);
        let mut a = Vec::with_capacity((hi - lo + 1) as usize);
        let mut current = 0.0;
        a.push(current);
        for u in lo..hi {
            let u = u as f64;
            current += ((n1 - u) / (u + 1.0)).ln() + ((c - u) / (n0 - c + u + 1.0)).ln();
            a.push(current);
        }
        let log_norm_0 = log_sum_exp(&a);
        let x_offset = (self.x - lo) as f64;
        let mut shifted = vec![0.0; a.len()];
        Some(
            theta
                .iter()
                .map(|&t| {
                    // Sum over u - lo: the common factor exp(lo * theta)
                    // cancels between x's term and the normaliser.
                    for (k, (s, a_u)) in shifted.iter_mut().zip(&a).enumerate() {
                        *s = a_u + k as f64 * t;
                    }
                    x_offset * t - (log_sum_exp(&shifted) - log_norm_0)
                })
                .collect(),
        )
    }
}

/// `ln sum exp(v)`, exact for large and `-inf` terms.
fn log_sum_exp(values: &[f64]) -> f64 {
    let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + values.iter().map(|v| (v - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::splitmix64::SplitMix64;

    fn process(sidedness: Sidedness) -> OddsRatioEProcess {
        OddsRatioEProcess::new(OddsRatioConfig {
            alpha: 0.05,
            tau: 1.0,
            sidedness,
        })
        .unwrap()
    }

    /// The exact conditional likelihood, by log-gamma, for a check of the
    /// recurrence.
    fn direct(x: u64, n1: u64, n0: u64, c: u64, theta: f64) -> f64 {
        let lchoose = |n: u64, k: u64| {
            statrs::function::gamma::ln_gamma(n as f64 + 1.0)
                - statrs::function::gamma::ln_gamma(k as f64 + 1.0)
                - statrs::function::gamma::ln_gamma((n - k) as f64 + 1.0)
        };
        let lo = c.saturating_sub(n0);
        let hi = n1.min(c);
        let term = |u: u64, t: f64| lchoose(n1, u) + lchoose(n0, c - u) + u as f64 * t;
        let norm = |t: f64| log_sum_exp(&(lo..=hi).map(|u| term(u, t)).collect::<Vec<_>>());
        (term(x, theta) - norm(theta)) - (term(x, 0.0) - norm(0.0))
    }

    #[test]
    fn the_recurrence_matches_the_binomial_coefficients() {
        for &(x, n1, n0, c) in &[(3, 5, 40, 10), (0, 2, 7, 3), (12, 12, 30, 20), (5, 9, 9, 9)] {
            let t = Table { x, n1, n0, c };
            let got = t.log_likelihood_ratios(&[-1.3, 0.0, 0.7, 4.0]).unwrap();
            for (g, theta) in got.iter().zip([-1.3, 0.0, 0.7, 4.0]) {
                let want = direct(x, n1, n0, c, theta);
                assert!(
                    (g - want).abs() < 1e-9,
                    "{x} {n1} {n0} {c} {theta}: {g} vs {want}"
                );
            }
        }
    }

    #[test]
    fn a_look_with_one_possible_table_changes_nothing() {
        let mut p = process(Sidedness::Greater);
        // No canary traffic; no bad request; no good request; no request.
        for (canary, baseline) in [
            ((0, 0), (5, 900)),
            ((0, 50), (0, 900)),
            ((50, 50), (9, 9)),
            ((0, 0), (0, 0)),
        ] {
            let look = p.observe(canary, baseline).unwrap();
            assert_eq!(look.log_e, 0.0);
            assert_eq!(look.informative_looks, 0);
            assert_eq!(look.always_valid_p, 1.0);
        }
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let mut p = process(Sidedness::Greater);
        p.observe((3, 100), (1, 900)).unwrap();
        let before = p.clone();
        assert!(p.observe((101, 100), (1, 900)).is_err());
        assert!(p.observe((1, u64::MAX), (1, 900)).is_err());
        assert_eq!(p, before);
        assert!(OddsRatioEProcess::new(OddsRatioConfig {
            alpha: 1.5,
            tau: 1.0,
            sidedness: Sidedness::Greater
        })
        .is_err());
    }

    /// Binomial(n, p) by inversion on the shared generator.
    fn binomial(rng: &mut SplitMix64, n: u64, p: f64) -> u64 {
        (0..n).filter(|_| rng.next_f64() < p).count() as u64
    }

    /// A rollout with the split stepping 5 → 25 → 50 → 100 % (no weight
    /// given), the outcome rate drifting with time, `looks` looks.
    fn rollout(
        rng: &mut SplitMix64,
        p: &mut OddsRatioEProcess,
        canary_rate: f64,
        baseline_rate: f64,
        looks: usize,
    ) -> Option<usize> {
        let weights = [0.0, 0.05, 0.25, 0.5, 0.95];
        for t in 0..looks {
            let w = weights[(t * weights.len() / looks).min(weights.len() - 1)];
            let drift = 1.0 + 0.5 * (t as f64 / 3.0).sin();
            let n = 400;
            let nc = binomial(rng, n, w);
            let nb = n - nc;
            let cb = binomial(rng, nc, (canary_rate * drift).min(1.0));
            let bb = binomial(rng, nb, (baseline_rate * drift).min(1.0));
            if p.observe((cb, nc), (bb, nb)).unwrap().reject {
                return Some(t + 1);
            }
        }
        None
    }

    #[test]
    fn false_alarms_stay_below_alpha_while_the_split_moves() {
        let mut rng = SplitMix64::new(20261207);
        let runs = 300;
        let mut alarms = 0;
        for _ in 0..runs {
            let mut p = process(Sidedness::TwoSided);
            alarms += rollout(&mut rng, &mut p, 0.03, 0.03, 40).is_some() as usize;
        }
        // alpha = 5 %: the bound is loose in practice; allow sampling noise.
        assert!(alarms as f64 / (runs as f64) < 0.05, "{alarms} of {runs}");
    }

    #[test]
    fn an_erroring_canary_is_caught_within_the_first_steps() {
        let mut rng = SplitMix64::new(7);
        for _ in 0..20 {
            let mut p = process(Sidedness::Greater);
            // 5 % errors against 0.5 %: caught at 5 % or 25 % (looks 9-24), with
            // 20 then 100 canary requests a look.
            let at = rollout(&mut rng, &mut p, 0.05, 0.005, 40).expect("caught");
            assert!(at <= 24, "caught at look {at}, after the 25 % step");
        }
        // And a canary that is better never rejects a one-sided test.
        let mut p = process(Sidedness::Greater);
        assert_eq!(rollout(&mut rng, &mut p, 0.001, 0.05, 40), None);
        assert!(p.observe((0, 10), (5, 10)).unwrap().log_e < 0.0);
    }
}

//! Sample-ratio-mismatch (SRM) check: is traffic split across the arms in the
//! configured proportions? A Dirichlet-multinomial Bayes factor against a
//! known split (Lindon and Malek 2022; docs/statistics/sequential.md).
//!
//! # Statistic
//!
//! With cumulative request counts `n_i` per arm, the configured split
//! `theta0` (e.g. `[0.05, 0.95]` for a 5 % canary) and concentration `k`,
//! `alpha0 = k theta0`:
//!
//! ```text
//! log BF_t = lnB_multi(alpha0 + n_t) - lnB_multi(alpha0) - sum_i n_i ln(theta0_i)
//! lnB_multi(a) = sum_i lnGamma(a_i) - lnGamma(sum_i a_i)
//! ```
//!
//! The Bayes factor of a Dirichlet(`alpha0`) mixture over the split against
//! the point null `theta0` is a test martingale under H0 (each request's arm is
//! an independent draw from `theta0`), so `P(sup_t BF_t >= 1/alpha) <= alpha`.
//! A mismatch means the routing is broken (sticky sessions, a proxy ignoring
//! weights, a crashing canary dropping requests): every other comparison of
//! the step is then suspect, so the daemon should treat it as a blocking
//! condition rather than a metric failure.
//!
//! `k` controls which deviations are targeted: small `k` (savvi uses 100)
//! spreads the prior widely and detects gross mismatches fast; large `k`
//! (ssrm uses 10 000) concentrates near `theta0` and targets small ones.

use serde::{Deserialize, Serialize};

use super::{
    add_increments, check_alpha, check_counts, check_len, check_positive, ln_beta_multi,
    p_from_max_log_e,
};
use crate::error::StatsError;

/// Log Bayes factor of the Dirichlet-multinomial mixture against the known
/// split `theta0` for cumulative counts `counts` (see the module docs).
///
/// All-zero counts give 0 (Bayes factor 1).
///
/// Errors: fewer than 2 arms; lengths differ; a count negative or not
/// finite; `theta0` entries not in (0, 1) or not summing to 1 within 1e-9;
/// `concentration` not finite and > 0.
pub fn dirichlet_multinomial_log_bf(
    counts: &[f64],
    theta0: &[f64],
    concentration: f64,
) -> Result<f64, StatsError> {
    check_theta0(theta0)?;
    check_positive("concentration", concentration)?;
    check_len("counts", theta0.len(), counts.len())?;
    check_counts("counts", counts)?;
    Ok(log_bf_unchecked(counts, theta0, concentration))
}

fn log_bf_unchecked(counts: &[f64], theta0: &[f64], concentration: f64) -> f64 {
    if counts.iter().all(|&n| n == 0.0) {
        return 0.0;
    }
    let prior: Vec<f64> = theta0.iter().map(|&t| concentration * t).collect();
    let posterior: Vec<f64> = prior.iter().zip(counts).map(|(&a, &n)| a + n).collect();
    let log_null: f64 = counts
        .iter()
        .zip(theta0)
        .map(|(&n, &t)| if n > 0.0 { n * t.ln() } else { 0.0 })
        .sum();
    ln_beta_multi(&posterior) - ln_beta_multi(&prior) - log_null
}

fn check_theta0(theta0: &[f64]) -> Result<(), StatsError> {
    if theta0.len() < 2 {
        return Err(StatsError::InvalidParameter {
            name: "theta0",
            reason: format!("at least 2 arms are needed, got {}", theta0.len()),
        });
    }
    if let Some(bad) = theta0.iter().find(|&&t| !(t > 0.0 && t < 1.0)) {
        return Err(StatsError::InvalidParameter {
            name: "theta0",
            reason: format!("each expected share must be strictly between 0 and 1, got {bad}"),
        });
    }
    let sum: f64 = theta0.iter().sum();
    if (sum - 1.0).abs() > 1e-9 {
        return Err(StatsError::InvalidParameter {
            name: "theta0",
            reason: format!("expected shares must sum to 1, got {sum}"),
        });
    }
    Ok(())
}

/// Configuration of a [`SampleRatioMismatch`] check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmConfig {
    /// Configured traffic split per arm (each in (0, 1), summing to 1).
    pub theta0: Vec<f64>,
    /// Dirichlet concentration `k`, finite and > 0 (the vectors use 100).
    pub concentration: f64,
    /// Test level in (0, 1).
    pub alpha: f64,
}

/// One look of a [`SampleRatioMismatch`] check.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SrmLook {
    /// Cumulative requests per arm.
    pub counts: Vec<u64>,
    /// Observed share per arm, `n_i / sum n`; `None` before any request.
    pub observed_share: Option<Vec<f64>>,
    /// The configured split `theta0`.
    pub expected_share: Vec<f64>,
    /// `log BF_t` of this look.
    pub log_bayes_factor: f64,
    /// Running minimum of `exp(-log BF)`, capped at 1.
    pub always_valid_p: f64,
    /// Latched: some look had `log BF >= ln(1/alpha)`.
    pub mismatch: bool,
}

/// Running SRM check fed per-look request-count increments per arm.
/// Serializable so the daemon can persist and resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SampleRatioMismatch {
    config: SrmConfig,
    counts: Vec<u64>,
    max_log_bf: f64,
    mismatch: bool,
}

impl SampleRatioMismatch {
    /// Errors: invalid `theta0`, `concentration` or `alpha` (see
    /// [`dirichlet_multinomial_log_bf`]).
    pub fn new(config: SrmConfig) -> Result<Self, StatsError> {
        check_theta0(&config.theta0)?;
        check_positive("concentration", config.concentration)?;
        check_alpha(config.alpha)?;
        let arms = config.theta0.len();
        Ok(Self {
            config,
            counts: vec![0; arms],
            max_log_bf: 0.0,
            mismatch: false,
        })
    }

    /// Adds one look's request-count increments per arm (in `theta0` order)
    /// and evaluates. Errors (state unchanged): wrong length, or a cumulative
    /// count overflowing `u64`.
    pub fn observe(&mut self, increments: &[u64]) -> Result<SrmLook, StatsError> {
        // Re-check a state restored from storage (it bypassed `new`).
        check_theta0(&self.config.theta0)?;
        check_positive("concentration", self.config.concentration)?;
        check_alpha(self.config.alpha)?;
        check_len("counts", self.config.theta0.len(), self.counts.len())?;
        check_len("increments", self.counts.len(), increments.len())?;
        add_increments("increments", &mut self.counts, increments)?;
        let counts: Vec<f64> = self.counts.iter().map(|&n| n as f64).collect();
        let log_bf = log_bf_unchecked(&counts, &self.config.theta0, self.config.concentration);
        self.max_log_bf = self.max_log_bf.max(log_bf);
        self.mismatch |= log_bf >= (1.0 / self.config.alpha).ln();
        let total: f64 = counts.iter().sum();
        Ok(SrmLook {
            counts: self.counts.clone(),
            observed_share: (total > 0.0).then(|| counts.iter().map(|&n| n / total).collect()),
            expected_share: self.config.theta0.clone(),
            log_bayes_factor: log_bf,
            always_valid_p: p_from_max_log_e(self.max_log_bf),
            mismatch: self.mismatch,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn srm() -> SampleRatioMismatch {
        SampleRatioMismatch::new(SrmConfig {
            theta0: vec![0.05, 0.95],
            concentration: 100.0,
            alpha: 0.05,
        })
        .unwrap()
    }

    #[test]
    fn empty_and_all_zero_looks() {
        let mut s = srm();
        let look = s.observe(&[0, 0]).unwrap();
        assert_eq!(look.log_bayes_factor, 0.0);
        assert_eq!(look.always_valid_p, 1.0);
        assert_eq!(look.observed_share, None);
        assert!(!look.mismatch);
    }

    #[test]
    fn one_arm_only_is_a_mismatch() {
        // All traffic to the baseline for a long time: the canary is not
        // receiving its 5 %.
        let mut s = srm();
        let look = s.observe(&[0, 2000]).unwrap();
        assert!(look.mismatch, "{look:?}");
        assert_eq!(look.observed_share, Some(vec![0.0, 1.0]));
    }

    #[test]
    fn matches_naive_formula_for_small_counts() {
        use statrs::function::gamma::ln_gamma;
        let (n, theta, k) = ([3.0, 17.0, 5.0], [0.2, 0.5, 0.3], 10.0);
        let a: Vec<f64> = theta.iter().map(|t| k * t).collect();
        let lb = |v: &[f64]| v.iter().map(|&x| ln_gamma(x)).sum::<f64>() - ln_gamma(v.iter().sum());
        let post: Vec<f64> = a.iter().zip(&n).map(|(a, n)| a + n).collect();
        let naive = lb(&post) - lb(&a) - n.iter().zip(&theta).map(|(n, t)| n * t.ln()).sum::<f64>();
        let got = dirichlet_multinomial_log_bf(&n, &theta, k).unwrap();
        assert!((got - naive).abs() < 1e-12, "{got} vs {naive}");
    }

    #[test]
    fn invalid_input() {
        assert!(dirichlet_multinomial_log_bf(&[1.0, 2.0], &[0.5, 0.6], 100.0).is_err());
        assert!(dirichlet_multinomial_log_bf(&[1.0, 2.0], &[0.0, 1.0], 100.0).is_err());
        assert!(dirichlet_multinomial_log_bf(&[1.0], &[1.0], 100.0).is_err());
        assert!(dirichlet_multinomial_log_bf(&[1.0, 2.0], &[0.5, 0.5], 0.0).is_err());
        assert!(dirichlet_multinomial_log_bf(&[1.0, f64::NAN], &[0.5, 0.5], 1.0).is_err());
        assert!(dirichlet_multinomial_log_bf(&[1.0, 2.0, 3.0], &[0.5, 0.5], 1.0).is_err());
        let mut s = srm();
        s.observe(&[5, 95]).unwrap();
        let before = s.clone();
        assert!(s.observe(&[1, 2, 3]).is_err());
        assert!(s.observe(&[u64::MAX, 0]).is_err());
        assert_eq!(s, before);
        let json = serde_json::to_string(&s).unwrap();
        assert_eq!(
            serde_json::from_str::<SampleRatioMismatch>(&json).unwrap(),
            s
        );
    }
}

//! Gamma-Poisson e-process for two event counts with **equal exposure**
//! (docs/statistics/sequential.md; the gamma mixture of Lindon and Kallus 2024).
//!
//! # Statistic
//!
//! For one arm with `N` events and cumulative null intensity `Lambda`, mixing
//! a multiplicative rate change `theta ~ Gamma(phi, phi)` (mean 1) over the
//! alternative `N ~ Poisson(theta Lambda)` gives the Bayes factor
//!
//! ```text
//! log BF(N; phi, Lambda) = phi ln phi - (phi + N) ln(phi + Lambda)
//!                          + lnGamma(phi + N) - lnGamma(phi) + Lambda
//! ```
//!
//! For two arms A and B under `H0: lambda_A(t) = lambda_B(t)` (any common,
//! unknown, time-varying intensity), the product `BF_A(Lambda) BF_B(Lambda)`
//! at the true common `Lambda` is a test martingale; its infimum over
//! `Lambda` is attained at `Lambda_hat = (N_A + N_B) / 2` and is therefore a
//! valid e-process:
//!
//! ```text
//! log_p_raw_t = -( log BF(N_A; phi, Lambda_hat) + log BF(N_B; phi, Lambda_hat) ),
//! p_t = min(1, min_{s<=t} exp(log_p_raw_s))
//! ```
//!
//! # Caveat: equal exposure only
//!
//! H0 here is "the two arms have the same event intensity", which is the
//! right null only when the arms receive the same exposure (a 50/50 split,
//! or two equally sized pod groups under the same load). A canary with 5 % of
//! the traffic naturally has about 1/19 of the baseline's events and this
//! test would reject at once. For unequal splits use the bucket-label
//! e-process (with a non-event bucket as denominator) or the SRM-style test
//! on event labels with the known allocation.
//!
//! The e-value is two-sided: it grows when either arm has more events; the
//! look reports which arm has more for the caller's direction check.

use serde::{Deserialize, Serialize};

use super::{check_alpha, check_positive, ln_gamma_ratio, p_from_max_log_e};
use crate::error::StatsError;

/// `log BF(N; phi, Lambda)` of the gamma(`phi`, `phi`) mixture over a
/// multiplicative Poisson rate against rate 1 with cumulative intensity
/// `lambda` (see the module docs).
///
/// Errors: `n` or `lambda` negative or not finite; `phi` not finite and > 0.
pub fn gamma_poisson_log_bf(n: f64, phi: f64, lambda: f64) -> Result<f64, StatsError> {
    check_positive("phi", phi)?;
    for (name, value) in [("n", n), ("lambda", lambda)] {
        if !(value.is_finite() && value >= 0.0) {
            return Err(StatsError::InvalidParameter {
                name,
                reason: format!("must be finite and >= 0, got {value}"),
            });
        }
    }
    Ok(log_bf_unchecked(n, phi, lambda))
}

fn log_bf_unchecked(n: f64, phi: f64, lambda: f64) -> f64 {
    // phi ln phi - (phi + N) ln(phi + Lambda) rearranged as
    // -phi ln1p(Lambda/phi) - N ln(phi + Lambda), and the lnGamma difference
    // taken as one ratio, so that nothing of size N ln N cancels needlessly.
    let n_term = if n > 0.0 {
        n * (phi + lambda).ln()
    } else {
        0.0
    };
    -phi * (lambda / phi).ln_1p() - n_term + ln_gamma_ratio(phi, n) + lambda
}

/// Configuration of a [`GammaPoisson`] e-process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaPoissonConfig {
    /// Gamma mixture shape and rate `phi`, finite and > 0 (the vector uses
    /// 20); larger values target smaller rate ratios.
    pub phi: f64,
    /// Test level in (0, 1).
    pub alpha: f64,
}

/// One look of a [`GammaPoisson`] e-process.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GammaPoissonLook {
    /// Cumulative events of arm A.
    pub n_a: u64,
    /// Cumulative events of arm B.
    pub n_b: u64,
    /// `(N_A + N_B) / 2`, the least favourable common intensity.
    pub lambda_hat: f64,
    pub log_bf_a: f64,
    pub log_bf_b: f64,
    /// `-(log_bf_a + log_bf_b)`: minus the log e-value of this look.
    pub log_p_raw: f64,
    /// Running minimum of `exp(log_p_raw)`, capped at 1.
    pub always_valid_p: f64,
    /// Latched: some look had `-log_p_raw >= ln(1/alpha)`.
    pub reject: bool,
    /// `n_a > n_b`: arm A has the excess (a direction hint, not a test).
    pub a_has_more: bool,
}

/// Two-arm gamma-Poisson e-process on event-count increments, valid only for
/// equal exposure (see the module caveat). Serializable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GammaPoisson {
    config: GammaPoissonConfig,
    n_a: u64,
    n_b: u64,
    max_log_e: f64,
    rejected: bool,
}

impl GammaPoisson {
    /// Errors: `phi` not finite and > 0; `alpha` outside (0, 1).
    pub fn new(config: GammaPoissonConfig) -> Result<Self, StatsError> {
        check_positive("phi", config.phi)?;
        check_alpha(config.alpha)?;
        Ok(Self {
            config,
            n_a: 0,
            n_b: 0,
            max_log_e: 0.0,
            rejected: false,
        })
    }

    /// Adds one look's event increments and evaluates. With no events yet,
    /// `Lambda_hat = 0`, both Bayes factors are 1 and `p = 1`.
    /// Errors (state unchanged): a cumulative count overflowing `u64`.
    pub fn observe(&mut self, a: u64, b: u64) -> Result<GammaPoissonLook, StatsError> {
        // Re-check a state restored from storage (it bypassed `new`).
        check_positive("phi", self.config.phi)?;
        check_alpha(self.config.alpha)?;
        let (Some(n_a), Some(n_b)) = (self.n_a.checked_add(a), self.n_b.checked_add(b)) else {
            return Err(StatsError::InvalidParameter {
                name: "events",
                reason: "cumulative event count overflows u64".to_string(),
            });
        };
        self.n_a = n_a;
        self.n_b = n_b;
        let (fa, fb) = (n_a as f64, n_b as f64);
        let lambda_hat = 0.5 * (fa + fb);
        let log_bf_a = log_bf_unchecked(fa, self.config.phi, lambda_hat);
        let log_bf_b = log_bf_unchecked(fb, self.config.phi, lambda_hat);
        let log_e = log_bf_a + log_bf_b;
        self.max_log_e = self.max_log_e.max(log_e);
        self.rejected |= log_e >= (1.0 / self.config.alpha).ln();
        Ok(GammaPoissonLook {
            n_a,
            n_b,
            lambda_hat,
            log_bf_a,
            log_bf_b,
            log_p_raw: -log_e,
            always_valid_p: p_from_max_log_e(self.max_log_e),
            reject: self.rejected,
            a_has_more: n_a > n_b,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::function::gamma::ln_gamma;

    #[test]
    fn matches_naive_formula() {
        for &(n, phi, lambda) in &[(10.0, 20.0, 11.0), (0.0, 20.0, 3.0), (7.0, 0.5, 2.0)] {
            let naive = phi * f64::ln(phi) - (phi + n) * f64::ln(phi + lambda) + ln_gamma(phi + n)
                - ln_gamma(phi)
                + lambda;
            let got = gamma_poisson_log_bf(n, phi, lambda).unwrap();
            assert!((got - naive).abs() < 1e-12, "{got} vs {naive}");
        }
        assert_eq!(gamma_poisson_log_bf(0.0, 20.0, 0.0).unwrap(), 0.0);
        assert!(gamma_poisson_log_bf(-1.0, 20.0, 0.0).is_err());
        assert!(gamma_poisson_log_bf(1.0, 0.0, 0.0).is_err());
        assert!(gamma_poisson_log_bf(1.0, 1.0, f64::NAN).is_err());
    }

    #[test]
    fn no_events_and_equal_counts() {
        let mut g = GammaPoisson::new(GammaPoissonConfig {
            phi: 20.0,
            alpha: 0.05,
        })
        .unwrap();
        let look = g.observe(0, 0).unwrap();
        assert_eq!((look.log_p_raw, look.always_valid_p), (0.0, 1.0));
        // Equal counts: each Bayes factor is below 1 at Lambda = N.
        let look = g.observe(50, 50).unwrap();
        assert!(look.log_p_raw > 0.0 && look.always_valid_p == 1.0 && !look.reject);
        let before = g.clone();
        assert!(g.observe(u64::MAX, 0).is_err());
        assert_eq!(g, before);
        assert!(GammaPoisson::new(GammaPoissonConfig {
            phi: 20.0,
            alpha: 0.0
        })
        .is_err());
    }
}

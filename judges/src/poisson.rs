//! Comparison of two Poisson rates with unequal exposures by the conditional
//! binomial test, as R `poisson.test(c(k1, k2), c(t1, t2))` (two-sample) and
//! `scipy.stats.binomtest(k1, k1 + k2, t1/(t1 + t2))`.
//!
//! Given `n = k1 + k2` events in total, equal rates make
//! `k1 ~ Binomial(n, p0)` with `p0 = t1/(t1 + t2)`: exact for any exposure
//! ratio and cheap.
//!
//! ```text
//! greater: P(X >= k1) = I_{p0}(k1, n - k1 + 1)
//! less:    P(X <= k1) = I_{1-p0}(n - k1, k1 + 1)
//! two-sided (R binom.test / scipy binomtest): with d = P(X = k1), m = n p0,
//!   k1 == m: 1
//!   k1 <  m: P(X <= k1) + P(X >= j), j the first i >= ceil(m) with P(X = i) <= d (1 + 1e-7)
//!   k1 >  m: P(X <= j) + P(X >= k1), j the last i <= floor(m) with P(X = i) <= d (1 + 1e-7)
//! rate ratio = (k1/t1) / (k2/t2)
//! CI of the ratio = pi/(1 - pi) * t2/t1 over the Clopper-Pearson interval pi of p:
//!   lower pi = qbeta(a, k1, n - k1 + 1) (0 if k1 = 0),
//!   upper pi = qbeta(1 - a, k1 + 1, n - k1) (1 if k1 = n),
//!   a = (1 - conf)/2 two-sided; one-sided: (lower at a = 1 - conf, inf) or (0, upper).
//! ```
//! Tail sums use the regularized incomplete beta function (statrs
//! `beta_reg`), never `1 - cdf`. The Beta quantile is statrs' `inv_beta_reg`
//! polished by safeguarded Newton steps so the interval ends carry full
//! double precision (R's `qbeta` does).
//!
//! The `1 + 1e-7` relative tolerance is R's and scipy's: it makes outcomes
//! whose probability equals `d` mathematically count despite rounding. The
//! reference p-values match this definition.
//!
//! Prefer this test over `scipy.stats.poisson_means_test` (E-test) for
//! unbalanced exposures: its two-sided p counts the `k1 = 0` outcomes as
//! extreme and can be far larger (0.063 vs 0.0045 for 12/3600 s vs 40/32400 s).

use serde::Serialize;
use statrs::function::beta::{beta_reg, inv_beta_reg, ln_beta};
use statrs::function::gamma::ln_gamma;

use crate::alternative::Alternative;
use crate::error::{check_conf_level, StatsError};

/// Options of [`poisson_rate_comparison`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoissonRateConfig {
    /// Which departure to test; `Greater` = canary rate larger.
    pub alternative: Alternative,
    /// Confidence level of `conf_int`, strictly between 0 and 1.
    pub conf_level: f64,
}

impl Default for PoissonRateConfig {
    /// Two-sided at 95 %, R's defaults.
    fn default() -> Self {
        PoissonRateConfig {
            alternative: Alternative::TwoSided,
            conf_level: 0.95,
        }
    }
}

/// Result of [`poisson_rate_comparison`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PoissonRateComparison {
    /// Exact conditional p-value for the configured alternative; 1 with no
    /// events at all.
    pub p_value: f64,
    /// `(k1/t1) / (k2/t2)`: `inf` when only the canary has events, 0 when only
    /// the baseline has, NaN when neither has.
    pub rate_ratio: f64,
    /// Interval of the rate ratio as R `poisson.test`; `(0, inf)` when there
    /// are no events, the open end of a one-sided interval is 0 or `inf`.
    pub conf_int: (f64, f64),
}

/// Compares the canary rate `counts[0]/exposures[0]` with the baseline rate
/// `counts[1]/exposures[1]` (events per request, per pod-second, ...).
///
/// # Errors
///
/// [`StatsError::InvalidParameter`] when an exposure is not finite and
/// positive, the total count overflows, or `conf_level` is outside (0, 1).
pub fn poisson_rate_comparison(
    counts: [u64; 2],
    exposures: [f64; 2],
    config: &PoissonRateConfig,
) -> Result<PoissonRateComparison, StatsError> {
    check_conf_level(config.conf_level)?;
    for t in exposures {
        if !(t.is_finite() && t > 0.0) {
            return Err(StatsError::InvalidParameter {
                name: "exposures",
                reason: format!("must be finite and positive, got {t}"),
            });
        }
    }
    let n = counts[0]
        .checked_add(counts[1])
        .ok_or_else(|| StatsError::InvalidParameter {
            name: "counts",
            reason: "the total count overflows u64".into(),
        })?;
    let [t1, t2] = exposures;
    let (k1, k2) = (counts[0] as f64, counts[1] as f64);
    let rate_ratio = (k1 / t1) / (k2 / t2);
    let binom = Binom {
        n: n as f64,
        p: t1 / (t1 + t2),
        q: t2 / (t1 + t2),
    };

    let p_value = if n == 0 {
        1.0
    } else {
        match config.alternative {
            Alternative::Greater => binom.sf_ge(k1),
            Alternative::Less => binom.cdf(k1),
            Alternative::TwoSided => binom.two_sided(k1),
        }
    };

    let alpha = 1.0 - config.conf_level;
    let (lower_level, upper_level) = match config.alternative {
        Alternative::TwoSided => (Some(alpha / 2.0), Some(alpha / 2.0)),
        Alternative::Greater => (Some(alpha), None),
        Alternative::Less => (None, Some(alpha)),
    };
    let nf = n as f64;
    let pi_lower = match lower_level {
        Some(a) if k1 > 0.0 => beta_quantile(a, k1, nf - k1 + 1.0),
        _ => 0.0,
    };
    let pi_upper = match upper_level {
        Some(a) if k1 < nf => beta_quantile(1.0 - a, k1 + 1.0, nf - k1),
        _ => 1.0,
    };
    // pi/(1 - pi) * t2/t1; pi = 1 maps to inf.
    let to_ratio = |pi: f64| {
        if pi >= 1.0 {
            f64::INFINITY
        } else {
            pi / (1.0 - pi) * t2 / t1
        }
    };
    Ok(PoissonRateComparison {
        p_value,
        rate_ratio,
        conf_int: (to_ratio(pi_lower), to_ratio(pi_upper)),
    })
}

/// Binomial(n, p) with `q = 1 - p` computed separately (from the exposures)
/// so neither tail loses precision to `1 - p`.
struct Binom {
    n: f64,
    p: f64,
    q: f64,
}

impl Binom {
    /// `ln P(X = k)`.
    fn ln_pmf(&self, k: f64) -> f64 {
        let ln_choose = ln_gamma(self.n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(self.n - k + 1.0);
        // 0 * ln(0) terms vanish: only reachable for p or q = 0, excluded by
        // positive exposures, but keep the convention explicit.
        let a = if k == 0.0 { 0.0 } else { k * self.p.ln() };
        let b = if k == self.n {
            0.0
        } else {
            (self.n - k) * self.q.ln()
        };
        ln_choose + a + b
    }

    /// `P(X <= k)`.
    fn cdf(&self, k: f64) -> f64 {
        if k < 0.0 {
            0.0
        } else if k >= self.n {
            1.0
        } else {
            beta_reg(self.n - k, k + 1.0, self.q)
        }
    }

    /// `P(X >= k)`.
    fn sf_ge(&self, k: f64) -> f64 {
        if k <= 0.0 {
            1.0
        } else if k > self.n {
            0.0
        } else {
            beta_reg(k, self.n - k + 1.0, self.p)
        }
    }

    /// Two-sided p-value of R `binom.test` / scipy `binomtest`: the
    /// probability of outcomes no more likely than `k` (relative tolerance
    /// 1e-7). On each side of the mean the pmf is monotone, so the cut on the
    /// opposite side is found by bisection.
    fn two_sided(&self, k: f64) -> f64 {
        let m = self.n * self.p;
        if k == m {
            return 1.0;
        }
        let limit = self.ln_pmf(k) + (1e-7f64).ln_1p();
        let p = if k < m {
            // First i in [ceil(m), n] with pmf(i) <= limit (pmf nonincreasing
            // there); n + 1 if none.
            let (mut lo, mut hi) = (m.ceil(), self.n + 1.0);
            while lo < hi {
                let mid = ((lo + hi) / 2.0).floor();
                if self.ln_pmf(mid) <= limit {
                    hi = mid;
                } else {
                    lo = mid + 1.0;
                }
            }
            self.cdf(k) + self.sf_ge(lo)
        } else {
            // Last i in [0, floor(m)] with pmf(i) <= limit (pmf nondecreasing
            // there); -1 if none.
            let (mut lo, mut hi) = (-1.0, m.floor());
            while lo < hi {
                let mid = ((lo + hi + 1.0) / 2.0).floor();
                if self.ln_pmf(mid) <= limit {
                    lo = mid;
                } else {
                    hi = mid - 1.0;
                }
            }
            self.cdf(lo) + self.sf_ge(k)
        };
        p.min(1.0)
    }
}

/// Quantile of Beta(a, b) at `prob`: statrs' `inv_beta_reg` as the start,
/// then Newton steps on `I_x(a, b) - prob` kept inside a bracket that every
/// evaluation narrows, until the step is below 1e-15 relative.
fn beta_quantile(prob: f64, a: f64, b: f64) -> f64 {
    let ln_b = ln_beta(a, b);
    let mut x = inv_beta_reg(a, b, prob).clamp(0.0, 1.0);
    let (mut lo, mut hi) = (0.0_f64, 1.0_f64);
    for _ in 0..100 {
        if x <= 0.0 || x >= 1.0 {
            x = 0.5 * (lo + hi);
        }
        let f = beta_reg(a, b, x) - prob;
        if f == 0.0 {
            return x;
        }
        if f < 0.0 {
            lo = x;
        } else {
            hi = x;
        }
        let ln_pdf = (a - 1.0) * x.ln() + (b - 1.0) * (-x).ln_1p() - ln_b;
        let newton = x - f / ln_pdf.exp();
        let next = if newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        if (next - x).abs() <= 1e-15 * x || hi - lo <= 1e-15 * x {
            return next;
        }
        x = next;
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    fn cfg(alternative: Alternative) -> PoissonRateConfig {
        PoissonRateConfig {
            alternative,
            conf_level: 0.95,
        }
    }

    #[test]
    fn invalid_exposures_rejected() {
        for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(matches!(
                poisson_rate_comparison([1, 2], [t, 1.0], &cfg(Alternative::TwoSided)),
                Err(StatsError::InvalidParameter {
                    name: "exposures",
                    ..
                })
            ));
        }
        assert!(
            poisson_rate_comparison([u64::MAX, 1], [1.0, 1.0], &PoissonRateConfig::default())
                .is_err()
        );
        let bad = PoissonRateConfig {
            conf_level: 0.0,
            ..PoissonRateConfig::default()
        };
        assert!(poisson_rate_comparison([1, 1], [1.0, 1.0], &bad).is_err());
    }

    #[test]
    fn no_events_at_all() {
        for alt in [
            Alternative::TwoSided,
            Alternative::Greater,
            Alternative::Less,
        ] {
            let r = poisson_rate_comparison([0, 0], [10.0, 20.0], &cfg(alt)).unwrap();
            assert_eq!(r.p_value, 1.0);
            assert!(r.rate_ratio.is_nan());
            assert_eq!(r.conf_int, (0.0, f64::INFINITY));
        }
    }

    #[test]
    fn events_on_one_side_only() {
        let r = poisson_rate_comparison([5, 0], [1.0, 1.0], &cfg(Alternative::Greater)).unwrap();
        assert_eq!(r.rate_ratio, f64::INFINITY);
        // P(X >= 5 | n = 5, p = 1/2) = 1/32.
        assert!(close(r.p_value, 1.0 / 32.0, 1e-14), "{}", r.p_value);
        assert_eq!(r.conf_int.1, f64::INFINITY);
        // Clopper-Pearson lower bound of 5/5 at 5 %: 0.05^(1/5).
        let pi = 0.05f64.powf(0.2);
        assert!(close(r.conf_int.0, pi / (1.0 - pi), 1e-12));
        let r = poisson_rate_comparison([0, 5], [1.0, 1.0], &cfg(Alternative::TwoSided)).unwrap();
        assert_eq!(r.rate_ratio, 0.0);
        assert_eq!(r.conf_int.0, 0.0);
        assert!(close(r.p_value, 2.0 / 32.0, 1e-14));
    }

    #[test]
    fn symmetric_two_sided_ties_counted() {
        // Equal exposures, n = 4, k = 1: P(1) = P(3) mathematically; both
        // tails count: p = 2 (1 + 4)/16.
        let r = poisson_rate_comparison([1, 3], [2.5, 2.5], &cfg(Alternative::TwoSided)).unwrap();
        assert!(close(r.p_value, 10.0 / 16.0, 1e-14), "{}", r.p_value);
        let r = poisson_rate_comparison([3, 1], [2.5, 2.5], &cfg(Alternative::TwoSided)).unwrap();
        assert!(close(r.p_value, 10.0 / 16.0, 1e-14), "{}", r.p_value);
        // At the mean: exactly 1.
        let r = poisson_rate_comparison([2, 2], [1.0, 1.0], &cfg(Alternative::TwoSided)).unwrap();
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn beta_quantile_inverts_beta_reg() {
        for &(p, a, b) in &[
            (0.025, 12.0, 41.0),
            (0.975, 13.0, 40.0),
            (1e-6, 3.0, 1000.0),
            (0.5, 1.0, 1.0),
        ] {
            let x = beta_quantile(p, a, b);
            assert!(close(beta_reg(a, b, x), p, 1e-12), "{p} {a} {b} -> {x}");
        }
    }

    #[test]
    fn tiny_p_keeps_relative_precision() {
        // 200 canary events vs 0 at equal exposure: p = 2^-200.
        let r = poisson_rate_comparison([200, 0], [1.0, 1.0], &cfg(Alternative::Greater)).unwrap();
        assert!(close(r.p_value, 2f64.powi(-200), 1e-12), "{:e}", r.p_value);
    }
}

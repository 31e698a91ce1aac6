//! Welch's unequal-variance two-sample t-test, as
//! `scipy.stats.ttest_ind(x, y, equal_var=False)` and R
//! `t.test(x, y, var.equal = FALSE)`.
//!
//! ```text
//! v_x = s_x^2 / n_x,  v_y = s_y^2 / n_y        (sample variances, ddof = 1)
//! se  = sqrt(v_x + v_y)
//! t   = (mean_x - mean_y) / se
//! df  = (v_x + v_y)^2 / ( v_x^2/(n_x - 1) + v_y^2/(n_y - 1) )   (Welch-Satterthwaite)
//! p   = 2 sf_t(|t|; df)       two-sided
//!       sf_t(t; df)           greater (canary mean larger)
//!       sf_t(-t; df)          less
//! CI  = (mean_x - mean_y) -/+ q_t(1 - alpha/2; df) se    two-sided
//!       (diff - q_t(conf; df) se, +inf)                   greater
//!       (-inf, diff + q_t(conf; df) se)                   less
//! ```
//!
//! Tail probabilities come from the regularized incomplete beta function via
//! statrs' `StudentsT` (fractional `df`), never as `1 - cdf`, so tiny p-values
//! keep their relative precision.
//!
//! # Degenerate input: both variances zero
//!
//! With `se = 0` the statistic is `0/0` or `±c/0`, and scipy returns NaN for
//! identical constants. Verdict needs a decision instead of a NaN, so:
//!
//! * identical constants (`mean_x == mean_y`): `t = 0`, `p = 1`: the two
//!   arms are indistinguishable, which is the honest reading of no data spread;
//! * different constants: `t = ±inf`, and the p-value is 0 when the
//!   alternative points in the direction of the difference (1 otherwise): two
//!   noise-free samples with different values differ with certainty.
//!   The interval collapses to the observed difference (`(d, d)` two-sided,
//!   `(d, inf)` / `(-inf, d)` one-sided).
//!
//! In both cases `df` is NaN: there is no variance from which to estimate it.
//! Callers who distrust certainty from constant data should look at `var_x`
//! and `var_y` (both 0).

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use crate::alternative::Alternative;
use crate::error::{check_conf_level, check_values, StatsError};

/// Options of [`welch`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchConfig {
    /// Which departure from equal means to test; `Greater` = canary mean larger.
    pub alternative: Alternative,
    /// Confidence level of `conf_int`, strictly between 0 and 1.
    pub conf_level: f64,
}

impl Default for WelchConfig {
    /// Two-sided at 95 %, the defaults of scipy and R.
    fn default() -> Self {
        WelchConfig {
            alternative: Alternative::TwoSided,
            conf_level: 0.95,
        }
    }
}

/// Result of [`welch`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Welch {
    /// `(mean_x - mean_y) / se`; `0` or `±inf` when both variances are zero.
    pub t: f64,
    /// Welch-Satterthwaite degrees of freedom (fractional); NaN when both
    /// variances are zero.
    pub df: f64,
    /// p-value for the configured alternative.
    pub p_value: f64,
    /// Mean of the canary sample.
    pub mean_x: f64,
    /// Mean of the baseline sample.
    pub mean_y: f64,
    /// Sample variance (ddof = 1) of the canary.
    pub var_x: f64,
    /// Sample variance (ddof = 1) of the baseline.
    pub var_y: f64,
    /// Confidence interval of `mean_x - mean_y`; the open end of a one-sided
    /// interval is `±inf`.
    pub conf_int: (f64, f64),
}

/// Mean and sample variance (ddof = 1) by two passes: the second pass sums
/// squared deviations from the mean, which avoids the cancellation of the
/// `sum(x^2) - n mean^2` shortcut (numpy's `var` does the same).
fn mean_var(values: &[f64]) -> (f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let ss: f64 = values.iter().map(|v| (v - mean) * (v - mean)).sum();
    (mean, ss / (n - 1.0))
}

/// Welch's t-test of `x` (canary) against `y` (baseline).
///
/// # Errors
///
/// * [`StatsError::TooFewValues`] when a sample has fewer than 2 values (its
///   variance is undefined);
/// * [`StatsError::NonFinite`] for NaN or ±inf anywhere in the input;
/// * [`StatsError::InvalidParameter`] for `conf_level` outside (0, 1).
pub fn welch(x: &[f64], y: &[f64], config: &WelchConfig) -> Result<Welch, StatsError> {
    check_conf_level(config.conf_level)?;
    for (sample, values) in [("x", x), ("y", y)] {
        if values.len() < 2 {
            return Err(StatsError::TooFewValues {
                sample,
                len: values.len(),
                needed: 2,
            });
        }
        check_values(sample, values, false)?;
    }
    let (mean_x, var_x) = mean_var(x);
    let (mean_y, var_y) = mean_var(y);
    let nx = x.len() as f64;
    let ny = y.len() as f64;
    let vx = var_x / nx;
    let vy = var_y / ny;
    let diff = mean_x - mean_y;
    let se2 = vx + vy;

    if se2 == 0.0 {
        return Ok(degenerate(
            diff,
            mean_x,
            mean_y,
            var_x,
            var_y,
            config.alternative,
        ));
    }

    let se = se2.sqrt();
    let t = diff / se;
    let df = se2 * se2 / (vx * vx / (nx - 1.0) + vy * vy / (ny - 1.0));
    let dist = StudentsT::new(0.0, 1.0, df).map_err(|e| StatsError::InvalidParameter {
        name: "df",
        reason: e.to_string(),
    })?;
    let alpha = 1.0 - config.conf_level;
    let (p_value, conf_int) = match config.alternative {
        Alternative::TwoSided => {
            // min(1, ..): 2 sf(0) is exactly 1 in theory; keep rounding from
            // producing 1 + ulp.
            let p = (2.0 * dist.sf(t.abs())).min(1.0);
            let q = dist.inverse_cdf(1.0 - alpha / 2.0);
            (p, (diff - q * se, diff + q * se))
        }
        Alternative::Greater => {
            let q = dist.inverse_cdf(config.conf_level);
            (dist.sf(t), (diff - q * se, f64::INFINITY))
        }
        Alternative::Less => {
            let q = dist.inverse_cdf(config.conf_level);
            (dist.sf(-t), (f64::NEG_INFINITY, diff + q * se))
        }
    };
    Ok(Welch {
        t,
        df,
        p_value,
        mean_x,
        mean_y,
        var_x,
        var_y,
        conf_int,
    })
}

/// Both samples constant: see the module documentation for why these values.
fn degenerate(
    diff: f64,
    mean_x: f64,
    mean_y: f64,
    var_x: f64,
    var_y: f64,
    alternative: Alternative,
) -> Welch {
    let t = if diff == 0.0 {
        0.0
    } else {
        diff.signum() * f64::INFINITY
    };
    let p_value = match alternative {
        _ if diff == 0.0 => 1.0,
        Alternative::TwoSided => 0.0,
        Alternative::Greater => {
            if diff > 0.0 {
                0.0
            } else {
                1.0
            }
        }
        Alternative::Less => {
            if diff < 0.0 {
                0.0
            } else {
                1.0
            }
        }
    };
    let conf_int = match alternative {
        Alternative::TwoSided => (diff, diff),
        Alternative::Greater => (diff, f64::INFINITY),
        Alternative::Less => (f64::NEG_INFINITY, diff),
    };
    Welch {
        t,
        df: f64::NAN,
        p_value,
        mean_x,
        mean_y,
        var_x,
        var_y,
        conf_int,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(alternative: Alternative) -> WelchConfig {
        WelchConfig {
            alternative,
            conf_level: 0.95,
        }
    }

    #[test]
    fn default_is_two_sided_95() {
        let c = WelchConfig::default();
        assert_eq!(c.alternative, Alternative::TwoSided);
        assert_eq!(c.conf_level, 0.95);
    }

    #[test]
    fn too_few_values_on_either_side() {
        let err = welch(&[1.0], &[1.0, 2.0], &WelchConfig::default()).unwrap_err();
        assert_eq!(
            err,
            StatsError::TooFewValues {
                sample: "x",
                len: 1,
                needed: 2
            }
        );
        let err = welch(&[1.0, 2.0], &[], &WelchConfig::default()).unwrap_err();
        assert!(matches!(
            err,
            StatsError::TooFewValues {
                sample: "y",
                len: 0,
                ..
            }
        ));
    }

    #[test]
    fn non_finite_rejected() {
        let err = welch(&[1.0, f64::NAN], &[1.0, 2.0], &WelchConfig::default()).unwrap_err();
        assert!(matches!(
            err,
            StatsError::NonFinite {
                sample: "x",
                index: 1,
                ..
            }
        ));
        let err = welch(&[1.0, 2.0], &[f64::INFINITY, 2.0], &WelchConfig::default()).unwrap_err();
        assert!(matches!(
            err,
            StatsError::NonFinite {
                sample: "y",
                index: 0,
                ..
            }
        ));
    }

    #[test]
    fn bad_conf_level_rejected() {
        for conf_level in [0.0, 1.0, f64::NAN, 1.5] {
            let c = WelchConfig {
                alternative: Alternative::TwoSided,
                conf_level,
            };
            assert!(matches!(
                welch(&[1.0, 2.0], &[1.0, 2.0], &c),
                Err(StatsError::InvalidParameter {
                    name: "conf_level",
                    ..
                })
            ));
        }
    }

    #[test]
    fn identical_constants_give_p_one() {
        for alt in [
            Alternative::TwoSided,
            Alternative::Less,
            Alternative::Greater,
        ] {
            let r = welch(&[3.0, 3.0, 3.0], &[3.0, 3.0], &cfg(alt)).unwrap();
            assert_eq!(r.t, 0.0);
            assert_eq!(r.p_value, 1.0);
            assert!(r.df.is_nan());
            assert_eq!((r.var_x, r.var_y), (0.0, 0.0));
        }
    }

    #[test]
    fn different_constants_are_certain() {
        let two = welch(&[5.0, 5.0], &[3.0, 3.0, 3.0], &cfg(Alternative::TwoSided)).unwrap();
        assert_eq!(two.t, f64::INFINITY);
        assert_eq!(two.p_value, 0.0);
        assert_eq!(two.conf_int, (2.0, 2.0));
        let greater = welch(&[5.0, 5.0], &[3.0, 3.0], &cfg(Alternative::Greater)).unwrap();
        assert_eq!(greater.p_value, 0.0);
        assert_eq!(greater.conf_int, (2.0, f64::INFINITY));
        let less = welch(&[5.0, 5.0], &[3.0, 3.0], &cfg(Alternative::Less)).unwrap();
        assert_eq!(less.p_value, 1.0);
        assert_eq!(less.conf_int, (f64::NEG_INFINITY, 2.0));
        let neg = welch(&[1.0, 1.0], &[3.0, 3.0], &cfg(Alternative::Less)).unwrap();
        assert_eq!(neg.t, f64::NEG_INFINITY);
        assert_eq!(neg.p_value, 0.0);
    }

    #[test]
    fn one_constant_side_uses_the_other_variance() {
        // var_y = 0: df reduces to n_x - 1 and the test is a one-sample t-test
        // of x against mean_y.
        let r = welch(&[1.0, 2.0, 3.0, 4.0], &[2.0, 2.0], &WelchConfig::default()).unwrap();
        assert!((r.df - 3.0).abs() < 1e-12);
        let se = (r.var_x / 4.0).sqrt();
        assert!((r.t - 0.5 / se).abs() < 1e-12);
    }

    #[test]
    fn symmetric_alternatives_and_tiny_p() {
        // Far-apart samples: the one-sided p must keep relative precision
        // (a 1 - cdf formulation would return 0).
        let x: Vec<f64> = (0..50).map(|i| 100.0 + (i % 7) as f64).collect();
        let y: Vec<f64> = (0..50).map(|i| (i % 5) as f64).collect();
        let g = welch(&x, &y, &cfg(Alternative::Greater)).unwrap();
        let l = welch(&y, &x, &cfg(Alternative::Less)).unwrap();
        assert!(g.p_value > 0.0 && g.p_value < 1e-50, "{}", g.p_value);
        assert!((g.p_value - l.p_value).abs() <= 1e-12 * g.p_value);
        let two = welch(&x, &y, &cfg(Alternative::TwoSided)).unwrap();
        assert!((two.p_value - 2.0 * g.p_value).abs() <= 1e-12 * two.p_value);
    }
}

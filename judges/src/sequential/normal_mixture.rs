//! Mixture SPRT (mSPRT) and normal-mixture confidence sequence for a
//! difference of means or of proportions (docs/statistics/sequential.md).
//!
//! # Model
//!
//! At each look the estimate `Delta_hat_t = mean_canary - mean_baseline` is
//! treated as Gaussian with variance `V_t = s_c^2 / n_c + s_b^2 / n_b` (known
//! variances, or the running sample variances plugged in). Mixing the
//! alternative `Delta ~ N(theta0, tau^2)` gives the likelihood ratio against
//! `H0: Delta = theta0` in closed form (Johari et al. 2022; the two-sided
//! normal mixture of Howard et al. 2021):
//!
//! ```text
//! log Lambda_t = -1/2 ln(1 + tau^2 / V_t) + tau^2 (Delta_hat_t - theta0)^2 / (2 V_t (V_t + tau^2))
//! reject H0 when log Lambda_t >= ln(1/alpha);  p_t = min(1, min_{s<=t} exp(-log Lambda_s))
//! CS_t = Delta_hat_t -/+ sqrt( V_t (V_t + tau^2) / tau^2 * ( ln(1 + tau^2 / V_t) + 2 ln(1/alpha) ) )
//! ```
//!
//! `CS_t` is the set of `theta0` that the test would not reject at look `t`,
//! so `P(Delta in CS_t for all t) >= 1 - alpha`. With known variances this is
//! exact for Gaussian data; with plug-in variances (and for proportions) it is
//! an *asymptotic* confidence sequence (Waudby-Smith et al., time-uniform
//! CLT), reasonable from a few hundred observations per arm, hence the
//! minimum-n guard.
//!
//! # Per-look and running intervals
//!
//! Each look reports the per-look interval `cs` (what the reference vectors
//! define) and `cs_running`, the intersection of all per-look intervals so
//! far. The intersection is also a valid confidence sequence (on the event
//! that every `CS_t` contains `Delta`, so does their intersection) and is
//! never wider, so decisions may use either. An empty intersection
//! (`lower > upper`) can only happen on the probability-`alpha` failure
//! event of a correct model; in practice it signals a violated assumption
//! (non-stationary traffic, plug-in variance too small), and is reported, not
//! hidden.
//!
//! # Tuning `tau^2`
//!
//! The CS is narrowest at a target horizon with variance `V_target` when
//! `tau^2 = x* V_target`, where `x*` solves `x = ln(1 + x) + 2 ln(1/alpha)`:
//! 8.212 (alpha = 0.05), 11.756 (0.01), 16.688 (0.001). See [`tuned_tau2`].
//! In the sum-scale form of Howard et al., the boundary is
//! `|S_t| < sqrt((V + rho) ln((V + rho) / (rho alpha^2)))` with
//! `rho = sigma^4 / tau^2` ([`normal_mixture_boundary`]).

use serde::{Deserialize, Serialize};

use super::{check_alpha, check_positive, p_from_max_log_e};
use crate::error::{check_values, StatsError};

/// Log of the normal-mixture likelihood ratio for `H0: Delta = theta0`, given
/// the estimate `delta_hat` with variance `v` and mixture variance `tau2`.
///
/// Errors: `v` or `tau2` not finite and > 0 (a zero variance has no finite
/// answer: the limit is `+inf` or `-inf` depending on whether
/// `delta_hat == theta0`); `delta_hat` or `theta0` not finite.
pub fn log_likelihood_ratio(
    delta_hat: f64,
    v: f64,
    tau2: f64,
    theta0: f64,
) -> Result<f64, StatsError> {
    check_positive("v", v)?;
    check_positive("tau2", tau2)?;
    check_finite("delta_hat", delta_hat)?;
    check_finite("theta0", theta0)?;
    Ok(log_lr_unchecked(delta_hat, v, tau2, theta0))
}

fn log_lr_unchecked(delta_hat: f64, v: f64, tau2: f64, theta0: f64) -> f64 {
    let d = delta_hat - theta0;
    // ln(V / (V + tau^2)) written as -ln1p(tau^2 / V): exact for tiny tau^2 / V.
    -0.5 * (tau2 / v).ln_1p() + tau2 * d * d / (2.0 * v * (v + tau2))
}

/// The `(1 - alpha)` normal-mixture confidence-sequence interval at one look:
/// `(lower, upper)` centred on `delta_hat`.
///
/// Errors: `v` or `tau2` not finite and > 0; `delta_hat` not finite; `alpha`
/// outside (0, 1).
pub fn confidence_sequence(
    delta_hat: f64,
    v: f64,
    tau2: f64,
    alpha: f64,
) -> Result<(f64, f64), StatsError> {
    check_positive("v", v)?;
    check_positive("tau2", tau2)?;
    check_finite("delta_hat", delta_hat)?;
    check_alpha(alpha)?;
    let half = cs_half_width(v, tau2, alpha);
    Ok((delta_hat - half, delta_hat + half))
}

fn cs_half_width(v: f64, tau2: f64, alpha: f64) -> f64 {
    let log_term = (tau2 / v).ln_1p() + 2.0 * (1.0 / alpha).ln();
    (v * (v + tau2) / tau2 * log_term).sqrt()
}

/// Howard et al.'s two-sided normal-mixture boundary on a sum with variance
/// `v` (intrinsic time) and mixture parameter `rho`:
/// `sqrt((v + rho) ln((v + rho) / (rho alpha^2)))`.
///
/// Errors: `v` or `rho` not finite and > 0; `alpha` outside (0, 1).
pub fn normal_mixture_boundary(v: f64, rho: f64, alpha: f64) -> Result<f64, StatsError> {
    check_positive("v", v)?;
    check_positive("rho", rho)?;
    check_alpha(alpha)?;
    Ok(((v + rho) * ((v / rho).ln_1p() + 2.0 * (1.0 / alpha).ln())).sqrt())
}

/// `x*`, the root of `x = ln(1 + x) + 2 ln(1/alpha)`: the ratio
/// `tau^2 / V_target` (equivalently `V_target / rho`) that makes the CS
/// narrowest at the target horizon.
///
/// Solved by Newton's method on the convex, increasing
/// `f(x) = x - ln(1 + x) - 2 ln(1/alpha)` (`f'(x) = x / (1 + x)`), started
/// from the one-step approximation `c + ln(1 + c)`, `c = 2 ln(1/alpha)`; the
/// first step lands right of the root and the iterates then decrease
/// monotonically, so it converges in a handful of steps.
///
/// Errors: `alpha` outside (0, 1).
pub fn optimal_mixture_ratio(alpha: f64) -> Result<f64, StatsError> {
    check_alpha(alpha)?;
    let c = 2.0 * (1.0 / alpha).ln();
    let mut x = c + c.ln_1p();
    for _ in 0..100 {
        let step = (x - x.ln_1p() - c) * (1.0 + x) / x;
        x -= step;
        if step.abs() <= 4.0 * f64::EPSILON * x {
            break;
        }
    }
    Ok(x)
}

/// `tau^2 = x* v_target` (see [`optimal_mixture_ratio`]), where `v_target`
/// is `Var(Delta_hat)` expected at the planned end of the rollout step, e.g.
/// `sigma_c^2 / n_c + sigma_b^2 / n_b` at the planned sample sizes.
///
/// Errors: `v_target` not finite and > 0; `alpha` outside (0, 1).
pub fn tuned_tau2(v_target: f64, alpha: f64) -> Result<f64, StatsError> {
    check_positive("v_target", v_target)?;
    Ok(optimal_mixture_ratio(alpha)? * v_target)
}

fn check_finite(name: &'static str, value: f64) -> Result<(), StatsError> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            reason: format!("must be finite, got {value}"),
        })
    }
}

/// A closed interval `[lower, upper]`; empty when `lower > upper`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Interval {
    pub lower: f64,
    pub upper: f64,
}

impl Interval {
    /// Whether the interval contains no point (`lower > upper`).
    pub fn is_empty(&self) -> bool {
        self.lower > self.upper
    }

    /// Whether `value` lies in `[lower, upper]`.
    pub fn contains(&self, value: f64) -> bool {
        self.lower <= value && value <= self.upper
    }

    fn intersect(&self, other: &Interval) -> Interval {
        Interval {
            lower: self.lower.max(other.lower),
            upper: self.upper.min(other.upper),
        }
    }
}

/// Parameters shared by the mean and proportion sequences.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixtureConfig {
    /// Mixture variance, finite and > 0, in squared units of the difference;
    /// see [`tuned_tau2`].
    pub tau2: f64,
    /// Test level in (0, 1).
    pub alpha: f64,
    /// Null difference (0, or a non-inferiority margin); finite.
    pub theta0: f64,
    /// No look is evaluated before both arms have this many observations.
    /// The effective guard is at least 1 with known variances and at least 2
    /// with plug-in variances (a sample variance needs two values); 30 or more
    /// is advisable with plug-in variances.
    pub min_n_per_arm: u64,
}

impl MixtureConfig {
    fn validate(&self) -> Result<(), StatsError> {
        check_positive("tau2", self.tau2)?;
        check_alpha(self.alpha)?;
        check_finite("theta0", self.theta0)
    }
}

/// How `V_t` is obtained for a mean difference.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VarianceModel {
    /// Known per-observation variances of each arm (finite, > 0):
    /// `V = sigma2_canary / n_c + sigma2_baseline / n_b`.
    Known {
        sigma2_canary: f64,
        sigma2_baseline: f64,
    },
    /// Running sample variances (denominator `n - 1`) plugged in: an
    /// asymptotic confidence sequence.
    PlugIn,
}

/// Count, mean and sum of squared deviations of one arm (Welford's
/// representation, merged with Chan et al.'s pairwise update): numerically
/// stable and exact under merging in any order up to rounding.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ArmMoments {
    pub count: u64,
    pub mean: f64,
    /// `sum (x_i - mean)^2`.
    pub m2: f64,
}

impl ArmMoments {
    /// Moments of a batch of samples (Welford). Errors on NaN or infinity.
    pub fn from_samples(sample: &'static str, values: &[f64]) -> Result<Self, StatsError> {
        check_values(sample, values, false)?;
        let mut m = ArmMoments::default();
        for &x in values {
            m.count += 1;
            let delta = x - m.mean;
            m.mean += delta / m.count as f64;
            m.m2 += delta * (x - m.mean);
        }
        Ok(m)
    }

    /// Moments from a count, a sum and a sum of squares, as some exporters
    /// provide. `m2 = sum_sq - sum^2 / count` cancels catastrophically when the
    /// variance is small relative to the mean; it is clamped at 0. Prefer
    /// [`ArmMoments::from_samples`] when the values are available.
    ///
    /// Errors: a non-finite sum or sum of squares, a negative sum of squares,
    /// or a nonzero sum with zero count.
    pub fn from_sums(count: u64, sum: f64, sum_sq: f64) -> Result<Self, StatsError> {
        for (name, value) in [("sum", sum), ("sum_sq", sum_sq)] {
            check_finite(name, value)?;
        }
        if sum_sq < 0.0 {
            return Err(StatsError::InvalidParameter {
                name: "sum_sq",
                reason: format!("a sum of squares cannot be negative, got {sum_sq}"),
            });
        }
        if count == 0 {
            if sum != 0.0 || sum_sq != 0.0 {
                return Err(StatsError::InvalidParameter {
                    name: "count",
                    reason: "zero observations with a nonzero sum".to_string(),
                });
            }
            return Ok(ArmMoments::default());
        }
        let mean = sum / count as f64;
        let m2 = (sum_sq - sum * mean).max(0.0);
        Ok(ArmMoments { count, mean, m2 })
    }

    /// Adds another batch (Chan, Golub and LeVeque's pairwise update).
    pub fn merge(&mut self, other: &ArmMoments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        let n_a = self.count as f64;
        let n_b = other.count as f64;
        let n = n_a + n_b;
        let delta = other.mean - self.mean;
        self.mean += delta * n_b / n;
        self.m2 += other.m2 + delta * delta * n_a * n_b / n;
        self.count += other.count;
    }

    /// Sample variance `m2 / (count - 1)`; `None` below two observations.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.count >= 2).then(|| self.m2 / (self.count - 1) as f64)
    }
}

/// What one evaluated look computed.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MixtureEstimate {
    /// `mean_canary - mean_baseline` (or the difference of proportions).
    pub delta_hat: f64,
    /// `V_t`, the variance of `delta_hat`.
    pub variance: f64,
    /// `log Lambda_t` against `theta0`.
    pub log_lambda: f64,
    /// `exp(log_lambda)`.
    pub lambda: f64,
    /// This look's `(1 - alpha)` confidence-sequence interval.
    pub cs: Interval,
    /// Intersection of `cs` over all evaluated looks so far.
    pub cs_running: Interval,
    /// `log_lambda >= ln(1/alpha)` at this look.
    pub crossed: bool,
}

/// Whether a look was evaluated, and if not, why.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "status")]
pub enum LookOutcome {
    Evaluated(MixtureEstimate),
    /// An arm has fewer observations than the minimum-n guard.
    BelowMinimumN,
    /// The plug-in variance of `delta_hat` is 0 (both arms constant, or both
    /// proportions 0 or 1): no finite evidence either way, so the look is
    /// skipped rather than declared infinitely significant.
    ZeroVariance,
}

impl LookOutcome {
    /// The estimate of an evaluated look.
    pub fn estimate(&self) -> Option<&MixtureEstimate> {
        match self {
            LookOutcome::Evaluated(e) => Some(e),
            _ => None,
        }
    }
}

/// One look of a [`MeanDifferenceSequence`] or [`ProportionDifferenceSequence`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MixtureLook {
    /// Cumulative observations (trials) of the canary.
    pub n_canary: u64,
    /// Cumulative observations (trials) of the baseline.
    pub n_baseline: u64,
    pub outcome: LookOutcome,
    /// Running minimum of `exp(-log_lambda)` over evaluated looks, capped at 1.
    pub always_valid_p: f64,
    /// Latched: some evaluated look had `log_lambda >= ln(1/alpha)`.
    pub reject: bool,
}

/// Running state shared by both sequences: evidence and interval so far.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct MixtureCore {
    config: MixtureConfig,
    max_log_lambda: f64,
    cs_running: Option<Interval>,
    rejected: bool,
}

impl MixtureCore {
    fn new(config: MixtureConfig) -> Result<Self, StatsError> {
        config.validate()?;
        Ok(Self {
            config,
            max_log_lambda: 0.0,
            cs_running: None,
            rejected: false,
        })
    }

    /// Folds one look into the running state. `estimate` is `Ok((delta, v))`
    /// or the reason the look is not evaluated.
    fn look(
        &mut self,
        n_canary: u64,
        n_baseline: u64,
        estimate: Result<(f64, f64), LookOutcome>,
    ) -> MixtureLook {
        let outcome = match estimate {
            Err(skipped) => skipped,
            Ok((delta_hat, variance)) => {
                let MixtureConfig {
                    tau2,
                    alpha,
                    theta0,
                    ..
                } = self.config;
                let log_lambda = log_lr_unchecked(delta_hat, variance, tau2, theta0);
                let half = cs_half_width(variance, tau2, alpha);
                let cs = Interval {
                    lower: delta_hat - half,
                    upper: delta_hat + half,
                };
                let cs_running = self.cs_running.map_or(cs, |r| r.intersect(&cs));
                self.cs_running = Some(cs_running);
                self.max_log_lambda = self.max_log_lambda.max(log_lambda);
                let crossed = log_lambda >= (1.0 / alpha).ln();
                self.rejected |= crossed;
                LookOutcome::Evaluated(MixtureEstimate {
                    delta_hat,
                    variance,
                    log_lambda,
                    lambda: log_lambda.exp(),
                    cs,
                    cs_running,
                    crossed,
                })
            }
        };
        MixtureLook {
            n_canary,
            n_baseline,
            outcome,
            always_valid_p: p_from_max_log_e(self.max_log_lambda),
            reject: self.rejected,
        }
    }
}

/// Anytime-valid test and confidence sequence for `mean_canary -
/// mean_baseline`, fed one look's new observations (or their moments) at a
/// time. Serializable so the daemon can persist and resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeanDifferenceSequence {
    core: MixtureCore,
    variance: VarianceModel,
    canary: ArmMoments,
    baseline: ArmMoments,
}

impl MeanDifferenceSequence {
    /// Errors: invalid `config` (`tau2` not finite and > 0, `alpha` outside
    /// (0, 1), `theta0` not finite) or known variances not finite and > 0.
    pub fn new(config: MixtureConfig, variance: VarianceModel) -> Result<Self, StatsError> {
        check_variance_model(&variance)?;
        Ok(Self {
            core: MixtureCore::new(config)?,
            variance,
            canary: ArmMoments::default(),
            baseline: ArmMoments::default(),
        })
    }

    /// Cumulative moments of the canary arm.
    pub fn canary(&self) -> &ArmMoments {
        &self.canary
    }

    /// Cumulative moments of the baseline arm.
    pub fn baseline(&self) -> &ArmMoments {
        &self.baseline
    }

    /// Adds this look's new observations of each arm (either may be empty)
    /// and evaluates. Errors (state unchanged): NaN or infinity in a sample.
    pub fn observe_samples(
        &mut self,
        canary: &[f64],
        baseline: &[f64],
    ) -> Result<MixtureLook, StatsError> {
        let c = ArmMoments::from_samples("canary", canary)?;
        let b = ArmMoments::from_samples("baseline", baseline)?;
        self.observe_moments(&c, &b)
    }

    /// Adds this look's new observations given as moments (see
    /// [`ArmMoments::from_sums`]) and evaluates. Errors (state unchanged): a
    /// non-finite mean or a negative or non-finite `m2`, or a count overflow.
    pub fn observe_moments(
        &mut self,
        canary: &ArmMoments,
        baseline: &ArmMoments,
    ) -> Result<MixtureLook, StatsError> {
        // Re-check a state restored from storage (it bypassed `new`).
        self.core.config.validate()?;
        check_variance_model(&self.variance)?;
        for (name, m) in [("canary", canary), ("baseline", baseline)] {
            if !(m.mean.is_finite() && m.m2.is_finite() && m.m2 >= 0.0) {
                return Err(StatsError::InvalidParameter {
                    name,
                    reason: format!("moments must be finite with m2 >= 0, got {m:?}"),
                });
            }
            if m.count == 0 && (m.mean != 0.0 || m.m2 != 0.0) {
                return Err(StatsError::InvalidParameter {
                    name,
                    reason: "zero observations with nonzero moments".to_string(),
                });
            }
        }
        if self.canary.count.checked_add(canary.count).is_none()
            || self.baseline.count.checked_add(baseline.count).is_none()
        {
            return Err(StatsError::InvalidParameter {
                name: "count",
                reason: "cumulative observation count overflows u64".to_string(),
            });
        }
        self.canary.merge(canary);
        self.baseline.merge(baseline);
        let estimate = self.estimate();
        Ok(self
            .core
            .look(self.canary.count, self.baseline.count, estimate))
    }

    fn estimate(&self) -> Result<(f64, f64), LookOutcome> {
        let (n_c, n_b) = (self.canary.count, self.baseline.count);
        let floor = match self.variance {
            VarianceModel::Known { .. } => 1,
            VarianceModel::PlugIn => 2,
        };
        let min_n = self.core.config.min_n_per_arm.max(floor);
        if n_c < min_n || n_b < min_n {
            return Err(LookOutcome::BelowMinimumN);
        }
        let (s2_c, s2_b) = match self.variance {
            VarianceModel::Known {
                sigma2_canary,
                sigma2_baseline,
            } => (sigma2_canary, sigma2_baseline),
            VarianceModel::PlugIn => (
                self.canary.sample_variance().unwrap_or(0.0),
                self.baseline.sample_variance().unwrap_or(0.0),
            ),
        };
        let v = s2_c / n_c as f64 + s2_b / n_b as f64;
        if v > 0.0 {
            Ok((self.canary.mean - self.baseline.mean, v))
        } else {
            Err(LookOutcome::ZeroVariance)
        }
    }
}

fn check_variance_model(variance: &VarianceModel) -> Result<(), StatsError> {
    if let VarianceModel::Known {
        sigma2_canary,
        sigma2_baseline,
    } = *variance
    {
        check_positive("sigma2_canary", sigma2_canary)?;
        check_positive("sigma2_baseline", sigma2_baseline)?;
    }
    Ok(())
}

/// Anytime-valid test and (asymptotic) confidence sequence for
/// `p_canary - p_baseline`, fed `(successes, trials)` increments per look,
/// with the plug-in `V = p_c (1 - p_c) / n_c + p_b (1 - p_b) / n_b`. For rare
/// events (few successes) prefer the bucket-label e-process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProportionDifferenceSequence {
    core: MixtureCore,
    /// Cumulative `(successes, trials)` of the canary.
    canary: (u64, u64),
    /// Cumulative `(successes, trials)` of the baseline.
    baseline: (u64, u64),
}

impl ProportionDifferenceSequence {
    /// Errors: invalid `config` (see [`MixtureConfig`]).
    pub fn new(config: MixtureConfig) -> Result<Self, StatsError> {
        Ok(Self {
            core: MixtureCore::new(config)?,
            canary: (0, 0),
            baseline: (0, 0),
        })
    }

    /// Adds this look's `(successes, trials)` increments of each arm and
    /// evaluates. Errors (state unchanged): more successes than trials in an
    /// increment, or a count overflow.
    pub fn observe(
        &mut self,
        canary: (u64, u64),
        baseline: (u64, u64),
    ) -> Result<MixtureLook, StatsError> {
        // Re-check a state restored from storage (it bypassed `new`).
        self.core.config.validate()?;
        let c = add_pair("canary", self.canary, canary)?;
        let b = add_pair("baseline", self.baseline, baseline)?;
        self.canary = c;
        self.baseline = b;
        let estimate = self.estimate();
        Ok(self.core.look(c.1, b.1, estimate))
    }

    fn estimate(&self) -> Result<(f64, f64), LookOutcome> {
        let ((s_c, n_c), (s_b, n_b)) = (self.canary, self.baseline);
        let min_n = self.core.config.min_n_per_arm.max(1);
        if n_c < min_n || n_b < min_n {
            return Err(LookOutcome::BelowMinimumN);
        }
        let p_c = s_c as f64 / n_c as f64;
        let p_b = s_b as f64 / n_b as f64;
        let v = p_c * (1.0 - p_c) / n_c as f64 + p_b * (1.0 - p_b) / n_b as f64;
        if v > 0.0 {
            Ok((p_c - p_b, v))
        } else {
            Err(LookOutcome::ZeroVariance)
        }
    }
}

/// `(successes, trials)` cumulative plus increment, validated.
fn add_pair(
    name: &'static str,
    cumulative: (u64, u64),
    increment: (u64, u64),
) -> Result<(u64, u64), StatsError> {
    if increment.0 > increment.1 {
        return Err(StatsError::InvalidParameter {
            name,
            reason: format!(
                "{} successes in {} trials: successes cannot exceed trials",
                increment.0, increment.1
            ),
        });
    }
    match (
        cumulative.0.checked_add(increment.0),
        cumulative.1.checked_add(increment.1),
    ) {
        (Some(s), Some(n)) => Ok((s, n)),
        _ => Err(StatsError::InvalidParameter {
            name,
            reason: "cumulative count overflows u64".to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(min_n: u64) -> MixtureConfig {
        MixtureConfig {
            tau2: 18.45,
            alpha: 0.05,
            theta0: 0.0,
            min_n_per_arm: min_n,
        }
    }

    #[test]
    fn x_star_matches_notes() {
        for (alpha, expect) in [(0.05, 8.212), (0.01, 11.756), (0.001, 16.688)] {
            let x = optimal_mixture_ratio(alpha).unwrap();
            assert!((x - expect).abs() < 5e-4, "alpha {alpha}: {x}");
            // It is a root.
            let c = 2.0 * (1.0f64 / alpha).ln();
            assert!((x - x.ln_1p() - c).abs() < 1e-13);
        }
        assert_eq!(
            tuned_tau2(2.0, 0.05).unwrap(),
            2.0 * optimal_mixture_ratio(0.05).unwrap()
        );
        assert!(optimal_mixture_ratio(0.0).is_err());
        assert!(tuned_tau2(0.0, 0.05).is_err());
    }

    #[test]
    fn lr_and_cs_agree() {
        // The CS ends are exactly where log Lambda = ln(1/alpha).
        let (d, v, tau2, alpha) = (3.0, 2.5, 18.45, 0.05);
        let (lo, hi) = confidence_sequence(d, v, tau2, alpha).unwrap();
        for end in [lo, hi] {
            let l = log_likelihood_ratio(d, v, tau2, end).unwrap();
            assert!((l - 20f64.ln()).abs() < 1e-12, "{l}");
        }
        assert!(log_likelihood_ratio(d, 0.0, tau2, 0.0).is_err());
        assert!(log_likelihood_ratio(d, v, 0.0, 0.0).is_err());
        assert!(log_likelihood_ratio(f64::NAN, v, tau2, 0.0).is_err());
        assert!(confidence_sequence(d, v, tau2, 1.0).is_err());
        assert!(normal_mixture_boundary(1.0, 0.0, 0.05).is_err());
    }

    #[test]
    fn moments_merge_like_one_batch() {
        let x: Vec<f64> = (0..50).map(|i| 1e6 + (i as f64 * 0.37).sin()).collect();
        let all = ArmMoments::from_samples("x", &x).unwrap();
        let mut parts = ArmMoments::from_samples("x", &x[..17]).unwrap();
        parts.merge(&ArmMoments::from_samples("x", &x[17..]).unwrap());
        parts.merge(&ArmMoments::default());
        assert_eq!(parts.count, 50);
        assert!((parts.mean - all.mean).abs() < 1e-9);
        assert!((parts.m2 - all.m2).abs() < 1e-9 * all.m2);
        let sums = ArmMoments::from_sums(3, 6.0, 14.0).unwrap();
        assert_eq!((sums.mean, sums.m2), (2.0, 2.0));
        assert_eq!(sums.sample_variance(), Some(1.0));
        assert!(ArmMoments::from_sums(0, 1.0, 1.0).is_err());
        assert!(ArmMoments::from_sums(2, f64::NAN, 1.0).is_err());
        assert!(ArmMoments::from_samples("x", &[1.0, f64::NAN]).is_err());
    }

    #[test]
    fn min_n_guard_and_nan() {
        let mut s = MeanDifferenceSequence::new(config(30), VarianceModel::PlugIn).unwrap();
        let look = s.observe_samples(&[1.0; 20], &[2.0; 40]).unwrap();
        assert_eq!(look.outcome, LookOutcome::BelowMinimumN);
        assert_eq!(look.always_valid_p, 1.0);
        let before = s.clone();
        assert!(s.observe_samples(&[f64::NAN], &[]).is_err());
        assert!(s.observe_samples(&[], &[f64::INFINITY]).is_err());
        assert_eq!(s, before);
        // Constant arms: V = 0 is skipped, not declared significant.
        let look = s.observe_samples(&[1.0; 20], &[]).unwrap();
        assert_eq!(look.outcome, LookOutcome::ZeroVariance);
        assert!(!look.reject);
        // Known variances must be positive.
        let zero = VarianceModel::Known {
            sigma2_canary: 0.0,
            sigma2_baseline: 1.0,
        };
        assert!(MeanDifferenceSequence::new(config(1), zero).is_err());
        let mut bad = config(1);
        bad.tau2 = f64::NAN;
        assert!(MeanDifferenceSequence::new(bad, VarianceModel::PlugIn).is_err());
    }

    #[test]
    fn plug_in_detects_a_shift_and_running_cs_nests() {
        let mut s = MeanDifferenceSequence::new(
            MixtureConfig {
                tau2: tuned_tau2(2.0 / 500.0, 0.05).unwrap(),
                alpha: 0.05,
                theta0: 0.0,
                min_n_per_arm: 30,
            },
            VarianceModel::PlugIn,
        )
        .unwrap();
        let mut reject_seen = false;
        let mut width = f64::INFINITY;
        for look in 0..10 {
            // Deterministic, well-spread values; the canary is shifted by 0.5.
            let c: Vec<f64> = (0..50)
                .map(|i| ((look * 50 + i) as f64 * 0.618).fract() * 3.0 + 0.5)
                .collect();
            let b: Vec<f64> = (0..50)
                .map(|i| ((look * 50 + i) as f64 * 0.414).fract() * 3.0)
                .collect();
            let r = s.observe_samples(&c, &b).unwrap();
            let e = r.outcome.estimate().unwrap();
            let w = e.cs_running.upper - e.cs_running.lower;
            assert!(w <= width);
            width = w;
            assert!(e.cs_running.lower >= e.cs.lower && e.cs_running.upper <= e.cs.upper);
            reject_seen |= r.reject;
        }
        assert!(reject_seen);
    }

    #[test]
    fn proportions() {
        let mut s = ProportionDifferenceSequence::new(MixtureConfig {
            tau2: tuned_tau2(2.0 * 0.01 * 0.99 / 50_000.0, 0.05).unwrap(),
            alpha: 0.05,
            theta0: 0.0,
            min_n_per_arm: 100,
        })
        .unwrap();
        // No successes anywhere: zero variance, skipped.
        let look = s.observe((0, 1000), (0, 1000)).unwrap();
        assert_eq!(look.outcome, LookOutcome::ZeroVariance);
        assert!(s.observe((5, 4), (0, 10)).is_err());
        let mut last = look;
        for _ in 0..10 {
            last = s.observe((30, 1000), (10, 1000)).unwrap();
        }
        let e = last.outcome.estimate().unwrap();
        assert_eq!((last.n_canary, last.n_baseline), (11_000, 11_000));
        assert!((e.delta_hat - 200.0 / 11_000.0).abs() < 1e-15);
        assert!(last.reject && e.cs.lower > 0.0);
    }

    #[test]
    fn serde_round_trip() {
        let mut s = MeanDifferenceSequence::new(
            config(2),
            VarianceModel::Known {
                sigma2_canary: 225.0,
                sigma2_baseline: 225.0,
            },
        )
        .unwrap();
        s.observe_samples(&[1.0, 2.0, 3.0], &[1.5, 2.5]).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: MeanDifferenceSequence = serde_json::from_str(&json).unwrap();
        assert_eq!(back, s);
    }
}

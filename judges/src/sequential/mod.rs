//! Anytime-valid (sequential) tests: e-processes and confidence sequences
//! that the daemon may evaluate at every scrape without inflating the false
//! alarm rate.
//!
//! # Why
//!
//! A fixed-sample test repeated at every look fires far more often than its
//! nominal level: a 5 % z-test peeked at 10 / 30 / 100 times falsely rejects
//! 19 % / 28 % / 37 % of the time (docs/statistics/sequential.md, "Why sequential tests"). The tests here keep
//! the error guarantee *whatever* the number of looks and whenever the daemon
//! decides to stop.
//!
//! # E-values, Ville's inequality and the anytime-valid p-value
//!
//! An **e-process** is a non-negative sequence `E_0 = 1, E_1, E_2, ...` whose
//! expectation under the null hypothesis H0 is at most 1 at every stopping
//! time. Every statistic in this module is either a test martingale (a
//! likelihood ratio of a mixture alternative against a simple null) or is
//! bounded above by one (a mixture divided by the *supremum* of the null
//! likelihood, Wasserman, Ramdas and Balakrishnan 2020), so **Ville's
//! inequality** applies:
//!
//! ```text
//! P_H0( sup_t E_t >= 1/alpha ) <= alpha
//! ```
//!
//! Hence "reject the first time `E_t >= 1/alpha`" has type-I error at most
//! `alpha` under continuous monitoring and optional stopping. Equivalently the
//! **anytime-valid p-value** is the running minimum
//!
//! ```text
//! p_t = min(1, min_{s <= t} 1/E_s) = min(1, exp(-max_{s <= t} ln E_s))
//! ```
//!
//! which never increases. Every state struct here keeps that running minimum,
//! and its `reject` flag is *latched*: it becomes true at the first look whose
//! e-value reaches `1/alpha` and stays true, because the crossing time is the
//! stopping time the guarantee is about. (Each look also reports whether the
//! *current* e-value is above the threshold, for display.)
//!
//! # How the state structs absorb a look
//!
//! The daemon reads Prometheus counters at each look and hands the structs the
//! **increments** since the previous look (per-bucket counter deltas, request
//! deltas, new latency samples or their sufficient statistics). Taking
//! increments rather than cumulative values makes a decreasing cumulative
//! count unrepresentable: counter resets are the caller's problem (it must
//! compute the delta with Prometheus' reset rules). The struct adds the
//! increments to its cumulative state, recomputes the statistic from the
//! cumulative state (the statistics depend only on cumulative sufficient
//! statistics, so this is exact and deterministic) and updates the running
//! maximum of the log e-value. Invalid input (wrong length, NaN, overflow)
//! returns an error **and leaves the state untouched**. All state structs
//! derive `Serialize`/`Deserialize` so the daemon can persist them between
//! restarts and resume the same e-process.
//!
//! # Rollout steps: restart or multiply
//!
//! A rollout step changes the traffic weight, hence the canary share the
//! count tests depend on. Two valid ways to continue:
//!
//! * **Restart** (`restart`): a fresh e-process per step, with its own running
//!   p-value. Each step is then a separate test at level `alpha`; across steps
//!   the usual multiplicity applies (for example, split `alpha` over the
//!   planned steps with [`bonferroni`]).
//! * **Multiply** (`next_segment`, bucket-label e-process): the e-value of a
//!   completed segment, *taken at the look where the segment ended* (a
//!   stopping time), multiplies the e-process of the next segment. The
//!   concatenation is again bounded by a test martingale, so Ville applies to
//!   the whole rollout: log e-values add across completed segments. The
//!   carried factor may be below 1, so evidence *for* H0 in an early step costs
//!   power later; that is the price of a single guarantee for the rollout.
//!
//! The other tests restart by constructing a new struct for the step (their
//! parameters, such as `theta0` or `tau^2`, usually change with the weight).
//!
//! # Modules
//!
//! * [`bucket_label`]: bucket-label e-process on per-bucket counter
//!   increments (error rate with K = 2, latency histograms with K buckets),
//!   robust to any time-varying traffic. The recommended count test (§5.6 a).
//! * [`odds_ratio`]: conditional odds-ratio e-process on each look's 2×2
//!   table of bad/good × canary/baseline increments: valid whatever the
//!   split and however it changes, with no weight given (the daemon's
//!   request-level test under Flagger and Argo, which never send one).
//! * [`normal_mixture`]: mixture SPRT and normal-mixture confidence sequence
//!   for a difference of means or of proportions (§5.5).
//! * [`srm`]: Dirichlet-multinomial sample-ratio-mismatch check of the traffic
//!   split against the configured weights (§5.6 b).
//! * [`gamma_poisson`]: gamma-Poisson e-process for two event counts with
//!   equal exposure (§5.6 c).
//! * [`bonferroni`] and [`holm`]: family-wise error control across metrics
//!   (§6.4).
//!
//! References: Ville (1939); Johari, Koomen, Pekelis and Walsh (2022), "Always
//! valid inference", Operations Research 70(3); Howard, Ramdas, McAuliffe and
//! Sekhon (2021), "Time-uniform, nonparametric, nonasymptotic confidence
//! sequences", Annals of Statistics 49(2); Lindon and Malek (2022),
//! "Anytime-valid inference for multinomial count data", NeurIPS; Lindon,
//! Sanden and Shirikian (2022), KDD; Wasserman, Ramdas and Balakrishnan (2020),
//! "Universal inference", PNAS; Vovk and Wang (2021), "E-values"; Holm (1979).

pub mod bucket_label;
pub mod gamma_poisson;
pub mod normal_mixture;
pub mod odds_ratio;
pub mod srm;

pub use bucket_label::{
    bucket_label_log_e, BucketLabelConfig, BucketLabelEProcess, BucketLabelLogE, BucketLabelLook,
};
pub use gamma_poisson::{gamma_poisson_log_bf, GammaPoisson, GammaPoissonConfig, GammaPoissonLook};
pub use normal_mixture::{
    confidence_sequence, log_likelihood_ratio, normal_mixture_boundary, optimal_mixture_ratio,
    tuned_tau2, ArmMoments, Interval, LookOutcome, MeanDifferenceSequence, MixtureConfig,
    MixtureEstimate, MixtureLook, ProportionDifferenceSequence, VarianceModel,
};
pub use odds_ratio::{OddsRatioConfig, OddsRatioEProcess, OddsRatioLook, Sidedness};
pub use srm::{dirichlet_multinomial_log_bf, SampleRatioMismatch, SrmConfig, SrmLook};

use crate::error::StatsError;

/// Bonferroni level per test: `alpha / m`.
///
/// Valid for anytime-valid tests through the union bound: if each of `m`
/// e-processes is run at `alpha / m`, the probability that *any* of them ever
/// falsely crosses is at most `alpha`, under any dependence between metrics.
///
/// Errors: `alpha` outside (0, 1) or `m == 0`.
pub fn bonferroni(alpha: f64, m: usize) -> Result<f64, StatsError> {
    check_alpha(alpha)?;
    if m == 0 {
        return Err(StatsError::InvalidParameter {
            name: "m",
            reason: "the number of tests must be at least 1".to_string(),
        });
    }
    Ok(alpha / m as f64)
}

/// Holm's step-down procedure: which of the hypotheses to reject with
/// family-wise error rate at most `alpha`, under any dependence.
///
/// Sort the p-values ascending, `p_(1) <= ... <= p_(m)`; reject `H_(1), ...,
/// H_(j)` where `j` is the largest index such that `p_(i) <= alpha / (m - i + 1)`
/// for every `i <= j`. The result is in the input order. Ties are broken by
/// input position, which does not change the outcome (tied p-values face
/// consecutive thresholds and either all pass up to the first failure).
///
/// With the anytime-valid (running-minimum) p-values of this module, Holm may
/// be applied at every look: the p-values never increase and Holm is
/// monotone, so a hypothesis once rejected stays rejected, and the decision at
/// any stopping time is a valid Holm decision on valid p-values.
///
/// Errors: `alpha` outside (0, 1); a p-value that is NaN or outside [0, 1].
/// An empty slice gives an empty result.
pub fn holm(p_values: &[f64], alpha: f64) -> Result<Vec<bool>, StatsError> {
    check_alpha(alpha)?;
    for (index, &p) in p_values.iter().enumerate() {
        if !(0.0..=1.0).contains(&p) {
            // NaN fails `contains` too, so it lands here.
            return Err(StatsError::NonFinite {
                sample: "p_values",
                index,
                value: p,
            });
        }
    }
    let m = p_values.len();
    let mut order: Vec<usize> = (0..m).collect();
    // Stable sort: equal p-values keep their input order (deterministic).
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut reject = vec![false; m];
    for (rank, &index) in order.iter().enumerate() {
        if p_values[index] <= alpha / (m - rank) as f64 {
            reject[index] = true;
        } else {
            // Step-down: the first failure stops all larger p-values.
            break;
        }
    }
    Ok(reject)
}

/// `alpha` must lie strictly in (0, 1); reported under the name "alpha".
pub(crate) fn check_alpha(alpha: f64) -> Result<(), StatsError> {
    if alpha > 0.0 && alpha < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name: "alpha",
            reason: format!("must be strictly between 0 and 1, got {alpha}"),
        })
    }
}

/// A parameter that must be finite and strictly positive.
pub(crate) fn check_positive(name: &'static str, value: f64) -> Result<(), StatsError> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            reason: format!("must be finite and > 0, got {value}"),
        })
    }
}

/// Counts given as reals (see the pure functions) must be finite and >= 0.
pub(crate) fn check_counts(sample: &'static str, counts: &[f64]) -> Result<(), StatsError> {
    for (index, &value) in counts.iter().enumerate() {
        if !(value.is_finite() && value >= 0.0) {
            return Err(StatsError::NonFinite {
                sample,
                index,
                value,
            });
        }
    }
    Ok(())
}

/// Adds per-bucket increments to cumulative counts, all or nothing: on
/// overflow the cumulative counts are left unchanged.
pub(crate) fn add_increments(
    sample: &'static str,
    cumulative: &mut [u64],
    increments: &[u64],
) -> Result<(), StatsError> {
    let summed = checked_sum(sample, cumulative, increments)?;
    cumulative.copy_from_slice(&summed);
    Ok(())
}

/// `cumulative + increments` element-wise, or an error naming the bucket that
/// would overflow `u64`. Lengths must already match.
pub(crate) fn checked_sum(
    sample: &'static str,
    cumulative: &[u64],
    increments: &[u64],
) -> Result<Vec<u64>, StatsError> {
    debug_assert_eq!(cumulative.len(), increments.len());
    cumulative
        .iter()
        .zip(increments)
        .enumerate()
        .map(|(index, (&c, &i))| {
            c.checked_add(i)
                .ok_or_else(|| StatsError::InvalidParameter {
                    name: sample,
                    reason: format!("cumulative count of bucket {index} overflows u64"),
                })
        })
        .collect()
}

/// Length check for per-bucket increments.
pub(crate) fn check_len(name: &'static str, expected: usize, got: usize) -> Result<(), StatsError> {
    if expected == got {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name,
            reason: format!("expected {expected} buckets, got {got}"),
        })
    }
}

/// `min(1, exp(-max_log_e))`: the anytime-valid p-value from the running
/// maximum of the log e-value.
pub(crate) fn p_from_max_log_e(max_log_e: f64) -> f64 {
    if max_log_e <= 0.0 {
        1.0
    } else {
        (-max_log_e).exp()
    }
}

// ---------------------------------------------------------------------------
// Log-gamma differences without catastrophic cancellation.
//
// The count tests subtract log-gamma values of the order of n ln n (3.6e6 for
// n = 285 000) to obtain log e-values of order 1. Computing each lnGamma
// separately loses about eps * 3.6e6 = 8e-10 absolute per term. Writing the
// differences with Stirling's series, whose leading terms combine
// analytically into logarithms of ratios (ln1p), keeps every intermediate
// value of the size of the result.
// ---------------------------------------------------------------------------

/// Below this argument lnGamma is taken from statrs (Lanczos); at or above
/// it the Stirling remainder series below is accurate to about 1e-15.
const STIRLING_MIN: f64 = 10.0;

/// `0.5 * ln(2 pi)`.
const HALF_LN_2PI: f64 = 0.918_938_533_204_672_8;

/// Stirling remainder `omega(z) = lnGamma(z) - [(z - 1/2) ln z - z + ln(2 pi)/2]`
/// for `z >= 10`, by its asymptotic series (Bernoulli numbers B2..B14).
/// At `z = 10` the first omitted term is below 1e-15.
fn stirling_remainder(z: f64) -> f64 {
    debug_assert!(z >= STIRLING_MIN);
    let r = 1.0 / z;
    let r2 = r * r;
    // Horner in 1/z^2: 1/12 - 1/(360 z^2) + 1/(1260 z^4) - 1/(1680 z^6)
    // + 1/(1188 z^8) - 691/(360360 z^10) + 1/(156 z^12).
    r * (1.0 / 12.0
        + r2 * (-1.0 / 360.0
            + r2 * (1.0 / 1260.0
                + r2 * (-1.0 / 1680.0
                    + r2 * (1.0 / 1188.0 + r2 * (-691.0 / 360_360.0 + r2 * (1.0 / 156.0)))))))
}

/// `ln Gamma(x + a) - ln Gamma(x)` for `x > 0`, `a >= 0`.
pub(crate) fn ln_gamma_ratio(x: f64, a: f64) -> f64 {
    debug_assert!(x > 0.0 && a >= 0.0);
    if a == 0.0 {
        return 0.0;
    }
    if x >= STIRLING_MIN {
        // (x+a-1/2) ln(x+a) - (x-1/2) ln x - a + omega terms, regrouped as
        // (x-1/2) ln1p(a/x) + a ln(x+a) - a so no term dwarfs the result.
        (x - 0.5) * (a / x).ln_1p() + a * (x + a).ln() - a + stirling_remainder(x + a)
            - stirling_remainder(x)
    } else {
        // lnGamma(x) is O(10) here, so the subtraction cannot cancel badly.
        statrs::function::gamma::ln_gamma(x + a) - statrs::function::gamma::ln_gamma(x)
    }
}

/// `ln B(a, b) = ln Gamma(a) + ln Gamma(b) - ln Gamma(a + b)` for `a, b > 0`,
/// accurate to a few ulps of the *result* even for arguments near 1e6.
pub(crate) fn ln_beta(a: f64, b: f64) -> f64 {
    debug_assert!(a > 0.0 && b > 0.0);
    let (small, large) = if a <= b { (a, b) } else { (b, a) };
    if large < STIRLING_MIN {
        statrs::function::gamma::ln_gamma(small) + statrs::function::gamma::ln_gamma(large)
            - statrs::function::gamma::ln_gamma(small + large)
    } else if small < STIRLING_MIN {
        statrs::function::gamma::ln_gamma(small) - ln_gamma_ratio(large, small)
    } else {
        // Stirling for all three: the linear terms cancel exactly and
        //   (a-1/2) ln a + (b-1/2) ln b - (a+b-1/2) ln(a+b)
        // = -(a-1/2) ln1p(b/a) - (b-1/2) ln1p(a/b) - ln(a+b)/2.
        let sum = small + large;
        -(small - 0.5) * (large / small).ln_1p()
            - (large - 0.5) * (small / large).ln_1p()
            - 0.5 * sum.ln()
            + HALF_LN_2PI
            + stirling_remainder(small)
            + stirling_remainder(large)
            - stirling_remainder(sum)
    }
}

/// Multivariate log Beta `sum_i lnGamma(a_i) - lnGamma(sum_i a_i)` for
/// positive `a_i`, as the telescoping sum of two-argument log Betas
/// `sum_{j>=2} ln B(a_1 + ... + a_{j-1}, a_j)` so it inherits their accuracy.
/// One argument gives 0.
pub(crate) fn ln_beta_multi(a: &[f64]) -> f64 {
    let mut iter = a.iter();
    let Some(&first) = iter.next() else {
        return 0.0;
    };
    let mut partial = first;
    let mut total = 0.0;
    for &ai in iter {
        total += ln_beta(partial, ai);
        partial += ai;
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use statrs::function::gamma::ln_gamma;

    #[test]
    fn ln_beta_matches_ln_gamma_where_that_is_accurate() {
        // Small and moderate arguments, where the naive formula is exact
        // enough to serve as a reference.
        for &(a, b) in &[
            (0.5, 0.5),
            (1.0, 3.0),
            (2.5, 9.0),
            (3.0, 12.0),
            (10.0, 190.0),
            (12.5, 40.0),
            (150.0, 170.0),
        ] {
            let naive = ln_gamma(a) + ln_gamma(b) - ln_gamma(a + b);
            let got = ln_beta(a, b);
            assert!(
                (got - naive).abs() <= 1e-12 * naive.abs().max(1.0),
                "lnB({a},{b}) = {got}, naive {naive}"
            );
            assert_eq!(got, ln_beta(b, a), "symmetry");
        }
        // Exact values: B(1, b) = 1/b, B(2, 3) = 1/12.
        assert!((ln_beta(1.0, 1e6) + 1e6f64.ln()).abs() < 1e-12);
        assert!((ln_beta(2.0, 3.0) + 12f64.ln()).abs() < 1e-14);
        // B(a, a+1) recursion: B(a, b+1) = B(a, b) * b / (a + b).
        let (a, b) = (40.0, 1.0e5);
        let lhs = ln_beta(a, b + 1.0);
        let rhs = ln_beta(a, b) + (b / (a + b)).ln();
        assert!((lhs - rhs).abs() < 1e-11, "{lhs} vs {rhs}");
    }

    #[test]
    fn ln_gamma_ratio_matches_recurrence() {
        // Gamma(x+1)/Gamma(x) = x, for both branches.
        for &x in &[0.3, 4.0, 9.99, 10.0, 55.5, 1e7] {
            let got = ln_gamma_ratio(x, 1.0);
            assert!(
                (got - x.ln()).abs() < 1e-13 * x.ln().abs().max(1.0),
                "x={x}"
            );
        }
        assert_eq!(ln_gamma_ratio(20.0, 0.0), 0.0);
        // Gamma(x+3)/Gamma(x) = x(x+1)(x+2).
        let x: f64 = 20.0;
        let expect = (x * (x + 1.0) * (x + 2.0)).ln();
        assert!((ln_gamma_ratio(x, 3.0) - expect).abs() < 1e-13);
    }

    #[test]
    fn ln_beta_multi_telescopes() {
        let a = [3.0, 40.0, 0.7, 1234.5];
        let naive: f64 =
            a.iter().map(|&v| ln_gamma(v)).sum::<f64>() - ln_gamma(a.iter().sum::<f64>());
        assert!((ln_beta_multi(&a) - naive).abs() < 1e-10);
        assert_eq!(ln_beta_multi(&[5.0]), 0.0);
        assert_eq!(ln_beta_multi(&[]), 0.0);
    }

    #[test]
    fn bonferroni_divides_and_validates() {
        assert_eq!(bonferroni(0.05, 5).unwrap(), 0.01);
        assert!(bonferroni(0.05, 0).is_err());
        assert!(bonferroni(0.0, 3).is_err());
        assert!(bonferroni(1.0, 3).is_err());
        assert!(bonferroni(f64::NAN, 3).is_err());
    }

    #[test]
    fn holm_step_down() {
        // m = 4: thresholds 0.0125, 0.01667, 0.025, 0.05 in sorted order.
        let p = [0.04, 0.001, 0.02, 0.013];
        assert_eq!(holm(&p, 0.05).unwrap(), vec![true, true, true, true]);
        // 0.013 > 0.05/4 = 0.0125 would stop here if it were the smallest.
        let p = [0.013, 0.2, 0.014, 0.015];
        assert_eq!(holm(&p, 0.05).unwrap(), vec![false; 4]);
        // Step-down stops at the first failure even if later ones would pass
        // their own threshold.
        let p = [0.001, 0.03, 0.02, 0.049];
        assert_eq!(holm(&p, 0.05).unwrap(), vec![true, false, false, false]);
        // Holm rejects at least what Bonferroni rejects.
        let p = [0.01, 0.012, 0.9];
        assert_eq!(holm(&p, 0.05).unwrap(), vec![true, true, false]);
        assert!(holm(&[], 0.05).unwrap().is_empty());
        assert!(holm(&[0.1, f64::NAN], 0.05).is_err());
        assert!(holm(&[1.5], 0.05).is_err());
        assert!(holm(&[0.1], 1.0).is_err());
    }

    #[test]
    fn p_from_running_max() {
        assert_eq!(p_from_max_log_e(-3.0), 1.0);
        assert_eq!(p_from_max_log_e(0.0), 1.0);
        assert!((p_from_max_log_e(20f64.ln()) - 0.05).abs() < 1e-16);
    }
}

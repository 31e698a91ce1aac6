//! Mann-Whitney U test (Wilcoxon rank-sum test), computed exactly as
//! `scipy.stats.mannwhitneyu` (scipy 1.17) does.
//!
//! # Statistic
//!
//! Pool `x` (`n1` values) and `y` (`n2` values), give every value its average
//! rank (ties share the mean of the ranks they span, see [`crate::rank`]) and
//! let `R1` be the rank sum of `x`. Then
//!
//! ```text
//! U1 = R1 − n1(n1 + 1)/2        (pairs with x_i > y_j, plus ½ per tied pair; R's W)
//! U2 = n1·n2 − U1
//! ```
//!
//! The p-value is an upper-tail probability of one of them:
//! `Greater` (x stochastically larger) uses `U = U1`, `Less` uses `U = U2`,
//! `TwoSided` uses `U = max(U1, U2)` and doubles the tail. It is clipped to
//! `[0, 1]`.
//!
//! # Method
//!
//! `Auto` picks the asymptotic normal approximation iff `n1 > 8 && n2 > 8`
//! or the pooled sample has ties; otherwise the exact null distribution.
//! (R's `wilcox.test` uses a different rule, exact iff both sizes are below
//! 50 and there are no ties; see `docs/statistics/mann_whitney.md`.)
//!
//! **Exact**: under H0 all `C(n1+n2, n1)` arrangements are equally likely, and
//! the number of arrangements with `U = u` is the coefficient of `q^u` in the
//! Gaussian binomial coefficient
//!
//! ```text
//! [n + m choose m]_q = Π_{i=1..m} (1 − q^(n+i)) / (1 − q^i),   m = min(n1, n2), n = max(n1, n2)
//! ```
//!
//! built one factor at a time (multiply by `1 − q^(n+i)`, then divide by
//! `1 − q^i`, which is a strided prefix sum): O(m · n·m) operations, so 6 vs
//! 150 values costs about 5 400 additions. `p = P(U ≥ u_obs)` includes the mass
//! at the observed value. Forced `Exact` with ties does what scipy does: no
//! tie correction, and a half-integer `U` is truncated towards zero first.
//!
//! **Asymptotic**:
//!
//! ```text
//! μ = n1·n2/2
//! σ = sqrt( n1·n2/12 · ((N + 1) − Σ_g (t_g³ − t_g) / (N(N − 1))) ),  N = n1 + n2
//! z = (U − μ − ½·[use_continuity]) / σ
//! p = sf(z) · (2 if two-sided else 1),   sf(z) = ½·erfc(z/√2)
//! ```
//!
//! The survival function is evaluated with `erfc`, never as `1 − cdf`, so
//! p-values far below 1e-16 keep their relative precision.
//!
//! # Computation
//!
//! Each sample is sorted once ([`crate::rank::sorted_copy`]) and `R1` and
//! the tie term come from one merge of the sorted samples
//! ([`crate::rank::merged_rank_sum`]): O(N log N) for the sorts (a radix
//! sort for large samples) plus O(N).
//!
//! # Edge cases
//!
//! * An empty side is [`StatsError::EmptySample`]; NaN is
//!   [`StatsError::NonFinite`]. ±inf are ranked as the extremes (as scipy).
//! * All values equal: σ = 0 and the p-value is 1 (scipy gets there via
//!   `z = −inf` with the continuity correction; without it scipy returns NaN,
//!   we return 1 and `z = None`).
//!
//! References: scipy 1.17.1 `scipy/stats/_mannwhitneyu.py` (behaviour);
//! Mann & Whitney (1947); Löffler (1983) for the counting recurrence; the
//! Gaussian-binomial generating function is classical (Andrews, *The Theory of
//! Partitions*, 1976, ch. 3).

use serde::{Deserialize, Serialize};
use statrs::function::erf::erfc;

use crate::alternative::Alternative;
use crate::error::{check_values, StatsError};
use crate::rank::{merged_rank_sum, sorted_copy};

/// How the p-value is computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// scipy's rule: asymptotic iff both sizes exceed 8 or there are ties.
    #[default]
    Auto,
    /// The exact permutation distribution of U (no tie correction).
    Exact,
    /// Normal approximation with tie-corrected variance.
    Asymptotic,
}

/// Options of [`mann_whitney`]; the default is scipy's default
/// (two-sided, auto, continuity correction on).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannWhitneyConfig {
    pub alternative: Alternative,
    pub method: Method,
    /// Subtract ½ from `U − μ` in the asymptotic method.
    pub use_continuity: bool,
}

impl Default for MannWhitneyConfig {
    fn default() -> Self {
        Self {
            alternative: Alternative::TwoSided,
            method: Method::Auto,
            use_continuity: true,
        }
    }
}

/// Result of [`mann_whitney`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MannWhitney {
    /// `U1`, the statistic of `x` (scipy's `statistic`, R's `W`).
    pub u_statistic: f64,
    /// `U2 = n1·n2 − U1`, the statistic of `y`.
    pub u2: f64,
    /// p-value for the configured alternative, in `[0, 1]`.
    pub p_value: f64,
    /// The method actually used: `Exact` or `Asymptotic`, never `Auto`.
    pub method: Method,
    /// Standardised statistic whose upper tail is the p-value (asymptotic
    /// method only; `None` for exact, and when σ = 0 without continuity
    /// correction, where it would be 0/0).
    pub z: Option<f64>,
    /// Tie-corrected standard deviation of U under H0 (asymptotic only).
    pub sigma: Option<f64>,
    /// `Σ (t³ − t)` over tie groups of the pooled sample.
    pub tie_term: f64,
}

/// Sizes up to which `Auto` may still choose the exact method (scipy: 8).
const AUTO_EXACT_MAX_SIZE: usize = 8;

/// The test's input checks: both samples non-empty, no NaN (infinities
/// are ranked). Shared with the combined test and interval.
pub(crate) fn check_samples(x: &[f64], y: &[f64]) -> Result<(), StatsError> {
    if x.is_empty() {
        return Err(StatsError::EmptySample { sample: "x" });
    }
    if y.is_empty() {
        return Err(StatsError::EmptySample { sample: "y" });
    }
    check_values("x", x, true)?;
    check_values("y", y, true)
}

/// Mann-Whitney U test of `x` (canary) against `y` (baseline), as
/// `scipy.stats.mannwhitneyu(x, y, use_continuity, alternative, method)`.
///
/// Errors: [`StatsError::EmptySample`] if either side is empty,
/// [`StatsError::NonFinite`] on NaN. Infinities are allowed (ranked).
pub fn mann_whitney(
    x: &[f64],
    y: &[f64],
    config: &MannWhitneyConfig,
) -> Result<MannWhitney, StatsError> {
    check_samples(x, y)?;
    Ok(mann_whitney_sorted(
        &sorted_copy(x),
        &sorted_copy(y),
        config,
    ))
}

/// [`mann_whitney`] of two validated samples (non-empty, no NaN), each
/// sorted ascending: ranks come from one merge of the sorted arms
/// ([`merged_rank_sum`]), so a caller that also needs the sorted samples
/// (the Hodges-Lehmann interval) sorts them once.
pub(crate) fn mann_whitney_sorted(
    xs: &[f64],
    ys: &[f64],
    config: &MannWhitneyConfig,
) -> MannWhitney {
    let (n1, n2) = (xs.len(), ys.len());
    let (rank_sum_x, tie_term) = merged_rank_sum(xs, ys);
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let u1 = rank_sum_x - n1f * (n1f + 1.0) / 2.0;
    let u2 = n1f * n2f - u1;

    let method = match config.method {
        Method::Auto => {
            if (n1 > AUTO_EXACT_MAX_SIZE && n2 > AUTO_EXACT_MAX_SIZE) || tie_term > 0.0 {
                Method::Asymptotic
            } else {
                Method::Exact
            }
        }
        forced => forced,
    };

    // The U whose upper tail is the p-value, and the two-sided doubling.
    let (u_tail, tails) = match config.alternative {
        Alternative::Greater => (u1, 1.0),
        Alternative::Less => (u2, 1.0),
        Alternative::TwoSided => (u1.max(u2), 2.0),
    };

    let (p_value, z, sigma) = match method {
        Method::Exact => {
            let distribution = ExactUDistribution::new(n1, n2);
            // scipy casts U to an integer before the exact survival function,
            // which truncates the half-integer U of tied data.
            let u_int = u_tail.trunc() as u64;
            (tails * distribution.sf(u_int), None, None)
        }
        Method::Asymptotic => {
            let n = n1f + n2f;
            let mu = n1f * n2f / 2.0;
            let sigma = (n1f * n2f / 12.0 * ((n + 1.0) - tie_term / (n * (n - 1.0)))).sqrt();
            let continuity = if config.use_continuity { 0.5 } else { 0.0 };
            let numerator = u_tail - mu - continuity;
            if sigma == 0.0 {
                // Every value is the same: no evidence of any difference.
                // With continuity the numerator is −½, so z = −inf (scipy's
                // value); without it z is 0/0 and is reported as absent.
                let z = (numerator < 0.0).then_some(f64::NEG_INFINITY);
                (1.0, z, Some(sigma))
            } else {
                let z = numerator / sigma;
                (tails * normal_sf(z), Some(z), Some(sigma))
            }
        }
        Method::Auto => unreachable!("Auto was resolved above"),
    };

    MannWhitney {
        u_statistic: u1,
        u2,
        p_value: p_value.clamp(0.0, 1.0),
        method,
        z,
        sigma,
        tie_term,
    }
}

/// Upper tail of the standard normal, `½·erfc(z/√2)`: accurate far into the
/// tail, unlike `1 − cdf(z)`.
pub(crate) fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The exact null distribution of U for sample sizes `n1`, `n2` without ties
/// (`U` takes the values `0..=n1·n2`, symmetric about `n1·n2/2`; the same for
/// U1 and U2 and for either order of the sizes).
///
/// Counts come from the Gaussian binomial coefficient (module docs). When
/// `C(n1+n2, n1) < 2^127` they are computed exactly in `u128`; the
/// multiply-then-divide steps run in wrapping arithmetic, which is exact
/// modulo 2^128 and therefore exact for the final coefficients, whatever the
/// intermediate values. Larger sizes use `f64` rescaled after every factor,
/// keeping only the lower half (which involves no cancellation-prone
/// subtractions far from the centre) and mirroring it by symmetry.
#[derive(Debug, Clone, PartialEq)]
pub struct ExactUDistribution {
    n1: usize,
    n2: usize,
    /// `pmf[u] = P(U = u)`.
    pmf: Vec<f64>,
}

impl ExactUDistribution {
    /// Builds the distribution in O(min(n1,n2) · n1·n2) time and O(n1·n2) memory.
    pub fn new(n1: usize, n2: usize) -> Self {
        let (m, n) = (n1.min(n2), n1.max(n2));
        let pmf = if log2_binomial(n + m, m) < 127.0 {
            u_pmf_exact_counts(m, n)
        } else {
            u_pmf_scaled_f64(m, n)
        };
        Self { n1, n2, pmf }
    }

    /// The sample sizes this distribution was built for.
    pub fn sizes(&self) -> (usize, usize) {
        (self.n1, self.n2)
    }

    /// The largest value of U, `n1·n2`.
    pub fn max_u(&self) -> u64 {
        (self.pmf.len() - 1) as u64
    }

    /// `P(U = u)` (0 outside the support).
    pub fn pmf(&self, u: u64) -> f64 {
        self.pmf.get(u as usize).copied().unwrap_or(0.0)
    }

    /// `P(U ≤ u)`, summing the smaller tail for accuracy (as R's `pwilcox`).
    pub fn cdf(&self, u: i64) -> f64 {
        if u < 0 {
            return 0.0;
        }
        let u = u as u64;
        let max = self.max_u();
        if u >= max {
            return 1.0;
        }
        if 2 * u <= max {
            self.pmf[..=u as usize].iter().sum()
        } else {
            1.0 - self.pmf[u as usize + 1..].iter().rev().sum::<f64>()
        }
    }

    /// `P(U ≥ u)`, the upper tail including the mass at `u`.
    pub fn sf(&self, u: u64) -> f64 {
        let max = self.max_u();
        if u == 0 {
            return 1.0;
        }
        if u > max {
            return 0.0;
        }
        // P(U ≥ u) = P(U ≤ max − u) by symmetry; summing from the far end
        // adds the smallest terms first.
        let mirrored = (max - u) as usize;
        if 2 * u >= max {
            self.pmf[..=mirrored].iter().sum()
        } else {
            1.0 - self.pmf[mirrored + 1..].iter().rev().sum::<f64>()
        }
    }

    /// R's `qwilcox(p, n1, n2)`: the smallest `q` with `P(U ≤ q) ≥ p`, with
    /// R's guard against rounding (the target is lowered by `10·ε`, or for
    /// `p > ½` the complementary tail is accumulated instead).
    pub fn quantile(&self, p: f64) -> u64 {
        let max = self.max_u();
        if p <= 0.0 {
            return 0;
        }
        if p >= 1.0 {
            return max;
        }
        let guard = 10.0 * f64::EPSILON;
        let mut cumulative = 0.0;
        if p <= 0.5 {
            let target = p - guard;
            for (q, &mass) in self.pmf.iter().enumerate() {
                cumulative += mass;
                if cumulative >= target {
                    return q as u64;
                }
            }
            max
        } else {
            // Accumulate P(U ≤ q) = P(U ≥ max − q) from the bottom until it
            // exceeds 1 − p; the answer is then max − q.
            let target = 1.0 - p + guard;
            for (q, &mass) in self.pmf.iter().enumerate() {
                cumulative += mass;
                if cumulative > target {
                    return max - q as u64;
                }
            }
            0
        }
    }
}

/// `log2 C(n, k)`, accurate enough to decide whether the counts fit in u128.
fn log2_binomial(n: usize, k: usize) -> f64 {
    (1..=k)
        .map(|i| ((n - k + i) as f64 / i as f64).log2())
        .sum()
}

/// Exact counts of U in u128 (requires `C(n+m, m) < 2^127`), as probabilities.
fn u_pmf_exact_counts(m: usize, n: usize) -> Vec<f64> {
    let max_u = m * n;
    let mut counts = vec![0u128; max_u + 1];
    counts[0] = 1;
    for i in 1..=m {
        // Before this factor the polynomial has degree (i−1)·n; after, i·n.
        // Coefficients above i·n are never needed: the division below only
        // looks at lower indices, and the quotient has degree i·n.
        let degree = i * n;
        let shift = n + i;
        // Multiply by (1 − q^shift), descending so each term uses old values.
        for k in (shift..=degree).rev() {
            counts[k] = counts[k].wrapping_sub(counts[k - shift]);
        }
        // Divide by (1 − q^i): c[k] += c[k − i], ascending.
        for k in i..=degree {
            counts[k] = counts[k].wrapping_add(counts[k - i]);
        }
    }
    let total = counts.iter().fold(0u128, |a, &c| a.wrapping_add(c));
    let total_f = total as f64;
    counts.iter().map(|&c| c as f64 / total_f).collect()
}

/// The same product in f64 for sizes whose counts overflow u128.
///
/// The polynomial is rescaled after every factor (linear steps commute with
/// scaling). Coefficients far above the centre come from subtracting nearly
/// equal numbers, so only the lower half is kept and mirrored.
fn u_pmf_scaled_f64(m: usize, n: usize) -> Vec<f64> {
    let max_u = m * n;
    let mut coefficients = vec![0.0f64; max_u + 1];
    coefficients[0] = 1.0;
    for i in 1..=m {
        let degree = i * n;
        let shift = n + i;
        for k in (shift..=degree).rev() {
            coefficients[k] -= coefficients[k - shift];
        }
        for k in i..=degree {
            coefficients[k] += coefficients[k - i];
        }
        // The largest coefficient is the central one; keep it at 1.
        let centre = coefficients[degree / 2];
        for c in &mut coefficients[..=degree] {
            *c /= centre;
        }
    }
    for u in 0..max_u / 2 {
        coefficients[max_u - u] = coefficients[u];
    }
    let total: f64 = coefficients.iter().sum();
    coefficients.iter().map(|&c| c / total).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(alternative: Alternative, method: Method) -> MannWhitneyConfig {
        MannWhitneyConfig {
            alternative,
            method,
            use_continuity: true,
        }
    }

    /// Brute-force U distribution by enumerating which pooled ranks x takes.
    fn enumerate_counts(m: usize, n: usize) -> Vec<u64> {
        let mut counts = vec![0u64; m * n + 1];
        let total = m + n;
        for mask in 0u32..(1 << total) {
            if mask.count_ones() as usize != m {
                continue;
            }
            // U = Σ ranks of the first sample − m(m+1)/2 (ranks 1-based).
            let rank_sum: usize = (0..total)
                .filter(|b| mask & (1 << b) != 0)
                .map(|b| b + 1)
                .sum();
            counts[rank_sum - m * (m + 1) / 2] += 1;
        }
        counts
    }

    #[test]
    fn exact_counts_match_enumeration() {
        for (m, n) in [(1, 1), (1, 5), (2, 3), (3, 3), (4, 7), (5, 6), (6, 6)] {
            let dist = ExactUDistribution::new(m, n);
            let counts = enumerate_counts(m, n);
            let total: u64 = counts.iter().sum();
            for (u, &c) in counts.iter().enumerate() {
                assert_eq!(
                    dist.pmf(u as u64),
                    c as f64 / total as f64,
                    "m={m} n={n} u={u}"
                );
            }
            // Either order of the sizes gives the same distribution.
            assert_eq!(dist.pmf, ExactUDistribution::new(n, m).pmf);
        }
    }

    #[test]
    fn scaled_f64_path_agrees_with_exact_counts() {
        // C(120, 60) ≈ 9.7e34 still fits u128, so both paths can run.
        for (m, n) in [(8, 150), (30, 40), (60, 60)] {
            let exact = u_pmf_exact_counts(m, n);
            let scaled = u_pmf_scaled_f64(m, n);
            let mut worst: f64 = 0.0;
            for u in 0..=m * n {
                let dist_sf_exact: f64 = exact[u..].iter().sum();
                let dist_sf_scaled: f64 = scaled[u..].iter().sum();
                if dist_sf_exact > 1e-300 {
                    worst = worst.max(((dist_sf_scaled - dist_sf_exact) / dist_sf_exact).abs());
                }
            }
            assert!(
                worst < 1e-9,
                "m={m} n={n}: worst relative sf error {worst:e}"
            );
        }
    }

    #[test]
    fn large_forced_exact_uses_f64_and_stays_normalised() {
        let dist = ExactUDistribution::new(80, 90);
        let total: f64 = dist.pmf.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((dist.sf(0) - 1.0).abs() < 1e-15);
        assert_eq!(dist.pmf(0), dist.pmf(80 * 90));
    }

    #[test]
    fn sf_and_cdf_are_complementary_tails() {
        let dist = ExactUDistribution::new(6, 7);
        for u in 0..=42u64 {
            let sf = dist.sf(u);
            let cdf_below = dist.cdf(u as i64 - 1);
            assert!((sf + cdf_below - 1.0).abs() < 1e-14, "u={u}");
        }
        assert_eq!(dist.sf(43), 0.0);
        assert_eq!(dist.cdf(-1), 0.0);
        assert_eq!(dist.cdf(42), 1.0);
    }

    #[test]
    fn quantile_is_smallest_q_reaching_p() {
        let dist = ExactUDistribution::new(4, 4);
        // P(U ≤ 0) = 1/70, P(U ≤ 1) = 2/70.
        assert_eq!(dist.quantile(0.025), 1);
        assert_eq!(dist.quantile(1.0 / 70.0), 0);
        assert_eq!(dist.quantile(0.0), 0);
        assert_eq!(dist.quantile(1.0), 16);
        // Upper branch mirrors the lower one on the symmetric distribution.
        assert_eq!(dist.quantile(0.975), 16 - 1);
    }

    #[test]
    fn u_counts_pairs_with_half_for_ties() {
        let r = mann_whitney(&[1.0, 3.0], &[2.0, 3.0, 0.0], &MannWhitneyConfig::default()).unwrap();
        // Pairs x>y: 1>0, 3>2, 3>0 → 3, plus 3=3 → ½.
        assert_eq!(r.u_statistic, 3.5);
        assert_eq!(r.u2, 2.5);
        assert_eq!(r.method, Method::Asymptotic, "ties force asymptotic");
    }

    #[test]
    fn auto_rule_boundaries() {
        let a: Vec<f64> = (0..8).map(f64::from).collect();
        let b: Vec<f64> = (100..200).map(f64::from).collect();
        let cfg = MannWhitneyConfig::default();
        assert_eq!(mann_whitney(&a, &b, &cfg).unwrap().method, Method::Exact);
        let a9: Vec<f64> = (0..9).map(f64::from).collect();
        let b9: Vec<f64> = (100..109).map(f64::from).collect();
        assert_eq!(
            mann_whitney(&a9, &b9, &cfg).unwrap().method,
            Method::Asymptotic
        );
    }

    #[test]
    fn empty_and_nan_are_errors() {
        let cfg = MannWhitneyConfig::default();
        assert_eq!(
            mann_whitney(&[], &[1.0], &cfg),
            Err(StatsError::EmptySample { sample: "x" })
        );
        assert_eq!(
            mann_whitney(&[1.0], &[], &cfg),
            Err(StatsError::EmptySample { sample: "y" })
        );
        assert!(matches!(
            mann_whitney(&[1.0, f64::NAN], &[1.0], &cfg),
            Err(StatsError::NonFinite {
                sample: "x",
                index: 1,
                ..
            })
        ));
    }

    #[test]
    fn infinities_are_ranked() {
        let r = mann_whitney(
            &[f64::INFINITY, 5.0],
            &[f64::NEG_INFINITY, 1.0, 2.0],
            &config(Alternative::Greater, Method::Auto),
        )
        .unwrap();
        assert_eq!(r.u_statistic, 6.0);
        assert_eq!(r.method, Method::Exact);
        // Only 1 of C(5,2) = 10 arrangements reaches U = 6.
        assert!((r.p_value - 0.1).abs() < 1e-15);
    }

    #[test]
    fn one_value_each() {
        let r = mann_whitney(&[2.0], &[1.0], &MannWhitneyConfig::default()).unwrap();
        assert_eq!((r.u_statistic, r.u2), (1.0, 0.0));
        assert_eq!(r.method, Method::Exact);
        assert_eq!(r.p_value, 1.0, "2·P(U ≥ 1) = 1");
        let tied = mann_whitney(&[1.0], &[1.0], &MannWhitneyConfig::default()).unwrap();
        assert_eq!(tied.p_value, 1.0);
        assert_eq!(tied.u_statistic, 0.5);
    }

    #[test]
    fn all_values_tied_give_p_one() {
        for use_continuity in [true, false] {
            for alternative in [
                Alternative::TwoSided,
                Alternative::Less,
                Alternative::Greater,
            ] {
                let cfg = MannWhitneyConfig {
                    alternative,
                    method: Method::Auto,
                    use_continuity,
                };
                let r = mann_whitney(&[3.0; 10], &[3.0; 12], &cfg).unwrap();
                assert_eq!(r.p_value, 1.0);
                assert_eq!(r.sigma, Some(0.0));
                assert_eq!(r.u_statistic, 60.0);
                let expected_z = use_continuity.then_some(f64::NEG_INFINITY);
                assert_eq!(r.z, expected_z);
            }
        }
    }

    #[test]
    fn constant_but_different_sides() {
        let r = mann_whitney(&[5.0; 10], &[3.0; 12], &MannWhitneyConfig::default()).unwrap();
        assert_eq!(r.u_statistic, 120.0);
        assert_eq!(r.method, Method::Asymptotic);
        assert!(r.p_value < 1e-4 && r.p_value > 0.0);
    }

    #[test]
    fn forced_exact_with_ties_truncates_u() {
        // U1 = 3.5 → truncated to 3 for the exact tail, as scipy.
        let x = [1.0, 3.0];
        let y = [2.0, 3.0, 0.0];
        let r = mann_whitney(&x, &y, &config(Alternative::Greater, Method::Exact)).unwrap();
        assert_eq!(r.u_statistic, 3.5);
        let dist = ExactUDistribution::new(2, 3);
        assert_eq!(r.p_value, dist.sf(3));
    }

    #[test]
    fn tiny_p_keeps_relative_precision() {
        // Complete separation with 300 vs 300: p is around 1e-99, far below
        // what 1 − cdf could represent.
        let x: Vec<f64> = (0..300).map(f64::from).collect();
        let y: Vec<f64> = (1000..1300).map(f64::from).collect();
        let r = mann_whitney(&x, &y, &config(Alternative::Less, Method::Auto)).unwrap();
        assert!(r.p_value > 0.0 && r.p_value < 1e-90, "{}", r.p_value);
    }
}

//! Tests on two binomial proportions: error rate of the canary (`x1/n1`)
//! against the baseline (`x2/n2`).
//!
//! # Two-proportion z-test ([`two_proportion_z`])
//!
//! ```text
//! p1 = x1/n1, p2 = x2/n2, p = (x1 + x2)/(n1 + n2), d = p1 - p2, s = 1/n1 + 1/n2
//! z  = d / sqrt(p (1 - p) s)                                   pooled SE under H0
//! Yates (correction = true): z = sign(d) max(0, |d| - s/2) / sqrt(p (1 - p) s)
//! p-value: erfc(|z|/sqrt 2) two-sided, sf(z) greater, sf(-z) less
//! ```
//! `z^2` is Pearson's chi-square of the 2x2 table, so the p-values equal
//! `scipy.stats.chi2_contingency(correction=False)` and R
//! `prop.test(correct = FALSE)`; with `correction` they equal R's default
//! `prop.test(correct = TRUE)` (R caps the Yates shift of 1/2 at `|x1 - E|`,
//! which is the `max(0, ...)` above).
//!
//! The Wald interval is R `prop.test`'s, including R's handling of the
//! correction and the clipping to [-1, 1]:
//! ```text
//! w  = q sqrt(p1(1-p1)/n1 + p2(1-p2)/n2) + (correction ? min(1/2, |d|/s) s : 0)
//! two-sided: (d - w, d + w) with q = z_{1 - alpha/2};  greater: (d - w, 1), less: (-1, d + w)
//! with q = z_{conf_level}
//! ```
//! Newcombe's hybrid score interval (Newcombe 1998, method 10) combines the
//! Wilson intervals `(l_i, u_i)` of each proportion at the same `q`:
//! `(d - sqrt((p1 - l1)^2 + (u2 - p2)^2), d + sqrt((u1 - p1)^2 + (p2 - l2)^2))`.
//! It stays sensible near 0 errors, where the Wald interval collapses. It never
//! has a continuity correction.
//!
//! # Fisher's exact test ([`fisher_exact`])
//!
//! Table `[[a, b], [c, d]] = [[canary_err, canary_ok], [base_err, base_ok]]`.
//! Conditional on the margins, `a` is hypergeometric (population `N`, `K = a +
//! c` errors, `n = a + b` canary draws); `greater` sums `P(X >= a)` (odds
//! ratio above 1, canary worse), `less` `P(X <= a)`, and two-sided sums the
//! probabilities of all tables no more likely than the observed one, as
//! `scipy.stats.fisher_exact` and R `fisher.test`. Probabilities are relative
//! to the mode and built in log space from the pmf ratio
//! `P(k+1)/P(k) = (K-k)(n-k) / ((k+1)(N-K-n+k+1))`, so margins in the millions
//! neither overflow nor need factorials.
//!
//! **Deviation:** "no more likely" uses R's relative tolerance `1 + 1e-7`
//! rather than scipy's `1 + 1e-14`. Mathematically tied tables (symmetric
//! margins) must be counted, and our ratio products carry rounding of about
//! `1e-16` per step away from the mode, which can exceed `1e-14` over long
//! walks. The two rules differ only when a table's probability is within `1e-7`
//! of the observed one without being equal; all reference vectors agree.
//!
//! # Beta-binomial posterior ([`beta_binomial_prob_greater`])
//!
//! Descriptive only: `P(p_canary > p_baseline)` under independent Beta
//! posteriors. It is **not anytime-valid**: thresholding it at every peek does
//! not bound the false-abort rate.

use serde::Serialize;
use statrs::function::beta::ln_beta;
use statrs::function::gamma::gamma_ur;

use crate::alternative::Alternative;
use crate::error::{check_conf_level, StatsError};

/// Options of [`two_proportion_z`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TwoProportionConfig {
    /// Which departure to test; `Greater` = canary proportion larger.
    pub alternative: Alternative,
    /// Yates continuity correction, as R `prop.test(correct = TRUE)`.
    pub correction: bool,
    /// Confidence level of the intervals, strictly between 0 and 1.
    pub conf_level: f64,
}

impl Default for TwoProportionConfig {
    /// Two-sided, no correction (the plain z-test / scipy chi-square), 95 %.
    fn default() -> Self {
        TwoProportionConfig {
            alternative: Alternative::TwoSided,
            correction: false,
            conf_level: 0.95,
        }
    }
}

/// Result of [`two_proportion_z`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TwoProportionZ {
    /// Pooled z statistic (Yates-corrected when configured); 0 when the
    /// pooled proportion is 0 or 1 (no variance: nothing to test).
    pub z: f64,
    /// p-value for the configured alternative; 1 when `z` is undefined.
    pub p_value: f64,
    /// `p1 - p2` (canary minus baseline).
    pub diff: f64,
    /// Wald (unpooled) interval of `p1 - p2` as R `prop.test`, clipped to
    /// [-1, 1]; one-sided intervals end at -1 or 1.
    pub conf_int: (f64, f64),
    /// Newcombe hybrid Wilson score interval of `p1 - p2`; one-sided intervals
    /// end at -1 or 1.
    pub newcombe_int: (f64, f64),
}

/// Standard normal quantile for the interval: `z_{1-alpha/2}` two-sided,
/// `z_{conf_level}` one-sided. `-sqrt2 * erfc_inv(2 p)` is statrs' own
/// `Normal::inverse_cdf`, written out to avoid constructing a distribution.
fn normal_quantile(p: f64) -> f64 {
    -std::f64::consts::SQRT_2 * statrs::function::erf::erfc_inv(2.0 * p)
}

/// Upper tail `P(Z > z)` of the standard normal.
///
/// Computed as `Q(1/2, z^2/2) / 2` with statrs' regularized upper incomplete
/// gamma function rather than `erfc(z/sqrt 2) / 2`: statrs 0.19's `erfc` is
/// only good to about 5e-11 relative for arguments above about 0.7 (checked
/// against scipy), while `gamma_ur` holds about 1e-15 and keeps its relative
/// precision far into the tail.
fn normal_sf(z: f64) -> f64 {
    let upper = 0.5 * chi2_1_sf(z * z);
    if z >= 0.0 {
        upper
    } else {
        1.0 - upper
    }
}

/// Two-sided normal p-value `P(|Z| > |z|)`.
fn normal_two_sided(z: f64) -> f64 {
    chi2_1_sf(z * z).min(1.0)
}

/// `P(chi^2_1 > x) = Q(1/2, x/2)`; statrs' `gamma_ur` panics at 0 and inf.
fn chi2_1_sf(x: f64) -> f64 {
    if x.is_nan() {
        f64::NAN
    } else if x <= 0.0 {
        1.0
    } else if x.is_infinite() {
        0.0
    } else {
        gamma_ur(0.5, 0.5 * x)
    }
}

fn check_counts(successes: [u64; 2], trials: [u64; 2]) -> Result<(), StatsError> {
    for i in 0..2 {
        if trials[i] == 0 {
            return Err(StatsError::InvalidParameter {
                name: "trials",
                reason: format!("arm {} has zero trials", i + 1),
            });
        }
        if successes[i] > trials[i] {
            return Err(StatsError::InvalidParameter {
                name: "successes",
                reason: format!(
                    "arm {} has {} successes in {} trials",
                    i + 1,
                    successes[i],
                    trials[i]
                ),
            });
        }
    }
    Ok(())
}

/// Wilson score interval of `x/n` at normal quantile `q`, clamped to [0, 1]
/// (the closed form can land an ulp outside at x = 0 or x = n).
fn wilson(x: f64, n: f64, q: f64) -> (f64, f64) {
    let q2 = q * q;
    let denom = n + q2;
    let centre = (x + q2 / 2.0) / denom;
    let half = q * (x * (n - x) / n + q2 / 4.0).sqrt() / denom;
    ((centre - half).max(0.0), (centre + half).min(1.0))
}

/// Two-proportion z-test of `successes[0]/trials[0]` (canary) against
/// `successes[1]/trials[1]` (baseline), with Wald and Newcombe intervals.
///
/// When both arms have 0 successes (or both only successes) the pooled
/// variance is 0 and `z` is undefined (R reports NaN); we return `z = 0`,
/// `p = 1`: identical all-or-nothing arms give no evidence of a difference.
///
/// # Errors
///
/// [`StatsError::InvalidParameter`] for zero trials, successes > trials, or
/// `conf_level` outside (0, 1).
pub fn two_proportion_z(
    successes: [u64; 2],
    trials: [u64; 2],
    config: &TwoProportionConfig,
) -> Result<TwoProportionZ, StatsError> {
    check_conf_level(config.conf_level)?;
    check_counts(successes, trials)?;
    let (x1, x2) = (successes[0] as f64, successes[1] as f64);
    let (n1, n2) = (trials[0] as f64, trials[1] as f64);
    let (p1, p2) = (x1 / n1, x2 / n2);
    let diff = p1 - p2;
    let s = 1.0 / n1 + 1.0 / n2;
    let pooled = (x1 + x2) / (n1 + n2);
    let se_pooled = (pooled * (1.0 - pooled) * s).sqrt();

    // R's Yates shift: 1/2 in count units, capped so it never crosses zero.
    let yates = if config.correction {
        (diff.abs() / s).min(0.5)
    } else {
        0.0
    };
    let (z, p_value) = if se_pooled > 0.0 {
        let z = if config.correction {
            // |x1 - E11| = |x1 n2 - x2 n1| / (n1 + n2), from the counts so an
            // exact tie with the 1/2 shift gives exactly 0 (|d|/s can round).
            let dev = (x1 * n2 - x2 * n1).abs() / (n1 + n2);
            diff.signum() * (dev - 0.5).max(0.0) * s / se_pooled
        } else {
            diff / se_pooled
        };
        // diff == 0 has signum 1 in Rust; the numerator is 0 then anyway, but
        // normalise -0/+0 so z is exactly 0.
        let z = if z == 0.0 { 0.0 } else { z };
        let p = match config.alternative {
            Alternative::TwoSided => normal_two_sided(z),
            Alternative::Greater => normal_sf(z),
            Alternative::Less => normal_sf(-z),
        };
        (z, p)
    } else {
        (0.0, 1.0)
    };

    let alpha = 1.0 - config.conf_level;
    let q = match config.alternative {
        Alternative::TwoSided => normal_quantile(1.0 - alpha / 2.0),
        _ => normal_quantile(config.conf_level),
    };
    let se_unpooled = (p1 * (1.0 - p1) / n1 + p2 * (1.0 - p2) / n2).sqrt();
    let width = q * se_unpooled + yates * s;
    let conf_int = match config.alternative {
        Alternative::TwoSided => ((diff - width).max(-1.0), (diff + width).min(1.0)),
        Alternative::Greater => ((diff - width).max(-1.0), 1.0),
        Alternative::Less => (-1.0, (diff + width).min(1.0)),
    };

    let (l1, u1) = wilson(x1, n1, q);
    let (l2, u2) = wilson(x2, n2, q);
    let lower = diff - ((p1 - l1).powi(2) + (u2 - p2).powi(2)).sqrt();
    let upper = diff + ((u1 - p1).powi(2) + (p2 - l2).powi(2)).sqrt();
    let newcombe_int = match config.alternative {
        Alternative::TwoSided => (lower, upper),
        Alternative::Greater => (lower, 1.0),
        Alternative::Less => (-1.0, upper),
    };

    Ok(TwoProportionZ {
        z,
        p_value,
        diff,
        conf_int,
        newcombe_int,
    })
}

/// Result of [`fisher_exact`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FisherExact {
    /// p-value for the alternative (two-sided: see the module doc).
    pub p_value: f64,
    /// Sample odds ratio `ad/bc` as `scipy.stats.fisher_exact`: `inf` when
    /// `b` or `c` is 0 (and the table is not degenerate), NaN when a row or a
    /// column sums to 0.
    pub odds_ratio: f64,
    /// Conditional maximum-likelihood odds ratio (R `fisher.test`'s estimate,
    /// scipy `odds_ratio(kind='conditional')`): 0 or `inf` when `a` is at the
    /// end of its support, NaN for a degenerate table, `None` when the support
    /// exceeds [`CONDITIONAL_MLE_MAX_SUPPORT`] tables (too costly to solve).
    pub conditional_odds_ratio: Option<f64>,
}

/// Largest number of tables (values of `a` given the margins) for which
/// [`fisher_exact`] solves the conditional MLE; each Newton step costs one
/// pass over the support.
pub const CONDITIONAL_MLE_MAX_SUPPORT: u64 = 200_000;

/// Hypergeometric law of `a` given the margins, as log-weights relative to the
/// mode over a contiguous range of its support.
struct Hypergeometric {
    /// Population `N`, errors `K`, canary draws `n`, as f64 for the ratios.
    big_n: f64,
    big_k: f64,
    n: f64,
    /// Support `lo..=hi` of `a`.
    lo: u64,
    hi: u64,
    mode: u64,
}

impl Hypergeometric {
    fn new(table: [[u64; 2]; 2]) -> Self {
        let [[a, b], [c, d]] = table;
        let n = a + b;
        let big_k = a + c;
        let big_n = a + b + c + d;
        let lo = n.saturating_sub(big_n - big_k);
        let hi = big_k.min(n);
        // Mode floor((n+1)(K+1)/(N+2)), in u128 so huge counters cannot
        // overflow, clamped into the support for safety.
        let mode = ((n as u128 + 1) * (big_k as u128 + 1) / (big_n as u128 + 2)) as u64;
        Hypergeometric {
            big_n: big_n as f64,
            big_k: big_k as f64,
            n: n as f64,
            lo,
            hi,
            mode: mode.clamp(lo, hi),
        }
    }

    /// `ln P(k+1)/P(k)`.
    fn ln_ratio_up(&self, k: u64) -> f64 {
        let k = k as f64;
        let num = (self.big_k - k) * (self.n - k);
        let den = (k + 1.0) * (self.big_n - self.big_k - self.n + k + 1.0);
        (num / den).ln()
    }

    /// Log-weights `ln P(k)/P(mode)` for `k` in the returned `start..`, covering
    /// `must_include` and extending each way until the weights drop below
    /// `e^-CUTOFF` of both the mode and `P(must_include)` (so the dropped tail
    /// is negligible for any sum we form), or over the whole support if `full`.
    fn log_weights(&self, must_include: u64, full: bool) -> (u64, Vec<f64>) {
        const CUTOFF: f64 = 60.0;
        // Walk first towards `must_include`, so its weight is known when the
        // other side decides where to stop.
        let obs_up = must_include >= self.mode;
        let mut lw_obs = None;
        let mut sides: [Vec<f64>; 2] = [Vec::new(), Vec::new()];
        for up in [obs_up, !obs_up] {
            let side = &mut sides[usize::from(up)];
            let mut lw = 0.0;
            let mut k = self.mode;
            if k == must_include {
                lw_obs = Some(0.0);
            }
            loop {
                let past_obs = if up {
                    k >= must_include
                } else {
                    k <= must_include
                };
                let floor = lw_obs.unwrap_or(0.0_f64).min(0.0) - CUTOFF;
                if (up && k == self.hi) || (!up && k == self.lo) {
                    break;
                }
                if !full && past_obs && lw < floor {
                    break;
                }
                if up {
                    lw += self.ln_ratio_up(k);
                    k += 1;
                } else {
                    // ln P(k-1)/P(k) = -ln P(k)/P(k-1)
                    lw -= self.ln_ratio_up(k - 1);
                    k -= 1;
                }
                side.push(lw);
                if k == must_include {
                    lw_obs = Some(lw);
                }
            }
        }
        let [mut down, up] = sides;
        let start = self.mode - down.len() as u64;
        down.reverse();
        down.push(0.0);
        down.extend(up);
        (start, down)
    }
}

/// `ln sum exp(v)` over the iterator, shifted by its maximum.
fn log_sum_exp(values: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = values.clone().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return max;
    }
    max + values.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// Fisher's exact test of the 2x2 table
/// `[[canary_err, canary_ok], [base_err, base_ok]]`; `Greater` means odds
/// ratio > 1 (canary worse).
///
/// A table with a zero row or column sum has a single possible table: p = 1
/// and NaN odds ratios, as scipy.
///
/// # Errors
///
/// [`StatsError::InvalidParameter`] when the total count overflows `u64`.
pub fn fisher_exact(
    table: [[u64; 2]; 2],
    alternative: Alternative,
) -> Result<FisherExact, StatsError> {
    let [[a, b], [c, d]] = table;
    let total = [a, b, c, d]
        .iter()
        .try_fold(0u64, |acc, &v| acc.checked_add(v));
    if total.is_none() {
        return Err(StatsError::InvalidParameter {
            name: "table",
            reason: "the total count overflows u64".into(),
        });
    }
    let degenerate = a + b == 0 || c + d == 0 || a + c == 0 || b + d == 0;
    if degenerate {
        return Ok(FisherExact {
            p_value: 1.0,
            odds_ratio: f64::NAN,
            conditional_odds_ratio: Some(f64::NAN),
        });
    }
    // f64 products: u64 products of large counters would overflow.
    let odds_ratio = if b > 0 && c > 0 {
        (a as f64 * d as f64) / (b as f64 * c as f64)
    } else {
        f64::INFINITY
    };

    let h = Hypergeometric::new(table);
    let support = h.hi - h.lo + 1;
    let full = support <= CONDITIONAL_MLE_MAX_SUPPORT;
    let (start, lw) = h.log_weights(a, full);
    let at = |i: usize| start + i as u64;
    let lw_obs = lw[(a - start) as usize];
    let ln_total = log_sum_exp(lw.iter().copied());
    let subset: Vec<f64> = match alternative {
        Alternative::Greater => lw[(a - start) as usize..].to_vec(),
        Alternative::Less => lw[..=(a - start) as usize].to_vec(),
        Alternative::TwoSided => {
            let limit = lw_obs + (1e-7f64).ln_1p();
            lw.iter().copied().filter(|&v| v <= limit).collect()
        }
    };
    let p_value = if subset.len() == lw.len() {
        // Every table counts (e.g. the observed one is the mode): exactly 1,
        // not 1 +- rounding.
        1.0
    } else {
        (log_sum_exp(subset.iter().copied()) - ln_total)
            .exp()
            .min(1.0)
    };

    let conditional_odds_ratio = if !full {
        None
    } else if a == h.lo {
        Some(0.0)
    } else if a == h.hi {
        Some(f64::INFINITY)
    } else {
        let ks: Vec<f64> = (0..lw.len()).map(|i| (at(i) - h.lo) as f64).collect();
        Some(conditional_mle(&lw, &ks, (a - h.lo) as f64, odds_ratio))
    };

    Ok(FisherExact {
        p_value,
        odds_ratio,
        conditional_odds_ratio,
    })
}

/// Mean and variance of `j` under weights `exp(lw_j + theta j)`.
fn tilted_moments(lw: &[f64], ks: &[f64], theta: f64) -> (f64, f64) {
    let max = lw
        .iter()
        .zip(ks)
        .map(|(l, k)| l + theta * k)
        .fold(f64::NEG_INFINITY, f64::max);
    let (mut s0, mut s1, mut s2) = (0.0, 0.0, 0.0);
    for (l, k) in lw.iter().zip(ks) {
        let w = (l + theta * k - max).exp();
        s0 += w;
        s1 += w * k;
        s2 += w * k * k;
    }
    let mean = s1 / s0;
    (mean, (s2 / s0 - mean * mean).max(0.0))
}

/// Solves `E_psi[a] = a_obs` for the noncentral hypergeometric odds ratio
/// `psi = e^theta`: the conditional likelihood equation. The mean is strictly
/// increasing in theta (its derivative is the variance), so a bracket plus
/// safeguarded Newton converges; `a_obs` is strictly inside the support here.
fn conditional_mle(lw: &[f64], ks: &[f64], a_obs: f64, sample_or: f64) -> f64 {
    let g = |theta: f64| tilted_moments(lw, ks, theta);
    // Start from the sample OR (finite here unless b or c is 0).
    let mut theta = if sample_or.is_finite() && sample_or > 0.0 {
        sample_or.ln()
    } else {
        0.0
    };
    let (mut lo, mut hi) = (theta - 1.0, theta + 1.0);
    let mut step = 1.0;
    while g(lo).0 > a_obs {
        step *= 2.0;
        lo -= step;
    }
    step = 1.0;
    while g(hi).0 < a_obs {
        step *= 2.0;
        hi += step;
    }
    for _ in 0..200 {
        let (mean, var) = g(theta);
        let f = mean - a_obs;
        if f == 0.0 {
            break;
        }
        if f < 0.0 {
            lo = theta;
        } else {
            hi = theta;
        }
        let newton = theta - f / var;
        let next = if var > 0.0 && newton > lo && newton < hi {
            newton
        } else {
            0.5 * (lo + hi)
        };
        let done = (next - theta).abs() <= 1e-14 * theta.abs().max(1.0);
        theta = next;
        if done || hi - lo <= 1e-14 * theta.abs().max(1.0) {
            break;
        }
    }
    theta.exp()
}

/// Posterior probability that the canary's rate exceeds the baseline's,
/// `P(p1 > p2)` with `p_i ~ Beta(prior_alpha + x_i, prior_beta + n_i - x_i)`
/// independent (`x = successes`, `n = trials`, index 0 = canary).
///
/// Exact finite sum (Miller's formula): for integer `alpha_1`,
/// ```text
/// P(p1 > p2) = sum_{i=0}^{alpha_1 - 1} B(alpha_2 + i, beta_1 + beta_2)
///              / ((beta_1 + i) B(1 + i, beta_1) B(alpha_2, beta_2))
/// ```
/// and by symmetry (`1 - P(p2 > p1)`, or `q = 1 - p` swaps alpha and beta)
/// whichever of the four posterior parameters is an integer, the smallest
/// one chosen so the sum is shortest.
///
/// **Descriptive only; not anytime-valid**: thresholding it at every peek
/// does not bound the false-abort rate, and it depends on the prior.
///
/// # Errors
///
/// [`StatsError::InvalidParameter`] for zero trials, successes > trials,
/// non-positive or non-finite priors, or when no posterior parameter is an
/// integer (e.g. the Jeffreys prior 1/2 with every count): that case needs
/// numerical integration, which is not implemented.
pub fn beta_binomial_prob_greater(
    successes: [u64; 2],
    trials: [u64; 2],
    prior_alpha: f64,
    prior_beta: f64,
) -> Result<f64, StatsError> {
    check_counts(successes, trials)?;
    for (name, v) in [("prior_alpha", prior_alpha), ("prior_beta", prior_beta)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(StatsError::InvalidParameter {
                name,
                reason: format!("must be finite and positive, got {v}"),
            });
        }
    }
    let a1 = prior_alpha + successes[0] as f64;
    let b1 = prior_beta + (trials[0] - successes[0]) as f64;
    let a2 = prior_alpha + successes[1] as f64;
    let b2 = prior_beta + (trials[1] - successes[1]) as f64;
    // (integer parameter, P(p1 > p2) from the sum with its arguments).
    let candidates: [(f64, bool, [f64; 4]); 4] = [
        (a1, false, [a1, b1, a2, b2]), // P(p1 > p2)
        (a2, true, [a2, b2, a1, b1]),  // 1 - P(p2 > p1)
        (b2, false, [b2, a2, b1, a1]), // P(q2 > q1), q = 1 - p
        (b1, true, [b1, a1, b2, a2]),  // 1 - P(q1 > q2)
    ];
    let best = candidates
        .iter()
        .filter(|(v, _, _)| v.fract() == 0.0)
        .min_by(|x, y| x.0.total_cmp(&y.0));
    let Some(&(_, complement, [ab, bb, aa, ba])) = best else {
        return Err(StatsError::InvalidParameter {
            name: "prior_alpha",
            reason: "no posterior parameter is an integer; the exact sum needs one".into(),
        });
    };
    let p = miller_sum(ab, bb, aa, ba);
    Ok(if complement { 1.0 - p } else { p }.clamp(0.0, 1.0))
}

/// `P(p_B > p_A)` for `p_B ~ Beta(ab, bb)`, `p_A ~ Beta(aa, ba)`, integer `ab`,
/// with every term in log space (the Beta functions under- and overflow).
fn miller_sum(ab: f64, bb: f64, aa: f64, ba: f64) -> f64 {
    let ln_b_a = ln_beta(aa, ba);
    let terms = (0..ab as u64).map(|i| {
        let i = i as f64;
        ln_beta(aa + i, ba + bb) - (bb + i).ln() - ln_beta(1.0 + i, bb) - ln_b_a
    });
    log_sum_exp(terms).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    fn cfg(alternative: Alternative, correction: bool) -> TwoProportionConfig {
        TwoProportionConfig {
            alternative,
            correction,
            conf_level: 0.95,
        }
    }

    #[test]
    fn zero_trials_and_too_many_successes_rejected() {
        let c = TwoProportionConfig::default();
        assert!(matches!(
            two_proportion_z([0, 1], [0, 10], &c),
            Err(StatsError::InvalidParameter { name: "trials", .. })
        ));
        assert!(matches!(
            two_proportion_z([11, 1], [10, 10], &c),
            Err(StatsError::InvalidParameter {
                name: "successes",
                ..
            })
        ));
        let bad = TwoProportionConfig {
            conf_level: 1.0,
            ..c
        };
        assert!(two_proportion_z([1, 1], [10, 10], &bad).is_err());
    }

    #[test]
    fn no_successes_anywhere_gives_p_one() {
        for alt in [
            Alternative::TwoSided,
            Alternative::Greater,
            Alternative::Less,
        ] {
            for correction in [false, true] {
                let r = two_proportion_z([0, 0], [100, 200], &cfg(alt, correction)).unwrap();
                assert_eq!(r.z, 0.0);
                assert_eq!(r.p_value, 1.0);
                assert_eq!(r.diff, 0.0);
                // Wilson still gives a non-degenerate interval.
                assert!(r.newcombe_int.0 < 0.0 || alt == Alternative::Less);
                assert!(r.newcombe_int.1 > 0.0 || alt == Alternative::Greater);
            }
        }
        let all = two_proportion_z([5, 7], [5, 7], &TwoProportionConfig::default()).unwrap();
        assert_eq!((all.z, all.p_value), (0.0, 1.0));
    }

    #[test]
    fn yates_never_crosses_zero() {
        // |x1 - E| = 0.25 < 1/2: R caps the correction, so the statistic is 0.
        let r = two_proportion_z([1, 1], [2, 2], &cfg(Alternative::TwoSided, true)).unwrap();
        assert_eq!(r.z, 0.0);
        assert_eq!(r.p_value, 1.0);
        let r = two_proportion_z([3, 2], [6, 6], &cfg(Alternative::Greater, true)).unwrap();
        assert_eq!(r.z, 0.0);
        assert_eq!(r.p_value, 0.5);
    }

    #[test]
    fn one_sided_intervals_end_at_plus_minus_one() {
        let g =
            two_proportion_z([52, 30], [10000, 10000], &cfg(Alternative::Greater, false)).unwrap();
        assert_eq!(g.conf_int.1, 1.0);
        assert_eq!(g.newcombe_int.1, 1.0);
        let two =
            two_proportion_z([52, 30], [10000, 10000], &cfg(Alternative::TwoSided, false)).unwrap();
        // The one-sided 95 % bound is the two-sided 90 % bound: tighter.
        assert!(g.conf_int.0 > two.conf_int.0);
        let l = two_proportion_z([52, 30], [10000, 10000], &cfg(Alternative::Less, false)).unwrap();
        assert_eq!(l.conf_int.0, -1.0);
        assert!(close(g.p_value + l.p_value, 1.0, 1e-15));
    }

    #[test]
    fn newcombe_matches_published_examples() {
        // Newcombe (1998), Statistics in Medicine 17:873, Table II, method 10.
        let c = TwoProportionConfig::default();
        let r = two_proportion_z([56, 48], [70, 80], &c).unwrap();
        assert!(
            (r.newcombe_int.0 - 0.0524).abs() < 5e-5,
            "{:?}",
            r.newcombe_int
        );
        assert!(
            (r.newcombe_int.1 - 0.3339).abs() < 5e-5,
            "{:?}",
            r.newcombe_int
        );
        let r = two_proportion_z([5, 0], [56, 29], &c).unwrap();
        assert!(
            (r.newcombe_int.0 + 0.0381).abs() < 5e-5,
            "{:?}",
            r.newcombe_int
        );
        assert!(
            (r.newcombe_int.1 - 0.1926).abs() < 5e-5,
            "{:?}",
            r.newcombe_int
        );
    }

    #[test]
    fn wald_interval_clipped_like_r() {
        // p1 = 1, p2 = 0: Wald width 0 plus the Yates term; R clips to [-1, 1].
        let r = two_proportion_z([3, 0], [3, 3], &cfg(Alternative::TwoSided, true)).unwrap();
        assert_eq!(r.conf_int.1, 1.0);
        assert!(r.conf_int.0 < 1.0);
    }

    #[test]
    fn normal_tails_keep_precision() {
        // Values from scipy.special.erfc(z / sqrt 2) / 2 (= norm.sf).
        for (z, sf) in [
            (1.0, 0.15865525393145707),
            (2.4344894029071056, 0.007456408259181641),
            (8.0, 6.22096057427174e-16),
            (20.0, 2.7536241186061556e-89),
        ] {
            assert!(close(normal_sf(z), sf, 1e-13), "{z}: {:e}", normal_sf(z));
            assert!(close(normal_sf(-z), 1.0 - sf, 1e-15));
            assert!(close(normal_two_sided(-z), 2.0 * sf, 1e-13));
        }
        assert_eq!(normal_sf(0.0), 0.5);
        assert_eq!(normal_two_sided(0.0), 1.0);
    }

    #[test]
    fn fisher_degenerate_margins() {
        let r = fisher_exact([[0, 5], [0, 3]], Alternative::TwoSided).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert!(r.odds_ratio.is_nan());
        assert!(r.conditional_odds_ratio.unwrap().is_nan());
        let r = fisher_exact([[0, 0], [2, 3]], Alternative::Greater).unwrap();
        assert_eq!(r.p_value, 1.0);
    }

    #[test]
    fn fisher_zero_cells_and_support_ends() {
        let r = fisher_exact([[0, 5], [4, 1]], Alternative::Less).unwrap();
        assert_eq!(r.odds_ratio, 0.0);
        assert_eq!(r.conditional_odds_ratio, Some(0.0));
        let r = fisher_exact([[5, 0], [1, 4]], Alternative::Greater).unwrap();
        assert_eq!(r.odds_ratio, f64::INFINITY);
        assert_eq!(r.conditional_odds_ratio, Some(f64::INFINITY));
        // P(X >= 5) with N = 10, K = 6, n = 5: C(6,5) C(4,0) / C(10,5) = 6/252.
        assert!(close(r.p_value, 6.0 / 252.0, 1e-13));
    }

    #[test]
    fn fisher_symmetric_ties_are_counted() {
        // Symmetric margins: tables 1 and 3 are equally likely and both
        // count; p = 1 - P(2) = 1 - 36/70.
        let r = fisher_exact([[1, 3], [3, 1]], Alternative::TwoSided).unwrap();
        assert!(close(r.p_value, 34.0 / 70.0, 1e-13), "{}", r.p_value);
        // Observed at the mode: every table counts, exactly 1.
        let r = fisher_exact([[2, 2], [2, 2]], Alternative::TwoSided).unwrap();
        assert_eq!(r.p_value, 1.0);
        assert!(close(r.conditional_odds_ratio.unwrap(), 1.0, 1e-12));
        // Large symmetric margins: tie across a long walk from the mode.
        let r = fisher_exact([[4000, 6000], [6000, 4000]], Alternative::TwoSided).unwrap();
        let g = fisher_exact([[6000, 4000], [4000, 6000]], Alternative::Greater).unwrap();
        assert!(
            close(r.p_value, 2.0 * g.p_value, 1e-9),
            "{} {}",
            r.p_value,
            g.p_value
        );
    }

    #[test]
    fn fisher_huge_margins_do_not_overflow() {
        // Prometheus-sized counters; the support exceeds the MLE limit.
        let r = fisher_exact(
            [[1400, 998_600], [12_950, 9_487_050]],
            Alternative::TwoSided,
        )
        .unwrap();
        assert!(r.p_value > 0.3 && r.p_value < 0.4, "{}", r.p_value);
        // 40-digit mpmath sums of the hypergeometric pmf: 0.17493018172760905
        // and 0.83225476654308552. scipy 1.17 (boost pmf) is off by 7e-10
        // here; the ratio walk from the mode keeps ~1e-15.
        let g = fisher_exact([[1400, 998_600], [12_950, 9_487_050]], Alternative::Greater).unwrap();
        assert!(
            close(g.p_value, 0.174_930_181_727_609_05, 1e-13),
            "{:e}",
            g.p_value
        );
        let l = fisher_exact([[1400, 998_600], [12_950, 9_487_050]], Alternative::Less).unwrap();
        assert!(
            close(l.p_value, 0.832_254_766_543_085_5, 1e-13),
            "{:e}",
            l.p_value
        );
        let big = fisher_exact(
            [[300_000, 700_000], [250_000, 750_000]],
            Alternative::Greater,
        )
        .unwrap();
        assert!(big.conditional_odds_ratio.is_none());
        assert!(big.p_value >= 0.0 && big.p_value < 1e-300);
        assert!(fisher_exact([[u64::MAX, 1], [0, 0]], Alternative::Less).is_err());
    }

    #[test]
    fn beta_binomial_symmetry_and_errors() {
        let p = beta_binomial_prob_greater([7, 3], [2100, 2000], 1.0, 1.0).unwrap();
        let q = beta_binomial_prob_greater([3, 7], [2000, 2100], 1.0, 1.0).unwrap();
        assert!(close(p + q, 1.0, 1e-12));
        // Identical arms: 1/2.
        let h = beta_binomial_prob_greater([4, 4], [50, 50], 1.0, 1.0).unwrap();
        assert!(close(h, 0.5, 1e-12), "{h}");
        assert!(beta_binomial_prob_greater([1, 1], [2, 3], 0.5, 0.5).is_err());
        assert!(beta_binomial_prob_greater([1, 1], [2, 3], 0.0, 1.0).is_err());
        assert!(beta_binomial_prob_greater([3, 1], [2, 3], 1.0, 1.0).is_err());
    }
}

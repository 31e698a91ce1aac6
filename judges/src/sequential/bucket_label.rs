//! Bucket-label e-process: an anytime-valid test that canary and baseline
//! requests fall into outcome buckets with the same probabilities, computed
//! from per-bucket counter increments only (docs/statistics/sequential.md).
//!
//! # Model
//!
//! Each request lands in one of K pre-declared buckets: K = 2 for
//! `[errors, non-errors]`, or the K latency-histogram buckets (per-bucket
//! differences of the cumulative `le` counters, not the cumulative counters
//! themselves). With random routing, given the bucket a request landed in,
//! its arm label is canary with some probability. The null hypothesis is
//!
//! ```text
//! H0: P(arm = canary | bucket k) = rho  for every k, with rho unknown,
//! ```
//!
//! i.e. both arms have the same outcome distribution, whatever the split and
//! however the traffic volume swings over time (the time profile of the
//! traffic cancels in the conditional label distribution, as in Lindon and
//! Malek 2022).
//!
//! # Statistic
//!
//! With cumulative counts `c_k` (canary) and `b_k` (baseline), `C = sum c_k`,
//! `B = sum b_k`, `rho_hat = C / (C + B)` and `lnB` the log Beta function:
//!
//! ```text
//! log E_t = sum_k [ lnB(kappa rho0 + c_k, kappa (1 - rho0) + b_k) - lnB(kappa rho0, kappa (1 - rho0)) ]
//!           - [ C ln(rho_hat) + B ln(1 - rho_hat) ]          (0 ln 0 = 0)
//! ```
//!
//! The first line (`log_numerator`) is the marginal likelihood of the arm
//! labels under independent `Beta(kappa rho0, kappa (1 - rho0))` priors on each
//! bucket's canary share; the second (`log_sup_null`) is the null likelihood
//! at its maximum over the common share. Because that maximum is at least the
//! null likelihood at the true share, `E_t` is bounded by a test martingale and
//! Ville's inequality applies (universal-inference argument, Wasserman,
//! Ramdas and Balakrishnan 2020). Validity was checked by simulation in the
//! notes (0.5 % false alarms over 60 looks at alpha = 5 %) and is re-checked
//! by a seeded unit test below.
//!
//! # Parameters
//!
//! * `rho0`: the *expected* canary share (the rollout weight). A wrong value
//!   only costs power, never validity.
//! * `kappa`: prior concentration. Larger values target smaller deviations of
//!   the per-bucket share; the reference vectors use 200.
//! * `alpha`: level of the test (after any multiplicity split).
//! * `harmful`: optional per-bucket mask of the "bad" buckets (errors, slow
//!   latency buckets). See "Direction" below.
//!
//! Bucket boundaries must be fixed in advance; merging sparse buckets must be
//! pre-declared, never decided from the data.
//!
//! # Direction
//!
//! The e-process is two-sided: it grows with any difference. For an abort
//! decision only a *harmful* difference matters. With a mask, define for each
//! bucket with data the canary share `s_k = c_k / (c_k + b_k)` and
//!
//! ```text
//! harmful_excess_k  =  mask_k  and  c_k + b_k > 0  and  s_k > rho_hat
//! ```
//!
//! ("the canary is over-represented in a bad bucket relative to its overall
//! share"; for K = 2 `[errors, ok]` this is exactly "canary error rate above
//! baseline error rate"). A look *rejects* when the e-value reaches `1/alpha`
//! and at least one bucket has a harmful excess. Without a mask every bucket
//! counts as harmful and the test rejects on any difference (two-sided);
//! `harmful_excess` then lists the buckets where the canary is
//! over-represented. Requiring the harmful condition only removes rejections,
//! so the type-I error stays at most alpha. The anytime-valid p-value is the
//! two-sided one (the running minimum of `1/E`), so with a mask
//! `always_valid_p <= alpha` does not by itself imply `reject`.
//!
//! # Segments (rollout steps)
//!
//! A new rollout step changes the weight, so the share is no longer constant.
//! [`BucketLabelEProcess::restart`] starts a new, independent test (fresh
//! counts, p-value and reject flag). [`BucketLabelEProcess::next_segment`]
//! instead keeps the evidence: the log e-value at the last look of the
//! completed segment is carried and added to the log e-values of the new
//! segment (a product of e-values, each segment with its own supremum over
//! the null share); the running p-value and the latched reject flag continue.

use serde::{Deserialize, Serialize};

use super::{
    add_increments, check_alpha, check_counts, check_len, check_positive, checked_sum, ln_beta,
    p_from_max_log_e,
};
use crate::error::StatsError;

/// The parts of one evaluation of the bucket-label log e-value.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BucketLabelLogE {
    /// `sum_k [lnB(kappa rho0 + c_k, kappa (1 - rho0) + b_k) - lnB(kappa rho0, kappa (1 - rho0))]`.
    pub log_numerator: f64,
    /// `C ln(rho_hat) + B ln(1 - rho_hat)` with `0 ln 0 = 0`; 0 without data.
    pub log_sup_null: f64,
    /// `log_numerator - log_sup_null`.
    pub log_e: f64,
    /// `C / (C + B)`; `None` when both arms are empty.
    pub rho_hat: Option<f64>,
}

/// The bucket-label log e-value of cumulative per-bucket counts (see the
/// module documentation for the formula).
///
/// Counts are reals so callers can pass any non-negative totals; they should
/// be integers for the guarantee to hold. A bucket with zero total
/// contributes nothing; all-zero input gives `log_e = 0` (e-value 1).
///
/// Errors: different lengths or an empty slice; a negative, NaN or infinite
/// count; `rho0` outside (0, 1); `kappa` not finite and > 0.
pub fn bucket_label_log_e(
    canary: &[f64],
    baseline: &[f64],
    rho0: f64,
    kappa: f64,
) -> Result<BucketLabelLogE, StatsError> {
    check_rho0(rho0)?;
    check_positive("kappa", kappa)?;
    if canary.is_empty() {
        return Err(StatsError::EmptySample { sample: "canary" });
    }
    check_len("baseline", canary.len(), baseline.len())?;
    check_counts("canary", canary)?;
    check_counts("baseline", baseline)?;
    Ok(log_e_unchecked(canary, baseline, rho0, kappa))
}

/// The formula, for inputs already validated.
fn log_e_unchecked(canary: &[f64], baseline: &[f64], rho0: f64, kappa: f64) -> BucketLabelLogE {
    let prior_a = kappa * rho0;
    let prior_b = kappa * (1.0 - rho0);
    let prior = ln_beta(prior_a, prior_b);
    let mut log_numerator = 0.0;
    for (&c, &b) in canary.iter().zip(baseline) {
        // An empty bucket's posterior is its prior: the term is exactly 0, and
        // skipping it avoids adding rounding noise.
        if c > 0.0 || b > 0.0 {
            log_numerator += ln_beta(prior_a + c, prior_b + b) - prior;
        }
    }
    let total_c: f64 = canary.iter().sum();
    let total_b: f64 = baseline.iter().sum();
    let total = total_c + total_b;
    let (log_sup_null, rho_hat) = if total > 0.0 {
        (
            x_ln_share(total_c, total) + x_ln_share(total_b, total),
            Some(total_c / total),
        )
    } else {
        (0.0, None)
    };
    BucketLabelLogE {
        log_numerator,
        log_sup_null,
        log_e: log_numerator - log_sup_null,
        rho_hat,
    }
}

/// `x ln(x / total)`, with `0 ln 0 = 0`.
fn x_ln_share(x: f64, total: f64) -> f64 {
    if x > 0.0 {
        x * (x / total).ln()
    } else {
        0.0
    }
}

fn check_rho0(rho0: f64) -> Result<(), StatsError> {
    if rho0 > 0.0 && rho0 < 1.0 {
        Ok(())
    } else {
        Err(StatsError::InvalidParameter {
            name: "rho0",
            reason: format!(
                "the expected canary share must be strictly between 0 and 1, got {rho0}"
            ),
        })
    }
}

fn check_config(config: &BucketLabelConfig, num_buckets: usize) -> Result<(), StatsError> {
    check_rho0(config.rho0)?;
    check_positive("kappa", config.kappa)?;
    check_alpha(config.alpha)?;
    if num_buckets < 2 {
        // With one bucket the labels carry no information about outcomes.
        return Err(StatsError::InvalidParameter {
            name: "num_buckets",
            reason: format!("at least 2 buckets are needed, got {num_buckets}"),
        });
    }
    if let Some(mask) = &config.harmful {
        check_len("harmful", num_buckets, mask.len())?;
    }
    Ok(())
}

/// Configuration of a [`BucketLabelEProcess`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketLabelConfig {
    /// Expected canary share of the traffic in (0, 1) (the rollout weight).
    pub rho0: f64,
    /// Prior concentration, finite and > 0 (200 in the reference vectors).
    pub kappa: f64,
    /// Test level in (0, 1).
    pub alpha: f64,
    /// Which buckets are bad (errors, slow latency buckets); `None` makes the
    /// test two-sided (any difference rejects). Its length must equal the
    /// number of buckets.
    pub harmful: Option<Vec<bool>>,
}

/// One look of a [`BucketLabelEProcess`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketLabelLook {
    /// 0 for the first segment, incremented by each `next_segment`.
    pub segment: u32,
    /// Cumulative canary counts per bucket in the current segment.
    pub canary_counts: Vec<u64>,
    /// Cumulative baseline counts per bucket in the current segment.
    pub baseline_counts: Vec<u64>,
    /// Log marginal likelihood of the labels under the Beta mixture.
    pub log_numerator: f64,
    /// Log of the null likelihood at the pooled share.
    pub log_sup_null: f64,
    /// Log e-value of the current segment.
    pub log_e: f64,
    /// `exp(log_e)` (may overflow to infinity for overwhelming evidence).
    pub e_value: f64,
    /// Sum of the final log e-values of the completed segments (0 after
    /// `new` or `restart`).
    pub log_e_carried: f64,
    /// `log_e_carried + log_e`: the log e-value the decision uses.
    pub log_e_total: f64,
    /// `min(1, min over looks of exp(-log_e_total))`; never increases.
    pub always_valid_p: f64,
    /// Pooled canary share `C / (C + B)`; `None` without data.
    pub rho_hat: Option<f64>,
    /// `c_k / (c_k + b_k)`; `None` for a bucket with no requests yet.
    pub canary_share_by_bucket: Vec<Option<f64>>,
    /// Per bucket: harmful (by the mask, or every bucket without one), with
    /// data, and canary share above `rho_hat`. Explains a rejection.
    pub harmful_excess: Vec<bool>,
    /// `log_e_total >= ln(1/alpha)` at this look.
    pub crossed: bool,
    /// `crossed` and, when a mask is set, some `harmful_excess`.
    pub reject_now: bool,
    /// Latched: some look of this test (since `new` / `restart`) had
    /// `reject_now`. The anytime-valid decision.
    pub reject: bool,
}

/// The bucket-label e-process state: cumulative per-bucket counts of the
/// current segment, the evidence carried from completed segments and the
/// running p-value. Serializable so the daemon can persist and resume it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BucketLabelEProcess {
    config: BucketLabelConfig,
    canary: Vec<u64>,
    baseline: Vec<u64>,
    segment: u32,
    /// Final log e-values of completed segments, summed.
    log_e_carried: f64,
    /// Log e-value at the last look of the current segment (0 before any).
    last_log_e: f64,
    /// Running maximum of `log_e_total` (starts at 0: `E_0 = 1`).
    max_log_e_total: f64,
    rejected: bool,
}

impl BucketLabelEProcess {
    /// A fresh e-process over `num_buckets` buckets.
    ///
    /// Errors: `rho0` outside (0, 1), `kappa` not finite and > 0, `alpha`
    /// outside (0, 1), fewer than 2 buckets, or a `harmful` mask whose length
    /// is not `num_buckets`.
    pub fn new(config: BucketLabelConfig, num_buckets: usize) -> Result<Self, StatsError> {
        check_config(&config, num_buckets)?;
        Ok(Self {
            config,
            canary: vec![0; num_buckets],
            baseline: vec![0; num_buckets],
            segment: 0,
            log_e_carried: 0.0,
            last_log_e: 0.0,
            max_log_e_total: 0.0,
            rejected: false,
        })
    }

    /// The configuration in force (its `rho0` is the current segment's).
    pub fn config(&self) -> &BucketLabelConfig {
        &self.config
    }

    /// Number of buckets.
    pub fn num_buckets(&self) -> usize {
        self.canary.len()
    }

    /// Whether the test has rejected (latched).
    pub fn rejected(&self) -> bool {
        self.rejected
    }

    /// Adds one look's per-bucket increments (counter deltas since the previous
    /// look) and evaluates the e-process on the cumulative counts.
    ///
    /// An all-zero look is allowed: the statistic is unchanged (before any
    /// data, `e = 1` and `p = 1`).
    ///
    /// Errors (state unchanged): a slice whose length is not the number of
    /// buckets, or a cumulative count that would overflow `u64`.
    pub fn observe(
        &mut self,
        canary_increments: &[u64],
        baseline_increments: &[u64],
    ) -> Result<BucketLabelLook, StatsError> {
        // A state restored from storage bypassed `new`; re-check it so a
        // corrupted record is an error, not an index panic.
        check_config(&self.config, self.canary.len())?;
        check_len("baseline_counts", self.canary.len(), self.baseline.len())?;
        let k = self.num_buckets();
        check_len("canary_increments", k, canary_increments.len())?;
        check_len("baseline_increments", k, baseline_increments.len())?;
        // Both sums are checked before either is stored, so an overflow in the
        // baseline cannot leave the canary half-updated.
        let canary = checked_sum("canary_increments", &self.canary, canary_increments)?;
        add_increments(
            "baseline_increments",
            &mut self.baseline,
            baseline_increments,
        )?;
        self.canary = canary;
        Ok(self.evaluate())
    }

    /// Evaluates the current cumulative counts and updates the running state.
    fn evaluate(&mut self) -> BucketLabelLook {
        // u64 -> f64 is exact below 2^53 requests per bucket, far beyond any
        // rollout step.
        let c: Vec<f64> = self.canary.iter().map(|&v| v as f64).collect();
        let b: Vec<f64> = self.baseline.iter().map(|&v| v as f64).collect();
        let parts = log_e_unchecked(&c, &b, self.config.rho0, self.config.kappa);
        self.last_log_e = parts.log_e;
        let log_e_total = self.log_e_carried + parts.log_e;
        self.max_log_e_total = self.max_log_e_total.max(log_e_total);

        let canary_share_by_bucket: Vec<Option<f64>> = c
            .iter()
            .zip(&b)
            .map(|(&ck, &bk)| (ck + bk > 0.0).then(|| ck / (ck + bk)))
            .collect();
        let harmful_excess: Vec<bool> = canary_share_by_bucket
            .iter()
            .enumerate()
            .map(|(k, share)| {
                let harmful = self.config.harmful.as_ref().is_none_or(|mask| mask[k]);
                match (share, parts.rho_hat) {
                    (Some(s), Some(pooled)) => harmful && *s > pooled,
                    _ => false,
                }
            })
            .collect();
        let crossed = log_e_total >= (1.0 / self.config.alpha).ln();
        let direction_ok = self.config.harmful.is_none() || harmful_excess.iter().any(|&h| h);
        let reject_now = crossed && direction_ok;
        self.rejected |= reject_now;

        BucketLabelLook {
            segment: self.segment,
            canary_counts: self.canary.clone(),
            baseline_counts: self.baseline.clone(),
            log_numerator: parts.log_numerator,
            log_sup_null: parts.log_sup_null,
            log_e: parts.log_e,
            e_value: parts.log_e.exp(),
            log_e_carried: self.log_e_carried,
            log_e_total,
            always_valid_p: p_from_max_log_e(self.max_log_e_total),
            rho_hat: parts.rho_hat,
            canary_share_by_bucket,
            harmful_excess,
            crossed,
            reject_now,
            reject: self.rejected,
        }
    }

    /// Starts a new, independent test for a new rollout step with expected
    /// canary share `rho0`: counts, carried evidence, running p-value and the
    /// reject flag are all reset. Errors (state unchanged): `rho0` outside
    /// (0, 1).
    pub fn restart(&mut self, rho0: f64) -> Result<(), StatsError> {
        check_rho0(rho0)?;
        self.config.rho0 = rho0;
        self.canary.iter_mut().for_each(|v| *v = 0);
        self.baseline.iter_mut().for_each(|v| *v = 0);
        self.segment = 0;
        self.log_e_carried = 0.0;
        self.last_log_e = 0.0;
        self.max_log_e_total = 0.0;
        self.rejected = false;
        Ok(())
    }

    /// Closes the current segment and starts the next one with expected share
    /// `rho0`, keeping the evidence: the current segment's log e-value at its
    /// last look is added to the carried sum (product of e-values), and the
    /// running p-value and reject flag continue. Counts restart at zero.
    /// Errors (state unchanged): `rho0` outside (0, 1).
    pub fn next_segment(&mut self, rho0: f64) -> Result<(), StatsError> {
        check_rho0(rho0)?;
        self.config.rho0 = rho0;
        self.log_e_carried += self.last_log_e;
        self.last_log_e = 0.0;
        self.canary.iter_mut().for_each(|v| *v = 0);
        self.baseline.iter_mut().for_each(|v| *v = 0);
        self.segment += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(harmful: Option<Vec<bool>>) -> BucketLabelConfig {
        BucketLabelConfig {
            rho0: 0.05,
            kappa: 200.0,
            alpha: 0.05,
            harmful,
        }
    }

    #[test]
    fn all_zero_looks_keep_e_one_and_p_one() {
        let mut e = BucketLabelEProcess::new(config(None), 3).unwrap();
        for _ in 0..3 {
            let look = e.observe(&[0, 0, 0], &[0, 0, 0]).unwrap();
            assert_eq!(look.log_e, 0.0);
            assert_eq!(look.e_value, 1.0);
            assert_eq!(look.always_valid_p, 1.0);
            assert_eq!(look.rho_hat, None);
            assert_eq!(look.canary_share_by_bucket, vec![None; 3]);
            assert!(!look.reject);
        }
    }

    #[test]
    fn empty_bucket_contributes_nothing() {
        let with = bucket_label_log_e(&[3.0, 0.0, 50.0], &[40.0, 0.0, 900.0], 0.05, 200.0).unwrap();
        let without = bucket_label_log_e(&[3.0, 50.0], &[40.0, 900.0], 0.05, 200.0).unwrap();
        assert_eq!(with, without);
    }

    #[test]
    fn one_arm_empty() {
        // Only baseline traffic: rho_hat = 0, sup-null likelihood 1, e < 1.
        let r = bucket_label_log_e(&[0.0, 0.0], &[10.0, 90.0], 0.05, 200.0).unwrap();
        assert_eq!(r.rho_hat, Some(0.0));
        assert_eq!(r.log_sup_null, 0.0);
        assert!(r.log_e < 0.0);
    }

    #[test]
    fn proportional_counts_give_no_evidence() {
        // Shares equal in every bucket: the Beta mixture cannot beat the
        // per-bucket maximum, which here equals the pooled maximum.
        let r = bucket_label_log_e(&[5.0, 95.0], &[95.0, 1805.0], 0.05, 200.0).unwrap();
        assert!(r.log_e < 0.0, "{r:?}");
    }

    #[test]
    fn invalid_parameters() {
        let bad = |rho0, kappa| bucket_label_log_e(&[1.0, 2.0], &[3.0, 4.0], rho0, kappa);
        assert!(bad(0.0, 200.0).is_err());
        assert!(bad(1.0, 200.0).is_err());
        assert!(bad(f64::NAN, 200.0).is_err());
        assert!(bad(0.05, 0.0).is_err());
        assert!(bad(0.05, -1.0).is_err());
        assert!(bad(0.05, f64::INFINITY).is_err());
        assert!(bucket_label_log_e(&[1.0, f64::NAN], &[3.0, 4.0], 0.05, 200.0).is_err());
        assert!(bucket_label_log_e(&[1.0, -1.0], &[3.0, 4.0], 0.05, 200.0).is_err());
        assert!(bucket_label_log_e(&[1.0], &[3.0, 4.0], 0.05, 200.0).is_err());
        assert!(bucket_label_log_e(&[], &[], 0.05, 200.0).is_err());

        assert!(BucketLabelEProcess::new(config(None), 1).is_err());
        assert!(BucketLabelEProcess::new(config(Some(vec![true])), 2).is_err());
        let mut c = config(None);
        c.alpha = 1.0;
        assert!(BucketLabelEProcess::new(c, 2).is_err());
        let mut c = config(None);
        c.kappa = f64::NAN;
        assert!(BucketLabelEProcess::new(c, 2).is_err());
    }

    #[test]
    fn wrong_length_and_overflow_leave_state_untouched() {
        let mut e = BucketLabelEProcess::new(config(None), 2).unwrap();
        e.observe(&[1, 2], &[3, 4]).unwrap();
        let before = e.clone();
        assert!(e.observe(&[1, 2, 3], &[1, 2]).is_err());
        assert!(e.observe(&[1, 2], &[1]).is_err());
        assert!(e.observe(&[u64::MAX, 0], &[0, 0]).is_err());
        assert!(e.observe(&[0, 0], &[0, u64::MAX]).is_err());
        assert_eq!(e, before);
        assert!(e.restart(1.5).is_err());
        assert!(e.next_segment(0.0).is_err());
        assert_eq!(e, before);
    }

    /// The K = 2 regression vector's last look, fed as increments in one go.
    fn regression_process(harmful: Option<Vec<bool>>) -> BucketLabelLook {
        let mut e = BucketLabelEProcess::new(config(harmful), 2).unwrap();
        e.observe(&[36, 14964], &[199, 284801]).unwrap()
    }

    #[test]
    fn harmful_mask_filters_direction() {
        // Canary has the excess errors (bucket 0).
        let look = regression_process(Some(vec![true, false]));
        assert!(look.crossed && look.reject);
        assert_eq!(look.harmful_excess, vec![true, false]);
        // Declaring only the ok bucket harmful: the same evidence is in the
        // beneficial direction and must not abort.
        let look = regression_process(Some(vec![false, true]));
        assert!(look.crossed);
        assert!(!look.reject_now && !look.reject);
        assert!(look.always_valid_p < 0.05);
        assert_eq!(look.harmful_excess, vec![false, false]);
        // Two-sided: every bucket is harmful; the canary is over-represented
        // in the error bucket only.
        let look = regression_process(None);
        assert!(look.reject);
        assert_eq!(look.harmful_excess, vec![true, false]);
    }

    #[test]
    fn reject_is_latched_and_p_never_increases() {
        let mut e = BucketLabelEProcess::new(config(None), 2).unwrap();
        let first = e.observe(&[36, 14964], &[199, 284801]).unwrap();
        assert!(first.reject_now && first.reject);
        // A long stretch of equal error rates dilutes the evidence below the
        // threshold; the decision and p stay.
        let mut last = first.clone();
        for _ in 0..40 {
            last = e.observe(&[2, 2998], &[40, 56960]).unwrap();
            assert!(last.always_valid_p <= first.always_valid_p);
            assert!(last.reject);
        }
        assert!(!last.crossed, "evidence should have decayed: {last:?}");
        assert!(e.rejected());
    }

    #[test]
    fn restart_and_segments() {
        let mut e = BucketLabelEProcess::new(config(None), 2).unwrap();
        let a = e.observe(&[36, 14964], &[199, 284801]).unwrap();
        e.next_segment(0.25).unwrap();
        assert_eq!(e.config().rho0, 0.25);
        // Empty look in the new segment: the total is the carried evidence.
        let b = e.observe(&[0, 0], &[0, 0]).unwrap();
        assert_eq!(b.segment, 1);
        assert_eq!(b.log_e, 0.0);
        assert_eq!(b.log_e_carried, a.log_e);
        assert_eq!(b.log_e_total, a.log_e);
        assert_eq!(b.always_valid_p, a.always_valid_p);
        assert!(b.reject);
        // Log e-values add across segments.
        let c = e.observe(&[30, 970], &[90, 2910]).unwrap();
        assert_eq!(c.log_e_total, a.log_e + c.log_e);

        e.restart(0.5).unwrap();
        let d = e.observe(&[0, 0], &[0, 0]).unwrap();
        assert_eq!(d.segment, 0);
        assert_eq!(d.log_e_total, 0.0);
        assert_eq!(d.always_valid_p, 1.0);
        assert!(!d.reject);
    }

    #[test]
    fn state_round_trips_through_serde() {
        let mut e = BucketLabelEProcess::new(config(Some(vec![true, false])), 2).unwrap();
        e.observe(&[3, 2997], &[40, 56960]).unwrap();
        let json = serde_json::to_string(&e).unwrap();
        let mut back: BucketLabelEProcess = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
        assert_eq!(
            back.observe(&[6, 2994], &[40, 56960]).unwrap(),
            e.observe(&[6, 2994], &[40, 56960]).unwrap()
        );
        // A corrupted record (mask shorter than the buckets) is an error.
        let broken = json.replace("[true,false]", "[true]");
        assert_ne!(broken, json);
        let mut broken: BucketLabelEProcess = serde_json::from_str(&broken).unwrap();
        assert!(broken.observe(&[1, 1], &[1, 1]).is_err());
    }

    // ---- seeded simulation: level and power -------------------------------

    /// The project's seeded generator with the binomial sampler the
    /// simulation needs.
    struct SplitMix64(crate::splitmix64::SplitMix64);

    impl SplitMix64 {
        fn uniform(&mut self) -> f64 {
            self.0.next_f64()
        }

        /// Binomial(n, p) by inversion of the CDF with the pmf recurrence
        /// `P(k+1) = P(k) (n-k)/(k+1) p/(1-p)`. Fine for the small means used
        /// here (n p of a few hundred at most, so `(1-p)^n` does not underflow).
        fn binomial(&mut self, n: u64, p: f64) -> u64 {
            let q = 1.0 - p;
            let mut pmf = (n as f64 * q.ln()).exp();
            assert!(pmf > 0.0, "binomial sampler used outside its range");
            let mut cdf = pmf;
            let u = self.uniform();
            let mut k = 0;
            while u > cdf && k < n {
                pmf *= (n - k) as f64 / (k + 1) as f64 * (p / q);
                k += 1;
                cdf += pmf;
            }
            k
        }
    }

    /// Fraction of `runs` runs of `looks` looks (2 000 requests each, routed to
    /// the canary with probability 0.05) in which the K = 2 e-process rejects.
    fn rejection_rate(seed: u64, error_canary: f64, error_baseline: f64) -> f64 {
        let (runs, looks, requests) = (200, 60, 2000);
        let mut rng = SplitMix64(crate::splitmix64::SplitMix64::new(seed));
        let mut rejections = 0;
        for _ in 0..runs {
            let mut e =
                BucketLabelEProcess::new(config(Some(vec![true, false])), 2).expect("valid config");
            for _ in 0..looks {
                let n_c = rng.binomial(requests, 0.05);
                let n_b = requests - n_c;
                let err_c = rng.binomial(n_c, error_canary);
                let err_b = rng.binomial(n_b, error_baseline);
                let look = e
                    .observe(&[err_c, n_c - err_c], &[err_b, n_b - err_b])
                    .expect("valid increments");
                if look.reject {
                    rejections += 1;
                    break;
                }
            }
        }
        rejections as f64 / runs as f64
    }

    #[test]
    fn simulated_level_and_power() {
        // Identical arms (1 % errors): Ville bounds the rate by alpha = 5 %;
        // 10 % leaves room for sampling noise of 200 runs (sd ~1.5 %).
        let null = rejection_rate(20_240_601, 0.01, 0.01);
        assert!(null <= 0.10, "false rejection rate {null}");
        // Doubled canary error rate: detected in most runs.
        let power = rejection_rate(20_240_602, 0.02, 0.01);
        assert!(power >= 0.8, "power {power}");
    }
}

//! The sequential judge: an anytime-valid bucket-label e-process per metric,
//! whose state lives in the run and absorbs each look's new requests.
//!
//! Every look fetches the run's whole window, so the arms arrive as
//! cumulative counts; the increments since the previous look are what the
//! e-process absorbs. When the canary weight changes (a new rollout step),
//! the process starts a new segment with the new expected share, and the
//! evidence of finished segments carries over (statistics.md §5.6).

use super::fetch::ArmData;
use super::judge::{JudgeContext, MetricVerdict};
use crate::config::analysis::{Direction, Metric};
use serde::{Deserialize, Serialize};
use serde_json::json;
use verdict_judges::kayenta::classifier::Label;
use verdict_judges::sequential::{
    tuned_tau2, BucketLabelConfig, BucketLabelEProcess, MixtureConfig,
    ProportionDifferenceSequence, SampleRatioMismatch, SrmConfig,
};

/// Prior concentration of the per-bucket canary share (the reference value).
const KAPPA: f64 = 200.0;

/// Dirichlet concentration of the traffic-split check (the reference value).
const SRM_CONCENTRATION: f64 = 100.0;

/// One metric's sequential state within a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequentialState {
    process: BucketLabelEProcess,
    last_canary: Vec<u64>,
    last_baseline: Vec<u64>,
    rho0: f64,
    weight: Option<f64>,
    /// Traffic-split check against the configured weight, when one is known.
    srm: Option<SampleRatioMismatch>,
    /// Metrics with a `margin`: a confidence sequence on the difference of
    /// the tracked rate ([`tracked_buckets`]), so promotion needs
    /// non-inferiority shown, not merely no harm found (the e-process alone
    /// lets small regressions through: docs/statistics/simulation.md).
    non_inferiority: Option<ProportionDifferenceSequence>,
}

/// A confidence sequence on the canary − baseline rate difference, tuned to
/// be narrowest when both arms reach the minimum requests.
fn rate_sequence(rate: f64, requests: u64, alpha: f64) -> Option<ProportionDifferenceSequence> {
    let p = rate.clamp(0.001, 0.5);
    let v_target = 2.0 * p * (1.0 - p) / requests.max(30) as f64;
    ProportionDifferenceSequence::new(MixtureConfig {
        tau2: tuned_tau2(v_target, alpha).ok()?,
        alpha,
        theta0: 0.0,
        min_n_per_arm: 30,
    })
    .ok()
}

/// A split check for `weight` percent of traffic to the canary.
fn split_check(weight: Option<f64>, alpha: f64) -> Option<SampleRatioMismatch> {
    let w = weight? / 100.0;
    if !(w > 0.0 && w < 1.0) {
        return None;
    }
    SampleRatioMismatch::new(SrmConfig {
        theta0: vec![w, 1.0 - w],
        concentration: SRM_CONCENTRATION,
        alpha,
    })
    .ok()
}

/// Buckets of an arm: `[errors, rest]` for counters, per-`le` counts for histograms.
fn buckets(data: &ArmData) -> Option<Vec<u64>> {
    match data {
        ArmData::Counts { errors, total } => Some(vec![*errors, total - errors]),
        ArmData::Buckets { counts, .. } => Some(counts.clone()),
        ArmData::Points { .. } => None,
    }
}

/// The buckets whose share the non-inferiority sequence tracks: a
/// counter's errors, a histogram's slow buckets (`le > slow_above`).
fn tracked_buckets(metric: &Metric, data: &ArmData) -> Option<Vec<bool>> {
    match data {
        ArmData::Counts { .. } => Some(vec![true, false]),
        ArmData::Buckets { le, .. } => {
            let slow_above = metric.config.slow_above?;
            Some(le.iter().map(|&le| le > slow_above).collect())
        }
        ArmData::Points { .. } => None,
    }
}

/// What the tracked buckets are, in words.
fn tracked_name(data: &ArmData) -> &'static str {
    match data {
        ArmData::Buckets { .. } => "slow-request",
        _ => "error",
    }
}

/// Requests in the tracked buckets.
fn tracked(mask: &[bool], counts: &[u64]) -> u64 {
    mask.iter()
        .zip(counts)
        .filter(|(m, _)| **m)
        .map(|(_, c)| c)
        .sum()
}

/// Which buckets are harmful when they gain canary share.
fn harmful_mask(metric: &Metric, data: &ArmData, n: usize) -> Option<Vec<bool>> {
    let direction = metric.config.direction;
    match data {
        ArmData::Counts { .. } => match direction {
            Direction::Increase => Some(vec![true, false]),
            Direction::Decrease => Some(vec![false, true]),
            Direction::Either => None,
        },
        ArmData::Buckets { le, .. } => {
            let slow_above = metric.config.slow_above?;
            let slow: Vec<bool> = le.iter().map(|&le| le > slow_above).collect();
            match direction {
                Direction::Increase => Some(slow),
                Direction::Decrease => Some(slow.into_iter().map(|s| !s).collect()),
                Direction::Either => None,
            }
            .filter(|m| m.len() == n)
        }
        ArmData::Points { .. } => None,
    }
}

/// Judges a counter or histogram metric sequentially, updating `state`.
pub fn judge_sequential(
    v: &mut MetricVerdict,
    metric: &Metric,
    ctx: &JudgeContext,
    canary: &ArmData,
    baseline: &ArmData,
    state: &mut Option<SequentialState>,
) {
    let cfg = &metric.config;
    let (Some(c), Some(b)) = (buckets(canary), buckets(baseline)) else {
        v.classification = Label::Error;
        v.reason = "the sequential judge needs counter or histogram data".into();
        return;
    };
    if c.len() != b.len() {
        v.classification = Label::Error;
        v.critical = cfg.critical;
        v.reason = format!(
            "canary has {} buckets, baseline {}: bucket boundaries must match",
            c.len(),
            b.len()
        );
        return;
    }
    // Equal counts are not enough: buckets pair by their bounds.
    if let (ArmData::Buckets { le: cl, .. }, ArmData::Buckets { le: bl, .. }) = (canary, baseline) {
        if cl != bl {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = format!(
                "canary buckets le={cl:?} do not pair with baseline buckets le={bl:?}: \
                 bucket boundaries must match"
            );
            return;
        }
    }
    let (ct, bt): (u64, u64) = (c.iter().sum(), b.iter().sum());
    v.enough_data = ct >= ctx.min_data.requests && bt >= ctx.min_data.requests;
    // The expected canary share: the weight when known, else the first
    // look's observed share. A wrong value costs power, never validity.
    let observed_share = ct as f64 / (ct + bt).max(1) as f64;
    let rho0_for = |weight: Option<f64>| -> f64 {
        weight
            .map(|w| w / 100.0)
            .unwrap_or(observed_share)
            .clamp(0.001, 0.999)
    };
    let fresh = |rho0: f64| {
        BucketLabelEProcess::new(
            BucketLabelConfig {
                rho0,
                kappa: KAPPA,
                alpha: ctx.alpha_per_metric,
                harmful: harmful_mask(metric, canary, c.len()),
            },
            c.len(),
        )
    };
    if state
        .as_ref()
        .is_some_and(|s| s.last_canary.len() != c.len())
    {
        *state = None; // the histogram's buckets changed: start over
    }
    // This look starts a segment: the run's first look with data, or a new weight.
    let starts_segment = state
        .as_ref()
        .is_none_or(|s| ctx.weight.is_some() && ctx.weight != s.weight);
    if state.is_none() {
        let rho0 = rho0_for(ctx.weight);
        match fresh(rho0) {
            Ok(process) => {
                *state = Some(SequentialState {
                    process,
                    last_canary: vec![0; c.len()],
                    last_baseline: vec![0; c.len()],
                    rho0,
                    weight: ctx.weight,
                    srm: split_check(ctx.weight, ctx.alpha_per_metric),
                    non_inferiority: tracked_buckets(metric, baseline)
                        .filter(|_| cfg.margin > 0.0)
                        .and_then(|mask| {
                            rate_sequence(
                                tracked(&mask, &b) as f64 / bt.max(1) as f64,
                                ctx.min_data.requests,
                                ctx.alpha_per_metric,
                            )
                        }),
                })
            }
            Err(e) => {
                v.classification = Label::Error;
                v.critical = cfg.critical;
                v.reason = format!("cannot start the sequential test: {e}");
                return;
            }
        }
    }
    let s = state.as_mut().expect("initialised above");
    if ctx.weight.is_some() && ctx.weight != s.weight {
        let rho0 = rho0_for(ctx.weight);
        if let Err(e) = s.process.next_segment(rho0) {
            v.classification = Label::Error;
            v.reason = format!("cannot start a new segment: {e}");
            return;
        }
        s.rho0 = rho0;
        s.weight = ctx.weight;
        s.srm = split_check(ctx.weight, ctx.alpha_per_metric);
    }
    let inc = |now: &[u64], last: &[u64]| -> Vec<u64> {
        now.iter()
            .zip(last)
            .map(|(n, l)| n.saturating_sub(*l))
            .collect()
    };
    let (ci, bi) = (inc(&c, &s.last_canary), inc(&b, &s.last_baseline));
    let look = match s.process.observe(&ci, &bi) {
        Ok(look) => look,
        Err(e) => {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = format!("sequential test failed: {e}");
            return;
        }
    };
    // A segment's first look cannot check the split: its increments reach
    // back before the weight took effect (the lookback at the run's first
    // look, the scrape lag behind every step), so they mix two splits.
    let split = s
        .srm
        .as_mut()
        .filter(|_| !starts_segment)
        .and_then(|srm| srm.observe(&[ci.iter().sum(), bi.iter().sum()]).ok());
    let interval = s.non_inferiority.as_mut().and_then(|seq| {
        let mask = tracked_buckets(metric, canary)?;
        let look = seq
            .observe(
                (tracked(&mask, &ci), ci.iter().sum()),
                (tracked(&mask, &bi), bi.iter().sum()),
            )
            .ok()?;
        look.outcome.estimate().map(|e| e.cs_running)
    });
    let shown = interval.map(|cs| match cfg.direction {
        Direction::Increase => cs.upper < cfg.margin,
        Direction::Decrease => cs.lower > -cfg.margin,
        Direction::Either => cs.upper < cfg.margin && cs.lower > -cfg.margin,
    });
    if s.non_inferiority.is_some() && shown != Some(true) {
        // Not yet shown to be within the margin: no promotion on this metric.
        v.enough_data = false;
    }
    s.last_canary = c
        .iter()
        .zip(&s.last_canary)
        .map(|(n, l)| (*n).max(*l))
        .collect();
    s.last_baseline = b
        .iter()
        .zip(&s.last_baseline)
        .map(|(n, l)| (*n).max(*l))
        .collect();
    if look.reject {
        v.classification = match cfg.direction {
            Direction::Decrease => Label::Low,
            _ => Label::High,
        };
        v.critical = cfg.critical;
        // A shown harm is conclusive however little data there is.
        v.enough_data = true;
        let worse: Vec<String> = look
            .harmful_excess
            .iter()
            .enumerate()
            .filter(|(_, h)| **h)
            .map(|(k, _)| {
                let share = look.canary_share_by_bucket[k].unwrap_or(f64::NAN);
                format!(
                    "bucket {} canary share {:.2}%",
                    bucket_name(canary, k),
                    100.0 * share
                )
            })
            .collect();
        v.reason = format!(
            "anytime-valid test rejects equal outcome distributions: e-value {:.1} ≥ 1/alpha = {:.0} \
             (p = {:.2e}); canary share overall {:.2}%, {}",
            look.e_value,
            1.0 / ctx.alpha_per_metric,
            look.always_valid_p,
            100.0 * look.rho_hat.unwrap_or(f64::NAN),
            worse.join(", ")
        );
    } else {
        v.classification = Label::Pass;
        if let (Some(cs), Some(shown)) = (interval, shown) {
            v.reason = format!(
                "no harm shown (e-value {:.2}); the {} rate difference is in [{:+.3}, {:+.3}] points \
                 (anytime-valid {:.1}% confidence sequence): {} the margin of {} points",
                look.e_value,
                tracked_name(canary),
                100.0 * cs.lower,
                100.0 * cs.upper,
                100.0 * (1.0 - ctx.alpha_per_metric),
                if shown { "within" } else { "not yet shown within" },
                100.0 * cfg.margin
            );
        }
    }
    // Nor can that look promote: the split at the new weight is unchecked
    // until the next look, whose increments all fall after the change. (A
    // promote on a step's first look would let a broken split through
    // whenever the weight moves every look.)
    if starts_segment && s.srm.is_some() && v.classification == Label::Pass {
        v.enough_data = false;
        let unchecked = format!(
            "the traffic split at weight {:.2}% is checked from the next look on (this look's \
             requests reach back before the weight changed)",
            s.weight.unwrap_or(f64::NAN)
        );
        v.reason = if v.reason.is_empty() {
            unchecked
        } else {
            format!("{}; {unchecked}", v.reason)
        };
    }
    // A broken traffic split (the canary gets far more or fewer requests than
    // its weight: crashing pods, a misrouted mesh) blocks promotion whatever
    // the outcome comparison says; a shown harm still aborts.
    if let Some(split) = split.as_ref().filter(|l| l.mismatch) {
        let observed = split
            .observed_share
            .as_ref()
            .map(|o| 100.0 * o[0])
            .unwrap_or(f64::NAN);
        let text = format!(
            "traffic split mismatch: the canary received {observed:.2}% of requests, \
             its weight is {:.2}% (anytime-valid p = {:.2e})",
            100.0 * split.expected_share[0],
            split.always_valid_p
        );
        if v.classification == Label::Pass {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = text;
        } else {
            v.reason = format!("{}; {text}", v.reason);
        }
    }
    v.statistics = json!({
        "non_inferiority": s.non_inferiority.as_ref().map(|_| json!({
            "margin": cfg.margin,
            "rate_difference_cs": interval.map(|cs| crate::json::interval(cs.lower, cs.upper)),
            "shown": shown.unwrap_or(false),
        })),
        "traffic_split": split.as_ref().map(|l| json!({
            "expected_canary_share": l.expected_share[0],
            "observed_canary_share": l.observed_share.as_ref().map(|o| o[0]),
            "always_valid_p": crate::json::number(l.always_valid_p),
            "mismatch": l.mismatch,
        })),
        "test": "bucket-label-e-process",
        "e_value": crate::json::number(look.e_value),
        "log_e_total": crate::json::number(look.log_e_total),
        "always_valid_p": crate::json::number(look.always_valid_p),
        "alpha": ctx.alpha_per_metric,
        "rho0": s.rho0,
        "segment": look.segment,
        "canary_share": look.rho_hat,
        "canary_share_by_bucket": look.canary_share_by_bucket,
        "harmful_excess": look.harmful_excess,
    });
}

fn bucket_name(data: &ArmData, k: usize) -> String {
    match data {
        ArmData::Counts { .. } => if k == 0 { "errors" } else { "ok" }.to_string(),
        ArmData::Buckets { le, .. } => format!("le={}", le[k]),
        ArmData::Points { .. } => k.to_string(),
    }
}

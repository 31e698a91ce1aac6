//! The sequential judge: an anytime-valid conditional odds-ratio e-process
//! per metric, whose state lives in the run and absorbs each look's new
//! requests (docs/statistics/sequential.md).
//!
//! Every look fetches the run's whole window, so the arms arrive as
//! cumulative counts; the increments since the previous look are what the
//! e-process absorbs, as one 2×2 table of bad/good × canary/baseline
//! requests. Conditioning each table on its margins makes the test valid
//! whatever share of traffic the canary had in that look: Flagger and Argo
//! never send the weight, and the weight changes at every step. A look in
//! which an arm had no traffic carries no evidence and starts nothing.
//!
//! "Bad" is a counter's errors, or a histogram's slow buckets (`le >
//! slow_above`; without `slow_above`, the buckets above the pooled median
//! of the first look with traffic, fixed from then on).
//!
//! When the weight is known (a weight passed in), the traffic split is
//! also checked against it, on increments that begin at least the
//! analysis's `step` after the new weight was first seen (before that the
//! data can still show the old split: scrape lag, the query step, a
//! controller that measures the moment it moved the weight). Until the
//! split has been checked at the current weight, the metric cannot promote.

use super::fetch::ArmData;
use super::judge::{JudgeContext, MetricVerdict};
use crate::config::analysis::{Direction, Metric};
use serde::{Deserialize, Serialize};
use serde_json::json;
use verdict_judges::kayenta::classifier::Label;
use verdict_judges::sequential::{
    tuned_tau2, MixtureConfig, OddsRatioConfig, OddsRatioEProcess, OddsRatioLook,
    ProportionDifferenceSequence, SampleRatioMismatch, Sidedness, SrmConfig, SrmLook,
};

/// Prior scale of the log odds ratio: most weight on odds ratios within
/// 1/3..3, which is where a regression worth stopping a rollout for sits.
const TAU: f64 = 1.0;

/// Dirichlet concentration of the traffic-split check (the reference value).
const SRM_CONCENTRATION: f64 = 100.0;

/// The sequential judges' state of a run, by metric name (`None` until the
/// metric's first look with data).
pub type SequentialStates = std::collections::BTreeMap<String, Option<SequentialState>>;

/// One metric's sequential state within a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SequentialState {
    /// The conditional test; `None` in a state an older version stored
    /// (its test was another), which starts a new one at the next look.
    #[serde(default)]
    odds: Option<OddsRatioEProcess>,
    /// Which buckets are bad, fixed at the first look with traffic.
    #[serde(default)]
    bad: Option<Vec<bool>>,
    last_canary: Vec<u64>,
    last_baseline: Vec<u64>,
    weight: Option<f64>,
    /// Traffic-split check against the weight, when one is known.
    srm: Option<SampleRatioMismatch>,
    /// When the current weight was first seen, the previous look's time,
    /// and whether the split has been checked at this weight.
    #[serde(default)]
    weight_seen_at: Option<f64>,
    #[serde(default)]
    last_look_at: Option<f64>,
    #[serde(default)]
    split_checked: bool,
    /// Metrics with a `margin`: a confidence sequence on the difference of
    /// the bad rate, so promotion needs non-inferiority shown, not merely
    /// no harm found (docs/statistics/simulation.md).
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
        ArmData::Counts { errors, total } => Some(vec![*errors, total.saturating_sub(*errors)]),
        ArmData::Buckets { counts, .. } => Some(counts.clone()),
        ArmData::Points { .. } => None,
    }
}

/// The bad buckets: a counter's errors; a histogram's buckets above
/// `slow_above`, or else above the median of `pooled` (canary + baseline
/// requests per bucket), which depends only on the table margins.
fn bad_buckets(metric: &Metric, data: &ArmData, pooled: &[u64]) -> Vec<bool> {
    match data {
        ArmData::Buckets { le, .. } => match metric.config.slow_above {
            Some(slow_above) => le.iter().map(|&le| le > slow_above).collect(),
            None => {
                let total: u64 = pooled.iter().sum();
                let mut below = 0u64;
                pooled
                    .iter()
                    .map(|&n| {
                        let bad = 2 * below >= total && total > 0;
                        below += n;
                        bad
                    })
                    .collect()
            }
        },
        _ => vec![true, false],
    }
}

/// What the bad buckets are, in words.
fn bad_name(data: &ArmData) -> &'static str {
    match data {
        ArmData::Buckets { .. } => "slow-request",
        _ => "error",
    }
}

/// Requests in the bad buckets, and in all.
fn bad_and_total(mask: &[bool], counts: &[u64]) -> (u64, u64) {
    let bad = mask
        .iter()
        .zip(counts)
        .filter(|(m, _)| **m)
        .map(|(_, c)| c)
        .sum();
    (bad, counts.iter().sum())
}

fn sidedness(direction: Direction) -> Sidedness {
    match direction {
        Direction::Increase => Sidedness::Greater,
        Direction::Decrease => Sidedness::Less,
        Direction::Either => Sidedness::TwoSided,
    }
}

/// An arm's cumulative count at bound `at`, when the data tells it exactly:
/// at one of its own bounds, or at a bound it lacks when no observation lies
/// between its neighbouring bounds (so the missing bucket held none, as when
/// a bucket series was never exported because it never incremented).
fn cumulative_at(le: &[f64], cumulative: &[u64], at: f64) -> Option<u64> {
    let next = le.partition_point(|&l| l < at);
    if le.get(next) == Some(&at) {
        return Some(cumulative[next]);
    }
    let below = if next == 0 { 0 } else { cumulative[next - 1] };
    (*cumulative.get(next)? == below).then_some(below)
}

/// Bounds, then the canary's and the baseline's counts on them.
type Aligned = (Vec<f64>, Vec<u64>, Vec<u64>);

/// Histogram arms on common bounds: every bound of either arm at which both
/// arms' cumulative counts are known exactly ([`cumulative_at`]). A bound one
/// arm lacks and cannot be filled (its observations around it are unknown:
/// another bucket layout) is dropped from both, merging its bucket into the
/// next one, which loses resolution and never moves an observation.
fn align_buckets(cl: &[f64], cc: &[u64], bl: &[f64], bc: &[u64]) -> Result<Aligned, String> {
    let running = |counts: &[u64]| -> Vec<u64> {
        counts
            .iter()
            .scan(0u64, |sum, &n| {
                *sum += n;
                Some(*sum)
            })
            .collect()
    };
    let (ccum, bcum) = (running(cc), running(bc));
    let mut bounds: Vec<f64> = cl.iter().chain(bl).copied().collect();
    bounds.sort_by(f64::total_cmp);
    bounds.dedup();
    let mut le = Vec::new();
    let (mut c, mut b) = (Vec::new(), Vec::new());
    let (mut c_below, mut b_below) = (0u64, 0u64);
    for at in bounds {
        if let (Some(x), Some(y)) = (cumulative_at(cl, &ccum, at), cumulative_at(bl, &bcum, at)) {
            le.push(at);
            c.push(x.saturating_sub(c_below));
            b.push(y.saturating_sub(b_below));
            (c_below, b_below) = (x, y);
        }
    }
    if le.len() < 2 || le.last() != Some(&f64::INFINITY) {
        return Err(format!(
            "canary buckets le={cl:?} do not pair with baseline buckets le={bl:?}: \
             the arms share no bound below +Inf"
        ));
    }
    Ok((le, c, b))
}

/// Both arms' buckets, paired: a counter's `[errors, rest]`, or a
/// histogram's buckets on the bounds both arms share ([`align_buckets`]),
/// with the canary's data on those bounds; the reason when they cannot be.
fn pair_buckets(
    canary: &ArmData,
    baseline: &ArmData,
) -> Result<(ArmData, Vec<u64>, Vec<u64>), String> {
    if let (ArmData::Buckets { le: cl, counts: cc }, ArmData::Buckets { le: bl, counts: bc }) =
        (canary, baseline)
    {
        let (le, c, b) = if cl == bl {
            (cl.clone(), cc.clone(), bc.clone())
        } else {
            align_buckets(cl, cc, bl, bc)?
        };
        let canary = ArmData::Buckets {
            le,
            counts: c.clone(),
        };
        return Ok((canary, c, b));
    }
    let (Some(c), Some(b)) = (buckets(canary), buckets(baseline)) else {
        return Err("the sequential judge needs counter or histogram data".into());
    };
    if c.len() != b.len() {
        return Err(format!(
            "canary has {} buckets, baseline {}: a counter and a histogram do not pair",
            c.len(),
            b.len()
        ));
    }
    Ok((canary.clone(), c, b))
}

impl SequentialState {
    /// A state for `n` buckets at the look's weight.
    fn new(metric: &Metric, ctx: &JudgeContext, n: usize, baseline_rate: f64) -> Self {
        let cfg = &metric.config;
        SequentialState {
            odds: None,
            bad: None,
            last_canary: vec![0; n],
            last_baseline: vec![0; n],
            weight: ctx.weight,
            srm: split_check(ctx.weight, ctx.alpha_per_metric),
            weight_seen_at: Some(ctx.now),
            last_look_at: None,
            split_checked: false,
            non_inferiority: (cfg.margin > 0.0)
                .then(|| rate_sequence(baseline_rate, ctx.min_data.requests, ctx.alpha_per_metric))
                .flatten(),
        }
    }

    /// The conditional test, created on first use.
    fn odds(&mut self, metric: &Metric, alpha: f64) -> Result<&mut OddsRatioEProcess, String> {
        if self.odds.is_none() {
            let config = OddsRatioConfig {
                alpha,
                tau: TAU,
                sidedness: sidedness(metric.config.direction),
            };
            self.odds = Some(
                OddsRatioEProcess::new(config)
                    .map_err(|e| format!("cannot start the sequential test: {e}"))?,
            );
        }
        Ok(self.odds.as_mut().expect("created above"))
    }

    /// Moves the remembered cumulative counts to this look's.
    fn remember(&mut self, c: &[u64], b: &[u64]) {
        let keep = |now: &[u64], last: &mut Vec<u64>| {
            *last = now
                .iter()
                .zip(last.iter())
                .map(|(n, l)| (*n).max(*l))
                .collect();
        };
        keep(c, &mut self.last_canary);
        keep(b, &mut self.last_baseline);
    }
}

/// Increments since the previous look (a counter reset is handled by the
/// source; a count that went down adds nothing).
fn increments(now: &[u64], last: &[u64]) -> Vec<u64> {
    now.iter()
        .zip(last)
        .map(|(n, l)| n.saturating_sub(*l))
        .collect()
}

/// What one look of the sequential judge found.
struct Findings {
    look: OddsRatioLook,
    split: Option<SrmLook>,
    interval: Option<verdict_judges::sequential::Interval>,
    shown: Option<bool>,
    /// A weight is known but the split has not been checked at it yet.
    split_pending: bool,
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
    let (canary, c, b) = match pair_buckets(canary, baseline) {
        Ok(pair) => pair,
        Err(reason) => {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = reason;
            return;
        }
    };
    let (ct, bt): (u64, u64) = (c.iter().sum(), b.iter().sum());
    v.enough_data = ct >= ctx.min_data.requests && bt >= ctx.min_data.requests;
    if state
        .as_ref()
        .is_some_and(|s| s.last_canary.len() != c.len())
    {
        *state = None; // the histogram's buckets changed: start over
    }
    let canary = &canary;
    let findings = match observe(metric, ctx, canary, &c, &b, state) {
        Ok(f) => f,
        Err(reason) => {
            v.classification = Label::Error;
            v.critical = cfg.critical;
            v.reason = reason;
            return;
        }
    };
    if findings.shown.is_some_and(|s| !s) || (findings.interval.is_none() && has_margin(state)) {
        // Not yet shown to be within the margin: no promotion on this metric.
        v.enough_data = false;
    }
    classify(v, metric, ctx, canary, &findings);
    explain_split(v, metric, state.as_ref(), &findings);
    v.statistics = statistics(metric, ctx, state.as_ref(), &findings);
}

fn has_margin(state: &Option<SequentialState>) -> bool {
    state.as_ref().is_some_and(|s| s.non_inferiority.is_some())
}

/// Feeds this look's increments to the state's tests.
fn observe(
    metric: &Metric,
    ctx: &JudgeContext,
    canary: &ArmData,
    c: &[u64],
    b: &[u64],
    state: &mut Option<SequentialState>,
) -> Result<Findings, String> {
    let cfg = &metric.config;
    let s = state.get_or_insert_with(|| {
        let mask = bad_buckets(metric, canary, b);
        let (bb, bt) = bad_and_total(&mask, b);
        SequentialState::new(metric, ctx, c.len(), bb as f64 / bt.max(1) as f64)
    });
    if ctx.weight.is_some() && ctx.weight != s.weight {
        s.weight = ctx.weight;
        s.srm = split_check(ctx.weight, ctx.alpha_per_metric);
        s.weight_seen_at = Some(ctx.now);
        s.split_checked = false;
    }
    // This look's increments begin at the previous look: clean of the old
    // split only if that was `settle` after the weight was first seen.
    let settled = match (s.last_look_at, s.weight_seen_at) {
        (Some(last), Some(seen)) => last >= seen + ctx.settle_seconds,
        _ => false,
    };
    let (ci, bi) = (
        increments(c, &s.last_canary),
        increments(b, &s.last_baseline),
    );
    let both_arms = ci.iter().sum::<u64>() > 0 && bi.iter().sum::<u64>() > 0;
    if s.bad.is_none() && both_arms {
        let pooled: Vec<u64> = ci.iter().zip(&bi).map(|(x, y)| x + y).collect();
        s.bad = Some(bad_buckets(metric, canary, &pooled));
    }
    let mask = s
        .bad
        .clone()
        .unwrap_or_else(|| bad_buckets(metric, canary, &[]));
    let (canary_inc, baseline_inc) = (bad_and_total(&mask, &ci), bad_and_total(&mask, &bi));
    let look = s
        .odds(metric, ctx.alpha_per_metric)?
        .observe(canary_inc, baseline_inc)
        .map_err(|e| format!("sequential test failed: {e}"))?;
    let split = s
        .srm
        .as_mut()
        .filter(|_| settled)
        .and_then(|srm| srm.observe(&[canary_inc.1, baseline_inc.1]).ok());
    s.split_checked |= split.is_some();
    let interval = s.non_inferiority.as_mut().and_then(|seq| {
        let look = seq.observe(canary_inc, baseline_inc).ok()?;
        look.outcome.estimate().map(|e| e.cs_running)
    });
    let shown = interval.map(|cs| match cfg.direction {
        Direction::Increase => cs.upper < cfg.margin,
        Direction::Decrease => cs.lower > -cfg.margin,
        Direction::Either => cs.upper < cfg.margin && cs.lower > -cfg.margin,
    });
    s.remember(c, b);
    s.last_look_at = Some(ctx.now);
    Ok(Findings {
        look,
        split,
        interval,
        shown,
        split_pending: s.srm.is_some() && !s.split_checked,
    })
}

/// The label and reason from the test's look.
fn classify(
    v: &mut MetricVerdict,
    metric: &Metric,
    ctx: &JudgeContext,
    canary: &ArmData,
    f: &Findings,
) {
    let cfg = &metric.config;
    let look = &f.look;
    let rate = |bad: u64, total: u64| 100.0 * bad as f64 / total.max(1) as f64;
    let rates = format!(
        "{} rate canary {:.2}% ({} of {}), baseline {:.2}% ({} of {})",
        bad_name(canary),
        rate(look.canary_bad, look.canary_total),
        look.canary_bad,
        look.canary_total,
        rate(look.baseline_bad, look.baseline_total),
        look.baseline_bad,
        look.baseline_total
    );
    if look.reject {
        let worse = look.log_odds_ratio > 0.0;
        v.classification = match (cfg.direction, worse) {
            (Direction::Decrease, _) => Label::Low,
            (Direction::Either, false) => Label::Low,
            _ => Label::High,
        };
        v.critical = cfg.critical;
        // A shown harm is conclusive however little data there is.
        v.enough_data = true;
        v.reason = format!(
            "anytime-valid test shows the canary's {} odds {:.2}x the baseline's: e-value {:.3e} \
             ≥ 1/alpha = {:.0} (p = {:.2e}); {rates}",
            bad_name(canary),
            look.log_odds_ratio.exp(),
            look.e_value,
            1.0 / ctx.alpha_per_metric,
            look.always_valid_p,
        );
        return;
    }
    v.classification = Label::Pass;
    v.reason =
        match (f.interval, f.shown) {
            (Some(cs), Some(shown)) => format!(
            "no harm shown (e-value {:.2}); the {} rate difference is in [{:+.3}, {:+.3}] points \
             (anytime-valid {:.1}% confidence sequence): {} the margin of {} points",
            look.e_value,
            bad_name(canary),
            100.0 * cs.lower,
            100.0 * cs.upper,
            100.0 * (1.0 - ctx.alpha_per_metric),
            if shown { "within" } else { "not yet shown within" },
            100.0 * cfg.margin
        ),
            _ if look.informative_looks == 0 => format!(
                "no evidence yet: no look has had traffic on both arms with both outcomes; {rates}"
            ),
            _ => String::new(),
        };
}

/// The traffic split's part of the verdict: unchecked at a new weight, and
/// a mismatch blocks promotion (a shown harm still aborts).
fn explain_split(
    v: &mut MetricVerdict,
    metric: &Metric,
    state: Option<&SequentialState>,
    f: &Findings,
) {
    let Some(s) = state else { return };
    let append = |v: &mut MetricVerdict, text: String| {
        v.reason = if v.reason.is_empty() {
            text
        } else {
            format!("{}; {text}", v.reason)
        };
    };
    // No promote before the split at the current weight has been checked:
    // a promote at a step's first looks would let a broken split through
    // whenever the weight moves every look.
    if f.split_pending && v.classification == Label::Pass {
        v.enough_data = false;
        append(
            v,
            format!(
                "the traffic split at weight {:.2}% is checked once a look's requests all \
                 fall after the weight changed",
                s.weight.unwrap_or(f64::NAN)
            ),
        );
    }
    // A broken traffic split (crashing pods, a misrouted mesh) blocks
    // promotion whatever the outcome comparison says.
    if let Some(split) = f.split.as_ref().filter(|l| l.mismatch) {
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
            v.critical = metric.config.critical;
            v.reason = text;
        } else {
            append(v, text);
        }
    }
}

/// The numbers behind the verdict, as stored and served.
fn statistics(
    metric: &Metric,
    ctx: &JudgeContext,
    state: Option<&SequentialState>,
    f: &Findings,
) -> serde_json::Value {
    let n = crate::json::number;
    let look = &f.look;
    json!({
        "test": "conditional-odds-ratio-e-process",
        "e_value": n(look.e_value),
        "log_e": n(look.log_e),
        "always_valid_p": n(look.always_valid_p),
        "alpha": ctx.alpha_per_metric,
        "odds_ratio": n(look.log_odds_ratio.exp()),
        "informative_looks": look.informative_looks,
        "canary": {"bad": look.canary_bad, "total": look.canary_total},
        "baseline": {"bad": look.baseline_bad, "total": look.baseline_total},
        "bad_buckets": state.and_then(|s| s.bad.clone()),
        "weight": state.and_then(|s| s.weight),
        "non_inferiority": state.and_then(|s| s.non_inferiority.as_ref()).map(|_| json!({
            "margin": metric.config.margin,
            "rate_difference_cs": f.interval.map(|cs| crate::json::interval(cs.lower, cs.upper)),
            "shown": f.shown.unwrap_or(false),
        })),
        "traffic_split": f.split.as_ref().map(|l| json!({
            "expected_canary_share": l.expected_share[0],
            "observed_canary_share": l.observed_share.as_ref().map(|o| n(o[0])),
            "always_valid_p": n(l.always_valid_p),
            "mismatch": l.mismatch,
        })),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const INF: f64 = f64::INFINITY;

    #[test]
    fn a_bucket_one_arm_never_exported_is_filled_when_the_data_says_it_held_none() {
        // The canary lacks le=0.005 and has nothing at or below 0.1: the
        // missing bucket held none, so it is a zero-count bucket.
        let (le, c, b) =
            align_buckets(&[0.1, INF], &[0, 5], &[0.005, 0.1, INF], &[2, 3, 4]).unwrap();
        assert_eq!(le, vec![0.005, 0.1, INF]);
        assert_eq!((c, b), (vec![0, 0, 5], vec![2, 3, 4]));
        // Between two bounds with nothing in between: also exact.
        let (le, c, _) = align_buckets(
            &[0.1, 1.0, INF],
            &[4, 0, 6],
            &[0.1, 0.5, 1.0, INF],
            &[1, 1, 1, 1],
        )
        .unwrap();
        assert_eq!(le, vec![0.1, 0.5, 1.0, INF]);
        assert_eq!(c, vec![4, 0, 0, 6]);
    }

    #[test]
    fn a_bound_that_cannot_be_filled_is_merged_in_both_arms() {
        // The canary has observations at or below 0.1, so where they sit
        // relative to 0.005 is unknown: 0.005 is dropped from both arms.
        let (le, c, b) =
            align_buckets(&[0.1, INF], &[2, 1], &[0.005, 0.1, INF], &[2, 3, 4]).unwrap();
        assert_eq!(le, vec![0.1, INF]);
        assert_eq!((c, b), (vec![2, 1], vec![5, 4]));
        // Other layouts: only the shared bounds remain.
        let (le, c, b) =
            align_buckets(&[0.1, 0.25, INF], &[1, 2, 3], &[0.1, 0.5, INF], &[4, 5, 6]).unwrap();
        assert_eq!(le, vec![0.1, INF]);
        assert_eq!((c, b), (vec![1, 5], vec![4, 11]));
        // Nothing shared below +Inf: no distribution to compare.
        let e = align_buckets(&[0.2, INF], &[1, 2], &[0.5, INF], &[3, 4]).unwrap_err();
        assert!(e.contains("do not pair"), "{e}");
    }

    #[test]
    fn pairing_gives_the_canary_on_the_common_bounds() {
        let canary = ArmData::Buckets {
            le: vec![0.1, INF],
            counts: vec![0, 5],
        };
        let baseline = ArmData::Buckets {
            le: vec![0.005, 0.1, INF],
            counts: vec![2, 3, 4],
        };
        let (aligned, c, b) = pair_buckets(&canary, &baseline).unwrap();
        assert_eq!(
            aligned,
            ArmData::Buckets {
                le: vec![0.005, 0.1, INF],
                counts: vec![0, 0, 5]
            }
        );
        assert_eq!((c, b), (vec![0, 0, 5], vec![2, 3, 4]));
    }
}

//! Kayenta's canary score: per-group pass percentages, weighted and summed,
//! with the critical-metric and too-much-missing-data overrides, then the
//! pass/marginal threshold classification.
//!
//! Order of rules (Kayenta `ScoringHelper`, `WeightedSumScorer`,
//! `ThresholdScoreClassifier`):
//! 1. muted results are dropped (they stay in the per-metric output, which
//!    is the caller's business);
//! 2. group score = `100 · #Pass / (#Pass + #High + #Low + #NodataFailMetric)`
//!    for every group a result lists (Nodata and Error are not counted); a
//!    group with an empty denominator is `no_data` with score 0;
//! 3. any critical result that is not Pass → summary 0, reason
//!    `"Canary Failed: <its reason>"`;
//! 4. else `#Nodata / #results ≥ 50%` → summary 0;
//! 5. else the weighted sum: configured weights as given (never normalised:
//!    weights that do not add to 100 scale the score), groups without a
//!    configured weight share `100 − Σ configured` equally, a no-data group
//!    counts as 100; rounded half-up to 2 decimals;
//! 6. `score ≥ pass` → Pass, `score ≥ marginal` → Marginal, else Fail.
//!
//! One Verdict deviation flows in from the classifier: an `Error` result of a
//! critical metric arrives here with `critical = true` and so fails the canary
//! by rule 3 (Kayenta clears the flag, see `docs/statistics/kayenta.md`).

use crate::kayenta::classifier::Label;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the scorer needs of one metric result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoredMetric {
    pub name: String,
    pub label: Label,
    /// Whether this result fails the whole canary if it is not Pass.
    pub critical: bool,
    pub muted: bool,
    pub groups: Vec<String>,
    /// The classifier's reason, quoted when a critical result fails the canary.
    #[serde(default)]
    pub reason: Option<String>,
}

/// The request's `thresholds`: scores at or above `pass` pass, at or above
/// `marginal` are marginal, below fail (0-100 scale).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScoreThresholds {
    pub pass: f64,
    pub marginal: f64,
}

impl ScoreThresholds {
    /// Checks `0 <= marginal <= pass <= 100` (NaN fails).
    pub fn check(&self) -> Result<(), String> {
        let in_range = |x: f64| (0.0..=100.0).contains(&x);
        if in_range(self.pass) && in_range(self.marginal) && self.marginal <= self.pass {
            Ok(())
        } else {
            Err(format!(
                "need 0 <= marginal <= pass <= 100, got pass {} marginal {}",
                self.pass, self.marginal
            ))
        }
    }
}

/// Outcome of the threshold classification (Kayenta's strings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ScoreClassification {
    Pass,
    Marginal,
    Fail,
}

impl ScoreClassification {
    /// Applies the thresholds: `≥ pass` → Pass, `≥ marginal` → Marginal.
    pub fn of(score: f64, thresholds: ScoreThresholds) -> Self {
        if score >= thresholds.pass {
            ScoreClassification::Pass
        } else if score >= thresholds.marginal {
            ScoreClassification::Marginal
        } else {
            ScoreClassification::Fail
        }
    }
}

/// One group's score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroupScore {
    pub name: String,
    /// `100 · Pass / counted`, 0 when `no_data`.
    pub score: f64,
    /// No result of the group was Pass, High, Low or NodataFailMetric.
    pub no_data: bool,
}

/// The canary's summary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreResult {
    /// 0..=100, rounded half-up to 2 decimals.
    pub score: f64,
    pub classification: ScoreClassification,
    /// Why the score was forced to 0; empty otherwise (as Kayenta).
    pub reason: String,
    /// In order of first appearance among the (unmuted) results.
    pub group_scores: Vec<GroupScore>,
}

/// Scores classified metrics (see the module documentation).
pub fn score(
    results: &[ScoredMetric],
    group_weights: &BTreeMap<String, f64>,
    thresholds: ScoreThresholds,
) -> ScoreResult {
    let active: Vec<&ScoredMetric> = results.iter().filter(|r| !r.muted).collect();
    let group_scores = group_scores(&active);

    let summary_and_reason = if let Some(failed) =
        active.iter().find(|r| r.critical && r.label != Label::Pass)
    {
        let why = failed.reason.clone().unwrap_or_else(|| {
            format!(
                "The metric {} was classified as {} (Critical)",
                failed.name,
                failed.label.kayenta_name()
            )
        });
        (0.0, format!("Canary Failed: {why}"))
    } else if !active.is_empty()
        && active.iter().filter(|r| r.label == Label::Nodata).count() as f64 / active.len() as f64
            >= 0.5
    {
        (
            0.0,
            "Canary Failed: 50% or more metrics returned NODATA".to_string(),
        )
    } else {
        (weighted_sum(&group_scores, group_weights), String::new())
    };
    let (summary, reason) = summary_and_reason;
    ScoreResult {
        score: summary,
        classification: ScoreClassification::of(summary, thresholds),
        reason,
        group_scores,
    }
}

fn group_scores(active: &[&ScoredMetric]) -> Vec<GroupScore> {
    // (name, #pass, #counted) in first-appearance order.
    let mut tallies: Vec<(String, usize, usize)> = Vec::new();
    for r in active {
        for g in &r.groups {
            let idx = match tallies.iter().position(|(name, _, _)| name == g) {
                Some(i) => i,
                None => {
                    tallies.push((g.clone(), 0, 0));
                    tallies.len() - 1
                }
            };
            let t = &mut tallies[idx];
            match r.label {
                Label::Pass => {
                    t.1 += 1;
                    t.2 += 1;
                }
                Label::High | Label::Low | Label::NodataFailMetric => t.2 += 1,
                Label::Nodata | Label::Error => {}
            }
        }
    }
    tallies
        .into_iter()
        .map(|(name, pass, counted)| {
            if counted == 0 {
                GroupScore {
                    name,
                    score: 0.0,
                    no_data: true,
                }
            } else {
                GroupScore {
                    name,
                    // Kayenta's order of operations, `(pass / total) · 100`:
                    // 1 of 3 gives 33.33333333333333, not 100/3's …336.
                    score: (pass as f64 / counted as f64) * 100.0,
                    no_data: false,
                }
            }
        })
        .collect()
}

fn weighted_sum(groups: &[GroupScore], weights: &BTreeMap<String, f64>) -> f64 {
    let configured: f64 = weights.values().sum();
    let unweighted = groups
        .iter()
        .filter(|g| !weights.contains_key(&g.name))
        .count();
    let share = if unweighted > 0 {
        (100.0 - configured) / unweighted as f64
    } else {
        0.0
    };
    let sum: f64 = groups
        .iter()
        .map(|g| {
            let weight = weights.get(&g.name).copied().unwrap_or(share);
            let effective = if g.no_data { 100.0 } else { g.score };
            effective * (weight / 100.0)
        })
        .sum();
    round_half_up_2dp(sum)
}

/// Rounds half-up (away from zero) to 2 decimals on the shortest decimal
/// representation of `x`, as Java's `BigDecimal(Double.toString(x))
/// .setScale(2, HALF_UP)` does, so 0.125 → 0.13 and 33.335 → 33.34 even
/// though neither is exactly representable.
pub fn round_half_up_2dp(x: f64) -> f64 {
    if !x.is_finite() || x.abs() >= 1e15 {
        return x;
    }
    let text = format!("{}", x.abs());
    let (int_part, frac_part) = match text.split_once('.') {
        Some((i, f)) => (i, f),
        None => return x,
    };
    if frac_part.len() <= 2 {
        return x;
    }
    let kept = format!("{int_part}{}", &frac_part[..2]);
    let mut digits: u128 = kept.parse().expect("decimal digits");
    if frac_part.as_bytes()[2] >= b'5' {
        digits += 1;
    }
    let rounded = digits as f64 / 100.0;
    if x < 0.0 {
        -rounded
    } else {
        rounded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: ScoreThresholds = ScoreThresholds {
        pass: 95.0,
        marginal: 75.0,
    };

    fn m(label: Label, groups: &[&str]) -> ScoredMetric {
        ScoredMetric {
            name: "m".into(),
            label,
            critical: false,
            muted: false,
            groups: groups.iter().map(|g| g.to_string()).collect(),
            reason: None,
        }
    }

    #[test]
    fn rounding_is_half_up_on_the_decimal_text() {
        assert_eq!(round_half_up_2dp(33.333333333333336), 33.33);
        assert_eq!(round_half_up_2dp(0.125), 0.13);
        assert_eq!(round_half_up_2dp(66.666666), 66.67);
        assert_eq!(round_half_up_2dp(5.0), 5.0);
        assert_eq!(round_half_up_2dp(99.995), 100.0);
        assert_eq!(round_half_up_2dp(-0.125), -0.13);
    }

    #[test]
    fn all_muted_scores_zero_and_fails() {
        let mut a = m(Label::High, &["g"]);
        a.muted = true;
        a.critical = true;
        let r = score(&[a], &BTreeMap::new(), T);
        assert_eq!(r.score, 0.0);
        assert_eq!(r.classification, ScoreClassification::Fail);
        assert!(r.group_scores.is_empty());
        assert_eq!(r.reason, "");
    }

    #[test]
    fn muted_critical_metric_cannot_fail_the_canary() {
        let mut a = m(Label::High, &["g"]);
        a.muted = true;
        a.critical = true;
        let r = score(&[a, m(Label::Pass, &["g"])], &BTreeMap::new(), T);
        assert_eq!(r.score, 100.0);
        assert_eq!(r.classification, ScoreClassification::Pass);
    }

    #[test]
    fn weights_not_summing_to_100_are_used_as_given() {
        // Only 50 configured for the only group: 100 · 0.5 = 50.
        let w = BTreeMap::from([("g".to_string(), 50.0)]);
        let r = score(&[m(Label::Pass, &["g"])], &w, T);
        assert_eq!(r.score, 50.0);
        // 120 configured: scores above 100 are possible, as in Kayenta.
        let w = BTreeMap::from([("a".to_string(), 60.0), ("b".to_string(), 60.0)]);
        let r = score(&[m(Label::Pass, &["a"]), m(Label::Pass, &["b"])], &w, T);
        assert_eq!(r.score, 120.0);
        // A configured group and an unweighted one sharing the remainder.
        let w = BTreeMap::from([("a".to_string(), 70.0)]);
        let r = score(&[m(Label::High, &["a"]), m(Label::Pass, &["b"])], &w, T);
        assert_eq!(r.score, 30.0);
    }

    #[test]
    fn critical_failure_quotes_the_reason() {
        let mut a = m(Label::Error, &["g"]);
        a.critical = true;
        a.name = "errors".into();
        let r = score(&[a, m(Label::Pass, &["g"])], &BTreeMap::new(), T);
        assert_eq!(r.score, 0.0);
        assert_eq!(
            r.reason,
            "Canary Failed: The metric errors was classified as Error (Critical)"
        );
        // The group score is still reported (Error is not counted).
        assert_eq!(r.group_scores[0].score, 100.0);
    }

    #[test]
    fn half_nodata_forces_zero_and_nodata_groups_count_as_100() {
        let r = score(
            &[m(Label::Nodata, &["a"]), m(Label::Pass, &["b"])],
            &BTreeMap::new(),
            T,
        );
        assert_eq!(r.score, 0.0);
        assert!(r.reason.contains("NODATA"));
        let r = score(
            &[
                m(Label::Nodata, &["a"]),
                m(Label::Pass, &["b"]),
                m(Label::Pass, &["b"]),
            ],
            &BTreeMap::new(),
            T,
        );
        assert_eq!(r.score, 100.0);
        assert!(r.group_scores[0].no_data);
    }

    #[test]
    fn a_result_counts_in_every_listed_group() {
        let r = score(
            &[m(Label::High, &["a", "b"]), m(Label::Pass, &["b"])],
            &BTreeMap::new(),
            T,
        );
        assert_eq!(r.group_scores[0].score, 0.0);
        assert_eq!(r.group_scores[1].score, 50.0);
        assert_eq!(r.score, 25.0);
        assert_eq!(r.classification, ScoreClassification::Fail);
    }

    /// Group scores are reported unrounded, so the floating-point order of
    /// Kayenta's `WeightedSumScorer.calculateGroupScore` matters.
    #[test]
    fn group_scores_have_kayentas_last_digits() {
        let r = score(
            &[
                m(Label::Pass, &["g"]),
                m(Label::High, &["g"]),
                m(Label::Low, &["g"]),
            ],
            &BTreeMap::new(),
            T,
        );
        assert_eq!(r.group_scores[0].score, 33.33333333333333);
        assert_ne!(r.group_scores[0].score, 100.0 / 3.0);
        // Kayenta ScorerSuite "One Group, Three Metrics": 33.33.
        assert_eq!(r.score, 33.33);
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(ScoreClassification::of(95.0, T), ScoreClassification::Pass);
        assert_eq!(
            ScoreClassification::of(75.0, T),
            ScoreClassification::Marginal
        );
        assert_eq!(ScoreClassification::of(74.99, T), ScoreClassification::Fail);
    }
}

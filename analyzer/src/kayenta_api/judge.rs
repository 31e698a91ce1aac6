//! Kayenta's judge endpoints: the judges Verdict offers (`GET /judges`) and
//! a judgement of metric data sent by the caller (`POST /judges/judge`,
//! "without any orchestration or querying of metrics services").
//!
//! Kayenta's `POST /judges/judge` loads a metric-set-pair list stored by an
//! earlier execution (`metricSetPairListId`). Verdict stores no such lists:
//! the caller sends the list in the body, with the config by id or inline.
//! Each pair is classified by Kayenta's classifier
//! (`verdict_judges::kayenta::classifier`, with the config's per-metric
//! settings) and the results scored by Kayenta's scorer with the config's
//! group weights, as NetflixACAJudge does; Verdict's explanation of every
//! metric goes beside Kayenta's fields.
//!
//! What Kayenta would answer and Verdict refuses (422, with every reason),
//! as its executions do: a result with an unmuted metric that could not be
//! judged (Kayenta drops it from the score), and a score reaching `pass`
//! while an unmuted metric of the config has fewer points than Verdict's
//! minimum on a side, or no pair at all (Verdict never promotes on missing
//! data).

use super::execution::{kayenta_judge_result, JUDGE_NAME};
use super::model::{
    AnalysisResult, ArmMetadata, DirectJudgeExplanation, DirectJudgeResult, JudgeInfo,
    MetricExplanation, MetricSetPair,
};
use super::KayentaError;
use crate::config::analysis::MinData;
use crate::json::{number, parse_special};
use serde_json::{json, Value};
use verdict_judges::kayenta::classifier::{classify, Label, MetricClassification};
use verdict_judges::kayenta::config::{CanaryConfig, MetricConfig};
use verdict_judges::kayenta::preprocess::DescriptiveStats;
use verdict_judges::kayenta::scorer::{self, ScoreResult, ScoreThresholds, ScoredMetric};

/// `GET /judges`: the judges a canary config's `judge.name` may name.
pub fn judges() -> Vec<JudgeInfo> {
    vec![JudgeInfo {
        name: JUDGE_NAME.into(),
        visible: true,
    }]
}

/// Refuses a config naming a judge Verdict does not serve (Kayenta:
/// "Unable to resolve canary judge"); no name means the default judge.
pub fn check_judge_name(config: &CanaryConfig) -> Result<(), KayentaError> {
    match config.judge.as_ref().map(|j| j.name.as_str()) {
        None | Some("") => Ok(()),
        Some(name) if name == JUDGE_NAME => Ok(()),
        Some(name) => Err(KayentaError::Invalid(format!(
            "Unable to resolve canary judge {name:?}: Verdict serves {JUDGE_NAME}"
        ))),
    }
}

/// One side's values: numbers, with `null`, `"NaN"`, `"inf"`, `"-inf"`.
fn side(pair: &MetricSetPair, at: &str, key: &str) -> Result<Vec<f64>, KayentaError> {
    let values = pair.values.get(key).ok_or_else(|| {
        KayentaError::Invalid(format!(
            "{at}.values has no {key:?} (it needs \"control\" and \"experiment\")"
        ))
    })?;
    values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            match v {
                Value::Number(n) => n.as_f64().ok_or(()),
                Value::Null => Ok(f64::NAN),
                Value::String(s) => parse_special(s).ok_or(()),
                _ => Err(()),
            }
            .map_err(|()| {
                KayentaError::Invalid(format!("{at}.values.{key}[{i}]: {v} is not a number"))
            })
        })
        .collect()
}

fn stats(s: &DescriptiveStats) -> ArmMetadata {
    ArmMetadata {
        stats: json!({"count": s.count, "mean": number(s.mean), "min": number(s.min),
                      "max": number(s.max), "std": number(s.std)}),
    }
}

/// `POST /judges/judge`: judges `pairs` with `config` (see the module
/// documentation).
pub fn judge_pairs(
    config: &CanaryConfig,
    pairs: &[MetricSetPair],
    thresholds: ScoreThresholds,
) -> Result<DirectJudgeResult, KayentaError> {
    check_judge_name(config)?;
    thresholds.check().map_err(KayentaError::Invalid)?;
    if pairs.is_empty() {
        return Err(KayentaError::Invalid(
            "metricSetPairList is empty: there is nothing to judge".into(),
        ));
    }
    let min_points = MinData::default().points;
    let mut sides = Vec::new();
    for (i, pair) in pairs.iter().enumerate() {
        let at = format!("metricSetPairList[{i}]");
        let name = pair
            .name
            .as_deref()
            .ok_or_else(|| KayentaError::Invalid(format!("{at}.name is required")))?;
        let metric = config
            .metrics
            .iter()
            .find(|m| m.name == name)
            .ok_or_else(|| {
                KayentaError::Invalid(format!(
                    "{at}: Could not find metric config for {name:?} in the canary config"
                ))
            })?;
        sides.push((
            metric,
            side(pair, &at, "control")?,
            side(pair, &at, "experiment")?,
        ));
    }
    let (classified, summary) = classify_and_score(config, sides, thresholds);
    let mut results = Vec::new();
    let mut explanations = Vec::new();
    for (pair, m) in pairs.iter().zip(&classified) {
        let c = &m.result;
        results.push(AnalysisResult {
            name: m.metric.name.clone(),
            id: pair.id.clone(),
            tags: pair.tags.clone(),
            classification: c.label.kayenta_name().to_string(),
            classification_reason: c.reason.clone(),
            groups: m.metric.groups.clone(),
            experiment_metadata: Some(stats(&c.experiment)),
            control_metadata: Some(stats(&c.control)),
            // Kayenta's ratio is NaN where a mean is zero (its UI shows "N/A").
            result_metadata: Some(json!({"ratio": number(c.mean_ratio.unwrap_or(f64::NAN))})),
            critical: c.critical,
            muted: m.muted,
        });
        explanations.push(MetricExplanation {
            name: m.metric.name.clone(),
            classification: c.label.verdict_name().to_string(),
            critical: c.critical,
            muted: m.muted,
            enough_data: m.enough_data(),
            reason: c.reason.clone().unwrap_or_default(),
            statistics: serde_json::to_value(c).unwrap_or(Value::Null),
        });
    }
    refuse_untrustworthy(config, &classified, summary.score, thresholds.pass)
        .map_err(KayentaError::CannotJudge)?;
    Ok(DirectJudgeResult {
        judge_result: kayenta_judge_result(results, summary),
        verdict: DirectJudgeExplanation {
            metrics: explanations,
            min_points,
        },
    })
}

/// One metric of a Kayenta judgement: its config, Kayenta's
/// classification of its points, and whether it is muted.
#[derive(Debug, Clone)]
pub struct ClassifiedMetric<'a> {
    pub metric: &'a MetricConfig,
    pub result: MetricClassification,
    pub muted: bool,
}

impl ClassifiedMetric<'_> {
    /// Whether both sides have Verdict's minimum of points.
    pub fn enough_data(&self) -> bool {
        let min = MinData::default().points;
        self.result.control.count >= min && self.result.experiment.count >= min
    }
}

/// Kayenta's NetflixACAJudge on points: each metric of `sides` (its config,
/// control and experiment values) classified with its settings, the
/// results scored with the config's group weights. The one place the two
/// are composed: `POST /judges/judge` and `verdict judge` with a Kayenta
/// config both call it, then [`refuse_untrustworthy`].
pub fn classify_and_score<'a>(
    config: &CanaryConfig,
    sides: impl IntoIterator<Item = (&'a MetricConfig, Vec<f64>, Vec<f64>)>,
    thresholds: ScoreThresholds,
) -> (Vec<ClassifiedMetric<'a>>, ScoreResult) {
    let classified: Vec<ClassifiedMetric> = sides
        .into_iter()
        .map(|(metric, control, experiment)| {
            let settings = metric.settings();
            ClassifiedMetric {
                metric,
                result: classify(&settings, &control, &experiment),
                muted: settings.muted,
            }
        })
        .collect();
    let scored: Vec<ScoredMetric> = classified
        .iter()
        .map(|m| ScoredMetric {
            name: m.metric.name.clone(),
            label: m.result.label,
            critical: m.result.critical,
            muted: m.muted,
            groups: m.metric.groups.clone(),
            reason: m.result.reason.clone(),
        })
        .collect();
    let summary = scorer::score(&scored, &config.classifier.group_weights, thresholds);
    (classified, summary)
}

/// What Kayenta would answer and Verdict refuses (the module
/// documentation), with every reason: an unmuted metric that could not be
/// judged; a score reaching `pass` while an unmuted metric has fewer than
/// Verdict's minimum points on a side, or no data at all.
pub fn refuse_untrustworthy(
    config: &CanaryConfig,
    metrics: &[ClassifiedMetric],
    score: f64,
    pass: f64,
) -> Result<(), String> {
    let failed: Vec<String> = metrics
        .iter()
        .filter(|m| !m.muted && m.result.label == Label::Error)
        .map(|m| {
            let reason = m.result.reason.clone().unwrap_or_default();
            format!("metric {:?} could not be judged: {reason}", m.metric.name)
        })
        .collect();
    if !failed.is_empty() {
        return Err(failed.join("; "));
    }
    if score < pass {
        return Ok(());
    }
    let mut thin: Vec<String> = metrics
        .iter()
        .filter(|m| !m.muted && !m.enough_data())
        .map(|m| {
            format!(
                "metric {:?} has {} control and {} experiment points, fewer than {} on a side",
                m.metric.name,
                m.result.control.count,
                m.result.experiment.count,
                MinData::default().points
            )
        })
        .collect();
    thin.extend(
        config
            .metrics
            .iter()
            .filter(|m| !m.settings().muted && !metrics.iter().any(|e| e.metric.name == m.name))
            .map(|m| format!("metric {:?} of the config has no metric set pair", m.name)),
    );
    if thin.is_empty() {
        return Ok(());
    }
    Err(format!(
        "score {score:.2} reaches pass {pass} but the data cannot support promoting; {}",
        thin.join("; ")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::model::DirectJudgeRequest;
    use super::*;

    fn config() -> CanaryConfig {
        CanaryConfig::from_json(
            &std::fs::read_to_string(format!(
                "{}/../fixtures/kayenta/podinfo-argo.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap()
    }

    fn pair(name: &str, control: Vec<f64>, experiment: Vec<f64>) -> MetricSetPair {
        serde_json::from_value(
            json!({"name": name, "values": {"control": control, "experiment": experiment}}),
        )
        .unwrap()
    }

    const T: ScoreThresholds = ScoreThresholds {
        pass: 90.0,
        marginal: 75.0,
    };

    fn steady(level: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| level * (1.0 + 0.01 * (i % 5) as f64))
            .collect()
    }

    #[test]
    fn equal_sides_pass_and_a_regressed_critical_metric_fails() {
        let c = config();
        let good = [
            pair("p99 latency", steady(0.2, 30), steady(0.2, 30)),
            pair("5xx ratio", steady(0.01, 30), steady(0.01, 30)),
        ];
        let r = judge_pairs(&c, &good, T).unwrap();
        assert_eq!(r.judge_result.score.score, 100.0);
        assert_eq!(r.judge_result.results[0].classification, "Pass");
        let bad = [
            pair("p99 latency", steady(0.2, 30), steady(0.2, 30)),
            pair("5xx ratio", steady(0.01, 30), steady(0.10, 30)),
        ];
        let r = judge_pairs(&c, &bad, T).unwrap();
        assert_eq!(r.judge_result.score.score, 0.0);
        assert_eq!(r.judge_result.results[1].classification, "High");
        assert!(!r.verdict.metrics[1].reason.is_empty());
    }

    #[test]
    fn a_passing_score_on_thin_or_missing_data_is_refused() {
        let c = config();
        let thin = [
            pair("p99 latency", steady(0.2, 3), steady(0.2, 3)),
            pair("5xx ratio", steady(0.01, 30), steady(0.01, 30)),
        ];
        let e = judge_pairs(&c, &thin, T).unwrap_err().to_string();
        assert!(e.contains("3 control and 3 experiment points"), "{e}");
        let missing = [pair("p99 latency", steady(0.2, 30), steady(0.2, 30))];
        // Weighted, the absent group scores 0: a Fail, not refused.
        assert_eq!(
            judge_pairs(&c, &missing, T)
                .unwrap()
                .judge_result
                .score
                .score,
            20.0
        );
        let mut unweighted = c.clone();
        unweighted.classifier.group_weights.clear();
        let e = judge_pairs(&unweighted, &missing, T)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"5xx ratio\" of the config has no metric set pair"),
            "{e}"
        );
    }

    #[test]
    fn malformed_pairs_are_refused_with_the_place() {
        let c = config();
        let e = judge_pairs(&c, &[pair("nope", vec![1.0], vec![1.0])], T).unwrap_err();
        assert!(
            e.to_string().contains("Could not find metric config"),
            "{e}"
        );
        let p: MetricSetPair = serde_json::from_value(
            json!({"name": "p99 latency", "values": {"control": [1, true]}}),
        )
        .unwrap();
        let e = judge_pairs(&c, &[p], T).unwrap_err().to_string();
        assert!(e.contains("metricSetPairList[0].values.control[1]"), "{e}");
        let mut other = c.clone();
        other.judge.get_or_insert_with(Default::default).name = "dredd-v1.0".into();
        assert!(judge_pairs(&other, &[], T)
            .unwrap_err()
            .to_string()
            .contains("dredd"));
        let nan: DirectJudgeRequest = serde_json::from_str(
            r#"[{"name": "p99 latency", "values": {"control": [1, "NaN", null], "experiment": [1]}}]"#,
        )
        .unwrap();
        assert_eq!(
            side(&nan.metric_set_pair_list[0], "x", "control").unwrap()[0],
            1.0
        );
    }
}

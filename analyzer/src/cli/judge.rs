//! `verdict judge`: score canary against baseline data, offline.
//!
//! `--config` is a Kayenta canary config (JSON, judged exactly as Kayenta's
//! NetflixACAJudge with Verdict's exact interval) or a Verdict analysis
//! config (YAML, judged by the same code the daemon runs). `--data` holds
//! each metric's points: `{"metrics":{"<name>":{"baseline":[..],"canary":[..]}}}`.
//! The output is one JSON object (documented in `docs/cli.md`); every
//! non-pass metric says why, in words and numbers.

use crate::config::analysis::{AnalysisConfig, MetricKind};
use crate::engine::fetch::ArmData;
use crate::engine::judge::{policy, JudgeContext, StepClock};
use crate::engine::judgement::{judge_look, Judgement};
use crate::engine::sequential::SequentialStates;
use crate::json::Num;
use crate::kayenta_api::judge::{classify_and_score, refuse_untrustworthy};
use clap::Args;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::path::PathBuf;
use verdict_judges::kayenta::config::CanaryConfig;
use verdict_judges::kayenta::scorer::{ScoreClassification, ScoreThresholds};

#[derive(Debug, Args)]
pub struct JudgeArgs {
    /// Kayenta canary config (JSON) or Verdict analysis config (YAML).
    #[arg(long)]
    pub config: PathBuf,
    /// Canary and baseline points per metric (JSON).
    #[arg(long)]
    pub data: PathBuf,
    /// Score needed to pass (0-100).
    #[arg(long, default_value_t = 95.0)]
    pub pass: f64,
    /// Score below which the canary fails (0-100).
    #[arg(long, default_value_t = 75.0)]
    pub marginal: f64,
}

/// `{"metrics": {"<name>": {"baseline": [..], "canary": [..]}}}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JudgeData {
    pub metrics: BTreeMap<String, MetricPoints>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricPoints {
    #[serde(default)]
    pub baseline: Vec<Num>,
    #[serde(default)]
    pub canary: Vec<Num>,
}

fn floats(v: &[Num]) -> Vec<f64> {
    v.iter().map(|n| n.0).collect()
}

/// Exit status of a judgement Verdict refuses to call a pass (its JSON
/// says why under `refused`).
pub const EXIT_REFUSED: i32 = 1;

/// Why a judge request was refused (always bad input: exit 2).
pub type JudgeError = String;

pub fn run(args: &JudgeArgs) -> i32 {
    match judge_files(args) {
        Ok(out) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&out).expect("JSON values serialize")
            );
            // A pass the data cannot support (Verdict's refusal of what
            // Kayenta would pass) must not read as success in a script.
            if out.get("refused").is_some() {
                EXIT_REFUSED
            } else {
                0
            }
        }
        Err(e) => {
            eprintln!("{}", crate::api::one_line(&e));
            super::EXIT_BAD_INPUT
        }
    }
}

/// Reads both files and judges.
pub fn judge_files(args: &JudgeArgs) -> Result<Value, JudgeError> {
    let read = |p: &PathBuf| {
        std::fs::read_to_string(p).map_err(|e| format!("cannot read {}: {e}", p.display()))
    };
    let config_text = read(&args.config)?;
    let data: JudgeData = serde_json::from_str(&read(&args.data)?)
        .map_err(|e| format!("{}: malformed data: {e}", args.data.display()))?;
    let thresholds = ScoreThresholds {
        pass: args.pass,
        marginal: args.marginal,
    };
    thresholds.check()?;
    if looks_like_kayenta(&config_text) {
        let config = CanaryConfig::from_json(&config_text).map_err(|e| {
            format!(
                "{}: not a Kayenta canary config: {e}",
                args.config.display()
            )
        })?;
        judge_kayenta(&config, &data, thresholds)
    } else {
        let config: AnalysisConfig = serde_yaml::from_str(&config_text).map_err(|e| {
            format!(
                "{}: not a Verdict analysis config: {e}",
                args.config.display()
            )
        })?;
        judge_verdict(config, &args.config, &data, thresholds)
    }
}

/// Kayenta configs are JSON objects with Kayenta's top-level keys.
fn looks_like_kayenta(text: &str) -> bool {
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(o)) => {
            o.contains_key("judge")
                || o.contains_key("applications")
                || o.contains_key("classifier")
                || o.get("metrics").and_then(Value::as_array).is_some_and(|m| {
                    m.iter().any(|m| {
                        m.get("analysisConfigurations").is_some() || m.get("query").is_some()
                    })
                })
        }
        _ => false,
    }
}

fn check_names<'a>(
    known: impl Iterator<Item = &'a str>,
    data: &JudgeData,
) -> Result<(), JudgeError> {
    let known: Vec<&str> = known.collect();
    for name in data.metrics.keys() {
        if !known.contains(&name.as_str()) {
            return Err(format!(
                "data has metric {name:?}, which the config does not define (defined: {known:?})"
            ));
        }
    }
    Ok(())
}

fn classification_name(c: ScoreClassification) -> &'static str {
    match c {
        ScoreClassification::Pass => "pass",
        ScoreClassification::Marginal => "marginal",
        ScoreClassification::Fail => "fail",
    }
}

fn judge_kayenta(
    config: &CanaryConfig,
    data: &JudgeData,
    thresholds: ScoreThresholds,
) -> Result<Value, JudgeError> {
    check_names(config.metrics.iter().map(|m| m.name.as_str()), data)?;
    let sides = config.metrics.iter().map(|m| {
        let points = data.metrics.get(&m.name);
        let side =
            |f: fn(&MetricPoints) -> &Vec<Num>| points.map(|p| floats(f(p))).unwrap_or_default();
        (m, side(|p| &p.baseline), side(|p| &p.canary))
    });
    let (classified, result) = classify_and_score(config, sides, thresholds);
    let refused = refuse_untrustworthy(config, &classified, result.score, thresholds.pass).err();
    let mut metrics = Vec::new();
    for m in &classified {
        let mut entry = json!({
            "name": m.metric.name,
            "classification": m.result.label.verdict_name(),
            "critical": m.result.critical,
            "muted": m.muted,
            "groups": m.metric.groups,
            "reason": m.result.reason.clone().unwrap_or_default(),
        });
        if let (Value::Object(e), Ok(Value::Object(stats))) =
            (&mut entry, serde_json::to_value(&m.result))
        {
            for (k, v) in stats {
                if !matches!(k.as_str(), "label" | "critical" | "reason") {
                    e.insert(k, v);
                }
            }
        }
        metrics.push(entry);
    }
    let mut out = json!({
        "config": config.name,
        "format": "kayenta",
        "score": result.score,
        "classification": classification_name(result.classification),
        "reason": result.reason,
        "groups": result.group_scores.iter().map(|g| json!({"name": g.name, "score": g.score, "no_data": g.no_data})).collect::<Vec<_>>(),
        "metrics": metrics,
    });
    if let (Some(reason), Value::Object(o)) = (refused, &mut out) {
        o.insert("refused".into(), reason.into());
    }
    Ok(out)
}

fn judge_verdict(
    mut config: AnalysisConfig,
    path: &std::path::Path,
    data: &JudgeData,
    thresholds: ScoreThresholds,
) -> Result<Value, JudgeError> {
    config.thresholds = thresholds;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("analysis")
        .to_string();
    let analysis = config.validate(&name, "").map_err(|errors| {
        errors
            .iter()
            .map(|e| {
                format!(
                    "{}: {}: {}",
                    path.display(),
                    e.path.trim_start_matches('.'),
                    e.message
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    })?;
    check_names(
        analysis.metrics.iter().map(|m| m.config.name.as_str()),
        data,
    )?;
    let mut fetched = Vec::new();
    for metric in &analysis.metrics {
        if metric.config.kind != MetricKind::Gauge {
            return Err(format!(
                "metric {:?} is a {} metric; `verdict judge` takes points, so only gauge metrics",
                metric.config.name,
                metric.config.kind.as_str()
            ));
        }
        let arm = |v: Option<&Vec<Num>>| {
            let values: Vec<f64> = v
                .map(|v| floats(v))
                .unwrap_or_default()
                .into_iter()
                .filter(|x| x.is_finite())
                .collect();
            Ok((!values.is_empty()).then_some(ArmData::Points { values }))
        };
        let points = data.metrics.get(&metric.config.name);
        fetched.push((
            arm(points.map(|p| &p.canary)),
            arm(points.map(|p| &p.baseline)),
        ));
    }
    let Judgement { verdicts, decision } = judge_look(
        &analysis,
        &JudgeContext::new(&analysis, None),
        fetched,
        &mut SequentialStates::new(),
        &policy(&analysis.config, true, StepClock::UNSTEPPED),
    );
    Ok(json!({
        "config": name,
        "format": "verdict",
        "score": decision.score,
        "classification": classification_name(decision.classification),
        "decision": decision.action,
        "reason": decision.summary(),
        "groups": decision.groups.iter().map(|g| json!({"name": g.name, "score": g.score, "no_data": g.no_data})).collect::<Vec<_>>(),
        "metrics": verdicts,
    }))
}

//! One Kayenta execution: a canary config and an execution request become
//! one look of Verdict's engine over the scopes' fixed `[start, end]`, and
//! the look becomes Kayenta's judge result.
//!
//! [`prepare`] checks everything that can be checked before any query (the
//! config converts, the scopes name every metric's scope, the interval is
//! an interval, the thresholds are there, every query renders with the
//! scopes' values), so a malformed request is refused with the reason
//! instead of starting. [`judge`] then runs the same fetch, judge and score
//! code as a webhook look, and [`outcome_of`] decides how the execution ends:
//!
//! * any unmuted metric that could not be judged (backend down, a query
//!   that fails) → `terminal`, with every reason: Kayenta drops an errored
//!   metric from the score and may pass the canary without it; Verdict does
//!   not;
//! * a score that reaches `pass` while Verdict's decision says the data was
//!   too thin to promote (fewer points than `min_data`, or a metric without
//!   data) → `terminal` with the reasons: a caller reading only the score
//!   (Argo Rollouts) would otherwise promote on missing data;
//! * otherwise `succeeded`, with Kayenta's score, classification and
//!   per-metric results, and Verdict's look beside them.

use super::model::{
    AnalysisResult, ArmMetadata, CanaryResult, CanaryScope, ExecutionParams, ExecutionRequest,
    JudgeGroupScore, JudgeResult, JudgeScore,
};
use super::KayentaError;
use crate::config::analysis::{Analysis, ScoreThresholds};
use crate::config::duration::PromDuration;
use crate::config::kayenta::analysis_config;
use crate::engine::judge::ArmSummary;
use crate::engine::run::{Look, RunKey};
use crate::engine::{Engine, LookRequest};
use crate::json::number;
use crate::telemetry::KayentaExecution;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use verdict_judges::decision::Action;
use verdict_judges::kayenta::classifier::Label;
use verdict_judges::kayenta::config::CanaryConfig;
use verdict_judges::kayenta::scorer;

/// Kayenta's judge name, reported in `judgeResult.judgeName`.
pub const JUDGE_NAME: &str = "NetflixACAJudge-v1.0";

/// Resolution when a scope gives none (Kayenta's documented default).
const DEFAULT_STEP_SECONDS: u64 = 60;

/// The template variables a scope pair fills (see `config::kayenta`).
const SCOPE_VARIABLES: [&str; 4] = [
    "canary_scope",
    "baseline_scope",
    "canary_location",
    "baseline_location",
];

/// An execution as stored.
#[derive(Debug, Clone)]
pub struct Execution {
    pub id: String,
    /// The stored config's id; `None` for an inline (ad-hoc) config.
    pub config_id: Option<String>,
    pub config: CanaryConfig,
    pub request: ExecutionRequest,
    pub params: ExecutionParams,
    pub build_time_millis: i64,
    pub end_time_millis: Option<i64>,
    pub outcome: Outcome,
}

/// Where an execution stands (stored as JSON by the SQL backends).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Running,
    Succeeded(Box<CanaryResult>),
    /// Ended without a result; every reason.
    Terminal(Vec<String>),
}

impl Outcome {
    /// Orca's lowercase status.
    pub fn status(&self) -> &'static str {
        match self {
            Outcome::Running => "running",
            Outcome::Succeeded(_) => "succeeded",
            Outcome::Terminal(_) => "terminal",
        }
    }

    /// How an ended execution is counted; `None` while it runs.
    pub fn ended(&self) -> Option<KayentaExecution> {
        match self {
            Outcome::Running => None,
            Outcome::Succeeded(_) => Some(KayentaExecution::Succeeded),
            Outcome::Terminal(_) => Some(KayentaExecution::Terminal),
        }
    }
}

/// A checked execution, ready to judge.
#[derive(Debug, Clone)]
pub struct Judgement {
    pub analysis: Arc<Analysis>,
    pub vars: BTreeMap<String, String>,
    /// The interval, unix seconds.
    pub start: f64,
    pub end: f64,
    pub thresholds: ScoreThresholds,
}

/// The analysis a canary config becomes, with every problem in one message.
pub fn convert(config: &CanaryConfig) -> Result<crate::config::analysis::AnalysisConfig, String> {
    analysis_config(config).map_err(|errors| {
        errors
            .iter()
            .map(|e| format!("{}: {}", e.path, e.message))
            .collect::<Vec<_>>()
            .join("; ")
    })
}

/// The analysis name of an execution's config: the config's name when it
/// is a valid token (telemetry labels, logs), else `adhoc`.
fn analysis_name(config: &CanaryConfig) -> String {
    match crate::config::template::validate_token("name", &config.name) {
        Ok(()) => config.name.clone(),
        Err(_) => "adhoc".into(),
    }
}

/// An instant as Kayenta's Jackson reads one: ISO-8601, or an integer
/// (number or digits) of epoch milliseconds. Unix seconds.
fn parse_instant(what: &str, value: Option<&Value>) -> Result<f64, KayentaError> {
    let bad = |detail: String| KayentaError::Invalid(format!("{what} {detail}"));
    match value {
        None | Some(Value::Null) => Err(KayentaError::Invalid(format!("{what} is required"))),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(|ms| ms as f64 / 1000.0)
            .ok_or_else(|| bad(format!("{n} is not epoch milliseconds"))),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => s
            .parse::<i64>()
            .map(|ms| ms as f64 / 1000.0)
            .map_err(|e| bad(format!("{s:?}: {e}"))),
        Some(Value::String(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis() as f64 / 1000.0)
            .map_err(|e| bad(format!("{s:?} is not an ISO-8601 instant: {e}"))),
        Some(other) => Err(bad(format!("{other} is not an instant"))),
    }
}

/// A step in seconds: a positive integer, as a number or digits.
fn parse_step(what: &str, value: Option<&Value>) -> Result<Option<u64>, KayentaError> {
    let step = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse::<u64>().ok(),
        Some(_) => None,
    };
    match step {
        Some(s) if s > 0 => Ok(Some(s)),
        _ => Err(KayentaError::Invalid(format!(
            "{what} must be a positive number of seconds, got {}",
            value.map(Value::to_string).unwrap_or_default()
        ))),
    }
}

/// Checks a request against a config (see the module documentation).
pub fn prepare(
    config: &CanaryConfig,
    request: &ExecutionRequest,
) -> Result<Judgement, KayentaError> {
    let thresholds = match request.thresholds {
        Some(t) => match (t.pass, t.marginal) {
            (Some(pass), Some(marginal)) => ScoreThresholds { pass, marginal },
            _ => {
                return Err(KayentaError::Invalid(
                    "thresholds need both pass and marginal".into(),
                ))
            }
        },
        None => {
            return Err(KayentaError::Invalid(
                "Execution request must contain thresholds".into(),
            ))
        }
    };
    thresholds.check().map_err(KayentaError::Invalid)?;
    super::judge::check_judge_name(config)?;
    if config.metrics.is_empty() {
        return Err(KayentaError::Invalid(
            "the canary config has no metrics".into(),
        ));
    }
    // Every metric's scope must be in the request; Verdict judges one scope
    // per execution (the templates have one pair of scope variables).
    let mut scope_names: Vec<String> = config
        .metrics
        .iter()
        .map(|m| m.scope_name.clone().unwrap_or_else(|| "default".into()))
        .collect();
    scope_names.sort();
    scope_names.dedup();
    let scope_name = match scope_names.as_slice() {
        [one] => one,
        several => {
            return Err(KayentaError::Invalid(format!(
            "the config's metrics use scopes {several:?}; Verdict judges one scope per execution"
        )))
        }
    };
    let pair = request.scopes.get(scope_name).ok_or_else(|| {
        KayentaError::Invalid(format!(
            "scopes has no {scope_name:?}, the scopeName of the config's metrics (has {:?})",
            request.scopes.keys().collect::<Vec<_>>()
        ))
    })?;
    let at = |side: &str| format!("scopes.{scope_name}.{side}");
    let control = pair
        .control_scope
        .as_ref()
        .ok_or_else(|| KayentaError::Invalid(format!("{} is required", at("controlScope"))))?;
    let experiment = pair
        .experiment_scope
        .as_ref()
        .ok_or_else(|| KayentaError::Invalid(format!("{} is required", at("experimentScope"))))?;
    let interval = |side: &str, s: &CanaryScope| -> Result<(f64, f64), KayentaError> {
        let start = parse_instant(&format!("{}.start", at(side)), s.start.as_ref())?;
        let end = parse_instant(&format!("{}.end", at(side)), s.end.as_ref())?;
        if end <= start {
            return Err(KayentaError::Invalid(format!(
                "{} ends before it starts",
                at(side)
            )));
        }
        Ok((start, end))
    };
    let (start, end) = interval("experimentScope", experiment)?;
    if interval("controlScope", control)? != (start, end) {
        return Err(KayentaError::Invalid(
            "controlScope and experimentScope must cover the same interval (Verdict compares the arms over one window)".into(),
        ));
    }
    let step = parse_step(
        &format!("{}.step", at("experimentScope")),
        experiment.step.as_ref(),
    )?
    .or(parse_step(
        &format!("{}.step", at("controlScope")),
        control.step.as_ref(),
    )?)
    .unwrap_or(DEFAULT_STEP_SECONDS);
    let mut vars = BTreeMap::new();
    for (arm, scope, side) in [
        ("canary", experiment, "experimentScope"),
        ("baseline", control, "controlScope"),
    ] {
        let value = scope
            .scope
            .clone()
            .ok_or_else(|| KayentaError::Invalid(format!("{}.scope is required", at(side))))?;
        vars.insert(format!("{arm}_scope"), value);
        vars.insert(
            format!("{arm}_location"),
            scope.location.clone().unwrap_or_default(),
        );
    }
    // `${key}` of extendedScopeParams is one variable for both arms.
    for scope in [control, experiment] {
        for (k, v) in scope.extended_scope_params.iter().flatten() {
            crate::config::template::validate_token("extendedScopeParams key", k)
                .map_err(KayentaError::Invalid)?;
            if SCOPE_VARIABLES.contains(&k.as_str()) {
                return Err(KayentaError::Invalid(format!(
                    "extendedScopeParams {k:?} would override the scope itself"
                )));
            }
            if let Some(previous) = vars.insert(k.clone(), v.clone()) {
                if previous != *v {
                    return Err(KayentaError::Invalid(format!(
                        "extendedScopeParams {k:?} differs between controlScope and experimentScope; Verdict's templates have one value per key"
                    )));
                }
            }
        }
    }
    let mut analysis = convert(config).map_err(KayentaError::Invalid)?;
    analysis.step = PromDuration::from_secs(step);
    analysis.thresholds = thresholds;
    let name = analysis_name(config);
    let analysis = analysis.validate(&name, "").map_err(|errors| {
        KayentaError::Invalid(
            errors
                .iter()
                .map(|e| format!("{}: {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        )
    })?;
    Engine::check_analysis_vars(&analysis, &vars)
        .map_err(|e| KayentaError::Invalid(format!("rejected: {e}")))?;
    Ok(Judgement {
        analysis: Arc::new(analysis),
        vars,
        start,
        end,
        thresholds,
    })
}

/// Runs the judgement on the engine and ends the run (its look is kept in
/// the execution, not in the engine's run table).
pub async fn judge(engine: &Engine, execution_id: &str, judgement: &Judgement) -> Outcome {
    let key = RunKey::Kayenta {
        execution: execution_id.to_string(),
    };
    let name = judgement.analysis.name.clone();
    let request = LookRequest {
        key: key.clone(),
        analysis: name.clone(),
        vars: judgement.vars.clone(),
        now: judgement.end,
        weight: None,
        steps: None,
    };
    let look = engine
        .look_with(judgement.analysis.clone(), request, Some(judgement.start))
        .await;
    engine.close(&name, &key, "complete", judgement.end).await;
    match look {
        Ok(look) => outcome_of(&look, judgement),
        Err(e) => Outcome::Terminal(vec![e.to_string()]),
    }
}

/// How a look ends an execution (see the module documentation).
pub fn outcome_of(look: &Look, judgement: &Judgement) -> Outcome {
    let failed: Vec<String> = look
        .metrics
        .iter()
        .filter(|m| !m.muted && m.classification == Label::Error)
        .map(|m| format!("metric {:?} could not be judged: {}", m.name, m.reason))
        .collect();
    if !failed.is_empty() {
        return Outcome::Terminal(failed);
    }
    let result = judge_result(look, judgement);
    if result.score.score >= judgement.thresholds.pass && look.decision.action != Action::Promote {
        let mut reasons = vec![format!(
            "score {:.2} reaches pass {} but the data cannot support promoting",
            result.score.score, judgement.thresholds.pass
        )];
        reasons.extend(look.decision.reasons.iter().cloned());
        return Outcome::Terminal(reasons);
    }
    Outcome::Succeeded(Box::new(CanaryResult {
        judge_result: result,
        canary_duration: iso_duration(judgement.end - judgement.start),
        verdict: look.clone(),
    }))
}

fn stats(summary: &Option<ArmSummary>) -> Option<ArmMetadata> {
    match summary {
        Some(ArmSummary::Points {
            count,
            mean,
            min,
            max,
        }) => Some(ArmMetadata {
            stats: json!({"count": count, "mean": number(*mean), "min": number(*min), "max": number(*max)}),
        }),
        _ => None,
    }
}

fn mean(summary: &Option<ArmSummary>) -> Option<f64> {
    match summary {
        Some(ArmSummary::Points { mean, .. }) => Some(*mean),
        _ => None,
    }
}

/// Kayenta's `CanaryJudgeResult` of a look, scored with Kayenta's scorer
/// on the look's classifications (the same call the decision makes, here
/// for its reason string).
pub fn judge_result(look: &Look, judgement: &Judgement) -> JudgeResult {
    let outcomes: Vec<_> = look.metrics.iter().map(|m| m.outcome().scored).collect();
    let scored = scorer::score(
        &outcomes,
        &judgement.analysis.config.groups,
        scorer::ScoreThresholds {
            pass: judgement.thresholds.pass,
            marginal: judgement.thresholds.marginal,
        },
    );
    let results = look
        .metrics
        .iter()
        .map(|m| AnalysisResult {
            name: m.name.clone(),
            id: None,
            tags: None,
            classification: m.classification.kayenta_name().to_string(),
            classification_reason: (!m.reason.is_empty()).then(|| m.reason.clone()),
            groups: vec![m.group.clone()],
            experiment_metadata: stats(&m.canary),
            control_metadata: stats(&m.baseline),
            result_metadata: mean(&m.canary)
                .zip(mean(&m.baseline))
                .map(|(c, b)| json!({"ratio": number(c / b)})),
            critical: m.critical,
            muted: m.muted,
        })
        .collect();
    kayenta_judge_result(results, scored)
}

/// Kayenta's judge result from the per-metric results and their score:
/// one shape for executions and for `POST /judges/judge`.
pub fn kayenta_judge_result(
    results: Vec<AnalysisResult>,
    scored: scorer::ScoreResult,
) -> JudgeResult {
    let classification = match scored.classification {
        scorer::ScoreClassification::Pass => "Pass",
        scorer::ScoreClassification::Marginal => "Marginal",
        scorer::ScoreClassification::Fail => "Fail",
    };
    JudgeResult {
        judge_name: JUDGE_NAME.into(),
        results,
        group_scores: scored
            .group_scores
            .iter()
            .map(|g| JudgeGroupScore {
                name: g.name.clone(),
                score: g.score,
                classification: String::new(),
                classification_reason: String::new(),
            })
            .collect(),
        score: JudgeScore {
            score: scored.score,
            classification: classification.into(),
            classification_reason: scored.reason,
        },
    }
}

/// An ISO-8601 duration as Java's `Duration.toString` writes it (`PT1H5M`).
pub fn iso_duration(seconds: f64) -> String {
    let total = seconds.round() as i64;
    if total == 0 {
        return "PT0S".into();
    }
    let (h, m, s) = (total / 3600, total % 3600 / 60, total % 60);
    let mut out = String::from("PT");
    if h != 0 {
        out.push_str(&format!("{h}H"));
    }
    if m != 0 {
        out.push_str(&format!("{m}M"));
    }
    if s != 0 {
        out.push_str(&format!("{s}S"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_javas() {
        assert_eq!(iso_duration(600.0), "PT10M");
        assert_eq!(iso_duration(3725.0), "PT1H2M5S");
        assert_eq!(iso_duration(0.0), "PT0S");
    }

    #[test]
    fn instants_and_steps_read_as_jacksons() {
        let at = |v: Value| parse_instant("start", Some(&v));
        assert_eq!(at(json!("2025-01-01T10:00:00Z")).unwrap(), 1_735_725_600.0);
        assert_eq!(at(json!("1735725600000")).unwrap(), 1_735_725_600.0);
        assert_eq!(at(json!(1_735_725_600_500i64)).unwrap(), 1_735_725_600.5);
        assert!(at(json!("10:00")).is_err());
        assert!(at(json!(true)).is_err());
        assert!(parse_instant("start", None).is_err());
        assert_eq!(parse_step("step", Some(&json!("10"))).unwrap(), Some(10));
        assert_eq!(parse_step("step", None).unwrap(), None);
        assert!(parse_step("step", Some(&json!(0))).is_err());
        assert!(parse_step("step", Some(&json!(1.5))).is_err());
    }

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

    fn request() -> ExecutionRequest {
        serde_json::from_value(json!({
            "scopes": {"default": {
                "controlScope": {"scope": "primary", "start": "2025-01-01T10:00:00Z", "end": "2025-01-01T10:10:00Z", "step": 15},
                "experimentScope": {"scope": "canary", "region": "eu", "start": "2025-01-01T10:00:00Z", "end": "2025-01-01T10:10:00Z"}}},
            "thresholds": {"pass": 90, "marginal": 75}
        }))
        .unwrap()
    }

    #[test]
    fn a_request_becomes_a_fixed_window_judgement() {
        let j = prepare(&config(), &request()).unwrap();
        assert_eq!(j.end - j.start, 600.0);
        assert_eq!(j.vars["canary_scope"], "canary");
        assert_eq!(j.vars["baseline_scope"], "primary");
        // `region` (Argo's name) is not `location`: ignored, as Kayenta does.
        assert_eq!(j.vars["canary_location"], "");
        assert_eq!(j.analysis.config.step.as_secs_f64(), 15.0);
        assert_eq!(j.thresholds.pass, 90.0);
        assert_eq!(j.analysis.config.thresholds.marginal, 75.0);
    }

    #[test]
    fn metrics_in_several_scopes_are_refused() {
        let mut c = config();
        c.metrics[1].scope_name = Some("other".into());
        let e = prepare(&c, &request()).unwrap_err();
        assert!(e.to_string().contains("one scope per execution"), "{e}");
    }
}

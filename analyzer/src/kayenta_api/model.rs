//! Kayenta's wire shapes: what clients send and what they read back.
//!
//! Field names follow Kayenta's Java model (camelCase). Requests ignore
//! unknown fields, as Kayenta's object mapper does (Argo Rollouts sends a
//! `region` that Kayenta silently drops; so does Verdict). Responses omit
//! absent fields (Kayenta's `JsonInclude.NON_NULL`).

use crate::engine::run::Look;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use verdict_judges::kayenta::config::CanaryConfig;

/// One side of a scope (`CanaryScope`): which series, over which interval.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CanaryScope {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// An ISO-8601 instant, or epoch milliseconds (a number or digits),
    /// kept as sent so the status echoes it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Value>,
    /// As `start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Value>,
    /// Resolution in seconds (Kayenta's `Long step`; a number or digits).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extended_scope_params: Option<BTreeMap<String, String>>,
}

/// A named scope's two sides (`CanaryScopePair`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScopePair {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_scope: Option<CanaryScope>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_scope: Option<CanaryScope>,
}

/// The request's `thresholds` (`CanaryClassifierThresholdsConfig`).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Thresholds {
    pub pass: Option<f64>,
    pub marginal: Option<f64>,
}

/// `CanaryExecutionRequest`: the body of `POST /canary/{configId}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionRequest {
    pub scopes: BTreeMap<String, ScopePair>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thresholds: Option<Thresholds>,
    /// Echoed back, otherwise unused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metadata: Option<Value>,
    /// Echoed back, otherwise unused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub site_local: Option<Value>,
}

/// `CanaryAdhocExecutionRequest`: the body of the inline-config `POST /canary`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AdhocExecutionRequest {
    pub canary_config: Option<CanaryConfig>,
    pub execution_request: Option<ExecutionRequest>,
}

/// The account and pipeline query parameters of an execution. Verdict has
/// one metrics source and no accounts, so they are only recorded and echoed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ExecutionParams {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_pipeline_execution_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration_account_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_account_name: Option<String>,
}

/// An entry of `GET /canaryConfig` (Kayenta's summary shape).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConfigSummary {
    pub id: String,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_timestamp_iso: Option<String>,
    pub applications: Vec<String>,
    /// Verdict's addition: `file` (from `kayenta_configs`, read-only) or `api`.
    pub origin: ConfigOrigin,
}

/// Where a canary config comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConfigOrigin {
    /// Listed under `kayenta_configs` in the daemon's config: read-only here.
    File,
    /// Posted through `/canaryConfig`.
    Api,
}

/// `{"canaryConfigId": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryConfigIdResponse {
    pub canary_config_id: String,
}

/// `{"canaryExecutionId": ...}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryExecutionResponse {
    pub canary_execution_id: String,
}

/// `CanaryJudgeScore`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeScore {
    pub score: f64,
    /// `Pass`, `Marginal` or `Fail`.
    pub classification: String,
    pub classification_reason: String,
}

/// `CanaryJudgeGroupScore` (classification fields are always empty in Kayenta).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeGroupScore {
    pub name: String,
    pub score: f64,
    pub classification: String,
    pub classification_reason: String,
}

/// `{"stats": {...}}` of one arm.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArmMetadata {
    pub stats: Value,
}

/// `CanaryAnalysisResult`: one metric's classification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AnalysisResult {
    pub name: String,
    /// The metric set pair's id (`POST /judges/judge`; absent on executions).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The metric set pair's tags (`POST /judges/judge`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<BTreeMap<String, String>>,
    /// `Pass`, `High`, `Low`, `Nodata`, `NodataFailMetric` or `Error`.
    pub classification: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub classification_reason: Option<String>,
    pub groups: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub experiment_metadata: Option<ArmMetadata>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub control_metadata: Option<ArmMetadata>,
    /// `{"ratio": experiment mean / control mean}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_metadata: Option<Value>,
    pub critical: bool,
    pub muted: bool,
}

/// `CanaryJudgeResult`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JudgeResult {
    pub judge_name: String,
    pub results: Vec<AnalysisResult>,
    pub group_scores: Vec<JudgeGroupScore>,
    pub score: JudgeScore,
}

/// `CanaryResult` plus Verdict's explanation of the same judgement.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CanaryResult {
    pub judge_result: JudgeResult,
    /// ISO-8601 duration of the scopes' interval.
    pub canary_duration: String,
    /// Verdict's addition: the look behind the judgement (window, every
    /// metric's test, estimate, interval, reason, and Verdict's decision).
    pub verdict: Look,
}

/// An Orca-style exception (`exception` of the status response).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionException {
    pub exception_type: String,
    pub should_retry: bool,
    pub timestamp: i64,
    /// `{"error": first line, "errors": [every reason]}`.
    pub details: Value,
}

/// `CanaryExecutionStatusResponse`: the answer of `GET /canary/{id}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionStatusResponse {
    pub id: String,
    pub pipeline_id: String,
    pub complete: bool,
    /// `running`, `succeeded` or `terminal`.
    pub status: String,
    /// The same, in Orca's upper case.
    pub execution_status: String,
    pub stage_status: BTreeMap<String, String>,
    /// Present only when the execution succeeded, as in Kayenta.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result: Option<CanaryResult>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exception: Option<ExecutionException>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary_config_id: Option<String>,
    pub config: CanaryConfig,
    pub canary_execution_request: ExecutionRequest,
    #[serde(flatten)]
    pub params: ExecutionParams,
    pub build_time_millis: i64,
    pub build_time_iso: String,
    pub start_time_millis: i64,
    pub start_time_iso: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time_millis: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_time_iso: Option<String>,
}

/// An entry of `GET /judges` (Kayenta's `CanaryJudge` as Jackson writes it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct JudgeInfo {
    pub name: String,
    pub visible: bool,
}

/// `MetricSetPair`: one metric's control and experiment values, as Kayenta
/// stores them in a metric-set-pair list. Only `name` and `values` are
/// read; `scopes` and `attributes` are accepted and ignored.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetricSetPair {
    pub name: Option<String>,
    pub id: Option<String>,
    pub tags: Option<BTreeMap<String, String>>,
    /// `control` and `experiment`: numbers, with `null`, `"NaN"`, `"inf"`
    /// and `"-inf"` for values Jackson writes that way.
    pub values: BTreeMap<String, Vec<Value>>,
}

/// The body of `POST /judges/judge`: the metric-set-pair list Kayenta
/// would load by `metricSetPairListId`, and optionally the config inline.
/// A bare JSON array is the list alone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DirectJudgeRequest {
    pub canary_config: Option<CanaryConfig>,
    pub metric_set_pair_list: Vec<MetricSetPair>,
}

impl<'de> Deserialize<'de> for DirectJudgeRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Inline {
            #[serde(default)]
            canary_config: Option<CanaryConfig>,
            metric_set_pair_list: Vec<MetricSetPair>,
        }
        let value = Value::deserialize(d)?;
        match value {
            Value::Array(_) => Ok(DirectJudgeRequest {
                canary_config: None,
                metric_set_pair_list: serde_json::from_value(value)
                    .map_err(serde::de::Error::custom)?,
            }),
            Value::Object(_) => {
                let i: Inline = serde_json::from_value(value).map_err(serde::de::Error::custom)?;
                Ok(DirectJudgeRequest {
                    canary_config: i.canary_config,
                    metric_set_pair_list: i.metric_set_pair_list,
                })
            }
            other => Err(serde::de::Error::custom(format!(
                "expected a metric-set-pair list or {{\"canaryConfig\", \"metricSetPairList\"}}, got {other}"
            ))),
        }
    }
}

/// One metric's judgement as Verdict explains it, beside Kayenta's result
/// in `POST /judges/judge`'s answer.
#[derive(Debug, Clone, Serialize)]
pub struct MetricExplanation {
    pub name: String,
    /// Verdict's label (`pass`, `high`, `low`, `nodata`, ...).
    pub classification: String,
    pub critical: bool,
    pub muted: bool,
    /// Whether each side had Verdict's minimum points.
    pub enough_data: bool,
    /// Why, in words and numbers; empty for a plain pass.
    pub reason: String,
    /// The classifier's numbers: both sides' statistics, the deviation,
    /// the effect size, the shift estimate and interval, the p-value.
    pub statistics: Value,
}

/// Verdict's explanation of a direct judgement.
#[derive(Debug, Clone, Serialize)]
pub struct DirectJudgeExplanation {
    pub metrics: Vec<MetricExplanation>,
    /// The minimum points per side a passing score needs ([`crate::config::analysis::MinData`]).
    pub min_points: usize,
}

/// The answer of `POST /judges/judge`: Kayenta's `CanaryJudgeResult` with
/// Verdict's explanation beside it.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectJudgeResult {
    #[serde(flatten)]
    pub judge_result: JudgeResult,
    pub verdict: DirectJudgeExplanation,
}

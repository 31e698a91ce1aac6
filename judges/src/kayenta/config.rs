//! Kayenta's canary-config JSON, read unchanged.
//!
//! The shapes follow Kayenta's `CanaryConfig` / `CanaryMetricConfig` model:
//! camelCase keys, unknown keys ignored (Kayenta's object mapper disables
//! `FAIL_ON_UNKNOWN_PROPERTIES`), `null` treated like an absent key. The
//! per-metric judge settings (`analysisConfigurations.canary`) are kept as
//! written ([`CanaryAnalysisConfig`], so a config round-trips) and resolved
//! with Kayenta's defaults by [`CanaryAnalysisConfig::resolve`] into
//! [`MetricSettings`], which is what the classifier reads.
//!
//! Resolution rules (Kayenta's `MapUtils` look-ups):
//! * an absent key takes its default; an unknown string takes the default
//!   (`direction: "up"` → `either`, `nanStrategy: "drop"` → `remove`, …);
//!   strings are matched exactly (Kayenta compares lowercase literals);
//! * integers are accepted wherever a double is expected (`"allowedIncrease": 2`);
//! * the effect-size thresholds default to the neutral value of the chosen
//!   measure: 1.0 for `meanRatio`, 0.5 for `cles`;
//! * Verdict deviation: `effectSize.measure: "cohenD"` selects Cohen's d
//!   (thresholds default to 0). Kayenta has `EffectSizes.cohenD` but its
//!   classifier only distinguishes `"cles"` from everything else, so in
//!   Kayenta that string silently means `meanRatio` with thresholds 1.0
//!   (`docs/statistics/kayenta.md`, deviation 9).

use crate::effect_size::EffectSizeMeasure;
use crate::kayenta::scorer::ScoreThresholds;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::BTreeMap;

/// Deserializes `null` as the type's default (Jackson leaves the field at
/// its initial value; we want empty collections, not an error).
fn null_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Reads a string, or a number as its JSON text (Jackson's coercion).
fn string_or_number<'de, D>(d: D) -> Result<Option<String>, D::Error>
where
    D: Deserializer<'de>,
{
    Ok(match Option::<serde_json::Value>::deserialize(d)? {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        Some(other) => {
            return Err(serde::de::Error::custom(format!(
                "expected a string or a number, got {other}"
            )))
        }
    })
}

/// A whole canary config as stored by Kayenta's `/canaryConfig` endpoints.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CanaryConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A string; Kayenta's own samples also write a number (`1.0`), which
    /// Jackson coerces, so a number is read as its text.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number"
    )]
    pub config_version: Option<String>,
    #[serde(deserialize_with = "null_default")]
    pub applications: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_timestamp_iso: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub updated_timestamp_iso: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub judge: Option<JudgeConfig>,
    #[serde(deserialize_with = "null_default")]
    pub metrics: Vec<MetricConfig>,
    #[serde(deserialize_with = "null_default")]
    pub templates: BTreeMap<String, String>,
    #[serde(deserialize_with = "null_default")]
    pub classifier: ClassifierConfig,
}

impl CanaryConfig {
    /// Parses a config from Kayenta's JSON.
    pub fn from_json(text: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(text)
    }
}

/// `judge`: which judge Kayenta would run (`NetflixACAJudge-v1.0`).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct JudgeConfig {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(deserialize_with = "null_default")]
    pub judge_configurations: BTreeMap<String, serde_json::Value>,
}

/// `classifier`: group weights and (ignored by Kayenta's judge path, which
/// uses the execution request's thresholds) score thresholds.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClassifierConfig {
    #[serde(deserialize_with = "null_default")]
    pub group_weights: BTreeMap<String, f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_thresholds: Option<ScoreThresholds>,
}

/// One entry of `metrics`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct MetricConfig {
    #[serde(deserialize_with = "null_default")]
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub query: Option<MetricQuery>,
    #[serde(deserialize_with = "null_default")]
    pub groups: Vec<String>,
    /// `analysisConfigurations`; early Kayenta configs call it `extensions`.
    #[serde(alias = "extensions", deserialize_with = "null_default")]
    pub analysis_configurations: AnalysisConfigurations,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope_name: Option<String>,
}

impl MetricConfig {
    /// The judge settings of this metric with Kayenta's defaults filled in.
    pub fn settings(&self) -> MetricSettings {
        self.analysis_configurations
            .canary
            .as_ref()
            .map(CanaryAnalysisConfig::resolve)
            .unwrap_or_default()
    }
}

/// `analysisConfigurations`: only the `canary` key is read by the judge.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisConfigurations {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub canary: Option<CanaryAnalysisConfig>,
}

/// A metric's query. Prometheus queries are typed; every other provider's
/// query (`atlas`, `datadog`, `stackdriver`, …) is kept verbatim.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricQuery {
    Prometheus(PrometheusQuery),
    Other(serde_json::Value),
}

impl MetricQuery {
    /// The `type` discriminator (`"prometheus"`, `"datadog"`, …), if any.
    pub fn query_type(&self) -> Option<&str> {
        match self {
            MetricQuery::Prometheus(_) => Some("prometheus"),
            MetricQuery::Other(v) => v.get("type").and_then(|t| t.as_str()),
        }
    }
}

impl<'de> Deserialize<'de> for MetricQuery {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let value = serde_json::Value::deserialize(d)?;
        if value.get("type").and_then(|t| t.as_str()) == Some("prometheus") {
            serde_json::from_value(value)
                .map(MetricQuery::Prometheus)
                .map_err(serde::de::Error::custom)
        } else {
            Ok(MetricQuery::Other(value))
        }
    }
}

impl Serialize for MetricQuery {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            MetricQuery::Prometheus(q) => {
                let mut v = serde_json::to_value(q).map_err(serde::ser::Error::custom)?;
                if let Some(map) = v.as_object_mut() {
                    map.insert("type".into(), "prometheus".into());
                }
                v.serialize(s)
            }
            MetricQuery::Other(v) => v.serialize(s),
        }
    }
}

/// Kayenta's `PrometheusCanaryMetricSetQueryConfig`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PrometheusQuery {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric_name: Option<String>,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub label_bindings: Vec<String>,
    #[serde(
        deserialize_with = "null_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub group_by_fields: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    /// Name of a `templates` entry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_filter_template: Option<String>,
    /// Inline template; `PromQL:` prefix means "send the rest verbatim".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_inline_template: Option<String>,
    /// Deprecated in Kayenta, still accepted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub custom_filter: Option<String>,
}

/// `analysisConfigurations.canary` exactly as written (strings unresolved).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CanaryAnalysisConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nan_strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outliers: Option<OutliersConfig>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub must_have_data: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub muted: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub effect_size: Option<EffectSizeConfig>,
}

/// `outliers` of a canary analysis config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct OutliersConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub strategy: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlier_factor: Option<f64>,
}

/// `effectSize` of a canary analysis config.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EffectSizeConfig {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub measure: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_increase: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_decrease: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_increase: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critical_decrease: Option<f64>,
}

/// Which change of the canary counts against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Only a higher canary can fail (latency, errors).
    Increase,
    /// Only a lower canary can fail (throughput, success rate).
    Decrease,
    /// Both.
    #[default]
    Either,
}

impl Direction {
    /// Kayenta's reading: `increase`, `decrease`, anything else → `either`.
    pub fn parse_lenient(s: &str) -> Self {
        match s {
            "increase" => Direction::Increase,
            "decrease" => Direction::Decrease,
            _ => Direction::Either,
        }
    }

    /// Whether a higher canary may be labelled High.
    pub fn allows_increase(self) -> bool {
        matches!(self, Direction::Increase | Direction::Either)
    }

    /// Whether a lower canary may be labelled Low.
    pub fn allows_decrease(self) -> bool {
        matches!(self, Direction::Decrease | Direction::Either)
    }
}

/// What to do with NaN values (missing data points).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum NanStrategy {
    /// Drop them; an empty side then means "no data".
    #[default]
    Remove,
    /// Replace each by 0.0; an empty side then passes (Kayenta PR #339).
    Replace,
}

impl NanStrategy {
    /// `replace` → Replace, anything else → Remove.
    pub fn parse_lenient(s: &str) -> Self {
        match s {
            "replace" => NanStrategy::Replace,
            _ => NanStrategy::Remove,
        }
    }
}

/// Whether IQR outlier removal runs before the test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum OutlierStrategy {
    /// Remove values outside the widened IQR fences.
    Remove,
    /// Keep every value (default since Kayenta PR #621).
    #[default]
    Keep,
}

impl OutlierStrategy {
    /// `remove` → Remove, anything else → Keep.
    pub fn parse_lenient(s: &str) -> Self {
        match s {
            "remove" => OutlierStrategy::Remove,
            _ => OutlierStrategy::Keep,
        }
    }
}

/// Kayenta's default IQR factor.
pub const DEFAULT_OUTLIER_FACTOR: f64 = 3.0;

/// Effect-size gate settings, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EffectSizeSettings {
    pub measure: EffectSizeMeasure,
    /// High needs `effect ≥ allowed_increase` (or a NaN effect).
    pub allowed_increase: f64,
    /// Low needs `effect ≤ allowed_decrease` (or a NaN effect).
    pub allowed_decrease: f64,
    /// A critical High stays critical only if `effect ≥ critical_increase`.
    pub critical_increase: f64,
    /// A critical Low stays critical only if `effect ≤ critical_decrease`.
    pub critical_decrease: f64,
}

impl EffectSizeSettings {
    /// All four thresholds at the measure's neutral value (Kayenta's default).
    pub fn neutral(measure: EffectSizeMeasure) -> Self {
        let v = measure.neutral();
        EffectSizeSettings {
            measure,
            allowed_increase: v,
            allowed_decrease: v,
            critical_increase: v,
            critical_decrease: v,
        }
    }
}

impl Default for EffectSizeSettings {
    fn default() -> Self {
        Self::neutral(EffectSizeMeasure::MeanRatio)
    }
}

/// One metric's judge settings with every default resolved: what the
/// preprocessing and the classifier read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricSettings {
    pub direction: Direction,
    pub nan_strategy: NanStrategy,
    pub outlier_strategy: OutlierStrategy,
    pub outlier_factor: f64,
    pub critical: bool,
    pub must_have_data: bool,
    pub muted: bool,
    pub effect_size: EffectSizeSettings,
}

impl Default for MetricSettings {
    fn default() -> Self {
        MetricSettings {
            direction: Direction::Either,
            nan_strategy: NanStrategy::Remove,
            outlier_strategy: OutlierStrategy::Keep,
            outlier_factor: DEFAULT_OUTLIER_FACTOR,
            critical: false,
            must_have_data: false,
            muted: false,
            effect_size: EffectSizeSettings::default(),
        }
    }
}

impl CanaryAnalysisConfig {
    /// Fills in Kayenta's defaults (see the module documentation).
    pub fn resolve(&self) -> MetricSettings {
        let es = self.effect_size.clone().unwrap_or_default();
        let measure = es
            .measure
            .as_deref()
            .and_then(EffectSizeMeasure::from_kayenta)
            .unwrap_or_default();
        let neutral = measure.neutral();
        let outliers = self.outliers.clone().unwrap_or_default();
        MetricSettings {
            direction: self
                .direction
                .as_deref()
                .map(Direction::parse_lenient)
                .unwrap_or_default(),
            nan_strategy: self
                .nan_strategy
                .as_deref()
                .map(NanStrategy::parse_lenient)
                .unwrap_or_default(),
            outlier_strategy: outliers
                .strategy
                .as_deref()
                .map(OutlierStrategy::parse_lenient)
                .unwrap_or_default(),
            outlier_factor: outliers.outlier_factor.unwrap_or(DEFAULT_OUTLIER_FACTOR),
            critical: self.critical.unwrap_or(false),
            must_have_data: self.must_have_data.unwrap_or(false),
            muted: self.muted.unwrap_or(false),
            effect_size: EffectSizeSettings {
                measure,
                allowed_increase: es.allowed_increase.unwrap_or(neutral),
                allowed_decrease: es.allowed_decrease.unwrap_or(neutral),
                critical_increase: es.critical_increase.unwrap_or(neutral),
                critical_decrease: es.critical_decrease.unwrap_or(neutral),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(json: &str) -> MetricSettings {
        let c: CanaryAnalysisConfig = serde_json::from_str(json).unwrap();
        c.resolve()
    }

    #[test]
    fn empty_block_gives_kayenta_defaults() {
        let s = settings("{}");
        assert_eq!(s, MetricSettings::default());
        assert_eq!(s.direction, Direction::Either);
        assert_eq!(s.nan_strategy, NanStrategy::Remove);
        assert_eq!(s.outlier_strategy, OutlierStrategy::Keep);
        assert_eq!(s.outlier_factor, 3.0);
        assert_eq!(s.effect_size.allowed_increase, 1.0);
    }

    #[test]
    fn unknown_strings_fall_back_to_defaults() {
        let s = settings(
            r#"{"direction":"up","nanStrategy":"drop","outliers":{"strategy":"trim"},
                "effectSize":{"measure":"cohen"}}"#,
        );
        assert_eq!(s.direction, Direction::Either);
        assert_eq!(s.nan_strategy, NanStrategy::Remove);
        assert_eq!(s.outlier_strategy, OutlierStrategy::Keep);
        assert_eq!(s.effect_size.measure, EffectSizeMeasure::MeanRatio);
        // Matching is exact, as in Kayenta.
        assert_eq!(
            settings(r#"{"direction":"Increase"}"#).direction,
            Direction::Either
        );
    }

    #[test]
    fn integers_are_accepted_where_doubles_are_expected() {
        let s = settings(
            r#"{"outliers":{"strategy":"remove","outlierFactor":2},
                "effectSize":{"allowedIncrease":2,"criticalDecrease":0}}"#,
        );
        assert_eq!(s.outlier_strategy, OutlierStrategy::Remove);
        assert_eq!(s.outlier_factor, 2.0);
        assert_eq!(s.effect_size.allowed_increase, 2.0);
        assert_eq!(s.effect_size.critical_decrease, 0.0);
        assert_eq!(s.effect_size.allowed_decrease, 1.0);
    }

    /// Kayenta `NetflixACAJudge.classifyMetric` (commit a69573be): the
    /// thresholds default to 0.5 for `"cles"` and 1.0 otherwise. `"cohenD"`
    /// is Verdict's deviation 9: Cohen's d with thresholds 0.
    #[test]
    fn cohen_d_is_selectable_by_kayentas_name() {
        let s = settings(r#"{"effectSize":{"measure":"cohenD","allowedIncrease":0.8}}"#);
        assert_eq!(s.effect_size.measure, EffectSizeMeasure::CohenD);
        assert_eq!(s.effect_size.allowed_increase, 0.8);
        assert_eq!(s.effect_size.allowed_decrease, 0.0);
        assert_eq!(s.effect_size.critical_increase, 0.0);
        assert_eq!(s.effect_size.critical_decrease, 0.0);
        // Exact spelling only, as every Kayenta string.
        let s = settings(r#"{"effectSize":{"measure":"cohen_d"}}"#);
        assert_eq!(s.effect_size.measure, EffectSizeMeasure::MeanRatio);
        assert_eq!(s.effect_size.allowed_increase, 1.0);
        let s = settings(r#"{"effectSize":{"measure":"meanRatio"}}"#);
        assert_eq!(s.effect_size, EffectSizeSettings::default());
    }

    #[test]
    fn cles_changes_the_threshold_defaults() {
        let s = settings(r#"{"effectSize":{"measure":"cles","allowedIncrease":0.7}}"#);
        assert_eq!(s.effect_size.measure, EffectSizeMeasure::Cles);
        assert_eq!(s.effect_size.allowed_increase, 0.7);
        assert_eq!(s.effect_size.allowed_decrease, 0.5);
        assert_eq!(s.effect_size.critical_increase, 0.5);
        assert_eq!(s.effect_size.critical_decrease, 0.5);
    }

    #[test]
    fn old_extensions_name_and_unknown_fields_and_nulls() {
        let m: MetricConfig = serde_json::from_str(
            r#"{"name":"cpu","query":{"type":"atlas","q":"name,CpuRawUser,:eq"},
                "groups":null,"futureField":[1,2],
                "extensions":{"canary":{"direction":"increase","critical":true}}}"#,
        )
        .unwrap();
        let s = m.settings();
        assert_eq!(s.direction, Direction::Increase);
        assert!(s.critical);
        assert!(m.groups.is_empty());
        assert_eq!(m.query.as_ref().unwrap().query_type(), Some("atlas"));
    }

    #[test]
    fn metric_without_analysis_block_gets_defaults() {
        let m: MetricConfig = serde_json::from_str(r#"{"name":"x"}"#).unwrap();
        assert_eq!(m.settings(), MetricSettings::default());
    }

    #[test]
    fn prometheus_query_round_trips_with_its_type() {
        let text = r#"{"type":"prometheus","metricName":"up","labelBindings":["job=api"]}"#;
        let q: MetricQuery = serde_json::from_str(text).unwrap();
        match &q {
            MetricQuery::Prometheus(p) => assert_eq!(p.metric_name.as_deref(), Some("up")),
            other => panic!("{other:?}"),
        }
        let back = serde_json::to_value(&q).unwrap();
        assert_eq!(back["type"], "prometheus");
        assert_eq!(back["labelBindings"][0], "job=api");
    }
}

//! A rollout controller that plays Argo Rollouts' part, as
//! `docs/controllers.md` §2 describes it: the canary strategy with **inline
//! step analysis** (`steps[].analysis`), one `AnalysisRun` per analysis step
//! and the `web` metric provider, against a real HTTP receiver.
//!
//! * [`AnalysisTemplate`] reads an AnalysisTemplate from YAML, the shipped
//!   `templates/argo/analysistemplates.yaml` in the test. Only what this
//!   driver implements is accepted: exactly one metric, the `web` provider,
//!   conditions of the form `result == "<string>"`, JSONPaths `{$}` and
//!   `{$.field...}`, Go durations in `h`, `m`, `s`, `ms`. Any other field,
//!   provider, condition or path is refused with an error naming it, so a
//!   change of the template cannot pass silently (unimplemented semantics
//!   would otherwise be ignored).
//! * [`Rollout`] runs the steps in order (§2.6): `setWeight` moves the
//!   shared [`CanaryWeight`] the load generator obeys; an `analysis` step
//!   creates an AnalysisRun when it is reached: the template's args merged
//!   with the step's (a literal `value`, a `fieldRef` into the Rollout, or
//!   `podTemplateHashValue`), secrets looked up, **resolved once** (§2.5),
//!   substituted into the JSON form of the whole metric, every `{{args.x}}`
//!   replaced by the JSON-string-escaped value, never URL-encoded. After the
//!   last step the canary gets 100 % (the rollout is promoted).
//! * Measurements (§2.2, §2.3): the first when the run is created, the next
//!   `interval` after the previous one finished, or the error-retry delay
//!   after an Error. One HTTP call each: `method` (GET by default), the
//!   `headers` in order, `body` or `jsonBody` (sent as `application/json`),
//!   the `timeoutSeconds` client timeout (10 s when unset or ≤ 0). A
//!   transport error, a timeout or a status outside 200-299 is an **Error**;
//!   the body is parsed as JSON (otherwise it is the string `result`), the
//!   `jsonPath` applied (nothing found: Error), the first match is `result`,
//!   its JSON encoding the measurement's `value`. The conditions (§2.4):
//!   neither set: Successful; only success: Successful if true, else
//!   Failed; only failure: Failed if true, else Successful; both: Failed if
//!   failure is true, Successful if only success is true, Inconclusive if
//!   neither.
//! * The metric's phase after each measurement (`analysis/analysis.go`, in
//!   that order): Failed when Failed measurements exceed `failureLimit`
//!   (default 0; -1 switches it off), Inconclusive when Inconclusive ones
//!   exceed `inconclusiveLimit` (default 0), Error when **consecutive** Errors
//!   exceed `consecutiveErrorLimit` (default 4), Successful after
//!   `consecutiveSuccessLimit` consecutive Successful ones when set; once
//!   `count` measurements are counted (Errors are not counted): Successful,
//!   or, when `consecutiveSuccessLimit` is set and was not reached,
//!   Inconclusive (with a failure limit) or Failed (`failureLimit: -1`);
//!   otherwise Running. `count` unset without `interval` is 1; unset with an
//!   `interval`, unbounded. The run's phase is its metric's.
//! * The rollout's reaction (§2.2, §2.6): Successful goes on to the next
//!   step; Failed or Error **aborts** (canary weight back to 0);
//!   Inconclusive **pauses** the rollout at the step's weight. A pause lasts
//!   until a human acts, so the driver ends the rollout there and reports
//!   it as paused.
//!
//! Departures from Argo Rollouts, none of which changes what the receiver
//! sees in a request (method, path, headers, body):
//! * the metric's `interval` and `count` are set by the test
//!   ([`AnalysisTemplate::scaled`]), and the delay before an Error is
//!   retried, 10 s in Argo (`DefaultErrorRetryInterval`), is
//!   [`RolloutSpec::error_retry`], scaled like the interval;
//! * the template URL's scheme, host and port are replaced by the test's
//!   receiver ([`AnalysisTemplate::with_origin`]); its path is kept;
//! * one TCP connection per measurement (no keep-alive pool), so a
//!   receiver replaced between measurements is reached on its new process
//!   the way a new pod behind a Service is;
//! * `deadline` bounds the rollout, since a test must end (an unbounded
//!   `count` would otherwise measure forever);
//! * no traffic router, ReplicaSets or background analysis: the weight is
//!   the load generator's split; no `initialDelay`, `dryRun`,
//!   `measurementRetention`, `authentication` or other providers (refused).

use crate::load::CanaryWeight;
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Argo's `DefaultErrorRetryInterval`.
pub const ARGO_ERROR_RETRY: Duration = Duration::from_secs(10);
/// Argo's `DefaultConsecutiveErrorLimit`.
pub const DEFAULT_CONSECUTIVE_ERROR_LIMIT: i64 = 4;
/// The web provider's default `timeoutSeconds`.
pub const DEFAULT_TIMEOUT_SECONDS: i64 = 10;

/// A template or run this driver cannot play faithfully, or an argument
/// that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

fn spec_error(text: impl Into<String>) -> SpecError {
    SpecError(text.into())
}

/// An AnalysisTemplate's declared argument.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateArg {
    pub name: String,
    #[serde(default)]
    pub value: Option<String>,
    #[serde(default)]
    pub value_from: Option<TemplateArgFrom>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateArgFrom {
    pub secret_key_ref: SecretKeyRef,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretKeyRef {
    pub name: String,
    pub key: String,
}

/// The parts of an `AnalysisTemplate` document this driver reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct TemplateDoc {
    kind: String,
    metadata: TemplateMeta,
    spec: TemplateSpecDoc,
}

#[derive(Debug, Deserialize)]
struct TemplateMeta {
    name: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateSpecDoc {
    #[serde(default)]
    args: Vec<TemplateArg>,
    metrics: Vec<Value>,
}

/// One AnalysisTemplate: its args and its one metric, still with its
/// `{{args.x}}` tags (resolved per run).
#[derive(Debug, Clone)]
pub struct AnalysisTemplate {
    pub name: String,
    pub args: Vec<TemplateArg>,
    /// The metric in JSON form, as Argo substitutes arguments into it.
    metric: Value,
}

impl AnalysisTemplate {
    /// The `AnalysisTemplate` named `name` among the YAML documents of
    /// `text`, refused if this driver does not implement all of it.
    pub fn from_yaml(text: &str, name: &str) -> Result<Self, SpecError> {
        for document in serde_yaml::Deserializer::from_str(text) {
            let value = Value::deserialize(document)
                .map_err(|e| spec_error(format!("template YAML: {e}")))?;
            if value.get("kind").and_then(Value::as_str) != Some("AnalysisTemplate")
                || value.pointer("/metadata/name").and_then(Value::as_str) != Some(name)
            {
                continue;
            }
            let doc: TemplateDoc = serde_json::from_value(value)
                .map_err(|e| spec_error(format!("AnalysisTemplate {name}: {e}")))?;
            debug_assert_eq!(doc.kind, "AnalysisTemplate");
            let [metric] = <[Value; 1]>::try_from(doc.spec.metrics).map_err(|m| {
                spec_error(format!(
                    "AnalysisTemplate {name} has {} metrics; this driver plays exactly one",
                    m.len()
                ))
            })?;
            let template = AnalysisTemplate {
                name: doc.metadata.name,
                args: doc.spec.args,
                metric,
            };
            template.check()?;
            return Ok(template);
        }
        Err(spec_error(format!("no AnalysisTemplate named {name}")))
    }

    /// Checks what does not depend on the arguments: the metric's fields,
    /// its conditions, its JSONPath.
    fn check(&self) -> Result<(), SpecError> {
        let text = self.metric.to_string();
        // Parse with placeholder arguments: every field is checked.
        let placeholder = resolve_tags(&text, &|_| Ok("x".to_string()))?;
        let spec: MetricSpec = serde_json::from_str(&placeholder)
            .map_err(|e| spec_error(format!("AnalysisTemplate {}: metric: {e}", self.name)))?;
        Metric::from_spec(spec.clone())
            .map_err(|e| spec_error(format!("AnalysisTemplate {}: metric: {e}", self.name)))?;
        for (which, cond) in [
            ("successCondition", &spec.success_condition),
            ("failureCondition", &spec.failure_condition),
        ] {
            if let Some(c) = cond {
                if c.contains("{{") {
                    return Err(spec_error(format!("{which} {c:?} takes arguments")));
                }
                Condition::parse(c).map_err(|e| {
                    spec_error(format!("AnalysisTemplate {}: {which}: {e}", self.name))
                })?;
            }
        }
        let raw: MetricSpec = serde_json::from_value(self.metric.clone()).unwrap_or(spec);
        if let Some(path) = raw.provider.web.json_path.as_deref() {
            JsonPath::parse(path).map_err(|e| {
                spec_error(format!("AnalysisTemplate {}: jsonPath: {e}", self.name))
            })?;
        }
        Ok(())
    }

    /// The metric's name.
    pub fn metric_name(&self) -> &str {
        self.metric["name"].as_str().unwrap_or("")
    }

    /// A metric field as written in the template (for the test's own
    /// checks against the shipped file).
    pub fn metric_field(&self, pointer: &str) -> Option<&Value> {
        self.metric.pointer(pointer)
    }

    /// Departure: the test's `interval` and `count` replace the template's.
    /// `count: None` keeps the template's.
    pub fn scaled(mut self, interval: Duration, count: Option<u32>) -> Self {
        self.metric["interval"] = Value::String(format!("{}ms", interval.as_millis()));
        if let Some(c) = count {
            self.metric["count"] = Value::from(c);
        }
        self
    }

    /// Departure: the URL's scheme, host and port become `origin`'s
    /// (`http://127.0.0.1:PORT`); the path and query are kept.
    pub fn with_origin(mut self, origin: &str) -> Result<Self, SpecError> {
        let url = self.metric["provider"]["web"]["url"]
            .as_str()
            .ok_or_else(|| spec_error("the web provider has no url"))?;
        let parsed = reqwest::Url::parse(url)
            .map_err(|e| spec_error(format!("template url {url:?}: {e}")))?;
        let mut new = reqwest::Url::parse(origin)
            .map_err(|e| spec_error(format!("origin {origin:?}: {e}")))?;
        new.set_path(parsed.path());
        new.set_query(parsed.query());
        self.metric["provider"]["web"]["url"] = Value::String(new.to_string());
        Ok(self)
    }

    /// The path of the web provider's URL (e.g. `/v1/argo/argo-http-service`).
    pub fn url_path(&self) -> Option<String> {
        let url = self.metric["provider"]["web"]["url"].as_str()?;
        Some(reqwest::Url::parse(url).ok()?.path().to_string())
    }
}

/// Replaces every `{{ ... }}` tag in `text` by `value(name)`, JSON-string
/// escaped (the text is JSON), as `ResolveQuotedArgs` does.
fn resolve_tags(
    text: &str,
    value: &dyn Fn(&str) -> Result<String, SpecError>,
) -> Result<String, SpecError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| spec_error(format!("unclosed tag in {text}")))?;
        let tag = after[..end].trim();
        let name = tag
            .strip_prefix("args.")
            .ok_or_else(|| spec_error(format!("tag {{{{{tag}}}}} is not an argument")))?;
        let v = value(name)?;
        let escaped = serde_json::to_string(&v).map_err(|e| spec_error(e.to_string()))?;
        out.push_str(&escaped[1..escaped.len() - 1]);
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

/// A metric after argument substitution: every field this driver plays.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct MetricSpec {
    /// Required by Argo; the driver plays one metric, so it is not needed.
    #[allow(dead_code)]
    name: String,
    #[serde(default)]
    interval: Option<String>,
    #[serde(default)]
    count: Option<Value>,
    #[serde(default)]
    success_condition: Option<String>,
    #[serde(default)]
    failure_condition: Option<String>,
    #[serde(default)]
    failure_limit: Option<Value>,
    #[serde(default)]
    inconclusive_limit: Option<Value>,
    #[serde(default)]
    consecutive_error_limit: Option<Value>,
    #[serde(default)]
    consecutive_success_limit: Option<Value>,
    provider: ProviderSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderSpec {
    web: WebSpec,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WebSpec {
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    headers: Vec<HeaderSpec>,
    #[serde(default)]
    body: Option<String>,
    #[serde(default)]
    json_body: Option<Value>,
    #[serde(default)]
    timeout_seconds: Option<i64>,
    #[serde(default)]
    json_path: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderSpec {
    key: String,
    value: String,
}

/// An Argo intstr field (a number or a numeric string).
fn int_field(field: &str, v: &Option<Value>) -> Result<Option<i64>, SpecError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| spec_error(format!("{field} {n} is not an integer"))),
        Some(Value::String(s)) => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| spec_error(format!("{field} {s:?} is not an integer"))),
        Some(other) => Err(spec_error(format!("{field} {other} is not an integer"))),
    }
}

/// A Go duration made of `h`, `m`, `s` and `ms` parts (`1m`, `1m30s`, `500ms`).
pub fn parse_go_duration(text: &str) -> Result<Duration, SpecError> {
    let bad = || spec_error(format!("duration {text:?} (this driver reads h, m, s, ms)"));
    let mut total = 0.0f64;
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(bad)?;
        let number: f64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = &rest[digits..];
        let (unit, len) = if rest.starts_with("ms") {
            (0.001, 2)
        } else if rest.starts_with('h') {
            (3600.0, 1)
        } else if rest.starts_with('m') {
            (60.0, 1)
        } else if rest.starts_with('s') {
            (1.0, 1)
        } else {
            return Err(bad());
        };
        total += number * unit;
        rest = &rest[len..];
    }
    Ok(Duration::from_secs_f64(total))
}

/// The part of expr-lang this driver implements: `result == "<string>"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    ResultEquals(String),
}

impl Condition {
    pub fn parse(text: &str) -> Result<Condition, SpecError> {
        let refuse = || {
            spec_error(format!(
                "condition {text:?}: this driver implements only `result == \"<string>\"`"
            ))
        };
        let rest = text.trim().strip_prefix("result").ok_or_else(refuse)?;
        let literal = rest
            .trim_start()
            .strip_prefix("==")
            .ok_or_else(refuse)?
            .trim();
        let inner = literal
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .ok_or_else(refuse)?;
        if inner.contains(['"', '\\']) {
            return Err(refuse());
        }
        Ok(Condition::ResultEquals(inner.to_string()))
    }

    /// expr's `==`: values of different types are not equal (no error).
    pub fn eval(&self, result: &Value) -> bool {
        match self {
            Condition::ResultEquals(s) => result.as_str() == Some(s.as_str()),
        }
    }
}

/// The Kubernetes JSONPath subset this driver implements: `{$}`, `{$.a.b}`
/// and `{.a.b}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonPath(Vec<String>);

impl JsonPath {
    pub fn parse(text: &str) -> Result<JsonPath, SpecError> {
        let refuse = || {
            spec_error(format!(
                "JSONPath {text:?}: this driver implements only {{$}} and {{$.field.field}}"
            ))
        };
        let inner = text
            .trim()
            .strip_prefix('{')
            .and_then(|t| t.strip_suffix('}'))
            .ok_or_else(refuse)?
            .trim();
        let inner = inner.strip_prefix('$').unwrap_or(inner);
        if inner.is_empty() {
            return Ok(JsonPath(Vec::new()));
        }
        let fields: Vec<String> = inner
            .strip_prefix('.')
            .ok_or_else(refuse)?
            .split('.')
            .map(str::to_string)
            .collect();
        let plain = |f: &String| {
            !f.is_empty()
                && f.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        if !fields.iter().all(plain) {
            return Err(refuse());
        }
        Ok(JsonPath(fields))
    }

    pub fn find<'a>(&self, value: &'a Value) -> Option<&'a Value> {
        self.0.iter().try_fold(value, |v, f| v.get(f.as_str()))
    }
}

/// Analysis phases (measurements, metrics and runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnalysisPhase {
    Running,
    Successful,
    Failed,
    Inconclusive,
    Error,
}

impl AnalysisPhase {
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisPhase::Running => "Running",
            AnalysisPhase::Successful => "Successful",
            AnalysisPhase::Failed => "Failed",
            AnalysisPhase::Inconclusive => "Inconclusive",
            AnalysisPhase::Error => "Error",
        }
    }

    pub fn completed(self) -> bool {
        self != AnalysisPhase::Running
    }
}

/// A resolved metric, ready to measure.
#[derive(Debug, Clone)]
struct Metric {
    interval: Option<Duration>,
    /// `None`: unbounded.
    count: Option<i64>,
    success: Option<Condition>,
    failure: Option<Condition>,
    failure_limit: i64,
    inconclusive_limit: i64,
    consecutive_error_limit: i64,
    consecutive_success_limit: Option<i64>,
    web: WebSpec,
    json_path: JsonPath,
}

impl Metric {
    fn from_spec(spec: MetricSpec) -> Result<Metric, SpecError> {
        let interval = spec
            .interval
            .as_deref()
            .filter(|i| !i.is_empty())
            .map(parse_go_duration)
            .transpose()?;
        let count = match (
            int_field("count", &spec.count)?.filter(|c| *c > 0),
            interval,
        ) {
            (Some(c), _) => Some(c),
            (None, None) => Some(1),
            (None, Some(_)) => None,
        };
        let method = spec.provider.web.method.as_deref().unwrap_or("GET");
        if !matches!(method, "GET" | "POST" | "PUT") {
            return Err(spec_error(format!("web method {method:?}")));
        }
        Ok(Metric {
            interval,
            count,
            success: spec
                .success_condition
                .as_deref()
                .map(Condition::parse)
                .transpose()?,
            failure: spec
                .failure_condition
                .as_deref()
                .map(Condition::parse)
                .transpose()?,
            failure_limit: int_field("failureLimit", &spec.failure_limit)?.unwrap_or(0),
            inconclusive_limit: int_field("inconclusiveLimit", &spec.inconclusive_limit)?
                .unwrap_or(0),
            consecutive_error_limit: int_field(
                "consecutiveErrorLimit",
                &spec.consecutive_error_limit,
            )?
            .unwrap_or(DEFAULT_CONSECUTIVE_ERROR_LIMIT),
            consecutive_success_limit: int_field(
                "consecutiveSuccessLimit",
                &spec.consecutive_success_limit,
            )?
            .filter(|l| *l > 0),
            json_path: JsonPath::parse(spec.provider.web.json_path.as_deref().unwrap_or("{$}"))?,
            web: spec.provider.web,
        })
    }

    /// §2.4's table.
    fn evaluate(&self, result: &Value) -> AnalysisPhase {
        let success = self.success.as_ref().map(|c| c.eval(result));
        let failure = self.failure.as_ref().map(|c| c.eval(result));
        match (success, failure) {
            (None, None) => AnalysisPhase::Successful,
            (Some(s), None) => {
                if s {
                    AnalysisPhase::Successful
                } else {
                    AnalysisPhase::Failed
                }
            }
            (None, Some(f)) => {
                if f {
                    AnalysisPhase::Failed
                } else {
                    AnalysisPhase::Successful
                }
            }
            (Some(s), Some(f)) => {
                if f {
                    AnalysisPhase::Failed
                } else if s {
                    AnalysisPhase::Successful
                } else {
                    AnalysisPhase::Inconclusive
                }
            }
        }
    }

    /// `assessMetricStatus`, after a completed measurement.
    fn assess(&self, c: &Counters) -> AnalysisPhase {
        if self.failure_limit >= 0 && c.failed > self.failure_limit {
            return AnalysisPhase::Failed;
        }
        if c.inconclusive > self.inconclusive_limit {
            return AnalysisPhase::Inconclusive;
        }
        if c.consecutive_error > self.consecutive_error_limit {
            return AnalysisPhase::Error;
        }
        if let Some(limit) = self.consecutive_success_limit {
            if c.consecutive_success >= limit {
                return AnalysisPhase::Successful;
            }
        }
        if self.count.is_some_and(|n| c.count >= n) {
            return match self.consecutive_success_limit {
                None => AnalysisPhase::Successful,
                Some(_) if self.failure_limit >= 0 => AnalysisPhase::Inconclusive,
                Some(_) => AnalysisPhase::Failed,
            };
        }
        AnalysisPhase::Running
    }
}

/// A metric's counters (`MetricResult`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    /// Measurements that were not Errors.
    pub count: i64,
    pub successful: i64,
    pub failed: i64,
    pub inconclusive: i64,
    pub error: i64,
    pub consecutive_error: i64,
    pub consecutive_success: i64,
}

impl Counters {
    fn add(&mut self, phase: AnalysisPhase) {
        match phase {
            AnalysisPhase::Successful => {
                self.successful += 1;
                self.count += 1;
                self.consecutive_error = 0;
                self.consecutive_success += 1;
            }
            AnalysisPhase::Failed => {
                self.failed += 1;
                self.count += 1;
                self.consecutive_error = 0;
                self.consecutive_success = 0;
            }
            AnalysisPhase::Inconclusive => {
                self.inconclusive += 1;
                self.count += 1;
                self.consecutive_error = 0;
                self.consecutive_success = 0;
            }
            AnalysisPhase::Error => {
                self.error += 1;
                self.consecutive_error += 1;
                self.consecutive_success = 0;
            }
            AnalysisPhase::Running => {}
        }
    }
}

/// Where an analysis step's argument value comes from (`AnalysisRunArgument`).
#[derive(Debug, Clone)]
pub enum ArgValue {
    /// `value: "25"`.
    Value(String),
    /// `valueFrom.fieldRef.fieldPath`: `metadata.name` or `metadata.namespace`.
    FieldRef(String),
    /// `valueFrom.podTemplateHashValue: Latest`.
    LatestHash,
    /// `valueFrom.podTemplateHashValue: Stable`.
    StableHash,
}

/// One entry of `strategy.canary.steps`.
#[derive(Debug, Clone)]
pub enum Step {
    SetWeight(u32),
    Analysis {
        template: AnalysisTemplate,
        args: Vec<(String, ArgValue)>,
    },
}

/// The parts of a Rollout object the driver needs.
#[derive(Debug, Clone)]
pub struct RolloutSpec {
    pub name: String,
    pub namespace: String,
    /// The new ReplicaSet's `rollouts-pod-template-hash`.
    pub canary_hash: String,
    /// The stable ReplicaSet's.
    pub stable_hash: String,
    pub steps: Vec<Step>,
    /// Secrets of the namespace: `(name, key)` to value.
    pub secrets: BTreeMap<(String, String), String>,
    /// Delay before an Error measurement is retried (Argo: 10 s).
    pub error_retry: Duration,
    /// The test's bound on the whole rollout.
    pub deadline: Duration,
}

/// One measurement.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// Unix seconds when it started and finished.
    pub started: f64,
    pub finished: f64,
    pub phase: AnalysisPhase,
    /// The JSON encoding of `result` (Argo's `measurement.value`).
    pub value: Option<String>,
    /// Argo's `measurement.message` (set on Error).
    pub message: String,
    /// For the timeline only: the HTTP status and the receiver's `look`
    /// and `reason` fields when it sent them.
    pub status: Option<u16>,
    pub look: Option<u64>,
    pub reason: Option<String>,
}

/// One AnalysisRun.
#[derive(Debug, Clone)]
pub struct AnalysisRun {
    /// Index of its step in `steps`.
    pub step: usize,
    /// The canary weight while it ran.
    pub weight: u32,
    pub name: String,
    /// The resolved arguments, secrets redacted.
    pub args: BTreeMap<String, String>,
    pub started: f64,
    pub phase: AnalysisPhase,
    pub counters: Counters,
    pub measurements: Vec<Measurement>,
}

/// How the rollout ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every step passed; the canary has 100 %.
    Promoted,
    /// An analysis run of `step` was Failed or Error: weight back to 0.
    Aborted { step: usize, phase: AnalysisPhase },
    /// An analysis run of `step` was Inconclusive: paused at its weight.
    Paused { step: usize, weight: u32 },
    /// The test's deadline passed during `step`.
    TimedOut { step: usize },
    /// A run could not be created (argument resolution), which Argo
    /// reports as an Error run: aborted.
    Invalid { step: usize, error: String },
}

/// The whole rollout, for assertions and the CI log.
#[derive(Debug, Clone)]
pub struct Report {
    pub rollout: String,
    pub outcome: Outcome,
    pub started: f64,
    pub runs: Vec<AnalysisRun>,
    /// `(unix seconds, weight)` each time traffic moved, from 0 at the start.
    pub weights: Vec<(f64, u32)>,
}

impl Report {
    /// Every measurement with its run.
    pub fn measurements(&self) -> impl Iterator<Item = (&AnalysisRun, &Measurement)> {
        self.runs
            .iter()
            .flat_map(|r| r.measurements.iter().map(move |m| (r, m)))
    }

    /// The highest weight the canary reached.
    pub fn max_weight(&self) -> u32 {
        self.weights.iter().map(|(_, w)| *w).max().unwrap_or(0)
    }

    /// The canary weight in force at unix time `t`.
    pub fn weight_at(&self, t: f64) -> u32 {
        self.weights
            .iter()
            .take_while(|(at, _)| *at <= t)
            .last()
            .map_or(0, |(_, w)| *w)
    }

    /// A readable timeline: the steps, each run's measurements and phase,
    /// times relative to the rollout's start.
    pub fn timeline(&self) -> String {
        let t0 = self.started;
        let mut out = format!("argo rollout of {}: {:?}\n", self.rollout, self.outcome);
        for (at, w) in &self.weights {
            let run = self
                .runs
                .iter()
                .find(|r| r.weight == *w && r.started >= *at);
            out.push_str(&format!("  {:>6.1}s  setWeight {w}\n", at - t0));
            let Some(run) = run else { continue };
            out.push_str(&format!(
                "  {:>6.1}s  step {} AnalysisRun {} (weight arg {:?})\n",
                run.started - t0,
                run.step,
                run.name,
                run.args.get("weight").map_or("-", String::as_str)
            ));
            for (i, m) in run.measurements.iter().enumerate() {
                let status = m.status.map_or("-".to_string(), |s| s.to_string());
                let look = m.look.map_or(String::new(), |l| format!("look {l} "));
                let text = if m.message.is_empty() {
                    m.reason.clone().unwrap_or_default()
                } else {
                    m.message.clone()
                };
                let text: String = text.chars().take(110).collect();
                out.push_str(&format!(
                    "  {:>6.1}s    #{:<2} {:<12} {:<14} {status:>3} {:>4} ms  {look}{text}\n",
                    m.started - t0,
                    i + 1,
                    m.phase.as_str(),
                    m.value.as_deref().unwrap_or("-"),
                    ((m.finished - m.started) * 1000.0).round()
                ));
            }
            let c = run.counters;
            out.push_str(&format!(
                "  {:>6}   run {}: {} (successful {}, inconclusive {}, failed {}, error {})\n",
                "",
                run.name,
                run.phase.as_str(),
                c.successful,
                c.inconclusive,
                c.failed,
                c.error
            ));
        }
        out
    }
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// A Rollout's canary update in progress.
pub struct Rollout {
    spec: RolloutSpec,
    traffic: Arc<CanaryWeight>,
    client: reqwest::Client,
    weight: u32,
    weights: Vec<(f64, u32)>,
}

impl Rollout {
    /// A new revision: the canary at weight 0.
    pub fn new(spec: RolloutSpec, traffic: Arc<CanaryWeight>) -> Result<Self, reqwest::Error> {
        traffic.set(0);
        verdict::tls::install_crypto_provider();
        Ok(Rollout {
            spec,
            traffic,
            client: reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()?,
            weight: 0,
            weights: vec![(unix_now(), 0)],
        })
    }

    fn set_weight(&mut self, weight: u32) {
        self.weight = weight;
        self.traffic.set(weight);
        self.weights.push((unix_now(), weight));
    }

    /// Runs the steps until promoted, aborted, paused or the deadline.
    pub async fn run(mut self) -> Report {
        let started = unix_now();
        let deadline = Instant::now() + self.spec.deadline;
        let mut runs = Vec::new();
        let mut outcome = Outcome::Promoted;
        let steps = self.spec.steps.clone();
        for (index, step) in steps.iter().enumerate() {
            match step {
                Step::SetWeight(w) => self.set_weight(*w),
                Step::Analysis { template, args } => {
                    let name = format!("{}-{}-{}", self.spec.name, self.spec.canary_hash, index);
                    let (metric, resolved) = match self.create_run(template, args) {
                        Ok(r) => r,
                        Err(e) => {
                            outcome = Outcome::Invalid {
                                step: index,
                                error: e.0,
                            };
                            break;
                        }
                    };
                    let mut run = AnalysisRun {
                        step: index,
                        weight: self.weight,
                        name,
                        args: resolved,
                        started: unix_now(),
                        phase: AnalysisPhase::Running,
                        counters: Counters::default(),
                        measurements: Vec::new(),
                    };
                    self.measure_run(&metric, &mut run, deadline).await;
                    let phase = run.phase;
                    runs.push(run);
                    match phase {
                        AnalysisPhase::Successful => {}
                        AnalysisPhase::Failed | AnalysisPhase::Error => {
                            self.set_weight(0);
                            outcome = Outcome::Aborted { step: index, phase };
                            break;
                        }
                        AnalysisPhase::Inconclusive => {
                            outcome = Outcome::Paused {
                                step: index,
                                weight: self.weight,
                            };
                            break;
                        }
                        AnalysisPhase::Running => {
                            outcome = Outcome::TimedOut { step: index };
                            break;
                        }
                    }
                }
            }
        }
        if outcome == Outcome::Promoted {
            self.set_weight(100);
        }
        Report {
            rollout: format!("{}.{}", self.spec.name, self.spec.namespace),
            outcome,
            started,
            runs,
            weights: self.weights,
        }
    }

    /// Merges the template's args with the step's, resolves them once
    /// (§2.5) and substitutes them into the metric. Returns the metric and
    /// the arguments (secrets redacted).
    fn create_run(
        &self,
        template: &AnalysisTemplate,
        step_args: &[(String, ArgValue)],
    ) -> Result<(Metric, BTreeMap<String, String>), SpecError> {
        let mut values: BTreeMap<String, Option<String>> = BTreeMap::new();
        let mut shown = BTreeMap::new();
        for arg in &template.args {
            let value = match (&arg.value, &arg.value_from) {
                (Some(_), Some(_)) => {
                    return Err(spec_error(format!(
                        "arg {} has both Value and ValueFrom fields",
                        arg.name
                    )))
                }
                (Some(v), None) => Some(v.clone()),
                (None, Some(from)) => {
                    let r = &from.secret_key_ref;
                    let v = self
                        .spec
                        .secrets
                        .get(&(r.name.clone(), r.key.clone()))
                        .ok_or_else(|| {
                            spec_error(format!("secret {} key {} not found", r.name, r.key))
                        })?;
                    shown.insert(arg.name.clone(), "*****".to_string());
                    Some(v.clone())
                }
                (None, None) => None,
            };
            values.insert(arg.name.clone(), value);
        }
        for (name, from) in step_args {
            let slot = values.get_mut(name).ok_or_else(|| {
                spec_error(format!(
                    "argument {name} is not declared by template {}",
                    template.name
                ))
            })?;
            let v = match from {
                ArgValue::Value(v) => v.clone(),
                ArgValue::FieldRef(path) => match path.as_str() {
                    "metadata.name" => self.spec.name.clone(),
                    "metadata.namespace" => self.spec.namespace.clone(),
                    other => return Err(spec_error(format!("fieldRef {other} not played"))),
                },
                ArgValue::LatestHash => self.spec.canary_hash.clone(),
                ArgValue::StableHash => self.spec.stable_hash.clone(),
            };
            *slot = Some(v);
        }
        for (name, v) in &values {
            match v {
                None => return Err(spec_error(format!("args.{name} was not resolved"))),
                Some(v) => {
                    shown.entry(name.clone()).or_insert_with(|| v.clone());
                }
            }
        }
        let text = resolve_tags(&template.metric.to_string(), &|name| {
            values
                .get(name)
                .cloned()
                .flatten()
                .ok_or_else(|| spec_error(format!("failed to resolve {{{{args.{name}}}}}")))
        })?;
        let spec: MetricSpec =
            serde_json::from_str(&text).map_err(|e| spec_error(format!("metric: {e}")))?;
        Ok((Metric::from_spec(spec)?, shown))
    }

    /// Measures until the metric (and so the run) completes or the deadline.
    async fn measure_run(&self, metric: &Metric, run: &mut AnalysisRun, deadline: Instant) {
        loop {
            let m = self.measure(metric).await;
            run.counters.add(m.phase);
            let wait = if m.phase == AnalysisPhase::Error {
                self.spec.error_retry
            } else {
                metric.interval.unwrap_or(self.spec.error_retry)
            };
            run.measurements.push(m);
            run.phase = metric.assess(&run.counters);
            if run.phase.completed() {
                return;
            }
            // The next measurement is due `wait` after this one finished.
            let due = Instant::now() + wait;
            if due > deadline {
                return;
            }
            tokio::time::sleep_until(due.into()).await;
        }
    }

    /// One measurement with the web provider (§2.3).
    async fn measure(&self, metric: &Metric) -> Measurement {
        let started = unix_now();
        let mut m = Measurement {
            started,
            finished: started,
            phase: AnalysisPhase::Error,
            value: None,
            message: String::new(),
            status: None,
            look: None,
            reason: None,
        };
        match self.call(metric).await {
            Err(message) => m.message = message,
            Ok((status, body)) => {
                m.status = Some(status);
                let parsed: Option<Value> = serde_json::from_str(&body).ok();
                if let Some(v) = &parsed {
                    m.look = v.get("look").and_then(Value::as_u64);
                    m.reason = v.get("reason").and_then(Value::as_str).map(str::to_string);
                }
                if !(200..300).contains(&status) {
                    m.message = format!(
                        "received non 2xx response code: {status}: {}",
                        body.lines().next().unwrap_or("")
                    );
                } else {
                    let result = match &parsed {
                        Some(v) => metric.json_path.find(v).cloned(),
                        None => Some(Value::String(body.clone())),
                    };
                    match result {
                        None => {
                            m.message = format!(
                                "Could not find JSONPath in body: {}",
                                metric.web.json_path.as_deref().unwrap_or("{$}")
                            )
                        }
                        Some(result) => {
                            m.value = Some(result.to_string());
                            m.phase = metric.evaluate(&result);
                        }
                    }
                }
            }
        }
        m.finished = unix_now();
        m
    }

    /// The HTTP request: status and body, or the transport error.
    async fn call(&self, metric: &Metric) -> Result<(u16, String), String> {
        let web = &metric.web;
        let method = web.method.as_deref().unwrap_or("GET");
        let has_body = web.body.is_some() || web.json_body.is_some();
        if (web.body.is_some() && web.json_body.is_some()) || (method == "GET" && has_body) {
            return Err("use either body or jsonBody, and only with POST or PUT".into());
        }
        let timeout = match web.timeout_seconds {
            Some(s) if s > 0 => s,
            _ => DEFAULT_TIMEOUT_SECONDS,
        };
        let method = reqwest::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
        let mut headers = reqwest::header::HeaderMap::new();
        if web.json_body.is_some() {
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            );
        }
        for h in &web.headers {
            let name = reqwest::header::HeaderName::from_bytes(h.key.as_bytes())
                .map_err(|e| format!("header {}: {e}", h.key))?;
            let value = reqwest::header::HeaderValue::from_str(&h.value)
                .map_err(|e| format!("header {}: {e}", h.key))?;
            headers.insert(name, value);
        }
        let mut request = self
            .client
            .request(method, &web.url)
            .timeout(Duration::from_secs(timeout as u64))
            .headers(headers);
        if let Some(body) = &web.json_body {
            request = request.body(body.to_string());
        } else if let Some(body) = &web.body {
            request = request.body(body.clone());
        }
        let response = request.send().await.map_err(|e| {
            if e.is_timeout() {
                format!("timed out after {timeout} s")
            } else {
                format!("{e}: {:?}", std::error::Error::source(&e))
            }
        })?;
        let status = response.status().as_u16();
        let body = response
            .text()
            .await
            .map_err(|e| format!("reading the body: {e}"))?;
        Ok((status, body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_beyond_string_equality_are_refused() {
        assert_eq!(
            Condition::parse(r#"result == "promote""#),
            Ok(Condition::ResultEquals("promote".into()))
        );
        for text in [
            r#"result != "promote""#,
            "result >= 0.05",
            r#"result.decision == "promote""#,
            r#"result == "promote" || result == "continue""#,
            r#"asFloat(result) > 1"#,
        ] {
            assert!(Condition::parse(text).is_err(), "{text}");
        }
        assert!(!Condition::ResultEquals("promote".into()).eval(&Value::from(1)));
    }

    #[test]
    fn json_paths_and_durations() {
        let v: Value = serde_json::json!({"decision":"abort","a":{"b":2}});
        assert_eq!(
            JsonPath::parse("{$.decision}").unwrap().find(&v),
            Some(&Value::from("abort"))
        );
        assert_eq!(
            JsonPath::parse("{.a.b}").unwrap().find(&v),
            Some(&Value::from(2))
        );
        assert_eq!(JsonPath::parse("{$}").unwrap().find(&v), Some(&v));
        assert!(JsonPath::parse("{$.metrics[0]}").is_err());
        assert_eq!(JsonPath::parse("{$.missing}").unwrap().find(&v), None);
        assert_eq!(parse_go_duration("1m").unwrap(), Duration::from_secs(60));
        assert_eq!(parse_go_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(
            parse_go_duration("250ms").unwrap(),
            Duration::from_millis(250)
        );
        assert!(parse_go_duration("1d").is_err());
    }

    #[test]
    fn tags_are_json_escaped_and_must_resolve() {
        let text = r#"{"u":"http://x/{{args.a}}?q={{ args.b }}"}"#;
        let out = resolve_tags(text, &|n| {
            Ok(if n == "a" { "p\"q".into() } else { "1".into() })
        })
        .unwrap();
        assert_eq!(out, r#"{"u":"http://x/p\"q?q=1"}"#);
        assert!(resolve_tags("{{secrets.x}}", &|_| Ok(String::new())).is_err());
    }

    fn metric(extra: Value) -> Metric {
        let mut m = serde_json::json!({
            "name": "m", "interval": "1s", "count": 5,
            "successCondition": "result == \"promote\"",
            "failureCondition": "result == \"abort\"",
            "provider": {"web": {"url": "http://x/"}}
        });
        for (k, v) in extra.as_object().unwrap() {
            m[k] = v.clone();
        }
        Metric::from_spec(serde_json::from_value(m).unwrap()).unwrap()
    }

    #[test]
    fn assessment_follows_argo() {
        let m = metric(serde_json::json!({"failureLimit": 0, "inconclusiveLimit": 4}));
        let mut c = Counters::default();
        for _ in 0..4 {
            c.add(m.evaluate(&Value::from("continue")));
            assert_eq!(m.assess(&c), AnalysisPhase::Running);
        }
        let mut five = c;
        five.add(AnalysisPhase::Inconclusive);
        assert_eq!(m.assess(&five), AnalysisPhase::Inconclusive);
        c.add(m.evaluate(&Value::from("promote")));
        assert_eq!(m.assess(&c), AnalysisPhase::Successful);
        let mut f = Counters::default();
        f.add(m.evaluate(&Value::from("abort")));
        assert_eq!(m.assess(&f), AnalysisPhase::Failed);
        // Errors are not counted; the fifth in a row errors the metric.
        let mut e = Counters::default();
        for i in 0..5 {
            e.add(AnalysisPhase::Error);
            let want = if i < 4 {
                AnalysisPhase::Running
            } else {
                AnalysisPhase::Error
            };
            assert_eq!(m.assess(&e), want);
        }
        assert_eq!(e.count, 0);
        let s = metric(serde_json::json!({"consecutiveSuccessLimit": 2, "inconclusiveLimit": 9}));
        let mut c = Counters::default();
        c.add(AnalysisPhase::Successful);
        assert_eq!(s.assess(&c), AnalysisPhase::Running);
        c.add(AnalysisPhase::Successful);
        assert_eq!(s.assess(&c), AnalysisPhase::Successful);
        let mut c = Counters::default();
        for _ in 0..5 {
            c.add(AnalysisPhase::Inconclusive);
        }
        assert_eq!(s.assess(&c), AnalysisPhase::Inconclusive);
    }
}

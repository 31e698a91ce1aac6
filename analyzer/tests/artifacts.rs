//! The deployment artifacts agree with the daemon and with the controllers.
//!
//! * Every Flagger `Canary` and Argo `AnalysisTemplate`,
//!   `ClusterAnalysisTemplate` and `Rollout` under `templates/` validates
//!   against the real CRD schema of its kind and version
//!   (`fixtures/crds/`, or `VERDICT_CRDS_DIR`).
//! * Every webhook URL is a route Verdict serves, names an analysis the
//!   shipped configs define, and supplies every variable its queries use
//!   (checked with the daemon's own payload and argument parsers).
//! * Every analysis config under `templates/analysis/` and the k8s
//!   ConfigMap's config load with `verdict::config::load_str`.
//! * Grafana dashboards use only metric names Verdict exports.
//! * Basic Kubernetes checks of `k8s/`.

use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use verdict::api::flagger::{FlaggerWebhook, HookType};
use verdict::config::{self, Config};

/// Where the Service in `k8s/base` is reached from other namespaces.
const SERVICE_URL: &str = "http://verdict.verdict.svc:8080";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn crds_dir() -> PathBuf {
    match std::env::var_os("VERDICT_CRDS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => repo().join("fixtures/crds"),
    }
}

/// Every file under `dir` (recursively) whose name ends with one of `exts`.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if exts
                .iter()
                .any(|ext| path.extension().and_then(|e| e.to_str()) == Some(*ext))
            {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The non-empty documents of a YAML stream, as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = read(path);
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc).unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()))
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("")
}

fn id(doc: &Value) -> String {
    format!("{} {}", str_at(doc, "/kind"), str_at(doc, "/metadata/name"))
}

// ---------------------------------------------------------------------------
// A structural validator for the parts of openAPIV3Schema that CRDs use.

/// Appends to `errors` every way `value` breaks `schema`. Objects with
/// declared `properties` reject unknown fields (as `kubectl apply` does with
/// strict field validation) unless `x-kubernetes-preserve-unknown-fields` or
/// `additionalProperties` allow them. `pattern`, `format` and `anyOf` are
/// not checked.
fn validate(schema: &Value, value: &Value, path: &str, errors: &mut Vec<String>) {
    if schema.get("x-kubernetes-int-or-string") == Some(&Value::Bool(true)) {
        if !(value.is_i64() || value.is_u64() || value.is_string()) {
            errors.push(format!("{path}: want integer or string, got {value}"));
        }
        return;
    }
    let preserve = schema.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true));
    if let Some(ty) = schema.get("type").and_then(Value::as_str) {
        let ok = match ty {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            _ => true,
        };
        if !ok {
            errors.push(format!("{path}: want {ty}, got {value}"));
            return;
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !allowed.contains(value) {
            errors.push(format!("{path}: {value} is not one of {allowed:?}"));
        }
    }
    if let Some(object) = value.as_object() {
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for key in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(key) {
                    errors.push(format!("{path}: missing required field {key:?}"));
                }
            }
        }
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, child) in object {
            let at = format!("{path}.{key}");
            match (properties.and_then(|p| p.get(key)), additional) {
                (Some(sub), _) => validate(sub, child, &at, errors),
                (None, Some(Value::Bool(false))) => {
                    errors.push(format!("{at}: unknown field"));
                }
                (None, Some(sub @ Value::Object(_))) => validate(sub, child, &at, errors),
                (None, _) if preserve => {}
                (None, _) if properties.is_some_and(|p| !p.is_empty()) => {
                    errors.push(format!("{at}: unknown field"));
                }
                (None, _) => {}
            }
        }
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, child) in array.iter().enumerate() {
            validate(items, child, &format!("{path}[{i}]"), errors);
        }
    }
}

/// The served schemas of every CRD under the CRD directory, by
/// (`group/version`, kind).
fn crd_schemas() -> BTreeMap<(String, String), Value> {
    let dir = crds_dir();
    assert!(
        dir.is_dir(),
        "CRD directory {} is missing (set VERDICT_CRDS_DIR)",
        dir.display()
    );
    let mut schemas = BTreeMap::new();
    for file in files(&dir, &["yaml", "yml"]) {
        for doc in yaml_docs(&file) {
            if str_at(&doc, "/kind") != "CustomResourceDefinition" {
                continue;
            }
            let group = str_at(&doc, "/spec/group");
            let kind = str_at(&doc, "/spec/names/kind");
            for version in doc["spec"]["versions"].as_array().expect("versions") {
                if version["served"] != Value::Bool(true) {
                    continue;
                }
                let schema = version
                    .pointer("/schema/openAPIV3Schema")
                    .unwrap_or_else(|| panic!("{kind}: no schema"))
                    .clone();
                let api = format!("{group}/{}", str_at(version, "/name"));
                schemas.insert((api, kind.to_string()), schema);
            }
        }
    }
    schemas
}

#[test]
fn validator_rejects_what_the_api_server_would() {
    let schema: Value = serde_json::json!({
        "type": "object",
        "required": ["name"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string", "enum": ["rollout", "rollback"]},
            "count": {"x-kubernetes-int-or-string": true, "anyOf": [{"type": "integer"}, {"type": "string"}]},
            "labels": {"type": "object", "additionalProperties": {"type": "string"}},
            "body": {"type": "object", "x-kubernetes-preserve-unknown-fields": true},
            "list": {"type": "array", "items": {"type": "integer"}}
        }
    });
    let check = |v: Value| {
        let mut errors = Vec::new();
        validate(&schema, &v, "", &mut errors);
        errors
    };
    assert!(check(serde_json::json!({"name": "a", "type": "rollout", "count": "5", "labels": {"a": "b"}, "body": {"x": [1]}, "list": [1, 2]})).is_empty());
    assert!(check(serde_json::json!({"name": "a", "count": 5})).is_empty());
    for bad in [
        serde_json::json!({}),
        serde_json::json!({"name": 1}),
        serde_json::json!({"name": "a", "type": "roll"}),
        serde_json::json!({"name": "a", "count": 1.5}),
        serde_json::json!({"name": "a", "labels": {"a": 1}}),
        serde_json::json!({"name": "a", "list": ["x"]}),
        serde_json::json!({"name": "a", "typo": true}),
    ] {
        assert!(!check(bad.clone()).is_empty(), "accepted {bad}");
    }
}

// ---------------------------------------------------------------------------
// Templates.

/// Every Kubernetes object under `templates/flagger` and `templates/argo`.
fn template_objects() -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for sub in ["flagger", "argo"] {
        for file in files(&repo().join("templates").join(sub), &["yaml", "yml"]) {
            for doc in yaml_docs(&file) {
                out.push((file.clone(), doc));
            }
        }
    }
    assert!(!out.is_empty(), "no templates found");
    out
}

#[test]
fn templates_validate_against_the_controllers_crds() {
    let schemas = crd_schemas();
    let mut kinds = BTreeSet::new();
    let mut problems = Vec::new();
    for (file, doc) in template_objects() {
        let api = str_at(&doc, "/apiVersion").to_string();
        let kind = str_at(&doc, "/kind").to_string();
        assert!(
            !str_at(&doc, "/metadata/name").is_empty(),
            "{}: {kind} without a name",
            file.display()
        );
        let Some(schema) = schemas.get(&(api.clone(), kind.clone())) else {
            problems.push(format!(
                "{}: no served CRD for {api} {kind}",
                file.display()
            ));
            continue;
        };
        let mut errors = Vec::new();
        validate(schema, &doc, "", &mut errors);
        for e in errors {
            problems.push(format!("{}: {}: {e}", file.display(), id(&doc)));
        }
        kinds.insert(kind);
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for kind in [
        "Canary",
        "AnalysisTemplate",
        "ClusterAnalysisTemplate",
        "Rollout",
    ] {
        assert!(kinds.contains(kind), "no {kind} template");
    }
}

/// The analysis configs shipped: the ConfigMap's and `templates/analysis/`.
fn shipped_configs() -> Vec<(PathBuf, Config)> {
    let mut out = vec![(repo().join("k8s/base/configmap.yaml"), configmap_config())];
    for file in files(&repo().join("templates/analysis"), &["yaml", "yml"]) {
        let config =
            config::load_str(&file, &read(&file), Vec::new()).unwrap_or_else(|e| panic!("{e}"));
        out.push((file, config));
    }
    out
}

fn configmap_config() -> Config {
    let file = repo().join("k8s/base/configmap.yaml");
    let docs = yaml_docs(&file);
    let text = docs
        .iter()
        .find(|d| str_at(d, "/kind") == "ConfigMap")
        .and_then(|d| d.pointer("/data/verdict.yaml"))
        .and_then(Value::as_str)
        .expect("ConfigMap with data.verdict.yaml");
    // The path only names the config in messages; no file is read.
    config::load_str(Path::new("/etc/verdict/verdict.yaml"), text, Vec::new())
        .unwrap_or_else(|e| panic!("{}: embedded config: {e}", file.display()))
}

#[test]
fn analysis_templates_and_the_configmap_config_load() {
    let configs = shipped_configs();
    assert!(
        configs.len() >= 3,
        "expected the ConfigMap and two templates"
    );
    for (file, config) in &configs {
        assert!(
            !config.analyses.is_empty(),
            "{}: no analyses",
            file.display()
        );
    }
    let cm = configmap_config();
    assert_eq!(cm.settings.listen, "0.0.0.0:8080");
    // The ConfigMap ships the same HTTP analysis as the template.
    let template = &configs
        .iter()
        .find(|(f, _)| f.ends_with("templates/analysis/http-service.yaml"))
        .expect("templates/analysis/http-service.yaml")
        .1;
    assert_eq!(
        format!("{:?}", cm.settings.analyses["http-service"]),
        format!("{:?}", template.settings.analyses["http-service"]),
        "http-service differs between k8s/base/configmap.yaml and templates/analysis"
    );
    let ml = configs
        .iter()
        .flat_map(|(_, c)| c.analyses.values())
        .find(|a| a.name == "ml-model")
        .expect("an ml-model analysis");
    let accuracy = ml
        .metrics
        .iter()
        .find(|m| m.config.name == "accuracy")
        .expect("accuracy metric");
    assert_eq!(accuracy.config.kind.as_str(), "counter");
    assert!(accuracy.config.margin > 0.0);
}

/// Renders every query of `analysis` with `vars`, as a look would.
fn check_queries(config: &Config, analysis: &str, vars: &BTreeMap<String, String>) -> Vec<String> {
    let analysis = &config.analyses[analysis];
    let mut errors = Vec::new();
    for metric in &analysis.metrics {
        for queries in [&metric.canary, &metric.baseline] {
            for template in queries.templates() {
                if let Err(e) = template.render(vars) {
                    errors.push(format!(
                        "{}: metric {}: {e}",
                        analysis.name, metric.config.name
                    ));
                }
            }
        }
    }
    errors
}

/// Replaces every `{{args.X}}` with a plausible value of argument X.
fn resolve_args(text: &str) -> String {
    let mut out = text.to_string();
    for (name, value) in [
        ("namespace", "shop"),
        ("rollout", "checkout"),
        ("canary-hash", "6b8f9c7d4"),
        ("stable-hash", "5d7c4b8f9"),
        ("weight", "25"),
    ] {
        out = out.replace(&format!("{{{{args.{name}}}}}"), value);
    }
    // An undeclared argument stays as it is and is reported by the caller.
    out
}

#[test]
fn webhook_urls_are_routes_of_shipped_analyses() {
    let configs = shipped_configs();
    let find = |name: &str| {
        configs
            .iter()
            .find(|(_, c)| c.analyses.contains_key(name))
            .map(|(_, c)| c)
    };
    let mut problems = Vec::new();
    let mut hooks_seen = BTreeSet::new();
    let mut argo_urls = 0;
    for (file, doc) in template_objects() {
        let at = format!("{}: {}", file.display(), id(&doc));
        match str_at(&doc, "/kind") {
            "Canary" => {
                let hooks = doc
                    .pointer("/spec/analysis/webhooks")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for hook in hooks {
                    let url = str_at(&hook, "/url");
                    let ty = str_at(&hook, "/type");
                    let Some(path) = url.strip_prefix(SERVICE_URL) else {
                        problems.push(format!("{at}: {url} is not {SERVICE_URL}/..."));
                        continue;
                    };
                    let parts: Vec<&str> = path.split('/').collect();
                    let ["", "v1", "flagger", analysis, hook_type] = parts[..] else {
                        problems.push(format!("{at}: {url} is not /v1/flagger/<analysis>/<hook>"));
                        continue;
                    };
                    if HookType::parse(hook_type).is_none() || hook_type != ty {
                        problems.push(format!(
                            "{at}: {url}: hook {hook_type:?} for a {ty:?} webhook"
                        ));
                    }
                    let timeout = str_at(&hook, "/timeout");
                    if !(timeout.ends_with('s') || timeout.ends_with('m'))
                        || !timeout[..timeout.len() - 1]
                            .chars()
                            .all(|c| c.is_ascii_digit())
                        || timeout.len() < 2
                    {
                        problems.push(format!("{at}: {url}: timeout {timeout:?}"));
                    }
                    hooks_seen.insert(ty.to_string());
                    let Some(config) = find(analysis) else {
                        problems.push(format!(
                            "{at}: {url}: no shipped config defines {analysis:?}"
                        ));
                        continue;
                    };
                    // The variables a delivery carries, from Flagger's payload.
                    let mut payload = serde_json::json!({
                        "name": str_at(&doc, "/metadata/name"),
                        "namespace": str_at(&doc, "/metadata/namespace"),
                        "phase": "Progressing",
                        "checksum": "85d557f47b",
                    });
                    if let Some(metadata) = hook.get("metadata") {
                        payload["metadata"] = metadata.clone();
                    }
                    match FlaggerWebhook::parse(payload.to_string().as_bytes()) {
                        Ok(webhook) => problems.extend(
                            check_queries(config, analysis, &webhook.vars())
                                .into_iter()
                                .map(|e| format!("{at}: {url}: {e}")),
                        ),
                        Err(e) => problems.push(format!("{at}: payload refused: {}", e.message)),
                    }
                }
            }
            "AnalysisTemplate" | "ClusterAnalysisTemplate" => {
                let declared: BTreeSet<&str> = doc
                    .pointer("/spec/args")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|a| str_at(a, "/name"))
                    .collect();
                for metric in doc["spec"]["metrics"].as_array().expect("metrics") {
                    let Some(web) = metric.pointer("/provider/web") else {
                        continue;
                    };
                    argo_urls += 1;
                    let url = str_at(web, "/url");
                    if str_at(web, "/jsonPath") != "{$.decision}"
                        || str_at(metric, "/successCondition") != "result == \"promote\""
                        || str_at(metric, "/failureCondition") != "result == \"abort\""
                    {
                        problems.push(format!("{at}: conditions must read $.decision"));
                    }
                    let Some(rest) = url.strip_prefix(SERVICE_URL) else {
                        problems.push(format!("{at}: {url} is not {SERVICE_URL}/..."));
                        continue;
                    };
                    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
                    let parts: Vec<&str> = path.split('/').collect();
                    let ["", "v1", "argo", analysis] = parts[..] else {
                        problems.push(format!("{at}: {url} is not /v1/argo/<analysis>"));
                        continue;
                    };
                    let Some(config) = find(analysis) else {
                        problems.push(format!(
                            "{at}: {url}: no shipped config defines {analysis:?}"
                        ));
                        continue;
                    };
                    // Every {{args.X}} refers to a declared argument.
                    let whole = metric.to_string();
                    for piece in whole.split("{{args.").skip(1) {
                        let name = piece.split("}}").next().unwrap_or("");
                        if !declared.contains(name) {
                            problems.push(format!("{at}: {{{{args.{name}}}}} is not declared"));
                        }
                    }
                    // The arguments as Argo would send them, through the
                    // daemon's own parsing.
                    let body = web
                        .get("jsonBody")
                        .map(|b| resolve_args(&b.to_string()))
                        .unwrap_or_default();
                    let query = resolve_args(query);
                    let parsed = verdict::api::argo::arguments(
                        (!query.is_empty()).then_some(query.as_str()),
                        body.as_bytes(),
                    )
                    .and_then(|args| verdict::api::argo::identify(&args));
                    match parsed {
                        Ok((_, vars)) => problems.extend(
                            check_queries(config, analysis, &vars)
                                .into_iter()
                                .map(|e| format!("{at}: {url}: {e}")),
                        ),
                        Err(e) => problems.push(format!("{at}: arguments refused: {}", e.message)),
                    }
                }
            }
            _ => {}
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    for ty in [
        "pre-rollout",
        "rollout",
        "confirm-traffic-increase",
        "confirm-promotion",
        "rollback",
        "event",
        "post-rollout",
    ] {
        assert!(
            hooks_seen.contains(ty),
            "no {ty} webhook in templates/flagger"
        );
    }
    assert!(argo_urls > 0, "no web provider in templates/argo");
}

#[test]
fn rollouts_pass_every_argument_their_templates_need() {
    let objects = template_objects();
    let template = |name: &str, cluster: bool| {
        let kind = if cluster {
            "ClusterAnalysisTemplate"
        } else {
            "AnalysisTemplate"
        };
        objects
            .iter()
            .map(|(_, d)| d)
            .find(|d| str_at(d, "/kind") == kind && str_at(d, "/metadata/name") == name)
    };
    let mut problems = Vec::new();
    let mut references = 0;
    for (file, doc) in objects
        .iter()
        .filter(|(_, d)| str_at(d, "/kind") == "Rollout")
    {
        let strategy = &doc["spec"]["strategy"];
        let mut refs: Vec<&Value> = Vec::new();
        refs.extend(strategy.pointer("/canary/analysis"));
        refs.extend(strategy.pointer("/blueGreen/prePromotionAnalysis"));
        refs.extend(strategy.pointer("/blueGreen/postPromotionAnalysis"));
        for step in strategy
            .pointer("/canary/steps")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            refs.extend(step.get("analysis"));
        }
        for analysis in refs {
            let given: BTreeSet<&str> = analysis["args"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|a| str_at(a, "/name"))
                .collect();
            for t in analysis["templates"].as_array().expect("templates") {
                references += 1;
                let name = str_at(t, "/templateName");
                let cluster = t["clusterScope"] == Value::Bool(true);
                let Some(tmpl) = template(name, cluster) else {
                    problems.push(format!("{}: template {name} not shipped", file.display()));
                    continue;
                };
                for arg in tmpl["spec"]["args"].as_array().into_iter().flatten() {
                    let arg_name = str_at(arg, "/name");
                    if arg.get("value").is_none()
                        && arg.get("valueFrom").is_none()
                        && !given.contains(arg_name)
                    {
                        problems.push(format!(
                            "{}: {name} needs argument {arg_name}",
                            file.display()
                        ));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(
        references >= 4,
        "expected step, background, pre- and post-promotion"
    );
}

// ---------------------------------------------------------------------------
// Grafana.

/// The metric names Verdict exports. Vector metrics appear in the
/// exposition only once they have a label value, so give each one.
fn exported_metric_names() -> BTreeSet<String> {
    use verdict::telemetry::{FlaggerEventType, Reload, Telemetry};
    let t = Telemetry::new();
    let d = std::time::Duration::from_millis(100);
    let promote = verdict_judges::decision::Decision {
        action: verdict_judges::decision::Action::Promote,
        score: 100.0,
        ..verdict_judges::decision::Decision::inconclusive("")
    };
    t.record_look("a", "r", &promote, d);
    t.judged(d);
    t.observe_query("m", d, true);
    t.duplicate_delivery();
    t.http_request("/r", axum::http::StatusCode::OK, d);
    t.flagger_event(FlaggerEventType::Normal);
    t.config_reloaded(Reload::Success);
    let names: BTreeSet<String> = t
        .render()
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_whitespace().next())
        .map(str::to_string)
        .collect();
    assert!(names.len() >= 11, "telemetry exported only {names:?}");
    names
}

/// PromQL strings of a dashboard: panel targets and variable queries.
fn promql(value: &Value, key: Option<&str>, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                promql(v, Some(k), out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| promql(v, key, out)),
        Value::String(s) if matches!(key, Some("expr" | "query" | "definition")) => {
            out.push(s.clone())
        }
        _ => {}
    }
}

fn verdict_names(expr: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = expr.as_bytes();
    let mut i = 0;
    while let Some(found) = expr[i..].find("verdict_") {
        let start = i + found;
        let boundary = start == 0 || {
            let c = bytes[start - 1];
            !(c.is_ascii_alphanumeric() || c == b'_' || c == b':')
        };
        let end = expr[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
            .map_or(expr.len(), |e| start + e);
        if boundary {
            names.push(expr[start..end].to_string());
        }
        i = end;
    }
    names
}

#[test]
fn dashboards_use_only_exported_metrics() {
    let exported = exported_metric_names();
    let dashboards = files(&repo().join("grafana"), &["json"]);
    assert!(dashboards.len() >= 2, "expected two dashboards");
    let mut problems = Vec::new();
    for file in dashboards {
        let dashboard: Value = serde_json::from_str(&read(&file))
            .unwrap_or_else(|e| panic!("{}: not JSON: {e}", file.display()));
        assert!(dashboard["title"].is_string() && dashboard["panels"].is_array());
        let mut exprs = Vec::new();
        promql(&dashboard, None, &mut exprs);
        let mut used = 0;
        for expr in &exprs {
            for name in verdict_names(expr) {
                used += 1;
                let base = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|s| name.strip_suffix(s).filter(|b| exported.contains(*b)))
                    .unwrap_or(&name);
                if !exported.contains(base) {
                    problems.push(format!("{}: {name} is not exported", file.display()));
                }
            }
        }
        assert!(used > 0, "{}: no verdict_* metric used", file.display());
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn metric_name_scanner_finds_names() {
    assert_eq!(
        verdict_names("sum(rate(verdict_looks_total{a=\"verdict_x\"}[1m])) / my_verdict_y"),
        vec!["verdict_looks_total", "verdict_x"]
    );
}

// ---------------------------------------------------------------------------
// Kubernetes manifests.

fn k8s_objects(dir: &str) -> Vec<(PathBuf, Value)> {
    let mut out = Vec::new();
    for file in files(&repo().join(dir), &["yaml", "yml"]) {
        // The chart's templates are not YAML until rendered (see the Helm
        // chart tests below).
        if file.starts_with(repo().join(CHART)) {
            continue;
        }
        for doc in yaml_docs(&file) {
            out.push((file.clone(), doc));
        }
    }
    out
}

#[test]
fn k8s_objects_are_well_formed() {
    let objects = k8s_objects("k8s");
    let mut problems = Vec::new();
    for (file, doc) in &objects {
        let is_kustomization = file.file_name().is_some_and(|n| n == "kustomization.yaml");
        if str_at(doc, "/apiVersion").is_empty() || str_at(doc, "/kind").is_empty() {
            problems.push(format!("{}: apiVersion or kind missing", file.display()));
        }
        if !is_kustomization && str_at(doc, "/metadata/name").is_empty() {
            problems.push(format!("{}: metadata.name missing", file.display()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // The base lists every manifest next to it.
    let base = repo().join("k8s/base");
    let kustomization = yaml_docs(&base.join("kustomization.yaml")).remove(0);
    let listed: BTreeSet<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for file in files(&base, &["yaml"]) {
        let name = file.file_name().unwrap().to_str().unwrap();
        if name != "kustomization.yaml" {
            assert!(
                listed.contains(name),
                "k8s/base/{name} not in kustomization"
            );
        }
    }
    assert_eq!(str_at(&kustomization, "/namespace"), "verdict");

    let kinds: BTreeSet<&str> = objects.iter().map(|(_, d)| str_at(d, "/kind")).collect();
    for kind in [
        "Deployment",
        "Service",
        "ConfigMap",
        "ServiceMonitor",
        "PodDisruptionBudget",
        "NetworkPolicy",
    ] {
        assert!(kinds.contains(kind), "no {kind} in k8s/");
    }
}

#[test]
fn deployment_is_probed_and_locked_down() {
    assert_deployment_probed_and_locked_down(&k8s_objects("k8s/base"), &configmap_config());
}

/// The Deployment among `objects` (from `k8s/base` or a rendered chart) is
/// probed, locked down, reads its config and token where they are mounted,
/// and is reached at [`SERVICE_URL`] through a NetworkPolicy that admits only
/// the controllers and Prometheus; `config` is the config it is given.
fn assert_deployment_probed_and_locked_down(objects: &[(PathBuf, Value)], config: &Config) {
    let deployment = &objects
        .iter()
        .find(|(_, d)| str_at(d, "/kind") == "Deployment")
        .expect("Deployment")
        .1;
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], Value::Bool(true));
    assert_eq!(
        str_at(pod, "/securityContext/seccompProfile/type"),
        "RuntimeDefault"
    );
    let container = &pod["containers"][0];
    assert_eq!(str_at(container, "/livenessProbe/httpGet/path"), "/healthz");
    assert_eq!(str_at(container, "/readinessProbe/httpGet/path"), "/readyz");
    let sc = &container["securityContext"];
    assert_eq!(sc["runAsNonRoot"], Value::Bool(true));
    assert_eq!(sc["readOnlyRootFilesystem"], Value::Bool(true));
    assert_eq!(sc["allowPrivilegeEscalation"], Value::Bool(false));
    assert_eq!(sc["capabilities"]["drop"], serde_json::json!(["ALL"]));
    assert!(container["resources"]["requests"].is_object());
    assert!(container["resources"]["limits"]["memory"].is_string());
    assert_eq!(
        container["args"],
        serde_json::json!(["serve", "--config", "/etc/verdict/verdict.yaml"])
    );
    assert!(str_at(container, "/image").starts_with("ghcr.io/verdict/verdict:"));

    // The config and token files the daemon reads are mounted where it looks.
    let mounts: BTreeMap<&str, &str> = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .map(|m| (str_at(m, "/name"), str_at(m, "/mountPath")))
        .collect();
    let volume = |name: &str| {
        pod["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .find(|v| str_at(v, "/name") == name)
            .unwrap_or_else(|| panic!("volume {name}"))
    };
    assert_eq!(mounts["config"], "/etc/verdict");
    assert_eq!(
        str_at(volume("config"), "/configMap/name"),
        "verdict-config"
    );
    let token_env = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .find(|e| str_at(e, "/name") == "VERDICT_PROMETHEUS__BEARER_TOKEN_FILE")
        .expect("bearer token env");
    let token_path = str_at(token_env, "/value");
    let token_volume = volume("prometheus-token");
    assert!(token_volume["secret"]["secretName"].is_string());
    assert_eq!(
        token_path,
        format!(
            "{}/{}",
            mounts["prometheus-token"],
            str_at(token_volume, "/secret/items/0/path")
        )
    );

    // The Service, the container port and the config agree on 8080, and
    // SERVICE_URL (used by every template) names this Service.
    let service = &objects
        .iter()
        .find(|(_, d)| str_at(d, "/kind") == "Service")
        .expect("Service")
        .1;
    assert_eq!(str_at(service, "/metadata/name"), "verdict");
    assert_eq!(service["spec"]["ports"][0]["port"], 8080);
    assert_eq!(container["ports"][0]["containerPort"], 8080);
    assert!(SERVICE_URL.starts_with("http://verdict.verdict.svc:8080"));
    assert!(config.settings.listen.ends_with(":8080"));

    // Ingress only from the controllers and Prometheus.
    let policy = &objects
        .iter()
        .find(|(_, d)| str_at(d, "/kind") == "NetworkPolicy")
        .expect("NetworkPolicy")
        .1;
    let namespaces: BTreeSet<&str> = policy["spec"]["ingress"]
        .as_array()
        .expect("ingress")
        .iter()
        .flat_map(|rule| rule["from"].as_array().into_iter().flatten())
        .map(|peer| {
            str_at(
                peer,
                "/namespaceSelector/matchLabels/kubernetes.io~1metadata.name",
            )
        })
        .collect();
    assert_eq!(
        namespaces,
        BTreeSet::from(["flagger-system", "argo-rollouts", "monitoring"])
    );
}

#[test]
fn overlays_set_their_replicas() {
    for (overlay, replicas) in [("sqlite", 1), ("postgres", 3)] {
        let file = repo().join(format!("k8s/overlays/{overlay}/kustomization.yaml"));
        let doc = yaml_docs(&file).remove(0);
        assert_eq!(doc["resources"], serde_json::json!(["../../base"]));
        assert_eq!(doc["replicas"][0]["count"], replicas, "{overlay}");
    }
}

/// Renders each overlay with `kubectl kustomize` when kubectl is installed
/// (skipped otherwise: it is not a build dependency).
#[test]
fn overlays_render_with_kustomize() {
    let probe = std::process::Command::new("kubectl")
        .args(["version", "--client"])
        .output();
    if !probe.is_ok_and(|o| o.status.success()) {
        eprintln!("kubectl not found: skipping the kustomize render");
        return;
    }
    for (overlay, replicas) in [("sqlite", 1), ("postgres", 3)] {
        let dir = repo().join(format!("k8s/overlays/{overlay}"));
        let out = std::process::Command::new("kubectl")
            .arg("kustomize")
            .arg(&dir)
            .output()
            .expect("kubectl kustomize");
        assert!(
            out.status.success(),
            "{overlay}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("UTF-8");
        let docs: Vec<Value> = serde_yaml::Deserializer::from_str(&text)
            .map(|d| Value::deserialize(d).expect("rendered YAML"))
            .collect();
        for doc in &docs {
            if str_at(doc, "/kind") != "Namespace" {
                assert_eq!(str_at(doc, "/metadata/namespace"), "verdict", "{}", id(doc));
            }
        }
        let deployment = docs
            .iter()
            .find(|d| str_at(d, "/kind") == "Deployment")
            .expect("Deployment");
        assert_eq!(deployment["spec"]["replicas"], replicas, "{overlay}");
        // The Service still selects the Deployment's pods after labelling.
        let service = docs
            .iter()
            .find(|d| str_at(d, "/kind") == "Service")
            .expect("Service");
        let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
            .as_object()
            .expect("pod labels");
        for (k, v) in service["spec"]["selector"].as_object().expect("selector") {
            assert_eq!(pod_labels.get(k), Some(v), "{overlay}: selector {k}");
        }
    }
}

// ---------------------------------------------------------------------------
// Helm chart (k8s/helm/verdict), rendered by Helm's own engine.

const CHART: &str = "k8s/helm/verdict";

/// Renders the chart as `helm template verdict CHART -n verdict -f ...`
/// would, through `scripts/helm_template.py` (Helm's Go SDK from PyPI's
/// helm-python-sdk, installed by `scripts/install-test-deps.sh`): values
/// merged over the defaults, checked against `values.schema.json`, then
/// every template rendered. `Err` carries Helm's message.
fn helm_template(values: &[PathBuf]) -> Result<Vec<(PathBuf, Value)>, String> {
    let mut command = std::process::Command::new("python3");
    command
        .arg(repo().join("scripts/helm_template.py"))
        .arg(repo().join(CHART))
        .args(["--name", "verdict", "--namespace", "verdict"]);
    for file in values {
        command.arg("-f").arg(file);
    }
    let out = command
        .output()
        .unwrap_or_else(|e| panic!("python3 (needed to render the Helm chart): {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
    match out.status.code() {
        Some(0) => {}
        // Not a property of the chart: the engine is missing. Fail loudly.
        Some(3) => panic!("{stderr}"),
        _ => return Err(stderr),
    }
    let text = String::from_utf8(out.stdout).expect("UTF-8 manifests");
    let mut objects = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc = Value::deserialize(doc).map_err(|e| format!("rendered YAML: {e}"))?;
        if !doc.is_null() {
            let source = PathBuf::from(CHART).join(id(&doc));
            objects.push((source, doc));
        }
    }
    Ok(objects)
}

/// The values files shipped beside the chart's defaults.
fn chart_values_files() -> Vec<PathBuf> {
    let files: Vec<PathBuf> = files(&repo().join(CHART), &["yaml"])
        .into_iter()
        .filter(|f| {
            f.parent() == Some(repo().join(CHART).as_path())
                && f.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("values-"))
        })
        .collect();
    let names: BTreeSet<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        BTreeSet::from(["values-postgres.yaml".into(), "values-sqlite.yaml".into()])
    );
    files
}

fn object<'a>(objects: &'a [(PathBuf, Value)], kind: &str) -> Option<&'a Value> {
    objects
        .iter()
        .map(|(_, d)| d)
        .find(|d| str_at(d, "/kind") == kind)
}

/// The config in the rendered ConfigMap, loaded as the daemon loads it.
fn rendered_config(objects: &[(PathBuf, Value)], what: &str) -> Config {
    let text = object(objects, "ConfigMap")
        .and_then(|d| d.pointer("/data/verdict.yaml"))
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{what}: no ConfigMap with data.verdict.yaml"));
    config::load_str(Path::new("/etc/verdict/verdict.yaml"), text, Vec::new())
        .unwrap_or_else(|e| panic!("{what}: rendered config: {e}"))
}

/// Every selector of the chart's Service, PodDisruptionBudget,
/// NetworkPolicy, ServiceMonitor and spread constraints picks the
/// Deployment's pods.
fn assert_selectors_match_pods(objects: &[(PathBuf, Value)], what: &str) {
    let deployment = object(objects, "Deployment").expect("Deployment");
    let pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        .as_object()
        .expect("pod labels");
    let mut selectors = vec![
        ("Deployment", &deployment["spec"]["selector"]["matchLabels"]),
        (
            "Service",
            &object(objects, "Service").expect("Service")["spec"]["selector"],
        ),
    ];
    for (kind, pointer) in [
        ("PodDisruptionBudget", "/spec/selector/matchLabels"),
        ("NetworkPolicy", "/spec/podSelector/matchLabels"),
        ("ServiceMonitor", "/spec/selector/matchLabels"),
    ] {
        let found = object(objects, kind).unwrap_or_else(|| panic!("{what}: no {kind}"));
        selectors.push((kind, found.pointer(pointer).expect("selector")));
    }
    for constraint in deployment["spec"]["template"]["spec"]["topologySpreadConstraints"]
        .as_array()
        .into_iter()
        .flatten()
    {
        selectors.push((
            "topologySpreadConstraints",
            &constraint["labelSelector"]["matchLabels"],
        ));
    }
    for (kind, selector) in selectors {
        let selector = selector
            .as_object()
            .unwrap_or_else(|| panic!("{what}: {kind}: empty selector"));
        assert!(!selector.is_empty(), "{what}: {kind}: empty selector");
        for (k, v) in selector {
            assert_eq!(
                pod_labels.get(k),
                Some(v),
                "{what}: {kind} selects {k}={v}, pods lack it"
            );
        }
    }
    // The ServiceMonitor scrapes the Service's port by name.
    let service_port = str_at(object(objects, "Service").unwrap(), "/spec/ports/0/name");
    let monitor = object(objects, "ServiceMonitor").unwrap();
    assert_eq!(str_at(monitor, "/spec/endpoints/0/port"), service_port);
    assert_eq!(str_at(monitor, "/spec/endpoints/0/path"), "/metrics");
}

#[test]
fn helm_chart_renders_every_values_file_into_the_base_objects() {
    let base_config = configmap_config();
    let mut renders = vec![("values.yaml (defaults)".to_string(), Vec::new())];
    for file in chart_values_files() {
        renders.push((file.display().to_string(), vec![file]));
    }
    for (what, values) in renders {
        let objects = helm_template(&values).unwrap_or_else(|e| panic!("{what}: {e}"));
        let kinds: BTreeSet<&str> = objects.iter().map(|(_, d)| str_at(d, "/kind")).collect();
        for kind in [
            "ServiceAccount",
            "ConfigMap",
            "Deployment",
            "Service",
            "ServiceMonitor",
            "PodDisruptionBudget",
            "NetworkPolicy",
        ] {
            assert!(kinds.contains(kind), "{what}: no {kind}");
        }
        for (_, doc) in &objects {
            assert!(
                !str_at(doc, "/apiVersion").is_empty(),
                "{what}: {}: no apiVersion",
                id(doc)
            );
            assert!(
                !str_at(doc, "/metadata/name").is_empty(),
                "{what}: {}: no name",
                id(doc)
            );
            assert_eq!(
                str_at(doc, "/metadata/namespace"),
                "verdict",
                "{what}: {}",
                id(doc)
            );
        }
        let config = rendered_config(&objects, &what);
        // The same checks as k8s/base: probes, lock-down, mounts, Service URL,
        // NetworkPolicy.
        assert_deployment_probed_and_locked_down(&objects, &config);
        assert_selectors_match_pods(&objects, &what);
        // values.yaml carries the kustomize ConfigMap's config.
        assert_eq!(
            format!("{:?}", config.settings.analyses),
            format!("{:?}", base_config.settings.analyses),
            "{what}: the chart's analyses differ from k8s/base/configmap.yaml"
        );
        assert_eq!(
            config.settings.prometheus.url,
            base_config.settings.prometheus.url
        );
    }
}

#[test]
fn helm_chart_sqlite_and_postgres_values_shape_the_deployment() {
    let chart = repo().join(CHART);
    let sqlite = helm_template(&[chart.join("values-sqlite.yaml")]).expect("sqlite values");
    let deployment = object(&sqlite, "Deployment").unwrap();
    assert_eq!(deployment["spec"]["replicas"], 1);
    // A ReadWriteOnce volume cannot roll: the old pod must go first.
    assert_eq!(str_at(deployment, "/spec/strategy/type"), "Recreate");
    let claim = object(&sqlite, "PersistentVolumeClaim").expect("sqlite: a PersistentVolumeClaim");
    let pod = &deployment["spec"]["template"]["spec"];
    let data = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v.get("persistentVolumeClaim").is_some())
        .expect("sqlite: a volume from the claim");
    assert_eq!(
        str_at(data, "/persistentVolumeClaim/claimName"),
        str_at(claim, "/metadata/name")
    );
    let mount = pod["containers"][0]["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| str_at(m, "/name") == str_at(data, "/name"))
        .expect("sqlite: the claim is mounted");
    assert_eq!(str_at(mount, "/mountPath"), "/var/lib/verdict");
    assert_ne!(
        mount["readOnly"],
        Value::Bool(true),
        "the store must be writable"
    );
    assert_eq!(
        object(&sqlite, "PodDisruptionBudget").unwrap()["spec"]["minAvailable"],
        1
    );

    let postgres = helm_template(&[chart.join("values-postgres.yaml")]).expect("postgres values");
    assert!(object(&postgres, "PersistentVolumeClaim").is_none());
    let deployment = object(&postgres, "Deployment").unwrap();
    let replicas = deployment["spec"]["replicas"].as_u64().expect("replicas");
    assert!(replicas >= 2, "postgres: {replicas} replicas");
    let pdb = object(&postgres, "PodDisruptionBudget").unwrap();
    let min_available = pdb["spec"]["minAvailable"].as_u64().expect("minAvailable");
    assert!(
        min_available < replicas,
        "postgres: a PDB of {min_available} of {replicas} replicas blocks every drain"
    );
    assert_ne!(str_at(deployment, "/spec/strategy/type"), "Recreate");
    // The URL comes from a Secret, never from values or the ConfigMap.
    let env = deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap();
    let url = env
        .iter()
        .find(|e| e.pointer("/valueFrom/secretKeyRef").is_some())
        .expect("postgres: an env variable from a Secret");
    assert!(str_at(url, "/name").starts_with("VERDICT_"));
    assert_eq!(
        str_at(url, "/valueFrom/secretKeyRef/name"),
        "verdict-postgres"
    );
    assert_eq!(str_at(url, "/valueFrom/secretKeyRef/key"), "url");
    let configmap = serde_json::to_string(object(&postgres, "ConfigMap").unwrap()).unwrap();
    assert!(
        !configmap.contains("postgres://"),
        "a database URL in the ConfigMap"
    );
}

#[test]
fn helm_chart_refuses_bad_values() {
    let dir = std::env::temp_dir().join(format!("verdict-chart-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for (name, values, expected) in [
        // values.schema.json: unknown keys and wrong types.
        ("typo", "replicaCont: 2\n", "replicaCont"),
        ("type", "replicaCount: \"3\"\n", "replicaCount"),
        ("secret", "postgresUrl: {secretName: db}\n", "postgresUrl"),
        // The template's own guard: the container port and config.listen agree.
        ("port", "containerPort: 9090\n", "containerPort 9090"),
    ] {
        let file = dir.join(format!("{name}.yaml"));
        std::fs::write(&file, values).unwrap();
        match helm_template(&[file]) {
            Ok(_) => panic!("{name}: rendered {values:?}"),
            Err(message) => assert!(
                message.contains(expected),
                "{name}: message does not name {expected:?}: {message}"
            ),
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

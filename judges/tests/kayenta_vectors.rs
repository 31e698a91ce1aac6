//! Every case of `shared/reference/kayenta_vectors.json`, iterated generically
//! per section, plus the example canary configs under `fixtures/kayenta/`.
mod common;

use common::{assert_close, load, num, nums};
use serde_json::Value;
use std::collections::BTreeMap;
use verdict_judges::effect_size::{cles, mean_ratio};
use verdict_judges::kayenta::classifier::Label;
use verdict_judges::kayenta::config::CanaryConfig;
use verdict_judges::kayenta::preprocess::{
    describe, iqr_outliers, ksigma_outliers, percentile_r7, remove_flagged, remove_nans,
    replace_nans,
};
use verdict_judges::kayenta::scorer::{score, ScoreThresholds, ScoredMetric};

fn section(name: &str) -> Vec<Value> {
    let all = load("kayenta_vectors.json");
    let cases = all[name]
        .as_array()
        .unwrap_or_else(|| panic!("no section {name}"))
        .clone();
    assert!(!cases.is_empty(), "section {name} is empty");
    cases
}

fn name(case: &Value) -> String {
    case["name"].as_str().unwrap_or("?").to_string()
}

/// `assert_tolerance` as a number, or `default` when absent.
fn tolerance(case: &Value, default: f64) -> f64 {
    match case.get("assert_tolerance") {
        Some(Value::Number(n)) => n.as_f64().unwrap(),
        _ => default,
    }
}

fn assert_abs(what: &str, actual: f64, expected: f64, tol: f64) {
    if expected.is_nan() {
        assert!(actual.is_nan(), "{what}: got {actual}, expected NaN");
        return;
    }
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: got {actual}, expected {expected} (abs tol {tol})"
    );
}

#[test]
fn effect_sizes() {
    for case in section("effect_sizes") {
        let control = nums(&case["control"]);
        let experiment = nums(&case["experiment"]);
        let measure = case["measure"].as_str().unwrap();
        let actual = if measure == "cles" {
            cles(&experiment, &control)
        } else {
            assert!(measure.starts_with("meanRatio"), "{measure}");
            mean_ratio(&experiment, &control)
        };
        let tol = tolerance(&case, 1e-12);
        assert_abs(&name(&case), actual, num(&case["expected"]), tol);
    }
}

#[test]
fn descriptive_statistics() {
    for case in section("descriptive_statistics") {
        let d = describe(&nums(&case["values"]));
        let e = &case["expected"];
        let std_tol = case["assert_tolerance"]["std"].as_f64().unwrap_or(1e-12);
        let n = name(&case);
        assert_eq!(d.count as u64, e["count"].as_u64().unwrap(), "{n} count");
        assert_abs(&format!("{n} min"), d.min, num(&e["min"]), 1e-12);
        assert_abs(&format!("{n} max"), d.max, num(&e["max"]), 1e-12);
        assert_abs(&format!("{n} mean"), d.mean, num(&e["mean"]), 1e-12);
        assert_abs(&format!("{n} std"), d.std, num(&e["std"]), std_tol);
    }
}

#[test]
fn percentiles_r7() {
    for case in section("percentiles_r7") {
        let values = nums(&case["values"]);
        let tol = tolerance(&case, 1e-9);
        for (p, expected) in case["expected"].as_object().unwrap() {
            let p: f64 = p.parse().unwrap();
            let actual = percentile_r7(&values, p);
            assert_abs(&format!("{} P{p}", name(&case)), actual, num(expected), tol);
        }
    }
}

#[test]
fn outlier_detectors() {
    for case in section("outlier_detectors") {
        let values = nums(&case["values"]);
        let det = &case["detector"];
        let mask = match det["type"].as_str().unwrap() {
            "ksigma" => ksigma_outliers(&values, num(&det["k"])),
            "iqr" => iqr_outliers(
                &values,
                num(&det["factor"]),
                det["reduce_sensitivity"].as_bool().unwrap_or(false),
            ),
            other => panic!("unknown detector {other}"),
        };
        let indices: Vec<u64> = mask
            .iter()
            .enumerate()
            .filter(|(_, &o)| o)
            .map(|(i, _)| i as u64)
            .collect();
        let expected: Vec<u64> = case["expected_outlier_indices"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert_eq!(indices, expected, "{}", name(&case));
    }
}

#[test]
fn transforms() {
    for case in section("transforms") {
        let values = nums(&case["values"]);
        let op = case["op"].as_str().unwrap();
        let actual = if op == "removeNaNs" {
            remove_nans(&values)
        } else if let Some(rest) = op.strip_prefix("replaceNaNs(") {
            let with: f64 = rest.trim_end_matches(')').parse().unwrap();
            replace_nans(&values, with)
        } else if let Some(rest) = op.strip_prefix("removeOutliers(IQR factor ") {
            let factor: f64 = rest.trim_end_matches(')').parse().unwrap();
            remove_flagged(&values, &iqr_outliers(&values, factor, false))
        } else if let Some(rest) = op.strip_prefix("removeOutliers(KSigma k ") {
            let k: f64 = rest.trim_end_matches(')').parse().unwrap();
            remove_flagged(&values, &ksigma_outliers(&values, k))
        } else {
            panic!("unknown transform {op}");
        };
        assert_eq!(actual, nums(&case["expected"]), "{}", name(&case));
    }
}

fn scored_metrics(case: &Value) -> Vec<ScoredMetric> {
    case["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .map(|(i, m)| ScoredMetric {
            name: m["name"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("metric-{i}")),
            label: Label::from_kayenta(m["classification"].as_str().unwrap())
                .expect("Kayenta label"),
            critical: m["critical"].as_bool().unwrap_or(false),
            muted: m["muted"].as_bool().unwrap_or(false),
            groups: m["groups"]
                .as_array()
                .unwrap()
                .iter()
                .map(|g| g.as_str().unwrap().to_string())
                .collect(),
            reason: None,
        })
        .collect()
}

#[test]
fn scorer() {
    for case in section("scorer") {
        let weights: BTreeMap<String, f64> = case["group_weights"]
            .as_object()
            .map(|o| o.iter().map(|(k, v)| (k.clone(), num(v))).collect())
            .unwrap_or_default();
        let thresholds = case
            .get("thresholds")
            .map(|t| ScoreThresholds {
                pass: num(&t["pass"]),
                marginal: num(&t["marginal"]),
            })
            .unwrap_or(ScoreThresholds {
                pass: 95.0,
                marginal: 75.0,
            });
        let result = score(&scored_metrics(&case), &weights, thresholds);
        let e = &case["expected"];
        let n = name(&case);
        // Exact: Kayenta rounds to 2 decimals and so do we.
        assert_eq!(result.score, num(&e["summary_score"]), "{n} summary");
        if let Some(groups) = e["group_scores"].as_object() {
            for (g, expected) in groups {
                let actual = result
                    .group_scores
                    .iter()
                    .find(|s| &s.name == g)
                    .unwrap_or_else(|| panic!("{n}: no group {g}"));
                assert_close(
                    &format!("{n} group {g}"),
                    actual.score,
                    num(expected),
                    1e-12,
                );
            }
        }
        if let Some(c) = e.get("classification").and_then(Value::as_str) {
            assert_eq!(format!("{:?}", result.classification), c, "{n}");
        }
    }
}

#[test]
fn example_configs_parse() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kayenta");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).expect("fixtures/kayenta") {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("json") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let config =
            CanaryConfig::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!config.name.is_empty(), "{}", path.display());
        assert!(!config.metrics.is_empty(), "{}", path.display());
        for m in &config.metrics {
            let s = m.settings();
            assert!(s.outlier_factor > 0.0);
            assert!(!m.groups.is_empty(), "{} {}", path.display(), m.name);
        }
        // Round trip: what we write, we read back identically.
        let back = serde_json::to_string(&config).unwrap();
        assert_eq!(CanaryConfig::from_json(&back).unwrap(), config);
        seen += 1;
    }
    assert!(seen >= 2, "expected at least two example configs");
}

#[test]
fn example_configs_resolve_as_kayenta_would() {
    use verdict_judges::effect_size::EffectSizeMeasure;
    use verdict_judges::kayenta::config::{Direction, MetricQuery, NanStrategy, OutlierStrategy};
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/kayenta");
    let read =
        |f: &str| CanaryConfig::from_json(&std::fs::read_to_string(dir.join(f)).unwrap()).unwrap();

    let golden = read("checkout-golden-signals.json");
    assert_eq!(golden.judge.as_ref().unwrap().name, "NetflixACAJudge-v1.0");
    assert_eq!(golden.classifier.group_weights["errors"], 60.0);
    let errors = golden.metrics[0].settings();
    assert!(errors.critical);
    assert_eq!(errors.direction, Direction::Increase);
    assert_eq!(errors.nan_strategy, NanStrategy::Replace);
    assert_eq!(errors.effect_size.allowed_increase, 1.1);
    assert_eq!(errors.effect_size.critical_increase, 3.0);
    assert_eq!(errors.effect_size.allowed_decrease, 1.0);
    let latency = golden.metrics[1].settings();
    assert!(latency.must_have_data);
    assert_eq!(latency.outlier_strategy, OutlierStrategy::Remove);
    assert_eq!(latency.effect_size.measure, EffectSizeMeasure::Cles);
    assert_eq!(latency.effect_size.allowed_decrease, 0.5);
    assert!(matches!(
        golden.metrics[1].query,
        Some(MetricQuery::Prometheus(_))
    ));

    let legacy = read("api-gateway-legacy.json");
    assert_eq!(legacy.created_timestamp, Some(1_700_000_000_000));
    let success = legacy.metrics[0].settings();
    assert_eq!(success.direction, Direction::Decrease);
    assert!(success.critical && success.must_have_data);
    assert_eq!(success.effect_size.critical_decrease, 0.0);
    let upstream = legacy.metrics[1].settings();
    assert_eq!(
        upstream.direction,
        Direction::Either,
        "unknown string → either"
    );
    assert_eq!(
        legacy.metrics[1].query.as_ref().unwrap().query_type(),
        Some("atlas")
    );
    assert!(legacy.metrics[2].settings().muted);
    assert_eq!(legacy.classifier.score_thresholds.unwrap().pass, 95.0);
}

//! The CLI contracts of `verdict stats`, `verdict judge` and `verdict config
//! check`, run through the real binary: shapes, exit codes, and the
//! reference vectors end to end.

// The reference-vector loader of the judges' tests, shared rather than copied.
#[path = "../../judges/tests/common/mod.rs"]
mod common;

use serde_json::{json, Value};
use std::io::Write;
use std::process::{Command, Output, Stdio};

fn verdict(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_verdict"))
        .args(args)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run verdict");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stats(request: &Value) -> Value {
    let out = verdict(&["stats"], &request.to_string());
    assert!(
        out.status.success(),
        "stats failed for {request}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stats prints JSON")
}

fn alt(params: &Value) -> String {
    params["alternative"].as_str().unwrap().replace('.', "-")
}

#[test]
fn stats_mann_whitney_matches_every_reference_case() {
    for case in common::stat_cases("hodges_lehmann_wilcox_conf_int") {
        let (x, y) = (
            common::sample(&case["inputs"], "x"),
            common::sample(&case["inputs"], "y"),
        );
        let p = &case["params"];
        let out = stats(&json!({
            "test": "mann-whitney", "x": x, "y": y, "alternative": alt(p),
            "use_continuity": p["correct"], "conf_level": p["conf_level"],
        }));
        let e = &case["expected"];
        let name = case["name"].as_str().unwrap();
        assert_eq!(out["u_statistic"].as_f64(), e["W"].as_f64(), "{name}");
        let ci = common::nums(&out["conf_int"]);
        let want = common::nums(&e["conf_int"]);
        common::assert_close(&format!("{name} lower"), ci[0], want[0], 1e-12);
        common::assert_close(&format!("{name} upper"), ci[1], want[1], 1e-12);
        assert!(out["p_value"].as_f64().unwrap() >= 0.0, "{name}");
        assert!(
            matches!(out["method"].as_str(), Some("exact" | "asymptotic")),
            "{name}"
        );
    }
    for case in common::stat_cases("mannwhitneyu") {
        let (x, y) = (
            common::sample(&case["inputs"], "x"),
            common::sample(&case["inputs"], "y"),
        );
        let p = &case["params"];
        let out = stats(&json!({
            "test": "mann-whitney", "x": x, "y": y, "alternative": alt(p),
            "method": p["method"], "use_continuity": p["use_continuity"],
        }));
        let e = &case["expected"];
        let name = case["name"].as_str().unwrap();
        assert_eq!(
            out["u_statistic"].as_f64(),
            e["U1_statistic"].as_f64(),
            "{name}"
        );
        assert_eq!(out["method"], e["resolved_method"], "{name}");
        common::assert_close(
            name,
            out["p_value"].as_f64().unwrap(),
            common::num(&e["p_value"]),
            1e-9,
        );
    }
}

#[test]
fn stats_welch_proportions_fisher_poisson_match_the_references() {
    for case in common::stat_cases("welch_ttest") {
        let (x, y) = (
            common::sample(&case["inputs"], "x"),
            common::sample(&case["inputs"], "y"),
        );
        let p = &case["params"];
        let out = stats(
            &json!({"test": "welch-t", "x": x, "y": y, "alternative": alt(p), "conf_level": p["conf_level"]}),
        );
        let e = &case["expected"];
        let name = case["name"].as_str().unwrap();
        for (got, want) in [("t", "t"), ("df", "df"), ("p_value", "p_value")] {
            common::assert_close(
                name,
                out[got].as_f64().unwrap(),
                common::num(&e[want]),
                1e-9,
            );
        }
        let ci = common::nums(&out["conf_int"]);
        common::assert_close(name, ci[0], common::num(&e["ci_lower"]), 1e-9);
        common::assert_close(name, ci[1], common::num(&e["ci_upper"]), 1e-9);
    }
    for case in common::stat_cases("two_proportion_ztest") {
        let i = &case["inputs"];
        let p = &case["params"];
        let out = stats(&json!({
            "test": "two-proportion-z", "successes": [i["x1"], i["x2"]], "trials": [i["n1"], i["n2"]],
            "alternative": alt(p), "conf_level": p["conf_level"],
        }));
        let name = case["name"].as_str().unwrap();
        let e = &case["expected"];
        common::assert_close(name, out["z"].as_f64().unwrap(), common::num(&e["z"]), 1e-9);
        common::assert_close(
            name,
            out["p_value"].as_f64().unwrap(),
            common::num(&e["p_value"]),
            1e-9,
        );
    }
    for case in common::stat_cases("fisher_exact") {
        let out = stats(
            &json!({"test": "fisher-exact", "table": case["inputs"]["table"], "alternative": alt(&case["params"])}),
        );
        let name = case["name"].as_str().unwrap();
        let e = &case["expected"];
        common::assert_close(
            name,
            out["p_value"].as_f64().unwrap(),
            common::num(&e["p_value"]),
            1e-9,
        );
        common::assert_close(
            name,
            common::num(&out["odds_ratio"]),
            common::num(&e["sample_odds_ratio"]),
            1e-12,
        );
    }
    for case in common::stat_cases("poisson_rate_comparison") {
        let i = &case["inputs"];
        let out = stats(&json!({
            "test": "poisson-rate", "counts": [i["k1"], i["k2"]], "exposures": [i["exposure1"], i["exposure2"]],
            "alternative": alt(&case["params"]),
        }));
        let name = case["name"].as_str().unwrap();
        let e = &case["expected"];
        common::assert_close(
            name,
            out["p_value"].as_f64().unwrap(),
            common::num(&e["conditional_binomial_p_value"]),
            1e-9,
        );
        common::assert_close(
            name,
            out["rate_ratio"].as_f64().unwrap(),
            common::num(&e["rate_ratio"]),
            1e-12,
        );
    }
}

#[test]
fn infinite_interval_ends_print_as_strings() {
    let out = stats(
        &json!({"test": "welch-t", "x": [1, 2, 3, 4], "y": [2, 3, 4, 5, 9], "alternative": "less"}),
    );
    assert_eq!(out["conf_int"][0], "-inf");
    let out = stats(
        &json!({"test": "poisson-rate", "counts": [25, 180], "exposures": [1e5, 9.5e5], "alternative": "greater"}),
    );
    assert_eq!(out["conf_int"][1], "inf");
}

#[test]
fn malformed_requests_exit_2_with_one_line() {
    for bad in [
        "{not json",
        r#"{"test":"t-test","x":[1],"y":[2]}"#,
        r#"{"test":"mann-whitney","x":[1,"NaN"],"y":[2,3]}"#,
        r#"{"test":"mann-whitney","x":[],"y":[2,3]}"#,
        r#"{"test":"welch-t","x":[1,2],"y":[2,3],"conf_level":1.5}"#,
        r#"{"test":"mann-whitney","x":[1],"y":[2],"alternatve":"less"}"#,
        r#"{"test":"two-proportion-z","successes":[5,1],"trials":[3,10]}"#,
    ] {
        let out = verdict(&["stats"], bad);
        assert_eq!(out.status.code(), Some(2), "{bad}");
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.trim_end().lines().count(), 1, "{bad}: {err}");
        assert!(out.stdout.is_empty(), "{bad}");
    }
}

#[test]
fn judge_explains_the_regressed_metric_of_the_shipped_example() {
    let out = verdict(
        &[
            "judge",
            "--config",
            "fixtures/judge/checkout-canary-config.json",
            "--data",
            "fixtures/judge/checkout-data.json",
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["classification"], "fail");
    assert_eq!(v["score"], 0.0);
    let metrics = v["metrics"].as_array().unwrap();
    let by_name = |n: &str| metrics.iter().find(|m| m["name"] == n).unwrap();
    let latency = by_name("p99 latency");
    assert_eq!(latency["classification"], "high");
    assert_eq!(latency["critical"], true);
    let reason = latency["reason"].as_str().unwrap();
    assert!(
        reason.contains("HL shift") && reason.contains("CI"),
        "{reason}"
    );
    assert_eq!(by_name("http 5xx rate")["classification"], "pass");
    assert_eq!(by_name("cpu usage")["classification"], "pass");
    let groups: Vec<&str> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert_eq!(groups, ["latency", "errors", "saturation"]);
}

/// A passing score on too few points is what Kayenta would pass and
/// Verdict refuses, in `verdict judge` as in `POST /judges/judge`: the
/// judgement is printed with the reason under `refused`, and the exit
/// status is 1, so a script cannot read it as a pass.
#[test]
fn judge_refuses_a_kayenta_pass_on_too_few_points() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("thin.json");
    let steady = serde_json::json!([0.2, 0.2, 0.2]);
    let metrics: serde_json::Map<String, Value> = ["p99 latency", "http 5xx rate", "cpu usage"]
        .iter()
        .map(|n| {
            (
                n.to_string(),
                serde_json::json!({"baseline": steady, "canary": steady}),
            )
        })
        .collect();
    std::fs::write(&data, serde_json::json!({ "metrics": metrics }).to_string()).unwrap();
    let out = verdict(
        &[
            "judge",
            "--config",
            "fixtures/judge/checkout-canary-config.json",
            "--data",
            data.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        v["classification"], "pass",
        "Kayenta's own answer is kept: {v}"
    );
    let refused = v["refused"].as_str().expect("a refusal");
    assert!(refused.contains("fewer than"), "{refused}");
}

#[test]
fn judge_takes_verdict_analysis_configs_too() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("latency.yaml");
    std::fs::write(
        &config,
        r#"
metrics:
  - name: p99 latency
    kind: gauge
    canary: 'x'
    baseline: 'y'
    critical: true
  - name: cpu usage
    kind: gauge
    judge: welch
    canary: 'x'
    baseline: 'y'
"#,
    )
    .unwrap();
    let data = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/judge/checkout-data.json"
    );
    let text = std::fs::read_to_string(data).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["metrics"]
        .as_object_mut()
        .unwrap()
        .remove("http 5xx rate");
    let data_file = dir.path().join("data.json");
    std::fs::write(&data_file, v.to_string()).unwrap();
    let out = verdict(
        &[
            "judge",
            "--config",
            config.to_str().unwrap(),
            "--data",
            data_file.to_str().unwrap(),
        ],
        "",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "abort");
    assert_eq!(v["metrics"][0]["classification"], "high");
    assert_eq!(v["metrics"][1]["classification"], "pass");
}

#[test]
fn judge_refuses_unknown_metrics_and_bad_thresholds() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data.json");
    std::fs::write(
        &data,
        r#"{"metrics":{"nope":{"baseline":[1],"canary":[2]}}}"#,
    )
    .unwrap();
    let out = verdict(
        &[
            "judge",
            "--config",
            "fixtures/judge/checkout-canary-config.json",
            "--data",
            data.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"nope\""));
    let out = verdict(
        &[
            "judge",
            "--config",
            "fixtures/judge/checkout-canary-config.json",
            "--data",
            "fixtures/judge/checkout-data.json",
            "--pass",
            "50",
            "--marginal",
            "80",
        ],
        "",
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn config_check_names_file_line_and_field() {
    let out = verdict(&["config", "check", "fixtures/verdict.yaml"], "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../fixtures/verdict.yaml"
    ))
    .unwrap()
    .replace(
        "- name: accuracy\n        kind: counter\n        judge: sequential",
        "- name: accuracy\n        kind: counter\n        judge: mann-whitney",
    );
    // The accuracy metric (a counter) now has a wrong judge: the error must
    // name that line.
    // (the last mann-whitney line of the file).
    let line = text
        .lines()
        .enumerate()
        .filter(|(_, l)| l.trim() == "judge: mann-whitney")
        .map(|(i, _)| i + 1)
        .last()
        .unwrap();
    std::fs::write(&bad, &text).unwrap();
    let out = verdict(&["config", "check", bad.to_str().unwrap()], "");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(
        err.contains(&format!(
            "bad.yaml:{line}: analyses.checkout.metrics[3].judge"
        )),
        "{err}"
    );
}

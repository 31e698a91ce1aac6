//! Shared helpers of the reference-vector tests: loading
//! `fixtures/reference/*.json` (or `$VERDICT_REFERENCE_DIR/*.json`, a
//! directory of the same layout) and regenerating the large arrays stored as
//! splitmix64 recipes (see the vectors' `meta.generators`).
#![allow(dead_code)]

use serde_json::Value;
use std::path::PathBuf;

/// Path of a reference file: in the repository's `fixtures/reference`, or
/// in `VERDICT_REFERENCE_DIR` when set (e.g. a newer set of vectors).
pub fn reference_path(file: &str) -> PathBuf {
    match std::env::var_os("VERDICT_REFERENCE_DIR") {
        Some(dir) => PathBuf::from(dir).join(file),
        None => PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../fixtures/reference")
            .join(file),
    }
}

/// Loads a reference JSON file.
pub fn load(file: &str) -> Value {
    let path = reference_path(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// All cases of one `kind` in `stat_vectors.json`.
pub fn stat_cases(kind: &str) -> Vec<Value> {
    let all = load("stat_vectors.json");
    let cases: Vec<Value> = all["cases"]
        .as_array()
        .expect("cases array")
        .iter()
        .filter(|c| c["kind"] == kind)
        .cloned()
        .collect();
    assert!(!cases.is_empty(), "no reference cases of kind {kind}");
    cases
}

/// A number that may be written as the strings "inf", "-inf" or "nan"/"NaN".
pub fn num(v: &Value) -> f64 {
    match v {
        Value::Number(n) => n.as_f64().unwrap(),
        Value::String(s) => match s.as_str() {
            "inf" | "Infinity" => f64::INFINITY,
            "-inf" | "-Infinity" => f64::NEG_INFINITY,
            "nan" | "NaN" => f64::NAN,
            other => panic!("not a number: {other}"),
        },
        other => panic!("not a number: {other}"),
    }
}

/// An array of numbers (see [`num`]).
pub fn nums(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap_or_else(|| panic!("not an array: {v}"))
        .iter()
        .map(num)
        .collect()
}

/// Relative closeness with an absolute floor for values near zero.
pub fn close(actual: f64, expected: f64, rel: f64) -> bool {
    if expected.is_infinite() || actual.is_infinite() {
        return actual == expected;
    }
    if expected.is_nan() {
        return actual.is_nan();
    }
    (actual - expected).abs() <= rel * expected.abs().max(1e-300)
}

#[track_caller]
pub fn assert_close(what: &str, actual: f64, expected: f64, rel: f64) {
    assert!(
        close(actual, expected, rel),
        "{what}: got {actual:e}, expected {expected:e} (rel tol {rel:e}, rel err {:e})",
        ((actual - expected) / expected).abs()
    );
}

/// The sample of `inputs[key]`, or of `inputs[key + "_recipe"]` when the
/// array is stored as a generator recipe.
pub fn sample(inputs: &Value, key: &str) -> Vec<f64> {
    if let Some(v) = inputs.get(key) {
        return nums(v);
    }
    let recipe = &inputs[format!("{key}_recipe")];
    assert!(
        !recipe.is_null(),
        "inputs has neither {key} nor {key}_recipe"
    );
    from_recipe(recipe)
}

/// Regenerates a splitmix64 recipe and checks it against the recipe's own
/// checks (first values, last, min, max), so a wrong generator fails loudly.
pub fn from_recipe(recipe: &Value) -> Vec<f64> {
    assert_eq!(recipe["generator"], "splitmix64_u01");
    let seed = recipe["seed"].as_u64().unwrap();
    let n = recipe["n"].as_u64().unwrap() as usize;
    let transform = recipe["transform"].as_str().unwrap();
    let (base, scale, floor) = parse_transform(transform);
    let mut rng = verdict_judges::splitmix64::SplitMix64::new(seed);
    let values: Vec<f64> = (0..n)
        .map(|_| {
            let u = rng.next_f64();
            let v = base + scale * (u / (1.0 - 0.9 * u));
            if floor {
                v.floor()
            } else {
                v
            }
        })
        .collect();
    let check = &recipe["check"];
    if let Some(first) = check.get("first5") {
        assert_eq!(&values[..5], nums(first).as_slice(), "recipe first5");
    }
    if let Some(last) = check.get("last") {
        assert_eq!(*values.last().unwrap(), num(last), "recipe last");
    }
    values
}

/// Parses `"<base> + <scale> * (u / (1.0 - 0.9 * u))[ then floor()]"`.
fn parse_transform(t: &str) -> (f64, f64, bool) {
    let floor = t.contains("floor");
    let core = t.split(" then").next().unwrap();
    assert!(
        core.contains("(u / (1.0 - 0.9 * u))"),
        "unknown recipe transform {t}"
    );
    let mut parts = core.split(['+', '*']).map(str::trim);
    let base: f64 = parts.next().unwrap().parse().expect("base");
    let scale: f64 = parts.next().unwrap().parse().expect("scale");
    (base, scale, floor)
}

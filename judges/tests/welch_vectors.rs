//! Every `welch_ttest` case of `stat_vectors.json` (scipy
//! `ttest_ind(equal_var=False)`, cross-checked with R `t.test`).
mod common;

use common::{assert_close, num, sample, stat_cases};
use serde_json::Value;
use verdict_judges::welch::{welch, WelchConfig};
use verdict_judges::Alternative;

/// Statistics, p-values and interval ends: 1e-9 relative (the brief's
/// tolerance; most agree to about 1e-13).
const REL: f64 = 1e-9;

fn alternative(params: &Value) -> Alternative {
    serde_json::from_value(params["alternative"].clone()).expect("alternative")
}

#[test]
fn welch_matches_every_reference_case() {
    let cases = stat_cases("welch_ttest");
    for case in &cases {
        let name = case["name"].as_str().unwrap();
        let x = sample(&case["inputs"], "x");
        let y = sample(&case["inputs"], "y");
        let params = &case["params"];
        let config = WelchConfig {
            alternative: alternative(params),
            conf_level: params.get("conf_level").map_or(0.95, num),
        };
        let r = welch(&x, &y, &config).unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = &case["expected"];
        let what = |f: &str| format!("{name}: {f}");
        assert_close(&what("mean_x"), r.mean_x, num(&e["mean_x"]), REL);
        assert_close(&what("mean_y"), r.mean_y, num(&e["mean_y"]), REL);
        assert_close(&what("var_x"), r.var_x, num(&e["var_x_ddof1"]), REL);
        assert_close(&what("var_y"), r.var_y, num(&e["var_y_ddof1"]), REL);
        assert_close(&what("t"), r.t, num(&e["t"]), REL);
        assert_close(&what("df"), r.df, num(&e["df"]), REL);
        assert_close(&what("p_value"), r.p_value, num(&e["p_value"]), REL);
        assert_close(&what("ci_lower"), r.conf_int.0, num(&e["ci_lower"]), REL);
        assert_close(&what("ci_upper"), r.conf_int.1, num(&e["ci_upper"]), REL);
        if let Some(rc) = case.get("r_crosscheck") {
            let what = |f: &str| format!("{name}: R {f}");
            for (field, actual) in [
                ("t", r.t),
                ("df", r.df),
                ("p_value", r.p_value),
                ("ci_lower", r.conf_int.0),
                ("ci_upper", r.conf_int.1),
            ] {
                if let Some(v) = rc.get(field) {
                    assert_close(&what(field), actual, num(v), REL);
                }
            }
        }
    }
}

//! Every `two_proportion_ztest`, `fisher_exact`, `poisson_rate_comparison` and
//! `beta_binomial_posterior` case of `stat_vectors.json`, read generically so
//! that held-back cases of the same kinds run through the same checks.
mod common;

use common::{assert_close, num, stat_cases};
use serde_json::Value;
use verdict_judges::poisson::{poisson_rate_comparison, PoissonRateConfig};
use verdict_judges::proportions::{
    beta_binomial_prob_greater, fisher_exact, two_proportion_z, TwoProportionConfig,
};
use verdict_judges::Alternative;

/// p-values, statistics and interval ends (most agree to about 1e-13).
const REL: f64 = 1e-9;
/// Conditional MLE odds ratio: scipy and R stop their root finders early
/// (they differ from each other by up to 1e-4 relative).
const REL_MLE: f64 = 1e-3;

fn alternative(params: &Value) -> Alternative {
    serde_json::from_value(params["alternative"].clone()).expect("alternative")
}

fn conf_level(params: &Value) -> f64 {
    params.get("conf_level").map_or(0.95, num)
}

fn count(v: &Value) -> u64 {
    v.as_u64().or_else(|| v.as_f64().map(|f| f as u64)).unwrap()
}

#[test]
fn two_proportion_z_matches_every_reference_case() {
    for case in stat_cases("two_proportion_ztest") {
        let name = case["name"].as_str().unwrap();
        let i = &case["inputs"];
        let successes = [count(&i["x1"]), count(&i["x2"])];
        let trials = [count(&i["n1"]), count(&i["n2"])];
        let alt = alternative(&case["params"]);
        let config = |alternative, correction| TwoProportionConfig {
            alternative,
            correction,
            conf_level: conf_level(&case["params"]),
        };
        let run = |alternative, correction| {
            two_proportion_z(successes, trials, &config(alternative, correction))
                .unwrap_or_else(|e| panic!("{name}: {e}"))
        };
        let r = run(alt, false);
        let two = run(Alternative::TwoSided, false);
        let e = &case["expected"];
        let what = |f: &str| format!("{name}: {f}");
        assert_close(&what("z"), r.z, num(&e["z"]), REL);
        assert_close(&what("p_value"), r.p_value, num(&e["p_value"]), REL);
        assert_close(&what("diff"), r.diff, num(&e["diff"]), REL);
        if let Some(chi2) = e.get("chi2_no_yates") {
            assert_close(&what("chi2 = z^2"), r.z * r.z, num(chi2), REL);
        }
        if let Some(p) = e.get("chi2_p_value") {
            // chi2_contingency is always two-sided.
            assert_close(&what("chi2_p_value"), two.p_value, num(p), REL);
        }
        // The vectors' Wald interval is the formula `diff -/+ z_{1-alpha/2} se`
        // (the notes: checked against R on the two-sided cases). For a
        // one-sided case it is either that two-sided interval or R's one-sided
        // one; accept whichever the vector holds.
        let (lo, hi) = (num(&e["wald_ci_lower"]), num(&e["wald_ci_upper"]));
        let one_sided_shape = match alt {
            Alternative::TwoSided => false,
            Alternative::Greater => hi.is_infinite() || hi == 1.0,
            Alternative::Less => lo.is_infinite() || lo == -1.0,
        };
        if one_sided_shape {
            match alt {
                Alternative::Greater => assert_close(&what("wald lower"), r.conf_int.0, lo, REL),
                _ => assert_close(&what("wald upper"), r.conf_int.1, hi, REL),
            }
        } else {
            assert_close(&what("wald_ci_lower"), two.conf_int.0, lo, REL);
            assert_close(&what("wald_ci_upper"), two.conf_int.1, hi, REL);
        }
        // Newcombe has no vector; it must contain the estimate.
        assert!(
            r.newcombe_int.0 <= r.diff && r.diff <= r.newcombe_int.1,
            "{name}"
        );

        if let Some(rc) = case.get("r_crosscheck") {
            let what = |f: &str| format!("{name}: R {f}");
            let yates = run(alt, true);
            for (field, actual) in [
                ("chisq_no_yates", r.z * r.z),
                ("p_no_yates", r.p_value),
                ("ci_lower_no_yates", r.conf_int.0),
                ("ci_upper_no_yates", r.conf_int.1),
                ("chisq_yates", yates.z * yates.z),
                ("p_yates", yates.p_value),
                ("ci_lower_yates", yates.conf_int.0),
                ("ci_upper_yates", yates.conf_int.1),
            ] {
                if let Some(v) = rc.get(field) {
                    assert_close(&what(field), actual, num(v), REL);
                }
            }
        }
    }
}

#[test]
fn fisher_exact_matches_every_reference_case() {
    for case in stat_cases("fisher_exact") {
        let name = case["name"].as_str().unwrap();
        let t = &case["inputs"]["table"];
        let table = [
            [count(&t[0][0]), count(&t[0][1])],
            [count(&t[1][0]), count(&t[1][1])],
        ];
        let r = fisher_exact(table, alternative(&case["params"]))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = &case["expected"];
        let what = |f: &str| format!("{name}: {f}");
        assert_close(&what("p_value"), r.p_value, num(&e["p_value"]), REL);
        assert_close(
            &what("odds_ratio"),
            r.odds_ratio,
            num(&e["sample_odds_ratio"]),
            REL,
        );
        let mle = r.conditional_odds_ratio.expect("small tables get the MLE");
        if let Some(v) = e.get("conditional_mle_odds_ratio") {
            assert_close(&what("conditional OR"), mle, num(v), REL_MLE);
        }
        if let Some(rc) = case.get("r_crosscheck") {
            let what = |f: &str| format!("{name}: R {f}");
            if let Some(v) = rc.get("p_value") {
                assert_close(&what("p_value"), r.p_value, num(v), REL);
            }
            if let Some(v) = rc.get("conditional_mle_odds_ratio") {
                assert_close(&what("conditional OR"), mle, num(v), REL_MLE);
            }
        }
    }
}

#[test]
fn poisson_rate_comparison_matches_every_reference_case() {
    for case in stat_cases("poisson_rate_comparison") {
        let name = case["name"].as_str().unwrap();
        let i = &case["inputs"];
        let counts = [count(&i["k1"]), count(&i["k2"])];
        let exposures = [num(&i["exposure1"]), num(&i["exposure2"])];
        let config = PoissonRateConfig {
            alternative: alternative(&case["params"]),
            conf_level: conf_level(&case["params"]),
        };
        let r = poisson_rate_comparison(counts, exposures, &config)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = &case["expected"];
        let what = |f: &str| format!("{name}: {f}");
        assert_close(
            &what("rate_ratio"),
            r.rate_ratio,
            num(&e["rate_ratio"]),
            REL,
        );
        assert_close(
            &what("p_value"),
            r.p_value,
            num(&e["conditional_binomial_p_value"]),
            REL,
        );
        if let Some(rc) = case.get("r_crosscheck") {
            let what = |f: &str| format!("{name}: R {f}");
            for (field, actual) in [
                ("p_value", r.p_value),
                ("rate_ratio", r.rate_ratio),
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

#[test]
fn beta_binomial_matches_every_reference_case() {
    for case in stat_cases("beta_binomial_posterior") {
        let name = case["name"].as_str().unwrap();
        let i = &case["inputs"];
        let p = &case["params"];
        let r = beta_binomial_prob_greater(
            [count(&i["canary_errors"]), count(&i["baseline_errors"])],
            [count(&i["canary_n"]), count(&i["baseline_n"])],
            num(&p["prior_alpha"]),
            num(&p["prior_beta"]),
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let e = &case["expected"];
        assert_close(
            &format!("{name}: P(canary > baseline)"),
            r,
            num(&e["prob_canary_rate_greater"]),
            REL,
        );
        if let Some(q) = e.get("quad_check") {
            assert_close(&format!("{name}: quad"), r, num(q), REL);
        }
    }
}

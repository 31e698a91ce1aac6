//! Every case of the anytime-valid kinds in `stat_vectors.json`, iterated
//! generically so held-back cases of the same kinds are checked the same way.
//! The vectors give *cumulative* counts per look; the state structs take
//! increments, so the tests feed the differences between consecutive looks.

mod common;

use common::{assert_close, num, nums, stat_cases};
use serde_json::Value;
use verdict_judges::sequential::{
    confidence_sequence, normal_mixture_boundary, optimal_mixture_ratio, BucketLabelConfig,
    BucketLabelEProcess, GammaPoisson, GammaPoissonConfig, LookOutcome, MeanDifferenceSequence,
    MixtureConfig, SampleRatioMismatch, SrmConfig, VarianceModel,
};

/// Log values: relative 1e-9, with an absolute floor of 1e-9 for values near
/// zero (a relative tolerance is meaningless there).
#[track_caller]
fn assert_log(what: &str, actual: f64, expected: f64) {
    let tol = 1e-9 * expected.abs().max(1.0);
    assert!(
        (actual - expected).abs() <= tol,
        "{what}: got {actual:e}, expected {expected:e} (diff {:e})",
        actual - expected
    );
}

/// Always-valid p-values: exactly 1 when the reference says 1 (the running
/// maximum never exceeded 0), otherwise relative 1e-8 (p is exp of a log
/// value that is itself only known to ~1e-9).
#[track_caller]
fn assert_p(what: &str, actual: f64, expected: f64) {
    if expected == 1.0 {
        assert_eq!(actual, 1.0, "{what}");
    } else {
        assert_close(what, actual, expected, 1e-8);
    }
}

fn u64s(v: &Value) -> Vec<u64> {
    nums(v)
        .into_iter()
        .map(|x| {
            assert!(x >= 0.0 && x.fract() == 0.0, "not a count: {x}");
            x as u64
        })
        .collect()
}

/// Differences of consecutive cumulative count vectors (the first against 0).
fn increments(cumulative: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let mut prev = vec![0; cumulative[0].len()];
    cumulative
        .iter()
        .map(|c| {
            let inc = c
                .iter()
                .zip(&prev)
                .map(|(&now, &before)| now.checked_sub(before).expect("cumulative counts decrease"))
                .collect();
            prev = c.clone();
            inc
        })
        .collect()
}

fn per_look(case: &Value) -> &Vec<Value> {
    case["expected"]["per_look"].as_array().expect("per_look")
}

#[test]
fn bucket_label_eprocess_vectors() {
    for case in stat_cases("bucket_label_eprocess") {
        let name = case["name"].as_str().unwrap();
        let params = &case["params"];
        let canary: Vec<Vec<u64>> = case["inputs"]["cumulative_canary_counts_per_look"]
            .as_array()
            .unwrap()
            .iter()
            .map(u64s)
            .collect();
        let baseline: Vec<Vec<u64>> = case["inputs"]["cumulative_baseline_counts_per_look"]
            .as_array()
            .unwrap()
            .iter()
            .map(u64s)
            .collect();
        let config = BucketLabelConfig {
            rho0: num(&params["rho0"]),
            kappa: num(&params["kappa"]),
            alpha: num(&params["alpha"]),
            // No current case sets a mask; accept one if a case ever does.
            harmful: params
                .get("harmful")
                .and_then(Value::as_array)
                .map(|m| m.iter().map(|b| b.as_bool().unwrap()).collect()),
        };
        let mut e = BucketLabelEProcess::new(config, canary[0].len()).unwrap();
        let looks = increments(&canary).into_iter().zip(increments(&baseline));
        for (i, ((c, b), exp)) in looks.zip(per_look(&case)).enumerate() {
            let what = |field: &str| format!("{name} look {i} {field}");
            let got = e.observe(&c, &b).unwrap();
            let counts = |v: &[u64]| v.iter().map(|&x| x as f64).collect::<Vec<_>>();
            assert_eq!(counts(&got.canary_counts), nums(&exp["canary_counts"]));
            assert_eq!(counts(&got.baseline_counts), nums(&exp["baseline_counts"]));
            assert_log(
                &what("log_numerator"),
                got.log_numerator,
                num(&exp["log_numerator"]),
            );
            assert_log(
                &what("log_sup_null"),
                got.log_sup_null,
                num(&exp["log_sup_null"]),
            );
            assert_log(&what("log_e"), got.log_e, num(&exp["log_e"]));
            assert_close(&what("e_value"), got.e_value, num(&exp["e_value"]), 1e-8);
            assert_p(&what("p"), got.always_valid_p, num(&exp["always_valid_p"]));
            match got.rho_hat {
                Some(r) => assert_close(&what("rho_hat"), r, num(&exp["rho_hat"]), 1e-14),
                // No data yet: the reference writes an undefined share as NaN.
                None => assert!(num(&exp["rho_hat"]).is_nan(), "{}", what("rho_hat")),
            }
            let shares = nums(&exp["canary_share_by_bucket"]);
            assert_eq!(got.canary_share_by_bucket.len(), shares.len());
            for (k, (g, s)) in got.canary_share_by_bucket.iter().zip(&shares).enumerate() {
                match g {
                    Some(g) => assert_close(&what(&format!("share {k}")), *g, *s, 1e-14),
                    None => assert!(s.is_nan(), "{}", what("empty bucket share")),
                }
            }
            assert_eq!(
                got.reject,
                exp["reject_at_alpha"].as_bool().unwrap(),
                "{}",
                what("reject")
            );
        }
    }
}

#[test]
fn msprt_normal_mixture_vectors() {
    for case in stat_cases("msprt_normal_mixture_two_sample") {
        let name = case["name"].as_str().unwrap();
        let params = &case["params"];
        let x = nums(&case["inputs"]["x"]);
        let y = nums(&case["inputs"]["y"]);
        let config = MixtureConfig {
            tau2: num(&params["tau2"]),
            alpha: num(&params["alpha"]),
            theta0: num(&params["theta0"]),
            min_n_per_arm: 1,
        };
        // The cases state known variances; without them, plug in.
        let variance = match (params.get("sigma2_x"), params.get("sigma2_y")) {
            (Some(sx), Some(sy)) => VarianceModel::Known {
                sigma2_canary: num(sx),
                sigma2_baseline: num(sy),
            },
            _ => VarianceModel::PlugIn,
        };
        let mut s = MeanDifferenceSequence::new(config, variance).unwrap();
        let (mut done_x, mut done_y) = (0, 0);
        let looks = case["inputs"]["looks"].as_array().unwrap();
        for (i, (look, exp)) in looks.iter().zip(per_look(&case)).enumerate() {
            let what = |field: &str| format!("{name} look {i} {field}");
            let n = u64s(look);
            let (nx, ny) = (n[0] as usize, n[1] as usize);
            let got = s.observe_samples(&x[done_x..nx], &y[done_y..ny]).unwrap();
            (done_x, done_y) = (nx, ny);
            assert_eq!(got.n_canary, exp["n_x"].as_u64().unwrap());
            assert_eq!(got.n_baseline, exp["n_y"].as_u64().unwrap());
            let LookOutcome::Evaluated(e) = got.outcome else {
                panic!("{}: not evaluated: {:?}", what("outcome"), got.outcome);
            };
            assert_close(&what("diff"), e.delta_hat, num(&exp["diff"]), 1e-9);
            assert_close(&what("V"), e.variance, num(&exp["V"]), 1e-14);
            assert_log(&what("log_lambda"), e.log_lambda, num(&exp["log_lambda"]));
            assert_close(&what("lambda"), e.lambda, num(&exp["lambda"]), 1e-8);
            assert_p(&what("p"), got.always_valid_p, num(&exp["always_valid_p"]));
            assert_log(&what("cs_lower"), e.cs.lower, num(&exp["cs_lower"]));
            assert_log(&what("cs_upper"), e.cs.upper, num(&exp["cs_upper"]));
            assert_eq!(
                got.reject,
                exp["reject_at_alpha"].as_bool().unwrap(),
                "{}",
                what("reject")
            );
        }
    }
}

#[test]
fn normal_mixture_tuning_vectors() {
    for case in stat_cases("normal_mixture_confidence_sequence") {
        let name = case["name"].as_str().unwrap();
        let exp = &case["expected"];
        for row in exp["optimal_x_where_rho_equals_target_V_over_x"]
            .as_array()
            .unwrap()
        {
            let alpha = num(&row["alpha"]);
            let x = optimal_mixture_ratio(alpha).unwrap();
            assert_close(
                &format!("{name} x* {alpha}"),
                x,
                num(&row["x_star_exact"]),
                1e-12,
            );
        }
        let alpha = num(&case["params"]["alpha"]);
        let sigma2 = num(&case["inputs"]["sigma2"]);
        let target_v = num(&case["inputs"]["target_V"]);
        let rho = target_v / optimal_mixture_ratio(alpha).unwrap();
        assert_close(
            &format!("{name} rho_used"),
            rho,
            num(&exp["rho_used"]),
            1e-12,
        );
        for row in exp["half_widths"].as_array().unwrap() {
            let t = num(&row["t"]);
            let v = num(&row["V"]);
            assert_close(&format!("{name} V at t={t}"), v, sigma2 * t, 1e-15);
            let boundary = normal_mixture_boundary(v, rho, alpha).unwrap();
            let what = format!("{name} boundary t={t}");
            assert_close(&what, boundary, num(&row["boundary_on_sum"]), 1e-12);
            assert_close(&what, boundary / t, num(&row["half_width_on_mean"]), 1e-12);
            // The same interval from the mSPRT form on the mean scale:
            // Var(mean) = sigma^2 / t and tau^2 = sigma^4 / rho.
            let (lo, hi) =
                confidence_sequence(0.0, sigma2 / t, sigma2 * sigma2 / rho, alpha).unwrap();
            assert_close(&what, hi, num(&row["half_width_on_mean"]), 1e-12);
            assert_close(&what, -lo, num(&row["half_width_on_mean"]), 1e-12);
        }
    }
}

#[test]
fn dirichlet_multinomial_srm_vectors() {
    for case in stat_cases("dirichlet_multinomial_srm") {
        let name = case["name"].as_str().unwrap();
        let params = &case["params"];
        let alpha = num(&params["alpha"]);
        let mut srm = SampleRatioMismatch::new(SrmConfig {
            theta0: nums(&params["theta0"]),
            concentration: num(&params["concentration_k"]),
            alpha,
        })
        .unwrap();
        let cumulative: Vec<Vec<u64>> = case["inputs"]["cumulative_counts_per_look"]
            .as_array()
            .unwrap()
            .iter()
            .map(u64s)
            .collect();
        let mut p_min: f64 = 1.0;
        for (i, (inc, exp)) in increments(&cumulative)
            .iter()
            .zip(per_look(&case))
            .enumerate()
        {
            let what = |field: &str| format!("{name} look {i} {field}");
            let got = srm.observe(inc).unwrap();
            assert_eq!(got.counts, u64s(&exp["counts"]));
            assert_log(
                &what("log BF"),
                got.log_bayes_factor,
                num(&exp["log_bayes_factor"]),
            );
            let p = num(&exp["always_valid_p"]);
            assert_p(&what("p"), got.always_valid_p, p);
            // The vectors carry no flag; the mismatch flag must agree with p.
            p_min = p_min.min(p);
            assert_eq!(got.mismatch, p_min <= alpha, "{}", what("mismatch"));
        }
    }
}

#[test]
fn gamma_poisson_vectors() {
    for case in stat_cases("gamma_poisson_two_process") {
        let name = case["name"].as_str().unwrap();
        let params = &case["params"];
        let alpha = num(&params["alpha"]);
        let mut g = GammaPoisson::new(GammaPoissonConfig {
            phi: num(&params["phi"]),
            alpha,
        })
        .unwrap();
        let cumulative: Vec<Vec<u64>> = case["inputs"]["cumulative_counts_A_B"]
            .as_array()
            .unwrap()
            .iter()
            .map(u64s)
            .collect();
        let mut p_min: f64 = 1.0;
        for (i, (inc, exp)) in increments(&cumulative)
            .iter()
            .zip(per_look(&case))
            .enumerate()
        {
            let what = |field: &str| format!("{name} look {i} {field}");
            let got = g.observe(inc[0], inc[1]).unwrap();
            assert_eq!(got.n_a, exp["N_A"].as_u64().unwrap());
            assert_eq!(got.n_b, exp["N_B"].as_u64().unwrap());
            assert_eq!(got.lambda_hat, num(&exp["lambda_hat"]));
            assert_log(&what("log_bf_A"), got.log_bf_a, num(&exp["log_bf_A"]));
            assert_log(&what("log_bf_B"), got.log_bf_b, num(&exp["log_bf_B"]));
            assert_log(&what("log_p_raw"), got.log_p_raw, num(&exp["log_p_raw"]));
            let p = num(&exp["always_valid_p"]);
            assert_p(&what("p"), got.always_valid_p, p);
            p_min = p_min.min(p);
            assert_eq!(got.reject, p_min <= alpha, "{}", what("reject"));
        }
    }
}

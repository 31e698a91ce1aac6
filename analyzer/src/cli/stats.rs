//! `verdict stats`: one statistical test, JSON in, JSON out.
//!
//! The request names its test in `"test"`; the remaining fields are that
//! test's inputs and parameters. Unknown fields are an error (a typo such as
//! `"alternatve"` must not silently fall back to a default). The response
//! shapes are a public contract (documented in `docs/cli.md`).

use crate::json::{interval, number, Num};
use serde::Deserialize;
use serde_json::{json, Value};
use verdict_judges::{
    hodges_lehmann::{hodges_lehmann, HodgesLehmannConfig},
    mann_whitney::{mann_whitney, MannWhitneyConfig, Method},
    poisson::{poisson_rate_comparison, PoissonRateConfig},
    proportions::{fisher_exact, two_proportion_z, TwoProportionConfig},
    welch::{welch, WelchConfig},
    Alternative, StatsError,
};

/// One `verdict stats` request.
#[derive(Debug, Deserialize)]
#[serde(tag = "test", rename_all = "kebab-case", deny_unknown_fields)]
pub enum StatsRequest {
    MannWhitney {
        x: Vec<Num>,
        y: Vec<Num>,
        #[serde(default)]
        alternative: Alternative,
        #[serde(default)]
        method: Method,
        #[serde(default = "yes")]
        use_continuity: bool,
        #[serde(default = "conf_95")]
        conf_level: f64,
    },
    WelchT {
        x: Vec<Num>,
        y: Vec<Num>,
        #[serde(default)]
        alternative: Alternative,
        #[serde(default = "conf_95")]
        conf_level: f64,
    },
    FisherExact {
        table: [[u64; 2]; 2],
        #[serde(default)]
        alternative: Alternative,
    },
    TwoProportionZ {
        successes: [u64; 2],
        trials: [u64; 2],
        #[serde(default)]
        alternative: Alternative,
        #[serde(default)]
        correction: bool,
        #[serde(default = "conf_95")]
        conf_level: f64,
    },
    PoissonRate {
        counts: [u64; 2],
        exposures: [f64; 2],
        #[serde(default)]
        alternative: Alternative,
        #[serde(default = "conf_95")]
        conf_level: f64,
    },
}

fn yes() -> bool {
    true
}

fn conf_95() -> f64 {
    0.95
}

fn floats(v: &[Num]) -> Vec<f64> {
    v.iter().map(|n| n.0).collect()
}

/// Parses a request, mapping serde's message to one line.
pub fn parse(text: &str) -> Result<StatsRequest, String> {
    serde_json::from_str(text).map_err(|e| format!("malformed stats request: {e}"))
}

/// Runs the test and renders its result in the CLI's JSON shape.
pub fn run(request: &StatsRequest) -> Result<Value, StatsError> {
    Ok(match request {
        StatsRequest::MannWhitney {
            x,
            y,
            alternative,
            method,
            use_continuity,
            conf_level,
        } => {
            let (x, y) = (floats(x), floats(y));
            let test = mann_whitney(
                &x,
                &y,
                &MannWhitneyConfig {
                    alternative: *alternative,
                    method: *method,
                    use_continuity: *use_continuity,
                },
            )?;
            // The interval follows R's own exact/asymptotic rule unless the
            // caller forced a method; scipy has no interval to follow.
            let exact = match method {
                Method::Auto => None,
                Method::Exact => Some(true),
                Method::Asymptotic => Some(false),
            };
            let hl = hodges_lehmann(
                &x,
                &y,
                &HodgesLehmannConfig {
                    alternative: *alternative,
                    conf_level: *conf_level,
                    correct: *use_continuity,
                    exact,
                },
            )?;
            json!({
                "u_statistic": number(test.u_statistic),
                "p_value": number(test.p_value),
                "method": test.method,
                "estimate": number(hl.estimate),
                "conf_int": interval(hl.lower, hl.upper),
                "achieved_conf_level": number(hl.achieved_conf_level),
            })
        }
        StatsRequest::WelchT {
            x,
            y,
            alternative,
            conf_level,
        } => {
            let r = welch(
                &floats(x),
                &floats(y),
                &WelchConfig {
                    alternative: *alternative,
                    conf_level: *conf_level,
                },
            )?;
            json!({
                "t": number(r.t),
                "df": number(r.df),
                "p_value": number(r.p_value),
                "conf_int": interval(r.conf_int.0, r.conf_int.1),
            })
        }
        StatsRequest::FisherExact { table, alternative } => {
            let r = fisher_exact(*table, *alternative)?;
            json!({ "p_value": number(r.p_value), "odds_ratio": number(r.odds_ratio) })
        }
        StatsRequest::TwoProportionZ {
            successes,
            trials,
            alternative,
            correction,
            conf_level,
        } => {
            let r = two_proportion_z(
                *successes,
                *trials,
                &TwoProportionConfig {
                    alternative: *alternative,
                    correction: *correction,
                    conf_level: *conf_level,
                },
            )?;
            json!({
                "z": number(r.z),
                "p_value": number(r.p_value),
                "conf_int": interval(r.conf_int.0, r.conf_int.1),
            })
        }
        StatsRequest::PoissonRate {
            counts,
            exposures,
            alternative,
            conf_level,
        } => {
            let r = poisson_rate_comparison(
                *counts,
                *exposures,
                &PoissonRateConfig {
                    alternative: *alternative,
                    conf_level: *conf_level,
                },
            )?;
            json!({
                "p_value": number(r.p_value),
                "rate_ratio": number(r.rate_ratio),
                "conf_int": interval(r.conf_int.0, r.conf_int.1),
            })
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_fields_and_tests_are_rejected() {
        let e =
            parse(r#"{"test":"mann-whitney","x":[1],"y":[2],"alternatve":"less"}"#).unwrap_err();
        assert!(e.contains("alternatve"), "{e}");
        let e = parse(r#"{"test":"t-test","x":[1],"y":[2]}"#).unwrap_err();
        assert!(e.contains("t-test"), "{e}");
    }

    #[test]
    fn defaults_follow_the_documented_contract() {
        match parse(r#"{"test":"mann-whitney","x":[1,2],"y":[3,"inf"]}"#).unwrap() {
            StatsRequest::MannWhitney {
                alternative,
                method,
                use_continuity,
                conf_level,
                y,
                ..
            } => {
                assert_eq!(alternative, Alternative::TwoSided);
                assert_eq!(method, Method::Auto);
                assert!(use_continuity);
                assert_eq!(conf_level, 0.95);
                assert_eq!(y[1].0, f64::INFINITY);
            }
            other => panic!("{other:?}"),
        }
    }
}

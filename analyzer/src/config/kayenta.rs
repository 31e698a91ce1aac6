//! Kayenta canary configs as Verdict analysis configs.
//!
//! A team moving from Kayenta lists its canary-config JSON files under
//! `kayenta_configs:` and each becomes an analysis named after the config.
//! Every metric becomes a gauge judged by the Kayenta-compatible classifier
//! with its own Kayenta settings (direction, NaN strategy, outliers, effect
//! sizes, critical, mustHaveData, muted); group weights and score
//! thresholds carry over.
//!
//! Queries: Kayenta's Prometheus query config is turned into a template per
//! arm. `${scope}` and `${location}` become `{{canary_scope}}` /
//! `{{baseline_scope}}` and `{{canary_location}}` / `{{baseline_location}}`,
//! so the webhook (Flagger metadata, Argo arguments) names the two scopes;
//! any other `${key}` becomes `{{key}}`. A `PromQL:` inline template is used
//! verbatim; otherwise Kayenta's default shape `avg(metricName{filters})`
//! is built. A metric whose query cannot tell canary from baseline (no
//! `${scope}`), or that would return several series (`groupByFields`), is
//! refused at load with the reason.
//!
//! Deviation: a Kayenta metric may list several groups; Verdict's analysis
//! metrics have one, so the first is used (the load warns in `verdict config
//! check` output through the problem list if more than one is given).

use super::analysis::default_thresholds;
use super::analysis::{
    AnalysisConfig, ArmQueries, EffectSize, FieldError, Guardrail, JudgeKind, MetricConfig,
    MetricKind, MinData,
};
use super::duration::PromDuration;
use verdict_judges::kayenta::config::{CanaryConfig, MetricQuery, PrometheusQuery};

/// Replaces `${key}` with `{{key}}`, arm-specific for scope and location.
fn expand(template: &str, arm: &str) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find("${") {
        out.push_str(&rest[..i]);
        match rest[i + 2..].find('}') {
            Some(end) => {
                let key = rest[i + 2..i + 2 + end].trim();
                let var = match key {
                    "scope" | "location" => format!("{arm}_{key}"),
                    other => other.to_string(),
                };
                out.push_str(&format!("{{{{{var}}}}}"));
                rest = &rest[i + 2 + end + 1..];
            }
            None => {
                out.push_str(&rest[i..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

fn arm_query(config: &CanaryConfig, q: &PrometheusQuery, arm: &str) -> Result<String, String> {
    if !q.group_by_fields.is_empty() {
        return Err(format!(
            "groupByFields {:?} would split the metric into several series; Verdict judges one series per arm",
            q.group_by_fields
        ));
    }
    let filter = if let Some(inline) = &q.custom_inline_template {
        if let Some(promql) = inline.strip_prefix("PromQL:") {
            return Ok(expand(promql, arm));
        }
        Some(inline.clone())
    } else if let Some(name) = &q.custom_filter_template {
        Some(config.templates.get(name).cloned().ok_or_else(|| {
            format!("customFilterTemplate {name:?} is not in the config's templates")
        })?)
    } else {
        q.custom_filter.clone()
    };
    let metric = q
        .metric_name
        .as_deref()
        .ok_or("needs metricName or a PromQL: customInlineTemplate")?;
    let mut filters: Vec<String> = q.label_bindings.clone();
    if let Some(f) = filter {
        filters.push(f);
    }
    Ok(expand(
        &format!("avg({metric}{{{}}})", filters.join(",")),
        arm,
    ))
}

/// Converts a Kayenta canary config; every problem is reported.
pub fn analysis_config(config: &CanaryConfig) -> Result<AnalysisConfig, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut metrics = Vec::new();
    for (i, m) in config.metrics.iter().enumerate() {
        let at = format!("metrics[{i}]");
        let query = match &m.query {
            Some(MetricQuery::Prometheus(q)) => q,
            Some(other) => {
                errors.push(FieldError {
                    path: format!("{at}.query"),
                    message: format!(
                        "query type {:?} is not supported; Verdict reads Prometheus",
                        other.query_type().unwrap_or("unknown")
                    ),
                });
                continue;
            }
            None => {
                errors.push(FieldError {
                    path: format!("{at}.query"),
                    message: "missing".into(),
                });
                continue;
            }
        };
        let (canary, baseline) = match (
            arm_query(config, query, "canary"),
            arm_query(config, query, "baseline"),
        ) {
            (Ok(c), Ok(b)) => (c, b),
            (Err(e), _) | (_, Err(e)) => {
                errors.push(FieldError {
                    path: format!("{at}.query"),
                    message: e,
                });
                continue;
            }
        };
        if canary == baseline {
            errors.push(FieldError {
                path: format!("{at}.query"),
                message: "the query does not use ${scope}, so canary and baseline would be the same series".into(),
            });
            continue;
        }
        let settings = m.settings();
        let es = settings.effect_size;
        metrics.push(MetricConfig {
            name: m.name.clone(),
            kind: MetricKind::Gauge,
            canary: ArmQueries::Single(canary),
            baseline: ArmQueries::Single(baseline),
            judge: Some(JudgeKind::MannWhitney),
            direction: settings.direction,
            critical: settings.critical,
            group: m
                .groups
                .first()
                .cloned()
                .unwrap_or_else(|| "default".into()),
            must_have_data: settings.must_have_data,
            muted: settings.muted,
            effect_size: EffectSize {
                measure: es.measure,
                allowed_increase: Some(es.allowed_increase),
                allowed_decrease: Some(es.allowed_decrease),
                critical_increase: Some(es.critical_increase),
                critical_decrease: Some(es.critical_decrease),
            },
            guardrail: Guardrail::default(),
            margin: 0.0,
            slow_above: None,
            quantile: None,
            kayenta: Some(settings),
        });
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let thresholds = config
        .classifier
        .score_thresholds
        .unwrap_or_else(default_thresholds);
    Ok(AnalysisConfig {
        description: config.description.clone().unwrap_or_default(),
        metrics,
        groups: config.classifier.group_weights.clone(),
        thresholds,
        min_data: MinData::default(),
        lookback: PromDuration::from_secs(60),
        step: PromDuration::from_secs(60),
        dedup_window: PromDuration::from_secs(5),
        baseline_window: Default::default(),
        alpha: 0.05,
        step_budget: None,
        steps: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scope_becomes_an_arm_variable() {
        assert_eq!(
            expand("up{pod=~'${scope}-.*',ns='${namespace}'}", "canary"),
            "up{pod=~'{{canary_scope}}-.*',ns='{{namespace}}'}"
        );
        assert_eq!(expand("x ${unclosed", "canary"), "x ${unclosed");
    }

    fn convert(file: &str) -> Result<AnalysisConfig, Vec<FieldError>> {
        let path = format!("{}/../fixtures/{file}", env!("CARGO_MANIFEST_DIR"));
        let config = CanaryConfig::from_json(&std::fs::read_to_string(&path).unwrap()).unwrap();
        analysis_config(&config)
    }

    fn only_error(result: Result<AnalysisConfig, Vec<FieldError>>) -> FieldError {
        let errors = result.expect_err("refused");
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
    }

    #[test]
    fn kayenta_queries_that_cannot_be_judged_per_arm_are_refused_with_the_reason() {
        // Kayenta judges each pod of a groupByFields query separately; Verdict
        // wants one series per arm.
        let e = only_error(convert("kayenta/checkout-golden-signals.json"));
        assert_eq!(e.path, "metrics[2].query");
        assert!(e.message.contains("groupByFields"), "{e:?}");
        let errors = convert("kayenta/api-gateway-legacy.json").expect_err("refused");
        assert!(
            errors[0].message.contains("\"atlas\" is not supported"),
            "{errors:?}"
        );
        // A metricName without a scope filter selects the same series twice.
        let e = only_error(convert("judge/checkout-canary-config.json"));
        assert_eq!(e.path, "metrics[2].query");
        assert!(e.message.contains("${scope}"), "{e:?}");
    }

    #[test]
    fn a_kayenta_config_becomes_a_valid_analysis() {
        let mut config = CanaryConfig::from_json(
            &std::fs::read_to_string(format!(
                "{}/../fixtures/judge/checkout-canary-config.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        config.metrics.truncate(2);
        let analysis = analysis_config(&config)
            .unwrap()
            .validate(&config.name, "")
            .expect("valid analysis");
        assert_eq!(analysis.metrics.len(), 2);
        let latency = &analysis.metrics[0];
        assert!(latency.config.critical);
        assert_eq!(latency.config.group, "latency");
        let canary = &latency.canary.templates()[0];
        assert!(
            canary.source().contains("app=\"{{canary_scope}}\""),
            "{}",
            canary.source()
        );
        assert_eq!(analysis.config.groups["latency"], 50.0);
        let errors = &analysis.metrics[1].config.kayenta.unwrap();
        assert_eq!(
            errors.nan_strategy,
            verdict_judges::kayenta::config::NanStrategy::Replace
        );
    }
}

//! Aggregates runs into rates and renders them as markdown or JSON.

use super::runner::{Judge, Metric, RuleOutcome, JUDGES};
use super::{ScenarioResult, SimConfig};
use serde::Serialize;

/// One (scenario, metric, judge) line of the report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub scenario: String,
    pub canary_worse: bool,
    pub metric: Metric,
    pub judge: Judge,
    pub runs: usize,
    /// Runs in which the judge aborted at some look (monitoring all looks).
    pub abort_any: usize,
    /// Runs in which the decision rule's first action was abort / promote.
    pub rule_abort: usize,
    pub rule_promote: usize,
    /// Runs with neither within the looks.
    pub rule_inconclusive: usize,
    /// Median look of the rule's abort, over runs where it aborted first.
    pub median_abort_look: Option<f64>,
    /// Median look of the rule's promote, over runs where it promoted first.
    pub median_promote_look: Option<f64>,
}

fn median(mut v: Vec<u32>) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] as f64 + v[n / 2] as f64) / 2.0
    })
}

pub fn summarize(results: &[ScenarioResult]) -> Vec<Row> {
    let mut rows = Vec::new();
    for result in results {
        for (mi, &metric) in result.scenario.metrics.iter().enumerate() {
            for (ji, &judge) in JUDGES.iter().enumerate() {
                let column = mi * JUDGES.len() + ji;
                let mut row = Row {
                    scenario: result.scenario.name.to_string(),
                    canary_worse: result.scenario.canary_worse,
                    metric,
                    judge,
                    runs: result.outcomes.len(),
                    abort_any: 0,
                    rule_abort: 0,
                    rule_promote: 0,
                    rule_inconclusive: 0,
                    median_abort_look: None,
                    median_promote_look: None,
                };
                let (mut aborts, mut promotes) = (Vec::new(), Vec::new());
                for run in &result.outcomes {
                    let o = run[column];
                    if o.first_abort.is_some() {
                        row.abort_any += 1;
                    }
                    match o.rule() {
                        RuleOutcome::Abort(t) => aborts.push(t),
                        RuleOutcome::Promote(t) => promotes.push(t),
                        RuleOutcome::Inconclusive => row.rule_inconclusive += 1,
                    }
                }
                row.rule_abort = aborts.len();
                row.rule_promote = promotes.len();
                row.median_abort_look = median(aborts);
                row.median_promote_look = median(promotes);
                rows.push(row);
            }
        }
    }
    rows
}

/// Wilson score interval (95 %) for `k` of `n`, in percent.
fn wilson(k: usize, n: usize) -> (f64, f64) {
    let (k, n) = (k as f64, n as f64);
    let z = 1.959_963_984_540_054_f64;
    let p = k / n;
    let denom = 1.0 + z * z / n;
    let centre = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    (
        100.0 * (centre - half).max(0.0),
        100.0 * (centre + half).min(1.0),
    )
}

fn pct(k: usize, n: usize) -> String {
    format!("{:.1} %", 100.0 * k as f64 / n as f64)
}

fn pct_ci(k: usize, n: usize) -> String {
    let (lo, hi) = wilson(k, n);
    format!("{} [{lo:.1}, {hi:.1}]", pct(k, n))
}

fn look(v: Option<f64>) -> String {
    v.map_or_else(|| "-".to_string(), |x| format!("{x}"))
}

/// The markdown report: parameters, identical-arms table, worse-canary table.
pub fn markdown(config: &SimConfig, rows: &[Row]) -> String {
    let mut s = String::new();
    s.push_str(&format!(
        "Parameters: {} runs per scenario, {} looks (1 look = 1 min = 2 query steps of 30 s), \
         seed {}, canary weight {}, alpha {} per judge and metric, {} requests per look \
         (both arms, daily mean), promote allowed from look {}, bucket-label kappa {}, \
         normal-mixture minimum {} trials per arm, Kayenta minimum {} points per arm.\n\n",
        config.runs,
        config.looks,
        config.seed,
        config.weight,
        config.alpha,
        config.requests_per_look,
        config.min_looks,
        config.kappa,
        config.min_n_per_arm,
        config.kayenta_min_points,
    ));
    let null: Vec<&Row> = rows.iter().filter(|r| !r.canary_worse).collect();
    if !null.is_empty() {
        s.push_str("**Identical arms** (every abort is false). \"False abort\" = the judge aborted at some look within all looks (95 % Wilson interval); then what the decision rule did first.\n\n");
        s.push_str("| scenario | metric | judge | false abort (any look) | rule: abort | rule: promote | inconclusive | median promote look |\n");
        s.push_str("|---|---|---|---|---|---|---|---|\n");
        for r in null {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                r.scenario,
                r.metric.name(),
                r.judge.name(),
                pct_ci(r.abort_any, r.runs),
                pct(r.rule_abort, r.runs),
                pct(r.rule_promote, r.runs),
                pct(r.rule_inconclusive, r.runs),
                look(r.median_promote_look),
            ));
        }
        s.push('\n');
    }
    let worse: Vec<&Row> = rows.iter().filter(|r| r.canary_worse).collect();
    if !worse.is_empty() {
        s.push_str("**Canary truly worse.** Detection = the decision rule aborts before it promotes; looks to detect = median look of that abort; false promote = the rule promotes first (95 % Wilson interval); the last column monitors all looks ignoring promotes.\n\n");
        s.push_str("| scenario | judge | detection | median looks to detect | false promote | inconclusive | abort at any look |\n");
        s.push_str("|---|---|---|---|---|---|---|\n");
        for r in worse {
            s.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} |\n",
                r.scenario,
                r.judge.name(),
                pct(r.rule_abort, r.runs),
                look(r.median_abort_look),
                pct_ci(r.rule_promote, r.runs),
                pct(r.rule_inconclusive, r.runs),
                pct(r.abort_any, r.runs),
            ));
        }
        s.push('\n');
    }
    let pairs = weight_unknown_pairs(rows);
    if !pairs.is_empty() {
        s.push_str("**Weight unknown against weight known** (the daemon's judge told no weight, as Flagger and Argo call it without a schedule, against the same judge told each look's weight, on the same runs). Ratios unknown / known.\n\n");
        s.push_str("| scenario | metric | false abort (any look), unknown / known | detection ratio | looks-to-detect ratio |\n");
        s.push_str("|---|---|---|---|---|\n");
        for (known, unknown) in pairs {
            let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
                (Some(a), Some(b)) if b > 0.0 => format!("{:.2}", a / b),
                _ => "-".to_string(),
            };
            let rate = |r: &Row| r.rule_abort as f64 / r.runs as f64;
            let (detection, looks) = if known.canary_worse {
                (
                    ratio(Some(rate(unknown)), Some(rate(known))),
                    ratio(unknown.median_abort_look, known.median_abort_look),
                )
            } else {
                ("-".to_string(), "-".to_string())
            };
            s.push_str(&format!(
                "| {} | {} | {} / {} | {} | {} |\n",
                known.scenario,
                known.metric.name(),
                pct(unknown.abort_any, unknown.runs),
                pct(known.abort_any, known.runs),
                detection,
                looks,
            ));
        }
    }
    s
}

/// The (weight known, weight unknown) rows of the daemon's judge for each
/// scenario and metric.
pub fn weight_unknown_pairs(rows: &[Row]) -> Vec<(&Row, &Row)> {
    rows.iter()
        .filter(|r| r.judge == Judge::Verdict)
        .filter_map(|known| {
            let unknown = rows.iter().find(|r| {
                r.judge == Judge::VerdictWeightUnknown
                    && r.scenario == known.scenario
                    && r.metric == known.metric
            })?;
            Some((known, unknown))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_wilson() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3, 1, 2]), Some(2.0));
        assert_eq!(median(vec![4, 1, 2, 3]), Some(2.5));
        let (lo, hi) = wilson(0, 1000);
        assert!(lo.abs() < 1e-9);
        assert!((hi - 0.383).abs() < 0.01, "{hi}");
        let (lo, hi) = wilson(50, 1000);
        assert!(lo < 5.0 && hi > 5.0);
    }
}

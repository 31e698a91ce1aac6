//! The HTML report on real looks: the engine judges in-memory series, the
//! report renders them. Checks that the page is well-formed (balanced
//! tags), shows every metric and every look, escapes data, and fetches
//! nothing from the network.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use verdict::engine::run::{Look, RunKey};
use verdict::engine::{Engine, LookRequest};
use verdict::report::{render_html, ReportInput, ReportSeries};
use verdict::source::memory::MemorySource;
use verdict::source::{Sample, Series};
use verdict::telemetry::Telemetry;

const CONFIG: &str = r#"
analyses:
  web:
    lookback: 1m
    step: 15s
    min_data: {points: 3, requests: 50}
    metrics:
      - name: '<script>alert("p99")</script>'
        kind: gauge
        canary: 'p99{app="{{name}}-canary"}'
        baseline: 'p99{app="{{name}}-primary"}'
      - name: errors
        kind: counter
        canary: {errors: 'errors{app="{{name}}-canary"}', total: 'total{app="{{name}}-canary"}'}
        baseline: {errors: 'errors{app="{{name}}-primary"}', total: 'total{app="{{name}}-primary"}'}
      - name: latency
        kind: histogram
        slow_above: 0.25
        canary: 'sum by (le) (bucket{app="{{name}}-canary"})'
        baseline: 'sum by (le) (bucket{app="{{name}}-primary"})'
"#;

const START: f64 = 1_762_164_000.0;
const LES: [f64; 3] = [0.1, 0.25, f64::INFINITY];

/// Ten minutes of both arms; the canary's error counter climbs faster.
fn recorded() -> Vec<ReportSeries> {
    let mut out = Vec::new();
    for (arm, rps, error_share, p99) in [("baseline", 20.0, 0.01, 0.3), ("canary", 5.0, 0.05, 0.32)]
    {
        let times: Vec<f64> = (0..=40).map(|i| START + 15.0 * i as f64).collect();
        let series = |metric: &str, le: Option<f64>, f: &dyn Fn(f64, usize) -> f64| ReportSeries {
            metric: metric.into(),
            arm: arm.into(),
            le,
            points: times
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, f(t - START, i)))
                .collect(),
        };
        out.push(series("<script>alert(\"p99\")</script>", None, &|_, i| {
            if i == 7 {
                f64::NAN
            } else {
                p99 + 0.01 * (i % 5) as f64
            }
        }));
        out.push(series("errors:total", None, &|s, _| (rps * s).floor()));
        out.push(series("errors:errors", None, &|s, _| {
            (rps * s * error_share).floor()
        }));
        for (k, le) in LES.iter().enumerate() {
            let share = [0.7, 0.9, 1.0][k];
            out.push(series("latency", Some(*le), &|s, _| {
                (rps * s * share).floor()
            }));
        }
    }
    out
}

fn query_for(s: &ReportSeries) -> String {
    let app = if s.arm == "canary" {
        "checkout-canary"
    } else {
        "checkout-primary"
    };
    match s.metric.as_str() {
        "errors:total" => format!("total{{app=\"{app}\"}}"),
        "errors:errors" => format!("errors{{app=\"{app}\"}}"),
        "latency" => format!("sum by (le) (bucket{{app=\"{app}\"}})"),
        _ => format!("p99{{app=\"{app}\"}}"),
    }
}

async fn looks(series: &[ReportSeries]) -> Vec<Look> {
    let mut by_query: BTreeMap<String, Vec<Series>> = BTreeMap::new();
    for s in series {
        by_query.entry(query_for(s)).or_default().push(Series {
            labels: s
                .le
                .map(|le| {
                    let text = if le.is_infinite() {
                        "+Inf".to_string()
                    } else {
                        le.to_string()
                    };
                    BTreeMap::from([("le".to_string(), text)])
                })
                .unwrap_or_default(),
            samples: s
                .points
                .iter()
                .map(|&(timestamp, value)| Sample { timestamp, value })
                .collect(),
        });
    }
    let mut source = MemorySource::new();
    for (q, s) in by_query {
        source.insert(q, s);
    }
    let config = verdict::config::load_str(Path::new("t.yaml"), CONFIG, Vec::new()).unwrap();
    let engine = Engine::new(
        config.analyses,
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let mut out = Vec::new();
    for k in 1..=10 {
        let look = engine
            .look(LookRequest {
                key: RunKey::Replay { name: "r".into() },
                analysis: "web".into(),
                vars: BTreeMap::from([("name".to_string(), "checkout".to_string())]),
                now: START + 60.0 * k as f64,
                weight: Some(20.0),
                steps: None,
            })
            .await
            .unwrap();
        out.push((*look).clone());
    }
    out
}

/// Checks that every element is closed in order (void elements excepted)
/// and that no stray `<` or `>` is left in text.
fn assert_balanced(html: &str) {
    const VOID: [&str; 4] = ["meta", "br", "hr", "img"];
    let mut stack: Vec<String> = Vec::new();
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        assert!(
            !rest[..open].contains('>'),
            "stray > in text before {:?}",
            &rest[open..open.min(rest.len()) + 40.min(rest.len() - open)]
        );
        let close = rest[open..].find('>').expect("unterminated tag") + open;
        let tag = &rest[open + 1..close];
        assert!(!tag.contains('<'), "< inside a tag: {tag}");
        rest = &rest[close + 1..];
        if tag.starts_with('!') {
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect();
        if let Some(stripped) = tag.strip_prefix('/') {
            let top = stack
                .pop()
                .unwrap_or_else(|| panic!("</{stripped}> closes nothing"));
            assert_eq!(top, name, "</{name}> closes <{top}>");
        } else if !self_closing && !VOID.contains(&name.as_str()) {
            stack.push(name);
        }
    }
    assert!(!rest.contains('>'), "stray > at the end");
    assert!(stack.is_empty(), "unclosed: {stack:?}");
}

#[tokio::test]
async fn report_is_well_formed_complete_escaped_and_offline() {
    let series = recorded();
    let looks = looks(&series).await;
    assert_eq!(looks.len(), 10);
    let html = render_html(&ReportInput {
        title: "Replay of <b>checkout</b> & friends",
        analysis: "web",
        looks: &looks,
        series: &series,
        summary: "final decision: continue",
    });
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_balanced(&html);
    // Data never becomes markup.
    assert!(!html.to_lowercase().contains("<script"), "unescaped script");
    assert!(html.contains("&lt;script&gt;alert(&quot;p99&quot;)&lt;/script&gt;"));
    assert!(html.contains("Replay of &lt;b&gt;checkout&lt;/b&gt; &amp; friends"));
    // Nothing fetched at view time.
    for needle in ["http://", "https://", "src=", "@import", "url("] {
        assert!(!html.contains(needle), "{needle} in the report");
    }
    // Every metric has its section and its charts.
    for id in ["metric-&lt;script&gt;", "metric-errors", "metric-latency"] {
        assert!(html.contains(&format!("id=\"{id}")), "{id}");
    }
    assert!(html.contains("errors: errors / total per interval"));
    assert!(html.contains("latency: share of requests per bucket"));
    assert!(html.contains("class=\"series canary\""));
    assert!(html.contains("class=\"bar baseline\""));
    // Every look has its row, its decision and its reasons.
    for look in &looks {
        assert!(
            html.contains(&format!("id=\"look-{}\"", look.number)),
            "look {}",
            look.number
        );
        for reason in &look.decision.reasons {
            assert!(html.contains(&verdict::report::escape(reason)), "{reason}");
        }
    }
    assert!(looks.iter().all(|l| !l.decision.reasons.is_empty()));
}

#[test]
fn a_report_without_looks_or_series_is_still_a_page() {
    let html = render_html(&ReportInput {
        title: "empty",
        analysis: "web",
        looks: &[],
        series: &[],
        summary: "",
    });
    assert_balanced(&html);
    assert!(html.contains("0 looks"));
}

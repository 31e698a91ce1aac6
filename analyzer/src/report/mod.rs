//! The replay report: one self-contained HTML file an engineer can attach
//! to an incident review (`verdict replay --report out.html`).
//!
//! Contents, top to bottom: the title and summary; the decision timeline
//! (one cell per look, coloured by action); per metric, the canary and
//! baseline series as inline SVG (gauges as lines; counters as the error
//! ratio and the request rate per interval; histograms as the distribution
//! of requests over buckets) with the metric's look-by-look classification
//! strip; and the table of looks with each decision's reasons and every
//! metric's reason.
//!
//! Self-contained means: inline CSS and SVG only, no script, no font or
//! image fetched, so it opens offline years later. Every string that comes
//! from data (metric names, reasons, titles) is escaped with [`escape`].
//!
//! Counter metrics arrive as two series per arm named `<metric>:errors` and
//! `<metric>:total` (the recording format); histogram buckets carry `le`.

mod svg;

use crate::engine::run::Look;
use crate::source::increments::step_increase;
use std::fmt::Write as _;
use verdict_judges::decision::Action;
use verdict_judges::kayenta::classifier::Label;

/// One recorded series of one arm.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportSeries {
    /// Analysis metric name, or `<metric>:errors` / `<metric>:total` for counters.
    pub metric: String,
    /// `baseline` or `canary`.
    pub arm: String,
    /// Histogram bucket upper bound.
    pub le: Option<f64>,
    /// (unix seconds, value); NaN is a missing sample.
    pub points: Vec<(f64, f64)>,
}

/// Everything a report shows.
#[derive(Debug, Clone, Copy)]
pub struct ReportInput<'a> {
    pub title: &'a str,
    pub analysis: &'a str,
    pub looks: &'a [Look],
    pub series: &'a [ReportSeries],
    /// One paragraph: the final decision, time to decision...
    pub summary: &'a str,
}

/// Escapes text for HTML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:2em;border-bottom:1px solid #ddd}
.summary{background:#f6f6f6;padding:.8em;border-radius:4px;white-space:pre-wrap}
.chart{width:100%;height:auto;display:block;margin:.5em 0}
.frame{fill:none;stroke:#ccc}.tick{font-size:11px;fill:#555}
.series{fill:none;stroke-width:1.5}.series.baseline{stroke:#1f77b4}.series.canary{stroke:#e4572e}
.bar.baseline{fill:#1f77b4}.bar.canary{fill:#e4572e}
.marker{stroke-width:1.5;stroke-dasharray:4 3}.marker.abort{stroke:#c0392b}.marker.promote{stroke:#27ae60}
.legend span{display:inline-block;margin-right:1.2em;font-size:.9em}
.legend i{display:inline-block;width:.9em;height:.9em;margin-right:.3em;vertical-align:middle}
.promote{fill:#27ae60;background:#27ae60}.continue{fill:#b0b0b0;background:#b0b0b0}
.abort{fill:#c0392b;background:#c0392b}.inconclusive{fill:#f39c12;background:#f39c12}
.pass{fill:#27ae60;background:#27ae60}.regressed{fill:#c0392b;background:#c0392b}
.nodata{fill:#b0b0b0;background:#b0b0b0}.error{fill:#f39c12;background:#f39c12}
i.baseline{background:#1f77b4}i.canary{background:#e4572e}
table{border-collapse:collapse;width:100%;font-size:.85em}
td,th{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}
td.cell{color:#fff;font-weight:600;text-align:center}
ul{margin:0;padding-left:1.2em}details summary{cursor:pointer}
";

fn action_class(a: Action) -> &'static str {
    a.as_str()
}

fn label_class(l: Label) -> &'static str {
    match l {
        Label::Pass => "pass",
        Label::High | Label::Low => "regressed",
        Label::Nodata | Label::NodataFailMetric => "nodata",
        Label::Error => "error",
    }
}

fn time(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_else(|| format!("{t}"))
}

/// A strip of cells over the looks, one per look, coloured by `class`.
fn strip(title: &str, looks: &[Look], cell: impl Fn(&Look) -> (&'static str, String)) -> String {
    let n = looks.len().max(1) as f64;
    let (width, height) = (svg::WIDTH, 28.0);
    let w = width / n;
    let mut s = format!(
        r#"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{t}"><title>{t}</title>"#,
        t = escape(title)
    );
    for (i, look) in looks.iter().enumerate() {
        let (class, text) = cell(look);
        let _ = write!(
            s,
            r#"<rect class="{class}" x="{:.2}" y="2" width="{:.2}" height="{}"><title>{}</title></rect>"#,
            i as f64 * w,
            (w - if w > 3.0 { 1.0 } else { 0.0 }).max(0.1),
            height - 4.0,
            escape(&text)
        );
    }
    s.push_str("</svg>");
    s
}

fn legend(items: &[(&str, &str)]) -> String {
    let mut s = String::from(r#"<p class="legend">"#);
    for (class, text) in items {
        let _ = write!(s, r#"<span><i class="{class}"></i>{}</span>"#, escape(text));
    }
    s.push_str("</p>");
    s
}

/// The base metric of a recorded series name (`errors:total` -> `errors`).
fn base_name(metric: &str) -> (&str, Option<&str>) {
    for part in ["errors", "total"] {
        if let Some(base) = metric.strip_suffix(part).and_then(|m| m.strip_suffix(':')) {
            return (base, Some(part));
        }
    }
    (metric, None)
}

/// Sample timestamps and values of the series of `metric` / `arm` / part.
fn find<'a>(
    series: &'a [ReportSeries],
    base: &str,
    part: Option<&str>,
    arm: &str,
) -> Vec<&'a ReportSeries> {
    series
        .iter()
        .filter(|s| s.arm == arm && base_name(&s.metric) == (base, part))
        .collect()
}

/// Sums the increments of a cumulative counter into `bins` bins of width
/// `bin` from `x0` (NaN samples skipped; a drop is a reset, by the source's
/// one rule, [`step_increase`]).
fn binned_increments(points: &[(f64, f64)], x0: f64, bin: f64, bins: usize) -> Vec<f64> {
    let mut out = vec![0.0; bins];
    let mut last: Option<f64> = None;
    for &(t, v) in points {
        if !v.is_finite() {
            continue;
        }
        if let Some(prev) = last {
            let inc = step_increase(prev, v);
            let i = (((t - x0) / bin).ceil() as usize)
                .saturating_sub(1)
                .min(bins - 1);
            out[i] += inc;
        }
        last = Some(v);
    }
    out
}

fn counter_charts(name: &str, series: &[ReportSeries], markers: &[svg::Marker<'_>]) -> String {
    let all: Vec<&ReportSeries> = ["baseline", "canary"]
        .iter()
        .flat_map(|arm| find(series, name, Some("total"), arm))
        .collect();
    let times = || all.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = (
        times().fold(f64::INFINITY, f64::min),
        times().fold(f64::NEG_INFINITY, f64::max),
    );
    if !(x0.is_finite() && x1 > x0) {
        return "<p>No request counts recorded.</p>".into();
    }
    // About a hundred bins of whole sample steps (a bin holding sometimes
    // two and sometimes three scrapes would draw a sawtooth): per-scrape
    // ratios of a small canary are mostly 0.
    let step = all
        .iter()
        .flat_map(|s| s.points.windows(2).map(|w| w[1].0 - w[0].0))
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let bin = step * ((x1 - x0) / 100.0 / step).ceil().max(1.0);
    let bins = ((x1 - x0) / bin).ceil().max(1.0) as usize;
    let mut ratio_lines = Vec::new();
    let mut rate_lines = Vec::new();
    for arm in ["baseline", "canary"] {
        let sum = |part| {
            let mut acc = vec![0.0; bins];
            let found = find(series, name, Some(part), arm);
            for s in &found {
                for (a, x) in acc
                    .iter_mut()
                    .zip(binned_increments(&s.points, x0, bin, bins))
                {
                    *a += x;
                }
            }
            (!found.is_empty()).then_some(acc)
        };
        let Some(total) = sum("total") else { continue };
        // No error series: no error happened yet (Prometheus has no series).
        let errors = sum("errors").unwrap_or_else(|| vec![0.0; bins]);
        let mid = |i: usize| x0 + bin * (i as f64 + 0.5);
        ratio_lines.push(svg::Line {
            label: arm,
            class: arm,
            points: (0..bins)
                .map(|i| {
                    (
                        mid(i),
                        if total[i] > 0.0 {
                            errors[i] / total[i]
                        } else {
                            f64::NAN
                        },
                    )
                })
                .collect(),
        });
        rate_lines.push(svg::Line {
            label: arm,
            class: arm,
            points: (0..bins).map(|i| (mid(i), total[i] / bin)).collect(),
        });
    }
    let mut s = String::new();
    if let Some(c) = svg::line_chart(
        &format!("{name}: error ratio per interval"),
        "ratio",
        &ratio_lines,
        markers,
    ) {
        let _ = write!(
            s,
            "<h3>{}: errors / total per interval</h3>{c}",
            escape(name)
        );
    }
    if let Some(c) = svg::line_chart(
        &format!("{name}: events per second"),
        "per s",
        &rate_lines,
        markers,
    ) {
        let _ = write!(s, "<h3>{}: total per second</h3>{c}", escape(name));
    }
    s
}

fn histogram_chart(name: &str, series: &[ReportSeries]) -> String {
    let mut les: Vec<f64> = series
        .iter()
        .filter(|s| s.metric == name)
        .filter_map(|s| s.le)
        .collect();
    les.sort_by(f64::total_cmp);
    les.dedup();
    let mut groups = Vec::new();
    for arm in ["baseline", "canary"] {
        // Increase of each cumulative bucket over the recording.
        let cumulative: Vec<f64> = les
            .iter()
            .map(|le| {
                find(series, name, None, arm)
                    .iter()
                    .filter(|s| s.le == Some(*le))
                    .map(|s| {
                        let finite: Vec<f64> = s
                            .points
                            .iter()
                            .map(|p| p.1)
                            .filter(|v| v.is_finite())
                            .collect();
                        match (finite.first(), finite.last()) {
                            (Some(a), Some(b)) => (b - a).max(0.0),
                            _ => 0.0,
                        }
                    })
                    .sum()
            })
            .collect();
        let per_bucket: Vec<f64> = cumulative
            .iter()
            .enumerate()
            .map(|(i, c)| (c - if i == 0 { 0.0 } else { cumulative[i - 1] }).max(0.0))
            .collect();
        let total: f64 = per_bucket.iter().sum();
        if total > 0.0 {
            groups.push((arm, arm, per_bucket.iter().map(|c| c / total).collect()));
        }
    }
    if groups.is_empty() {
        return "<p>No requests recorded in the histogram.</p>".into();
    }
    let categories: Vec<String> = les
        .iter()
        .map(|le| {
            if le.is_infinite() {
                "+Inf".into()
            } else {
                format!("≤{le}")
            }
        })
        .collect();
    format!(
        "<h3>{}: share of requests per bucket over the recording</h3>{}",
        escape(name),
        svg::bar_chart(
            &format!("{name}: distribution of requests"),
            &categories,
            &groups
        )
    )
}

fn gauge_chart(name: &str, series: &[ReportSeries], markers: &[svg::Marker<'_>]) -> String {
    let lines: Vec<svg::Line<'_>> = ["baseline", "canary"]
        .iter()
        .flat_map(|arm| find(series, name, None, arm))
        .map(|s| svg::Line {
            label: if s.arm == "canary" {
                "canary"
            } else {
                "baseline"
            },
            class: if s.arm == "canary" {
                "canary"
            } else {
                "baseline"
            },
            points: s.points.clone(),
        })
        .collect();
    match svg::line_chart(name, "value", &lines, markers) {
        Some(c) => format!("<h3>{}: values</h3>{c}", escape(name)),
        None => "<p>No finite values recorded.</p>".into(),
    }
}

/// Metric names in report order: the looks' metrics, then any other recorded one.
fn metric_names(input: &ReportInput<'_>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let mut push = |n: &str| {
        if !names.iter().any(|x| x == n) {
            names.push(n.to_string());
        }
    };
    for look in input.looks {
        for m in &look.metrics {
            push(&m.name);
        }
    }
    for s in input.series {
        push(base_name(&s.metric).0);
    }
    names
}

/// Renders the report (see the module documentation).
pub fn render_html(input: &ReportInput<'_>) -> String {
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body>",
        escape(input.title)
    );
    let _ = write!(
        h,
        "<h1>{}</h1><p>Analysis <b>{}</b>, {} look{}.</p><div class=\"summary\">{}</div>",
        escape(input.title),
        escape(input.analysis),
        input.looks.len(),
        if input.looks.len() == 1 { "" } else { "s" },
        escape(input.summary)
    );
    h.push_str("<h2>Decisions</h2>");
    h.push_str(&legend(&[
        ("promote", "promote"),
        ("continue", "continue"),
        ("abort", "abort"),
        ("inconclusive", "inconclusive"),
    ]));
    h.push_str(&strip("decision per look", input.looks, |l| {
        (
            action_class(l.decision.action),
            format!(
                "look {} at {}: {} (score {:.1})",
                l.number,
                time(l.time),
                l.decision.action.as_str(),
                l.decision.score
            ),
        )
    }));
    let first = |a: Action| input.looks.iter().find(|l| l.decision.action == a);
    let markers: Vec<svg::Marker<'_>> = [
        (Action::Abort, "first abort"),
        (Action::Promote, "first promote"),
    ]
    .into_iter()
    .filter_map(|(a, label)| {
        first(a).map(|l| svg::Marker {
            time: l.time,
            label,
            class: a.as_str(),
        })
    })
    .collect();

    for name in metric_names(input) {
        let _ = write!(
            h,
            "<h2 id=\"metric-{}\">{}</h2>",
            escape(&name),
            escape(&name)
        );
        h.push_str(&legend(&[("baseline", "baseline"), ("canary", "canary")]));
        let mine: Vec<&ReportSeries> = input
            .series
            .iter()
            .filter(|s| base_name(&s.metric).0 == name)
            .collect();
        if mine.is_empty() {
            h.push_str("<p>No recorded series for this metric.</p>");
        } else if mine.iter().any(|s| base_name(&s.metric).1.is_some()) {
            h.push_str(&counter_charts(&name, input.series, &markers));
        } else if mine.iter().any(|s| s.le.is_some()) {
            h.push_str(&histogram_chart(&name, input.series));
        } else {
            h.push_str(&gauge_chart(&name, input.series, &markers));
        }
        if input
            .looks
            .iter()
            .any(|l| l.metrics.iter().any(|m| m.name == name))
        {
            h.push_str("<h3>Classification per look</h3>");
            h.push_str(&strip(
                &format!("{name}: classification per look"),
                input.looks,
                |l| match l.metrics.iter().find(|m| m.name == name) {
                    Some(m) => (
                        label_class(m.classification),
                        format!(
                            "look {}: {} {}",
                            l.number,
                            m.classification.verdict_name(),
                            m.reason
                        ),
                    ),
                    None => ("nodata", format!("look {}: not judged", l.number)),
                },
            ));
        }
    }

    let names = metric_names(input);
    h.push_str("<h2>Looks</h2><table><thead><tr><th>Look</th><th>Time</th><th>Weight</th><th>Decision</th><th>Score</th>");
    for n in &names {
        let _ = write!(h, "<th>{}</th>", escape(n));
    }
    h.push_str("<th>Reasons</th></tr></thead><tbody>");
    for l in input.looks {
        let _ = write!(
            h,
            "<tr id=\"look-{n}\"><td>{n}</td><td>{}</td><td>{}</td><td class=\"cell {c}\">{c}</td><td>{:.2}</td>",
            time(l.time),
            l.weight.map(|w| format!("{}%", svg::number(w))).unwrap_or_else(|| "–".into()),
            l.decision.score,
            n = l.number,
            c = action_class(l.decision.action),
        );
        for n in &names {
            match l.metrics.iter().find(|m| &m.name == n) {
                Some(m) => {
                    let _ = write!(
                        h,
                        "<td class=\"cell {}\">{}</td>",
                        label_class(m.classification),
                        m.classification.verdict_name()
                    );
                }
                None => h.push_str("<td></td>"),
            }
        }
        h.push_str("<td><ul>");
        for r in &l.decision.reasons {
            let _ = write!(h, "<li>{}</li>", escape(r));
        }
        h.push_str("</ul>");
        let explained: Vec<_> = l.metrics.iter().filter(|m| !m.reason.is_empty()).collect();
        if !explained.is_empty() {
            h.push_str("<details><summary>metric reasons</summary><ul>");
            for m in explained {
                let _ = write!(
                    h,
                    "<li><b>{}</b>: {}</li>",
                    escape(&m.name),
                    escape(&m.reason)
                );
            }
            h.push_str("</ul></details>");
        }
        h.push_str("</td></tr>");
    }
    h.push_str("</tbody></table>");
    let _ = writeln!(
        h,
        "<p class=\"tick\">Generated by verdict {}. Times are UTC.</p></body></html>",
        env!("CARGO_PKG_VERSION")
    );
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn counter_parts_share_a_base() {
        assert_eq!(base_name("errors:errors"), ("errors", Some("errors")));
        assert_eq!(base_name("accuracy:total"), ("accuracy", Some("total")));
        assert_eq!(base_name("p99-latency"), ("p99-latency", None));
    }

    #[test]
    fn increments_are_binned_with_resets() {
        let points = [
            (0.0, 10.0),
            (15.0, 12.0),
            (30.0, f64::NAN),
            (45.0, 20.0),
            (60.0, 3.0),
        ];
        // Bins of 30 s from 0: (0,30] gets 2, (30,60] gets 8 + 3 (a reset).
        assert_eq!(binned_increments(&points, 0.0, 30.0, 2), vec![2.0, 11.0]);
    }
}

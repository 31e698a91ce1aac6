//! Inline SVG charts: line plots of time series and grouped bars of a
//! distribution. Plain markup, no scripts; every label goes through
//! [`super::escape`].

use super::escape;
use std::fmt::Write as _;

pub const WIDTH: f64 = 760.0;
pub const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 30.0;

/// One line of a plot.
pub struct Line<'a> {
    pub label: &'a str,
    pub class: &'a str,
    /// (unix s, value); NaN values break the line.
    pub points: Vec<(f64, f64)>,
}

/// A vertical marker (e.g. the first abort).
pub struct Marker<'a> {
    pub time: f64,
    pub label: &'a str,
    pub class: &'a str,
}

fn clock(t: f64) -> String {
    chrono::DateTime::from_timestamp(t.floor() as i64, 0)
        .map(|d| d.format("%H:%M").to_string())
        .unwrap_or_default()
}

/// Formats an axis value with about three significant digits.
pub fn number(v: f64) -> String {
    if v == 0.0 || !v.is_finite() {
        return format!("{v}");
    }
    let digits = (2 - v.abs().log10().floor() as i32).clamp(0, 6) as usize;
    format!("{v:.digits$}")
}

/// At most about two points per horizontal pixel: the minimum and the
/// maximum of each pixel column, so spikes survive and a year of 15 s data
/// stays a small file. NaN points are kept as breaks.
fn thin(points: &[(f64, f64)], x0: f64, x1: f64) -> Vec<(f64, f64)> {
    /// The open pixel column: its index, lowest and highest point.
    type Column = Option<(usize, (f64, f64), (f64, f64))>;
    let columns = (WIDTH - LEFT - RIGHT) as usize;
    if points.len() <= 2 * columns || x1 <= x0 {
        return points.to_vec();
    }
    let mut out = Vec::with_capacity(3 * columns);
    let mut current: Column = None;
    let flush = |c: &mut Column, out: &mut Vec<(f64, f64)>| {
        if let Some((_, lo, hi)) = c.take() {
            let (a, b) = if lo.0 <= hi.0 { (lo, hi) } else { (hi, lo) };
            out.push(a);
            if a != b {
                out.push(b);
            }
        }
    };
    for &(t, v) in points {
        if v.is_nan() {
            flush(&mut current, &mut out);
            out.push((t, v));
            continue;
        }
        let col = (((t - x0) / (x1 - x0)) * columns as f64) as usize;
        match &mut current {
            Some((c, lo, hi)) if *c == col => {
                if v < lo.1 {
                    *lo = (t, v);
                }
                if v > hi.1 {
                    *hi = (t, v);
                }
            }
            _ => {
                flush(&mut current, &mut out);
                current = Some((col, (t, v), (t, v)));
            }
        }
    }
    flush(&mut current, &mut out);
    out
}

/// A line chart of `lines` over time, with `markers`; `title` is the
/// accessible name. Returns `None` when there is no finite point.
pub fn line_chart(
    title: &str,
    y_label: &str,
    lines: &[Line<'_>],
    markers: &[Marker<'_>],
) -> Option<String> {
    let finite = || {
        lines
            .iter()
            .flat_map(|l| l.points.iter())
            .filter(|p| p.0.is_finite() && p.1.is_finite())
    };
    let (mut x0, mut x1, mut y0, mut y1) = (
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::INFINITY,
        f64::NEG_INFINITY,
    );
    for &(t, v) in finite() {
        x0 = x0.min(t);
        x1 = x1.max(t);
        y0 = y0.min(v);
        y1 = y1.max(v);
    }
    if !x0.is_finite() {
        return None;
    }
    y0 = y0.min(0.0);
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let sx = |t: f64| LEFT + (t - x0) / (x1 - x0) * (WIDTH - LEFT - RIGHT);
    let sy = |v: f64| TOP + (1.0 - (v - y0) / (y1 - y0)) * (HEIGHT - TOP - BOTTOM);
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    let _ = write!(
        s,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{}" height="{}"/>"#,
        WIDTH - LEFT - RIGHT,
        HEIGHT - TOP - BOTTOM
    );
    for v in [y0, (y0 + y1) / 2.0, y1] {
        let _ = write!(
            s,
            r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            LEFT - 6.0,
            sy(v) + 4.0,
            escape(&number(v))
        );
    }
    for (t, anchor) in [(x0, "start"), ((x0 + x1) / 2.0, "middle"), (x1, "end")] {
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="{anchor}">{} UTC</text>"#,
            sx(t),
            HEIGHT - 10.0,
            clock(t)
        );
    }
    let _ = write!(
        s,
        r#"<text class="tick" x="12" y="{}" transform="rotate(-90 12 {})" text-anchor="end">{}</text>"#,
        TOP + 10.0,
        TOP + 10.0,
        escape(y_label)
    );
    for m in markers.iter().filter(|m| m.time >= x0 && m.time <= x1) {
        let x = sx(m.time);
        let _ = write!(
            s,
            r#"<line class="marker {}" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{}"><title>{}</title></line>"#,
            escape(m.class),
            HEIGHT - BOTTOM,
            escape(m.label)
        );
    }
    for line in lines {
        let mut d = String::new();
        let mut pen_down = false;
        for (t, v) in thin(&line.points, x0, x1) {
            if !(t.is_finite() && v.is_finite()) {
                pen_down = false;
                continue;
            }
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if pen_down { "L" } else { "M" },
                sx(t),
                sy(v)
            );
            pen_down = true;
        }
        let _ = write!(
            s,
            r#"<path class="series {}" d="{}"><title>{}</title></path>"#,
            escape(line.class),
            d.trim_end(),
            escape(line.label)
        );
    }
    s.push_str("</svg>");
    Some(s)
}

/// Grouped bars: for each category, one bar per group (shares in 0..1).
pub fn bar_chart(title: &str, categories: &[String], groups: &[(&str, &str, Vec<f64>)]) -> String {
    let y1 = groups
        .iter()
        .flat_map(|g| g.2.iter())
        .cloned()
        .filter(|v| v.is_finite())
        .fold(0.0f64, f64::max)
        .max(1e-9);
    let plot_w = WIDTH - LEFT - RIGHT;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / categories.len().max(1) as f64;
    let bar = slot * 0.8 / groups.len().max(1) as f64;
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}"><title>{}</title>"#,
        escape(title),
        escape(title)
    );
    let _ = write!(
        s,
        r#"<rect class="frame" x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}"/>"#
    );
    for v in [0.0, y1 / 2.0, y1] {
        let _ = write!(
            s,
            r#"<text class="tick" x="{}" y="{:.1}" text-anchor="end">{}%</text>"#,
            LEFT - 6.0,
            TOP + (1.0 - v / y1) * plot_h + 4.0,
            escape(&number(100.0 * v))
        );
    }
    for (i, c) in categories.iter().enumerate() {
        let _ = write!(
            s,
            r#"<text class="tick" x="{:.1}" y="{}" text-anchor="middle">{}</text>"#,
            LEFT + slot * (i as f64 + 0.5),
            HEIGHT - 10.0,
            escape(c)
        );
        for (g, (label, class, values)) in groups.iter().enumerate() {
            let v = values.get(i).copied().unwrap_or(f64::NAN);
            if !v.is_finite() {
                continue;
            }
            let h = v / y1 * plot_h;
            let _ = write!(
                s,
                r#"<rect class="bar {}" x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{} {}: {}%</title></rect>"#,
                escape(class),
                LEFT + slot * (i as f64 + 0.1) + bar * g as f64,
                TOP + plot_h - h,
                bar,
                h,
                escape(label),
                escape(c),
                escape(&number(100.0 * v))
            );
        }
    }
    s.push_str("</svg>");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thinning_keeps_extremes_and_breaks() {
        let mut points: Vec<(f64, f64)> =
            (0..100_000).map(|i| (i as f64, (i % 7) as f64)).collect();
        points[50_000].1 = 1000.0;
        points[60_000].1 = f64::NAN;
        let thinned = thin(&points, 0.0, 99_999.0);
        assert!(thinned.len() < 3000, "{}", thinned.len());
        assert!(thinned.iter().any(|p| p.1 == 1000.0));
        assert!(thinned.iter().any(|p| p.1.is_nan()));
        assert!(thinned.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn axis_numbers_are_short() {
        assert_eq!(number(0.51234), "0.512");
        assert_eq!(number(1234.5), "1234");
        assert_eq!(number(0.0), "0");
    }
}

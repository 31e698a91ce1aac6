//! The recording's long table, written as CSV.
//!
//! Header `timestamp,metric,arm,value,le`: one row per sample of one series.
//! `le` is empty except for histogram buckets (`+Inf` for the last). Values
//! are formatted deterministically (integers without a fraction, gauges with
//! four decimals, `NaN` for a missing scrape) so the committed fixtures are
//! byte-identical to a fresh generation.
//!
//! The generator keeps this small writer rather than the recording module's
//! polars writer because the committed bytes must be stable and follow the
//! recording contract to the letter (integer counts, `+Inf`); the polars
//! writer reads the same files. Swapping is one line in [`write_csv`]
//! (`crate::recording::table::write`), followed by a regeneration.

use crate::recording::format_le;
pub use crate::recording::Arm;
use std::io::Write;
use std::path::Path;

/// How a value is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// A counter: an integer.
    Count,
    /// A gauge: four decimals.
    Gauge,
}

/// One sample of one recorded series.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Unix seconds.
    pub timestamp: i64,
    /// Analysis metric name, or `<metric>:errors` / `<metric>:total`.
    pub metric: String,
    pub arm: Arm,
    pub value: f64,
    pub format: ValueFormat,
    /// Histogram bucket upper bound.
    pub le: Option<f64>,
}

fn format_value(value: f64, format: ValueFormat) -> String {
    if value.is_nan() {
        return "NaN".into();
    }
    match format {
        ValueFormat::Count => format!("{}", value.round() as i64),
        ValueFormat::Gauge => format!("{value:.4}"),
    }
}

/// The `le` cell: empty outside histogram buckets.
fn le_cell(le: Option<f64>) -> String {
    le.map(format_le).unwrap_or_default()
}

/// Writes `rows` as a recording CSV at `path`.
pub fn write_csv(rows: &[Row], path: &Path) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "timestamp,metric,arm,value,le")?;
    for r in rows {
        writeln!(
            out,
            "{},{},{},{},{}",
            r.timestamp,
            r.metric,
            r.arm.as_str(),
            format_value(r.value, r.format),
            le_cell(r.le)
        )?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_formatted_for_stable_bytes() {
        assert_eq!(format_value(12.0, ValueFormat::Count), "12");
        assert_eq!(format_value(0.123456, ValueFormat::Gauge), "0.1235");
        assert_eq!(format_value(f64::NAN, ValueFormat::Gauge), "NaN");
        assert_eq!(le_cell(Some(0.25)), "0.25");
        assert_eq!(le_cell(Some(2.5)), "2.5");
        assert_eq!(le_cell(Some(1.0)), "1");
        assert_eq!(le_cell(Some(f64::INFINITY)), "+Inf");
        assert_eq!(le_cell(None), "");
    }
}

//! Kayenta's metric labels and the `NetflixACAJudge` Mann-Whitney classifier.

use serde::{Deserialize, Serialize};

/// A metric's classification. Serialized as Kayenta's exact strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Label {
    Pass,
    High,
    Low,
    Nodata,
    NodataFailMetric,
    Error,
}

impl Label {
    /// Kayenta's string (`"NodataFailMetric"`, …).
    pub fn kayenta_name(self) -> &'static str {
        match self {
            Label::Pass => "Pass",
            Label::High => "High",
            Label::Low => "Low",
            Label::Nodata => "Nodata",
            Label::NodataFailMetric => "NodataFailMetric",
            Label::Error => "Error",
        }
    }

    /// Verdict's snake_case name (`pass`, `high`, `low`, `nodata`,
    /// `nodata_fail`, `error`).
    pub fn verdict_name(self) -> &'static str {
        match self {
            Label::Pass => "pass",
            Label::High => "high",
            Label::Low => "low",
            Label::Nodata => "nodata",
            Label::NodataFailMetric => "nodata_fail",
            Label::Error => "error",
        }
    }

    /// Parses Kayenta's string.
    pub fn from_kayenta(s: &str) -> Option<Self> {
        Some(match s {
            "Pass" => Label::Pass,
            "High" => Label::High,
            "Low" => Label::Low,
            "Nodata" => Label::Nodata,
            "NodataFailMetric" => Label::NodataFailMetric,
            "Error" => Label::Error,
            _ => return None,
        })
    }
}

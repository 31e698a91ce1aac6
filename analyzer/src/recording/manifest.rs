//! The manifest of a directory of recordings: which analysis config judges
//! them, and what each recording is expected to give.
//!
//! ```yaml
//! config: verdict.yaml          # analysis config file, relative to the manifest
//! analysis: web-service         # default analysis name
//! vars: {name: checkout, namespace: shop}   # template variables for the queries
//! recordings:
//!   - file: healthy-aa.csv
//!     expected: healthy         # healthy | regressed | no-promote
//!     description: A/A, identical arms
//!     analysis: web-service     # optional override
//!     regression_start: 1700003600   # optional (unix seconds or RFC 3339): for time-to-detect
//!     interval: 1m              # optional replay overrides
//!     weights: [5, 25, 50, 100]
//!     step_every: 5m
//! ```

use super::RecordingError;
use crate::config::duration::PromDuration;
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The manifest's file name inside a recordings directory.
pub const MANIFEST_FILE: &str = "manifest.yaml";

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The config file, relative to the manifest.
    pub config: Option<PathBuf>,
    /// The default analysis.
    pub analysis: Option<String>,
    #[serde(default)]
    pub vars: BTreeMap<String, String>,
    pub recordings: Vec<Entry>,
}

/// What a recording is expected to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Expected {
    /// The canary is as good as the baseline: any abort is a false abort.
    Healthy,
    /// The canary is worse: a replay that never aborts missed it.
    Regressed,
    /// The data cannot support a promotion (missing data, a broken traffic
    /// split): any promote is a false promote.
    NoPromote,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    pub file: PathBuf,
    pub expected: Expected,
    #[serde(default)]
    pub description: String,
    pub analysis: Option<String>,
    #[serde(default, deserialize_with = "timestamp")]
    pub regression_start: Option<f64>,
    pub interval: Option<PromDuration>,
    pub weights: Option<Vec<f64>>,
    pub step_every: Option<PromDuration>,
}

fn timestamp<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Number(f64),
        Text(String),
    }
    match Option::<Raw>::deserialize(d)? {
        None => Ok(None),
        Some(Raw::Number(x)) if x.is_finite() => Ok(Some(x)),
        Some(Raw::Number(x)) => Err(serde::de::Error::custom(format!(
            "timestamp {x} is not finite"
        ))),
        Some(Raw::Text(t)) => super::parse_timestamp(&t)
            .map(Some)
            .map_err(serde::de::Error::custom),
    }
}

impl Manifest {
    /// Reads and checks `path` (a manifest file, or a directory holding `manifest.yaml`).
    pub fn load(path: &Path) -> Result<(PathBuf, Manifest), RecordingError> {
        let file = if path.is_dir() {
            path.join(MANIFEST_FILE)
        } else {
            path.to_path_buf()
        };
        let text = std::fs::read_to_string(&file)
            .map_err(|e| RecordingError::file(&file, format!("cannot read: {e}")))?;
        let manifest: Manifest = serde_path_to_error::deserialize(
            serde_yaml::Deserializer::from_str(&text),
        )
        .map_err(|e| {
            let field = e.path().to_string();
            let inner = e.into_inner();
            let line = inner.location().map(|l| format!("line {}: ", l.line()));
            RecordingError {
                file: file.clone(),
                row: None,
                column: (field != ".").then_some(field),
                message: format!("{}{inner}", line.unwrap_or_default()),
            }
        })?;
        if manifest.recordings.is_empty() {
            return Err(RecordingError::file(&file, "recordings: the list is empty"));
        }
        for (i, entry) in manifest.recordings.iter().enumerate() {
            if let Some(weights) = &entry.weights {
                if let Err(m) = crate::config::analysis::check_weights(weights) {
                    return Err(RecordingError {
                        file: file.clone(),
                        row: None,
                        column: Some(format!("recordings[{i}].weights")),
                        message: m,
                    });
                }
            }
        }
        Ok((file, manifest))
    }

    /// The directory recordings and the config are relative to.
    pub fn base(file: &Path) -> PathBuf {
        file.parent().map(Path::to_path_buf).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_the_agreed_shape_and_refuses_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(MANIFEST_FILE);
        std::fs::write(
            &path,
            "config: verdict.yaml\nanalysis: web\nvars: {name: checkout, namespace: shop}\n\
             recordings:\n  - file: a.csv\n    expected: healthy\n  - file: b.csv\n    expected: regressed\n    \
             regression_start: '2023-11-14T22:13:20Z'\n    interval: 30s\n    weights: [10, 100]\n    step_every: 2m\n",
        )
        .unwrap();
        let (file, m) = Manifest::load(dir.path()).unwrap();
        assert_eq!(file, path);
        assert_eq!(m.recordings[1].regression_start, Some(1_700_000_000.0));
        assert_eq!(m.recordings[1].interval.unwrap().as_secs_f64(), 30.0);
        assert_eq!(m.vars["namespace"], "shop");
        std::fs::write(
            &path,
            "recordings:\n  - file: a.csv\n    expected: healthy\n    colour: red\n",
        )
        .unwrap();
        let e = Manifest::load(&path).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        assert!(e.to_string().contains("recordings[0]"), "{e}");
    }
}

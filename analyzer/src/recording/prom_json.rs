//! Recordings fetched with curl: a directory of Prometheus
//! `/api/v1/query_range` answers, exactly as the API returns them.
//!
//! One file per query and arm, named `<metric>.<arm>.json`: `p99-latency.canary.json`
//! and `p99-latency.baseline.json` for a gauge; `errors:errors.canary.json`
//! and `errors:total.canary.json` (and the baseline pair) for a counter
//! metric `errors`; one file per arm for a histogram, whose answer holds one
//! series per `le` (query it as `sum by (le) (...)`). Other files are
//! ignored. A gauge or counter answer must hold at most one series (the
//! daemon refuses more, so a recording cannot hold them either).

use super::{parse_le, Arm, Recording, RecordingError, RowSink, SeriesBuilder};
use crate::source::Sample;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
struct Envelope {
    status: String,
    #[serde(default)]
    data: Option<Data>,
    #[serde(default)]
    error: Option<String>,
}

#[derive(Deserialize)]
struct Data {
    #[serde(rename = "resultType")]
    result_type: String,
    result: Vec<Matrix>,
}

#[derive(Deserialize)]
struct Matrix {
    #[serde(default)]
    metric: BTreeMap<String, String>,
    #[serde(default)]
    values: Vec<(f64, String)>,
}

/// Reads every `<metric>.<arm>.json` of `dir`.
pub fn read_dir(dir: &Path) -> Result<Recording, RecordingError> {
    let mut builder = SeriesBuilder::default();
    read_dir_rows(dir, &mut builder)?;
    Ok(builder.finish())
}

/// Reads the answers' samples into `sink`, file by file (in name order);
/// returns their number.
pub fn read_dir_rows(dir: &Path, sink: &mut dyn RowSink) -> Result<u64, RecordingError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| RecordingError::file(dir, format!("cannot list: {e}")))?;
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|e| RecordingError::file(dir, format!("cannot list: {e}")))?
            .path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            files.push(path);
        }
    }
    files.sort();
    if files.is_empty() {
        return Err(RecordingError::file(
            dir,
            "no <metric>.<arm>.json files (Prometheus query_range answers) in this directory",
        ));
    }
    let mut samples = 0;
    for path in &files {
        samples += read_file(path, sink)?;
    }
    if samples == 0 {
        return Err(RecordingError::file(dir, "the answers hold no samples"));
    }
    Ok(samples)
}

/// The metric and arm a file name stands for.
fn name_of(path: &Path) -> Result<(String, Arm), RecordingError> {
    let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
    stem.rsplit_once('.')
        .and_then(|(metric, arm)| Some((metric.to_string(), Arm::parse(arm)?)))
        .filter(|(metric, _)| !metric.is_empty())
        .ok_or_else(|| {
            RecordingError::file(
                path,
                "name the file <metric>.<arm>.json, arm baseline or canary \
                 (e.g. p99-latency.canary.json, errors:total.baseline.json)",
            )
        })
}

fn read_file(path: &Path, sink: &mut dyn RowSink) -> Result<u64, RecordingError> {
    let (metric, arm) = name_of(path)?;
    let bytes =
        std::fs::read(path).map_err(|e| RecordingError::file(path, format!("cannot read: {e}")))?;
    let envelope: Envelope = serde_json::from_slice(&bytes)
        .map_err(|e| RecordingError::file(path, format!("not a Prometheus API answer: {e}")))?;
    if envelope.status != "success" {
        return Err(RecordingError::file(
            path,
            format!(
                "the answer is an error: {}",
                envelope.error.unwrap_or(envelope.status)
            ),
        ));
    }
    let data = envelope
        .data
        .ok_or_else(|| RecordingError::file(path, "the answer has no data"))?;
    if data.result_type != "matrix" {
        return Err(RecordingError::file(
            path,
            format!(
                "resultType is {:?}: save a range query (/api/v1/query_range), whose answer is a matrix",
                data.result_type
            ),
        ));
    }
    let histogram = data.result.iter().any(|m| m.metric.contains_key("le"));
    if !histogram && data.result.len() > 1 {
        return Err(RecordingError::file(
            path,
            format!(
                "{} series in the answer: aggregate each arm to one series (e.g. sum by () or avg)",
                data.result.len()
            ),
        ));
    }
    let mut seen_le = std::collections::BTreeSet::new();
    let mut samples = 0;
    for (i, series) in data.result.iter().enumerate() {
        let at = |j: usize| format!("data.result[{i}].values[{j}]");
        let le = match series.metric.get("le") {
            Some(text) => {
                let le = parse_le(text).map_err(|m| RecordingError {
                    file: path.to_path_buf(),
                    row: None,
                    column: Some(format!("data.result[{i}].metric.le")),
                    message: m,
                })?;
                if !seen_le.insert(le.to_bits()) {
                    return Err(RecordingError::file(
                        path,
                        format!(
                            "two series with le={text}: aggregate the buckets with sum by (le)"
                        ),
                    ));
                }
                Some(le)
            }
            None if histogram => {
                return Err(RecordingError::file(
                    path,
                    format!("data.result[{i}] has no le label while others do"),
                ))
            }
            None => None,
        };
        for (j, (timestamp, value)) in series.values.iter().enumerate() {
            let value = super::parse_value(value).map_err(|m| RecordingError {
                file: path.to_path_buf(),
                row: None,
                column: Some(at(j)),
                message: m,
            })?;
            if !timestamp.is_finite() {
                return Err(RecordingError {
                    file: path.to_path_buf(),
                    row: None,
                    column: Some(at(j)),
                    message: "non-finite timestamp".into(),
                });
            }
            samples += 1;
            sink.push(
                &metric,
                arm,
                le,
                Sample {
                    timestamp: *timestamp,
                    value,
                },
            );
        }
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_matrix_answers_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write(
            "lat.canary.json",
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1700000000,"0.2"],[1700000015,"NaN"]]}]}}"#,
        );
        write(
            "h.baseline.json",
            r#"{"status":"success","data":{"resultType":"matrix","result":[
              {"metric":{"le":"0.5"},"values":[[1700000000,"3"]]},
              {"metric":{"le":"+Inf"},"values":[[1700000000,"4"]]}]}}"#,
        );
        write("notes.txt", "ignored");
        let r = read_dir(dir.path()).unwrap();
        assert_eq!(r.series.len(), 3);
        assert_eq!(r.series[0].metric, "h");
        assert_eq!(r.series[1].le, Some(f64::INFINITY));
        assert_eq!(r.series[2].arm, Arm::Canary);
        assert!(r.series[2].samples[1].value.is_nan());

        write(
            "lat.baseline.json",
            r#"{"status":"success","data":{"resultType":"vector","result":[]}}"#,
        );
        let e = read_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("lat.baseline.json"), "{e}");
        assert!(e.to_string().contains("matrix"), "{e}");
        write(
            "lat.baseline.json",
            r#"{"status":"success","data":{"resultType":"matrix","result":[{"metric":{},"values":[[1,"x"]]}]}}"#,
        );
        let e = read_dir(dir.path()).unwrap_err();
        assert_eq!(e.column.as_deref(), Some("data.result[0].values[0]"), "{e}");
        std::fs::remove_file(dir.path().join("lat.baseline.json")).unwrap();
        write("lat.primary.json", "{}");
        let e = read_dir(dir.path()).unwrap_err();
        assert!(e.to_string().contains("<metric>.<arm>.json"), "{e}");
    }
}

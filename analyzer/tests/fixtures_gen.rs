//! The committed replay fixtures: byte-identical to a fresh generation, and
//! each one judged by the engine as its manifest expects.
//!
//! Until the recording reader and `verdict replay` land, the judging walks a
//! recording through [`Engine::look`] over a [`MemorySource`] (rendered query
//! text -> the recorded series), one look per interval with the manifest's
//! weight schedule: the weight of a look is the one in force during the
//! interval it closes.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use verdict::config::analysis::Queries;
use verdict::engine::run::{Look, RunKey};
use verdict::engine::{Engine, LookRequest};
use verdict::fixtures_gen::{generate, DEFAULT_SEED};
use verdict::report::{render_html, ReportInput, ReportSeries};
use verdict::source::memory::MemorySource;
use verdict::source::{Sample, Series};
use verdict::telemetry::Telemetry;
use verdict_judges::decision::Action;

fn recordings_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/recordings")
}

#[test]
fn committed_fixtures_match_a_fresh_generation() {
    let dir = tempfile::tempdir().unwrap();
    let written = generate(dir.path(), DEFAULT_SEED).unwrap();
    assert!(written.len() >= 10, "{written:?}");
    let mut total_bytes = 0;
    for path in &written {
        let name = path.file_name().unwrap();
        let fresh = std::fs::read(path).unwrap();
        let committed = std::fs::read(recordings_dir().join(name)).unwrap_or_else(|e| {
            panic!("{name:?} is not committed ({e}); run `verdict fixtures generate --out fixtures/recordings`")
        });
        total_bytes += committed.len();
        assert!(
            fresh == committed,
            "fixtures/recordings/{name:?} differs from the generator's output; regenerate with \
             `verdict fixtures generate --out fixtures/recordings`"
        );
    }
    // The repository stays light.
    assert!(total_bytes < 5_000_000, "{total_bytes} bytes");
}

#[test]
fn another_seed_gives_other_data_of_the_same_shape() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    generate(a.path(), DEFAULT_SEED).unwrap();
    generate(b.path(), DEFAULT_SEED + 1).unwrap();
    let read = |d: &Path| std::fs::read_to_string(d.join("healthy-aa-1.csv")).unwrap();
    let (x, y) = (read(a.path()), read(b.path()));
    assert_ne!(x, y);
    assert_eq!(x.lines().next(), y.lines().next());
}

#[derive(Debug, Deserialize)]
struct Manifest {
    config: String,
    analysis: String,
    vars: BTreeMap<String, String>,
    recordings: Vec<Entry>,
}

#[derive(Debug, Deserialize)]
struct Entry {
    file: String,
    expected: String,
    description: String,
    regression_start: Option<f64>,
    interval: String,
    weights: Vec<f64>,
    step_every: String,
}

fn minutes(text: &str) -> f64 {
    60.0 * text.strip_suffix('m').unwrap().parse::<f64>().unwrap()
}

/// Series of a recording by (recorded metric name, arm), one per `le`.
type Recorded = BTreeMap<(String, String), BTreeMap<String, Vec<Sample>>>;

fn read_recording(path: &Path) -> Recorded {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("timestamp,metric,arm,value,le"));
    let mut out = Recorded::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 5, "{line}");
        out.entry((f[1].to_string(), f[2].to_string()))
            .or_default()
            .entry(f[4].to_string())
            .or_default()
            .push(Sample {
                timestamp: f[0].parse().unwrap(),
                value: f[3].parse().unwrap(),
            });
    }
    out
}

fn series(recorded: &Recorded, metric: &str, arm: &str) -> Vec<Series> {
    recorded
        .get(&(metric.to_string(), arm.to_string()))
        .map(|by_le| {
            by_le
                .iter()
                .map(|(le, samples)| Series {
                    labels: if le.is_empty() {
                        BTreeMap::new()
                    } else {
                        BTreeMap::from([("le".to_string(), le.clone())])
                    },
                    samples: samples.clone(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every look of one recording, and the recorded series as the report takes them.
async fn replay(manifest: &Manifest, entry: &Entry) -> (Vec<Look>, Vec<ReportSeries>) {
    let config = verdict::config::load(&recordings_dir().join(&manifest.config)).unwrap();
    let analysis = config.analyses[&manifest.analysis].clone();
    let recorded = read_recording(&recordings_dir().join(&entry.file));
    let mut source = MemorySource::new();
    for metric in &analysis.metrics {
        let name = &metric.config.name;
        for (arm, queries) in [("canary", &metric.canary), ("baseline", &metric.baseline)] {
            match queries {
                Queries::Single(t) => source.insert(
                    t.render(&manifest.vars).unwrap(),
                    series(&recorded, name, arm),
                ),
                Queries::Counter { errors, total } => {
                    for (t, part) in [(errors, "errors"), (total, "total")] {
                        source.insert(
                            t.render(&manifest.vars).unwrap(),
                            series(&recorded, &format!("{name}:{part}"), arm),
                        );
                    }
                }
            }
        }
    }
    let start = recorded
        .values()
        .flat_map(|s| s.values())
        .map(|s| s[0].timestamp)
        .fold(f64::INFINITY, f64::min);
    let end = recorded
        .values()
        .flat_map(|s| s.values())
        .map(|s| s.last().unwrap().timestamp)
        .fold(f64::NEG_INFINITY, f64::max);
    let engine = Engine::new(
        config.analyses.clone(),
        Arc::new(source),
        Arc::new(Telemetry::new()),
    );
    let (interval, step_every) = (minutes(&entry.interval), minutes(&entry.step_every));
    let mut looks = Vec::new();
    let mut now = start + interval;
    while now <= end {
        let step = (((now - interval - start) / step_every) as usize).min(entry.weights.len() - 1);
        let look = engine
            .look(LookRequest {
                key: RunKey::Replay {
                    name: entry.file.clone(),
                },
                analysis: manifest.analysis.clone(),
                vars: manifest.vars.clone(),
                now,
                weight: Some(entry.weights[step]),
            })
            .await
            .unwrap();
        looks.push((*look).clone());
        now += interval;
    }
    let series = recorded
        .iter()
        .flat_map(|((metric, arm), by_le)| {
            by_le.iter().map(move |(le, samples)| ReportSeries {
                metric: metric.clone(),
                arm: arm.clone(),
                le: (!le.is_empty()).then(|| le.replace("+Inf", "inf").parse().unwrap()),
                points: samples.iter().map(|s| (s.timestamp, s.value)).collect(),
            })
        })
        .collect();
    (looks, series)
}

#[tokio::test]
async fn every_fixture_is_judged_as_its_manifest_expects() {
    let manifest: Manifest = serde_yaml::from_str(
        &std::fs::read_to_string(recordings_dir().join("manifest.yaml")).unwrap(),
    )
    .unwrap();
    let mut failures = Vec::new();
    for entry in &manifest.recordings {
        let (looks, series) = replay(&manifest, entry).await;
        let actions: Vec<(f64, Action)> =
            looks.iter().map(|l| (l.time, l.decision.action)).collect();
        // The report renders real runs: every look has its row.
        let html = render_html(&ReportInput {
            title: &entry.file,
            analysis: &manifest.analysis,
            looks: &looks,
            series: &series,
            summary: &entry.description,
        });
        assert!(looks
            .iter()
            .all(|l| html.contains(&format!("id=\"look-{}\"", l.number))));
        if let Ok(dir) = std::env::var("FIXTURES_REPORT_DIR") {
            std::fs::write(Path::new(&dir).join(format!("{}.html", entry.file)), &html).unwrap();
        }
        let first = |a: Action| actions.iter().find(|(_, x)| *x == a).map(|(t, _)| *t);
        let (abort, promote) = (first(Action::Abort), first(Action::Promote));
        let summary: String = actions
            .iter()
            .map(|(_, a)| &a.as_str()[..1])
            .collect::<Vec<_>>()
            .join("");
        eprintln!("{:28} {:10} {summary}", entry.file, entry.expected);
        let ok = match entry.expected.as_str() {
            "healthy" => abort.is_none(),
            // Caught, and before any promote could have let it through.
            "regressed" => abort.is_some_and(|a| promote.is_none_or(|p| a < p)),
            "no-promote" => promote.is_none(),
            other => panic!("unknown expectation {other}"),
        };
        if let (Some(a), Some(r)) = (abort, entry.regression_start) {
            eprintln!("    detected {:.0} s after the regression began", a - r);
        }
        if !ok {
            failures.push(format!(
                "{}: expected {}, got {summary}",
                entry.file, entry.expected
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

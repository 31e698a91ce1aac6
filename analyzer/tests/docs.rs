//! The user documentation cannot rot.
//!
//! * Every fenced ```yaml block of the pages below is either a whole daemon
//!   config, an analysis config (a block whose keys are all analysis
//!   fields, loaded as the analysis `example`), or a Kubernetes object. Each
//!   config loads with `verdict::config::load_str`, exactly as
//!   `verdict config check` would load it.
//! * Every field name and every enumerated value of the config structs is
//!   written (as `` `name` ``) in `docs/configuration.md` or in a docs page
//!   it links to (the store, notification and security sections are
//!   documented on their own pages).
//! * The worked result of `docs/choosing-a-judge.md` (an analysis config and
//!   the abridged JSON it gives on the shipped example data) is what
//!   `verdict judge` prints today.
//! * Every `VERDICT_*` override in the reference's table takes effect.
//!
//! The field list is not typed out here: it is read from the config types'
//! own `Deserialize` implementations. They refuse unknown fields
//! (`deny_unknown_fields`) and unknown enum values with a message that
//! lists every accepted name (`unknown field `x`, expected one of ...`), so
//! the test feeds the real loader a probe key at every place of the config
//! and collects what it says it expects, walking into every struct, list and
//! map it finds. This follows renames, skips `#[serde(skip)]` fields and
//! finds sections added later without anyone updating a list. It cannot see
//! inside untagged enums (their error names no field): the one such type,
//! a counter metric's `{errors, total}` query pair, is listed by hand.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use verdict::config::{self, ConfigError};
use verdict::secret::Secret;

/// The pages whose examples are checked.
const PAGES: &[&str] = &[
    "docs/configuration.md",
    "docs/getting-started.md",
    "docs/choosing-a-judge.md",
    "docs/runbooks/canary-rollback.md",
];

/// Fields of untagged enums, which the probe cannot list (see module docs).
const UNTAGGED_FIELDS: &[&str] = &["errors", "total"];

/// A key no config type accepts.
const PROBE: &str = "verdict_docs_probe";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

// ---------------------------------------------------------------------------
// Fenced blocks.

/// A fenced code block: its info string, first line number and text.
struct Block {
    lang: String,
    line: usize,
    text: String,
}

fn fenced_blocks(markdown: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        match open.take() {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    open = Some(Block {
                        lang: info.trim().to_string(),
                        line: i + 2,
                        text: String::new(),
                    });
                }
            }
            Some(mut block) => {
                if trimmed.starts_with("```") {
                    blocks.push(block);
                } else {
                    block.text.push_str(line);
                    block.text.push('\n');
                    open = Some(block);
                }
            }
        }
    }
    assert!(open.is_none(), "unclosed code fence");
    blocks
}

#[test]
fn fenced_block_scanner_finds_blocks() {
    let md = "text\n```yaml\na: 1\n```\n\n```sh\nls\n```\n";
    let blocks = fenced_blocks(md);
    assert_eq!(blocks.len(), 2);
    assert_eq!(
        (
            blocks[0].lang.as_str(),
            blocks[0].line,
            blocks[0].text.as_str()
        ),
        ("yaml", 3, "a: 1\n")
    );
    assert_eq!(blocks[1].lang, "sh");
}

// ---------------------------------------------------------------------------
// Probing the config types for their field names.

/// One step of a path into a config document.
#[derive(Clone, Debug)]
enum Step {
    Field(String),
    /// The first item of a list.
    Item,
    /// A value of a map with free keys (e.g. `analyses.<name>`).
    Entry,
}

/// `leaf` placed at `path` in an otherwise empty document.
fn document(path: &[Step], leaf: serde_yaml::Value) -> serde_yaml::Value {
    path.iter().rev().fold(leaf, |inner, step| match step {
        Step::Field(name) => {
            let mut map = serde_yaml::Mapping::new();
            map.insert(name.as_str().into(), inner);
            serde_yaml::Value::Mapping(map)
        }
        Step::Item => serde_yaml::Value::Sequence(vec![inner]),
        Step::Entry => {
            let mut map = serde_yaml::Mapping::new();
            map.insert("example".into(), inner);
            serde_yaml::Value::Mapping(map)
        }
    })
}

/// The first problem the real loader finds in `doc`, as (field, message).
fn first_problem(doc: &serde_yaml::Value) -> Option<(String, String)> {
    let text = serde_yaml::to_string(doc).expect("YAML");
    match config::load_str(Path::new("probe.yaml"), &text, Vec::new()) {
        Ok(_) => None,
        Err(ConfigError { problems, .. }) => {
            problems.into_iter().next().map(|p| (p.field, p.message))
        }
    }
}

/// The backtick-quoted names after "expected" in a serde message.
fn expected_names(message: &str) -> Vec<String> {
    let Some((_, list)) = message.split_once("expected") else {
        return Vec::new();
    };
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

#[test]
fn expected_names_reads_serde_messages() {
    assert_eq!(
        expected_names("unknown field `x`, expected one of `a`, `b_c`, `d-e`"),
        ["a", "b_c", "d-e"]
    );
    assert_eq!(
        expected_names("unknown variant `x`, expected `meanRatio` or `cles`"),
        ["meanRatio", "cles"]
    );
    assert!(expected_names("invalid type: string").is_empty());
}

/// What the probe learned: field names and enumerated values, with the
/// dotted place where each was found.
#[derive(Default, Debug)]
struct Schema {
    fields: BTreeSet<(String, String)>,
    values: BTreeSet<(String, String)>,
}

fn dotted(path: &[Step]) -> String {
    let mut out = String::new();
    for step in path {
        match step {
            Step::Field(name) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(name);
            }
            Step::Item => out.push_str("[]"),
            Step::Entry => out.push_str(".<name>"),
        }
    }
    out
}

fn probe(path: Vec<Step>, schema: &mut Schema) {
    assert!(path.len() < 12, "probe went too deep at {}", dotted(&path));
    let place = dotted(&path);
    let mut leaf = serde_yaml::Mapping::new();
    leaf.insert(PROBE.into(), 0.into());
    if let Some((field, message)) = first_problem(&document(&path, leaf.into())) {
        let names = expected_names(&message);
        if message.contains(&format!("unknown field `{PROBE}`")) {
            for name in names {
                schema.fields.insert((place.clone(), name.clone()));
                let mut deeper = path.clone();
                deeper.push(Step::Field(name));
                probe(deeper, schema);
            }
            return;
        }
        if message.contains(&format!("unknown variant `{PROBE}`")) {
            schema
                .values
                .extend(names.into_iter().map(|n| (place.clone(), n)));
            return;
        }
        if message.contains("expected a sequence") {
            let mut deeper = path;
            deeper.push(Step::Item);
            return probe(deeper, schema);
        }
        if field.ends_with(PROBE) {
            // A map with free keys accepted the probe as a key and refused
            // its value: look at the type of its values.
            let mut deeper = path;
            deeper.push(Step::Entry);
            return probe(deeper, schema);
        }
    }
    // Not a struct, list or map: perhaps an enum of plain strings.
    if let Some((_, message)) = first_problem(&document(&path, PROBE.into())) {
        if message.contains(&format!("unknown variant `{PROBE}`")) {
            schema.values.extend(
                expected_names(&message)
                    .into_iter()
                    .map(|n| (place.clone(), n)),
            );
        }
    }
}

fn config_schema() -> Schema {
    let mut schema = Schema::default();
    probe(Vec::new(), &mut schema);
    schema
}

#[test]
fn the_probe_finds_the_config_types_fields() {
    let schema = config_schema();
    // Spot checks at every depth, so a probe that finds nothing fails.
    for (place, field) in [
        ("", "listen"),
        ("", "analyses"),
        ("prometheus", "url"),
        ("prometheus.tls", "ca_file"),
        ("prometheus.basic_auth", "password_file"),
        ("analyses.<name>", "min_data"),
        ("analyses.<name>.thresholds", "marginal"),
        ("analyses.<name>.metrics[]", "slow_above"),
        ("analyses.<name>.metrics[].effect_size", "critical_increase"),
        ("analyses.<name>.metrics[].guardrail", "max"),
    ] {
        assert!(
            schema
                .fields
                .contains(&(place.to_string(), field.to_string())),
            "{place}: {field} not found in {:#?}",
            schema.fields
        );
    }
    for (place, value) in [
        ("log_format", "json"),
        ("analyses.<name>.baseline_window", "before-rollout"),
        ("analyses.<name>.metrics[].kind", "histogram"),
        ("analyses.<name>.metrics[].judge", "mann-whitney"),
        ("analyses.<name>.metrics[].direction", "either"),
        ("analyses.<name>.metrics[].effect_size.measure", "cles"),
    ] {
        assert!(
            schema
                .values
                .contains(&(place.to_string(), value.to_string())),
            "{place}: {value} not found in {:#?}",
            schema.values
        );
    }
    // `kayenta` is `#[serde(skip)]`: not part of the file format.
    assert!(!schema.fields.iter().any(|(_, f)| f == "kayenta"));
}

/// `docs/configuration.md` and the docs pages it links to.
fn configuration_reference() -> String {
    let page = repo().join("docs/configuration.md");
    let text = read(&page);
    let mut all = text.clone();
    for link in text.split("](").skip(1) {
        let target = link.split([')', '#']).next().unwrap_or("");
        if target.ends_with(".md") && !target.contains("://") {
            let linked = page.parent().unwrap().join(target);
            if let Ok(more) = std::fs::read_to_string(&linked) {
                all.push_str(&more);
            }
        }
    }
    all
}

#[test]
fn every_config_field_and_value_is_documented() {
    let schema = config_schema();
    let reference = configuration_reference();
    let mut missing = Vec::new();
    let names = schema
        .fields
        .iter()
        .chain(&schema.values)
        .map(|(place, name)| (place.clone(), name.clone()))
        .chain(UNTAGGED_FIELDS.iter().map(|f| {
            (
                "analyses.<name>.metrics[].canary".to_string(),
                f.to_string(),
            )
        }));
    for (place, name) in names {
        if !reference.contains(&format!("`{name}`")) {
            missing.push(format!("{place}: `{name}`"));
        }
    }
    assert!(
        missing.is_empty(),
        "not in docs/configuration.md (or a page it links to):\n{}",
        missing.join("\n")
    );
}

// ---------------------------------------------------------------------------
// The examples load.

/// A directory holding `text` as `verdict.yaml` and the files it names:
/// placeholder secrets for `*_file` keys, and the repository's fixtures for
/// `kayenta_configs` (paths relative to `fixtures/`).
fn staged_config(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("YAML");
    let mut secret_files = Vec::new();
    collect_secret_files(&doc, &mut secret_files);
    for file in secret_files {
        let path = dir.path().join(&file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, "example-secret\n").unwrap();
    }
    if let Some(list) = doc.get("kayenta_configs").and_then(|v| v.as_sequence()) {
        for file in list.iter().filter_map(|v| v.as_str()) {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo().join("fixtures").join(file), &to)
                .unwrap_or_else(|e| panic!("kayenta_configs: fixtures/{file}: {e}"));
        }
    }
    let path = dir.path().join("verdict.yaml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

fn collect_secret_files(value: &serde_yaml::Value, out: &mut Vec<String>) {
    match value {
        serde_yaml::Value::Mapping(map) => {
            for (k, v) in map {
                match (k.as_str(), v.as_str()) {
                    // ca_file must be a real PEM bundle: no placeholder.
                    (Some(key), Some(file)) if key.ends_with("_file") && key != "ca_file" => {
                        out.push(file.to_string())
                    }
                    _ => collect_secret_files(v, out),
                }
            }
        }
        serde_yaml::Value::Sequence(items) => {
            items.iter().for_each(|v| collect_secret_files(v, out))
        }
        _ => {}
    }
}

/// Top-level fields of a whole config and of an analysis config.
fn section_fields(schema: &Schema, place: &str) -> BTreeSet<String> {
    schema
        .fields
        .iter()
        .filter(|(p, _)| p == place)
        .map(|(_, f)| f.clone())
        .collect()
}

#[test]
fn every_yaml_example_in_the_docs_loads() {
    let schema = config_schema();
    let settings = section_fields(&schema, "");
    let analysis = section_fields(&schema, "analyses.<name>");
    let mut problems = Vec::new();
    let mut whole_configs = 0;
    for page in PAGES {
        let file = repo().join(page);
        let text = read(&file);
        let mut configs_here = 0;
        for block in fenced_blocks(&text) {
            let at = format!("{page}:{}", block.line);
            if block.lang == "toml" {
                // TOML blocks are whole configs (they name no files).
                match config::load_str(Path::new("verdict.toml"), &block.text, Vec::new()) {
                    Ok(_) => configs_here += 1,
                    Err(e) => problems.push(format!("{at}: {e}")),
                }
                continue;
            }
            if block.lang != "yaml" {
                continue;
            }
            let docs: Vec<serde_yaml::Value> = match serde_yaml::Deserializer::from_str(&block.text)
                .map(serde::Deserialize::deserialize)
                .collect::<Result<_, _>>()
            {
                Ok(docs) => docs,
                Err(e) => {
                    problems.push(format!("{at}: not YAML: {e}"));
                    continue;
                }
            };
            let keys = |doc: &serde_yaml::Value| -> BTreeSet<String> {
                doc.as_mapping()
                    .map(|m| {
                        m.keys()
                            .filter_map(|k| k.as_str())
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let first = docs.first().cloned().unwrap_or_default();
            let top = keys(&first);
            let config_text = if docs
                .iter()
                .all(|d| d.get("apiVersion").is_some() && d.get("kind").is_some())
            {
                // Kubernetes objects: validated where they are shipped
                // (artifacts.rs); here they need only be YAML.
                continue;
            } else if docs.len() == 1 && !top.is_empty() && top.is_subset(&settings) {
                block.text.clone()
            } else if docs.len() == 1 && !top.is_empty() && top.is_subset(&analysis) {
                let mut wrapped = serde_yaml::Mapping::new();
                let mut analyses = serde_yaml::Mapping::new();
                analyses.insert("example".into(), first);
                wrapped.insert("analyses".into(), analyses.into());
                serde_yaml::to_string(&wrapped).unwrap()
            } else {
                problems.push(format!(
                    "{at}: neither a daemon config, an analysis config nor a Kubernetes \
                     object (keys {top:?}); use another fence language for fragments"
                ));
                continue;
            };
            let (_dir, path) = staged_config(&config_text);
            match config::load_str(&path, &config_text, Vec::new()) {
                Ok(_) => configs_here += 1,
                Err(e) => problems.push(format!("{at}: {e}")),
            }
        }
        whole_configs += configs_here;
        if *page == "docs/configuration.md" {
            assert!(
                configs_here >= 5,
                "{page}: only {configs_here} loadable examples"
            );
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(whole_configs > 0);
}

#[test]
fn a_broken_example_would_be_caught() {
    // The same path as above, on a config with a typo, must fail.
    let text = "listen: 127.0.0.1:8080\nprometheus:\n  urll: http://x:9090\n";
    let (_dir, path) = staged_config(text);
    let err = config::load_str(&path, text, Vec::new()).expect_err("typo accepted");
    assert!(err.to_string().contains("urll"), "{err}");
}

#[test]
fn documented_environment_overrides_take_effect() {
    // Every `VERDICT_...` variable in the reference's override table is read
    // by the loader: set each to a value that differs from the file's.
    let text = read(&repo().join("docs/configuration.md"));
    let base = "listen: 127.0.0.1:8080\nlog_format: human\nprometheus:\n  url: http://127.0.0.1:9090\n  timeout: 3s\n  retries: 2\n";
    let vars: BTreeSet<&str> = text
        .lines()
        .filter(|l| l.starts_with("| `VERDICT_"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    assert!(vars.len() >= 6, "override table has {vars:?}");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    std::fs::write(dir.path().join("pg-url"), "postgres://verdict@db/verdict\n").unwrap();
    let path = dir.path().join("verdict.yaml");
    // The URL settings only make sense on a postgres store.
    let postgres = "store:\n  backend: postgres\n";
    type Check = fn(&config::Config) -> bool;
    for var in vars {
        let (extra, value, env, check): (&str, &str, &[(&str, &str)], Check) = match var {
            "VERDICT_LISTEN" => ("", "0.0.0.0:9999", &[], |c| {
                c.settings.listen == "0.0.0.0:9999"
            }),
            "VERDICT_LOG_FORMAT" => ("", "json", &[], |c| {
                c.settings.log_format == config::LogFormat::Json
            }),
            "VERDICT_PROMETHEUS__URL" => ("", "http://prom:9090", &[], |c| {
                c.settings.prometheus.url == "http://prom:9090"
            }),
            "VERDICT_PROMETHEUS__TIMEOUT" => ("", "7s", &[], |c| {
                c.settings.prometheus.timeout.0.as_secs() == 7
            }),
            "VERDICT_PROMETHEUS__RETRIES" => ("", "5", &[], |c| c.settings.prometheus.retries == 5),
            "VERDICT_PROMETHEUS__BEARER_TOKEN_FILE" => ("", "token", &[], |c| {
                c.settings
                    .prometheus
                    .credentials
                    .bearer_token
                    .as_ref()
                    .map(Secret::expose)
                    == Some("t0ken")
            }),
            "VERDICT_STORE__BACKEND" => ("", "memory", &[], |c| {
                c.settings.store.backend == config::store::StoreBackend::Memory
            }),
            "VERDICT_STORE__PATH" => ("", "other.db", &[], |c| {
                c.settings.store.path.as_deref() == Some(std::path::Path::new("other.db"))
            }),
            "VERDICT_STORE__URL_FILE" => (postgres, "pg-url", &[], |c| {
                c.credentials.store_url.as_ref().map(Secret::expose)
                    == Some("postgres://verdict@db/verdict")
            }),
            "VERDICT_STORE__URL_ENV" => (
                postgres,
                "PG",
                &[("PG", "postgres://verdict@db/verdict")],
                |c| {
                    c.credentials.store_url.as_ref().map(Secret::expose)
                        == Some("postgres://verdict@db/verdict")
                },
            ),
            "VERDICT_STORE__POOL_SIZE" => ("", "9", &[], |c| c.settings.store.pool_size == 9),
            other => panic!("{other} is documented in docs/configuration.md but not checked here"),
        };
        let env = std::iter::once((var.to_string(), value.to_string()))
            .chain(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let loaded = config::load_str(&path, &format!("{base}{extra}"), env)
            .unwrap_or_else(|e| panic!("{var}={value}: {e}"));
        assert!(check(&loaded), "{var}={value} did not change the setting");
    }
}

// ---------------------------------------------------------------------------
// The worked result in choosing-a-judge.md is what Verdict says.

/// Whether `doc` (an abridged copy) agrees with `actual`: every key of a doc
/// object is in the actual one and agrees; arrays agree item by item;
/// numbers agree to the digits the doc prints; a doc string ending in `...`
/// is a prefix.
fn abridged_matches(doc: &serde_json::Value, actual: &serde_json::Value, at: &str) -> Vec<String> {
    use serde_json::Value;
    match (doc, actual) {
        (Value::Object(d), Value::Object(a)) => d
            .iter()
            .flat_map(|(k, v)| match a.get(k) {
                Some(av) => abridged_matches(v, av, &format!("{at}.{k}")),
                None => vec![format!("{at}.{k}: not in the output")],
            })
            .collect(),
        (Value::Array(d), Value::Array(a)) if d.len() <= a.len() => d
            .iter()
            .zip(a)
            .enumerate()
            .flat_map(|(i, (dv, av))| abridged_matches(dv, av, &format!("{at}[{i}]")))
            .collect(),
        (Value::Number(d), Value::Number(a)) => {
            let (d, a) = (d.as_f64().unwrap(), a.as_f64().unwrap());
            if (d - a).abs() <= 5e-3 * a.abs() + 1e-12 {
                Vec::new()
            } else {
                vec![format!("{at}: doc {d}, output {a}")]
            }
        }
        (Value::String(d), Value::String(a)) => {
            let ok = match d.strip_suffix("...") {
                Some(prefix) => a.starts_with(prefix.trim_end()),
                None => d == a,
            };
            if ok {
                Vec::new()
            } else {
                vec![format!("{at}: doc {d:?}, output {a:?}")]
            }
        }
        (d, a) if d == a => Vec::new(),
        (d, a) => vec![format!("{at}: doc {d}, output {a}")],
    }
}

#[test]
fn the_worked_result_is_what_verdict_judge_prints() {
    let page = "docs/choosing-a-judge.md";
    let text = read(&repo().join(page));
    let section = text
        .split("## Reading a result")
        .nth(1)
        .expect("a 'Reading a result' section");
    let blocks = fenced_blocks(section);
    let config = blocks
        .iter()
        .find(|b| b.lang == "yaml")
        .expect("the analysis config of the example");
    let shown = blocks
        .iter()
        .find(|b| b.lang == "json")
        .expect("the result of the example");
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("checkout-analysis.yaml");
    std::fs::write(&config_path, &config.text).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_verdict"))
        .arg("judge")
        .arg("--config")
        .arg(&config_path)
        .arg("--data")
        .arg(repo().join("fixtures/judge/checkout-data.json"))
        .output()
        .expect("run verdict judge");
    assert!(
        out.status.success(),
        "verdict judge: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let actual: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON output");
    let doc: serde_json::Value = serde_json::from_str(&shown.text)
        .unwrap_or_else(|e| panic!("{page}: the shown result is not JSON: {e}"));
    let problems = abridged_matches(&doc, &actual, "");
    assert!(
        problems.is_empty(),
        "{page}: the shown result differs from `verdict judge`:\n{}",
        problems.join("\n")
    );
}

#[test]
fn abridged_matching_catches_differences() {
    let actual =
        serde_json::json!({"a": 0.22493, "b": "canary is higher: x", "c": [1, 2], "d": true});
    assert!(abridged_matches(
        &serde_json::json!({"a": 0.2249, "b": "canary is higher: ...", "c": [1]}),
        &actual,
        ""
    )
    .is_empty());
    for bad in [
        serde_json::json!({"a": 0.23}),
        serde_json::json!({"b": "canary is lower: ..."}),
        serde_json::json!({"c": [2]}),
        serde_json::json!({"d": false}),
        serde_json::json!({"e": 1}),
    ] {
        assert!(
            !abridged_matches(&bad, &actual, "").is_empty(),
            "accepted {bad}"
        );
    }
}

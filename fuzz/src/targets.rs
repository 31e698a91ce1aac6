//! The fuzz targets: each parses bytes as the daemon would and checks what
//! must hold. A target panics only on a finding; a refusal is an outcome.

use crate::recording;
use std::collections::BTreeMap;
use std::path::Path;
use verdict::api::{argo, auth, flagger, parse_weight};
use verdict::config::template::QueryTemplate;

/// One parser of untrusted input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// A Flagger webhook body (`FlaggerWebhook::parse`, variables, weight).
    Flagger,
    /// An Argo request: query string, a newline, then the body.
    Argo,
    /// A config file (`config::load_str`); TOML when it starts `#toml`.
    Config,
    /// A PromQL template (first line) rendered with `name=value` lines.
    Template,
    /// A recording as a `.csv` long table (`recording::read`).
    Csv,
    /// A recording as a `.parquet` long table (`recording::read`).
    Parquet,
    /// A directory of query_range answers (`recording::read`): the input is
    /// `latency.canary.json`, or split at a `=== canary` line into
    /// `latency.baseline.json` and `latency.canary.json`.
    QueryRange,
    /// A backtest manifest (`Manifest::load`).
    Manifest,
}

impl Target {
    pub const ALL: [Target; 8] = [
        Target::Flagger,
        Target::Argo,
        Target::Config,
        Target::Template,
        Target::Csv,
        Target::Parquet,
        Target::QueryRange,
        Target::Manifest,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Target::Flagger => "flagger",
            Target::Argo => "argo",
            Target::Config => "config",
            Target::Template => "template",
            Target::Csv => "csv",
            Target::Parquet => "parquet",
            Target::QueryRange => "query-range",
            Target::Manifest => "manifest",
        }
    }

    pub fn from_name(name: &str) -> Option<Target> {
        Target::ALL.into_iter().find(|t| t.name() == name)
    }

    /// Mixed into the seed so targets do not share a mutation sequence.
    pub fn salt(self) -> u64 {
        match self {
            Target::Flagger => 0x9e37_79b9_7f4a_7c15,
            Target::Argo => 0xbf58_476d_1ce4_e5b9,
            Target::Config => 0x94d0_49bb_1331_11eb,
            Target::Template => 0x2545_f491_4f6c_dd1d,
            Target::Csv => 0x6a09_e667_f3bc_c908,
            Target::Parquet => 0xbb67_ae85_84ca_a73b,
            Target::QueryRange => 0x3c6e_f372_fe94_f82b,
            Target::Manifest => 0xa54f_f53a_5f1d_36f1,
        }
    }

    /// Tokens the mutator inserts: the syntax each parser branches on.
    pub fn dictionary(self) -> &'static [&'static str] {
        match self {
            Target::Flagger => &[
                "\"name\":",
                "\"namespace\":",
                "\"checksum\":",
                "\"phase\":",
                "\"metadata\":",
                "\"token\":",
                "\"weight\":",
                "\"eventType\":",
                "{\"a\":\"b\"}",
                "[]",
                "null",
                "true",
                "1e999",
                "-0",
                "\\u0000",
                "\\ud800",
                "\"}",
                " or vector(1) #",
                "\"\"",
                ",",
                ":",
            ],
            Target::Argo => &[
                "run=",
                "namespace=",
                "rollout=",
                "canary-hash=",
                "stable-hash=",
                "phase=",
                "weight=",
                "token=",
                "format=text",
                "&",
                "=",
                "%",
                "%ff",
                "%22",
                "+",
                "{\"run\":\"r\"}",
                "{",
                "}",
                "[",
                "]",
                "null",
                "1e400",
                "\"}",
                " or vector(1)",
            ],
            Target::Config => &[
                "analyses:\n",
                "  a:\n",
                "    metrics:\n",
                "      - name: m\n",
                "        kind: gauge\n",
                "        kind: counter\n",
                "        kind: histogram\n",
                "        canary: 'x{a=\"{{name}}\"}'\n",
                "        baseline: 'y'\n",
                "judge: ",
                "sequential",
                "mann-whitney",
                "proportion",
                "welch",
                "lookback: ",
                "step: ",
                "5m",
                "0s",
                "1e9h",
                "-1",
                "groups: ",
                "{a: 50}",
                "thresholds: ",
                "{pass: 95, marginal: 75}",
                "min_data: ",
                "auth:\n",
                "  token_file: t\n",
                "tls:\n",
                "prometheus:\n",
                "  url: ",
                "http://",
                "&a",
                "*a",
                "<<: *a",
                "!!binary",
                "~",
                "[",
                "]",
                "{",
                "}",
                ": ",
                "- ",
                "\"",
                "'",
                "#toml\n",
                "[analyses.a]\n",
                "=",
            ],
            Target::Template => &[
                "{{",
                "}}",
                "{{name}}",
                "{{window}}",
                "\"",
                "'",
                "`",
                "\\",
                "[",
                "]",
                "=~",
                "\n",
                "name=",
                "window=",
                "\"} or vector(1) #",
                "5m",
                "\\\"",
            ],
            Target::Csv => &[
                "timestamp,metric,arm,value\n",
                "timestamp,metric,arm,value,le\n",
                "timestamp",
                "metric",
                "arm",
                "value",
                "le",
                "baseline",
                "canary",
                "latency:errors",
                ":total",
                "2023-11-14T22:13:20Z",
                "2023-11-14T23:13:20.25+01:00",
                "1700000000",
                "1700000000.5",
                "+Inf",
                "-Inf",
                "NaN",
                "inf",
                "1e308",
                "-0",
                "\"",
                "\"\"",
                ",",
                ",,",
                "\n",
                "\r\n",
                "\u{feff}",
                ";",
                "\t",
            ],
            Target::Parquet => &[
                "PAR1",
                "timestamp",
                "metric",
                "arm",
                "value",
                "le",
                "baseline",
                "canary",
                "\0\0\0\0",
                "\x7f\x7f\x7f\x7f",
                "\x15\x00",
                "\x15\x02",
                "\x19\x1c",
                "\x16\x00",
                "\x00\x00\x00\x00\x00\x00\x00\x40",
                "\x08\x00\x00\x00",
            ],
            Target::QueryRange => &[
                "{\"status\":\"success\",\"data\":{\"resultType\":\"matrix\",\"result\":[",
                "{\"metric\":{},\"values\":[[1700000000,\"1\"]]}",
                "{\"metric\":{\"le\":\"+Inf\"},\"values\":[]}",
                "\"resultType\":\"matrix\"",
                "\"resultType\":\"vector\"",
                "\"status\":\"error\"",
                "\"error\":\"x\"",
                "\"status\":",
                "\"data\":",
                "\"result\":",
                "\"metric\":",
                "\"values\":",
                "\"le\":",
                "\"+Inf\"",
                "\"NaN\"",
                "\"-Inf\"",
                "\"0.5\"",
                "[1700000000,\"0.2\"]",
                "1e999",
                "-1e999",
                "1700000000.5",
                "null",
                "[]",
                "{}",
                ",",
                "\n=== canary\n",
            ],
            Target::Manifest => &[
                "config: verdict.yaml\n",
                "analysis: web\n",
                "vars: {name: checkout}\n",
                "recordings:\n",
                "  - file: a.csv\n",
                "    expected: healthy\n",
                "    expected: regressed\n",
                "    expected: no-promote\n",
                "    description: d\n",
                "    regression_start: ",
                "'2023-11-14T22:13:20Z'",
                "1700003600",
                ".nan",
                ".inf",
                "    interval: ",
                "    step_every: ",
                "1m",
                "0s",
                "1e9h",
                "    weights: ",
                "[5, 25, 50, 100]",
                "[]",
                "[0]",
                "[101]",
                "&a",
                "*a",
                "<<: *a",
                "~",
                "- ",
                ": ",
                "'",
                "\"",
            ],
        }
    }

    /// Runs the target on `input`; the outcome's shape on success. Panics on
    /// a finding.
    pub fn run(self, input: &[u8]) -> String {
        match self {
            Target::Flagger => flagger_payload(input),
            Target::Argo => argo_request(input),
            Target::Config => config_file(input),
            Target::Template => template(input),
            Target::Csv => recording::csv(input),
            Target::Parquet => recording::parquet(input),
            Target::QueryRange => recording::query_range(input),
            Target::Manifest => recording::manifest(input),
        }
    }
}

/// An error message reduced to its shape: quoted text dropped and only the
/// first words made of letters kept, so that "line 3" and "line 4", or two
/// rejected values, are one outcome.
pub(crate) fn shape(prefix: &str, message: &str) -> String {
    let mut unquoted = String::new();
    let mut quoted = false;
    let mut escaped = false;
    for c in message.chars() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' | '`' => quoted = !quoted,
            _ if quoted => {}
            c => unquoted.push(c),
        }
    }
    let words: Vec<&str> = unquoted
        .split(|c: char| !c.is_ascii_alphabetic())
        .filter(|w| !w.is_empty())
        .take(6)
        .collect();
    format!("{prefix}{}", words.join(" "))
}

fn flagger_payload(input: &[u8]) -> String {
    match flagger::FlaggerWebhook::parse(input) {
        Err(e) => shape("refused: ", &e.message),
        Ok(hook) => {
            let vars = hook.vars();
            assert!(
                !vars.contains_key(auth::TOKEN_KEY),
                "the token became a template variable"
            );
            let _ = hook.key().to_string();
            match parse_weight(&vars) {
                Ok(w) => format!("ok: {} vars, weight {}", vars.len().min(8), w.is_some()),
                Err(e) => shape("weight refused: ", &e.message),
            }
        }
    }
}

fn argo_request(input: &[u8]) -> String {
    let (query, body) = match input.iter().position(|&b| b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[][..]),
    };
    let query = String::from_utf8_lossy(query);
    let args = match argo::arguments(Some(&query), body) {
        Ok(a) => a,
        Err(e) => return shape("refused: ", &e.message),
    };
    assert!(
        !args.contains_key(auth::TOKEN_KEY),
        "the token became an argument"
    );
    match argo::identify(&args) {
        Err(e) => shape("not identified: ", &e.message),
        Ok((key, vars)) => {
            let _ = key.to_string();
            match parse_weight(&vars) {
                Ok(_) => format!("ok: {} vars", vars.len().min(8)),
                Err(e) => shape("weight refused: ", &e.message),
            }
        }
    }
}

fn config_file(input: &[u8]) -> String {
    let Ok(text) = std::str::from_utf8(input) else {
        return "not UTF-8".into();
    };
    // Relative file names resolve into a directory that does not exist.
    let path = if text.starts_with("#toml") {
        Path::new("/nonexistent-verdict-fuzz/fuzz.toml")
    } else {
        Path::new("/nonexistent-verdict-fuzz/fuzz.yaml")
    };
    match verdict::config::load_str(path, text, std::iter::empty()) {
        Ok(config) => format!("ok: {} analyses", config.analyses.len().min(4)),
        Err(e) => e
            .problems
            .iter()
            .take(2)
            .map(|p| {
                shape(
                    &format!("{}: ", p.field.split('.').next().unwrap_or("")),
                    &p.message,
                )
            })
            .collect::<Vec<_>>()
            .join(" | "),
    }
}

/// The structure of a rendered query: the content of every string literal
/// collapsed to `S`, every run of bare-token characters to `t`. A rendering
/// with webhook values must have the structure of one with harmless values.
fn structure(query: &str) -> String {
    let mut out = String::new();
    let mut chars = query.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' | '`' => {
                let quote = c;
                let mut escaped = false;
                for d in chars.by_ref() {
                    if escaped {
                        escaped = false;
                    } else if d == '\\' && quote != '`' {
                        escaped = true;
                    } else if d == quote {
                        break;
                    }
                }
                out.push('S');
            }
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | ':' | '-') => {
                while chars.peek().is_some_and(|d| {
                    d.is_ascii_alphanumeric() || matches!(d, '_' | '.' | ':' | '-')
                }) {
                    chars.next();
                }
                out.push('t');
            }
            c => out.push(c),
        }
    }
    out
}

fn template(input: &[u8]) -> String {
    let text = String::from_utf8_lossy(input);
    let mut lines = text.split('\n');
    let source = lines.next().unwrap_or("");
    let vars: BTreeMap<String, String> = lines
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let template = match QueryTemplate::parse(source) {
        Ok(t) => t,
        Err(e) => return shape("template refused: ", &e.to_string()),
    };
    match template.render(&vars) {
        Err(e) => shape("render refused: ", &e.to_string()),
        Ok(rendered) => {
            let harmless: BTreeMap<String, String> =
                vars.keys().map(|k| (k.clone(), "x".to_string())).collect();
            let reference = template
                .render(&harmless)
                .expect("harmless values render wherever the real ones did");
            assert_eq!(
                structure(&rendered),
                structure(&reference),
                "a value changed the query's structure: {rendered:?} vs {reference:?}"
            );
            format!("rendered: {} vars", template.variables().count().min(8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn structure_sees_through_strings_and_tokens() {
        assert_eq!(structure(r#"up{a="x\"y",b='z'}[5m]"#), "t{t=S,t=S}[t]");
        assert_eq!(structure("rate(x[1m]) or vector(1)"), "t(t[t]) t t(t)");
    }

    #[test]
    fn the_template_oracle_notices_a_value_that_escapes_its_string() {
        // What a broken escaper would produce.
        assert_ne!(
            structure(r#"up{a="\\"} or vector(1) #"}"#),
            structure(r#"up{a="x"}"#)
        );
    }
}

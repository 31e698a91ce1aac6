//! The `notifications` section: secrets from files and the environment,
//! every mistake reported with its line and field, nothing secret printed.

use crate::config::{load_str, Config, ConfigError};
use std::path::Path;
use verdict_judges::decision::Action;

const BASE: &str = r#"
analyses:
  web:
    metrics:
      - name: latency
        kind: gauge
        canary: 'latency{app="{{name}}"}'
        baseline: 'latency{app="{{name}}-primary"}'
"#;

const SLACK_URL: &str = "https://hooks.slack.example/services/T000/B000/SLACKSECRETPATH";
const HOOK_URL: &str = "https://hooks.example/verdict?key=HOOKSECRET";
const TOKEN: &str = "TOKENSECRET123";

fn load(notifications: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let text = format!("{BASE}notifications:\n{notifications}");
    load_str(
        Path::new("verdict.yaml"),
        &text,
        env.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>(),
    )
}

const TWO_CHANNELS: &str = r#"  channels:
    - name: oncall
      kind: slack
      url_env: SLACK_URL
    - name: audit
      kind: webhook
      decisions: [abort]
      url_env: HOOK_URL
      bearer_token_env: HOOK_TOKEN
      timeout: 2s
      attempts: 3
"#;

#[test]
fn channels_resolve_secrets_from_the_environment_with_defaults() {
    let c = load(
        TWO_CHANNELS,
        &[
            ("SLACK_URL", SLACK_URL),
            ("HOOK_URL", HOOK_URL),
            ("HOOK_TOKEN", TOKEN),
        ],
    )
    .unwrap();
    let n = &c.notifications;
    assert_eq!(n.queue, 256);
    assert_eq!(n.channels.len(), 2);
    let slack = &n.channels[0];
    assert_eq!(slack.url.expose(), SLACK_URL);
    assert!(slack.wants(Action::Abort) && slack.wants(Action::Promote));
    assert!(slack.wants(Action::Inconclusive) && !slack.wants(Action::Continue));
    assert_eq!(slack.attempts, 5);
    let hook = &n.channels[1];
    assert!(hook.wants(Action::Abort) && !hook.wants(Action::Promote));
    assert_eq!(hook.bearer_token.as_ref().unwrap().expose(), TOKEN);
    assert_eq!(hook.timeout.as_secs(), 2);
    assert_eq!(hook.attempts, 3);
}

#[test]
fn secrets_never_appear_in_debug_output() {
    let c = load(
        TWO_CHANNELS,
        &[
            ("SLACK_URL", SLACK_URL),
            ("HOOK_URL", HOOK_URL),
            ("HOOK_TOKEN", TOKEN),
        ],
    )
    .unwrap();
    let text = format!("{c:?} {:?}", c.notifications);
    for secret in ["SLACKSECRETPATH", "HOOKSECRET", TOKEN] {
        assert!(!text.contains(secret), "{secret} in {text}");
    }
    assert!(text.contains("<redacted>"), "{text}");
}

#[test]
fn secrets_are_read_from_files_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("url"), format!("{HOOK_URL}\n")).unwrap();
    std::fs::write(dir.path().join("token"), TOKEN).unwrap();
    let text = format!(
        "{BASE}notifications:\n  channels:\n    - name: audit\n      kind: webhook\n      url_file: url\n      bearer_token_file: token\n"
    );
    let c = load_str(&dir.path().join("verdict.yaml"), &text, Vec::new()).unwrap();
    let hook = &c.notifications.channels[0];
    assert_eq!(hook.url.expose(), HOOK_URL);
    assert_eq!(hook.bearer_token.as_ref().unwrap().expose(), TOKEN);
}

#[test]
fn every_mistake_is_reported_with_line_and_field() {
    let text = r#"  queue: 0
  max_in_flight: 0
  channels:
    - name: oncall
      kind: slack
      decisions: [continue]
      url_env: MISSING
    - name: oncall
      kind: slack
      url_env: SLACK_URL
      bearer_token_env: SLACK_URL
    - name: plain
      kind: webhook
      url_env: NOT_HTTP
      attempts: 0
      backoff: 10s
      max_backoff: 1s
    - name: nowhere
      kind: webhook
"#;
    let err = load(
        text,
        &[
            ("SLACK_URL", SLACK_URL),
            ("NOT_HTTP", "ftp://x/NOTHTTPSECRET"),
        ],
    )
    .unwrap_err();
    let shown = err.to_string();
    for expected in [
        "notifications.queue: must be at least 1",
        "notifications.max_in_flight: must be at least 1",
        "notifications.channels[0].decisions: continue is not a notifiable decision",
        "notifications.channels[0].url_env: environment variable MISSING is not set",
        "notifications.channels[1].name: channel \"oncall\" is defined twice",
        "notifications.channels[1].bearer_token_env: a Slack incoming webhook takes no bearer token",
        "notifications.channels[2].url_env: not a URL starting with http:// or https://",
        "notifications.channels[2].attempts: must be at least 1",
        "notifications.channels[2].max_backoff: 1s is shorter than backoff 10s",
        "notifications.channels[3]: set url_file or url_env",
    ] {
        assert!(shown.contains(expected), "missing {expected:?} in:\n{shown}");
    }
    assert!(
        err.problems.iter().all(|p| p.line.is_some()),
        "every problem has a line:\n{shown}"
    );
    assert!(!shown.contains("NOTHTTPSECRET") && !shown.contains("SLACKSECRETPATH"));
}

#[test]
fn unknown_fields_are_refused() {
    let err = load(
        "  channels:\n    - name: a\n      kind: slack\n      url: https://inline/secret\n",
        &[],
    )
    .unwrap_err();
    assert!(err.to_string().contains("unknown field `url`"), "{err}");
}

#[test]
fn no_section_means_no_channels() {
    let c = load_str(Path::new("verdict.yaml"), BASE, Vec::new()).unwrap();
    assert!(c.notifications.channels.is_empty());
}

//! The `notifications` section of the config: channels, as written and as
//! resolved at load.
//!
//! A channel's URL is a credential (a Slack incoming-webhook URL *is* its
//! secret), so it is never written in the config file: it comes from a file
//! (`url_file`) or an environment variable (`url_env`), read once at load,
//! like every other secret (`config::read_secret`). Resolved secrets live in
//! [`Secret`], whose `Debug` and `Display` print `<redacted>`.

use super::analysis::FieldError;
use super::duration::PromDuration;
use super::template::validate_token;
use super::{read_secret, url_is_http};
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;
use verdict_judges::decision::Action;

/// `notifications:` as written in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationSettings {
    /// Notifications waiting for the worker at most; when full, a new one is
    /// dropped (logged and counted) rather than making a look wait.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Deliveries in flight at most, over all channels; when all are busy
    /// (slow receivers), the worker takes nothing more off the queue.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    #[serde(default)]
    pub channels: Vec<ChannelSettings>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        NotificationSettings {
            queue: default_queue(),
            max_in_flight: default_max_in_flight(),
            channels: Vec::new(),
        }
    }
}

/// Where a channel's messages go and what they look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ChannelKind {
    /// A Slack-compatible incoming webhook (`text` plus Block Kit `blocks`).
    Slack,
    /// Verdict's generic, versioned JSON body (docs/notifications.md).
    Webhook,
}

impl ChannelKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Slack => "slack",
            ChannelKind::Webhook => "webhook",
        }
    }
}

/// One channel as written in the config file.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSettings {
    /// Names the channel in logs, metrics and the audit trail.
    pub name: String,
    pub kind: ChannelKind,
    /// Decisions the channel wants; `continue` is never sent.
    #[serde(default = "default_decisions")]
    pub decisions: Vec<Action>,
    /// File holding the URL (relative to the config file).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding a bearer token (`webhook` channels only).
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// Environment variable holding a bearer token (`webhook` channels only).
    #[serde(default)]
    pub bearer_token_env: Option<String>,
    /// Deadline of one attempt (connect, send, answer).
    #[serde(default = "default_timeout")]
    pub timeout: PromDuration,
    /// Attempts in all, the first included.
    #[serde(default = "default_attempts")]
    pub attempts: u32,
    /// Wait before the second attempt; doubled for each further one.
    #[serde(default = "default_backoff")]
    pub backoff: PromDuration,
    /// Upper bound of any wait between attempts, a receiver's
    /// `Retry-After` included.
    #[serde(default = "default_max_backoff")]
    pub max_backoff: PromDuration,
}

fn default_queue() -> usize {
    256
}
fn default_max_in_flight() -> usize {
    16
}
fn default_decisions() -> Vec<Action> {
    vec![Action::Abort, Action::Promote, Action::Inconclusive]
}
fn default_timeout() -> PromDuration {
    PromDuration::from_secs(5)
}
fn default_attempts() -> u32 {
    5
}
fn default_backoff() -> PromDuration {
    PromDuration(Duration::from_secs(1))
}
fn default_max_backoff() -> PromDuration {
    PromDuration::from_secs(30)
}

/// A channel ready to send to: secrets read, settings checked.
#[derive(Debug, Clone)]
pub struct Channel {
    pub name: String,
    pub kind: ChannelKind,
    pub decisions: BTreeSet<ActionName>,
    pub url: Secret,
    pub bearer_token: Option<Secret>,
    pub timeout: Duration,
    pub attempts: u32,
    pub backoff: Duration,
    pub max_backoff: Duration,
}

/// An [`Action`] ordered by its name, so decisions fit in a set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ActionName(&'static str);

impl From<Action> for ActionName {
    fn from(a: Action) -> Self {
        ActionName(a.as_str())
    }
}

impl Channel {
    /// Whether the channel wants notifications of `decision`.
    pub fn wants(&self, decision: Action) -> bool {
        self.decisions.contains(&decision.into())
    }
}

/// The resolved `notifications` section.
#[derive(Debug, Clone)]
pub struct Notifications {
    pub queue: usize,
    pub max_in_flight: usize,
    pub channels: Vec<Channel>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications {
            queue: default_queue(),
            max_in_flight: default_max_in_flight(),
            channels: Vec::new(),
        }
    }
}

/// Where a secret comes from: exactly one of a file and a variable.
fn secret_from(
    base: &Path,
    env: &BTreeMap<String, String>,
    file: Option<&PathBuf>,
    var: Option<&String>,
) -> Result<Option<Secret>, String> {
    match (file, var) {
        (Some(_), Some(_)) => Err("set either the _file or the _env form, not both".into()),
        (Some(file), None) => read_secret(base, file).map(|s| Some(Secret::new(s))),
        (None, Some(var)) => match env.get(var).map(|v| v.trim()) {
            Some(v) if !v.is_empty() => Ok(Some(Secret::new(v))),
            Some(_) => Err(format!("environment variable {var} is empty")),
            None => Err(format!("environment variable {var} is not set")),
        },
        (None, None) => Ok(None),
    }
}

impl NotificationSettings {
    /// Checks every channel and reads its secrets; reports every problem
    /// with its field path under `notifications`. File paths are relative to
    /// `base` (the config file's directory); `env` is the process environment.
    pub fn resolve(
        &self,
        base: &Path,
        env: &BTreeMap<String, String>,
    ) -> Result<Notifications, Vec<FieldError>> {
        let mut errors = Vec::new();
        if self.queue == 0 {
            errors.push(field_error("notifications.queue", "must be at least 1"));
        }
        if self.max_in_flight == 0 {
            errors.push(field_error(
                "notifications.max_in_flight",
                "must be at least 1",
            ));
        }
        let mut names = BTreeSet::new();
        let mut channels = Vec::new();
        for (i, c) in self.channels.iter().enumerate() {
            let at = |field: &str| format!("notifications.channels[{i}].{field}");
            let mut problems: Vec<(String, String)> = Vec::new();
            if let Err(e) = validate_token("channel name", &c.name) {
                problems.push((at("name"), e));
            } else if !names.insert(c.name.clone()) {
                problems.push((at("name"), format!("channel {:?} is defined twice", c.name)));
            }
            if c.decisions.is_empty() {
                problems.push((at("decisions"), "name at least one decision".into()));
            }
            if c.decisions.contains(&Action::Continue) {
                problems.push((
                    at("decisions"),
                    "continue is not a notifiable decision (only abort, promote, inconclusive)"
                        .into(),
                ));
            }
            let url_field = at(if c.url_env.is_some() && c.url_file.is_none() {
                "url_env"
            } else {
                "url_file"
            });
            let url = match secret_from(base, env, c.url_file.as_ref(), c.url_env.as_ref()) {
                // The message must not quote the URL: it is the secret.
                Ok(Some(url))
                    if url_is_http(url.expose()).is_err()
                        || reqwest::Url::parse(url.expose()).is_err() =>
                {
                    problems.push((
                        url_field,
                        "not a URL starting with http:// or https://".into(),
                    ));
                    None
                }
                Ok(Some(url)) => Some(url),
                Ok(None) => {
                    // Neither field is written, so name the channel.
                    let channel = format!("notifications.channels[{i}]");
                    problems.push((channel, "set url_file or url_env".into()));
                    None
                }
                Err(e) => {
                    problems.push((url_field, e));
                    None
                }
            };
            let token_field = at(
                if c.bearer_token_env.is_some() && c.bearer_token_file.is_none() {
                    "bearer_token_env"
                } else {
                    "bearer_token_file"
                },
            );
            let token = match secret_from(
                base,
                env,
                c.bearer_token_file.as_ref(),
                c.bearer_token_env.as_ref(),
            ) {
                Ok(Some(_)) if c.kind == ChannelKind::Slack => {
                    problems.push((
                        token_field,
                        "a Slack incoming webhook takes no bearer token (its URL is the credential)"
                            .into(),
                    ));
                    None
                }
                Ok(Some(token)) if !is_header_safe(token.expose()) => {
                    problems.push((
                        token_field,
                        "the token holds characters not allowed in an HTTP header".into(),
                    ));
                    None
                }
                Ok(token) => token,
                Err(e) => {
                    problems.push((token_field, e));
                    None
                }
            };
            if c.timeout.0.is_zero() {
                problems.push((at("timeout"), "must be greater than zero".into()));
            }
            if c.attempts == 0 {
                problems.push((at("attempts"), "must be at least 1".into()));
            }
            if c.max_backoff.0 < c.backoff.0 {
                problems.push((
                    at("max_backoff"),
                    format!("{} is shorter than backoff {}", c.max_backoff, c.backoff),
                ));
            }
            match (problems.is_empty(), url) {
                (true, Some(url)) => channels.push(Channel {
                    name: c.name.clone(),
                    kind: c.kind,
                    decisions: c.decisions.iter().map(|&d| d.into()).collect(),
                    url,
                    bearer_token: token,
                    timeout: c.timeout.0,
                    attempts: c.attempts,
                    backoff: c.backoff.0,
                    max_backoff: c.max_backoff.0,
                }),
                _ => errors.extend(
                    problems
                        .into_iter()
                        .map(|(path, message)| FieldError { path, message }),
                ),
            }
        }
        if errors.is_empty() {
            Ok(Notifications {
                queue: self.queue,
                max_in_flight: self.max_in_flight,
                channels,
            })
        } else {
            Err(errors)
        }
    }
}

fn field_error(path: &str, message: &str) -> FieldError {
    FieldError {
        path: path.into(),
        message: message.into(),
    }
}

/// Visible ASCII only: what an `Authorization` header value may hold.
fn is_header_safe(token: &str) -> bool {
    token.bytes().all(|b| (0x21..0x7f).contains(&b))
}

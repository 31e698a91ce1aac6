//! Verdict's configuration: typed, validated at load, never half-applied.
//!
//! One file (YAML, or TOML by extension) holds the daemon settings and the
//! analysis configs. `VERDICT_*` environment variables override settings
//! (`VERDICT_LISTEN`, `VERDICT_PROMETHEUS__URL`, ...), layered with the
//! `config` crate. Every problem is reported with the file, the line (where
//! the file has one) and the field path, all at once; a config with any
//! problem is refused as a whole, so a reload can never leave a daemon
//! running half of a new config.

pub mod analysis;
/// Prometheus-syntax durations (the type lives at the bottom, for the source too).
pub use crate::duration;
pub mod kayenta;
mod locate;
pub mod notify;
pub mod store;
pub mod template;
pub mod tokens;

use crate::secret::Secret;
use crate::source::prometheus::PrometheusSettings;
use analysis::{Analysis, AnalysisConfig, FieldError};
use duration::PromDuration;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The daemon's settings as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Address the HTTP API listens on.
    #[serde(default = "default_listen")]
    pub listen: String,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub prometheus: PrometheusSettings,
    /// Analysis configs by name.
    #[serde(default)]
    pub analyses: BTreeMap<String, AnalysisConfig>,
    /// Kayenta canary-config JSON files, each loaded as an analysis named
    /// after the config (paths relative to this file).
    #[serde(default)]
    pub kayenta_configs: Vec<PathBuf>,
    /// Where decisions are announced (Slack, generic webhooks).
    #[serde(default)]
    pub notifications: notify::NotificationSettings,
    /// API authentication (off when no token file is set).
    #[serde(default)]
    pub auth: AuthSettings,
    /// Serve the API over TLS (plain HTTP when absent).
    #[serde(default)]
    pub tls: Option<ServeTlsSettings>,
    /// Where runs and looks are recorded (SQLite beside this file by default).
    #[serde(default)]
    pub store: store::StoreSettings,
}

/// API authentication: `docs/security.md`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// File of accepted bearer tokens, one per line (several during a
    /// rotation); re-read on reload and when it changes. Never logged.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
}

/// The certificate the API is served with (PEM files, reloaded when they
/// change and on SIGHUP).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServeTlsSettings {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// Secrets read from the files and variables the settings name, besides
/// Prometheus's (kept with its settings, [`PrometheusSettings::credentials`]).
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    /// Tokens of `auth.token_file` (as digests).
    pub api_tokens: Option<tokens::Tokens>,
    /// The PostgreSQL URL of `store.url_file` / `store.url_env` (has a password).
    pub store_url: Option<Secret>,
}

/// A loaded, validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    pub path: PathBuf,
    pub settings: Settings,
    pub credentials: Credentials,
    pub analyses: BTreeMap<String, Arc<Analysis>>,
    /// Notification channels, secrets read.
    pub notifications: notify::Notifications,
}

/// One problem in a config file.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub line: Option<usize>,
    pub field: String,
    pub message: String,
}

/// Why a config was refused: every problem found, with its place.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigError {
    pub file: PathBuf,
    pub problems: Vec<Problem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", self.file.display())?;
            if let Some(line) = p.line {
                write!(f, ":{line}")?;
            }
            if p.field.is_empty() {
                write!(f, ": {}", p.message)?;
            } else {
                write!(f, ": {}: {}", p.field, p.message)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl ConfigError {
    fn one(file: &Path, line: Option<usize>, field: &str, message: String) -> Self {
        ConfigError {
            file: file.to_path_buf(),
            problems: vec![Problem {
                line,
                field: field.to_string(),
                message,
            }],
        }
    }
}

/// Format of a config file, by extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Yaml,
    Toml,
}

fn format_of(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some("toml") => Format::Toml,
        _ => Format::Yaml, // YAML is a superset of JSON, so .json works too
    }
}

/// Loads, overrides from the environment, validates and reads credentials.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigError::one(path, None, "", format!("cannot read: {e}")))?;
    load_str(path, &text, std::env::vars())
}

/// [`load`] from text, with an explicit environment (tests pass their own).
pub fn load_str(
    path: &Path,
    text: &str,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<Config, ConfigError> {
    let format = format_of(path);
    let mut settings: Settings = parse(path, text, format)?;
    let env: BTreeMap<String, String> = env.into_iter().collect();
    apply_env_overrides(path, &mut settings, env.clone())?;

    let mut problems = Vec::new();
    let mut analyses = BTreeMap::new();
    for (name, config) in settings.analyses.clone() {
        if let Err(e) = template::validate_token("analysis name", &name) {
            problems.push(locate_problem(text, format, &format!("analyses.{name}"), e));
            continue;
        }
        match config.validate(&name, &format!("analyses.{name}")) {
            Ok(analysis) => {
                analyses.insert(name, Arc::new(analysis));
            }
            Err(errors) => {
                problems.extend(errors.into_iter().map(|FieldError { path, message }| {
                    locate_problem(text, format, &path, message)
                }))
            }
        }
    }
    let base = path.parent().unwrap_or(Path::new("."));
    for (i, file) in settings.kayenta_configs.iter().enumerate() {
        let field = format!("kayenta_configs[{i}]");
        let full = base.join(file);
        let loaded = std::fs::read_to_string(&full)
            .map_err(|e| vec![format!("cannot read {}: {e}", full.display())])
            .and_then(|text| {
                verdict_judges::kayenta::config::CanaryConfig::from_json(&text).map_err(|e| {
                    vec![format!(
                        "{}: not a Kayenta canary config: {e}",
                        full.display()
                    )]
                })
            })
            .and_then(|canary| {
                let name = canary.name.clone();
                template::validate_token("Kayenta config name", &name).map_err(|e| vec![e])?;
                if analyses.contains_key(&name) {
                    return Err(vec![format!("analysis {name:?} is defined twice")]);
                }
                kayenta::analysis_config(&canary)
                    .and_then(|a| a.validate(&name, ""))
                    .map(|mut a| {
                        a.kayenta_source = Some(Arc::new(canary));
                        (name, a)
                    })
                    .map_err(|errs| {
                        errs.into_iter()
                            .map(|e| {
                                format!(
                                    "{}: {}: {}",
                                    full.display(),
                                    e.path.trim_start_matches('.'),
                                    e.message
                                )
                            })
                            .collect()
                    })
            });
        match loaded {
            Ok((name, analysis)) => {
                analyses.insert(name, Arc::new(analysis));
            }
            Err(messages) => problems.extend(
                messages
                    .into_iter()
                    .map(|m| locate_problem(text, format, &field, m)),
            ),
        }
    }
    if let Err(e) = url_is_http(&settings.prometheus.url) {
        problems.push(locate_problem(text, format, "prometheus.url", e));
    }
    if settings.prometheus.max_response_bytes == 0 {
        problems.push(locate_problem(
            text,
            format,
            "prometheus.max_response_bytes",
            "must be at least 1 byte".to_string(),
        ));
    }
    if settings.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(locate_problem(
            text,
            format,
            "listen",
            format!(
                "{:?} is not an address like 127.0.0.1:8080",
                settings.listen
            ),
        ));
    }
    let mut credentials = Credentials::default();
    if let Some(file) = &settings.prometheus.bearer_token_file {
        match read_secret(base, file) {
            Ok(token) => settings.prometheus.credentials.bearer_token = Some(Secret::new(token)),
            Err(e) => problems.push(locate_problem(
                text,
                format,
                "prometheus.bearer_token_file",
                e,
            )),
        }
    }
    if let Some(auth) = &settings.prometheus.basic_auth {
        match read_secret(base, &auth.password_file) {
            Ok(password) => {
                settings.prometheus.credentials.basic_auth =
                    Some((auth.username.clone(), Secret::new(password)))
            }
            Err(e) => problems.push(locate_problem(
                text,
                format,
                "prometheus.basic_auth.password_file",
                e,
            )),
        }
    }
    if let Some(file) = &settings.prometheus.tls.ca_file {
        let full = base.join(file);
        let checked = std::fs::read(&full)
            .map_err(|e| format!("cannot read CA file {}: {e}", full.display()))
            .and_then(|pem| match reqwest::Certificate::from_pem_bundle(&pem) {
                Ok(certs) if !certs.is_empty() => Ok(pem),
                Ok(_) => Err(format!("{} holds no PEM certificate", full.display())),
                Err(e) => Err(format!(
                    "{} is not a PEM certificate bundle: {e}",
                    full.display()
                )),
            });
        match checked {
            Ok(pem) => settings.prometheus.credentials.tls_ca_pem = Some(pem),
            Err(e) => problems.push(locate_problem(text, format, "prometheus.tls.ca_file", e)),
        }
    }
    let notifications = settings
        .notifications
        .resolve(base, &env)
        .unwrap_or_else(|errors| {
            problems.extend(
                errors
                    .into_iter()
                    .map(|e| locate_problem(text, format, &e.path, e.message)),
            );
            Default::default()
        });
    if let Some(file) = &settings.auth.token_file {
        match tokens::Tokens::read(&base.join(file)) {
            Ok(tokens) => credentials.api_tokens = Some(tokens),
            Err(e) => problems.push(locate_problem(text, format, "auth.token_file", e)),
        }
    }
    if let Some(tls) = &settings.tls {
        if let Err(e) =
            crate::tls::load_certified_key(&base.join(&tls.cert_file), &base.join(&tls.key_file))
        {
            problems.push(locate_problem(text, format, "tls", e));
        }
    }
    for (field, message) in settings.store.problems() {
        problems.push(locate_problem(text, format, field, message));
    }
    let env_var = |name: &str| env.get(name).cloned();
    match settings.store.read_url(base, &env_var) {
        Ok(url) => credentials.store_url = url.map(Secret::new),
        Err((field, message)) => problems.push(locate_problem(text, format, field, message)),
    }
    if !problems.is_empty() {
        return Err(ConfigError {
            file: path.to_path_buf(),
            problems,
        });
    }
    Ok(Config {
        path: path.to_path_buf(),
        settings,
        credentials,
        analyses,
        notifications,
    })
}

impl Config {
    /// A file named in the config, as read: relative paths are relative to
    /// the config file's directory.
    pub fn file(&self, name: &Path) -> PathBuf {
        self.path.parent().unwrap_or(Path::new(".")).join(name)
    }
}

pub(crate) fn url_is_http(url: &str) -> Result<(), String> {
    if url.starts_with("http://") || url.starts_with("https://") {
        Ok(())
    } else {
        Err(format!("{url:?} must start with http:// or https://"))
    }
}

pub(crate) fn read_secret(base: &Path, file: &Path) -> Result<String, String> {
    let path = base.join(file);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read secret file {}: {e}", path.display()))?;
    let secret = text.trim().to_string();
    if secret.is_empty() {
        return Err(format!("secret file {} is empty", path.display()));
    }
    Ok(secret)
}

fn locate_problem(text: &str, format: Format, field: &str, message: String) -> Problem {
    let line = match format {
        Format::Yaml => locate::yaml_line(text, field),
        Format::Toml => locate::toml_line(text, field),
    };
    Problem {
        line,
        field: field.to_string(),
        message,
    }
}

/// Deserializes with the field path and line of the first type error.
fn parse<T: for<'de> Deserialize<'de>>(
    path: &Path,
    text: &str,
    format: Format,
) -> Result<T, ConfigError> {
    match format {
        Format::Yaml => {
            let de = serde_yaml::Deserializer::from_str(text);
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let line = inner.location().map(|l| l.line());
                let field = if field == "." { String::new() } else { field };
                let line = line.or_else(|| locate::yaml_line(text, &field));
                // serde_yaml prefixes the path itself; it is reported separately.
                let message = strip_location(&inner.to_string());
                let message = message
                    .strip_prefix(&format!("{field}: "))
                    .unwrap_or(&message)
                    .to_string();
                ConfigError::one(path, line, &field, message)
            })
        }
        Format::Toml => {
            let de = toml::Deserializer::parse(text).map_err(|e| {
                let line = e.span().map(|s| line_of(text, s.start));
                ConfigError::one(path, line, "", e.message().to_string())
            })?;
            serde_path_to_error::deserialize(de).map_err(|e| {
                let field = e.path().to_string();
                let inner = e.into_inner();
                let line = inner.span().map(|s| line_of(text, s.start));
                ConfigError::one(path, line, &field, inner.message().to_string())
            })
        }
    }
}

/// serde_yaml appends " at line L column C"; the line is reported separately.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}

fn line_of(text: &str, byte: usize) -> usize {
    text[..byte.min(text.len())].matches('\n').count() + 1
}

/// Settings that `VERDICT_*` variables may override.
#[derive(Debug, Default, Deserialize)]
struct EnvOverrides {
    listen: Option<String>,
    log_format: Option<LogFormat>,
    prometheus: Option<PrometheusOverrides>,
    store: Option<StoreOverrides>,
}

/// The store's location and connection, which differ per environment (a
/// volume path, a Secret's file); retention stays in the reviewed file.
#[derive(Debug, Default, Deserialize)]
struct StoreOverrides {
    backend: Option<store::StoreBackend>,
    path: Option<PathBuf>,
    url_file: Option<PathBuf>,
    url_env: Option<String>,
    pool_size: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
struct PrometheusOverrides {
    url: Option<String>,
    bearer_token_file: Option<PathBuf>,
    timeout: Option<PromDuration>,
    retries: Option<u32>,
}

fn apply_env_overrides(
    path: &Path,
    settings: &mut Settings,
    env: impl IntoIterator<Item = (String, String)>,
) -> Result<(), ConfigError> {
    let vars: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with("VERDICT_"))
        .collect();
    let overrides: EnvOverrides = config::Config::builder()
        .add_source(
            config::Environment::with_prefix("VERDICT")
                .prefix_separator("_")
                .separator("__")
                .source(Some(vars)),
        )
        .build()
        .and_then(|c| c.try_deserialize())
        .map_err(|e| {
            ConfigError::one(
                path,
                None,
                "",
                format!("bad VERDICT_* environment override: {e}"),
            )
        })?;
    if let Some(listen) = overrides.listen {
        settings.listen = listen;
    }
    if let Some(format) = overrides.log_format {
        settings.log_format = format;
    }
    if let Some(p) = overrides.prometheus {
        if let Some(url) = p.url {
            settings.prometheus.url = url;
        }
        if let Some(file) = p.bearer_token_file {
            settings.prometheus.bearer_token_file = Some(file);
        }
        if let Some(timeout) = p.timeout {
            settings.prometheus.timeout = timeout;
        }
        if let Some(retries) = p.retries {
            settings.prometheus.retries = retries;
        }
    }
    if let Some(s) = overrides.store {
        let store = &mut settings.store;
        if let Some(backend) = s.backend {
            store.backend = backend;
        }
        if let Some(path) = s.path {
            store.path = Some(path);
        }
        if let Some(file) = s.url_file {
            store.url_file = Some(file);
        }
        if let Some(name) = s.url_env {
            store.url_env = Some(name);
        }
        if let Some(size) = s.pool_size {
            store.pool_size = size;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;

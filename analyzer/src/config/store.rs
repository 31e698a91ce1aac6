//! The `store:` section: where runs and looks are recorded.
//!
//! ```yaml
//! store:
//!   backend: sqlite          # default; or postgres, memory
//!   path: verdict.db         # sqlite: relative to this config file
//!   # url_file: /secrets/pg-url   # postgres: the URL (with its password) in a file
//!   # url_env: VERDICT_PG_URL     # ... or in an environment variable
//!   # pool_size: 4
//!   retention: {looks: 30d}
//! ```
//!
//! The default is SQLite at `verdict.db` beside the config file: an audit
//! trail and restart safety with no other service, which is what a laptop
//! run and a single replica need. Memory is opt-in and warned about at
//! start, because a daemon that forgets its runs on restart is not a
//! deployment gate anyone should trust by accident.

use super::duration::PromDuration;
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// Which backend records runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum StoreBackend {
    #[default]
    Sqlite,
    Postgres,
    Memory,
}

/// The `store:` section as written.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreSettings {
    #[serde(default)]
    pub backend: StoreBackend,
    /// SQLite database file, relative to the config file.
    #[serde(default)]
    pub path: Option<PathBuf>,
    /// PostgreSQL: file holding the connection URL (read at load; never logged).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// PostgreSQL: environment variable holding the connection URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// PostgreSQL: most connections per replica.
    #[serde(default = "default_pool_size")]
    pub pool_size: usize,
    #[serde(default)]
    pub retention: RetentionSettings,
}

/// How long records are kept.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionSettings {
    /// Looks older than this are deleted (each run's summary and latest
    /// look are kept).
    #[serde(default = "default_look_retention")]
    pub looks: PromDuration,
}

/// The SQLite file used when `store.path` is absent.
pub const DEFAULT_SQLITE_FILE: &str = "verdict.db";

fn default_pool_size() -> usize {
    4
}

fn default_look_retention() -> PromDuration {
    PromDuration::from_secs(30 * 86_400)
}

impl Default for RetentionSettings {
    fn default() -> Self {
        RetentionSettings {
            looks: default_look_retention(),
        }
    }
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            backend: StoreBackend::default(),
            path: None,
            url_file: None,
            url_env: None,
            pool_size: default_pool_size(),
            retention: RetentionSettings::default(),
        }
    }
}

impl StoreSettings {
    /// The SQLite file: `path` (or [`DEFAULT_SQLITE_FILE`]) relative to the
    /// directory of `config_file`.
    pub fn sqlite_path(&self, config_file: &Path) -> PathBuf {
        let file = self
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_SQLITE_FILE));
        match config_file.parent() {
            Some(dir) if file.is_relative() => dir.join(file),
            _ => file,
        }
    }

    /// Problems of the section as (field, message); the caller locates them.
    pub fn problems(&self) -> Vec<(&'static str, String)> {
        let mut problems = Vec::new();
        let postgres_only = [
            ("store.url_file", self.url_file.is_some()),
            ("store.url_env", self.url_env.is_some()),
        ];
        match self.backend {
            StoreBackend::Sqlite | StoreBackend::Memory => {
                for (field, set) in postgres_only {
                    if set {
                        problems.push((field, "only the postgres backend takes a URL".to_string()));
                    }
                }
                if self.backend == StoreBackend::Memory && self.path.is_some() {
                    problems.push((
                        "store.path",
                        "the memory backend keeps nothing on disk; remove path or use backend: sqlite"
                            .to_string(),
                    ));
                }
            }
            StoreBackend::Postgres => {
                if self.path.is_some() {
                    problems.push((
                        "store.path",
                        "path is for the sqlite backend; postgres takes url_file or url_env"
                            .to_string(),
                    ));
                }
                match (&self.url_file, &self.url_env) {
                    (None, None) => problems.push((
                        "store.backend",
                        "postgres needs url_file or url_env (the connection URL is a secret)"
                            .to_string(),
                    )),
                    (Some(_), Some(_)) => problems.push((
                        "store.url_env",
                        "give url_file or url_env, not both".to_string(),
                    )),
                    _ => {}
                }
            }
        }
        if self.pool_size == 0 || self.pool_size > 64 {
            problems.push(("store.pool_size", "must be between 1 and 64".to_string()));
        }
        if self.retention.looks.0.as_secs() < 3600 {
            problems.push((
                "store.retention.looks",
                "must be at least 1h (a run's looks must outlive the run)".to_string(),
            ));
        }
        problems
    }

    /// Reads the PostgreSQL URL from its file (relative to `base`) or
    /// variable; `Ok(None)` for the other backends.
    pub fn read_url(
        &self,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Option<String>, (&'static str, String)> {
        if self.backend != StoreBackend::Postgres {
            return Ok(None);
        }
        let url = if let Some(file) = &self.url_file {
            let path = base.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| {
                (
                    "store.url_file",
                    format!("cannot read {}: {e}", path.display()),
                )
            })?;
            text.trim().to_string()
        } else if let Some(var) = &self.url_env {
            env(var).map(|v| v.trim().to_string()).ok_or((
                "store.url_env",
                format!("environment variable {var} is not set"),
            ))?
        } else {
            return Ok(None);
        };
        // Say what is wrong without echoing the URL: it holds a password.
        if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            let field = if self.url_file.is_some() {
                "store.url_file"
            } else {
                "store.url_env"
            };
            return Err((
                field,
                "the URL must start with postgres:// or postgresql://".to_string(),
            ));
        }
        Ok(Some(url))
    }
}

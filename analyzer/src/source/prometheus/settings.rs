//! The connection settings of a Prometheus-compatible backend: the
//! `prometheus:` section of the config file, deserialised as it is written,
//! plus what the config layer reads from the files it names
//! ([`PrometheusSettings::credentials`]). One type with one set of defaults
//! for the daemon, the CLI and the tests.

use crate::duration::PromDuration;
use crate::secret::Secret;
use serde::Deserialize;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where and how to reach Prometheus (or Thanos, Mimir, VictoriaMetrics).
///
/// Secrets never sit in the config file: it names files, and the config
/// layer reads them into [`PrometheusSettings::credentials`] at load.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PrometheusSettings {
    /// Base URL of the HTTP API, e.g. `http://prometheus:9090` or
    /// `http://mimir/prometheus` (a path prefix is kept).
    #[serde(default = "defaults::url")]
    pub url: String,
    /// File holding a bearer token, sent as `Authorization: Bearer`.
    #[serde(default)]
    pub bearer_token_file: Option<PathBuf>,
    /// HTTP basic auth, the password in a file. Mutually exclusive with
    /// `bearer_token_file`.
    #[serde(default)]
    pub basic_auth: Option<BasicAuthSettings>,
    /// Deadline of one HTTP request (connect, query, body), also sent as the
    /// server-side evaluation timeout.
    #[serde(default = "defaults::timeout")]
    pub timeout: PromDuration,
    /// Extra attempts after the first for retryable failures (5xx, 429,
    /// connection errors).
    #[serde(default = "defaults::retries")]
    pub retries: u32,
    /// Largest response body read (decompressed bytes); a larger answer is
    /// [`super::SourceError::TooLarge`] for that metric (a query selecting
    /// far more series than intended).
    #[serde(default = "defaults::max_response_bytes")]
    pub max_response_bytes: usize,
    /// TLS for `https://` URLs (the system's roots are always trusted).
    #[serde(default)]
    pub tls: TlsSettings,
    /// Wait before the first retry; doubled for each further retry. Not in
    /// the file.
    #[serde(skip, default = "defaults::backoff")]
    pub backoff: Duration,
    /// Upper bound of any wait between attempts, including a server's
    /// `Retry-After`, so a misbehaving proxy cannot stall an analysis. Not
    /// in the file.
    #[serde(skip, default = "defaults::max_backoff")]
    pub max_backoff: Duration,
    /// Requests the source has in flight at most; protects the backend when
    /// many analyses run at once. Not in the file.
    #[serde(skip, default = "defaults::max_concurrency")]
    pub max_concurrency: usize,
    /// What the files named above hold, read by the config layer at load.
    #[serde(skip)]
    pub credentials: PrometheusCredentials,
}

/// Basic auth with the password in a file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BasicAuthSettings {
    pub username: String,
    pub password_file: PathBuf,
}

/// TLS settings of the Prometheus connection.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsSettings {
    /// PEM file of extra CA certificates (a private CA); read at load.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any server certificate. Only for test setups: it gives up the
    /// server's identity, and Verdict logs a warning at start.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// The contents of the files [`PrometheusSettings`] names.
#[derive(Clone, Default)]
pub struct PrometheusCredentials {
    /// Of `bearer_token_file`.
    pub bearer_token: Option<Secret>,
    /// `basic_auth.username` and the password of `basic_auth.password_file`.
    pub basic_auth: Option<(String, Secret)>,
    /// Of `tls.ca_file`: PEM certificates to trust besides the system's roots.
    pub tls_ca_pem: Option<Vec<u8>>,
}

// Secrets redact themselves; the CA bundle is public but long, so only its
// size is shown.
impl fmt::Debug for PrometheusCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PrometheusCredentials")
            .field("bearer_token", &self.bearer_token)
            .field("basic_auth", &self.basic_auth)
            .field("tls_ca_pem_bytes", &self.tls_ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// The defaults, chosen for the webhook path: a look must answer within
/// `Engine::answer_budget` (4.5 s) and its fetching ends at
/// `Engine::fetch_budget` (4 s), so one attempt gets 3 s (a timeout beyond
/// the fetch budget would never fire, and would let an abandoned query keep
/// running on the backend for as long) and at most 2 retries, whose waits
/// (250 ms, 500 ms, each capped at 1 s) still fit in the budget after a fast
/// failure (refused connection, 5xx, 429).
mod defaults {
    use crate::duration::PromDuration;
    use std::time::Duration;
    pub fn url() -> String {
        "http://127.0.0.1:9090".into()
    }
    pub fn timeout() -> PromDuration {
        PromDuration::from_secs(3)
    }
    pub fn retries() -> u32 {
        2
    }
    pub fn backoff() -> Duration {
        Duration::from_millis(250)
    }
    /// 1 s: a longer wait leaves no time for the retry it waits for.
    pub fn max_backoff() -> Duration {
        Duration::from_secs(1)
    }
    pub fn max_concurrency() -> usize {
        8
    }
    /// 8 MiB: a day of 15 s points is about 150 KiB per series, so this
    /// holds a 50-bucket histogram over a day with room to spare.
    pub fn max_response_bytes() -> usize {
        8 << 20
    }
}

impl PrometheusSettings {
    /// Settings for `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        PrometheusSettings {
            url: url.into(),
            ..Self::default()
        }
    }
}

impl Default for PrometheusSettings {
    fn default() -> Self {
        PrometheusSettings {
            url: defaults::url(),
            bearer_token_file: None,
            basic_auth: None,
            timeout: defaults::timeout(),
            retries: defaults::retries(),
            max_response_bytes: defaults::max_response_bytes(),
            tls: TlsSettings::default(),
            backoff: defaults::backoff(),
            max_backoff: defaults::max_backoff(),
            max_concurrency: defaults::max_concurrency(),
            credentials: PrometheusCredentials::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_and_the_code_share_one_set_of_defaults() {
        let parsed: PrometheusSettings = serde_yaml::from_str("{}").unwrap();
        let built = PrometheusSettings::default();
        assert_eq!(format!("{parsed:?}"), format!("{built:?}"));
        assert_eq!(
            (built.timeout.0, built.retries),
            (Duration::from_secs(3), 2)
        );
    }

    #[test]
    fn debug_redacts_credentials() {
        let mut c = PrometheusSettings::new("http://p:9090");
        c.credentials.bearer_token = Some(Secret::new("s3cret"));
        c.credentials.basic_auth = Some(("me".into(), Secret::new("hunter2")));
        let text = format!("{c:?}");
        assert!(
            !text.contains("s3cret") && !text.contains("hunter2"),
            "{text}"
        );
    }
}

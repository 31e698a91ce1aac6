//! Verdict itself, in-process, for end-to-end tests of the HTTP API.
//!
//! [`Daemon::start`] does what `verdict serve` does (load the config from
//! YAML text, build the Prometheus source, the engine and the router) and
//! serves it on a free loopback port chosen at run time, in a task of the
//! test's runtime. Each test starts its own daemon, so tests run in
//! parallel without sharing runs, telemetry or ports.
//!
//! The clock: test data lives in the past (promtool only backfills data
//! older than the head block, see [`super::prometheus::base_time`]), so the
//! daemon's clock ([`verdict::api::Clock`]) is pinned to a time the test
//! chooses, in seconds after `base_time()`, and moved with [`Daemon::at`].
//! Everything else is the production code path.
//!
//! Tests whose data is live (a Prometheus scraping real services while the
//! test runs) use [`Daemon::start_on_wall_clock`] instead: the clock of
//! `verdict serve`.
//! The run store: a config without a `store:` section gets a SQLite file
//! in a temporary directory owned by the daemon (the production default
//! would put `verdict.db` in the working directory, littering the checkout).

#![allow(dead_code)] // each test binary uses a different subset

use super::prometheus::base_time;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use verdict::api::{self, AppState};
use verdict::engine::Engine;
use verdict::telemetry::Telemetry;

/// A running Verdict. Stopped on drop.
pub struct Daemon {
    /// Base URL, e.g. `http://127.0.0.1:41235`.
    pub url: String,
    pub engine: Arc<Engine>,
    /// The clock, as `f64` bits of unix seconds.
    clock: Arc<AtomicU64>,
    /// Serving on the wall clock: `clock` is unused.
    wall_clock: bool,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    client: reqwest::Client,
    /// Holds the default SQLite store's directory until the daemon drops.
    _store_dir: Option<tempfile::TempDir>,
}

/// A response: status and body text.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("answer is not JSON ({e}): {} {}", self.status, self.body))
    }
}

impl Daemon {
    /// Starts Verdict on `config_yaml` (a whole config file) with its clock
    /// at `base_time() + at` seconds. Panics if the config is refused.
    pub async fn start(config_yaml: &str, at: f64) -> Daemon {
        Self::start_with(config_yaml, at, false, None).await
    }

    /// Starts Verdict on `config_yaml` on the wall clock, exactly as
    /// `verdict serve` runs. [`Daemon::at`] panics on such a daemon.
    pub async fn start_on_wall_clock(config_yaml: &str) -> Daemon {
        Self::start_with(config_yaml, 0.0, true, None).await
    }

    /// [`Daemon::start`] with another series source than the config's
    /// Prometheus (`None`: the config's).
    pub async fn start_with_source(
        config_yaml: &str,
        at: f64,
        source: Option<Arc<dyn verdict::source::SeriesSource>>,
    ) -> Daemon {
        Self::start_with(config_yaml, at, false, source).await
    }

    /// The pinned clock at `base_time() + at` (or the wall clock if
    /// `wall_clock`), over `source` or the config's Prometheus.
    async fn start_with(
        config_yaml: &str,
        at: f64,
        wall_clock: bool,
        source: Option<Arc<dyn verdict::source::SeriesSource>>,
    ) -> Daemon {
        let (config_yaml, store_dir) = with_default_store(config_yaml);
        let config_yaml = config_yaml.as_str();
        let config = verdict::config::load_str(
            std::path::Path::new("verdict-test.yaml"),
            config_yaml,
            std::iter::empty(),
        )
        .unwrap_or_else(|e| panic!("test config refused:\n{e}\n--- config ---\n{config_yaml}"));
        let source = match source {
            Some(s) => s,
            None => verdict::cli::serve::prometheus_source(&config).expect("Prometheus source"),
        };
        let store = verdict::cli::serve::open_store(&config)
            .await
            .expect("open the run store");
        let telemetry = Arc::new(Telemetry::new());
        let notifier = verdict::cli::serve::start_notifier(
            &config,
            &telemetry,
            Arc::new(verdict::notify::StoreLog(store.clone())),
        )
        .expect("notifier");
        let engine = Arc::new(
            Engine::new(config.analyses.clone(), source.clone(), telemetry)
                .with_notifier(notifier.map(|n| n as Arc<dyn verdict::engine::LookObserver>))
                .with_store(store.clone()),
        );
        let kayenta = verdict::cli::serve::kayenta_api(&engine, store)
            .await
            .expect("the Kayenta API on the store");
        let clock = Arc::new(AtomicU64::new((base_time() as f64 + at).to_bits()));
        let reading = clock.clone();
        let auth = api::auth::Authenticator::new(config.credentials.api_tokens.clone());
        let state = AppState::new(engine.clone(), source)
            .with_auth(Arc::new(auth))
            .with_kayenta(kayenta);
        let state = if wall_clock {
            state
        } else {
            state.with_clock(Arc::new(move || {
                f64::from_bits(reading.load(Ordering::SeqCst))
            }))
        };
        let app = api::router(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind a loopback port");
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await
                .expect("serve");
        });
        Daemon {
            url: format!("http://{addr}"),
            engine,
            clock,
            wall_clock,
            shutdown: Some(tx),
            client: {
                verdict::tls::install_crypto_provider();
                // Few idle connections kept: by default every connection a
                // burst opens stays idle for 90 s, so the client's (and the
                // daemon's matching) sockets would count the highest
                // concurrency seen so far, which the soak reads as growth.
                reqwest::Client::builder()
                    .timeout(Duration::from_secs(20))
                    .pool_max_idle_per_host(4)
                    .build()
                    .expect("HTTP client")
            },
            _store_dir: store_dir,
        }
    }

    /// Sets the clock to `base_time() + at` seconds.
    pub fn at(&self, at: f64) {
        assert!(
            !self.wall_clock,
            "Daemon::at on a daemon running on the wall clock"
        );
        self.clock
            .store((base_time() as f64 + at).to_bits(), Ordering::SeqCst);
    }

    /// Stops serving (in-flight requests finish).
    pub fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    pub async fn get(&self, path: &str) -> Answer {
        let r = self
            .client
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        answer(r).await
    }

    /// POST with `Content-Type: application/json`, as Flagger and Argo's
    /// `jsonBody` send.
    pub async fn post_json(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        let r = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        answer(r).await
    }

    /// PUT with `Content-Type: application/json` (Kayenta's `/canaryConfig/{id}`).
    pub async fn put_json(&self, path: &str, body: impl Into<Vec<u8>>) -> Answer {
        let r = self
            .client
            .put(format!("{}{path}", self.url))
            .header("content-type", "application/json")
            .body(body.into())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {path}: {e}"));
        answer(r).await
    }

    pub async fn delete(&self, path: &str) -> Answer {
        let r = self
            .client
            .delete(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap_or_else(|e| panic!("DELETE {path}: {e}"));
        answer(r).await
    }

    /// The `/metrics` exposition.
    pub async fn metrics(&self) -> String {
        let a = self.get("/metrics").await;
        assert_eq!(a.status, 200, "{}", a.body);
        a.body
    }

    /// Sum of every sample of `name` whose labels contain all of `labels`
    /// (`key="value"` pairs), from `/metrics`; 0 when there is none.
    pub async fn metric_sum(&self, name: &str, labels: &[&str]) -> f64 {
        metric_sum(&self.metrics().await, name, labels)
    }
}

/// Adds a SQLite store in a fresh temporary directory to a config that
/// names none.
fn with_default_store(config_yaml: &str) -> (String, Option<tempfile::TempDir>) {
    let names_store = config_yaml
        .lines()
        .any(|l| l.starts_with("store:") || l.starts_with("store "));
    if names_store {
        return (config_yaml.to_string(), None);
    }
    let dir = tempfile::tempdir().expect("temporary store directory");
    let text = format!(
        "{}\nstore: {{backend: sqlite, path: {:?}}}\n",
        config_yaml.trim_end(),
        dir.path().join("verdict.db").display().to_string()
    );
    (text, Some(dir))
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn answer(r: reqwest::Response) -> Answer {
    let status = r.status().as_u16();
    let body = r.text().await.expect("response body");
    Answer { status, body }
}

/// Sum of the samples of `name` in exposition `text` whose label set
/// contains every one of `labels` (each `key="value"`).
pub fn metric_sum(text: &str, name: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, label_text) = match series.split_once('{') {
                Some((m, rest)) => (m, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if metric != name {
                return None;
            }
            let pairs: Vec<&str> = label_text.split(',').collect();
            labels
                .iter()
                .all(|want| pairs.contains(want))
                .then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

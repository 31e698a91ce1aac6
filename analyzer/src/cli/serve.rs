//! `verdict serve`: the daemon.
//!
//! Start-up refuses an invalid config (exit 2, every problem printed). Once
//! running, the config is reloaded on SIGHUP and when the file changes; an
//! invalid reload is logged and counted, and the last good config stays in
//! force. Analysis configs reload live; listen address and Prometheus
//! settings need a restart (logged when they differ).

use crate::api::auth::Authenticator;
use crate::api::{self, AppState};
use crate::config::{self, Config, LogFormat};
use crate::engine::{Engine, LookObserver};
use crate::notify::{NotificationLog, Notifier, StoreLog};
use crate::source::prometheus::PrometheusSource;
use crate::source::SeriesSource;
use crate::telemetry::{Reload, Telemetry};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

pub fn run(config_path: &Path) -> i32 {
    let config = match config::load(config_path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            eprintln!("refusing to start with an invalid config");
            return super::EXIT_BAD_INPUT;
        }
    };
    init_logging(config.settings.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return 1;
        }
    };
    match runtime.block_on(serve(config)) {
        Ok(()) => 0,
        Err(e) => {
            tracing::error!("{e:#}");
            eprintln!("{e:#}");
            1
        }
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// Builds the metric source from the config's Prometheus settings.
pub fn prometheus_source(config: &Config) -> anyhow::Result<Arc<dyn SeriesSource>> {
    Ok(Arc::new(PrometheusSource::new(
        &config.settings.prometheus,
    )?))
}

/// Starts the notification worker when the config names channels. Outcomes
/// go to `log` (the audit trail).
pub fn start_notifier(
    config: &Config,
    telemetry: &Arc<Telemetry>,
    log: Arc<dyn NotificationLog>,
) -> anyhow::Result<Option<Arc<Notifier>>> {
    if config.notifications.channels.is_empty() {
        return Ok(None);
    }
    let notifier = Notifier::start(config.notifications.clone(), log, telemetry.clone())?;
    tracing::info!(
        channels = ?config.notifications.channels.iter().map(|c| &c.name).collect::<Vec<_>>(),
        "notifications on"
    );
    Ok(Some(notifier))
}

async fn serve(config: Config) -> anyhow::Result<()> {
    let source = prometheus_source(&config)?;
    if config.settings.prometheus.tls.insecure_skip_verify {
        tracing::warn!(
            "prometheus.tls.insecure_skip_verify is set: the backend's identity is not checked"
        );
    }
    let telemetry = Arc::new(Telemetry::new());
    let store = open_store(&config).await?;
    tokio::spawn(crate::store::retention::run(
        store.clone(),
        config.settings.store.retention.looks.0,
        telemetry.clone(),
    ));
    let notifier = start_notifier(&config, &telemetry, Arc::new(StoreLog(store.clone())))?;
    let engine = Arc::new(
        Engine::new(config.analyses.clone(), source.clone(), telemetry.clone())
            .with_notifier(notifier.map(|n| n as Arc<dyn LookObserver>))
            .with_store(store.clone()),
    );
    let kayenta = kayenta_api(&engine, store).await?;
    let auth = Arc::new(Authenticator::new(config.credentials.api_tokens.clone()));
    if config.credentials.api_tokens.is_none() {
        tracing::warn!(
            "auth.token_file is not set: every API route is open to anyone who can reach it"
        );
    }
    let app = api::router(
        AppState::new(engine.clone(), source)
            .with_auth(auth.clone())
            .with_kayenta(kayenta),
    );
    let listener = tokio::net::TcpListener::bind(&config.settings.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.settings.listen))?;
    tracing::info!(
        listen = %listener.local_addr()?,
        tls = config.settings.tls.is_some(),
        auth = config.credentials.api_tokens.is_some(),
        analyses = ?config.analyses.keys().collect::<Vec<_>>(),
        "verdict serving"
    );
    let tls = match &config.settings.tls {
        Some(tls) => Some(Arc::new(
            crate::serve_tls::CertStore::load(
                &config.file(&tls.cert_file),
                &config.file(&tls.key_file),
            )
            .map_err(|e| anyhow::anyhow!(e))?,
        )),
        None => None,
    };
    tokio::spawn(reload_loop(config, engine, auth));
    match tls {
        Some(store) => {
            let server_config =
                crate::serve_tls::server_config(store.clone()).map_err(|e| anyhow::anyhow!(e))?;
            tokio::spawn(crate::serve_tls::watch(
                store,
                telemetry.clone(),
                Duration::from_secs(2),
            ));
            let listener = crate::serve_tls::TlsListener::new(listener, server_config, telemetry)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
        None => {
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
    }
    tracing::info!("verdict stopped");
    Ok(())
}

/// Opens and migrates the configured run store (see `config::store` for
/// the default), warning when nothing will survive a restart.
pub async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn crate::store::Store>> {
    let settings = &config.settings.store;
    let store = crate::store::open(config).await?;
    match settings.backend {
        crate::config::store::StoreBackend::Memory => tracing::warn!(
            "store.backend is memory: runs and looks are lost on restart, and replicas do not share them"
        ),
        crate::config::store::StoreBackend::Sqlite => tracing::info!(
            path = %settings.sqlite_path(&config.path).display(),
            "run store: sqlite"
        ),
        crate::config::store::StoreBackend::Postgres => {
            tracing::info!("run store: postgres")
        }
    }
    Ok(store)
}

/// The Kayenta API on the run store's repositories, with every execution
/// a previous daemon left running judged again (`kayenta_api::KayentaApi::resume`).
pub async fn kayenta_api(
    engine: &Arc<Engine>,
    store: Arc<dyn crate::store::Store>,
) -> anyhow::Result<Arc<crate::kayenta_api::KayentaApi>> {
    let api = crate::kayenta_api::KayentaApi::new(engine.clone(), store.kayenta());
    let resumed = api
        .resume()
        .await
        .map_err(|e| anyhow::anyhow!("cannot resume the Kayenta executions: {e}"))?;
    if resumed > 0 {
        tracing::info!(resumed, "kayenta executions left running are judged again");
    }
    Ok(Arc::new(api))
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

fn modified(path: &PathBuf) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// Stamps of the files a config reads at load besides itself (the API token
/// file), so that rotating a token reloads as a config edit does.
fn secret_stamps(config: &Config) -> Vec<crate::serve_tls::FileStamp> {
    config
        .settings
        .auth
        .token_file
        .iter()
        .map(|f| crate::serve_tls::file_stamp(&config.file(f)))
        .collect()
}

/// Reloads on SIGHUP or when the file's modification time changes.
async fn reload_loop(mut current: Config, engine: Arc<Engine>, auth: Arc<Authenticator>) {
    let path = current.path.clone();
    let mut last_modified = modified(&path);
    let mut last_secrets = secret_stamps(&current);
    let mut trigger = crate::reload::ReloadTrigger::new(Duration::from_secs(2));
    loop {
        let reason = match trigger.next().await {
            crate::reload::Wake::Hangup => "SIGHUP",
            crate::reload::Wake::Tick => {
                let now = modified(&path);
                let secrets = secret_stamps(&current);
                if now == last_modified && secrets == last_secrets {
                    continue;
                }
                last_modified = now;
                last_secrets = secrets;
                "file change"
            }
        };
        let telemetry = engine.telemetry().clone();
        match config::load(&path) {
            Ok(new) => {
                if new.settings.listen != current.settings.listen
                    || new.settings.prometheus.url != current.settings.prometheus.url
                {
                    tracing::warn!("listen address or Prometheus URL changed: restart to apply");
                }
                if new.settings.notifications != current.settings.notifications {
                    tracing::warn!("notification channels changed: restart to apply");
                }
                if new.settings.tls != current.settings.tls {
                    tracing::warn!("tls settings changed: restart to apply");
                }
                if new.credentials.api_tokens.is_none() {
                    tracing::warn!("auth.token_file is not set: every API route is open");
                }
                auth.set(new.credentials.api_tokens.clone());
                last_secrets = secret_stamps(&new);
                engine.set_analyses(new.analyses.clone());
                telemetry.config_reloaded(Reload::Success);
                tracing::info!(reason, analyses = ?new.analyses.keys().collect::<Vec<_>>(), "config reloaded");
                current = new;
            }
            Err(e) => {
                telemetry.config_reloaded(Reload::Failure);
                tracing::error!(
                    reason,
                    "config reload refused, keeping the last good config: {e}"
                );
            }
        }
    }
}

//! Serving the API over TLS (rustls with the ring provider of [`crate::tls`]).
//!
//! The certificate and key come from PEM files (a Kubernetes TLS Secret, a
//! cert-manager Certificate). [`CertStore`] is the server's certificate
//! resolver: every handshake asks it for the certified key in force, so a
//! reload ([`CertStore::reload`], driven by [`watch`] on a file change or
//! SIGHUP) takes effect on the next connection without closing the
//! listener or any open connection. A reload that fails (a half-written
//! file, a key that does not match its certificate) keeps the old pair.
//!
//! [`TlsListener`] plugs into `axum::serve`: a background task accepts TCP
//! connections and runs each handshake in a task of its own, bounded in time
//! and in number, so a slow or silent client cannot hold up the others.

use crate::telemetry::{Reload, Telemetry};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls::ServerConfig;
use rustls_pki_types::CertificateDer;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;

/// Longest a client may take to complete its handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in progress at once; more connections wait to be accepted.
const MAX_HANDSHAKES: usize = 256;

pub use crate::tls::load_certified_key;

/// Modification time and length of a file: what changes when it is
/// rewritten or when a Secret volume swaps its link.
pub type FileStamp = Option<(SystemTime, u64)>;

/// The stamp of `path` now (`None` when it cannot be read).
pub fn file_stamp(path: &Path) -> FileStamp {
    std::fs::metadata(path)
        .and_then(|m| Ok((m.modified()?, m.len())))
        .ok()
}

/// The certificate in force and the files it came from.
pub struct CertStore {
    cert_file: PathBuf,
    key_file: PathBuf,
    current: RwLock<Arc<CertifiedKey>>,
    stamps: Mutex<(FileStamp, FileStamp)>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore")
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .finish_non_exhaustive()
    }
}

impl CertStore {
    /// Loads the pair; an error names the file and what is wrong with it.
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<CertStore, String> {
        let stamps = (file_stamp(cert_file), file_stamp(key_file));
        let key = load_certified_key(cert_file, key_file)?;
        Ok(CertStore {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: RwLock::new(Arc::new(key)),
            stamps: Mutex::new(stamps),
        })
    }

    /// Whether either file changed since the pair in force was read.
    pub fn changed(&self) -> bool {
        let now = (file_stamp(&self.cert_file), file_stamp(&self.key_file));
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) != now
    }

    /// Reads the files again; on success the new pair serves the next
    /// handshake, on failure the old one stays.
    pub fn reload(&self) -> Result<(), String> {
        let stamps = (file_stamp(&self.cert_file), file_stamp(&self.key_file));
        let key = load_certified_key(&self.cert_file, &self.key_file);
        // Remember the stamps either way: a broken file is reported once,
        // not at every poll, and retried when it changes again.
        *self.stamps.lock().unwrap_or_else(|e| e.into_inner()) = stamps;
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(key?);
        Ok(())
    }

    /// The certificate chain in force (its first element is the leaf).
    pub fn chain(&self) -> Vec<CertificateDer<'static>> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .cert
            .clone()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(
            self.current
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }
}

/// A rustls server config that serves whatever `store` holds, HTTP/1.1.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<ServerConfig>, String> {
    let mut config =
        ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS protocol versions: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(store);
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Reloads `store` when its files change (polled every `interval`) and on
/// SIGHUP; each attempt is logged and counted in `verdict_tls_reloads_total`.
pub async fn watch(store: Arc<CertStore>, telemetry: Arc<Telemetry>, interval: Duration) {
    let mut trigger = crate::reload::ReloadTrigger::new(interval);
    loop {
        let reason = match trigger.next().await {
            crate::reload::Wake::Hangup => "SIGHUP",
            crate::reload::Wake::Tick if store.changed() => "file change",
            crate::reload::Wake::Tick => continue,
        };
        match store.reload() {
            Ok(()) => {
                telemetry.tls_reloaded(Reload::Success);
                tracing::info!(reason, cert = %store.cert_file.display(), "TLS certificate reloaded");
            }
            Err(e) => {
                telemetry.tls_reloaded(Reload::Failure);
                tracing::error!(
                    reason,
                    "TLS certificate reload refused, keeping the old one: {e}"
                );
            }
        }
    }
}

/// A TLS listener for `axum::serve`: yields connections whose handshake
/// has completed.
pub struct TlsListener {
    ready: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
    acceptor_task: tokio::task::JoinHandle<()>,
}

impl TlsListener {
    /// Starts accepting on `tcp`; handshakes use `config`.
    pub fn new(
        tcp: TcpListener,
        config: Arc<ServerConfig>,
        telemetry: Arc<Telemetry>,
    ) -> std::io::Result<TlsListener> {
        let local = tcp.local_addr()?;
        let (tx, ready) = mpsc::channel(MAX_HANDSHAKES);
        let acceptor = TlsAcceptor::from(config);
        let acceptor_task = tokio::spawn(accept_loop(tcp, acceptor, tx, telemetry));
        Ok(TlsListener {
            ready,
            local,
            acceptor_task,
        })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.acceptor_task.abort();
    }
}

async fn accept_loop(
    tcp: TcpListener,
    acceptor: TlsAcceptor,
    ready: mpsc::Sender<(TlsStream<TcpStream>, SocketAddr)>,
    telemetry: Arc<Telemetry>,
) {
    let permits = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let (stream, peer) = match tcp.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait, then go on.
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let acceptor = acceptor.clone();
        let ready = ready.clone();
        let telemetry = telemetry.clone();
        tokio::spawn(async move {
            let outcome = tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await;
            drop(permit);
            match outcome {
                Ok(Ok(tls)) => {
                    let _ = ready.send((tls, peer)).await;
                }
                Ok(Err(e)) => {
                    telemetry.tls_handshake_failed();
                    tracing::debug!(%peer, "TLS handshake failed: {e}");
                }
                Err(_) => {
                    telemetry.tls_handshake_failed();
                    tracing::debug!(%peer, "TLS handshake timed out");
                }
            }
        });
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.ready.recv().await {
            Some(connection) => connection,
            // The accept loop only ends when the listener is dropped.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.local)
    }
}

//! Serving the API over TLS (`serve_tls`): certificates made in the test by
//! rcgen (a CA and a leaf for 127.0.0.1), served on a free loopback port;
//! requests over TLS; a rotation of the files picked up without a restart
//! (and a broken one refused, the old pair kept); a client that never
//! finishes its handshake holds up no one. The last test runs the real
//! `verdict serve` with TLS and a token file, and rotates both.

mod support;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::daemon::metric_sum;
use verdict::serve_tls::{server_config, CertStore, TlsListener};
use verdict::telemetry::Telemetry;

/// Longest wait for a reload or a start.
const WAIT: Duration = Duration::from_secs(30);

/// A CA and a leaf certificate for 127.0.0.1 and localhost it signed.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(name: &str) -> Pki {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, format!("test CA {name}"));
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string(), "localhost".to_string()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

fn write_pair(dir: &Path, pki: &Pki) -> (PathBuf, PathBuf) {
    let cert = dir.join("tls.crt");
    let key = dir.join("tls.key");
    // Written beside and renamed into place, as a Secret volume swaps its
    // files: a reader never sees half a file.
    for (path, text) in [(&cert, &pki.cert_pem), (&key, &pki.key_pem)] {
        let tmp = path.with_extension("tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, path).unwrap();
    }
    (cert, key)
}

/// A client that trusts only `ca_pem`, and opens a new connection per
/// request (no pooling), so each request is a handshake (resumed when the
/// client has a session from before).
fn client_trusting(ca_pem: &str) -> reqwest::Client {
    verdict::tls::install_crypto_provider();
    reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

async fn healthz(client: &reqwest::Client, url: &str) -> Result<String, String> {
    let r = client
        .get(format!("{url}/healthz"))
        .send()
        .await
        .map_err(|e| format!("{e:?}"))?;
    Ok(format!(
        "{} {}",
        r.status().as_u16(),
        r.text().await.unwrap()
    ))
}

/// The real router behind a [`TlsListener`], with a watcher polling the
/// files every 100 ms.
async fn serve(store: Arc<CertStore>, telemetry: Arc<Telemetry>) -> String {
    let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = tcp.local_addr().unwrap().port();
    let listener = TlsListener::new(
        tcp,
        server_config(store.clone()).unwrap(),
        telemetry.clone(),
    )
    .unwrap();
    let config = verdict::config::load_str(
        Path::new("verdict-test.yaml"),
        &support::scenario::config("http://127.0.0.1:9"),
        std::iter::empty(),
    )
    .unwrap();
    let source = verdict::cli::serve::prometheus_source(&config).unwrap();
    let engine = Arc::new(verdict::engine::Engine::new(
        config.analyses.clone(),
        source.clone(),
        telemetry.clone(),
    ));
    let app = verdict::api::router(verdict::api::AppState::new(engine, source));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    tokio::spawn(verdict::serve_tls::watch(
        store,
        telemetry,
        Duration::from_millis(100),
    ));
    format!("https://127.0.0.1:{port}")
}

async fn wait_until<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    while !check().await {
        assert!(started.elapsed() < WAIT, "{what}: not within {WAIT:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn serves_over_tls_and_picks_up_a_rotated_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let first = pki("first");
    let (cert, key) = write_pair(dir.path(), &first);
    let store = Arc::new(CertStore::load(&cert, &key).unwrap());
    let telemetry = Arc::new(Telemetry::new());
    let url = serve(store.clone(), telemetry.clone()).await;

    let trusts_first = client_trusting(&first.ca_pem);
    assert_eq!(healthz(&trusts_first, &url).await.unwrap(), "200 ok");
    // Plain HTTP to the TLS port is no answer.
    let plain = reqwest::Client::new();
    let http_url = url.replace("https://", "http://");
    assert!(plain
        .get(format!("{http_url}/healthz"))
        .send()
        .await
        .is_err());

    // A client that connects and never says hello holds up no one.
    let _silent = tokio::net::TcpStream::connect(url.trim_start_matches("https://"))
        .await
        .unwrap();
    assert_eq!(healthz(&trusts_first, &url).await.unwrap(), "200 ok");

    // Rotation: the same listener serves the new certificate.
    let second = pki("second");
    write_pair(dir.path(), &second);
    let trusts_second = client_trusting(&second.ca_pem);
    wait_until("the rotated certificate served", || async {
        healthz(&client_trusting(&second.ca_pem), &url)
            .await
            .is_ok()
    })
    .await;
    // A new client: one that resumes an earlier session is not shown a
    // certificate at all.
    assert!(
        healthz(&client_trusting(&first.ca_pem), &url)
            .await
            .is_err(),
        "the old certificate is still served"
    );
    assert!(
        metric_sum(
            &telemetry.render(),
            "verdict_tls_reloads_total",
            &["result=\"success\""]
        ) >= 1.0
    );

    // A broken rotation (not PEM) is refused and the second pair stays.
    std::fs::write(&cert, "not a certificate\n").unwrap();
    wait_until("the broken certificate refused", || async {
        metric_sum(
            &telemetry.render(),
            "verdict_tls_reloads_total",
            &["result=\"failure\""],
        ) >= 1.0
    })
    .await;
    assert_eq!(healthz(&trusts_second, &url).await.unwrap(), "200 ok");
    assert!(
        metric_sum(
            &telemetry.render(),
            "verdict_tls_handshake_failures_total",
            &[]
        ) >= 1.0
    );
}

#[test]
fn a_key_that_does_not_match_its_certificate_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let a = pki("a");
    let b = pki("b");
    let cert = dir.path().join("a.crt");
    let key = dir.path().join("b.key");
    std::fs::write(&cert, &a.cert_pem).unwrap();
    std::fs::write(&key, &b.key_pem).unwrap();
    let e = CertStore::load(&cert, &key).unwrap_err();
    assert!(e.contains("not a usable certificate and key"), "{e}");

    // The config refuses it at load, naming the field.
    let text = format!(
        "tls:\n  cert_file: {}\n  key_file: {}\n{}",
        cert.display(),
        key.display(),
        support::scenario::config("http://127.0.0.1:9")
    );
    let e = verdict::config::load_str(Path::new("v.yaml"), &text, std::iter::empty())
        .unwrap_err()
        .to_string();
    assert!(e.contains("v.yaml:1: tls: "), "{e}");
}

/// A running `verdict serve`, killed on drop.
struct Served(Child);

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn verdict_serve_with_tls_and_tokens_rotates_both_without_restart() {
    let dir = tempfile::tempdir().unwrap();
    let first = pki("first");
    write_pair(dir.path(), &first);
    let tokens = dir.path().join("tokens");
    std::fs::write(&tokens, "old-token-0123456789abcdef\n").unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap()
        .port();
    let config_file = dir.path().join("verdict.yaml");
    std::fs::write(
        &config_file,
        format!(
            "listen: 127.0.0.1:{port}\nauth:\n  token_file: tokens\n\
             tls:\n  cert_file: tls.crt\n  key_file: tls.key\n{}",
            support::scenario::config("http://127.0.0.1:9")
        ),
    )
    .unwrap();
    let log = dir.path().join("log");
    let _served = Served(
        Command::new(env!("CARGO_BIN_EXE_verdict"))
            .args(["serve", "--config"])
            .arg(&config_file)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(dir.path().join("err")).unwrap())
            .spawn()
            .unwrap(),
    );
    let url = format!("https://127.0.0.1:{port}");
    let c = client_trusting(&first.ca_pem);
    wait_until("verdict serve answering over TLS", || async {
        healthz(&c, &url).await.is_ok()
    })
    .await;

    let confirm = |client: &reqwest::Client, token: &str| {
        client
            .post(format!("{url}/v1/flagger/checkout/confirm-rollout"))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/json")
            .body(r#"{"name":"podinfo","namespace":"test","checksum":"abc"}"#)
            .send()
    };
    let status = |r: reqwest::Result<reqwest::Response>| r.map(|r| r.status().as_u16()).ok();
    assert_eq!(
        status(confirm(&c, "old-token-0123456789abcdef").await),
        Some(200)
    );
    assert_eq!(
        status(confirm(&c, "new-token-0123456789abcdef").await),
        Some(401)
    );

    // Rotate the token (old and new valid together, then new alone).
    std::fs::write(&tokens, "new-token-0123456789abcdef\n").unwrap();
    wait_until("the new token accepted", || async {
        status(confirm(&c, "new-token-0123456789abcdef").await) == Some(200)
    })
    .await;
    assert_eq!(
        status(confirm(&c, "old-token-0123456789abcdef").await),
        Some(401)
    );

    // Rotate the certificate.
    let second = pki("second");
    write_pair(dir.path(), &second);
    let c2 = client_trusting(&second.ca_pem);
    wait_until("the new certificate served", || async {
        healthz(&c2, &url).await.is_ok()
    })
    .await;
    assert_eq!(
        status(confirm(&c2, "new-token-0123456789abcdef").await),
        Some(200)
    );

    let err = std::fs::read_to_string(dir.path().join("err")).unwrap();
    for secret in ["old-token-0123456789abcdef", "new-token-0123456789abcdef"] {
        assert!(!err.contains(secret), "a token was logged:\n{err}");
    }
}

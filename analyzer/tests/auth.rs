//! API authentication against the real router (`docs/security.md`): every
//! route but the probes and `/metrics` needs a token, by `Authorization:
//! Bearer` or, for Flagger, in the webhook's metadata; refusals are 401 with
//! a one-line reason that never quotes the token, and are counted. The token
//! never becomes a template variable.

mod support;

use std::path::Path;
use std::time::Duration;
use support::daemon::{metric_sum, Daemon};
use support::scenario::{config, Scenario};

const TOKEN_A: &str = "token-a-5f1c9e3a7b2d4f60";
const TOKEN_B: &str = "token-b-0e8d6c4b2a19f7e5";

const PAYLOAD: &str =
    r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}"#;

fn with_metadata_token(token: &str) -> String {
    format!(
        r#"{{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b","metadata":{{"token":"{token}","window":"1m"}}}}"#
    )
}

/// The scenario config with `auth.token_file` set to `file`.
fn auth_config(prometheus: &str, file: &Path) -> String {
    format!(
        "auth:\n  token_file: {}\n{}",
        file.display(),
        config(prometheus)
    )
}

fn closed_port_url() -> String {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    format!("http://127.0.0.1:{port}")
}

fn token_file(dir: &tempfile::TempDir, tokens: &[&str]) -> std::path::PathBuf {
    let path = dir.path().join("tokens");
    std::fs::write(&path, format!("# API tokens\n{}\n", tokens.join("\n"))).expect("write tokens");
    path
}

fn client() -> reqwest::Client {
    verdict::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

struct Reply {
    status: u16,
    www_authenticate: Option<String>,
    body: String,
}

async fn send(req: reqwest::RequestBuilder) -> Reply {
    let r = req.send().await.expect("request");
    Reply {
        status: r.status().as_u16(),
        www_authenticate: r
            .headers()
            .get("www-authenticate")
            .map(|v| v.to_str().unwrap().to_string()),
        body: r.text().await.expect("body"),
    }
}

#[tokio::test]
async fn every_route_but_probes_and_metrics_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir, &[TOKEN_A]);
    let d = Daemon::start(&auth_config(&closed_port_url(), &file), 600.0).await;
    let c = client();
    let url = |p: &str| format!("{}{p}", d.url);

    // Routes of this build, and routes other parts of the API add: the layer
    // closes every path it is not told is open, matched or not.
    let closed = [
        (
            "POST",
            "/v1/flagger/checkout/rollout",
            "/v1/flagger/{analysis}/{hook}",
        ),
        (
            "POST",
            "/v1/flagger/checkout/confirm-rollout",
            "/v1/flagger/{analysis}/{hook}",
        ),
        ("GET", "/v1/argo/checkout?run=r1", "/v1/argo/{analysis}"),
        ("POST", "/v1/argo/checkout", "/v1/argo/{analysis}"),
        ("GET", "/v1/runs", "unmatched"),
        ("POST", "/canary/checkout", "unmatched"),
        ("GET", "/no/such/path", "unmatched"),
    ];
    for (method, path, _) in closed {
        let req = match method {
            "GET" => c.get(url(path)),
            _ => c
                .post(url(path))
                .header("content-type", "application/json")
                .body(PAYLOAD),
        };
        let r = send(req).await;
        assert_eq!(r.status, 401, "{method} {path}: {}", r.body);
        assert_eq!(r.www_authenticate.as_deref(), Some("Bearer"), "{path}");
        assert!(
            r.body.starts_with("unauthorized: no token"),
            "{path}: {}",
            r.body
        );
        assert!(!r.body.contains('\n'));
    }
    // Probes and the scrape stay open (readyz is 503 here: no backend).
    assert_eq!(send(c.get(url("/healthz"))).await.status, 200);
    assert_eq!(send(c.get(url("/metrics"))).await.status, 200);
    assert_eq!(send(c.get(url("/readyz"))).await.status, 503);

    let metrics = d.metrics().await;
    for (_, _, route) in closed {
        assert!(
            metric_sum(
                &metrics,
                "verdict_http_unauthorized_total",
                &[&format!("route=\"{route}\""), "reason=\"missing\""]
            ) >= 1.0,
            "{route} not counted:\n{metrics}"
        );
    }
    assert_eq!(
        metric_sum(&metrics, "verdict_http_unauthorized_total", &[]),
        closed.len() as f64
    );
    assert_eq!(metric_sum(&metrics, "verdict_looks_total", &[]), 0.0);
}

#[tokio::test]
async fn wrong_or_malformed_tokens_are_refused_without_being_echoed() {
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir, &[TOKEN_A]);
    let d = Daemon::start(&auth_config(&closed_port_url(), &file), 600.0).await;
    let c = client();
    let path = format!("{}/v1/flagger/checkout/confirm-rollout", d.url);
    let wrong = "token-x-5f1c9e3a7b2d4f60";
    let cases = [
        (
            Some(format!("Bearer {wrong}")),
            PAYLOAD.to_string(),
            "invalid",
        ),
        // A prefix of the real token, and the real token with more after it.
        (
            Some(format!("Bearer {}", &TOKEN_A[..20])),
            PAYLOAD.to_string(),
            "invalid",
        ),
        (
            Some(format!("Bearer {TOKEN_A}0")),
            PAYLOAD.to_string(),
            "invalid",
        ),
        (
            Some(format!("Basic {TOKEN_A}")),
            PAYLOAD.to_string(),
            "malformed",
        ),
        (Some("Bearer".to_string()), PAYLOAD.to_string(), "malformed"),
        (None, with_metadata_token(wrong), "invalid"),
        // Not a string: no token.
        (
            None,
            PAYLOAD.replace('}', r#","metadata":{"token":12345678901234567890}}"#),
            "missing",
        ),
        // A header wins over metadata: a wrong header is refused even with
        // a right metadata token.
        (
            Some(format!("Bearer {wrong}")),
            with_metadata_token(TOKEN_A),
            "invalid",
        ),
    ];
    for (header, body, reason) in &cases {
        let mut req = c
            .post(&path)
            .header("content-type", "application/json")
            .body(body.clone());
        if let Some(h) = header {
            req = req.header("authorization", h);
        }
        let r = send(req).await;
        assert_eq!(r.status, 401, "{header:?} {body}: {}", r.body);
        assert!(
            !r.body.contains("token-"),
            "the answer quotes a token: {}",
            r.body
        );
        let counted = d
            .metric_sum(
                "verdict_http_unauthorized_total",
                &[&format!("reason=\"{reason}\"")],
            )
            .await;
        assert!(counted >= 1.0, "{reason} not counted");
    }
    assert_eq!(
        d.metric_sum("verdict_http_unauthorized_total", &[]).await,
        cases.len() as f64
    );
}

#[tokio::test]
async fn a_token_from_the_file_passes_by_header_or_flagger_metadata() {
    let prom = Scenario::healthy().start();
    let dir = tempfile::tempdir().unwrap();
    // Two tokens at once: a rotation in progress.
    let file = token_file(&dir, &[TOKEN_A, TOKEN_B]);
    let d = Daemon::start(&auth_config(&prom.url, &file), 600.0).await;
    let c = client();
    let rollout = format!("{}/v1/flagger/checkout/rollout", d.url);

    let by_header = send(
        c.post(&rollout)
            .header("authorization", format!("Bearer {TOKEN_A}"))
            .header("content-type", "application/json")
            .body(PAYLOAD),
    )
    .await;
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert!(
        by_header.body.starts_with("promote: ") || by_header.body.starts_with("continue: "),
        "{}",
        by_header.body
    );

    let by_metadata = send(
        c.post(&rollout)
            .header("content-type", "application/json")
            .body(with_metadata_token(TOKEN_B)),
    )
    .await;
    assert_eq!(by_metadata.status, 200, "{}", by_metadata.body);

    // Argo's web provider: the header, set from a Secret.
    let argo = send(
        c.get(format!(
            "{}/v1/argo/checkout?namespace=test&rollout=podinfo&canary-hash=85d557f47b",
            d.url
        ))
        .header("authorization", format!("bearer {TOKEN_B}")),
    )
    .await;
    assert_eq!(argo.status, 200, "{}", argo.body);
    assert!(!argo.body.contains(TOKEN_B));
    assert_eq!(
        d.metric_sum("verdict_http_unauthorized_total", &[]).await,
        0.0
    );
}

#[tokio::test]
async fn the_metadata_token_never_becomes_a_template_variable() {
    let prom = Scenario::healthy().start();
    let dir = tempfile::tempdir().unwrap();
    let file = token_file(&dir, &[TOKEN_A]);
    // An analysis that asks for a variable named `token`.
    let text = auth_config(&prom.url, &file).replace("{{window}}", "{{token}}");
    let d = Daemon::start(&text, 600.0).await;
    let c = client();
    let r = send(
        c.post(format!("{}/v1/flagger/windowed/rollout", d.url))
            .header("content-type", "application/json")
            .body(with_metadata_token(TOKEN_A)),
    )
    .await;
    // Authenticated, then refused: `token` is not among the variables.
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("token"), "{}", r.body);
    assert!(
        !r.body.contains(TOKEN_A),
        "the answer quotes the token: {}",
        r.body
    );
    // Argo: a `token` argument is dropped the same way.
    let r = send(
        c.get(format!("{}/v1/argo/windowed?run=r1&token={TOKEN_A}", d.url))
            .header("authorization", format!("Bearer {TOKEN_A}")),
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(!r.body.contains(TOKEN_A), "{}", r.body);
    assert_eq!(d.metric_sum("verdict_looks_total", &[]).await, 0.0);
}

#[tokio::test]
async fn without_a_token_file_the_api_is_open() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let a = d
        .post_json(
            "/v1/flagger/checkout/rollout",
            with_metadata_token("anything-at-all-0000"),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
}

#[test]
fn bad_token_files_refuse_the_config_with_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("missing", None, "cannot read token file"),
        ("empty", Some("# nothing here\n"), "holds no token"),
        ("short", Some("abc\n"), "shorter than 16"),
    ];
    for (name, content, expect) in cases {
        let path = dir.path().join(name);
        if let Some(text) = content {
            std::fs::write(&path, text).unwrap();
        }
        let text = auth_config("http://127.0.0.1:9", &path);
        let e = verdict::config::load_str(Path::new("v.yaml"), &text, std::iter::empty())
            .expect_err(name)
            .to_string();
        assert!(
            e.contains("auth.token_file") && e.contains(expect),
            "{name}: {e}"
        );
        assert!(e.contains("v.yaml:2:"), "{name}: no line: {e}");
    }
}

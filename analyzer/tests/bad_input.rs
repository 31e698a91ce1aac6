//! Bad input against the real router, with a real Prometheus holding a
//! healthy rollout behind it (so a request that slipped through would be
//! judged, and could promote): every malformed, oversized, deeply nested,
//! mis-typed, non-UTF-8 or injecting request is a 4xx with a one-line
//! message, and nothing is recorded: no look, no run, no promote.
//!
//! Unknown JSON fields are accepted on purpose (docs/controllers.md F-05: Flagger
//! and Argo may add fields); duplicate fields, wrong types and non-string
//! metadata values are refused.

mod support;

use std::time::Duration;
use support::daemon::Daemon;
use support::scenario::{config, Scenario};

const FLAGGER: &str = "/v1/flagger/checkout/rollout";
const ARGO: &str = "/v1/argo/checkout";
const OK: &str =
    r#"{"name":"podinfo","namespace":"test","phase":"Progressing","checksum":"85d557f47b"}"#;

/// One bad request: what is sent and what must come back.
struct Case {
    what: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// A fragment the one-line message must contain.
    says: &'static str,
}

fn flagger(what: &'static str, body: impl Into<Vec<u8>>, status: u16, says: &'static str) -> Case {
    Case {
        what,
        method: "POST",
        path: FLAGGER.into(),
        content_type: Some("application/json"),
        body: body.into(),
        status,
        says,
    }
}

fn argo_get(what: &'static str, query: &str, status: u16, says: &'static str) -> Case {
    Case {
        what,
        method: "GET",
        path: format!("{ARGO}?{query}"),
        content_type: None,
        body: Vec::new(),
        status,
        says,
    }
}

fn argo_post(
    what: &'static str,
    body: impl Into<Vec<u8>>,
    status: u16,
    says: &'static str,
) -> Case {
    Case {
        what,
        method: "POST",
        path: ARGO.into(),
        content_type: Some("application/json"),
        body: body.into(),
        status,
        says,
    }
}

/// `OK` with `field` set to the raw JSON `value`.
fn ok_with(field: &str, value: &str) -> String {
    format!(
        r#"{{"namespace":"test","phase":"Progressing","checksum":"85d557f47b","name":"podinfo","{field}":{value}}}"#
    )
}

/// JSON nested `depth` arrays deep, as the value of an unknown field.
fn nested(depth: usize) -> String {
    ok_with(
        "extra",
        &format!("{}{}", "[".repeat(depth), "]".repeat(depth)),
    )
}

fn cases() -> Vec<Case> {
    let mut invalid_utf8 = br#"{"name":"pod"#.to_vec();
    invalid_utf8.extend_from_slice(&[0xff, 0xfe]);
    invalid_utf8.extend_from_slice(br#"info","namespace":"test"}"#);
    let mut invalid_utf8_meta =
        br#"{"name":"podinfo","namespace":"test","metadata":{"k":""#.to_vec();
    invalid_utf8_meta.extend_from_slice(&[0xc3, 0x28]);
    invalid_utf8_meta.extend_from_slice(br#""}}"#);
    vec![
        // Size and shape.
        flagger(
            "over the body limit",
            ok_with(
                "metadata",
                &format!(r#"{{"pad":"{}"}}"#, "x".repeat(70 * 1024)),
            ),
            413,
            "length limit",
        ),
        flagger(
            "deeply nested (under the size limit)",
            nested(30_000),
            400,
            "nested deeper than 32",
        ),
        flagger(
            "nested objects",
            ok_with(
                "extra",
                &format!("{}1{}", r#"{"a":"#.repeat(5000), "}".repeat(5000)),
            ),
            400,
            "nested deeper than 32",
        ),
        flagger(
            "33 levels, the first too deep",
            nested(32),
            400,
            "nested deeper than 32",
        ),
        flagger(
            "escaped brackets in strings do not count",
            ok_with(
                "metadata",
                &format!(r#"{{"a b":"{}\\\"{}"}}"#, "[".repeat(40), "{".repeat(40)),
            ),
            400,
            "metadata key",
        ),
        flagger("empty body", "", 400, "malformed Flagger webhook"),
        flagger(
            "not JSON",
            "name=podinfo&namespace=test",
            400,
            "malformed Flagger webhook",
        ),
        flagger(
            "truncated",
            r#"{"name":"podinfo","namespace":"te"#,
            400,
            "EOF",
        ),
        flagger(
            "trailing garbage",
            format!("{OK} {{}}"),
            400,
            "trailing characters",
        ),
        flagger("an array", "[1,2,3]", 400, "malformed Flagger webhook"),
        flagger("null", "null", 400, "malformed Flagger webhook"),
        // Types.
        flagger(
            "name not a string",
            r#"{"name":5,"namespace":"test"}"#,
            400,
            "invalid type",
        ),
        flagger(
            "missing namespace",
            r#"{"name":"podinfo"}"#,
            400,
            "missing field `namespace`",
        ),
        flagger(
            "duplicate field",
            r#"{"name":"podinfo","name":"other","namespace":"test"}"#,
            400,
            "duplicate field",
        ),
        flagger(
            "metadata value not a string",
            ok_with("metadata", r#"{"window":2}"#),
            400,
            "invalid type",
        ),
        flagger(
            "metadata not an object",
            ok_with("metadata", r#""window""#),
            400,
            "invalid type",
        ),
        // A step schedule that is not one (docs/api.md, steps without weights).
        flagger(
            "stepWeights not increasing",
            ok_with("metadata", r#"{"stepWeights":"25,5"}"#),
            400,
            "stepWeights",
        ),
        flagger(
            "stepWeights not numbers",
            ok_with("metadata", r#"{"stepWeights":"5,half"}"#),
            400,
            "stepWeights",
        ),
        flagger(
            "stepWeights above 100",
            ok_with("metadata", r#"{"stepWeights":"50,150"}"#),
            400,
            "stepWeights",
        ),
        // Encoding.
        flagger(
            "invalid UTF-8 in a name",
            invalid_utf8,
            400,
            "malformed Flagger webhook",
        ),
        flagger(
            "invalid UTF-8 in metadata",
            invalid_utf8_meta,
            400,
            "malformed Flagger webhook",
        ),
        flagger(
            "escaped NUL in a name",
            r#"{"name":"pod\u0000info","namespace":"test"}"#,
            400,
            "name",
        ),
        // Kubernetes syntax.
        flagger(
            "upper case name",
            r#"{"name":"PodInfo","namespace":"test"}"#,
            400,
            "name",
        ),
        flagger(
            "underscore namespace",
            r#"{"name":"podinfo","namespace":"te_st"}"#,
            400,
            "namespace",
        ),
        flagger(
            "empty name",
            r#"{"name":"","namespace":"test"}"#,
            400,
            "name",
        ),
        flagger(
            "254-character name",
            format!(r#"{{"name":"{}","namespace":"test"}}"#, "a".repeat(254)),
            400,
            "name",
        ),
        flagger(
            "leading dash",
            r#"{"name":"-podinfo","namespace":"test"}"#,
            400,
            "name",
        ),
        // PromQL injection.
        flagger(
            "injection in name",
            r#"{"name":"x\"} or vector(1) #","namespace":"test"}"#,
            400,
            "name",
        ),
        flagger(
            "injection in checksum",
            r#"{"name":"podinfo","namespace":"test","checksum":"1\"} or vector(1)"}"#,
            400,
            "checksum",
        ),
        flagger(
            "injection in a metadata key",
            ok_with("metadata", r#"{"a\"}or":"1"}"#),
            400,
            "metadata key",
        ),
        flagger(
            "overlong metadata key",
            ok_with("metadata", &format!(r#"{{"{}":"1"}}"#, "k".repeat(65))),
            400,
            "metadata key",
        ),
        flagger(
            "weight out of range",
            ok_with("metadata", r#"{"weight":"150"}"#),
            400,
            "weight",
        ),
        flagger(
            "weight not a number",
            ok_with("metadata", r#"{"weight":"1e400x"}"#),
            400,
            "weight",
        ),
        // Routing.
        Case {
            path: "/v1/flagger/nosuch/rollout".into(),
            ..flagger("unknown analysis", OK, 404, "unknown analysis")
        },
        Case {
            path: "/v1/flagger/%22%7D%20or%20vector(1)/rollout".into(),
            ..flagger(
                "injection in the analysis name",
                OK,
                404,
                "unknown analysis",
            )
        },
        Case {
            path: "/v1/flagger/checkout/promote-now".into(),
            ..flagger("unknown hook type", OK, 404, "unknown Flagger hook type")
        },
        // Content types.
        Case {
            content_type: Some("text/plain"),
            ..flagger("text/plain body", OK, 415, "must be JSON")
        },
        Case {
            content_type: Some("application/x-www-form-urlencoded"),
            ..flagger("form body", OK, 415, "must be JSON")
        },
        Case {
            content_type: Some("application/xml"),
            ..argo_post("Argo XML body", "<a/>", 415, "must be JSON")
        },
        // Argo.
        argo_get("no run identity", "namespace=test", 400, "identify the run"),
        argo_get(
            "bad percent-encoding",
            "run=r1&x=%zz",
            400,
            "percent-encoding",
        ),
        argo_get(
            "percent-encoded invalid UTF-8",
            "run=r1&x=%ff%fe",
            400,
            "UTF-8",
        ),
        argo_get(
            "namespace not a Kubernetes name",
            "namespace=Te_st&rollout=r&canary-hash=h",
            400,
            "namespace",
        ),
        argo_get(
            "injection in canary-hash",
            "namespace=test&rollout=r&canary-hash=h%22%7D%20or%20vector(1)",
            400,
            "canary-hash",
        ),
        argo_get("unknown phase", "run=r1&phase=whenever", 400, "phase"),
        argo_get("weight not a number", "run=r1&weight=lots", 400, "weight"),
        argo_get("bad argument name", "run=r1&a%20b=1", 400, "metadata key"),
        Case {
            path: "/v1/argo/nosuch?run=r1".into(),
            ..argo_get("unknown analysis", "", 404, "unknown analysis")
        },
        argo_post(
            "nested argument",
            r#"{"run":"r1","x":{"y":1}}"#,
            400,
            "must be a string or number",
        ),
        argo_post("array body", r#"["run","r1"]"#, 400, "malformed JSON body"),
        argo_post(
            "deeply nested body",
            format!(
                r#"{{"run":"r1","x":{}{}}}"#,
                "[".repeat(30_000),
                "]".repeat(30_000)
            ),
            400,
            "nested deeper than 32",
        ),
        argo_post(
            "over the body limit",
            format!(r#"{{"run":"r1","x":"{}"}}"#, "x".repeat(70 * 1024)),
            413,
            "length limit",
        ),
        Case {
            method: "DELETE",
            ..flagger(
                "wrong method",
                "",
                405,
                "method DELETE not allowed on /v1/flagger/checkout/rollout; allowed: POST",
            )
        },
        Case {
            path: "/v1/nosuch".into(),
            ..argo_get("no such route", "", 404, "no route for GET /v1/nosuch")
        },
    ]
}

async fn send(client: &reqwest::Client, base: &str, case: &Case) -> (u16, String) {
    let url = format!("{base}{}", case.path);
    let method = reqwest::Method::from_bytes(case.method.as_bytes()).expect("method");
    let mut req = client.request(method, url);
    if let Some(ct) = case.content_type {
        req = req.header("content-type", ct);
    }
    if !case.body.is_empty() {
        req = req.body(case.body.clone());
    }
    let r = req
        .send()
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", case.what));
    (r.status().as_u16(), r.text().await.expect("body"))
}

fn client() -> reqwest::Client {
    verdict::tls::install_crypto_provider();
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("HTTP client")
}

async fn check_all(d: &Daemon) {
    let c = client();
    let mut problems = Vec::new();
    for case in cases() {
        let (status, body) = send(&c, &d.url, &case).await;
        if status != case.status || !body.contains(case.says) || body.contains('\n') {
            problems.push(format!(
                "{}: expected {} saying {:?}, got {status} {body:?}",
                case.what, case.status, case.says
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(
        d.metric_sum("verdict_looks_total", &[]).await,
        0.0,
        "bad input took a look"
    );
    assert_eq!(d.engine.open_runs(), 0, "bad input started a run");
}

#[tokio::test]
async fn bad_input_is_a_4xx_with_a_message_and_changes_nothing() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    check_all(&d).await;
    // Still serving, and the same data is judged healthy: what was refused
    // was refused for its shape, not for want of a backend.
    let a = d.post_json(FLAGGER, OK).await;
    assert_eq!(a.status, 200, "{a:?}");
    assert!(
        a.body.starts_with("promote: ") || a.body.starts_with("continue: "),
        "{a:?}"
    );
    // A wrong method's 405 keeps the Allow header its text repeats.
    let r = client()
        .delete(format!("{}{FLAGGER}", d.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 405);
    let allow = r
        .headers()
        .get("allow")
        .map(|v| v.to_str().unwrap().to_string());
    assert!(
        allow.as_deref().is_some_and(|a| a.contains("POST")),
        "{allow:?}"
    );
}

#[tokio::test]
async fn unknown_fields_are_accepted_as_flagger_and_argo_may_add_them() {
    let prom = Scenario::healthy().start();
    let d = Daemon::start(&config(&prom.url), 600.0).await;
    let a = d
        .post_json(
            FLAGGER,
            ok_with("someFutureField", r#"{"nested":[1,2,{"x":null}]}"#),
        )
        .await;
    assert_eq!(a.status, 200, "{a:?}");
    // With a charset parameter, and with no Content-Type at all (Argo's raw
    // `body` sends none).
    let c = client();
    for ct in [Some("application/json; charset=utf-8"), None] {
        let mut req = c.post(format!("{}{FLAGGER}", d.url)).body(OK);
        if let Some(ct) = ct {
            req = req.header("content-type", ct);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{ct:?}");
    }
}

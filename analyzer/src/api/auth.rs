//! API authentication: bearer tokens from a file, required by one router
//! layer on every route but the probes and `/metrics`.
//!
//! The layer ([`require_token`]) wraps the whole router, so a route added
//! later is closed by default; only the paths in [`OPEN_PATHS`] are open.
//! A caller proves itself with `Authorization: Bearer <token>` (Argo's `web`
//! provider sets it from a Secret, any other client can too). Flagger cannot
//! send headers, so a Flagger webhook may instead carry the token in its
//! `metadata` under the key [`TOKEN_KEY`]; the handlers strip that key
//! ([`strip_token`]) before the payload becomes template variables, so a
//! token never reaches a query, a log line or an answer.
//!
//! Only SHA-256 digests of the configured tokens are kept. A presented
//! token is hashed and compared with every digest in constant time
//! (`subtle`), so neither its content nor its length shows in the timing.
//! Several tokens may be valid at once (one per line of the file) so that a
//! token can be rotated without a moment where callers are refused; the file
//! is re-read whenever the config is reloaded or the file changes.
//!
//! With no token file configured, authentication is off and `verdict serve`
//! logs a warning at start.

use super::{one_line, AppState, MAX_BODY_BYTES};
pub use crate::config::tokens::{Tokens, MIN_TOKEN_LEN};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Paths served without a token: the probes and Prometheus' scrape.
pub const OPEN_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// The Flagger webhook metadata key that carries a token.
pub const TOKEN_KEY: &str = "token";

/// The tokens in force; replaced as a whole on reload.
#[derive(Debug, Default)]
pub struct Authenticator {
    tokens: RwLock<Option<Arc<Tokens>>>,
}

impl Authenticator {
    /// Authentication off: every route is open.
    pub fn disabled() -> Self {
        Authenticator::default()
    }

    /// Requires one of `tokens` (off when `None`).
    pub fn new(tokens: Option<Tokens>) -> Self {
        let auth = Authenticator::default();
        auth.set(tokens);
        auth
    }

    /// Replaces the tokens in force (a reload).
    pub fn set(&self, tokens: Option<Tokens>) {
        *self.tokens.write().unwrap_or_else(|e| e.into_inner()) = tokens.map(Arc::new);
    }

    /// The tokens in force; `None` when authentication is off.
    pub fn tokens(&self) -> Option<Arc<Tokens>> {
        self.tokens
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Removes the token from webhook metadata or arguments, so it never
/// becomes a template variable.
pub fn strip_token(vars: &mut BTreeMap<String, String>) {
    vars.remove(TOKEN_KEY);
}

/// Why a request was refused (the `reason` label of
/// `verdict_http_unauthorized_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No token at all.
    Missing,
    /// An `Authorization` header that is not `Bearer <token>`.
    Malformed,
    /// A token that is not one of the configured ones.
    Invalid,
}

impl Refusal {
    pub fn as_str(self) -> &'static str {
        match self {
            Refusal::Missing => "missing",
            Refusal::Malformed => "malformed",
            Refusal::Invalid => "invalid",
        }
    }

    /// The one-line answer; it never quotes what was presented.
    fn message(self) -> &'static str {
        match self {
            Refusal::Missing => {
                "unauthorized: no token (send `Authorization: Bearer <token>`, or \
                 metadata.token in a Flagger webhook)"
            }
            Refusal::Malformed => "unauthorized: Authorization header is not `Bearer <token>`",
            Refusal::Invalid => "unauthorized: token not accepted",
        }
    }
}

/// What a Flagger payload carries in `metadata.token`, if anything. Anything
/// else in the payload is the handler's business.
#[derive(Deserialize)]
struct TokenCarrier {
    #[serde(default)]
    metadata: BTreeMap<String, serde_json::Value>,
}

fn metadata_token(body: &[u8]) -> Option<String> {
    let carrier: TokenCarrier = serde_json::from_slice(body).ok()?;
    match carrier.metadata.get(TOKEN_KEY)? {
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    }
}

/// The token of an `Authorization` header value, if it is `Bearer <token>`.
fn bearer(value: &[u8]) -> Option<&[u8]> {
    let (scheme, token) = value.split_at_checked(7)?;
    let token = token.trim_ascii();
    (scheme.eq_ignore_ascii_case(b"bearer ") && !token.is_empty()).then_some(token)
}

/// The router layer: passes open paths and authenticated requests, answers
/// everything else 401 and counts it by route and reason.
pub async fn require_token(State(state): State<AppState>, req: Request, next: Next) -> Response {
    if OPEN_PATHS.contains(&req.uri().path()) {
        return next.run(req).await;
    }
    let Some(tokens) = state.auth.tokens() else {
        return next.run(req).await;
    };
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| "unmatched".into());
    let refuse = |why: Refusal| {
        state.engine.telemetry().unauthorized(&route, why.as_str());
        (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            one_line(why.message()),
        )
            .into_response()
    };
    if let Some(value) = req.headers().get(header::AUTHORIZATION) {
        return match bearer(value.as_bytes()) {
            None => refuse(Refusal::Malformed),
            Some(token) if tokens.accepts(token) => next.run(req).await,
            Some(_) => refuse(Refusal::Invalid),
        };
    }
    if req.method() == Method::POST && req.uri().path().starts_with("/v1/flagger/") {
        // The token is in the body: read it (bounded as the handlers are)
        // and hand the same bytes on.
        let (parts, body) = req.into_parts();
        let bytes = match axum::body::to_bytes(body, MAX_BODY_BYTES).await {
            Ok(b) => b,
            Err(_) => {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("request body larger than {MAX_BODY_BYTES} bytes"),
                )
                    .into_response()
            }
        };
        let token = metadata_token(&bytes);
        let req = Request::from_parts(parts, Body::from(bytes));
        return match token {
            None => refuse(Refusal::Missing),
            Some(t) if tokens.accepts(t.as_bytes()) => next.run(req).await,
            Some(_) => refuse(Refusal::Invalid),
        };
    }
    refuse(Refusal::Missing)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "first-token-0123456789";
    const B: &str = "second-token-abcdefghij";

    #[test]
    fn token_files_list_several_tokens() {
        let tokens = Tokens::parse(&format!("# rotated 2026-11\n{A}\n\n  {B}  \n")).unwrap();
        assert_eq!(tokens.len(), 2);
        assert!(tokens.accepts(A.as_bytes()));
        assert!(tokens.accepts(B.as_bytes()));
        assert!(!tokens.accepts(b"first-token-012345678"));
        assert!(!tokens.accepts(b""));
        assert!(!tokens.accepts(format!("{A}x").as_bytes()));
    }

    #[test]
    fn weak_or_empty_token_files_are_refused_without_quoting_them() {
        let e = Tokens::parse("short-secret\n").unwrap_err();
        assert!(e.contains("line 1") && !e.contains("short-secret"), "{e}");
        assert!(Tokens::parse("# only a comment\n\n").is_err());
        let e = Tokens::parse("a-token-with a-space-in-it\n").unwrap_err();
        assert!(!e.contains("a-token"), "{e}");
    }

    #[test]
    fn debug_output_shows_no_token() {
        let tokens = Tokens::parse(A).unwrap();
        assert_eq!(format!("{tokens:?}"), "Tokens(1 accepted)");
    }

    #[test]
    fn bearer_headers_are_parsed_strictly() {
        assert_eq!(bearer(b"Bearer abc"), Some(&b"abc"[..]));
        assert_eq!(bearer(b"bearer  abc "), Some(&b"abc"[..]));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bear"), None);
    }

    #[test]
    fn the_metadata_token_is_found_and_only_a_string_counts() {
        let body = br#"{"name":"a","namespace":"b","metadata":{"token":"xyz","k":"v"}}"#;
        assert_eq!(metadata_token(body).as_deref(), Some("xyz"));
        assert_eq!(metadata_token(br#"{"metadata":{"token":5}}"#), None);
        assert_eq!(metadata_token(br#"{"metadata":"token"}"#), None);
        assert_eq!(metadata_token(b"not json"), None);
    }

    #[test]
    fn stripping_removes_only_the_token() {
        let mut vars = BTreeMap::from([
            ("token".to_string(), A.to_string()),
            ("app".to_string(), "x".to_string()),
        ]);
        strip_token(&mut vars);
        assert_eq!(vars.keys().collect::<Vec<_>>(), ["app"]);
    }
}

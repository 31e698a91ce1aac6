//! One-line bodies for the answers axum gives with an empty body: a method
//! the route does not serve (405) and a path no route matches (404).
//!
//! axum's router answers both before any handler runs, with the right status
//! (and, for 405, the `Allow` header) but no body, which leaves an operator
//! reading a controller's event log with nothing to go on. This layer fills
//! in a plain-text line naming the method and path and, for 405, the allowed
//! methods as the `Allow` header lists them; answers that already carry a
//! body pass through unchanged. axum sets `Allow` outside the layers of the
//! router that routed the request, so this layer wraps the whole API router
//! (`api::router`), not its routes.

use axum::body::{Body, HttpBody};
use axum::extract::Request;
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

/// Gives an empty 404 or 405 a one-line text body; keeps status and headers.
pub async fn explain_empty(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let response = next.run(req).await;
    let status = response.status();
    if !matches!(
        status,
        StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
    ) || response.body().size_hint().exact() != Some(0)
    {
        return response;
    }
    let line = if status == StatusCode::METHOD_NOT_ALLOWED {
        let allowed = response
            .headers()
            .get(header::ALLOW)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty())
            .map(|v| v.replace(',', ", "))
            .unwrap_or_else(|| "none".into());
        format!("method {method} not allowed on {path}; allowed: {allowed}")
    } else {
        format!("no route for {method} {path}")
    };
    let (mut parts, _) = response.into_parts();
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(line))
}

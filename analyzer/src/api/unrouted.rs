//! One-line bodies for the answers axum gives with an empty body: a method
//! the route does not serve (405) and a path no route matches (404).
//!
//! axum's router answers both before any handler runs, with the right status
//! (and, for 405, the `Allow` header) but no body, which leaves an operator
//! reading a controller's event log with nothing to go on. This layer fills
//! in a plain-text line naming the method and path (for 405 the allowed methods
//! stay in the `Allow` header); answers that already carry a body pass through unchanged.

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
    // The `Allow` header is set by axum's method router outside this layer
    // (it is not on the response yet here), so the line points to it.
    let line = if status == StatusCode::METHOD_NOT_ALLOWED {
        format!("method {method} not allowed on {path}; the Allow header lists the allowed methods")
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

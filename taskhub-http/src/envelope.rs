//! The response envelope of API.md: `{"data", "error", "meta": {"request_id"}}`, and the
//! request id that ties a response to its log lines.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use tracing::Instrument;

/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the request being served (an extension set by [`request_id`]).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

tokio::task_local! {
    static CURRENT: String;
}

/// Takes the client's `X-Request-Id` (if sane) or makes one, serves the request inside it, and
/// echoes it in the response header.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), path = %req.uri().path());
    let mut res = CURRENT.scope(id.clone(), next.run(req)).instrument(span).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    res
}

fn meta() -> Value {
    let id = CURRENT.try_with(Clone::clone).unwrap_or_default();
    json!({"request_id": id})
}

/// A 200 response with `data`.
pub fn ok(data: Value) -> Response {
    (StatusCode::OK, Json(json!({"data": data, "error": null, "meta": meta()}))).into_response()
}

/// An error response with `code` and a human `message`.
pub fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"data": null, "error": {"code": code, "message": message}, "meta": meta()}))).into_response()
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "not_found", "no such route")
}

//! The response envelope of API.md: `{"data", "error", "meta": {"request_id", …}}`, and the
//! request id that ties a response to its log lines.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::sync::{Arc, Mutex};
use std::time::Instant;
use taskhub_core::page::Page;
use tracing::Instrument;

/// The request id header.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The request id of the request being served (an extension set by [`request_id`]).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Who made the request, filled in by authentication for the request log.
#[derive(Debug, Clone, Default)]
pub struct ActorSlot(pub Arc<Mutex<Option<i64>>>);

tokio::task_local! {
    static CURRENT: String;
}

/// Takes the client's `X-Request-Id` (if sane) or makes one, serves the request inside it,
/// echoes it in the response header, and logs one structured line per request.
pub async fn request_id(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(&X_REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let slot = ActorSlot::default();
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(slot.clone());
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let span = tracing::info_span!("request", request_id = %id, method = %method, path = %path);
    let started = Instant::now();
    let mut res = CURRENT.scope(id.clone(), next.run(req)).instrument(span.clone()).await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert(X_REQUEST_ID.clone(), v);
    }
    let actor = slot.0.lock().ok().and_then(|g| *g);
    let route = res.extensions().get::<crate::metrics::RoutePattern>().map_or("unmatched", |r| r.0.as_str()).to_owned();
    span.in_scope(|| {
        tracing::info!(
            action = %method,
            route = %route,
            status = res.status().as_u16(),
            duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
            user.id = actor,
            "request"
        );
    });
    res
}

/// The current request id (empty outside a request).
pub fn current_request_id() -> String {
    CURRENT.try_with(Clone::clone).unwrap_or_default()
}

/// A response in the envelope with `status`, `data`, `error` and extra `meta` keys.
pub fn with_status(
    status: StatusCode,
    data: Value,
    error: Option<Value>,
    meta: Option<Map<String, Value>>,
) -> Response {
    let mut m = meta.unwrap_or_default();
    m.insert("request_id".into(), Value::String(current_request_id()));
    (status, Json(json!({"data": data, "error": error, "meta": m}))).into_response()
}

fn to_value<T: Serialize>(data: &T) -> Value {
    serde_json::to_value(data).unwrap_or(Value::Null)
}

/// 200 with `data`.
pub fn ok<T: Serialize>(data: &T) -> Response {
    with_status(StatusCode::OK, to_value(data), None, None)
}

/// 200 with `data` and a strong `ETag: "<version>"`.
pub fn ok_tagged<T: Serialize>(data: &T, version: i64) -> Response {
    tag(ok(data), version)
}

/// 201 with `data`, `Location` and, when versioned, an `ETag`.
pub fn created<T: Serialize>(data: &T, location: &str, version: Option<i64>) -> Response {
    let mut res = with_status(StatusCode::CREATED, to_value(data), None, None);
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    match version {
        Some(v) => tag(res, v),
        None => res,
    }
}

/// 204, no body.
pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// A page: `data` is the array; `meta.page = {next_cursor, page_size}` and `meta.count`.
pub fn page<T: Serialize>(p: &Page<T>) -> Response {
    let mut meta = Map::new();
    meta.insert("page".into(), json!({"next_cursor": p.next_cursor, "page_size": p.page_size}));
    if let Some(c) = p.count {
        meta.insert("count".into(), json!(c));
    }
    with_status(StatusCode::OK, to_value(&p.items), None, Some(meta))
}

/// Adds a strong ETag.
pub fn tag(mut res: Response, version: i64) -> Response {
    if let Ok(v) = HeaderValue::from_str(&format!("\"{version}\"")) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// JSON 404 for unknown routes.
pub async fn not_found() -> Response {
    with_status(
        StatusCode::NOT_FOUND,
        Value::Null,
        Some(json!({"code": "not_found", "message": "no such route"})),
        None,
    )
}

/// A fresh result as 201 with its location, or the replay of the first response.
pub fn created_or_replayed<T: Serialize>(
    r: taskhub_core::idempotency::Idempotent<T>,
    location: impl Fn(&T) -> (String, Option<i64>),
) -> Response {
    match r {
        taskhub_core::idempotency::Idempotent::Done(t) => {
            let (loc, version) = location(&t);
            created(&t, &loc, version)
        }
        taskhub_core::idempotency::Idempotent::Replayed { status, body } => {
            let status = axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK);
            let version = body.get("version").and_then(serde_json::Value::as_i64);
            let res = with_status(status, body, None, None);
            match version {
                Some(v) => tag(res, v),
                None => res,
            }
        }
    }
}

//! # taskhub-analytics
//!
//! TaskHub's analytics endpoint shell. It runs as its own process (or mounted in the embedded
//! server) under `/api/v1/analytics/`, and verifies tokens only through the issuer's JWKS.
//!
//! This build serves the liveness route; the figures arrive with the analytics service.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in.

use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::future::Future;
use tokio::net::TcpListener;

/// The analytics routes, to mount in any axum app.
pub fn router() -> Router {
    Router::new().route("/api/v1/analytics/healthz", get(healthz))
}

/// Serves [`router`] on `listener` until `shutdown` resolves.
pub async fn run(listener: TcpListener, shutdown: impl Future<Output = ()> + Send + 'static) -> std::io::Result<()> {
    axum::serve(listener, router()).with_graceful_shutdown(shutdown).await
}

/// Liveness, in the envelope: `meta.request_id` is the client's `X-Request-Id` or a new one, and
/// is echoed in the response header.
async fn healthz(headers: HeaderMap) -> Response {
    let id = headers
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 128 && v.chars().all(|c| c.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned);
    let body = serde_json::json!({"data": {"status": "ok", "service": "analytics"}, "error": null, "meta": {"request_id": id}});
    let mut res = Json(body).into_response();
    if let Ok(v) = HeaderValue::from_str(&id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    #[tokio::test]
    async fn healthz_answers_in_the_envelope_with_the_request_id() -> Result<(), Box<dyn std::error::Error>> {
        let req =
            axum::http::Request::get("/api/v1/analytics/healthz").header("x-request-id", "r-1").body(Body::empty())?;
        let res = router().oneshot(req).await?;
        assert_eq!(res.status(), axum::http::StatusCode::OK);
        assert_eq!(res.headers().get("x-request-id").and_then(|v| v.to_str().ok()), Some("r-1"));
        let body: serde_json::Value = serde_json::from_slice(&res.into_body().collect().await?.to_bytes())?;
        let status = body.pointer("/data/status").and_then(serde_json::Value::as_str);
        let request_id = body.pointer("/meta/request_id").and_then(serde_json::Value::as_str);
        assert_eq!((status, request_id), (Some("ok"), Some("r-1")));
        Ok(())
    }
}

//! # taskhub-analytics
//!
//! TaskHub's analytics endpoint shell. It runs as its own process (or mounted in the embedded
//! server) under `/api/v1/analytics/`, and verifies tokens only through the issuer's JWKS.
//!
//! This build serves the liveness route; the figures arrive with the analytics service.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in.

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

async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"data": {"status": "ok", "service": "analytics"}, "error": null, "meta": {}}))
}

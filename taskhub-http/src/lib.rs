//! # taskhub-http
//!
//! The HTTP shell of TaskHub (axum) and the `taskhub` binary. It mounts the services of
//! `taskhub-core`; every rule lives there, handlers only translate HTTP to service calls.
//!
//! [`run`] serves a router on a listener until a shutdown signal, draining in-flight requests.
//! Tests and embedding apps call the same `run` as `main`.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in.

pub mod cli;
pub mod envelope;
pub mod seed;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Router, middleware};
use std::future::Future;
use taskhub_core::Services;
use tokio::net::TcpListener;

/// What every handler receives.
#[derive(Clone)]
pub struct AppState {
    /// The core services.
    pub services: Services,
}

/// The router of the HTTP role.
pub fn router(services: Services) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(envelope::not_found)
        .layer(middleware::from_fn(envelope::request_id))
        .with_state(AppState { services })
}

/// Serves `router(services)` on `listener` until `shutdown` resolves, then drains in-flight
/// requests before returning.
pub async fn run(
    listener: TcpListener,
    services: Services,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(services), shutdown).await
}

/// Serves any router the same way [`run`] does (embedding apps add their own routes).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await
}

/// Liveness: the process answers.
async fn healthz() -> impl IntoResponse {
    envelope::ok(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers; 503 otherwise.
async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.services.store().ping().await {
        Ok(()) => envelope::ok(serde_json::json!({"status": "ready", "database": "ok"})).into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database");
            envelope::error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "the database is not reachable")
                .into_response()
        }
    }
}

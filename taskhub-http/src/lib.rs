//! # taskhub-http
//!
//! The HTTP shell of TaskHub (axum) and the `taskhub` binary. It mounts the services of
//! `taskhub-core`; every rule lives there, handlers only translate HTTP to service calls and
//! results to the envelope of API.md.
//!
//! [`run`] serves the API on a listener until a shutdown signal, draining in-flight requests.
//! Tests and embedding apps call the same `run` as `main`.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in.

pub mod auth;
pub mod catalog;
pub mod cli;
pub mod envelope;
pub mod error;
pub mod extract;
pub mod feeds;
pub mod idempotent;
pub mod jobs;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod seed;
pub mod tasks;
pub mod teams;
pub mod users;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Router, middleware};
use error::ApiError;
use serde::Deserialize;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use taskhub_core::Services;
use taskhub_core::auth::AuthService;
use taskhub_core::auth::throttle::RateLimiter;
use taskhub_core::page::PageRequest;
use tokio::net::TcpListener;

/// What every handler receives.
#[derive(Clone)]
pub struct AppState {
    /// The domain services.
    pub services: Services,
    /// Authentication.
    pub auth: AuthService,
    /// The per-client-address limit of the auth routes.
    pub limiter: Arc<RateLimiter>,
    /// Request metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Counters of the consumers running in this process (for `/metrics`).
    pub consumers: Vec<Arc<taskhub_core::events::consumer::ConsumerStats>>,
    /// The `long` job queue, when this process can reach its storage (for `/api/jobs/`).
    pub long_queue: Option<taskhub_jobs::runner::JobQueue>,
}

impl AppState {
    /// State over `services` and `auth`, limiting auth routes to `auth_per_minute` per address.
    pub fn new(services: Services, auth: AuthService, auth_per_minute: u32) -> Self {
        AppState {
            services,
            auth,
            limiter: Arc::new(RateLimiter::new(auth_per_minute)),
            metrics: Arc::default(),
            consumers: Vec::new(),
            long_queue: None,
        }
    }
}

/// `?page_size=&cursor=` of every list.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageParams {
    /// Rows per page (1–200, default 50).
    pub page_size: Option<String>,
    /// The previous page's `next_cursor`.
    pub cursor: Option<String>,
}

impl PageParams {
    /// The page request; a non-numeric size is a bad request.
    pub fn request(&self) -> Result<PageRequest, ApiError> {
        let page_size = match &self.page_size {
            None => None,
            Some(s) => Some(s.parse::<u32>().map_err(|_| {
                let mut f = taskhub_core::FieldErrors::new();
                f.insert("page_size".into(), vec!["must be a number between 1 and 200".into()]);
                ApiError::BadQuery(f)
            })?),
        };
        Ok(PageRequest { page_size, cursor: self.cursor.clone() })
    }
}

/// Serves the form of an `/api/` path without its trailing slash as the form with it (API.md:
/// both are served, no redirect, the body untouched). Paths API.md writes without a trailing
/// slash (`/api/openapi.json`, `/api/docs`, `/api/v1/…`) are left alone.
async fn add_trailing_slash(mut req: axum::extract::Request) -> axum::extract::Request {
    let path = req.uri().path();
    let bare = path.starts_with("/api/")
        && !path.ends_with('/')
        && !path.starts_with("/api/v1/")
        && path != "/api/openapi.json"
        && path != "/api/docs";
    if bare {
        let mut pq = format!("{path}/");
        if let Some(q) = req.uri().query() {
            pq.push('?');
            pq.push_str(q);
        }
        let mut parts = req.uri().clone().into_parts();
        if let Ok(v) = pq.parse() {
            parts.path_and_query = Some(v);
            if let Ok(uri) = axum::http::Uri::from_parts(parts) {
                *req.uri_mut() = uri;
            }
        }
    }
    req
}

/// The router of the HTTP role.
pub fn router(state: AppState) -> Router {
    let (api, doc) = openapi_router().split_for_parts();
    let spec = openapi::Spec(Arc::new(serde_json::to_value(&doc).unwrap_or_default()));
    let docs = Router::new()
        .route("/api/openapi.json", get(openapi::json))
        .route("/api/docs", get(openapi::docs))
        .with_state(spec);
    let inner = api
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics::endpoint))
        .merge(pages::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), idempotent::actions))
        .route_layer(middleware::from_fn_with_state(state.clone(), metrics::track))
        .fallback(envelope::not_found)
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed.into_response() })
        .layer(DefaultBodyLimit::max(extract::MAX_BODY))
        .with_state(state)
        .merge(docs);
    // The slash rewrite must run before routing, so it wraps the whole inner router.
    Router::new()
        .fallback_service(inner)
        .layer(middleware::map_request(add_trailing_slash))
        .layer(middleware::from_fn(envelope::request_id))
}

/// Every API route with its OpenAPI entry.
pub fn openapi_router() -> utoipa_axum::router::OpenApiRouter<AppState> {
    use utoipa::OpenApi;
    utoipa_axum::router::OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .merge(auth::routes())
        .merge(users::routes())
        .merge(teams::routes())
        .merge(tasks::routes())
        .merge(catalog::routes())
        .merge(feeds::routes())
        .merge(jobs::routes())
}

/// The OpenAPI document of the API.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    openapi_router().split_for_parts().1
}

/// Serves `router(state)` on `listener` until `shutdown` resolves, then drains in-flight
/// requests before returning.
pub async fn run(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    serve(listener, router(state), shutdown).await
}

/// Serves any router the same way [`run`] does (embedding apps add their own routes).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Liveness: the process answers",
    responses((status = 200, body = openapi::Envelope<Object>)))]
pub async fn healthz() -> Response {
    envelope::ok(&serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers; 503 otherwise.
#[utoipa::path(get, path = "/readyz", tag = "operations", summary = "Readiness: the database and configured backends answer",
    responses((status = 200, body = openapi::Envelope<Object>), (status = 503, body = openapi::ErrorEnvelope)))]
pub async fn readyz(State(state): State<AppState>) -> Response {
    match state.services.store().ping().await {
        Ok(()) => envelope::ok(&serde_json::json!({"status": "ready", "database": "ok"})),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed: database");
            envelope::with_status(
                StatusCode::SERVICE_UNAVAILABLE,
                serde_json::Value::Null,
                Some(serde_json::json!({"code": "unavailable", "message": "the database is not reachable"})),
                None,
            )
        }
    }
}

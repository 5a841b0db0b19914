//! The OpenAPI 3.1 document, generated from the handlers' annotations and the core types'
//! schemas (routes are registered through `utoipa_axum`, so a route cannot exist without its
//! entry), served at `/api/openapi.json`, and rendered for people at `/api/docs`.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};

/// `error` of a failed response.
#[derive(Serialize, ToSchema)]
pub struct ErrorBody {
    /// Snake-case code: `bad_request`, `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `precondition_failed`, `payload_too_large`, `unsupported_media_type`,
    /// `validation_failed`, `idempotency_key_reused`, `rate_limited`, `internal`.
    pub code: String,
    /// A human sentence.
    pub message: String,
    /// Messages per field (validation only).
    #[schema(value_type = Option<Object>)]
    pub fields: Option<serde_json::Value>,
}

/// `meta.page` of a list.
#[derive(Serialize, ToSchema)]
pub struct PageMeta {
    /// Cursor of the next page; null on the last.
    pub next_cursor: Option<String>,
    /// The applied page size.
    pub page_size: u32,
}

/// `meta` of every response.
#[derive(Serialize, ToSchema)]
pub struct Meta {
    /// Equals the `X-Request-Id` response header.
    pub request_id: String,
    /// Lists only.
    pub page: Option<PageMeta>,
    /// Lists where counting is cheap: rows matching in all.
    pub count: Option<i64>,
}

/// A successful response.
#[derive(Serialize, ToSchema)]
pub struct Envelope<T: ToSchema> {
    /// The payload.
    pub data: T,
    /// Always null on success.
    #[schema(value_type = Option<Object>)]
    pub error: Option<()>,
    /// Request id and paging.
    pub meta: Meta,
}

/// A failed response.
#[derive(Serialize, ToSchema)]
pub struct ErrorEnvelope {
    /// Always null on failure.
    #[schema(value_type = Option<Object>)]
    pub data: Option<()>,
    /// What went wrong.
    pub error: ErrorBody,
    /// Request id.
    pub meta: Meta,
}

/// The error responses every `/api/` route may give.
#[derive(IntoResponses)]
pub enum Errors {
    /// Unparseable JSON, empty or non-UTF-8 body, bad query string or path id.
    #[response(status = 400)]
    BadRequest(ErrorEnvelope),
    /// Missing, invalid, expired or revoked token (with `WWW-Authenticate: Bearer`).
    #[response(status = 401)]
    Unauthenticated(ErrorEnvelope),
    /// Visible but not allowed.
    #[response(status = 403)]
    Forbidden(ErrorEnvelope),
    /// Missing or not visible to the caller.
    #[response(status = 404)]
    NotFound(ErrorEnvelope),
    /// Unique name taken or state conflict.
    #[response(status = 409)]
    Conflict(ErrorEnvelope),
    /// `If-Match` does not match the current `ETag`.
    #[response(status = 412)]
    PreconditionFailed(ErrorEnvelope),
    /// Body over 1 MiB.
    #[response(status = 413)]
    PayloadTooLarge(ErrorEnvelope),
    /// Body not `application/json`.
    #[response(status = 415)]
    UnsupportedMediaType(ErrorEnvelope),
    /// Validation failed (`fields` says where), or an idempotency key reused with another body.
    #[response(status = 422)]
    Validation(ErrorEnvelope),
    /// Rate limited (with `Retry-After`).
    #[response(status = 429)]
    RateLimited(ErrorEnvelope),
    /// Internal error (details only in the log).
    #[response(status = 500)]
    Internal(ErrorEnvelope),
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        components.add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// The document's root.
#[derive(OpenApi)]
#[openapi(
    info(title = "TaskHub API", version = "1", description = "Tasks, teams and users. Every JSON response is an envelope {data, error, meta}."),
    modifiers(&BearerAuth),
    paths(crate::healthz, crate::readyz, crate::metrics::endpoint, json, docs),
    components(schemas(ErrorEnvelope, ErrorBody, Meta, PageMeta)),
    tags(
        (name = "auth", description = "Tokens and keys"),
        (name = "users"), (name = "teams"), (name = "tasks"), (name = "comments"), (name = "tags"), (name = "templates"), (name = "activity", description = "Feed, search, audit and notifications (built by the event consumers)"), (name = "jobs", description = "Job monitoring (staff)"), (name = "operations")
    )
)]
pub struct ApiDoc;

/// The generated document, shared by both routes.
#[derive(Clone)]
pub struct Spec(pub Arc<serde_json::Value>);

/// `GET /api/openapi.json`.
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", summary = "This document (OpenAPI 3.1)",
    responses((status = 200, body = Object)))]
pub async fn json(State(spec): State<Spec>) -> Response {
    axum::Json(spec.0.as_ref().clone()).into_response()
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// `GET /api/docs`: the document rendered as one self-contained page (no scripts to fetch).
#[utoipa::path(get, path = "/api/docs", tag = "operations", summary = "This document rendered for people (HTML)",
    responses((status = 200, content_type = "text/html", body = String)))]
pub async fn docs(State(spec): State<Spec>) -> Html<String> {
    let doc = spec.0.as_ref();
    let mut body = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>TaskHub API</title>\
         <style>body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}\
         h2{border-bottom:1px solid #ddd;padding-top:1rem}.op{margin:.6rem 0;padding:.5rem .8rem;background:#f6f8fa;border-radius:6px}\
         .m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}.p{font-family:monospace}\
         .r{color:#555;font-size:.9em}code{background:#eee;padding:0 .2em}</style></head><body>\
         <h1>TaskHub API</h1><p>Every JSON response is <code>{\"data\", \"error\", \"meta\": {\"request_id\"}}</code>. \
         Authenticate with <code>Authorization: Bearer &lt;access token&gt;</code>. \
         The machine-readable document is at <a href=\"/api/openapi.json\">/api/openapi.json</a>.</p>",
    );
    let mut by_tag: std::collections::BTreeMap<String, Vec<String>> = std::collections::BTreeMap::new();
    if let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) {
        for (path, item) in paths {
            for (method, op) in item.as_object().into_iter().flatten() {
                let tag = op.pointer("/tags/0").and_then(|t| t.as_str()).unwrap_or("other").to_owned();
                let summary = op.get("summary").and_then(|s| s.as_str()).unwrap_or_default();
                let codes: Vec<&str> = op
                    .get("responses")
                    .and_then(|r| r.as_object())
                    .map(|r| r.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                by_tag.entry(tag).or_default().push(format!(
                    "<div class=\"op\"><span class=\"m\">{}</span><span class=\"p\">{}</span><div>{}</div><div class=\"r\">responses: {}</div></div>",
                    esc(&method.to_uppercase()), esc(path), esc(summary), esc(&codes.join(", "))
                ));
            }
        }
    }
    for (tag, ops) in by_tag {
        body.push_str(&format!("<h2>{}</h2>", esc(&tag)));
        body.extend(ops);
    }
    body.push_str("</body></html>");
    Html(body)
}

//! `/api/tags/` and `/api/task-templates/`. Rules live in core.

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id, IfMatch, JsonBytes, idempotency_key, parse_json};
use crate::openapi::{Envelope, Errors};
use crate::{AppState, PageParams};
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use taskhub_core::tasks::{Tag, TagInput, Task, TaskInput, Template, TemplateInput};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The tag and template routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(tags, create_tag))
        .routes(routes!(tag, update_tag, delete_tag))
        .routes(routes!(templates, create_template))
        .routes(routes!(template, write_template, delete_template))
        .routes(routes!(instantiate))
}

#[utoipa::path(get, path = "/api/tags/", tag = "tags", summary = "Tags with task counts", params(PageParams), responses((status = 200, body = Envelope<Vec<Tag>>), Errors), security(("bearer" = [])))]
async fn tags(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.tags.list(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

#[utoipa::path(get, path = "/api/tags/{id}/", tag = "tags", summary = "A tag", params(("id" = i64, Path)), responses((status = 200, body = Envelope<Tag>), Errors), security(("bearer" = [])))]
async fn tag(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    Ok(envelope::ok(&s.services.tags.get(&auth.actor(), id).await?))
}

#[utoipa::path(post, path = "/api/tags/", tag = "tags", summary = "Create a tag (names unique case-insensitively)", params(("Idempotency-Key" = Option<String>, Header)), request_body = TagInput, responses((status = 201, body = Envelope<Tag>), Errors), security(("bearer" = [])))]
async fn create_tag(State(s): State<AppState>, auth: Auth, headers: HeaderMap, JsonBytes(raw): JsonBytes) -> ApiResult {
    let key = idempotency_key(&headers, "/api/tags/", &raw)?;
    let input: TagInput = parse_json(&raw)?;
    let r = s.services.tags.create_idempotent(&auth.actor(), input, key.as_ref()).await?;
    Ok(envelope::created_or_replayed(r, |t| (format!("/api/tags/{}/", t.id), None)))
}

#[utoipa::path(patch, path = "/api/tags/{id}/", tag = "tags", summary = "Rename or recolour a tag (staff)", params(("id" = i64, Path)), request_body = TagInput, responses((status = 200, body = Envelope<Tag>), Errors), security(("bearer" = [])))]
async fn update_tag(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiJson(input): ApiJson<TagInput>) -> ApiResult {
    Ok(envelope::ok(&s.services.tags.update(&auth.actor(), id, input).await?))
}

#[utoipa::path(delete, path = "/api/tags/{id}/", tag = "tags", summary = "Delete a tag (staff)", params(("id" = i64, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
async fn delete_tag(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.tags.delete(&auth.actor(), id).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(get, path = "/api/task-templates/", tag = "templates", summary = "Own templates (staff: all)", params(PageParams), responses((status = 200, body = Envelope<Vec<Template>>), Errors), security(("bearer" = [])))]
async fn templates(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.templates.list(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

#[utoipa::path(get, path = "/api/task-templates/{id}/", tag = "templates", summary = "A template (owner or staff)", params(("id" = i64, Path)), responses((status = 200, body = Envelope<Template>), Errors), security(("bearer" = [])))]
async fn template(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    let t = s.services.templates.get(&auth.actor(), id).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(post, path = "/api/task-templates/", tag = "templates", summary = "Create a template; defaults are validated like a task", params(("Idempotency-Key" = Option<String>, Header)), request_body = TemplateInput, responses((status = 201, body = Envelope<Template>), Errors), security(("bearer" = [])))]
async fn create_template(
    State(s): State<AppState>,
    auth: Auth,
    headers: HeaderMap,
    JsonBytes(raw): JsonBytes,
) -> ApiResult {
    let key = idempotency_key(&headers, "/api/task-templates/", &raw)?;
    let input: TemplateInput = parse_json(&raw)?;
    let r = s.services.templates.create_idempotent(&auth.actor(), input, key.as_ref()).await?;
    Ok(envelope::created_or_replayed(r, |t| (format!("/api/task-templates/{}/", t.id), Some(t.version))))
}

#[utoipa::path(method(put, patch), path = "/api/task-templates/{id}/", tag = "templates",
    summary = "PUT replaces a template; PATCH changes the fields given",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), request_body = TemplateInput,
    responses((status = 200, body = Envelope<Template>), Errors), security(("bearer" = [])))]
async fn write_template(
    State(s): State<AppState>,
    auth: Auth,
    method: Method,
    Id(id): Id,
    m: IfMatch,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult {
    let t = s.services.templates.update(&auth.actor(), id, input, method == Method::PUT, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(delete, path = "/api/task-templates/{id}/", tag = "templates", summary = "Delete a template", params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), responses((status = 204), Errors), security(("bearer" = [])))]
async fn delete_template(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    s.services.templates.delete(&auth.actor(), id, m.0).await?;
    Ok(envelope::no_content())
}

#[derive(serde::Deserialize, Default, ToSchema)]
struct InstantiateBody {
    #[serde(default)]
    overrides: Option<TaskInput>,
}

#[utoipa::path(post, path = "/api/task-templates/{id}/instantiate/", tag = "templates", summary = "Create a task from a template", params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = InstantiateBody, responses((status = 201, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn instantiate(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    headers: HeaderMap,
    JsonBytes(raw): JsonBytes,
) -> ApiResult {
    let key = idempotency_key(&headers, &format!("/api/task-templates/{id}/instantiate/"), &raw)?;
    let b: InstantiateBody = parse_json(&raw)?;
    let overrides = b.overrides.unwrap_or_default();
    let r = s.services.templates.instantiate_idempotent(&auth.actor(), id, overrides, key.as_ref()).await?;
    Ok(envelope::created_or_replayed(r, |t| (format!("/api/tasks/{}/", t.id), Some(t.version))))
}

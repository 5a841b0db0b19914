//! `/api/tasks/`: tasks, their actions, history and comments. Rules live in core.

use crate::auth::Auth;
use crate::envelope::{self, created_or_replayed};
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id, Ids, IfMatch, JsonBytes, idempotency_key, parse_json};
use crate::openapi::{Envelope, Errors};
use crate::{AppState, PageParams};
use axum::extract::State;
use axum::http::{HeaderMap, Method};
use serde::Deserialize;
use taskhub_core::history::HistoryEntry;
use taskhub_core::tasks::{AssignInput, Comment, Task, TaskInput, TaskQuery, UnassignInput, WriteMode};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The task routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, write, archive_delete))
        .routes(routes!(archive))
        .routes(routes!(unarchive))
        .routes(routes!(assign))
        .routes(routes!(unassign))
        .routes(routes!(history))
        .routes(routes!(comments, add_comment))
        .routes(routes!(edit_comment, delete_comment))
}

/// Every query parameter of the task list; an unknown one is a bad request, not ignored.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListParams {
    page_size: Option<String>,
    cursor: Option<String>,
    status: Option<String>,
    priority: Option<String>,
    tag: Option<String>,
    assignee: Option<String>,
    team: Option<String>,
    created_by: Option<String>,
    archived: Option<String>,
    overdue: Option<String>,
    due_before: Option<String>,
    due_after: Option<String>,
    search: Option<String>,
    ordering: Option<String>,
}

#[utoipa::path(get, path = "/api/tasks/", tag = "tasks", summary = "Tasks the caller may see, filtered, ordered and paginated", params(ListParams), responses((status = 200, body = Envelope<Vec<Task>>), Errors), security(("bearer" = [])))]
async fn list(State(s): State<AppState>, auth: Auth, ApiQuery(p): ApiQuery<ListParams>) -> ApiResult {
    let page = PageParams { page_size: p.page_size, cursor: p.cursor }.request()?;
    let q = TaskQuery {
        status: p.status,
        priority: p.priority,
        tag: p.tag,
        assignee: p.assignee,
        team: p.team,
        created_by: p.created_by,
        archived: p.archived,
        overdue: p.overdue,
        due_before: p.due_before,
        due_after: p.due_after,
        search: p.search,
        ordering: p.ordering,
    };
    Ok(envelope::page(&s.services.tasks.list(&auth.actor(), &q, &page).await.map_err(query_error)?))
}

#[utoipa::path(post, path = "/api/tasks/", tag = "tasks", summary = "Create a task", params(("Idempotency-Key" = Option<String>, Header)), request_body = TaskInput, responses((status = 201, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn create(State(s): State<AppState>, auth: Auth, headers: HeaderMap, JsonBytes(body): JsonBytes) -> ApiResult {
    let key = idempotency_key(&headers, "/api/tasks/", &body)?;
    let input: TaskInput = parse_json(&body)?;
    let r = s.services.tasks.create_idempotent(&auth.actor(), input, key.as_ref()).await?;
    Ok(created_or_replayed(r, |t| (format!("/api/tasks/{}/", t.id), Some(t.version))))
}

#[utoipa::path(get, path = "/api/tasks/{id}/", tag = "tasks", summary = "A task", params(("id" = i64, Path)), responses((status = 200, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn detail(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    let t = s.services.tasks.get(&auth.actor(), id).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(method(put, patch), path = "/api/tasks/{id}/", tag = "tasks",
    summary = "PUT replaces the writable fields (omitted ones take their defaults); PATCH changes those given (metadata is replaced)",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), request_body = TaskInput,
    responses((status = 200, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn write(
    State(s): State<AppState>,
    auth: Auth,
    method: Method,
    Id(id): Id,
    m: IfMatch,
    ApiJson(input): ApiJson<TaskInput>,
) -> ApiResult {
    let mode = if method == Method::PUT { WriteMode::Put } else { WriteMode::Patch };
    let t = s.services.tasks.update(&auth.actor(), id, input, mode, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(delete, path = "/api/tasks/{id}/", tag = "tasks", summary = "Archive (soft delete); idempotent", params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), responses((status = 204), Errors), security(("bearer" = [])))]
/// DELETE archives (soft delete): 204, and again 204 when already archived.
async fn archive_delete(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    s.services.tasks.archive(&auth.actor(), id, m.0).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(post, path = "/api/tasks/{id}/archive/", tag = "tasks", summary = "Archive", params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), responses((status = 200, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn archive(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    let t = s.services.tasks.archive(&auth.actor(), id, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(post, path = "/api/tasks/{id}/unarchive/", tag = "tasks", summary = "Restore", params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), responses((status = 200, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn unarchive(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    let t = s.services.tasks.unarchive(&auth.actor(), id, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(post, path = "/api/tasks/{id}/assign/", tag = "tasks", summary = "Assign users", params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), request_body = AssignInput, responses((status = 200, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn assign(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    m: IfMatch,
    ApiJson(b): ApiJson<AssignInput>,
) -> ApiResult {
    let t = s.services.tasks.assign(&auth.actor(), id, b, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(post, path = "/api/tasks/{id}/unassign/", tag = "tasks", summary = "Unassign users", params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), request_body = UnassignInput, responses((status = 200, body = Envelope<Task>), Errors), security(("bearer" = [])))]
async fn unassign(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    m: IfMatch,
    ApiJson(b): ApiJson<UnassignInput>,
) -> ApiResult {
    let t = s.services.tasks.unassign(&auth.actor(), id, b, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(get, path = "/api/tasks/{id}/history/", tag = "tasks", summary = "History, newest first", params(("id" = i64, Path), PageParams), responses((status = 200, body = Envelope<Vec<HistoryEntry>>), Errors), security(("bearer" = [])))]
async fn history(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.tasks.history(&auth.actor(), id, &q.request()?).await.map_err(query_error)?))
}

#[utoipa::path(get, path = "/api/tasks/{id}/comments/", tag = "comments", summary = "Comments, oldest first", params(("id" = i64, Path), PageParams), responses((status = 200, body = Envelope<Vec<Comment>>), Errors), security(("bearer" = [])))]
async fn comments(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.comments.list(&auth.actor(), id, &q.request()?).await.map_err(query_error)?))
}

#[derive(Deserialize, ToSchema)]
struct CommentBody {
    body: String,
}

#[utoipa::path(post, path = "/api/tasks/{id}/comments/", tag = "comments", summary = "Comment (any viewer)", params(("id" = i64, Path), ("Idempotency-Key" = Option<String>, Header)), request_body = CommentBody, responses((status = 201, body = Envelope<Comment>), Errors), security(("bearer" = [])))]
async fn add_comment(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    headers: HeaderMap,
    JsonBytes(raw): JsonBytes,
) -> ApiResult {
    let key = idempotency_key(&headers, &format!("/api/tasks/{id}/comments/"), &raw)?;
    let b: CommentBody = parse_json(&raw)?;
    let r = s.services.comments.add_idempotent(&auth.actor(), id, &b.body, key.as_ref()).await?;
    Ok(created_or_replayed(r, |c| (format!("/api/tasks/{}/comments/{}/", c.task, c.id), Some(c.version))))
}

#[utoipa::path(patch, path = "/api/tasks/{id}/comments/{cid}/", tag = "comments", summary = "Edit a comment (author)", params(("id" = i64, Path), ("cid" = i64, Path), ("If-Match" = Option<String>, Header)), request_body = CommentBody, responses((status = 200, body = Envelope<Comment>), Errors), security(("bearer" = [])))]
async fn edit_comment(
    State(s): State<AppState>,
    auth: Auth,
    Ids(id, cid): Ids,
    m: IfMatch,
    ApiJson(b): ApiJson<CommentBody>,
) -> ApiResult {
    let c = s.services.comments.edit(&auth.actor(), id, cid, &b.body, m.0).await?;
    Ok(envelope::ok_tagged(&c, c.version))
}

#[utoipa::path(delete, path = "/api/tasks/{id}/comments/{cid}/", tag = "comments", summary = "Delete a comment (author, task editor or staff)", params(("id" = i64, Path), ("cid" = i64, Path), ("If-Match" = Option<String>, Header)), responses((status = 204), Errors), security(("bearer" = [])))]
async fn delete_comment(State(s): State<AppState>, auth: Auth, Ids(id, cid): Ids, m: IfMatch) -> ApiResult {
    s.services.comments.delete(&auth.actor(), id, cid, m.0).await?;
    Ok(envelope::no_content())
}

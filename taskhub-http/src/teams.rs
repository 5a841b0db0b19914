//! `/api/teams/`: teams and their members. Rules live in core.

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id, IfMatch, JsonBytes, idempotency_key, parse_json};
use crate::openapi::{Envelope, Errors};
use crate::{AppState, PageParams};
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use serde_json::json;
use taskhub_core::teams::{AddMembersResult, Team, TeamInput};
use taskhub_core::users::UserView;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The team routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(detail, update, delete))
        .routes(routes!(members))
        .routes(routes!(add_members))
        .routes(routes!(remove_member))
        .routes(routes!(leave))
}

#[utoipa::path(get, path = "/api/teams/", tag = "teams", summary = "Teams the caller created or belongs to (staff: all)",
    params(PageParams), responses((status = 200, body = Envelope<Vec<Team>>), Errors), security(("bearer" = [])))]
async fn list(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.teams.list(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

#[utoipa::path(post, path = "/api/teams/", tag = "teams", summary = "Create a team; the creator is its admin", params(("Idempotency-Key" = Option<String>, Header)), request_body = TeamInput,
    responses((status = 201, body = Envelope<Team>), Errors), security(("bearer" = [])))]
async fn create(State(s): State<AppState>, auth: Auth, headers: HeaderMap, JsonBytes(raw): JsonBytes) -> ApiResult {
    let key = idempotency_key(&headers, "/api/teams/", &raw)?;
    let input: TeamInput = parse_json(&raw)?;
    let r = s.services.teams.create_idempotent(&auth.actor(), input, key.as_ref()).await?;
    Ok(envelope::created_or_replayed(r, |t| (format!("/api/teams/{}/", t.id), Some(t.version))))
}

#[utoipa::path(get, path = "/api/teams/{id}/", tag = "teams", summary = "A team (members and staff)", params(("id" = i64, Path)),
    responses((status = 200, body = Envelope<Team>), Errors), security(("bearer" = [])))]
async fn detail(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    let t = s.services.teams.get(&auth.actor(), id).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(method(put, patch), path = "/api/teams/{id}/", tag = "teams", summary = "Change a team (admin or staff)",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), request_body = TeamInput,
    responses((status = 200, body = Envelope<Team>), Errors), security(("bearer" = [])))]
async fn update(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    m: IfMatch,
    ApiJson(input): ApiJson<TeamInput>,
) -> ApiResult {
    let t = s.services.teams.update(&auth.actor(), id, input, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

#[utoipa::path(delete, path = "/api/teams/{id}/", tag = "teams", summary = "Delete a team; its tasks stay, without team",
    params(("id" = i64, Path), ("If-Match" = Option<String>, Header)), responses((status = 204), Errors), security(("bearer" = [])))]
async fn delete(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    s.services.teams.delete(&auth.actor(), id, m.0).await?;
    Ok(envelope::no_content())
}

#[utoipa::path(get, path = "/api/teams/{id}/members/", tag = "teams", summary = "Members of a team", params(("id" = i64, Path), PageParams),
    responses((status = 200, body = Envelope<Vec<UserView>>), Errors), security(("bearer" = [])))]
async fn members(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.teams.members(&auth.actor(), id, &q.request()?).await.map_err(query_error)?))
}

#[derive(Deserialize, ToSchema)]
struct AddMembers {
    user_ids: Vec<i64>,
}

#[utoipa::path(post, path = "/api/teams/{id}/add_members/", tag = "teams", summary = "Add members (admin or staff); an unknown id adds nobody",
    params(("id" = i64, Path)), request_body = AddMembers, responses((status = 200, body = Envelope<AddMembersResult>), Errors),
    security(("bearer" = [])))]
async fn add_members(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiJson(b): ApiJson<AddMembers>) -> ApiResult {
    Ok(envelope::ok(&s.services.teams.add_members(&auth.actor(), id, &b.user_ids).await?))
}

#[derive(Deserialize, ToSchema)]
struct RemoveMember {
    user_id: i64,
}

#[utoipa::path(post, path = "/api/teams/{id}/remove_member/", tag = "teams", summary = "Remove a member (admin or staff); not the admin",
    params(("id" = i64, Path)), request_body = RemoveMember, responses((status = 200, body = Envelope<Object>), Errors),
    security(("bearer" = [])))]
async fn remove_member(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    ApiJson(b): ApiJson<RemoveMember>,
) -> ApiResult {
    s.services.teams.remove_member(&auth.actor(), id, b.user_id).await?;
    Ok(envelope::ok(&json!({})))
}

#[utoipa::path(post, path = "/api/teams/{id}/leave/", tag = "teams", summary = "Leave a team (not the admin)", params(("id" = i64, Path)),
    responses((status = 200, body = Envelope<Object>), Errors), security(("bearer" = [])))]
async fn leave(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.teams.leave(&auth.actor(), id).await?;
    Ok(envelope::ok(&json!({})))
}

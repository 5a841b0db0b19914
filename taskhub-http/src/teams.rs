//! `/api/teams/`: teams and their members. Rules live in core.

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id, IfMatch};
use crate::{AppState, PageParams, both};
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use taskhub_core::teams::TeamInput;

/// The team routes.
pub fn routes() -> Router<AppState> {
    let r = both(Router::new(), "/api/teams/", get(list).post(create));
    let r = both(r, "/api/teams/{id}/", get(detail).put(update).patch(update).delete(delete));
    let r = both(r, "/api/teams/{id}/members/", get(members));
    let r = both(r, "/api/teams/{id}/add_members/", post(add_members));
    let r = both(r, "/api/teams/{id}/remove_member/", post(remove_member));
    both(r, "/api/teams/{id}/leave/", post(leave))
}

async fn list(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.teams.list(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

async fn create(State(s): State<AppState>, auth: Auth, ApiJson(input): ApiJson<TeamInput>) -> ApiResult {
    let t = s.services.teams.create(&auth.actor(), input).await?;
    Ok(envelope::created(&t, &format!("/api/teams/{}/", t.id), Some(t.version)))
}

async fn detail(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    let t = s.services.teams.get(&auth.actor(), id).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

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

async fn delete(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    s.services.teams.delete(&auth.actor(), id, m.0).await?;
    Ok(envelope::no_content())
}

async fn members(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.teams.members(&auth.actor(), id, &q.request()?).await.map_err(query_error)?))
}

#[derive(Deserialize)]
struct AddMembers {
    user_ids: Vec<i64>,
}

async fn add_members(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiJson(b): ApiJson<AddMembers>) -> ApiResult {
    Ok(envelope::ok(&s.services.teams.add_members(&auth.actor(), id, &b.user_ids).await?))
}

#[derive(Deserialize)]
struct RemoveMember {
    user_id: i64,
}

async fn remove_member(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    ApiJson(b): ApiJson<RemoveMember>,
) -> ApiResult {
    s.services.teams.remove_member(&auth.actor(), id, b.user_id).await?;
    Ok(envelope::ok(&json!({})))
}

async fn leave(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.teams.leave(&auth.actor(), id).await?;
    Ok(envelope::ok(&json!({})))
}

//! `/api/users/`: list, staff create, profile, update, deactivate. Rules live in core.

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id};
use crate::{AppState, PageParams, both};
use axum::Router;
use axum::extract::State;
use axum::routing::get;
use serde::Deserialize;
use taskhub_core::users::{UserInput, UserPatch};

/// The user routes.
pub fn routes() -> Router<AppState> {
    let r = both(Router::new(), "/api/users/", get(list).post(create));
    let r = both(r, "/api/users/me/", get(me).patch(patch_me));
    both(r, "/api/users/{id}/", get(detail).put(update).patch(update).delete(deactivate))
}

#[derive(Deserialize)]
struct ListParams {
    #[serde(flatten)]
    page: PageParams,
    search: Option<String>,
}

async fn list(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<ListParams>) -> ApiResult {
    let page =
        s.services.users.list(&auth.actor(), q.search.as_deref(), &q.page.request()?).await.map_err(query_error)?;
    Ok(envelope::page(&page))
}

async fn create(State(s): State<AppState>, auth: Auth, ApiJson(input): ApiJson<UserInput>) -> ApiResult {
    let user = s.services.users.create(&auth.actor(), input).await?;
    Ok(envelope::created(&user.view_for(Some(&auth.actor())), &format!("/api/users/{}/", user.id), None))
}

async fn me(State(s): State<AppState>, auth: Auth) -> ApiResult {
    Ok(envelope::ok(&s.services.users.get(&auth.actor(), auth.actor().user_id).await?))
}

async fn patch_me(State(s): State<AppState>, auth: Auth, ApiJson(patch): ApiJson<UserPatch>) -> ApiResult {
    Ok(envelope::ok(&s.services.users.update(&auth.actor(), auth.actor().user_id, patch).await?))
}

async fn detail(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    Ok(envelope::ok(&s.services.users.get(&auth.actor(), id).await?))
}

async fn update(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiJson(patch): ApiJson<UserPatch>) -> ApiResult {
    Ok(envelope::ok(&s.services.users.update(&auth.actor(), id, patch).await?))
}

async fn deactivate(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.users.deactivate(&auth.actor(), id).await?;
    Ok(envelope::no_content())
}

//! `/api/users/`: list, staff create, profile, update, deactivate. Rules live in core.

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id, JsonBytes, idempotency_key, parse_json};
use crate::openapi::{Envelope, Errors};
use crate::{AppState, PageParams};
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use taskhub_core::idempotency::Idempotent;
use taskhub_core::users::{UserInput, UserPatch, UserView};
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The user routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(me, patch_me))
        .routes(routes!(detail, update, deactivate))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
struct ListParams {
    /// Rows per page (1–200, default 50).
    page_size: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
    /// Text in the username, display name or name.
    search: Option<String>,
}

#[utoipa::path(get, path = "/api/users/", tag = "users", summary = "Users, searchable", params(ListParams),
    responses((status = 200, body = Envelope<Vec<UserView>>), Errors), security(("bearer" = [])))]
async fn list(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<ListParams>) -> ApiResult {
    let page = PageParams { page_size: q.page_size, cursor: q.cursor }.request()?;
    let found = s.services.users.list(&auth.actor(), q.search.as_deref(), &page).await.map_err(query_error)?;
    Ok(envelope::page(&found))
}

#[utoipa::path(post, path = "/api/users/", tag = "users", summary = "Create a user (staff)", params(("Idempotency-Key" = Option<String>, Header)), request_body = UserInput,
    responses((status = 201, body = Envelope<UserView>), Errors), security(("bearer" = [])))]
async fn create(State(s): State<AppState>, auth: Auth, headers: HeaderMap, JsonBytes(raw): JsonBytes) -> ApiResult {
    let key = idempotency_key(&headers, "/api/users/", &raw)?;
    let input: UserInput = parse_json(&raw)?;
    let actor = auth.actor();
    let r = s.services.users.create_idempotent(&actor, input, key.as_ref()).await?;
    let r = match r {
        Idempotent::Done(u) => Idempotent::Done(u.view_for(Some(&actor))),
        Idempotent::Replayed { status, body } => Idempotent::Replayed { status, body },
    };
    Ok(envelope::created_or_replayed(r, |u| (format!("/api/users/{}/", u.id), None)))
}

#[utoipa::path(get, path = "/api/users/me/", tag = "users", summary = "Own profile",
    responses((status = 200, body = Envelope<UserView>), Errors), security(("bearer" = [])))]
async fn me(State(s): State<AppState>, auth: Auth) -> ApiResult {
    Ok(envelope::ok(&s.services.users.get(&auth.actor(), auth.actor().user_id).await?))
}

#[utoipa::path(patch, path = "/api/users/me/", tag = "users", summary = "Change own profile", request_body = UserPatch,
    responses((status = 200, body = Envelope<UserView>), Errors), security(("bearer" = [])))]
async fn patch_me(State(s): State<AppState>, auth: Auth, ApiJson(patch): ApiJson<UserPatch>) -> ApiResult {
    Ok(envelope::ok(&s.services.users.update(&auth.actor(), auth.actor().user_id, patch).await?))
}

#[utoipa::path(get, path = "/api/users/{id}/", tag = "users", summary = "A user (e-mail only for self and staff)",
    params(("id" = i64, Path)), responses((status = 200, body = Envelope<UserView>), Errors), security(("bearer" = [])))]
async fn detail(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    Ok(envelope::ok(&s.services.users.get(&auth.actor(), id).await?))
}

#[utoipa::path(method(put, patch), path = "/api/users/{id}/", tag = "users", summary = "Change a user (self or staff)",
    params(("id" = i64, Path)), request_body = UserPatch, responses((status = 200, body = Envelope<UserView>), Errors),
    security(("bearer" = [])))]
async fn update(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiJson(patch): ApiJson<UserPatch>) -> ApiResult {
    Ok(envelope::ok(&s.services.users.update(&auth.actor(), id, patch).await?))
}

#[utoipa::path(delete, path = "/api/users/{id}/", tag = "users", summary = "Deactivate a user (staff); their tokens stop working",
    params(("id" = i64, Path)), responses((status = 204), Errors), security(("bearer" = [])))]
async fn deactivate(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.users.deactivate(&auth.actor(), id).await?;
    Ok(envelope::no_content())
}

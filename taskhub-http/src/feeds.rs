//! What the event consumers built, read back: the caller's activity feed, full-text search,
//! the audit chain (staff) and notifications (EVENTS.md, "Read-back shapes").

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiError, ApiResult, query_error};
use crate::extract::{ApiQuery, Id};
use crate::openapi::{Envelope, Errors};
use crate::{AppState, PageParams};
use axum::extract::State;
use serde::Deserialize;
use taskhub_core::projections::SearchHit;
use taskhub_core::store::consume::{Activity, AuditEntry, Notification};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The read-back routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(activity))
        .routes(routes!(search))
        .routes(routes!(audit))
        .routes(routes!(notifications))
        .routes(routes!(read_notification))
}

#[utoipa::path(get, path = "/api/activity/", tag = "activity", summary = "The caller's activity feed, newest first",
    params(PageParams), responses((status = 200, body = Envelope<Vec<Activity>>), Errors), security(("bearer" = [])))]
async fn activity(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.projections.activity(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

/// `?q=` of search, with paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct SearchParams {
    /// Words to find (1–200 characters); every word must occur in the title, description or tags.
    q: Option<String>,
    /// Rows per page (1–200, default 50).
    page_size: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/search/", tag = "activity", summary = "Full-text search of the live tasks the caller may see, best first",
    params(SearchParams), responses((status = 200, body = Envelope<Vec<SearchHit>>), Errors), security(("bearer" = [])))]
async fn search(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<SearchParams>) -> ApiResult {
    let Some(text) = q.q.as_deref() else {
        let mut f = taskhub_core::FieldErrors::new();
        f.insert("q".into(), vec!["is required".into()]);
        return Err(ApiError::BadQuery(f));
    };
    let page = PageParams { page_size: q.page_size.clone(), cursor: q.cursor.clone() }.request()?;
    Ok(envelope::page(&s.services.projections.search(&auth.actor(), text, &page).await.map_err(query_error)?))
}

#[utoipa::path(get, path = "/api/audit/", tag = "activity", summary = "The audit chain, oldest first (staff)",
    params(PageParams), responses((status = 200, body = Envelope<Vec<AuditEntry>>), Errors), security(("bearer" = [])))]
async fn audit(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.projections.audit(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

/// `?unread=true` and paging.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
struct NotificationParams {
    /// `true`: only unread ones; `false` (default): all.
    unread: Option<String>,
    /// Rows per page (1–200, default 50).
    page_size: Option<String>,
    /// The previous page's `next_cursor`.
    cursor: Option<String>,
}

#[utoipa::path(get, path = "/api/notifications/", tag = "activity", summary = "The caller's notifications, newest first",
    params(NotificationParams), responses((status = 200, body = Envelope<Vec<Notification>>), Errors), security(("bearer" = [])))]
async fn notifications(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<NotificationParams>) -> ApiResult {
    let unread = match q.unread.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => {
            let mut f = taskhub_core::FieldErrors::new();
            f.insert("unread".into(), vec!["must be true or false".into()]);
            return Err(ApiError::BadQuery(f));
        }
    };
    let page = PageParams { page_size: q.page_size.clone(), cursor: q.cursor.clone() }.request()?;
    Ok(envelope::page(&s.services.projections.notifications(&auth.actor(), unread, &page).await.map_err(query_error)?))
}

#[utoipa::path(post, path = "/api/notifications/{id}/read/", tag = "activity", summary = "Mark one of the caller's notifications read",
    params(("id" = i64, Path)), responses((status = 200, body = Envelope<Notification>), Errors), security(("bearer" = [])))]
async fn read_notification(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    Ok(envelope::ok(&s.services.projections.read_notification(&auth.actor(), id).await?))
}

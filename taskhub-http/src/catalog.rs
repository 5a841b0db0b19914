//! `/api/tags/` and `/api/task-templates/`. Rules live in core.

use crate::auth::Auth;
use crate::envelope;
use crate::error::{ApiResult, query_error};
use crate::extract::{ApiJson, ApiQuery, Id, IfMatch, JsonBytes, parse_json};
use crate::tasks::idempotency_key;
use crate::{AppState, PageParams, both};
use axum::Router;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, patch, post};
use taskhub_core::idempotency::Idempotent;
use taskhub_core::tasks::{TagInput, TaskInput, TemplateInput};

/// The tag and template routes.
pub fn routes() -> Router<AppState> {
    let r = both(Router::new(), "/api/tags/", get(tags).post(create_tag));
    let r = both(r, "/api/tags/{id}/", patch(update_tag).delete(delete_tag).get(tag));
    let r = both(r, "/api/task-templates/", get(templates).post(create_template));
    let r = both(
        r,
        "/api/task-templates/{id}/",
        get(template).put(put_template).patch(patch_template).delete(delete_template),
    );
    both(r, "/api/task-templates/{id}/instantiate/", post(instantiate))
}

async fn tags(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.tags.list(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

async fn tag(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    Ok(envelope::ok(&s.services.tags.get(&auth.actor(), id).await?))
}

async fn create_tag(State(s): State<AppState>, auth: Auth, ApiJson(input): ApiJson<TagInput>) -> ApiResult {
    let t = s.services.tags.create(&auth.actor(), input).await?;
    Ok(envelope::created(&t, &format!("/api/tags/{}/", t.id), None))
}

async fn update_tag(State(s): State<AppState>, auth: Auth, Id(id): Id, ApiJson(input): ApiJson<TagInput>) -> ApiResult {
    Ok(envelope::ok(&s.services.tags.update(&auth.actor(), id, input).await?))
}

async fn delete_tag(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.tags.delete(&auth.actor(), id).await?;
    Ok(envelope::no_content())
}

async fn templates(State(s): State<AppState>, auth: Auth, ApiQuery(q): ApiQuery<PageParams>) -> ApiResult {
    Ok(envelope::page(&s.services.templates.list(&auth.actor(), &q.request()?).await.map_err(query_error)?))
}

async fn template(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    let t = s.services.templates.get(&auth.actor(), id).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

async fn create_template(State(s): State<AppState>, auth: Auth, ApiJson(input): ApiJson<TemplateInput>) -> ApiResult {
    let t = s.services.templates.create(&auth.actor(), input).await?;
    Ok(envelope::created(&t, &format!("/api/task-templates/{}/", t.id), Some(t.version)))
}

async fn put_template(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    m: IfMatch,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult {
    let t = s.services.templates.update(&auth.actor(), id, input, true, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

async fn patch_template(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    m: IfMatch,
    ApiJson(input): ApiJson<TemplateInput>,
) -> ApiResult {
    let t = s.services.templates.update(&auth.actor(), id, input, false, m.0).await?;
    Ok(envelope::ok_tagged(&t, t.version))
}

async fn delete_template(State(s): State<AppState>, auth: Auth, Id(id): Id, m: IfMatch) -> ApiResult {
    s.services.templates.delete(&auth.actor(), id, m.0).await?;
    Ok(envelope::no_content())
}

#[derive(serde::Deserialize, Default)]
struct InstantiateBody {
    #[serde(default)]
    overrides: Option<TaskInput>,
}

async fn instantiate(
    State(s): State<AppState>,
    auth: Auth,
    Id(id): Id,
    headers: HeaderMap,
    JsonBytes(raw): JsonBytes,
) -> ApiResult {
    let key = idempotency_key(&headers, &format!("/api/task-templates/{id}/instantiate/"), &raw)?;
    let b: InstantiateBody = parse_json(&raw)?;
    let r = s
        .services
        .templates
        .instantiate_idempotent(&auth.actor(), id, b.overrides.unwrap_or_default(), key.as_ref())
        .await?;
    Ok(match r {
        Idempotent::Done(t) => envelope::created(&t, &format!("/api/tasks/{}/", t.id), Some(t.version)),
        Idempotent::Replayed { status, body } => envelope::with_status(
            axum::http::StatusCode::from_u16(status).unwrap_or(axum::http::StatusCode::OK),
            body,
            None,
            None,
        ),
    })
}

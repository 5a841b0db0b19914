//! `/api/jobs/`: the job monitoring view (staff) — queues with their jobs by state, the latest
//! failures with their errors, and the retry of a dead job.

use crate::AppState;
use crate::auth::Auth;
use crate::envelope;
use crate::error::ApiError;
use crate::error::ApiResult;
use crate::openapi::{Envelope, Errors};
use axum::extract::{Path, State};
use taskhub_core::Actor;
use taskhub_core::maintenance::{JobsView, QueueView};
use taskhub_jobs::monitor::{self, RetryError};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retry))
}

#[utoipa::path(get, path = "/api/jobs/", tag = "jobs", summary = "Queues with their jobs by state, and the latest failures (staff)",
    responses((status = 200, body = Envelope<JobsView>), Errors), security(("bearer" = [])))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult {
    Ok(envelope::ok(&view(&s, &auth.actor()).await?))
}

#[utoipa::path(post, path = "/api/jobs/{id}/retry/", tag = "jobs", summary = "Put a dead job back in its queue (staff)",
    description = "`id` is a failure's id from `GET /api/jobs/`: a mail's number, or a `long` job's task id.",
    params(("id" = String, Path)),
    responses((status = 200, body = Envelope<Object>), (status = 503, body = crate::openapi::ErrorEnvelope, description = "the job's queue storage does not answer"), Errors),
    security(("bearer" = [])))]
async fn retry(State(s): State<AppState>, auth: Auth, Path(id): Path<String>) -> ApiResult {
    retry_dead(&s, &auth.actor(), &id).await?;
    Ok(envelope::ok(&serde_json::json!({"id": id, "status": "pending"})))
}

/// The jobs view (staff): the core's view of the mail queue and the failures, plus the `long`
/// queue (left out, with a warning, when its storage does not answer).
pub(crate) async fn view(s: &AppState, actor: &Actor) -> Result<JobsView, ApiError> {
    let mut view = s.services.maintenance.jobs(actor).await?;
    if let Some(long) = long_view(s).await {
        view.queues.push(long);
    }
    Ok(view)
}

/// The `long` queue's view, when this process knows its storage and it answers.
pub(crate) async fn long_view(s: &AppState) -> Option<QueueView> {
    let q = s.long_queue.as_ref()?;
    monitor::long_queue_view(q, &s.services)
        .await
        .map_err(|e| tracing::warn!(error = %e, "jobs view: the long queue's figures are not available"))
        .ok()
}

/// Puts the dead job `id` back in its queue (staff).
pub(crate) async fn retry_dead(s: &AppState, actor: &Actor, id: &str) -> Result<(), ApiError> {
    monitor::retry_dead(&s.services, s.long_queue.as_ref(), actor, id).await.map_err(|e| match e {
        RetryError::Core(e) => e.into(),
        RetryError::Unavailable(m) => ApiError::Unavailable(m),
    })
}

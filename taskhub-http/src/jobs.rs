//! `/api/jobs/`: the job monitoring view (staff) — queues with their jobs by state, the latest
//! failures with their errors, and the retry of a dead job.

use crate::AppState;
use crate::auth::Auth;
use crate::envelope;
use crate::error::ApiResult;
use crate::extract::Id;
use crate::openapi::{Envelope, Errors};
use axum::extract::State;
use taskhub_core::maintenance::{JobsView, QueueView};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retry))
}

#[utoipa::path(get, path = "/api/jobs/", tag = "jobs", summary = "Queues with their jobs by state, and the latest failures (staff)",
    responses((status = 200, body = Envelope<JobsView>), Errors), security(("bearer" = [])))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult {
    let mut view = s.services.maintenance.jobs(&auth.actor()).await?;
    if let Some(q) = &s.long_queue {
        match q.counts().await {
            Ok(counts) => view.queues.push(QueueView {
                name: taskhub_jobs::QUEUE_LONG.into(),
                jobs: ["daily_summary", "overdue_scan", "archive_cleanup", "idempotency_purge", "token_purge"]
                    .map(String::from)
                    .to_vec(),
                counts,
            }),
            Err(e) => tracing::warn!(error = %e, "jobs view: the long queue's storage did not answer"),
        }
    }
    Ok(envelope::ok(&view))
}

#[utoipa::path(post, path = "/api/jobs/{id}/retry/", tag = "jobs", summary = "Put a dead job back in its queue (staff)",
    params(("id" = i64, Path)), responses((status = 200, body = Envelope<Object>), Errors), security(("bearer" = [])))]
async fn retry(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.maintenance.retry_job(&auth.actor(), id).await?;
    Ok(envelope::ok(&serde_json::json!({"id": id, "status": "pending"})))
}

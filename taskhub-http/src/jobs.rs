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
use taskhub_core::maintenance::{JobsView, QueueView, Retry};
use taskhub_jobs::runner::Job;
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
/// queue's counts from its job storage (left out, with a warning, when it does not answer).
pub(crate) async fn view(s: &AppState, actor: &Actor) -> Result<JobsView, ApiError> {
    let mut view = s.services.maintenance.jobs(actor).await?;
    if let Some(counts) = long_counts(s).await {
        view.queues.push(QueueView {
            name: taskhub_jobs::QUEUE_LONG.into(),
            jobs: ["daily_summary", "overdue_scan", "archive_cleanup", "idempotency_purge", "token_purge"]
                .map(String::from)
                .to_vec(),
            counts,
        });
    }
    Ok(view)
}

/// The `long` queue by state: pending, running and done from its job storage; failed (waiting
/// for the next try) and dead (not retried yet) from the runner's records of failed tries.
/// `None` (with a warning) when the storage or the database does not answer.
pub(crate) async fn long_counts(s: &AppState) -> Option<taskhub_core::store::maintain::QueueCounts> {
    let q = s.long_queue.as_ref()?;
    let stored = q.counts().await.map_err(|e| tracing::warn!(error = %e, "the long queue's storage did not answer"));
    let failures =
        s.services.maintenance.job_failure_counts().await.map_err(|e| tracing::warn!(error = %e, "job failures"));
    let (mut counts, (failed, dead)) = (stored.ok()?, failures.ok()?);
    (counts.failed, counts.dead) = (failed, dead);
    Some(counts)
}

/// Puts the dead job `id` back in its queue (staff): a mail is due again; a `long` job is
/// pushed into its storage again, then recorded as retried.
pub(crate) async fn retry_dead(s: &AppState, actor: &Actor, id: &str) -> Result<(), ApiError> {
    match s.services.maintenance.retry_job(actor, id).await? {
        Retry::Mail => Ok(()),
        Retry::Push { queue, args } => {
            let job: Job = serde_json::from_str(&args).map_err(|e| taskhub_core::Error::Internal(Box::new(e)))?;
            let Some(mut q) = s.long_queue.clone().filter(|_| queue == taskhub_jobs::QUEUE_LONG) else {
                return Err(ApiError::Unavailable(format!("the {queue} queue's storage is not reachable from here")));
            };
            q.push(job).await.map_err(|e| {
                tracing::warn!(error = %e, "retry: the long queue's storage did not take the job");
                ApiError::Unavailable(format!("the {queue} queue's storage did not answer"))
            })?;
            Ok(s.services.maintenance.job_retried(id).await?)
        }
    }
}

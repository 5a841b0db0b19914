//! `/api/jobs/`: the job monitoring view (staff) — queues with their jobs by state, the latest
//! failures with their errors, and the retry of a dead job.

use crate::AppState;
use crate::auth::Auth;
use crate::envelope;
use crate::error::ApiResult;
use crate::extract::Id;
use crate::openapi::{Envelope, Errors};
use axum::extract::State;
use taskhub_core::maintenance::JobsView;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The job routes.
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(retry))
}

#[utoipa::path(get, path = "/api/jobs/", tag = "jobs", summary = "Queues with their jobs by state, and the latest failures (staff)",
    responses((status = 200, body = Envelope<JobsView>), Errors), security(("bearer" = [])))]
async fn list(State(s): State<AppState>, auth: Auth) -> ApiResult {
    Ok(envelope::ok(&s.services.maintenance.jobs(&auth.actor()).await?))
}

#[utoipa::path(post, path = "/api/jobs/{id}/retry/", tag = "jobs", summary = "Put a dead job back in its queue (staff)",
    params(("id" = i64, Path)), responses((status = 200, body = Envelope<Object>), Errors), security(("bearer" = [])))]
async fn retry(State(s): State<AppState>, auth: Auth, Id(id): Id) -> ApiResult {
    s.services.maintenance.retry_job(&auth.actor(), id).await?;
    Ok(envelope::ok(&serde_json::json!({"id": id, "status": "pending"})))
}

//! What the monitoring view needs from the job runner, whichever shell shows it: the `long`
//! queue's figures, and the retry of a dead job (a `long` job is pushed into its storage again).

use crate::runner::{Job, JobQueue};
use taskhub_core::maintenance::{QueueView, Retry};
use taskhub_core::{Actor, Services};

/// The jobs the `long` queue carries.
pub const LONG_JOBS: [&str; 5] =
    ["daily_summary", "overdue_scan", "archive_cleanup", "idempotency_purge", "token_purge"];

/// The `long` queue by state: pending, running and done from its job storage; failed (waiting
/// for the next try) and dead (not retried yet) from the runner's records of failed tries, the
/// same whatever the storage.
pub async fn long_queue_view(queue: &JobQueue, services: &Services) -> anyhow::Result<QueueView> {
    let mut counts = queue.counts().await?;
    (counts.failed, counts.dead) = services.maintenance.job_failure_counts().await?;
    Ok(QueueView { name: crate::QUEUE_LONG.into(), jobs: LONG_JOBS.map(String::from).to_vec(), counts })
}

/// Why a retry did not happen.
#[derive(Debug)]
pub enum RetryError {
    /// Not staff, not dead, or the database failed.
    Core(taskhub_core::Error),
    /// The job's queue storage is not reachable (or not known here).
    Unavailable(String),
}

impl From<taskhub_core::Error> for RetryError {
    fn from(e: taskhub_core::Error) -> Self {
        RetryError::Core(e)
    }
}

/// Puts the dead job `id` back in its queue (staff only): a mail is due again; a `long` job is
/// pushed into `long` again, then recorded as retried.
pub async fn retry_dead(
    services: &Services,
    long: Option<&JobQueue>,
    actor: &Actor,
    id: &str,
) -> Result<(), RetryError> {
    let Retry::Push { queue, args } = services.maintenance.retry_job(actor, id).await? else { return Ok(()) };
    let job: Job = serde_json::from_str(&args).map_err(|e| taskhub_core::Error::Internal(Box::new(e)))?;
    let Some(mut q) = long.filter(|_| queue == crate::QUEUE_LONG).cloned() else {
        return Err(RetryError::Unavailable(format!("the {queue} queue's storage is not reachable from here")));
    };
    q.push(job).await.map_err(|e| {
        tracing::warn!(error = %e, "retry: the long queue's storage did not take the job");
        RetryError::Unavailable(format!("the {queue} queue's storage did not answer"))
    })?;
    Ok(services.maintenance.job_retried(id).await?)
}

//! The maintenance work the job runner schedules: the overdue scan, the cleanup of long-archived
//! tasks and the daily summary figures. Each is idempotent — running it twice, or on two
//! runners at once, has the effect of running it once.

use crate::error::Error;
use crate::error::Result;
use crate::events::EventEnvelope;
use crate::history::{HistoryAction, NewHistory};
use crate::services::Actor;
use crate::services::Ctx;
use crate::store::maintain::{JobFailure, NewJobFailure, NewMail, QueueCounts, SummaryCounts};
use crate::tasks::TaskStatus;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

/// How long archived tasks are kept by default before the cleanup deletes them.
pub const DEFAULT_ARCHIVE_RETENTION: chrono::Duration = chrono::Duration::days(30);

/// The lease held by the one job runner that pushes the periodic jobs.
pub const SCHEDULE_LEASE: &str = "job-schedule";
/// How long the schedule lease lasts unless renewed.
pub const SCHEDULE_LEASE_FOR: chrono::Duration = chrono::Duration::minutes(3);

/// How many failures the jobs view lists.
pub const RECENT_FAILURES: u32 = 50;

/// What a retry asks of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retry {
    /// A mail: due again, nothing more to do.
    Mail,
    /// A job to push into `queue` again (its arguments as JSON).
    Push {
        /// The queue.
        queue: String,
        /// The job as JSON.
        args: String,
    },
}

/// One queue in the jobs view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueView {
    /// Queue name.
    pub name: String,
    /// The jobs it carries.
    pub jobs: Vec<String>,
    /// Jobs by state.
    pub counts: QueueCounts,
}

/// The jobs view.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobsView {
    /// Each persistent queue.
    pub queues: Vec<QueueView>,
    /// The latest failures, newest first.
    pub recent_failures: Vec<JobFailure>,
}

/// Maintenance operations over one store.
#[derive(Clone)]
pub struct MaintenanceService {
    ctx: Ctx,
}

impl MaintenanceService {
    /// Operations over `ctx`.
    pub fn new(ctx: Ctx) -> Self {
        MaintenanceService { ctx }
    }

    /// Announces every task that became overdue: one `overdue` history row and one
    /// `task.overdue` event per task and due date, in one transaction each. It never changes a
    /// task's status or version (overdue is not a status). Returns the announced task ids.
    pub async fn overdue_scan(&self) -> Result<Vec<i64>> {
        let now = self.ctx.clock.now();
        let mut announced = Vec::new();
        loop {
            let ids = self.ctx.store.read().await?.overdue_unannounced(now, 200).await?;
            let before = announced.len();
            for id in &ids {
                if self.announce_overdue(*id, now).await? {
                    announced.push(*id);
                }
            }
            // Done when a pass announces nothing new (what is left was taken by another scanner).
            if ids.len() < 200 || announced.len() == before {
                return Ok(announced);
            }
        }
    }

    async fn announce_overdue(&self, id: i64, now: DateTime<Utc>) -> Result<bool> {
        let mut tx = self.ctx.store.begin().await?;
        let Some(mut task) = tx.lock_task(id).await? else { return Ok(false) };
        let Some(due) = task.due_date else { return Ok(false) };
        if task.is_archived || task.status == TaskStatus::Done || due >= now {
            return Ok(false);
        }
        if !tx.mark_overdue_announced(id, due).await? {
            return Ok(false);
        }
        task.refresh_overdue(now);
        let changes = json!({"is_overdue": {"from": false, "to": true}});
        tx.insert_history(&NewHistory {
            task_id: id,
            action: HistoryAction::Overdue,
            actor: None,
            changes: changes.clone(),
            created_at: now,
        })
        .await?;
        let event =
            EventEnvelope::new("task.overdue", "task", id, None, now, json!({"task": task, "changes": changes}));
        tx.insert_outbox(&event).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes tasks archived before `now - retention` (by `archived_at`), with their comments,
    /// history, assignments and tags, and records what went as a `tasks.purged` event (which the
    /// audit log keeps). Returns how many tasks went.
    pub async fn archive_cleanup(&self, retention: chrono::Duration) -> Result<u64> {
        let now = self.ctx.clock.now();
        let cutoff = now - retention;
        let mut total = 0;
        loop {
            let mut tx = self.ctx.store.begin().await?;
            let ids = tx.archived_before(cutoff, 500).await?;
            if ids.is_empty() {
                return Ok(total);
            }
            let n = tx.delete_tasks(&ids).await?;
            let event = EventEnvelope::new(
                "tasks.purged",
                "job",
                0,
                None,
                now,
                json!({"task_ids": ids, "archived_before": cutoff, "count": n}),
            );
            tx.insert_outbox(&event).await?;
            tx.commit().await?;
            total += n;
        }
    }

    /// The jobs view (what Flower gave), staff only: the `interactive` queue's jobs by state
    /// (the mail outbox) and the latest failures of both queues with their errors, newest first.
    /// The job runner's shell adds the `long` queue's counts, read from its job storage.
    pub async fn jobs(&self, actor: &Actor) -> Result<JobsView> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may see the jobs".into()));
        }
        let mut tx = self.ctx.store.read().await?;
        let interactive = tx.mail_queue_counts(self.ctx.clock.now()).await?;
        let mut recent_failures = tx.mail_failures(RECENT_FAILURES).await?;
        recent_failures.extend(tx.job_failures(RECENT_FAILURES).await?);
        recent_failures.sort_by_key(|f| std::cmp::Reverse(f.failed_at));
        recent_failures.truncate(RECENT_FAILURES as usize);
        Ok(JobsView {
            queues: vec![QueueView {
                name: "interactive".into(),
                jobs: vec!["task_notification".into(), "daily_summary".into()],
                counts: interactive,
            }],
            recent_failures,
        })
    }

    /// Retries a dead job (staff only): a dead mail (`id` = its digits) is due again at once
    /// ([`Retry::Mail`]); a dead job of another queue is handed back ([`Retry::Push`]) for the
    /// caller to push into its queue, then to confirm with [`Self::job_retried`]. `NotFound`
    /// unless the job is dead and not retried yet.
    pub async fn retry_job(&self, actor: &Actor, id: &str) -> Result<Retry> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may retry jobs".into()));
        }
        let mut tx = self.ctx.store.begin().await?;
        let retry = match id.parse::<i64>() {
            Ok(mail) if tx.revive_mail(mail, self.ctx.clock.now()).await? => Retry::Mail,
            Ok(_) => return Err(Error::NotFound("dead job")),
            Err(_) => match tx.dead_job(id).await? {
                Some((queue, args)) => Retry::Push { queue, args },
                None => return Err(Error::NotFound("dead job")),
            },
        };
        tx.commit().await?;
        Ok(retry)
    }

    /// Takes or renews the schedule lease for `holder`; false while another runner holds it.
    /// One runner at a time pushes the periodic jobs; when it stops renewing, another takes
    /// over within [`SCHEDULE_LEASE_FOR`].
    pub async fn lead_schedule(&self, holder: &str) -> Result<bool> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let got = tx.acquire_lease(SCHEDULE_LEASE, holder, now, now + SCHEDULE_LEASE_FOR).await?;
        tx.commit().await?;
        Ok(got)
    }

    /// Gives the schedule lease back (another runner takes over at once).
    pub async fn release_schedule(&self, holder: &str) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.release_lease(SCHEDULE_LEASE, holder).await?;
        tx.commit().await
    }

    /// Records that the dead job `task_id` was pushed into its queue again.
    pub async fn job_retried(&self, task_id: &str) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.job_retried(task_id, self.ctx.clock.now()).await?;
        tx.commit().await
    }

    /// Records a failed try of a job; returns its failed tries so far (dead once they reach
    /// `max_attempts`).
    pub async fn job_failed(&self, failure: &NewJobFailure) -> Result<i32> {
        let mut tx = self.ctx.store.begin().await?;
        let tries = tx.record_job_failure(failure).await?;
        tx.commit().await?;
        Ok(tries)
    }

    /// The `long` jobs' failures by state: (failed and waiting for their next try, dead and not
    /// retried) — the job runner's own records, the same whatever the job storage.
    pub async fn job_failure_counts(&self) -> Result<(i64, i64)> {
        self.ctx.store.read().await?.job_failure_counts().await
    }

    /// Whether the job `task_id` is dead: a job storage that tries it again anyway (apalis-redis
    /// 1.0 retries up to 25 times whatever the limit) must not run it.
    pub async fn job_is_dead(&self, task_id: &str) -> Result<bool> {
        self.ctx.store.read().await?.job_is_dead(task_id).await
    }

    /// Forgets the failed tries of a job that succeeded.
    pub async fn job_succeeded(&self, task_id: &str) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.clear_job_failure(task_id).await?;
        tx.commit().await
    }

    /// Claims the daily summary of every active user for the local day `day` (each with its
    /// mail, see [`Self::claim_daily_summary`]); returns how many were claimed. Users with
    /// nothing to tell, or already summarized that day, are skipped.
    pub async fn daily_summaries(&self, day: NaiveDate) -> Result<usize> {
        let (mut after, mut claimed) = (0, 0);
        loop {
            let users = self.ctx.store.read().await?.list_active_user_ids(after, 500).await?;
            let Some(&last) = users.last() else { return Ok(claimed) };
            after = last;
            for u in users {
                if self.claim_daily_summary(u, day).await?.is_some() {
                    claimed += 1;
                }
            }
        }
    }

    /// The daily summary of `user` for the local day `day`: the figures of the last 24 hours,
    /// or `None` when they are all zero or the day's summary was already claimed. Claiming is
    /// atomic and queues the summary mail in the same transaction, so a schedule firing twice
    /// (or on two runners) mails at most one summary a day, and a claimed one is never lost.
    pub async fn claim_daily_summary(&self, user: i64, day: NaiveDate) -> Result<Option<SummaryCounts>> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let counts = tx.summary_counts(user, now - chrono::Duration::hours(24), now).await?;
        if counts.is_empty() || !tx.claim_summary(user, day, now).await? {
            return Ok(None);
        }
        tx.insert_mail(&NewMail {
            key: format!("summary:{day}:{user}"),
            user_id: user,
            kind: "daily_summary".into(),
            task_id: None,
            event_id: format!("summary:{day}"),
            data: json!({"day": day, "counts": counts}),
            created_at: now,
        })
        .await?;
        tx.commit().await?;
        Ok(Some(counts))
    }
}

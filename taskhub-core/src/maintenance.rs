//! The maintenance work the job runner schedules: the overdue scan, the cleanup of long-archived
//! tasks and the daily summary figures. Each is idempotent — running it twice, or on two
//! runners at once, has the effect of running it once.

use crate::error::Error;
use crate::error::Result;
use crate::events::EventEnvelope;
use crate::history::{HistoryAction, NewHistory};
use crate::services::Actor;
use crate::services::Ctx;
use crate::store::maintain::{MailFailure, NewMail, QueueCounts, SummaryCounts};
use crate::tasks::TaskStatus;
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;

/// How long archived tasks are kept by default before the cleanup deletes them.
pub const DEFAULT_ARCHIVE_RETENTION: chrono::Duration = chrono::Duration::days(30);

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
    pub recent_failures: Vec<MailFailure>,
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

    /// The jobs view (what Flower gave), staff only: the `interactive` queue's jobs by state and
    /// the latest failures with their errors.
    pub async fn jobs(&self, actor: &Actor) -> Result<JobsView> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may see the jobs".into()));
        }
        let mut tx = self.ctx.store.read().await?;
        let interactive = tx.mail_queue_counts(self.ctx.clock.now()).await?;
        let recent_failures = tx.mail_failures(50).await?;
        Ok(JobsView {
            queues: vec![QueueView {
                name: "interactive".into(),
                jobs: vec!["task_notification".into(), "daily_summary".into()],
                counts: interactive,
            }],
            recent_failures,
        })
    }

    /// Retries a dead job (staff only); `NotFound` unless it is dead.
    pub async fn retry_job(&self, actor: &Actor, id: i64) -> Result<()> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may retry jobs".into()));
        }
        let mut tx = self.ctx.store.begin().await?;
        if !tx.revive_mail(id, self.ctx.clock.now()).await? {
            return Err(Error::NotFound("dead job"));
        }
        tx.commit().await
    }

    /// Active users, `limit` at a time after `after` (the summary job walks them).
    pub async fn active_users(&self, after: i64, limit: u32) -> Result<Vec<i64>> {
        self.ctx.store.read().await?.list_active_user_ids(after, limit).await
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

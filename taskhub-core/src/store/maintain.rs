//! The storage side of the maintenance jobs (overdue scan, archive cleanup, daily summaries),
//! implemented once for both engines by `impl_maintain_tx!`.

use crate::error::Result;
use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

/// A user's figures for a daily summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct SummaryCounts {
    /// Tasks assigned to the user in the window (by assignment time).
    pub newly_assigned: i64,
    /// The user's tasks that entered `done` in the window.
    pub completed: i64,
    /// The user's live tasks past their due date and not done.
    pub overdue: i64,
    /// The user's live tasks not done (overdue included).
    pub pending: i64,
}

impl SummaryCounts {
    /// Nothing to tell.
    pub fn is_empty(&self) -> bool {
        *self == SummaryCounts::default()
    }
}

/// A mail waiting in the mail outbox.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct MailRow {
    /// Row id.
    pub id: i64,
    /// `<event id>:<user id>`: also the Message-ID's local part.
    pub key: String,
    /// Recipient.
    pub user_id: i64,
    /// `assigned`, `comment`, `status_changed`, `created`, `overdue`, `daily_summary`.
    pub kind: String,
    /// The task it is about.
    pub task_id: Option<i64>,
    /// The event it came from.
    pub event_id: String,
    /// What the templates need (task title, status, comment, actor…), as JSON text.
    pub data: String,
    /// Tries so far.
    pub attempts: i32,
}

/// A mail to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    /// `<event id>:<user id>`.
    pub key: String,
    /// Recipient.
    pub user_id: i64,
    /// Kind.
    pub kind: String,
    /// The task.
    pub task_id: Option<i64>,
    /// The event.
    pub event_id: String,
    /// Template data.
    pub data: serde_json::Value,
    /// When queued.
    pub created_at: DateTime<Utc>,
}

/// Jobs of one queue by state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueueCounts {
    /// Waiting for their first try.
    pub pending: i64,
    /// Being sent right now (claimed by a sender).
    pub running: i64,
    /// Sent.
    pub done: i64,
    /// Failed, waiting for a retry.
    pub failed: i64,
    /// Failed for good (kept with the error).
    pub dead: i64,
}

/// A job whose last try failed: a mail of the `interactive` queue or a job of the `long` queue.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct JobFailure {
    /// Job id: the mail's id (digits) or the job storage's task id.
    pub id: String,
    /// Queue.
    pub queue: String,
    /// Job name.
    pub job: String,
    /// The mail's key (`<event id>:<user id>`), for mail.
    pub key: Option<String>,
    /// The mail's recipient, for mail.
    pub user_id: Option<i64>,
    /// Tries so far.
    pub attempts: i32,
    /// The last error.
    pub error: String,
    /// Dead (no more retries) or waiting for the next try.
    pub dead: bool,
    /// When the last try failed.
    pub failed_at: DateTime<Utc>,
}

/// A failed try of a `long` job, as the runner records it.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJobFailure {
    /// The job storage's task id.
    pub task_id: String,
    /// Queue.
    pub queue: String,
    /// Job name.
    pub job: String,
    /// The job as JSON (pushed again by a retry).
    pub args: String,
    /// The error.
    pub error: String,
    /// Tries after which the job is dead.
    pub max_attempts: i32,
    /// When it failed.
    pub at: DateTime<Utc>,
}

/// What the maintenance jobs store.
#[async_trait]
pub trait MaintainTx: Send {
    /// Live, not-done tasks past their due date whose overdue state was not announced yet for
    /// that due date, oldest due first.
    async fn overdue_unannounced(&mut self, now: DateTime<Utc>, limit: u32) -> Result<Vec<i64>>;
    /// Records that task `id` is announced overdue for due date `due`; false if it already was
    /// (or its due date changed meanwhile) — the fence that makes two scanners announce once.
    async fn mark_overdue_announced(&mut self, id: i64, due: DateTime<Utc>) -> Result<bool>;
    /// Archived tasks archived before `cutoff`, oldest first.
    async fn archived_before(&mut self, cutoff: DateTime<Utc>, limit: u32) -> Result<Vec<i64>>;
    /// Deletes tasks (their comments, history, assignees and tags go with them); returns how
    /// many rows went.
    async fn delete_tasks(&mut self, ids: &[i64]) -> Result<u64>;
    /// Active users, by id after `after`.
    async fn list_active_user_ids(&mut self, after: i64, limit: u32) -> Result<Vec<i64>>;
    /// A user's summary figures for the window `since..now`.
    async fn summary_counts(&mut self, user: i64, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<SummaryCounts>;
    /// Claims the summary of `user` for `day`; false if it was claimed before (at most once a day).
    async fn claim_summary(&mut self, user: i64, day: NaiveDate, now: DateTime<Utc>) -> Result<bool>;
    /// Queues a mail (once per key).
    async fn insert_mail(&mut self, m: &NewMail) -> Result<()>;
    /// Takes up to `limit` due mails until `until` under `token` (others skip them meanwhile).
    async fn claim_mail(
        &mut self,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        token: &str,
        limit: u32,
    ) -> Result<Vec<MailRow>>;
    /// Mail `id` if it still waits to be sent under `token` (`None`: sent, dead, or taken
    /// over by a later claim).
    async fn mail_for_send(&mut self, id: i64, token: &str) -> Result<Option<MailRow>>;
    /// Gives back a claim that was not handed over (due again at once).
    async fn release_mail(&mut self, id: i64, token: &str) -> Result<()>;
    /// Records a mail sent.
    async fn mail_sent(&mut self, id: i64, now: DateTime<Utc>) -> Result<()>;
    /// Records a failed try: retried at `retry_at`, or dead (`retry_at` = `None`) with the error kept.
    async fn mail_failed(
        &mut self,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()>;
    /// The mail queue by state at `now`.
    async fn mail_queue_counts(&mut self, now: DateTime<Utc>) -> Result<QueueCounts>;
    /// The latest mails whose last try failed, newest first.
    async fn mail_failures(&mut self, limit: u32) -> Result<Vec<JobFailure>>;
    /// Records a failed try of a job (its tries counted by task id); returns its failed tries
    /// so far.
    async fn record_job_failure(&mut self, f: &NewJobFailure) -> Result<i32>;
    /// Forgets the failures of a job that succeeded.
    async fn clear_job_failure(&mut self, task_id: &str) -> Result<()>;
    /// The latest failed jobs not retried by hand, newest first.
    async fn job_failures(&mut self, limit: u32) -> Result<Vec<JobFailure>>;
    /// A dead job not retried yet: its queue and arguments.
    async fn dead_job(&mut self, task_id: &str) -> Result<Option<(String, String)>>;
    /// Jobs with failed tries waiting for their next one, and dead jobs not retried by hand.
    async fn job_failure_counts(&mut self) -> Result<(i64, i64)>;
    /// Whether the job with task id `task_id` is dead (retried by hand or not).
    async fn job_is_dead(&mut self, task_id: &str) -> Result<bool>;
    /// Records that a dead job was pushed again.
    async fn job_retried(&mut self, task_id: &str, now: DateTime<Utc>) -> Result<()>;
    /// Puts a dead mail back in the queue, due at `now`; false if it is not dead.
    async fn revive_mail(&mut self, id: i64, now: DateTime<Utc>) -> Result<bool>;
}

/// Implements [`MaintainTx`] for `$tx`.
macro_rules! impl_maintain_tx {
    ($tx:ident, $db:ty, $skip_locked:expr) => {
        #[async_trait]
        impl $crate::store::maintain::MaintainTx for $tx {
            async fn overdue_unannounced(&mut self, now: DateTime<Utc>, limit: u32) -> Result<Vec<i64>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM tasks WHERE is_archived = FALSE AND status <> 'done' AND due_date < $1 \
                     AND (overdue_announced_for IS NULL OR overdue_announced_for <> due_date) ORDER BY due_date, id LIMIT $2",
                )
                .bind(now).bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn mark_overdue_announced(&mut self, id: i64, due: DateTime<Utc>) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE tasks SET overdue_announced_for = $2 WHERE id = $1 AND due_date = $2 \
                     AND (overdue_announced_for IS NULL OR overdue_announced_for <> $2)",
                )
                .bind(id).bind(due).execute(&mut *self.inner).await?;
                Ok(r.rows_affected() == 1)
            }

            async fn archived_before(&mut self, cutoff: DateTime<Utc>, limit: u32) -> Result<Vec<i64>> {
                Ok(sqlx::query_scalar(
                    "SELECT id FROM tasks WHERE is_archived = TRUE AND archived_at < $1 ORDER BY archived_at, id LIMIT $2",
                )
                .bind(cutoff).bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn delete_tasks(&mut self, ids: &[i64]) -> Result<u64> {
                if ids.is_empty() {
                    return Ok(0);
                }
                let mut qb = QueryBuilder::<$db>::new("DELETE FROM tasks WHERE id IN (");
                let mut sep = qb.separated(", ");
                for id in ids {
                    sep.push_bind(*id);
                }
                qb.push(")");
                Ok(qb.build().execute(&mut *self.inner).await?.rows_affected())
            }

            async fn list_active_user_ids(&mut self, after: i64, limit: u32) -> Result<Vec<i64>> {
                Ok(sqlx::query_scalar("SELECT id FROM users WHERE is_active = TRUE AND id > $1 ORDER BY id LIMIT $2")
                    .bind(after).bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn summary_counts(&mut self, user: i64, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<$crate::store::maintain::SummaryCounts> {
                let mine = "t.is_archived = FALSE AND EXISTS (SELECT 1 FROM task_assignees a WHERE a.task_id = t.id AND a.user_id = $1)";
                let one = |sql: String| sql;
                let newly: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM task_assignees a JOIN tasks t ON t.id = a.task_id \
                     WHERE a.user_id = $1 AND t.is_archived = FALSE AND a.assigned_at > $2 AND a.assigned_at <= $3",
                )
                .bind(user).bind(since).bind(now).fetch_one(&mut *self.inner).await?;
                let completed: i64 = sqlx::query_scalar(AssertSqlSafe(one(format!(
                    "SELECT COUNT(*) FROM tasks t WHERE {mine} AND t.status = 'done' AND t.completed_at > $2 AND t.completed_at <= $3"
                ))))
                .bind(user).bind(since).bind(now).fetch_one(&mut *self.inner).await?;
                let overdue: i64 = sqlx::query_scalar(AssertSqlSafe(one(format!(
                    "SELECT COUNT(*) FROM tasks t WHERE {mine} AND t.status <> 'done' AND t.due_date < $2"
                ))))
                .bind(user).bind(now).fetch_one(&mut *self.inner).await?;
                let pending: i64 = sqlx::query_scalar(AssertSqlSafe(one(format!(
                    "SELECT COUNT(*) FROM tasks t WHERE {mine} AND t.status <> 'done'"
                ))))
                .bind(user).fetch_one(&mut *self.inner).await?;
                Ok($crate::store::maintain::SummaryCounts { newly_assigned: newly, completed, overdue, pending })
            }

            async fn claim_summary(&mut self, user: i64, day: chrono::NaiveDate, now: DateTime<Utc>) -> Result<bool> {
                let r = sqlx::query(
                    "INSERT INTO daily_summaries (user_id, day, sent_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                )
                .bind(user).bind(day).bind(now).execute(&mut *self.inner).await?;
                Ok(r.rows_affected() == 1)
            }

            async fn insert_mail(&mut self, m: &$crate::store::maintain::NewMail) -> Result<()> {
                sqlx::query(
                    "INSERT INTO mail_outbox (key, user_id, kind, task_id, event_id, data, created_at, next_attempt_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $7) ON CONFLICT (key) DO NOTHING",
                )
                .bind(&m.key).bind(m.user_id).bind(&m.kind).bind(m.task_id).bind(&m.event_id).bind(Json(&m.data)).bind(m.created_at)
                .execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn claim_mail(&mut self, now: DateTime<Utc>, until: DateTime<Utc>, token: &str, limit: u32) -> Result<Vec<$crate::store::maintain::MailRow>> {
                let skip: &str = $skip_locked;
                let sql = format!(
                    "UPDATE mail_outbox SET locked_until = $2, lock_token = $4 WHERE id IN (SELECT id FROM mail_outbox \
                     WHERE sent_at IS NULL AND dead_at IS NULL AND next_attempt_at <= $1 \
                     AND (locked_until IS NULL OR locked_until < $1) ORDER BY next_attempt_at, id LIMIT $3{skip}) \
                     RETURNING id, key, user_id, kind, task_id, event_id, CAST(data AS TEXT) AS data, attempts"
                );
                let mut rows: Vec<$crate::store::maintain::MailRow> = sqlx::query_as(AssertSqlSafe(sql))
                    .bind(now).bind(until).bind(i64::from(limit)).bind(token).fetch_all(&mut *self.inner).await?;
                rows.sort_by_key(|r| r.id);
                Ok(rows)
            }

            async fn mail_for_send(&mut self, id: i64, token: &str) -> Result<Option<$crate::store::maintain::MailRow>> {
                Ok(sqlx::query_as(
                    "SELECT id, key, user_id, kind, task_id, event_id, CAST(data AS TEXT) AS data, attempts FROM mail_outbox \
                     WHERE id = $1 AND lock_token = $2 AND sent_at IS NULL AND dead_at IS NULL",
                )
                .bind(id).bind(token).fetch_optional(&mut *self.inner).await?)
            }

            async fn release_mail(&mut self, id: i64, token: &str) -> Result<()> {
                sqlx::query("UPDATE mail_outbox SET locked_until = NULL, lock_token = NULL WHERE id = $1 AND lock_token = $2")
                    .bind(id).bind(token).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn mail_sent(&mut self, id: i64, now: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE mail_outbox SET sent_at = $2, attempts = attempts + 1, locked_until = NULL, lock_token = NULL WHERE id = $1")
                    .bind(id).bind(now).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn mail_failed(&mut self, id: i64, error: &str, retry_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Result<()> {
                sqlx::query(
                    "UPDATE mail_outbox SET attempts = attempts + 1, last_error = $2, locked_until = NULL, lock_token = NULL, failed_at = $4, \
                     next_attempt_at = COALESCE($3, next_attempt_at), dead_at = CASE WHEN $3 IS NULL THEN $4 ELSE NULL END WHERE id = $1",
                )
                .bind(id).bind(error).bind(retry_at).bind(now).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn mail_queue_counts(&mut self, now: DateTime<Utc>) -> Result<$crate::store::maintain::QueueCounts> {
                let (pending, running, done, failed, dead): (i64, i64, i64, i64, i64) = sqlx::query_as(
                    "SELECT \
                     COALESCE(SUM(CASE WHEN sent_at IS NULL AND dead_at IS NULL AND last_error IS NULL AND (locked_until IS NULL OR locked_until < $1) THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN sent_at IS NULL AND dead_at IS NULL AND locked_until >= $1 THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN sent_at IS NOT NULL THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN sent_at IS NULL AND dead_at IS NULL AND last_error IS NOT NULL AND (locked_until IS NULL OR locked_until < $1) THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN dead_at IS NOT NULL THEN 1 ELSE 0 END), 0) FROM mail_outbox",
                )
                .bind(now).fetch_one(&mut *self.inner).await?;
                Ok($crate::store::maintain::QueueCounts { pending, running, done, failed, dead })
            }

            async fn mail_failures(&mut self, limit: u32) -> Result<Vec<$crate::store::maintain::JobFailure>> {
                Ok(sqlx::query_as(
                    "SELECT CAST(id AS TEXT) AS id, 'interactive' AS queue, \
                     CASE WHEN kind = 'daily_summary' THEN 'daily_summary' ELSE 'task_notification' END AS job, key, user_id, \
                     attempts, last_error AS error, dead_at IS NOT NULL AS dead, COALESCE(failed_at, created_at) AS failed_at FROM mail_outbox \
                     WHERE sent_at IS NULL AND last_error IS NOT NULL ORDER BY failed_at DESC, id DESC LIMIT $1",
                )
                .bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn record_job_failure(&mut self, f: &$crate::store::maintain::NewJobFailure) -> Result<i32> {
                let (attempts,): (i32,) = sqlx::query_as(
                    "INSERT INTO job_failures (task_id, queue, job, args, attempts, error, failed_at) \
                     VALUES ($1, $2, $3, $4, 1, $5, $6) ON CONFLICT (task_id) DO UPDATE SET \
                     attempts = job_failures.attempts + 1, error = excluded.error, failed_at = excluded.failed_at \
                     RETURNING attempts",
                )
                .bind(&f.task_id).bind(&f.queue).bind(&f.job).bind(&f.args).bind(&f.error).bind(f.at)
                .fetch_one(&mut *self.inner).await?;
                if attempts >= f.max_attempts {
                    sqlx::query("UPDATE job_failures SET dead_at = $2 WHERE task_id = $1")
                        .bind(&f.task_id).bind(f.at).execute(&mut *self.inner).await?;
                }
                Ok(attempts)
            }

            async fn clear_job_failure(&mut self, task_id: &str) -> Result<()> {
                sqlx::query("DELETE FROM job_failures WHERE task_id = $1").bind(task_id).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn job_failures(&mut self, limit: u32) -> Result<Vec<$crate::store::maintain::JobFailure>> {
                Ok(sqlx::query_as(
                    "SELECT task_id AS id, queue, job, CAST(NULL AS TEXT) AS key, CAST(NULL AS BIGINT) AS user_id, \
                     attempts, error, dead_at IS NOT NULL AS dead, failed_at FROM job_failures \
                     WHERE retried_at IS NULL ORDER BY failed_at DESC LIMIT $1",
                )
                .bind(i64::from(limit)).fetch_all(&mut *self.inner).await?)
            }

            async fn dead_job(&mut self, task_id: &str) -> Result<Option<(String, String)>> {
                Ok(sqlx::query_as(
                    "SELECT queue, args FROM job_failures WHERE task_id = $1 AND dead_at IS NOT NULL AND retried_at IS NULL",
                )
                .bind(task_id).fetch_optional(&mut *self.inner).await?)
            }

            async fn job_failure_counts(&mut self) -> Result<(i64, i64)> {
                Ok(sqlx::query_as(
                    "SELECT COALESCE(SUM(CASE WHEN dead_at IS NULL THEN 1 ELSE 0 END), 0), \
                     COALESCE(SUM(CASE WHEN dead_at IS NOT NULL AND retried_at IS NULL THEN 1 ELSE 0 END), 0) FROM job_failures",
                )
                .fetch_one(&mut *self.inner).await?)
            }

            async fn job_is_dead(&mut self, task_id: &str) -> Result<bool> {
                let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM job_failures WHERE task_id = $1 AND dead_at IS NOT NULL")
                    .bind(task_id).fetch_one(&mut *self.inner).await?;
                Ok(n > 0)
            }

            async fn job_retried(&mut self, task_id: &str, now: DateTime<Utc>) -> Result<()> {
                sqlx::query("UPDATE job_failures SET retried_at = $2 WHERE task_id = $1")
                    .bind(task_id).bind(now).execute(&mut *self.inner).await?;
                Ok(())
            }

            async fn revive_mail(&mut self, id: i64, now: DateTime<Utc>) -> Result<bool> {
                let r = sqlx::query(
                    "UPDATE mail_outbox SET dead_at = NULL, attempts = 0, next_attempt_at = $2, locked_until = NULL, lock_token = NULL \
                     WHERE id = $1 AND dead_at IS NOT NULL",
                )
                .bind(id).bind(now).execute(&mut *self.inner).await?;
                Ok(r.rows_affected() == 1)
            }
        }
    };
}

pub(crate) use impl_maintain_tx;

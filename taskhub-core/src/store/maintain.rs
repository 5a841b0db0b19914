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
}

/// Implements [`MaintainTx`] for `$tx`.
macro_rules! impl_maintain_tx {
    ($tx:ident, $db:ty) => {
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
        }
    };
}

pub(crate) use impl_maintain_tx;

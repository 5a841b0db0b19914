//! SQLite backend (feature `sqlite`): the embedded default.
//!
//! WAL journal, foreign keys on, and write transactions that take the write lock at `BEGIN`
//! (`BEGIN IMMEDIATE`) so two writers never deadlock upgrading a read lock.

use super::consume::{SearchRow, impl_consume_tx, push_visibility};
use super::maintain::impl_maintain_tx;
use super::sql::*;
use super::sql_tx::{Inner, impl_tx};
use super::{AuthState, Backend, IdempotencyRecord, RefreshUse, Store, TaskRow, Tx, Visibility};
use crate::error::{Error, Result};
use crate::events::{EventEnvelope, OutboxRecord};
use crate::history::{HistoryEntry, NewHistory};
use crate::tasks::{
    ArchivedFilter, Assignee, Comment, OrderField, Tag, Task, TaskFilter, TaskPosition, Template, TemplateDefaults,
};
use crate::teams::{Memberships, TeamRecord};
use crate::users::{NewUser, User, normalize_email};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, QueryBuilder, Sqlite, SqlitePool};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A SQLite database.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// Writers of this process take turns here, in arrival order, instead of polling SQLite's
    /// busy handler (which sleeps up to 100 ms between tries and makes the latency tail long).
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` and applies the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let opts = SqliteConnectOptions::from_str(url)
            .map_err(|e| Error::Config(format!("invalid SQLite URL: {e}")))?
            .create_if_missing(true)
            .foreign_keys(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(Duration::from_secs(10));
        // An in-memory database lives in one connection; more would each see their own.
        let max = if url.contains(":memory:") || url.contains("mode=memory") { 1 } else { max_connections.max(1) };
        let pool = SqlitePoolOptions::new().max_connections(max).connect_with(opts).await?;
        MIGRATOR.run(&pool).await?;
        Ok(SqliteStore { pool, writer: Arc::default() })
    }

    /// The pool, for embedding apps that keep their own tables beside TaskHub's.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

#[async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        let turn = self.writer.clone().lock_owned().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Box::new(SqliteTx { inner: Inner::Tx(tx), writer: Some(turn) }))
    }

    async fn read(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(SqliteTx { inner: Inner::Tx(self.pool.begin().await?), writer: None }))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

impl_tx!(SqliteTx, Sqlite, "t.title", "");
impl_consume_tx!(SqliteTx, Sqlite, "", fts_index, fts_unindex, fts_search);

async fn fts_index(c: &mut Inner<Sqlite>, task: i64, title: &str, body: &str) -> Result<()> {
    sqlx::query("DELETE FROM task_search WHERE rowid = $1").bind(task).execute(&mut **c).await?;
    sqlx::query("INSERT INTO task_search (rowid, title, body) VALUES ($1, $2, $3)")
        .bind(task)
        .bind(title)
        .bind(body)
        .execute(&mut **c)
        .await?;
    Ok(())
}

async fn fts_unindex(c: &mut Inner<Sqlite>, task: i64) -> Result<()> {
    sqlx::query("DELETE FROM task_search WHERE rowid = $1").bind(task).execute(&mut **c).await?;
    Ok(())
}

/// FTS5 with every term required; BM25 with the title weighing 10 times the body.
async fn fts_search(
    c: &mut Inner<Sqlite>,
    vis: &Visibility,
    terms: &[String],
    offset: u32,
    limit: u32,
) -> Result<Vec<SearchRow>> {
    // Terms are runs of letters and digits (see `search::terms`): quoting each one makes it a
    // plain phrase, never FTS5 syntax.
    let expr = terms.iter().map(|t| format!("\"{t}\"")).collect::<Vec<_>>().join(" ");
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT t.id AS task_id, t.title, t.description, -bm25(task_search, 10.0, 1.0) AS relevance \
         FROM task_search JOIN tasks t ON t.id = task_search.rowid WHERE task_search MATCH ",
    );
    qb.push_bind(expr).push(" AND t.is_archived = FALSE");
    push_visibility(&mut qb, vis);
    qb.push(" ORDER BY relevance DESC, t.id LIMIT ").push_bind(i64::from(limit));
    qb.push(" OFFSET ").push_bind(i64::from(offset));
    Ok(qb.build_query_as().fetch_all(&mut **c).await?)
}

impl_maintain_tx!(SqliteTx, Sqlite, "");

//! PostgreSQL backend (feature `postgres`): the scale-out store.

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
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, PgPool, Postgres, QueryBuilder};
use std::str::FromStr;
use std::time::Duration;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// A PostgreSQL database.
#[derive(Debug, Clone)]
pub struct PgStore {
    pool: PgPool,
}

impl PgStore {
    /// Connects to the database at `url` and applies the migrations.
    pub async fn connect(url: &str, max_connections: u32) -> Result<Self> {
        let opts =
            PgConnectOptions::from_str(url).map_err(|e| Error::Config(format!("invalid PostgreSQL URL: {e}")))?;
        let pool = PgPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(opts)
            .await?;
        MIGRATOR.run(&pool).await?;
        Ok(PgStore { pool })
    }

    /// The pool, for embedding apps that keep their own tables beside TaskHub's.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }
}

#[async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn begin(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(PgTx { inner: Inner::Tx(self.pool.begin().await?), writer: None }))
    }

    /// Reads run in autocommit: at READ COMMITTED each statement takes its own snapshot inside a
    /// transaction too, so BEGIN/ROLLBACK would only cost two round trips.
    async fn read(&self) -> Result<Box<dyn Tx>> {
        Ok(Box::new(PgTx { inner: Inner::Conn(self.pool.acquire().await?), writer: None }))
    }

    async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn pool_stats(&self) -> (u32, usize) {
        (self.pool.size(), self.pool.num_idle())
    }
}

impl_tx!(PgTx, Postgres, "t.title COLLATE \"C\"", " FOR UPDATE");
impl_consume_tx!(
    PgTx,
    Postgres,
    "LOCK TABLE audit_log IN SHARE ROW EXCLUSIVE MODE",
    fts_index,
    fts_unindex,
    fts_search
);

async fn fts_index(c: &mut Inner<Postgres>, task: i64, title: &str, body: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO task_search (task_id, document) \
         VALUES ($1, setweight(to_tsvector('simple', $2), 'A') || setweight(to_tsvector('simple', $3), 'B')) \
         ON CONFLICT (task_id) DO UPDATE SET document = EXCLUDED.document",
    )
    .bind(task)
    .bind(title)
    .bind(body)
    .execute(&mut **c)
    .await?;
    Ok(())
}

async fn fts_unindex(c: &mut Inner<Postgres>, task: i64) -> Result<()> {
    sqlx::query("DELETE FROM task_search WHERE task_id = $1").bind(task).execute(&mut **c).await?;
    Ok(())
}

/// tsvector + GIN with every term required; `ts_rank` with the title weighing A, the body B.
async fn fts_search(
    c: &mut Inner<Postgres>,
    vis: &Visibility,
    terms: &[String],
    offset: u32,
    limit: u32,
) -> Result<Vec<SearchRow>> {
    // Terms are runs of letters and digits (see `search::terms`); quoted, each is one lexeme.
    let expr = terms.iter().map(|t| format!("'{t}'")).collect::<Vec<_>>().join(" & ");
    let mut qb = QueryBuilder::<Postgres>::new(
        "SELECT t.id AS task_id, t.title, t.description, ts_rank(s.document, q)::float8 AS relevance \
         FROM task_search s JOIN tasks t ON t.id = s.task_id, to_tsquery('simple', ",
    );
    qb.push_bind(expr).push(") q WHERE s.document @@ q AND t.is_archived = FALSE");
    push_visibility(&mut qb, vis);
    qb.push(" ORDER BY relevance DESC, t.id LIMIT ").push_bind(i64::from(limit));
    qb.push(" OFFSET ").push_bind(i64::from(offset));
    Ok(qb.build_query_as().fetch_all(&mut **c).await?)
}

impl_maintain_tx!(PgTx, Postgres, " FOR UPDATE SKIP LOCKED");

//! Storage behind traits: a [`Store`] hands out transactions ([`Tx`]); every command of the
//! services runs in exactly one of them, so the domain change, its history row, its outbox
//! rows and its idempotency record commit together or not at all.
//!
//! Backends: `sqlite` and `postgres` (features), chosen at run time by [`connect`].

use crate::error::{Error, Result};
use crate::events::{EventEnvelope, OutboxRecord};
use crate::history::{HistoryEntry, NewHistory};
use crate::tasks::{Comment, Tag, Task, TaskFilter, TaskPosition, Template, TemplateDefaults};
use crate::teams::{Memberships, TeamRecord};
use crate::users::{NewUser, User};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::sync::Arc;

pub mod consume;
pub mod maintain;
#[cfg(feature = "postgres")]
pub mod postgres;
mod sql;
mod sql_tx;
#[cfg(feature = "sqlite")]
pub mod sqlite;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (embedded).
    Sqlite,
    /// PostgreSQL.
    Postgres,
}

/// Who may see which tasks, as the store applies it to lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Visibility {
    /// Every task (staff).
    All,
    /// Tasks the user created, is assigned to, or whose team they belong to.
    User {
        /// The viewer.
        id: i64,
    },
}

/// The writable columns of a task row.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskRow {
    /// Title.
    pub title: String,
    /// Description.
    pub description: String,
    /// Status name.
    pub status: &'static str,
    /// Priority rank.
    pub priority: i16,
    /// Due date.
    pub due_date: Option<DateTime<Utc>>,
    /// Hundredths of an hour.
    pub estimated_hours: Option<i32>,
    /// Hundredths of an hour.
    pub actual_hours: Option<i32>,
    /// Creator.
    pub created_by: Option<i64>,
    /// Team.
    pub assigned_team: Option<i64>,
    /// Parent.
    pub parent_task: Option<i64>,
    /// Metadata object.
    pub metadata: serde_json::Value,
    /// Archived flag.
    pub is_archived: bool,
    /// When archived.
    pub archived_at: Option<DateTime<Utc>>,
    /// When it entered done.
    pub completed_at: Option<DateTime<Utc>>,
    /// Creation time (ignored on update).
    pub created_at: DateTime<Utc>,
    /// Change time.
    pub updated_at: DateTime<Utc>,
}

/// A stored idempotency record.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    /// Hash of the request it was first used with.
    pub request_hash: String,
    /// `None` while the first request is still running.
    pub response: Option<(u16, serde_json::Value)>,
    /// When the key was first used.
    pub created_at: DateTime<Utc>,
}

/// What presenting a refresh token found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshUse {
    /// First use: the token is now spent.
    Fresh {
        /// Its family.
        family: String,
        /// Its user.
        user_id: i64,
    },
    /// The token was spent before: a replay.
    Reused {
        /// Its family.
        family: String,
        /// Its user.
        user_id: i64,
    },
    /// Never issued here.
    Unknown,
}

/// What authenticating a request needs to know about its user and token, read in one query.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AuthState {
    /// The user may still log in.
    pub is_active: bool,
    /// The user is staff now (not when the token was issued).
    pub is_staff: bool,
    /// The access token was revoked (logout).
    pub revoked: bool,
}

/// A storage engine: opens transactions.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait Store: Send + Sync {
    /// The engine.
    fn backend(&self) -> Backend;
    /// Starts a read-write transaction (on SQLite it takes the write lock at once).
    async fn begin(&self) -> Result<Box<dyn Tx>>;
    /// Starts a read-only transaction.
    async fn read(&self) -> Result<Box<dyn Tx>>;
    /// Checks the database answers.
    async fn ping(&self) -> Result<()>;
    /// Connections in the pool: (open, idle).
    fn pool_stats(&self) -> (u32, usize);
}

/// One transaction. Dropped without [`Tx::commit`], it rolls back.
#[async_trait]
pub trait Tx: consume::ConsumeTx + maintain::MaintainTx + Send {
    /// Commits every write of this transaction.
    async fn commit(self: Box<Self>) -> Result<()>;

    // ---- users
    /// Inserts a user; a taken username or e-mail is a [`Error::Conflict`]-mapped unique error.
    async fn insert_user(&mut self, u: &NewUser) -> Result<User>;
    /// A user by id.
    async fn get_user(&mut self, id: i64) -> Result<Option<User>>;
    /// A user and password hash by lower-cased username.
    async fn get_user_credentials(&mut self, username_key: &str) -> Result<Option<(User, String)>>;
    /// The password hash of a user.
    async fn get_password_hash(&mut self, id: i64) -> Result<Option<String>>;
    /// Writes a user's profile fields (and the password hash when given).
    async fn update_user(&mut self, u: &User, password_hash: Option<&str>) -> Result<User>;
    /// A page of users by id, filtered by `search` (lower-cased) on names.
    async fn list_users(&mut self, search: Option<&str>, after: Option<i64>, limit: u32) -> Result<Vec<User>>;
    /// Number of users matching `search`.
    async fn count_users(&mut self, search: Option<&str>) -> Result<i64>;
    /// Which of `ids` are active users.
    async fn active_user_ids(&mut self, ids: &[i64]) -> Result<Vec<i64>>;

    // ---- teams
    /// Inserts a team with its admin as the first member.
    async fn insert_team(
        &mut self,
        name: &str,
        description: &str,
        admin: i64,
        now: DateTime<Utc>,
    ) -> Result<TeamRecord>;
    /// A team by id.
    async fn get_team(&mut self, id: i64) -> Result<Option<TeamRecord>>;
    /// Writes name and description if the version still is `expected`; `None` if it is not.
    async fn update_team(
        &mut self,
        id: i64,
        name: &str,
        description: &str,
        expected: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<TeamRecord>>;
    /// Deletes a team; its tasks keep existing with no team.
    async fn delete_team(&mut self, id: i64) -> Result<()>;
    /// Teams by id; `member` restricts to teams that user belongs to.
    async fn list_teams(&mut self, member: Option<i64>, after: Option<i64>, limit: u32) -> Result<Vec<TeamRecord>>;
    /// Members of a team by id.
    async fn list_team_members(&mut self, team: i64, after: Option<i64>, limit: u32) -> Result<Vec<User>>;
    /// Adds members; returns the ids that were not members before.
    async fn add_team_members(&mut self, team: i64, users: &[i64], now: DateTime<Utc>) -> Result<Vec<i64>>;
    /// Removes a member; false if they were not one.
    async fn remove_team_member(&mut self, team: i64, user: i64) -> Result<bool>;
    /// The teams `user` belongs to and administers.
    async fn memberships(&mut self, user: i64) -> Result<Memberships>;
    /// Bumps a team's version and `updated_at` (membership changes).
    async fn touch_team(&mut self, team: i64, now: DateTime<Utc>) -> Result<()>;

    // ---- tasks
    /// Inserts a task row; returns its id.
    async fn insert_task(&mut self, t: &TaskRow) -> Result<i64>;
    /// A task with its assignees and tags.
    async fn get_task(&mut self, id: i64) -> Result<Option<Task>>;
    /// A task, locked against concurrent writers until this transaction ends.
    async fn lock_task(&mut self, id: i64) -> Result<Option<Task>>;
    /// The parent of a task (for cycle checks): `None` if the task is missing.
    async fn get_parent(&mut self, id: i64) -> Result<Option<Option<i64>>>;
    /// Writes a task row if its version still is `expected` (then version + 1); false if not.
    async fn update_task(&mut self, id: i64, t: &TaskRow, expected: i64) -> Result<bool>;
    /// Replaces the assignees of a task.
    async fn set_assignees(&mut self, task: i64, assignees: &[crate::tasks::Assignee]) -> Result<()>;
    /// Replaces the tags of a task, creating missing tags (names matched case-insensitively).
    async fn set_tags(&mut self, task: i64, names: &[String], now: DateTime<Utc>) -> Result<()>;
    /// A page of tasks visible under `vis` matching `f`, after `after`.
    async fn list_tasks(
        &mut self,
        f: &TaskFilter,
        vis: &Visibility,
        after: Option<&TaskPosition>,
        limit: u32,
    ) -> Result<Vec<Task>>;
    /// Number of tasks visible under `vis` matching `f`.
    async fn count_tasks(&mut self, f: &TaskFilter, vis: &Visibility) -> Result<i64>;

    // ---- tags
    /// Tags by id.
    async fn list_tags(&mut self, after: Option<i64>, limit: u32) -> Result<Vec<Tag>>;
    /// A tag by id.
    async fn get_tag(&mut self, id: i64) -> Result<Option<Tag>>;
    /// Inserts a tag; a taken name is a conflict.
    async fn insert_tag(&mut self, name: &str, color: Option<&str>, now: DateTime<Utc>) -> Result<Tag>;
    /// Writes a tag; a taken name is a conflict.
    async fn update_tag(&mut self, id: i64, name: &str, color: Option<&str>) -> Result<Option<Tag>>;
    /// Deletes a tag (and its uses).
    async fn delete_tag(&mut self, id: i64) -> Result<bool>;

    // ---- templates
    /// Inserts a template.
    async fn insert_template(
        &mut self,
        name: &str,
        description: &str,
        defaults: &TemplateDefaults,
        owner: i64,
        now: DateTime<Utc>,
    ) -> Result<Template>;
    /// A template by id.
    async fn get_template(&mut self, id: i64) -> Result<Option<Template>>;
    /// Writes a template if its version still is `expected`.
    async fn update_template(
        &mut self,
        id: i64,
        name: &str,
        description: &str,
        defaults: &TemplateDefaults,
        expected: i64,
    ) -> Result<Option<Template>>;
    /// Deletes a template.
    async fn delete_template(&mut self, id: i64) -> Result<()>;
    /// Templates by id; `owner` restricts to one user's.
    async fn list_templates(&mut self, owner: Option<i64>, after: Option<i64>, limit: u32) -> Result<Vec<Template>>;

    // ---- comments
    /// Inserts a comment.
    async fn insert_comment(&mut self, task: i64, author: i64, body: &str, now: DateTime<Utc>) -> Result<Comment>;
    /// A comment of a task.
    async fn get_comment(&mut self, task: i64, id: i64) -> Result<Option<Comment>>;
    /// Writes a comment body if its version still is `expected`.
    async fn update_comment(
        &mut self,
        id: i64,
        body: &str,
        expected: i64,
        now: DateTime<Utc>,
    ) -> Result<Option<Comment>>;
    /// Deletes a comment.
    async fn delete_comment(&mut self, id: i64) -> Result<()>;
    /// Comments of a task, oldest first.
    async fn list_comments(&mut self, task: i64, after: Option<i64>, limit: u32) -> Result<Vec<Comment>>;

    // ---- history
    /// Appends a history row.
    async fn insert_history(&mut self, h: &NewHistory) -> Result<i64>;
    /// History of a task, newest first, before the row id `before`.
    async fn list_history(
        &mut self,
        task: i64,
        before: Option<(DateTime<Utc>, i64)>,
        limit: u32,
    ) -> Result<Vec<HistoryEntry>>;

    // ---- outbox
    /// Appends an event to the outbox.
    async fn insert_outbox(&mut self, e: &EventEnvelope) -> Result<i64>;
    /// Outbox rows after `after`, in order.
    async fn list_outbox(&mut self, after: i64, limit: u32) -> Result<Vec<OutboxRecord>>;
    /// The oldest unpublished outbox rows, in order.
    async fn list_unpublished(&mut self, limit: u32) -> Result<Vec<OutboxRecord>>;
    /// Marks rows published — only while `holder` still holds lease `lease` (a fenced write).
    async fn mark_published(&mut self, ids: &[i64], now: DateTime<Utc>, lease: &str, holder: &str) -> Result<u64>;
    /// Gives lease `name` up if `holder` holds it, so another may take it at once.
    async fn release_lease(&mut self, name: &str, holder: &str) -> Result<()>;
    /// Takes or renews lease `name` for `holder` until `until`; false while another holds it.
    async fn acquire_lease(
        &mut self,
        name: &str,
        holder: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> Result<bool>;

    // ---- tokens
    /// Starts a refresh-token family (one per login).
    async fn insert_token_family(
        &mut self,
        family: &str,
        user: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// Records an issued refresh token and the access token issued with it.
    async fn insert_refresh_token(
        &mut self,
        jti: &str,
        access_jti: &str,
        family: &str,
        user: i64,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<()>;
    /// The family of the refresh token issued together with access token `access_jti`.
    async fn family_of_access(&mut self, access_jti: &str) -> Result<Option<String>>;
    /// Spends a refresh token, atomically: only one caller ever gets [`RefreshUse::Fresh`].
    async fn use_refresh_token(&mut self, jti: &str, now: DateTime<Utc>) -> Result<RefreshUse>;
    /// Whether a family was revoked (`None` if unknown).
    async fn family_revoked(&mut self, family: &str) -> Result<Option<bool>>;
    /// Revokes a family: none of its refresh tokens works again.
    async fn revoke_family(&mut self, family: &str, now: DateTime<Utc>, reason: &str) -> Result<()>;
    /// Revokes every family of a user (deactivation).
    async fn revoke_user_families(&mut self, user: i64, now: DateTime<Utc>, reason: &str) -> Result<()>;
    /// Revokes an access token until it expires.
    async fn revoke_access_token(&mut self, jti: &str, user: i64, expires_at: DateTime<Utc>) -> Result<()>;
    /// The user's state and whether `jti` was revoked, in one read.
    async fn auth_state(&mut self, user: i64, jti: &str) -> Result<Option<AuthState>>;
    /// Failed logins in a row for a username, and until when it is blocked.
    async fn login_failures(&mut self, username_key: &str) -> Result<Option<(i32, Option<DateTime<Utc>>)>>;
    /// Records a failed login.
    async fn record_login_failure(
        &mut self,
        username_key: &str,
        failures: i32,
        now: DateTime<Utc>,
        blocked_until: Option<DateTime<Utc>>,
    ) -> Result<()>;
    /// Forgets failed logins (after a success).
    async fn clear_login_failures(&mut self, username_key: &str) -> Result<()>;
    /// Deletes expired refresh tokens, families and revocations; returns rows removed.
    async fn purge_expired_tokens(&mut self, now: DateTime<Utc>) -> Result<u64>;

    // ---- idempotency
    /// Claims `(user, key)` for a request; returns the existing record if the key was used.
    async fn claim_idempotency(
        &mut self,
        user: i64,
        key: &str,
        request_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<Option<IdempotencyRecord>>;
    /// Stores the response of a claimed key.
    async fn complete_idempotency(&mut self, user: i64, key: &str, status: u16, body: &serde_json::Value)
    -> Result<()>;
    /// Forgets a claimed key whose request did not complete (so it may be retried).
    async fn release_idempotency(&mut self, user: i64, key: &str) -> Result<()>;
    /// Forgets keys older than `before`.
    async fn purge_idempotency(&mut self, before: DateTime<Utc>) -> Result<u64>;
}

/// Connects to the database named by `url` (`sqlite:…` or `postgres://…`) and applies the
/// embedded migrations.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    connect_with(url, 10).await
}

/// As [`connect`], with a pool of at most `max_connections`.
pub async fn connect_with(url: &str, max_connections: u32) -> Result<Arc<dyn Store>> {
    if url.starts_with("sqlite:") {
        #[cfg(feature = "sqlite")]
        return Ok(Arc::new(sqlite::SqliteStore::connect(url, max_connections).await?));
        #[cfg(not(feature = "sqlite"))]
        return Err(Error::Config("this build has no SQLite support (feature `sqlite`)".into()));
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        #[cfg(feature = "postgres")]
        return Ok(Arc::new(postgres::PgStore::connect(url, max_connections).await?));
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Config("this build has no PostgreSQL support (feature `postgres`)".into()));
    }
    Err(Error::Config(format!("database URL must start with sqlite: or postgres:// (got {})", redact_url(url))))
}

/// A URL with its password replaced by `***`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        Ok(u) => u.to_string(),
        Err(_) => "<unparseable URL>".to_owned(),
    }
}

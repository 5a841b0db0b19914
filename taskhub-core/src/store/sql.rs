//! What the SQLite and PostgreSQL backends share: row types, column lists, error mapping and
//! the [`impl_tx!`] macro that implements [`super::Tx`] once for both engines.
//!
//! Both engines run the same SQL text (`$n` placeholders work on both); the few dialect
//! differences are passed to the macro as parameters.

use crate::error::{Error, Result};
use crate::events::{EventEnvelope, OutboxRecord};
use crate::history::{HistoryAction, HistoryEntry};
use crate::tasks::{Assignee, AssigneeRole, Hours, Priority, Task, TaskStatus, Template, TemplateDefaults};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::types::Json;
use std::collections::HashMap;

pub(crate) const USER_COLS: &str =
    "id, username, display_name, first_name, last_name, email, is_staff, is_active, date_joined";

pub(crate) const TEAM_SELECT: &str = "SELECT t.id, t.name, t.description, t.created_by, t.admin_id, \
     (SELECT COUNT(*) FROM team_members m WHERE m.team_id = t.id) AS member_count, \
     t.created_at, t.updated_at, t.version FROM teams t";

pub(crate) const TASK_COLS: &str = "t.id, t.title, t.description, t.status, t.priority, t.due_date, \
     t.estimated_hours, t.actual_hours, t.created_by, t.assigned_team, t.parent_task, t.metadata, \
     t.is_archived, t.archived_at, t.completed_at, t.created_at, t.updated_at, t.version";

pub(crate) const TAG_SELECT: &str = "SELECT g.id, g.name, g.color, \
     (SELECT COUNT(*) FROM task_tags tt JOIN tasks t ON t.id = tt.task_id \
      WHERE tt.tag_id = g.id AND t.is_archived = FALSE) AS task_count FROM tags g";

pub(crate) const TEMPLATE_COLS: &str = "id, name, description, defaults, created_by, created_at, version";

pub(crate) const COMMENT_COLS: &str = "id, task_id, author, body, created_at, updated_at, version";

#[derive(sqlx::FromRow)]
pub(crate) struct TaskDbRow {
    id: i64,
    title: String,
    description: String,
    status: String,
    priority: i16,
    due_date: Option<DateTime<Utc>>,
    estimated_hours: Option<i32>,
    actual_hours: Option<i32>,
    created_by: Option<i64>,
    assigned_team: Option<i64>,
    parent_task: Option<i64>,
    metadata: Json<Value>,
    is_archived: bool,
    archived_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    version: i64,
}

impl TaskDbRow {
    pub(crate) fn id(&self) -> i64 {
        self.id
    }

    pub(crate) fn into_task(self, assignees: Vec<Assignee>, tags: Vec<String>) -> Result<Task> {
        let corrupt = |what: &str| Error::internal(format!("task {}: stored {what} is invalid", self.id));
        let hours = |h: Option<i32>| h.map(Hours::from_hundredths).transpose().map_err(|_| corrupt("hours"));
        Ok(Task {
            id: self.id,
            status: TaskStatus::parse(&self.status).map_err(|_| corrupt("status"))?,
            priority: Priority::from_rank(self.priority).ok_or_else(|| corrupt("priority"))?,
            estimated_hours: hours(self.estimated_hours)?,
            actual_hours: hours(self.actual_hours)?,
            title: self.title,
            description: self.description,
            due_date: self.due_date,
            created_by: self.created_by,
            assigned_team: self.assigned_team,
            assignees,
            tags,
            parent_task: self.parent_task,
            metadata: self.metadata.0,
            is_archived: self.is_archived,
            is_overdue: false,
            created_at: self.created_at,
            updated_at: self.updated_at,
            archived_at: self.archived_at,
            completed_at: self.completed_at,
            version: self.version,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct AssigneeDbRow {
    task_id: i64,
    user_id: i64,
    role: String,
    assigned_by: Option<i64>,
    assigned_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
pub(crate) struct TagNameRow {
    task_id: i64,
    name: String,
}

/// Groups assignee and tag rows by task and builds the tasks, keeping `rows`' order.
pub(crate) fn assemble_tasks(
    rows: Vec<TaskDbRow>,
    assignees: Vec<AssigneeDbRow>,
    tags: Vec<TagNameRow>,
) -> Result<Vec<Task>> {
    let mut by_task: HashMap<i64, Vec<Assignee>> = HashMap::new();
    for a in assignees {
        let role =
            AssigneeRole::parse(&a.role).map_err(|_| Error::internal(format!("task {}: invalid role", a.task_id)))?;
        by_task.entry(a.task_id).or_default().push(Assignee {
            user_id: a.user_id,
            role,
            assigned_by: a.assigned_by,
            assigned_at: a.assigned_at,
        });
    }
    let mut tags_by_task: HashMap<i64, Vec<String>> = HashMap::new();
    for t in tags {
        tags_by_task.entry(t.task_id).or_default().push(t.name);
    }
    rows.into_iter()
        .map(|r| {
            let id = r.id;
            r.into_task(by_task.remove(&id).unwrap_or_default(), tags_by_task.remove(&id).unwrap_or_default())
        })
        .collect()
}

#[derive(sqlx::FromRow)]
pub(crate) struct TemplateDbRow {
    id: i64,
    name: String,
    description: String,
    defaults: Json<TemplateDefaults>,
    created_by: Option<i64>,
    created_at: DateTime<Utc>,
    version: i64,
}

impl From<TemplateDbRow> for Template {
    fn from(r: TemplateDbRow) -> Self {
        Template {
            id: r.id,
            name: r.name,
            description: r.description,
            defaults: r.defaults.0,
            created_by: r.created_by,
            created_at: r.created_at,
            version: r.version,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct HistoryDbRow {
    id: i64,
    task_id: i64,
    action: String,
    actor: Option<i64>,
    changes: Json<Value>,
    created_at: DateTime<Utc>,
}

impl TryFrom<HistoryDbRow> for HistoryEntry {
    type Error = Error;
    fn try_from(r: HistoryDbRow) -> Result<Self> {
        Ok(HistoryEntry {
            id: r.id,
            task_id: r.task_id,
            action: HistoryAction::parse(&r.action)
                .ok_or_else(|| Error::internal(format!("history {}: unknown action {}", r.id, r.action)))?,
            actor: r.actor,
            changes: r.changes.0,
            created_at: r.created_at,
        })
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct OutboxDbRow {
    id: i64,
    topic: String,
    partition_key: String,
    payload: Json<EventEnvelope>,
    published_at: Option<DateTime<Utc>>,
}

impl From<OutboxDbRow> for OutboxRecord {
    fn from(r: OutboxDbRow) -> Self {
        OutboxRecord {
            id: r.id,
            topic: r.topic,
            key: r.partition_key,
            event: r.payload.0,
            published_at: r.published_at,
        }
    }
}

#[derive(sqlx::FromRow)]
pub(crate) struct IdempotencyDbRow {
    pub(crate) request_hash: String,
    pub(crate) response_status: Option<i32>,
    pub(crate) response_body: Option<Json<Value>>,
    pub(crate) created_at: DateTime<Utc>,
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern and wraps it in `%…%`.
pub(crate) fn like_pattern(s: &str) -> String {
    let mut p = String::with_capacity(s.len() + 2);
    p.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// Maps a unique or foreign-key violation to a domain error by the constraint it names
/// (PostgreSQL reports the constraint name; SQLite reports `table.column` in the message —
/// the PostgreSQL constraints carry those same names). Anything else is internal.
pub(crate) fn map_unique(e: sqlx::Error) -> Error {
    let sqlx::Error::Database(db) = &e else {
        return Error::from(e);
    };
    let target = db
        .constraint()
        .map(str::to_owned)
        .or_else(|| db.message().split("constraint failed: ").nth(1).map(|s| s.trim().to_owned()))
        .unwrap_or_default();
    match db.kind() {
        sqlx::error::ErrorKind::UniqueViolation => match target.as_str() {
            "users.username_key" => Error::Conflict("a user with that username already exists".into()),
            "users.email_key" => Error::Conflict("a user with that e-mail already exists".into()),
            "tags.name_key" => Error::Conflict("a tag with that name already exists".into()),
            _ => Error::from(e),
        },
        sqlx::error::ErrorKind::ForeignKeyViolation => {
            Error::Conflict("a record this change refers to no longer exists".into())
        }
        _ => Error::from(e),
    }
}

/// Reads a stored HTTP status back.
pub(crate) fn status_u16(s: i32) -> u16 {
    u16::try_from(s).unwrap_or(500)
}

//! List queries over tasks: filters and ordering as clients send them, and their validated form.

use super::input::parse_timestamp;
use super::model::{Priority, TaskStatus};
use crate::validation::Violations;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Filters and ordering of `GET /api/tasks/` as query-string values.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
pub struct TaskQuery {
    /// Comma list of statuses.
    pub status: Option<String>,
    /// Comma list of priorities.
    pub priority: Option<String>,
    /// A tag name (case-insensitive).
    pub tag: Option<String>,
    /// A user id or `me`.
    pub assignee: Option<String>,
    /// A team id.
    pub team: Option<String>,
    /// A creator id.
    pub created_by: Option<String>,
    /// `false` (default), `true` or `all`.
    pub archived: Option<String>,
    /// `true` for overdue tasks only, `false` for the others.
    pub overdue: Option<String>,
    /// RFC 3339 upper bound on `due_date` (exclusive).
    pub due_before: Option<String>,
    /// RFC 3339 lower bound on `due_date` (inclusive).
    pub due_after: Option<String>,
    /// Case-insensitive text in title or description.
    pub search: Option<String>,
    /// `created_at`, `updated_at`, `due_date`, `priority`, `title`, `-` prefix for descending.
    pub ordering: Option<String>,
}

/// Which archived state a list shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ArchivedFilter {
    /// Only live tasks (default).
    #[default]
    Live,
    /// Only archived tasks.
    Archived,
    /// Both.
    All,
}

/// A field tasks can be ordered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OrderField {
    /// Creation time.
    CreatedAt,
    /// Last change.
    UpdatedAt,
    /// Due date (tasks without one come last in both directions).
    DueDate,
    /// Priority rank.
    Priority,
    /// Title (byte order).
    Title,
}

/// The validated form of a [`TaskQuery`].
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFilter {
    /// Any of these statuses (empty = any).
    pub statuses: Vec<TaskStatus>,
    /// Any of these priorities (empty = any).
    pub priorities: Vec<Priority>,
    /// Carrying this tag (lower-cased name).
    pub tag: Option<String>,
    /// Assigned to this user.
    pub assignee: Option<i64>,
    /// Of this team.
    pub team: Option<i64>,
    /// Created by this user.
    pub created_by: Option<i64>,
    /// Archived state.
    pub archived: ArchivedFilter,
    /// `Some(true)`: overdue only; `Some(false)`: not overdue.
    pub overdue: Option<bool>,
    /// `due_date < due_before`.
    pub due_before: Option<DateTime<Utc>>,
    /// `due_date >= due_after`.
    pub due_after: Option<DateTime<Utc>>,
    /// Lower-cased search text.
    pub search: Option<String>,
    /// Order field.
    pub order: OrderField,
    /// Descending?
    pub desc: bool,
    /// The instant `overdue` is judged at.
    pub now: DateTime<Utc>,
}

impl TaskFilter {
    /// No filter, newest first, judged at `now`.
    pub fn all(now: DateTime<Utc>) -> Self {
        TaskFilter {
            statuses: vec![],
            priorities: vec![],
            tag: None,
            assignee: None,
            team: None,
            created_by: None,
            archived: ArchivedFilter::Live,
            overdue: None,
            due_before: None,
            due_after: None,
            search: None,
            order: OrderField::CreatedAt,
            desc: true,
            now,
        }
    }
}

impl TaskQuery {
    /// Validates every value; an invalid one is an error naming the parameter, never ignored.
    pub fn resolve(&self, me: i64, now: DateTime<Utc>) -> crate::Result<TaskFilter> {
        let mut v = Violations::new();
        let mut f = TaskFilter::all(now);
        if let Some(s) = &self.status {
            f.statuses = s.split(',').filter_map(|x| v.check("status", TaskStatus::parse(x.trim()))).collect();
        }
        if let Some(s) = &self.priority {
            f.priorities = s.split(',').filter_map(|x| v.check("priority", Priority::parse(x.trim()))).collect();
        }
        if let Some(t) = &self.tag {
            let t = t.trim();
            if t.is_empty() {
                v.add("tag", "must not be empty");
            }
            f.tag = Some(t.to_lowercase());
        }
        f.assignee = match self.assignee.as_deref() {
            None => None,
            Some("me") => Some(me),
            Some(x) => v.check("assignee", parse_id(x).map_err(|_| "must be a user id or `me`".to_owned())),
        };
        f.team = self.team.as_deref().and_then(|x| v.check("team", parse_id(x)));
        f.created_by = self.created_by.as_deref().and_then(|x| v.check("created_by", parse_id(x)));
        f.archived = match self.archived.as_deref() {
            None | Some("false") => ArchivedFilter::Live,
            Some("true") => ArchivedFilter::Archived,
            Some("all") => ArchivedFilter::All,
            Some(_) => {
                v.add("archived", "must be one of false, true, all");
                ArchivedFilter::Live
            }
        };
        f.overdue = match self.overdue.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                v.add("overdue", "must be true or false");
                None
            }
        };
        f.due_before = self.due_before.as_deref().and_then(|x| v.check("due_before", parse_timestamp(x)));
        f.due_after = self.due_after.as_deref().and_then(|x| v.check("due_after", parse_timestamp(x)));
        if let Some(s) = &self.search {
            let s = s.trim();
            if s.chars().count() > 200 {
                v.add("search", "must be at most 200 characters");
            } else if !s.is_empty() {
                f.search = Some(s.to_lowercase());
            }
        }
        if let Some(o) = &self.ordering {
            let (desc, name) = match o.strip_prefix('-') {
                Some(n) => (true, n),
                None => (false, o.as_str()),
            };
            match serde_json::from_value::<OrderField>(serde_json::Value::String(name.to_owned())) {
                Ok(field) => {
                    f.order = field;
                    f.desc = desc;
                }
                Err(_) => v.add(
                    "ordering",
                    "must be one of created_at, updated_at, due_date, priority, title (prefix - for descending)",
                ),
            }
        }
        v.finish()?;
        Ok(f)
    }
}

fn parse_id(s: &str) -> Result<i64, String> {
    s.trim().parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| "must be a positive integer id".to_owned())
}

/// Where a page of tasks ended: the sort value and id of its last row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskPosition {
    /// The ordering this position belongs to (a cursor from another ordering is rejected).
    pub o: String,
    /// Timestamp sort value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub t: Option<DateTime<Utc>>,
    /// Integer sort value (priority rank).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub n: Option<i64>,
    /// Text sort value (title).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s: Option<String>,
    /// Id of the last row.
    pub id: i64,
}

impl TaskFilter {
    /// The ordering's name, as kept in cursors.
    pub fn ordering_name(&self) -> String {
        let name =
            serde_json::to_value(self.order).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        if self.desc { format!("-{name}") } else { name }
    }

    /// The position of `task` in this ordering.
    pub fn position_of(&self, task: &super::Task) -> TaskPosition {
        let mut p = TaskPosition { o: self.ordering_name(), t: None, n: None, s: None, id: task.id };
        match self.order {
            OrderField::CreatedAt => p.t = Some(task.created_at),
            OrderField::UpdatedAt => p.t = Some(task.updated_at),
            OrderField::DueDate => p.t = task.due_date,
            OrderField::Priority => p.n = Some(i64::from(task.priority.rank())),
            OrderField::Title => p.s = Some(task.title.clone()),
        }
        p
    }
}

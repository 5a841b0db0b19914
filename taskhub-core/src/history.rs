//! Task history: exactly one row per action that changes a task.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a history row records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum HistoryAction {
    /// The task was created.
    Created,
    /// Fields other than the status changed.
    Updated,
    /// The status was among the changes.
    StatusChanged,
    /// Users were assigned.
    Assigned,
    /// Users were unassigned.
    Unassigned,
    /// A comment was added.
    CommentAdded,
    /// A comment was edited.
    CommentEdited,
    /// A comment was deleted.
    CommentDeleted,
    /// The task was archived (soft delete).
    Archived,
    /// The task was restored.
    Unarchived,
    /// The task became overdue.
    Overdue,
}

impl HistoryAction {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Created => "created",
            Self::Updated => "updated",
            Self::StatusChanged => "status_changed",
            Self::Assigned => "assigned",
            Self::Unassigned => "unassigned",
            Self::CommentAdded => "comment_added",
            Self::CommentEdited => "comment_edited",
            Self::CommentDeleted => "comment_deleted",
            Self::Archived => "archived",
            Self::Unarchived => "unarchived",
            Self::Overdue => "overdue",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        serde_json::from_value(Value::String(s.to_owned())).ok()
    }
}

/// One row of a task's history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryEntry {
    /// Id (ties in `created_at` are broken by it).
    pub id: i64,
    /// The task.
    #[serde(skip_serializing)]
    pub task_id: i64,
    /// What happened.
    pub action: HistoryAction,
    /// Who did it (`None` for the system, e.g. the overdue scan).
    pub actor: Option<i64>,
    /// `{field: {from, to}}`.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub changes: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

/// A history row to write.
#[derive(Debug, Clone, PartialEq)]
pub struct NewHistory {
    /// The task.
    pub task_id: i64,
    /// What happened.
    pub action: HistoryAction,
    /// Who did it.
    pub actor: Option<i64>,
    /// `{field: {from, to}}`.
    pub changes: Value,
    /// When.
    pub created_at: DateTime<Utc>,
}

//! Task types: status, priority, hours, assignees and the task itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Where a task stands. Overdue is not a status: see [`Task::is_overdue`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum TaskStatus {
    /// Not started.
    Todo,
    /// Being worked on.
    InProgress,
    /// Waiting on something.
    Blocked,
    /// Finished.
    Done,
}

impl TaskStatus {
    /// Every status, in workflow order.
    pub const ALL: [TaskStatus; 4] = [Self::Todo, Self::InProgress, Self::Blocked, Self::Done];

    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Todo => "todo",
            Self::InProgress => "in_progress",
            Self::Blocked => "blocked",
            Self::Done => "done",
        }
    }

    /// Parses the exact lower-case name (enums are case-sensitive).
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| "must be one of todo, in_progress, blocked, done".to_owned())
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Priority, ordered by rank: low < medium < high < urgent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum Priority {
    /// Rank 1.
    Low = 1,
    /// Rank 2.
    Medium = 2,
    /// Rank 3.
    High = 3,
    /// Rank 4.
    Urgent = 4,
}

impl Priority {
    /// Every priority, lowest first.
    pub const ALL: [Priority; 4] = [Self::Low, Self::Medium, Self::High, Self::Urgent];

    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
            Self::Urgent => "urgent",
        }
    }

    /// The rank stored in the database, so that ordering by priority orders by rank.
    pub fn rank(self) -> i16 {
        self as i16
    }

    /// The priority of a stored rank.
    pub fn from_rank(r: i16) -> Option<Self> {
        Self::ALL.into_iter().find(|p| p.rank() == r)
    }

    /// Parses the exact lower-case name.
    pub fn parse(s: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| "must be one of low, medium, high, urgent".to_owned())
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Hours as an exact decimal with two places, kept as hundredths of an hour.
///
/// Serialized as a JSON number (`1.5`); parsing rejects more than two decimals and values
/// outside 0–9999.99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hours(i32);

impl Hours {
    /// The largest value: 9999.99 h.
    pub const MAX: Hours = Hours(999_999);

    /// From hundredths of an hour.
    pub fn from_hundredths(h: i32) -> Result<Self, String> {
        if (0..=Self::MAX.0).contains(&h) { Ok(Hours(h)) } else { Err("must be between 0 and 9999.99".into()) }
    }

    /// Hundredths of an hour (the stored value).
    pub fn hundredths(self) -> i32 {
        self.0
    }

    /// Parses a JSON number, rejecting more than two decimals.
    pub fn from_f64(v: f64) -> Result<Self, String> {
        if !v.is_finite() || !(0.0..=9999.99 + 1e-9).contains(&v) {
            return Err("must be between 0 and 9999.99".into());
        }
        let scaled = v * 100.0;
        let rounded = scaled.round();
        if (scaled - rounded).abs() > 1e-6 {
            return Err("must have at most 2 decimal places".into());
        }
        #[expect(clippy::cast_possible_truncation, reason = "bounded to 0..=999999 above")]
        Self::from_hundredths(rounded as i32)
    }

    /// The value as a float (exact to two decimals when printed).
    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 100.0
    }
}

impl Serialize for Hours {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.as_f64())
    }
}

impl<'de> Deserialize<'de> for Hours {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Hours::from_f64(f64::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl fmt::Display for Hours {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// How an assignee relates to a task: owners may edit it, collaborators may not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AssigneeRole {
    /// May edit, assign and archive the task.
    Owner,
    /// Sees and comments on the task.
    Collaborator,
}

impl AssigneeRole {
    /// The wire and storage name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Collaborator => "collaborator",
        }
    }

    /// Parses the exact name.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "owner" => Ok(Self::Owner),
            "collaborator" => Ok(Self::Collaborator),
            _ => Err("must be one of owner, collaborator".into()),
        }
    }
}

/// One assignment of a user to a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Assignee {
    /// The assigned user.
    pub user_id: i64,
    /// Their role on the task.
    pub role: AssigneeRole,
    /// Who assigned them (`None` once that user is gone).
    pub assigned_by: Option<i64>,
    /// When.
    pub assigned_at: DateTime<Utc>,
}

/// A task as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Task {
    /// Id.
    pub id: i64,
    /// 1–200 characters after trimming.
    pub title: String,
    /// Up to 20,000 characters.
    pub description: String,
    /// Workflow state.
    pub status: TaskStatus,
    /// Priority.
    pub priority: Priority,
    /// Due date (a full timestamp).
    pub due_date: Option<DateTime<Utc>>,
    /// Estimated hours.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub estimated_hours: Option<Hours>,
    /// Hours spent.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub actual_hours: Option<Hours>,
    /// Creator.
    pub created_by: Option<i64>,
    /// Team whose members see the task.
    pub assigned_team: Option<i64>,
    /// Assignees, ordered by user id.
    pub assignees: Vec<Assignee>,
    /// Tag names, sorted case-insensitively.
    pub tags: Vec<String>,
    /// Parent task.
    pub parent_task: Option<i64>,
    /// Free JSON object (≤ 16 KiB).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub metadata: serde_json::Value,
    /// Soft-deleted.
    pub is_archived: bool,
    /// Due date passed and not done (computed at read time; never changes the status).
    pub is_overdue: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it was archived (cleared by unarchive).
    pub archived_at: Option<DateTime<Utc>>,
    /// When it last entered `done` (cleared when it leaves `done`).
    pub completed_at: Option<DateTime<Utc>>,
    /// Optimistic-concurrency version, the `ETag`.
    pub version: i64,
}

impl Task {
    /// Recomputes `is_overdue` for the instant `now`.
    pub fn refresh_overdue(&mut self, now: DateTime<Utc>) {
        self.is_overdue = self.status != TaskStatus::Done && self.due_date.is_some_and(|d| d < now);
    }

    /// The role of `user` on this task, if assigned.
    pub fn role_of(&self, user: i64) -> Option<AssigneeRole> {
        self.assignees.iter().find(|a| a.user_id == user).map(|a| a.role)
    }

    /// Ids of the assignees.
    pub fn assignee_ids(&self) -> Vec<i64> {
        self.assignees.iter().map(|a| a.user_id).collect()
    }
}

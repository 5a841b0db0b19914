//! Task input: what clients send, and how it resolves into validated writable fields.

use super::model::{AssigneeRole, Hours, Priority, Task, TaskStatus};
use crate::validation::{Patch, Violations, length};
use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::BTreeMap;

/// Largest serialized `metadata` object, in bytes.
pub const MAX_METADATA_BYTES: usize = 16 * 1024;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 20_000;
/// Most tags on one task.
pub const MAX_TAGS: usize = 50;
/// Most assignees on one task.
pub const MAX_ASSIGNEES: usize = 100;

/// An assignee in a create/update body: `{user_id, role?}` (role defaults to collaborator).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssigneeInput {
    /// The user.
    pub user_id: i64,
    /// `owner` or `collaborator`.
    #[serde(default)]
    pub role: Option<String>,
}

/// The writable fields of a task as a client sends them. Absent fields keep their value on
/// PATCH and take the default on create and PUT.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TaskInput {
    /// Title.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub title: Patch<String>,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Patch<String>,
    /// Status name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub status: Patch<String>,
    /// Priority name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub priority: Patch<String>,
    /// RFC 3339 timestamp.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub due_date: Patch<String>,
    /// Hours (≤ 2 decimals).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub estimated_hours: Patch<f64>,
    /// Hours (≤ 2 decimals).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub actual_hours: Patch<f64>,
    /// Team id.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub assigned_team: Patch<i64>,
    /// Parent task id.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub parent_task: Patch<i64>,
    /// JSON object.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub metadata: Patch<Value>,
    /// Tag names.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<String>>))]
    pub tags: Patch<Vec<String>>,
    /// Assignees with roles.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<AssigneeInput>>))]
    pub assignees: Patch<Vec<AssigneeInput>>,
    /// Assignee ids (role collaborator); an alternative to `assignees`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Vec<i64>>))]
    pub assigned_to: Patch<Vec<i64>>,
    /// Template whose defaults fill what the body omits (create only).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<i64>))]
    pub template_id: Patch<i64>,
}

/// The validated writable fields of a task.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskFields {
    /// Title (trimmed).
    pub title: String,
    /// Description.
    pub description: String,
    /// Status.
    pub status: TaskStatus,
    /// Priority.
    pub priority: Priority,
    /// Due date.
    pub due_date: Option<DateTime<Utc>>,
    /// Estimate.
    pub estimated_hours: Option<Hours>,
    /// Spent.
    pub actual_hours: Option<Hours>,
    /// Team.
    pub assigned_team: Option<i64>,
    /// Parent.
    pub parent_task: Option<i64>,
    /// Metadata object.
    pub metadata: Value,
    /// Tag names, deduplicated case-insensitively, in input order.
    pub tags: Vec<String>,
    /// Assignees and roles, deduplicated by user.
    pub assignees: Vec<(i64, AssigneeRole)>,
}

impl Default for TaskFields {
    /// The defaults of API.md (also what PUT resets an omitted field to); the title is empty
    /// and so must be given.
    fn default() -> Self {
        TaskFields {
            title: String::new(),
            description: String::new(),
            status: TaskStatus::Todo,
            priority: Priority::Medium,
            due_date: None,
            estimated_hours: None,
            actual_hours: None,
            assigned_team: None,
            parent_task: None,
            metadata: json!({}),
            tags: Vec::new(),
            assignees: Vec::new(),
        }
    }
}

impl TaskFields {
    /// The current writable fields of a stored task.
    pub fn of(task: &Task) -> Self {
        TaskFields {
            title: task.title.clone(),
            description: task.description.clone(),
            status: task.status,
            priority: task.priority,
            due_date: task.due_date,
            estimated_hours: task.estimated_hours,
            actual_hours: task.actual_hours,
            assigned_team: task.assigned_team,
            parent_task: task.parent_task,
            metadata: task.metadata.clone(),
            tags: task.tags.clone(),
            assignees: task.assignees.iter().map(|a| (a.user_id, a.role)).collect(),
        }
    }

    /// Applies `input` on top of `self`, checking every bound. Absent fields keep `self`'s value.
    pub fn apply(mut self, input: &TaskInput, v: &mut Violations) -> Self {
        if let Some(t) = required(v, "title", &input.title) {
            let t = t.trim();
            if v.check("title", length(t, 1, 200)).is_some() {
                self.title = t.to_owned();
            }
        }
        if let Some(d) = nullable_as_default(&input.description)
            && v.check("description", length(&d, 0, MAX_DESCRIPTION)).is_some()
        {
            self.description = d;
        }
        if let Some(s) = required(v, "status", &input.status)
            && let Some(s) = v.check("status", TaskStatus::parse(s))
        {
            self.status = s;
        }
        if let Some(p) = required(v, "priority", &input.priority)
            && let Some(p) = v.check("priority", Priority::parse(p))
        {
            self.priority = p;
        }
        if let Some(d) = input.due_date.clone().into_option() {
            self.due_date = match d {
                None => None,
                Some(s) => v.check("due_date", parse_timestamp(&s)).or(self.due_date),
            };
        }
        for (field, patch, slot) in [
            ("estimated_hours", &input.estimated_hours, &mut self.estimated_hours),
            ("actual_hours", &input.actual_hours, &mut self.actual_hours),
        ] {
            if let Some(h) = patch.clone().into_option() {
                match h {
                    None => *slot = None,
                    Some(h) => {
                        if let Some(h) = v.check(field, Hours::from_f64(h)) {
                            *slot = Some(h);
                        }
                    }
                }
            }
        }
        if let Some(t) = input.assigned_team.clone().into_option() {
            self.assigned_team = t;
        }
        if let Some(p) = input.parent_task.clone().into_option() {
            self.parent_task = p;
        }
        if let Some(m) = input.metadata.clone().into_option() {
            let m = m.unwrap_or_else(|| json!({}));
            if let Some(m) = v.check("metadata", check_metadata(m)) {
                self.metadata = m;
            }
        }
        if let Some(tags) = input.tags.clone().into_option()
            && let Some(tags) = v.check("tags", normalize_tags(tags.unwrap_or_default()))
        {
            self.tags = tags;
        }
        match (input.assignees.is_present(), input.assigned_to.is_present()) {
            (true, true) => v.add("assignees", "give either assignees or assigned_to, not both"),
            (true, false) => {
                let list = input.assignees.clone().into_option().flatten().unwrap_or_default();
                if let Some(a) = v.check("assignees", normalize_assignees(list)) {
                    self.assignees = a;
                }
            }
            (false, true) => {
                let ids = input.assigned_to.clone().into_option().flatten().unwrap_or_default();
                let list = ids.into_iter().map(|user_id| AssigneeInput { user_id, role: None }).collect();
                if let Some(a) = v.check("assigned_to", normalize_assignees(list)) {
                    self.assignees = a;
                }
            }
            (false, false) => {}
        }
        self
    }

    /// `{field: {from, to}}` for every field that differs between `self` (before) and `after`.
    pub fn diff(&self, after: &TaskFields) -> BTreeMap<String, Value> {
        let mut changes = BTreeMap::new();
        let mut put = |name: &str, from: Value, to: Value| {
            if from != to {
                changes.insert(name.to_owned(), json!({"from": from, "to": to}));
            }
        };
        put("title", json!(self.title), json!(after.title));
        put("description", json!(self.description), json!(after.description));
        put("status", json!(self.status), json!(after.status));
        put("priority", json!(self.priority), json!(after.priority));
        put("due_date", json!(self.due_date), json!(after.due_date));
        put("estimated_hours", json!(self.estimated_hours), json!(after.estimated_hours));
        put("actual_hours", json!(self.actual_hours), json!(after.actual_hours));
        put("assigned_team", json!(self.assigned_team), json!(after.assigned_team));
        put("parent_task", json!(self.parent_task), json!(after.parent_task));
        put("metadata", self.metadata.clone(), after.metadata.clone());
        // Tags match case-insensitively: `X` on a task tagged `x` is no change.
        let keys = |t: &[String]| sorted_ci(t).iter().map(|s| s.to_lowercase()).collect::<Vec<_>>();
        if keys(&self.tags) != keys(&after.tags) {
            put("tags", json!(sorted_ci(&self.tags)), json!(sorted_ci(&after.tags)));
        }
        put("assignees", json!(assignee_view(&self.assignees)), json!(assignee_view(&after.assignees)));
        changes
    }
}

fn sorted_ci(tags: &[String]) -> Vec<String> {
    let mut t = tags.to_vec();
    t.sort_by_key(|s| s.to_lowercase());
    t
}

/// Assignees as history shows them: ids sorted, with the role when it is `owner`.
fn assignee_view(a: &[(i64, AssigneeRole)]) -> Vec<Value> {
    let mut a = a.to_vec();
    a.sort_by_key(|(id, _)| *id);
    a.into_iter().map(|(id, role)| json!({"user_id": id, "role": role})).collect()
}

fn required<'a, T>(v: &mut Violations, field: &str, p: &'a Patch<T>) -> Option<&'a T> {
    match p {
        Patch::Absent => None,
        Patch::Null => {
            v.add(field, "must not be null");
            None
        }
        Patch::Value(x) => Some(x),
    }
}

fn nullable_as_default(p: &Patch<String>) -> Option<String> {
    p.clone().into_option().map(Option::unwrap_or_default)
}

/// Parses an RFC 3339 timestamp into UTC, truncated to microseconds.
pub fn parse_timestamp(s: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(s.trim())
        .map(|d| d.with_timezone(&Utc).trunc_subsecs(6))
        .map_err(|_| "must be an RFC 3339 timestamp, e.g. 2026-11-25T21:00:00Z".to_owned())
}

/// Metadata must be a JSON object of at most 16 KiB serialized.
pub fn check_metadata(m: Value) -> Result<Value, String> {
    if !m.is_object() {
        return Err("must be a JSON object".into());
    }
    let size = serde_json::to_vec(&m).map(|b| b.len()).unwrap_or(usize::MAX);
    if size > MAX_METADATA_BYTES {
        return Err(format!("must be at most {MAX_METADATA_BYTES} bytes serialized"));
    }
    Ok(m)
}

/// Trims tag names, checks 1–50 characters, and drops case-insensitive duplicates.
pub fn normalize_tags(tags: Vec<String>) -> Result<Vec<String>, String> {
    if tags.len() > MAX_TAGS {
        return Err(format!("at most {MAX_TAGS} tags"));
    }
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for t in tags {
        let t = t.trim().to_owned();
        length(&t, 1, 50).map_err(|m| format!("each tag {m}"))?;
        if seen.insert(t.to_lowercase()) {
            out.push(t);
        }
    }
    Ok(out)
}

fn normalize_assignees(list: Vec<AssigneeInput>) -> Result<Vec<(i64, AssigneeRole)>, String> {
    if list.len() > MAX_ASSIGNEES {
        return Err(format!("at most {MAX_ASSIGNEES} assignees"));
    }
    let mut out: Vec<(i64, AssigneeRole)> = Vec::new();
    for a in list {
        let role = match a.role.as_deref() {
            None => AssigneeRole::Collaborator,
            Some(r) => AssigneeRole::parse(r)?,
        };
        match out.iter_mut().find(|(id, _)| *id == a.user_id) {
            Some(existing) => existing.1 = role,
            None => out.push((a.user_id, role)),
        }
    }
    Ok(out)
}

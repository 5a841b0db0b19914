//! Comments, tags and templates: the things that hang off tasks.

use super::input::{AssigneeInput, TaskInput, normalize_tags};
use super::model::{Hours, Priority};
use crate::validation::{Patch, Violations, length};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A comment on a task.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Comment {
    /// Id.
    pub id: i64,
    /// The task (decided by the URL, never by the body).
    #[sqlx(rename = "task_id")]
    pub task: i64,
    /// Author (`None` once gone).
    pub author: Option<i64>,
    /// 1–10,000 characters.
    pub body: String,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub updated_at: DateTime<Utc>,
    /// Version (ETag).
    pub version: i64,
}

/// Longest comment body, in characters.
pub const MAX_COMMENT: usize = 10_000;

/// Checks a comment body: 1–10,000 characters, not only white space.
pub fn check_comment_body(body: &str) -> crate::Result<String> {
    let mut v = Violations::new();
    if body.trim().is_empty() {
        v.add("body", "must not be empty");
    } else {
        v.check("body", length(body, 1, MAX_COMMENT));
    }
    v.finish()?;
    Ok(body.to_owned())
}

/// A tag with the number of (non-archived) tasks using it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Tag {
    /// Id.
    pub id: i64,
    /// 1–50 characters, unique case-insensitively.
    pub name: String,
    /// `#rrggbb`.
    pub color: Option<String>,
    /// Tasks carrying the tag.
    pub task_count: i64,
}

/// Tag create/update input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TagInput {
    /// Name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub name: Patch<String>,
    /// Colour `#rrggbb` or null.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub color: Patch<String>,
}

impl TagInput {
    /// Validates on top of the current (`name`, `color`).
    pub(crate) fn resolve(
        &self,
        mut name: String,
        mut color: Option<String>,
    ) -> crate::Result<(String, Option<String>)> {
        let mut v = Violations::new();
        match &self.name {
            Patch::Absent if name.is_empty() => v.add("name", "is required"),
            Patch::Absent => {}
            Patch::Null => v.add("name", "must not be null"),
            Patch::Value(n) => {
                if let Some(mut t) =
                    v.check("name", normalize_tags(vec![n.clone()]).map_err(|m| m.replace("each tag ", "")))
                {
                    name = t.pop().unwrap_or_default();
                }
            }
        }
        if let Some(c) = self.color.clone().into_option() {
            match c {
                None => color = None,
                Some(c) => {
                    let ok = c.len() == 7 && c.starts_with('#') && c.chars().skip(1).all(|ch| ch.is_ascii_hexdigit());
                    if ok {
                        color = Some(c.to_ascii_lowercase());
                    } else {
                        v.add("color", "must be a colour like #1e90ff");
                    }
                }
            }
        }
        v.finish()?;
        Ok((name, color))
    }
}

/// Default values a template gives a new task.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateDefaults {
    /// Title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Estimate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<f64>))]
    pub estimated_hours: Option<Hours>,
    /// Tags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
    /// Assignees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignees: Option<Vec<AssigneeInput>>,
}

impl TemplateDefaults {
    /// Fills what `input` leaves absent from these defaults.
    pub fn fill(&self, input: &mut TaskInput) {
        fn fill<T: Clone>(slot: &mut Patch<T>, v: &Option<T>) {
            if let (Patch::Absent, Some(v)) = (&*slot, v) {
                *slot = Patch::Value(v.clone());
            }
        }
        fill(&mut input.title, &self.title);
        fill(&mut input.description, &self.description);
        fill(&mut input.priority, &self.priority.map(|p| p.as_str().to_owned()));
        fill(&mut input.estimated_hours, &self.estimated_hours.map(Hours::as_f64));
        fill(&mut input.tags, &self.tags);
        if !input.assigned_to.is_present() {
            fill(&mut input.assignees, &self.assignees);
        }
    }
}

/// A task template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Template {
    /// Id.
    pub id: i64,
    /// 1–150 characters.
    pub name: String,
    /// Up to 2,000 characters.
    pub description: String,
    /// Validated defaults.
    pub defaults: TemplateDefaults,
    /// Owner.
    pub created_by: Option<i64>,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Version (ETag).
    pub version: i64,
}

/// Template create/update input.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TemplateInput {
    /// Name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub name: Patch<String>,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Patch<String>,
    /// Defaults, as JSON (validated like a task).
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub defaults: Patch<serde_json::Value>,
}

//! Team types.

use crate::services::Actor;
use crate::validation::{Patch, Violations, length};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A team as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct TeamRecord {
    /// Id.
    pub id: i64,
    /// 1–150 characters.
    pub name: String,
    /// Up to 2,000 characters.
    pub description: String,
    /// Creator (`None` once gone).
    pub created_by: Option<i64>,
    /// The admin: may edit the team and its tasks, cannot be removed or leave.
    pub admin_id: i64,
    /// Number of members, the admin included.
    pub member_count: i64,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: i64,
}

/// A team as one caller sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Team {
    /// Id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Creator.
    pub created_by: Option<i64>,
    /// Members, the admin included.
    pub member_count: i64,
    /// Whether the caller is the admin.
    pub is_admin: bool,
    /// Whether the caller is a member.
    pub is_member: bool,
    /// Created at.
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// Version (ETag).
    pub version: i64,
}

impl TeamRecord {
    /// The view of this team for `actor`, given the teams they belong to.
    pub fn view_for(&self, actor: &Actor, m: &Memberships) -> Team {
        Team {
            id: self.id,
            name: self.name.clone(),
            description: self.description.clone(),
            created_by: self.created_by,
            member_count: self.member_count,
            is_admin: self.admin_id == actor.user_id,
            is_member: m.is_member(self.id),
            created_at: self.created_at,
            updated_at: self.updated_at,
            version: self.version,
        }
    }
}

/// Create/update input of a team.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TeamInput {
    /// Name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub name: Patch<String>,
    /// Description.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub description: Patch<String>,
}

impl TeamInput {
    /// Validates the input on top of (`name`, `description`); absent fields keep them.
    pub(crate) fn resolve(&self, mut name: String, mut description: String) -> crate::Result<(String, String)> {
        let mut v = Violations::new();
        match &self.name {
            Patch::Absent => {}
            Patch::Null => v.add("name", "must not be null"),
            Patch::Value(n) => {
                let n = n.trim();
                if v.check("name", length(n, 1, 150)).is_some() {
                    name = n.to_owned();
                }
            }
        }
        if let Some(d) = self.description.clone().into_option() {
            let d = d.unwrap_or_default();
            if v.check("description", length(&d, 0, 2000)).is_some() {
                description = d;
            }
        }
        if name.is_empty() && matches!(self.name, Patch::Absent) {
            v.add("name", "is required");
        }
        v.finish()?;
        Ok((name, description))
    }
}

/// The teams a user belongs to and administers: what visibility and edit rules need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Memberships {
    /// Teams the user is a member of (the admin is a member).
    pub member_of: Vec<i64>,
    /// Teams the user administers.
    pub admin_of: Vec<i64>,
}

impl Memberships {
    /// Member of `team`?
    pub fn is_member(&self, team: i64) -> bool {
        self.member_of.contains(&team)
    }

    /// Admin of `team`?
    pub fn is_admin(&self, team: i64) -> bool {
        self.admin_of.contains(&team)
    }
}

/// Result of adding members.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMembersResult {
    /// Newly added.
    pub added: Vec<i64>,
    /// Already in the team.
    pub already_members: Vec<i64>,
}

//! User types and their validation rules.

use crate::services::Actor;
use crate::validation::{Patch, Violations, length};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A stored user (without the password hash).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct User {
    /// Id.
    pub id: i64,
    /// Login name, unique case-insensitively.
    pub username: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E-mail address, unique case-insensitively.
    pub email: String,
    /// Staff see and may change everything.
    pub is_staff: bool,
    /// Deactivated users cannot log in and their tokens stop working.
    pub is_active: bool,
    /// When the account was created.
    pub date_joined: DateTime<Utc>,
}

/// A user as one caller may see it: the e-mail only for the user themself and staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserView {
    /// Id.
    pub id: i64,
    /// Login name.
    pub username: String,
    /// Name shown in the UI.
    pub display_name: String,
    /// Given name.
    pub first_name: String,
    /// Family name.
    pub last_name: String,
    /// E-mail, `None` unless the caller is this user or staff.
    pub email: Option<String>,
    /// Staff flag.
    pub is_staff: bool,
    /// Active flag.
    pub is_active: bool,
    /// When the account was created.
    pub date_joined: DateTime<Utc>,
}

impl User {
    /// The name shown to people (in mail, on pages): the display name, else the username.
    pub fn shown_name(&self) -> &str {
        if self.display_name.is_empty() { &self.username } else { &self.display_name }
    }

    /// The view of this user for `viewer` (`None` = a trusted local caller such as the CLI).
    pub fn view_for(&self, viewer: Option<&Actor>) -> UserView {
        let sees_email = viewer.is_none_or(|a| a.is_staff || a.user_id == self.id);
        UserView {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            first_name: self.first_name.clone(),
            last_name: self.last_name.clone(),
            email: sees_email.then(|| self.email.clone()),
            is_staff: self.is_staff,
            is_active: self.is_active,
            date_joined: self.date_joined,
        }
    }
}

/// Registration or staff-create input.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInput {
    /// 3–150 of `[A-Za-z0-9@.+_-]`.
    pub username: String,
    /// A valid e-mail address.
    pub email: String,
    /// At least 10 characters, not equal to the username.
    pub password: String,
    /// Optional display name (≤ 150).
    #[serde(default)]
    pub display_name: Option<String>,
    /// Staff flag; only staff may set it.
    #[serde(default)]
    pub is_staff: Option<bool>,
}

/// Profile update (PATCH semantics).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserPatch {
    /// New e-mail.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub email: Patch<String>,
    /// New given name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub first_name: Patch<String>,
    /// New family name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub last_name: Patch<String>,
    /// New display name.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub display_name: Patch<String>,
    /// New password; needs `current_password` unless staff changes another user.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub password: Patch<String>,
    /// The current password, proving the change is the user's own.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub current_password: Patch<String>,
    /// Staff only.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub is_active: Patch<bool>,
    /// Staff only.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<bool>))]
    pub is_staff: Patch<bool>,
}

/// A validated user ready to insert.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name as typed.
    pub username: String,
    /// Lower-cased login name: the uniqueness key.
    pub username_key: String,
    /// E-mail as typed.
    pub email: String,
    /// Lower-cased e-mail: the uniqueness key.
    pub email_key: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Display name.
    pub display_name: String,
    /// Staff flag.
    pub is_staff: bool,
    /// Creation time.
    pub date_joined: DateTime<Utc>,
}

/// The uniqueness key of a username.
pub fn normalize_username(u: &str) -> String {
    u.to_lowercase()
}

/// The uniqueness key of an e-mail address.
pub fn normalize_email(e: &str) -> String {
    e.trim().to_lowercase()
}

pub(crate) fn check_username(v: &mut Violations, u: &str) {
    if let Err(m) = length(u, 3, 150) {
        v.add("username", m);
    } else if !u.chars().all(|c| c.is_ascii_alphanumeric() || "@.+_-".contains(c)) {
        v.add("username", "may contain only letters, digits and @ . + _ -");
    }
}

pub(crate) fn check_email(v: &mut Violations, e: &str) {
    let e = e.trim();
    let ok = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !e.chars().any(|c| c.is_whitespace() || c.is_control())
                && !domain.contains('@')
        });
    if !ok {
        v.add("email", "must be a valid e-mail address");
    }
}

pub(crate) fn check_password(v: &mut Violations, p: &str, username: &str) {
    if p.chars().count() < 10 {
        v.add("password", "must be at least 10 characters");
    } else if p.chars().count() > 1024 {
        v.add("password", "must be at most 1024 characters");
    } else if p.eq_ignore_ascii_case(username) {
        v.add("password", "must not equal the username");
    }
}

pub(crate) fn check_name(v: &mut Violations, field: &str, s: &str) {
    if let Err(m) = length(s, 0, 150) {
        v.add(field, m);
    }
}

//! User rules: who may create, see, change and deactivate users.

use super::model::{
    NewUser, User, UserInput, UserPatch, UserView, check_email, check_name, check_password, check_username,
    normalize_email, normalize_username,
};
use crate::auth::PasswordHasher;
use crate::error::{Error, Result};
use crate::events::EventEnvelope;
use crate::idempotency::{self, IdempotencyKey, Idempotent};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};
use crate::validation::{Patch, Violations};
use serde_json::json;

/// Users: registration, profiles, deactivation.
#[derive(Clone)]
pub struct UserService {
    ctx: Ctx,
    hasher: PasswordHasher,
}

impl UserService {
    pub(crate) fn new(ctx: Ctx, hasher: PasswordHasher) -> Self {
        UserService { ctx, hasher }
    }

    /// The password hasher (login verifies through it).
    pub fn hasher(&self) -> &PasswordHasher {
        &self.hasher
    }

    /// Self-registration: anyone, never staff.
    #[tracing::instrument(skip_all)]
    pub async fn register(&self, input: UserInput) -> Result<User> {
        if input.is_staff == Some(true) {
            return Err(Error::field("is_staff", "cannot be set when registering"));
        }
        self.insert(input, false, None).await?.into_done()
    }

    /// Creation by a staff member, who may make the new user staff.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn create(&self, actor: &Actor, input: UserInput) -> Result<User> {
        self.create_idempotent(actor, input, None).await?.into_done()
    }

    /// As [`UserService::create`], performed at most once per `key`.
    pub async fn create_idempotent(
        &self,
        actor: &Actor,
        input: UserInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<User>> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may create users".into()));
        }
        let staff = input.is_staff.unwrap_or(false);
        self.insert(input, staff, Some((actor, key))).await
    }

    /// Creation by a trusted local operator (the CLI).
    #[tracing::instrument(skip_all)]
    pub async fn create_local(&self, input: UserInput, is_staff: bool) -> Result<User> {
        self.insert(input, is_staff, None).await?.into_done()
    }

    async fn insert(
        &self,
        input: UserInput,
        is_staff: bool,
        by: Option<(&Actor, Option<&IdempotencyKey>)>,
    ) -> Result<Idempotent<User>> {
        let actor = by.map(|(a, _)| a.user_id);
        let mut v = Violations::new();
        check_username(&mut v, &input.username);
        check_email(&mut v, &input.email);
        check_password(&mut v, &input.password, &input.username);
        let display_name = input.display_name.unwrap_or_default();
        check_name(&mut v, "display_name", &display_name);
        v.finish()?;
        let password_hash = self.hasher.hash(&input.password).await?;
        let now = self.ctx.clock.now();
        let new = NewUser {
            username_key: normalize_username(&input.username),
            username: input.username,
            email_key: normalize_email(&input.email),
            email: input.email.trim().to_owned(),
            password_hash,
            display_name: display_name.trim().to_owned(),
            is_staff,
            date_joined: now,
        };
        let mut tx = match by {
            Some((a, key)) => match idempotency::begin(&self.ctx, a, key).await? {
                Ok(tx) => tx,
                Err((status, body)) => return Ok(Idempotent::Replayed { status, body }),
            },
            None => self.ctx.store.begin().await?,
        };
        let user = tx.insert_user(&new).await?;
        let data = json!({"user": user.view_for(None), "created_by": actor});
        tx.insert_outbox(&EventEnvelope::new("user.registered", "user", user.id, actor.or(Some(user.id)), now, data))
            .await?;
        if let Some((a, key)) = by {
            idempotency::finish(&mut *tx, a, key, 201, &user.view_for(Some(a))).await?;
        }
        tx.commit().await?;
        Ok(Idempotent::Done(user))
    }

    /// A user by id, as `actor` may see them.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, target_user.id = id))]
    pub async fn get(&self, actor: &Actor, id: i64) -> Result<UserView> {
        let mut tx = self.ctx.store.read().await?;
        let user = tx.get_user(id).await?.ok_or(Error::NotFound("user"))?;
        Ok(user.view_for(Some(actor)))
    }

    /// A user by id with no viewer rules (for shells that authenticate, and the CLI).
    #[tracing::instrument(skip_all, fields(user.id = id))]
    pub async fn get_raw(&self, id: i64) -> Result<Option<User>> {
        self.ctx.store.read().await?.get_user(id).await
    }

    /// A user by username (case-insensitive), with no viewer rules (CLI and login).
    #[tracing::instrument(skip_all)]
    pub async fn find_by_username(&self, username: &str) -> Result<Option<User>> {
        let mut tx = self.ctx.store.read().await?;
        Ok(tx.get_user_credentials(&normalize_username(username)).await?.map(|(u, _)| u))
    }

    /// A page of users, optionally searched by username, display name or name.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn list(&self, actor: &Actor, search: Option<&str>, page: &PageRequest) -> Result<Page<UserView>> {
        let size = page.size()?;
        let after: Option<i64> = page.position()?;
        let search = search.map(str::trim).filter(|s| !s.is_empty()).map(str::to_lowercase);
        if search.as_ref().is_some_and(|s| s.chars().count() > 150) {
            return Err(Error::field("search", "must be at most 150 characters"));
        }
        let mut tx = self.ctx.store.read().await?;
        let rows = tx.list_users(search.as_deref(), after, size + 1).await?;
        let count = tx.count_users(search.as_deref()).await?;
        let page = Page::from_overfetch(rows, size, Some(count), |u| u.id)?;
        Ok(page.map(|u| u.view_for(Some(actor))))
    }

    /// Updates a profile: the user themself or staff. `is_active` and `is_staff` are staff-only;
    /// a user changing their own password proves it with `current_password`.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, target_user.id = id))]
    pub async fn update(&self, actor: &Actor, id: i64, patch: UserPatch) -> Result<UserView> {
        if actor.user_id != id && !actor.is_staff {
            let mut tx = self.ctx.store.read().await?;
            tx.get_user(id).await?.ok_or(Error::NotFound("user"))?;
            return Err(Error::Forbidden("you may only change your own profile".into()));
        }
        if !actor.is_staff && (patch.is_active.is_present() || patch.is_staff.is_present()) {
            return Err(Error::Forbidden("only staff may change is_active or is_staff".into()));
        }
        let current = self.ctx.store.read().await?.get_user(id).await?.ok_or(Error::NotFound("user"))?;
        let mut user = current.clone();
        let mut v = Violations::new();
        match &patch.email {
            Patch::Value(e) => {
                check_email(&mut v, e);
                user.email = e.trim().to_owned();
            }
            Patch::Null => v.add("email", "must not be null"),
            Patch::Absent => {}
        }
        for (field, p, slot) in [
            ("first_name", &patch.first_name, &mut user.first_name),
            ("last_name", &patch.last_name, &mut user.last_name),
            ("display_name", &patch.display_name, &mut user.display_name),
        ] {
            if let Some(s) = p.clone().into_option() {
                let s = s.unwrap_or_default();
                check_name(&mut v, field, &s);
                *slot = s.trim().to_owned();
            }
        }
        for (field, p, slot) in
            [("is_active", &patch.is_active, &mut user.is_active), ("is_staff", &patch.is_staff, &mut user.is_staff)]
        {
            match p {
                Patch::Value(b) => *slot = *b,
                Patch::Null => v.add(field, "must not be null"),
                Patch::Absent => {}
            }
        }
        if actor.user_id == id && actor.is_staff && !user.is_active {
            v.add("is_active", "staff cannot deactivate themselves");
        }
        let mut new_hash = None;
        if let Patch::Value(pw) = &patch.password {
            check_password(&mut v, pw, &user.username);
            if actor.user_id == id {
                let given = match &patch.current_password {
                    Patch::Value(c) => Some(c.as_str()),
                    _ => None,
                };
                match given {
                    None => v.add("current_password", "is required to change the password"),
                    Some(c) => {
                        let mut tx = self.ctx.store.read().await?;
                        let hash = tx.get_password_hash(id).await?;
                        drop(tx);
                        if !self.hasher.verify(hash.as_deref(), c).await? {
                            v.add("current_password", "is not correct");
                        }
                    }
                }
            }
            if v.is_empty() {
                new_hash = Some(self.hasher.hash(pw).await?);
            }
        } else if patch.password == Patch::Null {
            v.add("password", "must not be null");
        }
        v.finish()?;
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let saved = tx.update_user(&user, new_hash.as_deref()).await?;
        if current.is_active && !saved.is_active {
            tx.revoke_user_families(id, now, "deactivated").await?;
        }
        let fields: Vec<&str> = changed_fields(&current, &saved, new_hash.is_some());
        if !fields.is_empty() {
            let ty = if current.is_active && !saved.is_active { "user.deactivated" } else { "user.updated" };
            tx.insert_outbox(&EventEnvelope::new(ty, "user", id, Some(actor.user_id), now, json!({"fields": fields})))
                .await?;
        }
        tx.commit().await?;
        Ok(saved.view_for(Some(actor)))
    }

    /// Deactivates a user (staff only). Their data stays; they can no longer log in.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, target_user.id = id))]
    pub async fn deactivate(&self, actor: &Actor, id: i64) -> Result<()> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may deactivate users".into()));
        }
        if actor.user_id == id {
            return Err(Error::Conflict("staff cannot deactivate themselves".into()));
        }
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let mut user = tx.get_user(id).await?.ok_or(Error::NotFound("user"))?;
        if user.is_active {
            user.is_active = false;
            tx.update_user(&user, None).await?;
            tx.revoke_user_families(id, now, "deactivated").await?;
            tx.insert_outbox(&EventEnvelope::new(
                "user.deactivated",
                "user",
                id,
                Some(actor.user_id),
                now,
                json!({"fields": ["is_active"]}),
            ))
            .await?;
        }
        tx.commit().await
    }
}

fn changed_fields(a: &User, b: &User, password: bool) -> Vec<&'static str> {
    let mut f = Vec::new();
    if a.email != b.email {
        f.push("email");
    }
    if a.first_name != b.first_name {
        f.push("first_name");
    }
    if a.last_name != b.last_name {
        f.push("last_name");
    }
    if a.display_name != b.display_name {
        f.push("display_name");
    }
    if a.is_active != b.is_active {
        f.push("is_active");
    }
    if a.is_staff != b.is_staff {
        f.push("is_staff");
    }
    if password {
        f.push("password");
    }
    f
}

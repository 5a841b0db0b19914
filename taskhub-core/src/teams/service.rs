//! Team rules: members and staff see a team; its admin and staff change it.

use super::model::{AddMembersResult, Memberships, Team, TeamInput, TeamRecord};
use crate::error::{Error, Result};
use crate::events::EventEnvelope;
use crate::idempotency::{self, IdempotencyKey, Idempotent};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};
use crate::store::Tx;
use crate::users::UserView;
use serde_json::json;

/// Most users one `add_members` call may add.
pub const MAX_ADD_MEMBERS: usize = 200;

/// Teams.
#[derive(Clone)]
pub struct TeamService {
    ctx: Ctx,
}

/// Loads a team and the caller's memberships, hiding it from non-members.
async fn visible_team(tx: &mut dyn Tx, actor: &Actor, id: i64) -> Result<(TeamRecord, Memberships)> {
    let team = tx.get_team(id).await?.ok_or(Error::NotFound("team"))?;
    let m = tx.memberships(actor.user_id).await?;
    if !actor.is_staff && !m.is_member(team.id) {
        return Err(Error::NotFound("team"));
    }
    Ok((team, m))
}

fn require_admin(actor: &Actor, team: &TeamRecord) -> Result<()> {
    if actor.is_staff || team.admin_id == actor.user_id {
        Ok(())
    } else {
        Err(Error::Forbidden("only the team admin or staff may do this".into()))
    }
}

fn check_version(team: &TeamRecord, if_match: Option<i64>) -> Result<()> {
    match if_match {
        Some(v) if v != team.version => Err(Error::PreconditionFailed { current: team.version }),
        _ => Ok(()),
    }
}

impl TeamService {
    pub(crate) fn new(ctx: Ctx) -> Self {
        TeamService { ctx }
    }

    /// Creates a team; the creator becomes its admin and first member.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn create(&self, actor: &Actor, input: TeamInput) -> Result<Team> {
        self.create_idempotent(actor, input, None).await?.into_done()
    }

    /// As [`TeamService::create`], performed at most once per `key`.
    pub async fn create_idempotent(
        &self,
        actor: &Actor,
        input: TeamInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<Team>> {
        let (name, description) = input.resolve(String::new(), String::new())?;
        let now = self.ctx.clock.now();
        let mut tx = match idempotency::begin(&self.ctx, actor, key).await? {
            Ok(tx) => tx,
            Err((status, body)) => return Ok(Idempotent::Replayed { status, body }),
        };
        let team = tx.insert_team(&name, &description, actor.user_id, now).await?;
        let ev = EventEnvelope::new("team.created", "team", team.id, Some(actor.user_id), now, json!({"name": name}));
        tx.insert_outbox(&ev).await?;
        let m = tx.memberships(actor.user_id).await?;
        let view = team.view_for(actor, &m);
        idempotency::finish(&mut *tx, actor, key, 201, &view).await?;
        tx.commit().await?;
        Ok(Idempotent::Done(view))
    }

    /// A team the caller belongs to (staff: any).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn get(&self, actor: &Actor, id: i64) -> Result<Team> {
        let mut tx = self.ctx.store.read().await?;
        let (team, m) = visible_team(&mut *tx, actor, id).await?;
        Ok(team.view_for(actor, &m))
    }

    /// Teams the caller created or belongs to (staff: all), by id.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn list(&self, actor: &Actor, page: &PageRequest) -> Result<Page<Team>> {
        let size = page.size()?;
        let after: Option<i64> = page.position()?;
        let mut tx = self.ctx.store.read().await?;
        let member = (!actor.is_staff).then_some(actor.user_id);
        let rows = tx.list_teams(member, after, size + 1).await?;
        let m = tx.memberships(actor.user_id).await?;
        Ok(Page::from_overfetch(rows, size, None, |t| t.id)?.map(|t| t.view_for(actor, &m)))
    }

    /// Renames or re-describes a team (admin or staff).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn update(&self, actor: &Actor, id: i64, input: TeamInput, if_match: Option<i64>) -> Result<Team> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let (team, m) = visible_team(&mut *tx, actor, id).await?;
        require_admin(actor, &team)?;
        check_version(&team, if_match)?;
        let (name, description) = input.resolve(team.name.clone(), team.description.clone())?;
        if name == team.name && description == team.description {
            return Ok(team.view_for(actor, &m));
        }
        let saved = tx
            .update_team(id, &name, &description, team.version, now)
            .await?
            .ok_or(Error::Conflict("the team changed meanwhile; retry".into()))?;
        let ev = EventEnvelope::new("team.updated", "team", id, Some(actor.user_id), now, json!({"name": name}));
        tx.insert_outbox(&ev).await?;
        tx.commit().await?;
        Ok(saved.view_for(actor, &m))
    }

    /// Deletes a team (admin or staff); its tasks keep existing without a team.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn delete(&self, actor: &Actor, id: i64, if_match: Option<i64>) -> Result<()> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let (team, _) = visible_team(&mut *tx, actor, id).await?;
        require_admin(actor, &team)?;
        check_version(&team, if_match)?;
        tx.delete_team(id).await?;
        let ev = EventEnvelope::new("team.deleted", "team", id, Some(actor.user_id), now, json!({"name": team.name}));
        tx.insert_outbox(&ev).await?;
        tx.commit().await
    }

    /// Members of a team, by id.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn members(&self, actor: &Actor, id: i64, page: &PageRequest) -> Result<Page<UserView>> {
        let size = page.size()?;
        let after: Option<i64> = page.position()?;
        let mut tx = self.ctx.store.read().await?;
        visible_team(&mut *tx, actor, id).await?;
        let rows = tx.list_team_members(id, after, size + 1).await?;
        Ok(Page::from_overfetch(rows, size, None, |u| u.id)?.map(|u| u.view_for(Some(actor))))
    }

    /// Adds users (admin or staff). An unknown or inactive id fails the call and adds nobody.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn add_members(&self, actor: &Actor, id: i64, user_ids: &[i64]) -> Result<AddMembersResult> {
        if user_ids.is_empty() {
            return Err(Error::field("user_ids", "must not be empty"));
        }
        if user_ids.len() > MAX_ADD_MEMBERS {
            return Err(Error::field("user_ids", format!("at most {MAX_ADD_MEMBERS} users at once")));
        }
        let mut ids = user_ids.to_vec();
        ids.sort_unstable();
        ids.dedup();
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let (team, _) = visible_team(&mut *tx, actor, id).await?;
        require_admin(actor, &team)?;
        let active = tx.active_user_ids(&ids).await?;
        let unknown: Vec<String> = ids.iter().filter(|i| !active.contains(i)).map(i64::to_string).collect();
        if !unknown.is_empty() {
            return Err(Error::field("user_ids", format!("unknown or inactive users: {}", unknown.join(", "))));
        }
        let added = tx.add_team_members(id, &ids, now).await?;
        let already_members = ids.iter().copied().filter(|i| !added.contains(i)).collect();
        if !added.is_empty() {
            tx.touch_team(id, now).await?;
            for u in &added {
                let ev = EventEnvelope::new(
                    "team.member_added",
                    "team",
                    id,
                    Some(actor.user_id),
                    now,
                    json!({"user_id": u}),
                );
                tx.insert_outbox(&ev).await?;
            }
        }
        tx.commit().await?;
        Ok(AddMembersResult { added, already_members })
    }

    /// Removes a member (admin or staff). The admin cannot be removed.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn remove_member(&self, actor: &Actor, id: i64, user_id: i64) -> Result<()> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let (team, _) = visible_team(&mut *tx, actor, id).await?;
        require_admin(actor, &team)?;
        if user_id == team.admin_id {
            return Err(Error::Conflict("the team admin cannot be removed".into()));
        }
        if !tx.remove_team_member(id, user_id).await? {
            return Err(Error::field("user_id", "is not a member of this team"));
        }
        tx.touch_team(id, now).await?;
        let ev = EventEnvelope::new(
            "team.member_removed",
            "team",
            id,
            Some(actor.user_id),
            now,
            json!({"user_id": user_id}),
        );
        tx.insert_outbox(&ev).await?;
        tx.commit().await
    }

    /// Leaves a team. The admin cannot leave.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, team.id = id))]
    pub async fn leave(&self, actor: &Actor, id: i64) -> Result<()> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let team = tx.get_team(id).await?.ok_or(Error::NotFound("team"))?;
        let m = tx.memberships(actor.user_id).await?;
        if !m.is_member(id) {
            return Err(Error::NotFound("team"));
        }
        if team.admin_id == actor.user_id {
            return Err(Error::Conflict("the team admin cannot leave the team".into()));
        }
        tx.remove_team_member(id, actor.user_id).await?;
        tx.touch_team(id, now).await?;
        let ev = EventEnvelope::new(
            "team.member_left",
            "team",
            id,
            Some(actor.user_id),
            now,
            json!({"user_id": actor.user_id}),
        );
        tx.insert_outbox(&ev).await?;
        tx.commit().await
    }
}

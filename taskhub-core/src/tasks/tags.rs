//! Tags: anyone signed in lists and creates them; staff rename and delete them.

use super::extras::{Tag, TagInput};
use crate::error::{Error, Result};
use crate::idempotency::{self, IdempotencyKey, Idempotent};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};

/// Tags.
#[derive(Clone)]
pub struct TagService {
    ctx: Ctx,
}

fn require_staff(actor: &Actor) -> Result<()> {
    if actor.is_staff { Ok(()) } else { Err(Error::Forbidden("only staff may change or delete tags".into())) }
}

impl TagService {
    pub(crate) fn new(ctx: Ctx) -> Self {
        TagService { ctx }
    }

    /// Tags by id with their task counts.
    #[tracing::instrument(skip_all, fields(user.id = _actor.user_id))]
    pub async fn list(&self, _actor: &Actor, page: &PageRequest) -> Result<Page<Tag>> {
        let size = page.size()?;
        let after: Option<i64> = page.position()?;
        let rows = self.ctx.store.read().await?.list_tags(after, size + 1).await?;
        Page::from_overfetch(rows, size, None, |t| t.id)
    }

    /// One tag.
    #[tracing::instrument(skip_all, fields(user.id = _actor.user_id, tag.id = id))]
    pub async fn get(&self, _actor: &Actor, id: i64) -> Result<Tag> {
        self.ctx.store.read().await?.get_tag(id).await?.ok_or(Error::NotFound("tag"))
    }

    /// Creates a tag; a name taken case-insensitively is a conflict.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn create(&self, actor: &Actor, input: TagInput) -> Result<Tag> {
        self.create_idempotent(actor, input, None).await?.into_done()
    }

    /// As [`TagService::create`], performed at most once per `key`.
    pub async fn create_idempotent(
        &self,
        actor: &Actor,
        input: TagInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<Tag>> {
        let (name, color) = input.resolve(String::new(), None)?;
        let mut tx = match idempotency::begin(&self.ctx, actor, key).await? {
            Ok(tx) => tx,
            Err((status, body)) => return Ok(Idempotent::Replayed { status, body }),
        };
        let tag = tx.insert_tag(&name, color.as_deref(), self.ctx.clock.now()).await?;
        idempotency::finish(&mut *tx, actor, key, 201, &tag).await?;
        tx.commit().await?;
        Ok(Idempotent::Done(tag))
    }

    /// Renames or recolours a tag (staff).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, tag.id = id))]
    pub async fn update(&self, actor: &Actor, id: i64, input: TagInput) -> Result<Tag> {
        require_staff(actor)?;
        let mut tx = self.ctx.store.begin().await?;
        let tag = tx.get_tag(id).await?.ok_or(Error::NotFound("tag"))?;
        let (name, color) = input.resolve(tag.name, tag.color)?;
        let saved = tx.update_tag(id, &name, color.as_deref()).await?.ok_or(Error::NotFound("tag"))?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Deletes a tag and removes it from every task (staff).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, tag.id = id))]
    pub async fn delete(&self, actor: &Actor, id: i64) -> Result<()> {
        require_staff(actor)?;
        let mut tx = self.ctx.store.begin().await?;
        if !tx.delete_tag(id).await? {
            return Err(Error::NotFound("tag"));
        }
        tx.commit().await
    }
}

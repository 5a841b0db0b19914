//! Comments: any viewer of a task may comment; authors edit; authors, task editors and staff
//! delete. Each action writes a history row and an event with the comment.

use super::extras::{Comment, check_comment_body};
use super::policy::{can_edit, ensure_view};
use super::service::record;
use crate::error::{Error, Result};
use crate::history::HistoryAction;
use crate::idempotency::{self, IdempotencyKey, Idempotent};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};
use crate::store::Tx;
use serde_json::{Map, Value, json};

/// Comments on tasks.
#[derive(Clone)]
pub struct CommentService {
    ctx: Ctx,
}

async fn visible_task(
    tx: &mut dyn Tx,
    actor: &Actor,
    task_id: i64,
) -> Result<(super::Task, crate::teams::Memberships)> {
    let task = tx.get_task(task_id).await?.ok_or(Error::NotFound("task"))?;
    let m = tx.memberships(actor.user_id).await?;
    ensure_view(&task, actor, &m)?;
    Ok((task, m))
}

fn change(from: Value, to: Value) -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("comment".into(), json!({"from": from, "to": to}));
    m
}

impl CommentService {
    pub(crate) fn new(ctx: Ctx) -> Self {
        CommentService { ctx }
    }

    /// Comments of a visible task, oldest first.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = task_id))]
    pub async fn list(&self, actor: &Actor, task_id: i64, page: &PageRequest) -> Result<Page<Comment>> {
        let size = page.size()?;
        let after: Option<i64> = page.position()?;
        let mut tx = self.ctx.store.read().await?;
        visible_task(&mut *tx, actor, task_id).await?;
        let rows = tx.list_comments(task_id, after, size + 1).await?;
        Page::from_overfetch(rows, size, None, |c| c.id)
    }

    /// A comment of a visible task.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = task_id, comment.id = id))]
    pub async fn get(&self, actor: &Actor, task_id: i64, id: i64) -> Result<Comment> {
        let mut tx = self.ctx.store.read().await?;
        visible_task(&mut *tx, actor, task_id).await?;
        tx.get_comment(task_id, id).await?.ok_or(Error::NotFound("comment"))
    }

    /// Adds a comment to a visible task.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = task_id))]
    pub async fn add(&self, actor: &Actor, task_id: i64, body: &str) -> Result<Comment> {
        self.add_idempotent(actor, task_id, body, None).await?.into_done()
    }

    /// As [`CommentService::add`], performed at most once per `key`.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = task_id))]
    pub async fn add_idempotent(
        &self,
        actor: &Actor,
        task_id: i64,
        body: &str,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<Comment>> {
        let body = check_comment_body(body)?;
        let now = self.ctx.clock.now();
        let mut tx = match idempotency::begin(&self.ctx, actor, key).await? {
            Ok(tx) => tx,
            Err((status, body)) => return Ok(Idempotent::Replayed { status, body }),
        };
        let (task, _) = visible_task(&mut *tx, actor, task_id).await?;
        let c = tx.insert_comment(task_id, actor.user_id, &body, now).await?;
        record(&mut *tx, actor, &task, HistoryAction::CommentAdded, change(Value::Null, json!(c)), now).await?;
        idempotency::finish(&mut *tx, actor, key, 201, &c).await?;
        tx.commit().await?;
        Ok(Idempotent::Done(c))
    }

    /// Edits a comment (its author only).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = task_id, comment.id = id))]
    pub async fn edit(
        &self,
        actor: &Actor,
        task_id: i64,
        id: i64,
        body: &str,
        if_match: Option<i64>,
    ) -> Result<Comment> {
        let body = check_comment_body(body)?;
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let (task, _) = visible_task(&mut *tx, actor, task_id).await?;
        let c = tx.get_comment(task_id, id).await?.ok_or(Error::NotFound("comment"))?;
        if c.author != Some(actor.user_id) {
            return Err(Error::Forbidden("only the author may edit a comment".into()));
        }
        if if_match.is_some_and(|v| v != c.version) {
            return Err(Error::PreconditionFailed { current: c.version });
        }
        if c.body == body {
            return Ok(c);
        }
        let saved = tx
            .update_comment(id, &body, c.version, now)
            .await?
            .ok_or(Error::PreconditionFailed { current: c.version + 1 })?;
        record(&mut *tx, actor, &task, HistoryAction::CommentEdited, change(json!(c), json!(saved)), now).await?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Deletes a comment: its author, an editor of the task, or staff.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = task_id, comment.id = id))]
    pub async fn delete(&self, actor: &Actor, task_id: i64, id: i64, if_match: Option<i64>) -> Result<()> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let (task, m) = visible_task(&mut *tx, actor, task_id).await?;
        let c = tx.get_comment(task_id, id).await?.ok_or(Error::NotFound("comment"))?;
        if c.author != Some(actor.user_id) && !can_edit(&task, actor, &m) {
            return Err(Error::Forbidden(
                "only the author, an editor of the task or staff may delete a comment".into(),
            ));
        }
        if if_match.is_some_and(|v| v != c.version) {
            return Err(Error::PreconditionFailed { current: c.version });
        }
        tx.delete_comment(id).await?;
        record(&mut *tx, actor, &task, HistoryAction::CommentDeleted, change(json!(c), Value::Null), now).await?;
        tx.commit().await
    }
}

//! Task templates: their owner (and staff) manage them; defaults are validated like a task.

use super::extras::{Template, TemplateDefaults, TemplateInput};
use super::input::{TaskFields, TaskInput};
use super::model::Task;
use super::service::TaskService;
use crate::error::{Error, Result};
use crate::idempotency::{self, IdempotencyKey, Idempotent};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};
use crate::validation::{Patch, Violations, length};

/// Task templates.
#[derive(Clone)]
pub struct TemplateService {
    ctx: Ctx,
    tasks: TaskService,
}

fn owned(t: Option<Template>, actor: &Actor) -> Result<Template> {
    t.filter(|t| actor.is_staff || t.created_by == Some(actor.user_id)).ok_or(Error::NotFound("template"))
}

/// Validates defaults exactly as a task's fields (the title may be absent).
fn check_defaults(raw: serde_json::Value) -> Result<TemplateDefaults> {
    let d: TemplateDefaults =
        serde_json::from_value(raw.clone()).map_err(|e| Error::field("defaults", format!("invalid defaults: {e}")))?;
    let input: TaskInput = serde_json::from_value(raw).map_err(|e| Error::field("defaults", e.to_string()))?;
    let mut v = Violations::new();
    TaskFields::default().apply(&input, &mut v);
    if let Err(Error::Validation { fields }) = v.finish() {
        let mut v = Violations::new();
        for (f, msgs) in fields {
            for m in msgs {
                v.add(&format!("defaults.{f}"), m);
            }
        }
        v.finish()?;
    }
    Ok(d)
}

impl TemplateService {
    pub(crate) fn new(ctx: Ctx, tasks: TaskService) -> Self {
        TemplateService { ctx, tasks }
    }

    fn resolve(input: &TemplateInput, cur: Option<&Template>) -> Result<(String, String, TemplateDefaults)> {
        let mut v = Violations::new();
        let mut name = cur.map(|t| t.name.clone()).unwrap_or_default();
        let mut description = cur.map(|t| t.description.clone()).unwrap_or_default();
        let mut defaults = cur.map(|t| t.defaults.clone()).unwrap_or_default();
        match &input.name {
            Patch::Absent if cur.is_none() => v.add("name", "is required"),
            Patch::Absent => {}
            Patch::Null => v.add("name", "must not be null"),
            Patch::Value(n) => {
                if v.check("name", length(n.trim(), 1, 150)).is_some() {
                    name = n.trim().to_owned();
                }
            }
        }
        if let Some(d) = input.description.clone().into_option() {
            let d = d.unwrap_or_default();
            if v.check("description", length(&d, 0, 2000)).is_some() {
                description = d;
            }
        }
        match input.defaults.clone().into_option() {
            None => {}
            Some(None) => defaults = TemplateDefaults::default(),
            Some(Some(raw)) => match check_defaults(raw) {
                Ok(d) => defaults = d,
                Err(Error::Validation { fields }) => {
                    for (f, msgs) in fields {
                        for m in msgs {
                            v.add(&f, m);
                        }
                    }
                }
                Err(e) => return Err(e),
            },
        }
        v.finish()?;
        Ok((name, description, defaults))
    }

    /// The caller's templates (staff: all), by id.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn list(&self, actor: &Actor, page: &PageRequest) -> Result<Page<Template>> {
        let size = page.size()?;
        let after: Option<i64> = page.position()?;
        let owner = (!actor.is_staff).then_some(actor.user_id);
        let rows = self.ctx.store.read().await?.list_templates(owner, after, size + 1).await?;
        Page::from_overfetch(rows, size, None, |t| t.id)
    }

    /// Creates a template owned by the caller.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn create(&self, actor: &Actor, input: TemplateInput) -> Result<Template> {
        self.create_idempotent(actor, input, None).await?.into_done()
    }

    /// As [`TemplateService::create`], performed at most once per `key`.
    pub async fn create_idempotent(
        &self,
        actor: &Actor,
        input: TemplateInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<Template>> {
        let (name, description, defaults) = Self::resolve(&input, None)?;
        let mut tx = match idempotency::begin(&self.ctx, actor, key).await? {
            Ok(tx) => tx,
            Err((status, body)) => return Ok(Idempotent::Replayed { status, body }),
        };
        let t = tx.insert_template(&name, &description, &defaults, actor.user_id, self.ctx.clock.now()).await?;
        idempotency::finish(&mut *tx, actor, key, 201, &t).await?;
        tx.commit().await?;
        Ok(Idempotent::Done(t))
    }

    /// A template of the caller's (staff: any).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, template.id = id))]
    pub async fn get(&self, actor: &Actor, id: i64) -> Result<Template> {
        owned(self.ctx.store.read().await?.get_template(id).await?, actor)
    }

    /// Replaces (`put`) or merges the fields of a template.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, template.id = id))]
    pub async fn update(
        &self,
        actor: &Actor,
        id: i64,
        input: TemplateInput,
        put: bool,
        if_match: Option<i64>,
    ) -> Result<Template> {
        let mut tx = self.ctx.store.begin().await?;
        let cur = owned(tx.get_template(id).await?, actor)?;
        if if_match.is_some_and(|v| v != cur.version) {
            return Err(Error::PreconditionFailed { current: cur.version });
        }
        let (name, description, defaults) = Self::resolve(&input, (!put).then_some(&cur))?;
        let saved = tx
            .update_template(id, &name, &description, &defaults, cur.version)
            .await?
            .ok_or(Error::PreconditionFailed { current: cur.version + 1 })?;
        tx.commit().await?;
        Ok(saved)
    }

    /// Deletes a template.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, template.id = id))]
    pub async fn delete(&self, actor: &Actor, id: i64, if_match: Option<i64>) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        let cur = owned(tx.get_template(id).await?, actor)?;
        if if_match.is_some_and(|v| v != cur.version) {
            return Err(Error::PreconditionFailed { current: cur.version });
        }
        tx.delete_template(id).await?;
        tx.commit().await
    }

    /// Creates a task from a template; `overrides` win over the defaults.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, template.id = id))]
    pub async fn instantiate(&self, actor: &Actor, id: i64, overrides: TaskInput) -> Result<Task> {
        self.instantiate_idempotent(actor, id, overrides, None).await?.into_done()
    }

    /// As [`TemplateService::instantiate`], performed at most once per `key`.
    pub async fn instantiate_idempotent(
        &self,
        actor: &Actor,
        id: i64,
        mut overrides: TaskInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<Task>> {
        self.get(actor, id).await?;
        overrides.template_id = Patch::Value(id);
        self.tasks.create_idempotent(actor, overrides, key).await
    }
}

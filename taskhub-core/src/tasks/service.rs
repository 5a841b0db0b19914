//! Task commands and queries. Each command runs in one transaction that writes the change,
//! exactly one history row and its outbox event.

use super::input::{TaskFields, TaskInput};
use super::model::{Assignee, AssigneeRole, Task, TaskStatus};
use super::policy::{ensure_edit, ensure_view, visibility};
use super::query::{TaskPosition, TaskQuery};
use crate::error::{Error, Result};
use crate::events::EventEnvelope;
use crate::history::{HistoryAction, HistoryEntry, NewHistory};
use crate::idempotency::{self, IdempotencyKey, Idempotent};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};
use crate::store::{TaskRow, Tx};
use crate::teams::Memberships;
use crate::validation::{Patch, Violations};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// How many times a command is retried when another writer changed the task meanwhile
/// (only when the client did not pin a version with `If-Match`).
const MAX_ATTEMPTS: usize = 5;
/// Deepest parent chain walked when checking for cycles.
const MAX_PARENT_DEPTH: usize = 10_000;

/// Whether an update replaces (PUT: omitted fields take their defaults) or merges (PATCH).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    /// Replace every writable field.
    Put,
    /// Change only the fields given.
    Patch,
}

/// Body of `assign`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AssignInput {
    /// Users to assign.
    pub users: Vec<i64>,
    /// `owner` or `collaborator` (default).
    #[serde(default)]
    pub role: Option<String>,
}

/// Body of `unassign`.
#[derive(Debug, Clone, Default, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnassignInput {
    /// Users to unassign.
    pub users: Vec<i64>,
}

/// What a command wants to do to a task.
struct Plan {
    fields: TaskFields,
    is_archived: bool,
    action: HistoryAction,
}

/// Tasks.
#[derive(Clone)]
pub struct TaskService {
    ctx: Ctx,
}

impl TaskService {
    pub(crate) fn new(ctx: Ctx) -> Self {
        TaskService { ctx }
    }

    /// Creates a task. `template_id` fills what the body omits from the template's defaults.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn create(&self, actor: &Actor, input: TaskInput) -> Result<Task> {
        self.create_idempotent(actor, input, None).await?.into_done()
    }

    /// As [`TaskService::create`], performed at most once per `key` (see [`crate::idempotency`]).
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn create_idempotent(
        &self,
        actor: &Actor,
        mut input: TaskInput,
        key: Option<&IdempotencyKey>,
    ) -> Result<Idempotent<Task>> {
        let now = self.ctx.clock.now();
        let mut tx = match idempotency::begin(&self.ctx, actor, key).await? {
            Ok(tx) => tx,
            Err((status, body)) => return Ok(Idempotent::Replayed { status, body }),
        };
        match std::mem::take(&mut input.template_id) {
            Patch::Value(tid) => {
                let t = tx.get_template(tid).await?.filter(|t| actor.is_staff || t.created_by == Some(actor.user_id));
                let t = t.ok_or_else(|| Error::field("template_id", "unknown template"))?;
                t.defaults.fill(&mut input);
            }
            Patch::Null | Patch::Absent => {}
        }
        let mut v = Violations::new();
        if !input.title.is_present() {
            v.add("title", "is required");
        }
        let fields = TaskFields::default().apply(&input, &mut v);
        v.finish()?;
        let m = tx.memberships(actor.user_id).await?;
        check_refs(&mut *tx, actor, &m, None, &fields).await?;
        let row = task_row(&fields, Some(actor.user_id), false, None, completed_at(None, &fields, now), now, now);
        let id = tx.insert_task(&row).await?;
        tx.set_assignees(id, &assignees(None, &fields, actor, now)).await?;
        tx.set_tags(id, &fields.tags, now).await?;
        let mut task = tx.get_task(id).await?.ok_or(Error::NotFound("task"))?;
        task.refresh_overdue(now);
        let changes = TaskFields::default().diff(&fields);
        record(&mut *tx, actor, &task, HistoryAction::Created, to_object(changes), now).await?;
        idempotency::finish(&mut *tx, actor, key, 201, &task).await?;
        tx.commit().await?;
        Ok(Idempotent::Done(task))
    }

    /// A task the caller may see.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn get(&self, actor: &Actor, id: i64) -> Result<Task> {
        let mut tx = self.ctx.store.read().await?;
        let mut task = tx.get_task(id).await?.ok_or(Error::NotFound("task"))?;
        let m = tx.memberships(actor.user_id).await?;
        ensure_view(&task, actor, &m)?;
        task.refresh_overdue(self.ctx.clock.now());
        Ok(task)
    }

    /// A page of the tasks the caller may see, filtered and ordered as asked.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id))]
    pub async fn list(&self, actor: &Actor, q: &TaskQuery, page: &PageRequest) -> Result<Page<Task>> {
        let now = self.ctx.clock.now();
        let f = q.resolve(actor.user_id, now)?;
        let size = page.size()?;
        let pos: Option<TaskPosition> = page.position()?;
        if pos.as_ref().is_some_and(|p| p.o != f.ordering_name()) {
            return Err(Error::field("cursor", "belongs to another ordering"));
        }
        let vis = visibility(actor);
        let mut tx = self.ctx.store.read().await?;
        let mut rows = tx.list_tasks(&f, &vis, pos.as_ref(), size + 1).await?;
        let count = tx.count_tasks(&f, &vis).await?;
        rows.iter_mut().for_each(|t| t.refresh_overdue(now));
        Page::from_overfetch(rows, size, Some(count), |t| f.position_of(t))
    }

    /// PUT or PATCH of the writable fields.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn update(
        &self,
        actor: &Actor,
        id: i64,
        input: TaskInput,
        mode: WriteMode,
        if_match: Option<i64>,
    ) -> Result<Task> {
        if input.template_id.is_present() {
            return Err(Error::field("template_id", "can only be given when creating a task"));
        }
        self.mutate(actor, id, if_match, |task| {
            let base = match mode {
                WriteMode::Patch => TaskFields::of(task),
                WriteMode::Put => TaskFields::default(),
            };
            let mut v = Violations::new();
            if mode == WriteMode::Put && !input.title.is_present() {
                v.add("title", "is required");
            }
            let fields = base.apply(&input, &mut v);
            v.finish()?;
            let action =
                if fields.status != task.status { HistoryAction::StatusChanged } else { HistoryAction::Updated };
            Ok(Plan { fields, is_archived: task.is_archived, action })
        })
        .await
    }

    /// Archives (soft-deletes) a task; archiving an archived task changes nothing.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn archive(&self, actor: &Actor, id: i64, if_match: Option<i64>) -> Result<Task> {
        self.mutate(actor, id, if_match, |task| {
            Ok(Plan { fields: TaskFields::of(task), is_archived: true, action: HistoryAction::Archived })
        })
        .await
    }

    /// Restores an archived task.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn unarchive(&self, actor: &Actor, id: i64, if_match: Option<i64>) -> Result<Task> {
        self.mutate(actor, id, if_match, |task| {
            Ok(Plan { fields: TaskFields::of(task), is_archived: false, action: HistoryAction::Unarchived })
        })
        .await
    }

    /// Assigns users with a role (default collaborator); an assigned user gets the new role.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn assign(&self, actor: &Actor, id: i64, input: AssignInput, if_match: Option<i64>) -> Result<Task> {
        let mut v = Violations::new();
        let role = match input.role.as_deref() {
            None => Some(AssigneeRole::Collaborator),
            Some(r) => v.check("role", AssigneeRole::parse(r)),
        };
        check_user_list(&mut v, &input.users);
        v.finish()?;
        let role = role.unwrap_or(AssigneeRole::Collaborator);
        self.mutate(actor, id, if_match, |task| {
            let mut fields = TaskFields::of(task);
            for u in &input.users {
                match fields.assignees.iter_mut().find(|(id, _)| id == u) {
                    Some(a) => a.1 = role,
                    None => fields.assignees.push((*u, role)),
                }
            }
            Ok(Plan { fields, is_archived: task.is_archived, action: HistoryAction::Assigned })
        })
        .await
    }

    /// Unassigns users; users who were not assigned are ignored.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn unassign(&self, actor: &Actor, id: i64, input: UnassignInput, if_match: Option<i64>) -> Result<Task> {
        let mut v = Violations::new();
        check_user_list(&mut v, &input.users);
        v.finish()?;
        self.mutate(actor, id, if_match, |task| {
            let mut fields = TaskFields::of(task);
            fields.assignees.retain(|(id, _)| !input.users.contains(id));
            Ok(Plan { fields, is_archived: task.is_archived, action: HistoryAction::Unassigned })
        })
        .await
    }

    /// History of a task the caller may see, newest first.
    #[tracing::instrument(skip_all, fields(user.id = actor.user_id, task.id = id))]
    pub async fn history(&self, actor: &Actor, id: i64, page: &PageRequest) -> Result<Page<HistoryEntry>> {
        let size = page.size()?;
        let before: Option<(DateTime<Utc>, i64)> = page.position()?;
        let mut tx = self.ctx.store.read().await?;
        let task = tx.get_task(id).await?.ok_or(Error::NotFound("task"))?;
        let m = tx.memberships(actor.user_id).await?;
        ensure_view(&task, actor, &m)?;
        let rows = tx.list_history(id, before, size + 1).await?;
        Page::from_overfetch(rows, size, None, |h| (h.created_at, h.id))
    }

    /// Loads, authorizes and changes one task in one transaction, retrying when a concurrent
    /// writer got there first (unless the client pinned the version).
    async fn mutate(
        &self,
        actor: &Actor,
        id: i64,
        if_match: Option<i64>,
        plan: impl Fn(&Task) -> Result<Plan>,
    ) -> Result<Task> {
        for _ in 0..MAX_ATTEMPTS {
            let now = self.ctx.clock.now();
            let mut tx = self.ctx.store.begin().await?;
            let mut task = tx.lock_task(id).await?.ok_or(Error::NotFound("task"))?;
            let m = tx.memberships(actor.user_id).await?;
            ensure_edit(&task, actor, &m)?;
            if if_match.is_some_and(|v| v != task.version) {
                return Err(Error::PreconditionFailed { current: task.version });
            }
            let p = plan(&task)?;
            let before = TaskFields::of(&task);
            let mut changes = to_object(before.diff(&p.fields));
            if p.is_archived != task.is_archived {
                changes.insert("is_archived".into(), json!({"from": task.is_archived, "to": p.is_archived}));
            }
            if changes.is_empty() {
                task.refresh_overdue(now);
                return Ok(task);
            }
            check_refs(&mut *tx, actor, &m, Some(&task), &p.fields).await?;
            let archived_at = match (task.is_archived, p.is_archived) {
                (false, true) => Some(now),
                (true, true) => task.archived_at,
                _ => None,
            };
            let row = task_row(
                &p.fields,
                task.created_by,
                p.is_archived,
                archived_at,
                completed_at(Some(&task), &p.fields, now),
                task.created_at,
                now,
            );
            if !tx.update_task(id, &row, task.version).await? {
                if if_match.is_some() {
                    let current = tx.get_task(id).await?.map_or(task.version, |t| t.version);
                    return Err(Error::PreconditionFailed { current });
                }
                continue;
            }
            if changes.contains_key("assignees") {
                tx.set_assignees(id, &assignees(Some(&task), &p.fields, actor, now)).await?;
            }
            if changes.contains_key("tags") {
                tx.set_tags(id, &p.fields.tags, now).await?;
            }
            let mut fresh = tx.get_task(id).await?.ok_or(Error::NotFound("task"))?;
            fresh.refresh_overdue(now);
            record(&mut *tx, actor, &fresh, p.action, changes, now).await?;
            tx.commit().await?;
            return Ok(fresh);
        }
        Err(Error::Conflict("the task kept changing concurrently; retry".into()))
    }
}

fn check_user_list(v: &mut Violations, users: &[i64]) {
    if users.is_empty() {
        v.add("users", "must not be empty");
    } else if users.len() > super::input::MAX_ASSIGNEES {
        v.add("users", format!("at most {} users", super::input::MAX_ASSIGNEES));
    }
}

fn to_object(m: std::collections::BTreeMap<String, Value>) -> Map<String, Value> {
    m.into_iter().collect()
}

/// Writes the history row and the outbox event of one action.
pub(crate) async fn record(
    tx: &mut dyn Tx,
    actor: &Actor,
    task: &Task,
    action: HistoryAction,
    changes: Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<()> {
    let changes = Value::Object(changes);
    tx.insert_history(&NewHistory {
        task_id: task.id,
        action,
        actor: Some(actor.user_id),
        changes: changes.clone(),
        created_at: now,
    })
    .await?;
    let data = json!({"task": task, "changes": changes});
    let event_type = match action.as_str().strip_prefix("comment_") {
        Some(what) => format!("comment.{what}"),
        None => format!("task.{}", action.as_str()),
    };
    let ev = EventEnvelope::new(&event_type, "task", task.id, Some(actor.user_id), now, data);
    tx.insert_outbox(&ev).await?;
    Ok(())
}

/// `completed_at` after a change: set on entering `done`, kept while done, cleared on leaving.
fn completed_at(before: Option<&Task>, after: &TaskFields, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match (before, after.status) {
        (Some(t), TaskStatus::Done) if t.status == TaskStatus::Done => t.completed_at,
        (_, TaskStatus::Done) => Some(now),
        _ => None,
    }
}

/// The assignee rows after a change: existing assignments keep who assigned them and when.
fn assignees(before: Option<&Task>, f: &TaskFields, actor: &Actor, now: DateTime<Utc>) -> Vec<Assignee> {
    let mut out: Vec<Assignee> = f
        .assignees
        .iter()
        .map(|(user_id, role)| match before.and_then(|t| t.assignees.iter().find(|a| a.user_id == *user_id)) {
            Some(a) => Assignee { role: *role, ..a.clone() },
            None => Assignee { user_id: *user_id, role: *role, assigned_by: Some(actor.user_id), assigned_at: now },
        })
        .collect();
    out.sort_by_key(|a| a.user_id);
    out
}

fn task_row(
    f: &TaskFields,
    created_by: Option<i64>,
    is_archived: bool,
    archived_at: Option<DateTime<Utc>>,
    completed_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
) -> TaskRow {
    TaskRow {
        title: f.title.clone(),
        description: f.description.clone(),
        status: f.status.as_str(),
        priority: f.priority.rank(),
        due_date: f.due_date,
        estimated_hours: f.estimated_hours.map(|h| h.hundredths()),
        actual_hours: f.actual_hours.map(|h| h.hundredths()),
        created_by,
        assigned_team: f.assigned_team,
        parent_task: f.parent_task,
        metadata: f.metadata.clone(),
        is_archived,
        archived_at,
        completed_at,
        created_at,
        updated_at,
    }
}

/// Checks what the fields refer to: a team the actor belongs to, a visible parent that makes
/// no cycle, and active assignees. Unchanged references are not re-checked.
async fn check_refs(
    tx: &mut dyn Tx,
    actor: &Actor,
    m: &Memberships,
    current: Option<&Task>,
    f: &TaskFields,
) -> Result<()> {
    let mut v = Violations::new();
    if let Some(team) = f.assigned_team.filter(|t| current.is_none_or(|c| c.assigned_team != Some(*t))) {
        let exists = tx.get_team(team).await?.is_some();
        if !exists || !(actor.is_staff || m.is_member(team)) {
            v.add("assigned_team", "unknown team, or one you are not a member of");
        }
    }
    if let Some(parent) = f.parent_task.filter(|p| current.is_none_or(|c| c.parent_task != Some(*p))) {
        if current.is_some_and(|c| c.id == parent) {
            v.add("parent_task", "a task cannot be its own parent");
        } else {
            let visible = match tx.get_task(parent).await? {
                Some(p) => super::policy::can_view(&p, actor, m),
                None => false,
            };
            if !visible {
                v.add("parent_task", "unknown task");
            } else if let Some(c) = current {
                let mut at = parent;
                for _ in 0..MAX_PARENT_DEPTH {
                    if at == c.id {
                        v.add("parent_task", "would create a cycle");
                        break;
                    }
                    match tx.get_parent(at).await? {
                        Some(Some(next)) => at = next,
                        _ => break,
                    }
                }
            }
        }
    }
    let new_ids: Vec<i64> =
        f.assignees.iter().map(|(id, _)| *id).filter(|id| current.is_none_or(|c| c.role_of(*id).is_none())).collect();
    if !new_ids.is_empty() {
        let active = tx.active_user_ids(&new_ids).await?;
        let bad: Vec<String> = new_ids.iter().filter(|i| !active.contains(i)).map(i64::to_string).collect();
        if !bad.is_empty() {
            v.add("assignees", format!("unknown or inactive users: {}", bad.join(", ")));
        }
    }
    v.finish()
}

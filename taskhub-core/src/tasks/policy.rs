//! Who may see and change a task (API.md "Tasks"). Every service asks here; handlers never decide.

use super::model::{AssigneeRole, Task};
use crate::error::{Error, Result};
use crate::services::Actor;
use crate::store::Visibility;
use crate::teams::Memberships;

/// Creator, assignees, members of the task's team, and staff see a task.
pub fn can_view(task: &Task, actor: &Actor, m: &Memberships) -> bool {
    actor.is_staff
        || task.created_by == Some(actor.user_id)
        || task.role_of(actor.user_id).is_some()
        || task.assigned_team.is_some_and(|t| m.is_member(t))
}

/// Creator, assignees with role owner, the admin of the task's team, and staff edit a task
/// (update, assign, archive).
pub fn can_edit(task: &Task, actor: &Actor, m: &Memberships) -> bool {
    actor.is_staff
        || task.created_by == Some(actor.user_id)
        || task.role_of(actor.user_id) == Some(AssigneeRole::Owner)
        || task.assigned_team.is_some_and(|t| m.is_admin(t))
}

/// The list filter equivalent to [`can_view`].
pub fn visibility(actor: &Actor) -> Visibility {
    if actor.is_staff { Visibility::All } else { Visibility::User { id: actor.user_id } }
}

/// `Ok` if visible, else not found (existence is never leaked).
pub fn ensure_view(task: &Task, actor: &Actor, m: &Memberships) -> Result<()> {
    if can_view(task, actor, m) { Ok(()) } else { Err(Error::NotFound("task")) }
}

/// Not found if invisible, forbidden if visible but not editable.
pub fn ensure_edit(task: &Task, actor: &Actor, m: &Memberships) -> Result<()> {
    ensure_view(task, actor, m)?;
    if can_edit(task, actor, m) {
        Ok(())
    } else {
        Err(Error::Forbidden("you may view this task but not change it".into()))
    }
}

//! The services an application mounts: one value holding every domain service over one store.

use crate::auth::PasswordHasher;
use crate::clock::{Clock, SystemClock};
use crate::idempotency::IdempotencyService;
use crate::maintenance::MaintenanceService;
use crate::projections::ProjectionService;
use crate::store::Store;
use crate::tasks::{CommentService, TagService, TaskService, TemplateService};
use crate::teams::TeamService;
use crate::users::UserService;
use std::sync::Arc;

/// Who performs an operation: an authenticated user.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Actor {
    /// The user's id.
    pub user_id: i64,
    /// Staff may see and change everything.
    pub is_staff: bool,
}

impl Actor {
    /// A regular user.
    pub fn user(user_id: i64) -> Self {
        Actor { user_id, is_staff: false }
    }

    /// A staff user.
    pub fn staff(user_id: i64) -> Self {
        Actor { user_id, is_staff: true }
    }
}

/// What every service needs: the store and the clock.
#[derive(Clone)]
pub struct Ctx {
    /// Storage.
    pub store: Arc<dyn Store>,
    /// Time.
    pub clock: Arc<dyn Clock>,
}

/// Every domain service over one store.
#[derive(Clone)]
pub struct Services {
    /// Shared context.
    pub ctx: Ctx,
    /// Users.
    pub users: UserService,
    /// Teams.
    pub teams: TeamService,
    /// Tasks.
    pub tasks: TaskService,
    /// Comments on tasks.
    pub comments: CommentService,
    /// Tags.
    pub tags: TagService,
    /// Task templates.
    pub templates: TemplateService,
    /// Idempotency keys of actions.
    pub idempotency: IdempotencyService,
    /// What the event consumers built: feed, search, audit, notifications, counters.
    pub projections: ProjectionService,
    /// The maintenance jobs' work: overdue scan, archive cleanup, daily summaries.
    pub maintenance: MaintenanceService,
}

impl Services {
    /// Services over `store` with the system clock.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self::with_clock(store, Arc::new(SystemClock))
    }

    /// Services over `store` reading time from `clock`.
    pub fn with_clock(store: Arc<dyn Store>, clock: Arc<dyn Clock>) -> Self {
        Self::build(Ctx { store, clock }, PasswordHasher::default())
    }

    /// Services with an explicit password hasher (tests use cheaper parameters).
    pub fn build(ctx: Ctx, hasher: PasswordHasher) -> Self {
        let tasks = TaskService::new(ctx.clone());
        Services {
            users: UserService::new(ctx.clone(), hasher),
            teams: TeamService::new(ctx.clone()),
            comments: CommentService::new(ctx.clone()),
            tags: TagService::new(ctx.clone()),
            templates: TemplateService::new(ctx.clone(), tasks.clone()),
            tasks,
            idempotency: IdempotencyService::new(ctx.clone()),
            projections: ProjectionService::new(ctx.clone()),
            maintenance: MaintenanceService::new(ctx.clone()),
            ctx,
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.ctx.store
    }
}

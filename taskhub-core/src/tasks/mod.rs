//! Tasks and what hangs off them: assignments, tags, templates, comments and history.

mod comments;
mod extras;
mod input;
mod model;
pub mod policy;
mod query;
mod service;
mod tags;
mod templates;

pub use comments::CommentService;
pub use extras::{Comment, MAX_COMMENT, Tag, TagInput, Template, TemplateDefaults, TemplateInput, check_comment_body};
pub use input::{
    AssigneeInput, MAX_ASSIGNEES, MAX_DESCRIPTION, MAX_METADATA_BYTES, MAX_TAGS, TaskFields, TaskInput, check_metadata,
    normalize_tags, parse_timestamp,
};
pub use model::{Assignee, AssigneeRole, Hours, Priority, Task, TaskStatus};
pub use query::{ArchivedFilter, OrderField, TaskFilter, TaskPosition, TaskQuery};
pub use service::{AssignInput, TaskService, UnassignInput, WriteMode};
pub use tags::TagService;
pub use templates::TemplateService;

//! The five event consumers of EVENTS.md and the read-back queries over what they build:
//! activity feed, search index, audit log, notifications and analytics counters.
//!
//! Each consumer's effect runs in the transaction that records the event id
//! ([`crate::events::consumer`]), so every one is exactly-once in effect. Where two instances
//! may see one entity's events out of order (Redis consumer groups), the effect does not
//! depend on order: the search index re-reads the task's current row, the feed and
//! notifications insert one row per event, the counters add.

mod activity;
mod analytics;
mod audit;
mod notifications;
mod queries;
mod search;

pub use activity::ActivityFeed;
pub use analytics::AnalyticsAggregator;
pub use audit::{AuditLog, ChainBreak, GENESIS_HASH, chain_hash};
pub use notifications::{LiveNotification, Notifications, mail_recipients, recipients as recipients_of};
pub use queries::{ProjectionService, SearchHit};
pub use search::{SearchIndex, terms};

use crate::events::consumer::Consumer;
use crate::events::{EventEnvelope, TOPIC_TASK_EVENTS};
use serde_json::Value;
use std::sync::Arc;

/// The five consumers, in the order EVENTS.md lists them.
pub fn all() -> Vec<Arc<dyn Consumer>> {
    vec![
        Arc::new(ActivityFeed),
        Arc::new(SearchIndex),
        Arc::new(AuditLog),
        Arc::new(Notifications::default()),
        Arc::new(AnalyticsAggregator),
    ]
}

/// The consumer of `name`, if it is one of the five.
pub fn by_name(name: &str) -> Option<Arc<dyn Consumer>> {
    all().into_iter().find(|c| c.name() == name)
}

/// The task snapshot a task or comment event carries (`data.task`).
fn task_of(e: &EventEnvelope) -> Option<&Value> {
    if e.topic() == TOPIC_TASK_EVENTS { e.data.get("task") } else { None }
}

/// User ids in a JSON value: integers, or objects with `user_id`, in arrays or alone.
fn user_ids(v: &Value) -> Vec<i64> {
    match v {
        Value::Number(n) => n.as_i64().into_iter().collect(),
        Value::Object(o) => o.get("user_id").and_then(Value::as_i64).into_iter().collect(),
        Value::Array(a) => a.iter().flat_map(user_ids).collect(),
        _ => Vec::new(),
    }
}

/// Creator and assignees of a task snapshot.
fn task_people(task: &Value) -> Vec<i64> {
    let mut out: Vec<i64> = task.get("created_by").and_then(Value::as_i64).into_iter().collect();
    out.extend(task.get("assignees").map(user_ids).unwrap_or_default());
    out
}

fn sort_dedup(mut v: Vec<i64>) -> Vec<i64> {
    v.sort_unstable();
    v.dedup();
    v
}

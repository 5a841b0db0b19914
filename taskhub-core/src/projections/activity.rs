//! activity-feed: one row per event per user it concerns — the actor, the task's creator and
//! assignees and its team's members; for user and team events the user and the team's members.

use super::{sort_dedup, task_of, task_people, user_ids};
use crate::error::Result;
use crate::events::consumer::Consumer;
use crate::events::{EventEnvelope, TOPIC_TASK_EVENTS, TOPIC_USER_ACTIVITIES};
use crate::store::Tx;
use crate::store::consume::NewActivity;
use async_trait::async_trait;
use serde_json::Value;

/// The activity-feed consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct ActivityFeed;

/// Teams bigger than this get no per-member feed rows (a feed is not a broadcast channel).
const MAX_TEAM_FANOUT: u32 = 1000;

async fn team_members(tx: &mut dyn Tx, team: i64) -> Result<Vec<i64>> {
    Ok(tx.list_team_members(team, None, MAX_TEAM_FANOUT).await?.into_iter().map(|u| u.id).collect())
}

/// A line for people: `alice's task "Fix login": status_changed`.
fn summary(e: &EventEnvelope) -> String {
    let what = e.event_type.split_once('.').map_or(e.event_type.as_str(), |(_, w)| w).replace('_', " ");
    let kind = e.event_type.split('.').next().unwrap_or_default();
    let title = task_of(e)
        .and_then(|t| t.get("title"))
        .or_else(|| e.data.get("name"))
        .or_else(|| e.data.get("username"))
        .and_then(Value::as_str);
    match title {
        Some(t) => format!("{kind} {what}: {t}"),
        None => format!("{kind} {what}: {} #{}", e.entity.kind, e.entity.id),
    }
}

#[async_trait]
impl Consumer for ActivityFeed {
    fn name(&self) -> &'static str {
        "activity-feed"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[TOPIC_USER_ACTIVITIES, TOPIC_TASK_EVENTS]
    }

    async fn apply(&self, tx: &mut dyn Tx, e: &EventEnvelope) -> Result<()> {
        let mut users: Vec<i64> = e.actor_id.into_iter().collect();
        if let Some(task) = task_of(e) {
            users.extend(task_people(task));
            // Assignees removed by this very event still hear of it.
            if let Some(from) = e.data.pointer("/changes/assignees/from") {
                users.extend(user_ids(from));
            }
            if let Some(team) = task.get("assigned_team").and_then(Value::as_i64) {
                users.extend(team_members(tx, team).await?);
            }
        } else {
            match e.entity.kind.as_str() {
                "user" => users.push(e.entity.id),
                "team" => {
                    users.extend(team_members(tx, e.entity.id).await?);
                    users.extend(e.data.get("user_id").and_then(Value::as_i64));
                }
                _ => {}
            }
        }
        let users = sort_dedup(users);
        let row = NewActivity {
            event_id: e.id.to_string(),
            event_type: e.event_type.clone(),
            actor_id: e.actor_id,
            entity_kind: e.entity.kind.clone(),
            entity_id: e.entity.id,
            summary: summary(e),
            occurred_at: e.occurred_at,
        };
        tx.insert_activity(&row, &users).await
    }
}

//! notifications: a per-user notification when a task of theirs is assigned to them, commented
//! on, changes status or becomes overdue — never for the user's own action. Each committed
//! notification is also pushed to live subscribers (the user's open pages), and the mails of
//! the event are queued in the same transaction for the job runner to send.

use super::{sort_dedup, task_of, task_people, user_ids};
use crate::error::Result;
use crate::events::consumer::Consumer;
use crate::events::{EventEnvelope, TOPIC_SYSTEM_NOTIFICATIONS, TOPIC_TASK_EVENTS};
use crate::store::Tx;
use crate::store::consume::NewNotification;
use crate::store::maintain::NewMail;
use async_trait::async_trait;
use serde::Serialize;
use serde_json::Value;
use std::sync::Mutex;
use tokio::sync::broadcast;

/// A notification as pushed live, after it committed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LiveNotification {
    /// Recipient.
    pub user_id: i64,
    /// Kind.
    pub kind: &'static str,
    /// The task.
    pub task_id: i64,
    /// The event it came from.
    pub event_id: String,
    /// One line for people.
    pub message: String,
}

/// The notifications consumer.
pub struct Notifications {
    live: broadcast::Sender<LiveNotification>,
    /// What the current transaction will push once committed, by event id.
    pending: Mutex<Vec<(String, Vec<LiveNotification>)>>,
}

impl Default for Notifications {
    fn default() -> Self {
        Notifications { live: broadcast::channel(1024).0, pending: Mutex::default() }
    }
}

impl Notifications {
    /// Notifications as they commit from now on (live pages filter by user).
    pub fn subscribe(&self) -> broadcast::Receiver<LiveNotification> {
        self.live.subscribe()
    }
}

/// Who hears of `e`, as what, with which message; the actor is never among them.
pub fn recipients(e: &EventEnvelope) -> Vec<NewNotification> {
    let Some(task) = task_of(e) else { return Vec::new() };
    let Some(task_id) = task.get("id").and_then(Value::as_i64) else { return Vec::new() };
    let title = task.get("title").and_then(Value::as_str).unwrap_or_default();
    let (kind, users, message): (&'static str, Vec<i64>, String) = match e.event_type.as_str() {
        "task.assigned" => {
            let before = e.data.pointer("/changes/assignees/from").map(user_ids).unwrap_or_default();
            let now = e.data.pointer("/changes/assignees/to").map(user_ids).unwrap_or_default();
            let added = now.into_iter().filter(|u| !before.contains(u)).collect();
            ("assigned", added, format!("You were assigned to \"{title}\""))
        }
        "comment.added" => ("comment", task_people(task), format!("New comment on \"{title}\"")),
        "task.status_changed" => {
            let status = task.get("status").and_then(Value::as_str).unwrap_or_default();
            ("status_changed", task_people(task), format!("\"{title}\" is now {status}"))
        }
        "task.overdue" => {
            let assignees = task.get("assignees").map(user_ids).unwrap_or_default();
            let who = if assignees.is_empty() {
                task.get("created_by").and_then(Value::as_i64).into_iter().collect()
            } else {
                assignees
            };
            ("overdue", who, format!("\"{title}\" is overdue"))
        }
        _ => return Vec::new(),
    };
    sort_dedup(users)
        .into_iter()
        .filter(|u| Some(*u) != e.actor_id)
        .map(|user_id| NewNotification {
            user_id,
            kind,
            task_id,
            event_id: e.id.to_string(),
            message: message.clone(),
            created_at: e.occurred_at,
        })
        .collect()
}

/// Who is mailed about `e` (EVENTS.md: "email through a job"): the task's assignees, else its
/// creator, on created, assigned, status changed, comment added and overdue — never the actor.
pub fn mail_recipients(e: &EventEnvelope) -> Vec<NewMail> {
    let kind = match e.event_type.as_str() {
        "task.created" => "created",
        "task.assigned" => "assigned",
        "task.status_changed" => "status_changed",
        "comment.added" => "comment",
        "task.overdue" => "overdue",
        _ => return Vec::new(),
    };
    let Some(task) = task_of(e) else { return Vec::new() };
    let assignees = task.get("assignees").map(user_ids).unwrap_or_default();
    let users = if assignees.is_empty() {
        task.get("created_by").and_then(Value::as_i64).into_iter().collect()
    } else {
        assignees
    };
    let data = serde_json::json!({
        "task_id": task.get("id"),
        "title": task.get("title"),
        "status": task.get("status"),
        "due_date": task.get("due_date"),
        "actor_id": e.actor_id,
        "comment": e.data.pointer("/changes/comment/to/body"),
    });
    sort_dedup(users)
        .into_iter()
        .filter(|u| Some(*u) != e.actor_id)
        .map(|user_id| NewMail {
            key: format!("{}:{user_id}", e.id),
            user_id,
            kind: kind.to_owned(),
            task_id: task.get("id").and_then(Value::as_i64),
            event_id: e.id.to_string(),
            data: data.clone(),
            created_at: e.occurred_at,
        })
        .collect()
}

#[async_trait]
impl Consumer for Notifications {
    fn name(&self) -> &'static str {
        "notifications"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[TOPIC_TASK_EVENTS, TOPIC_SYSTEM_NOTIFICATIONS]
    }

    async fn apply(&self, tx: &mut dyn Tx, e: &EventEnvelope) -> Result<()> {
        let all = recipients(e);
        for n in &all {
            tx.insert_notification(n).await?;
        }
        // The mails are queued with the effect: an applied event never loses its mail.
        for m in mail_recipients(e) {
            tx.insert_mail(&m).await?;
        }
        let live = all
            .into_iter()
            .map(|n| LiveNotification {
                user_id: n.user_id,
                kind: n.kind,
                task_id: n.task_id,
                event_id: n.event_id,
                message: n.message,
            })
            .collect();
        if let Ok(mut p) = self.pending.lock() {
            // Only the latest attempt of an event counts; a rolled-back one is replaced.
            p.retain(|(id, _)| *id != e.id.to_string());
            p.push((e.id.to_string(), live));
        }
        Ok(())
    }

    fn committed(&self, e: &EventEnvelope) {
        let id = e.id.to_string();
        let mine = self.pending.lock().ok().and_then(|mut p| {
            let i = p.iter().position(|(x, _)| *x == id)?;
            Some(p.swap_remove(i).1)
        });
        for n in mine.unwrap_or_default() {
            // No open page is not an error.
            let _ = self.live.send(n);
        }
    }
}

//! Domain events and their envelope (EVENTS.md).
//!
//! Services write events into the transactional outbox together with the change that caused
//! them; a relay publishes the outbox to the configured bus.

mod bus;
pub mod consumer;
#[cfg(feature = "kafka")]
mod kafka_bus;
#[cfg(feature = "redis")]
mod redis_bus;
#[cfg(feature = "redis")]
mod redis_source;
mod relay;
mod source;

pub use bus::{EventPublisher, MemoryBus, PublishedEvent};
#[cfg(feature = "kafka")]
pub use kafka_bus::KafkaBus;
#[cfg(feature = "redis")]
pub use redis_bus::RedisPublisher;
#[cfg(feature = "redis")]
pub use redis_source::RedisSource;
pub use relay::Relay;
pub use source::{Delivery, EventSource, MemorySource, Position, Subscription};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

/// Major version of every event type this build emits.
pub const EVENT_VERSION: i32 = 1;

/// The topic of task and comment events.
pub const TOPIC_TASK_EVENTS: &str = "task-events";
/// The topic of user and team events.
pub const TOPIC_USER_ACTIVITIES: &str = "user-activities";
/// The topic of analytics events.
pub const TOPIC_ANALYTICS_EVENTS: &str = "analytics-events";
/// The topic of system notifications.
pub const TOPIC_SYSTEM_NOTIFICATIONS: &str = "system-notifications";

/// What an event is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntityRef {
    /// `task`, `comment`, `user`, `team`, `report`, `job`, `key`…
    pub kind: String,
    /// The entity's id.
    pub id: i64,
}

/// The versioned envelope every event travels in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// UUIDv7: unique, and roughly ordered by time.
    pub id: Uuid,
    /// `task.created`, `user.logged_in`…
    #[serde(rename = "type")]
    pub event_type: String,
    /// Major version of the type's schema.
    pub version: i32,
    /// When the change happened.
    pub occurred_at: DateTime<Utc>,
    /// Who caused it (`None` for the system).
    pub actor_id: Option<i64>,
    /// The entity it is about; also the partition key.
    pub entity: EntityRef,
    /// Type-specific payload.
    pub data: Value,
}

impl EventEnvelope {
    /// A new event of `event_type` about `kind:id`.
    pub fn new(
        event_type: &str,
        kind: &str,
        id: i64,
        actor_id: Option<i64>,
        occurred_at: DateTime<Utc>,
        data: Value,
    ) -> Self {
        EventEnvelope {
            id: Uuid::now_v7(),
            event_type: event_type.to_owned(),
            version: EVENT_VERSION,
            occurred_at,
            actor_id,
            entity: EntityRef { kind: kind.to_owned(), id },
            data,
        }
    }

    /// The topic this event belongs on, derived from its type.
    pub fn topic(&self) -> &'static str {
        let prefix = self.event_type.split('.').next().unwrap_or_default();
        match prefix {
            "task" | "comment" => TOPIC_TASK_EVENTS,
            "user" | "team" => TOPIC_USER_ACTIVITIES,
            "analytics" | "report" => TOPIC_ANALYTICS_EVENTS,
            _ => TOPIC_SYSTEM_NOTIFICATIONS,
        }
    }

    /// The partition key `"{kind}:{id}"`, which keeps one entity's events in order.
    ///
    /// Comment events are keyed by their task, so a task's comments stay in order with it.
    pub fn key(&self) -> String {
        match (self.entity.kind.as_str(), self.data.get("task_id").and_then(Value::as_i64)) {
            ("comment", Some(task)) => format!("task:{task}"),
            _ => format!("{}:{}", self.entity.kind, self.entity.id),
        }
    }
}

/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboxRecord {
    /// Position in the outbox (publication order).
    pub id: i64,
    /// Topic.
    pub topic: String,
    /// Partition key.
    pub key: String,
    /// The envelope.
    pub event: EventEnvelope,
    /// When the relay saw the bus acknowledge it.
    pub published_at: Option<DateTime<Utc>>,
}

//! Publishing events: the [`EventPublisher`] trait the relay writes to, and the in-process bus
//! of the embedded deployment.

use super::{EventEnvelope, OutboxRecord};
use crate::error::Result;
use async_trait::async_trait;
use std::sync::{Arc, Mutex};
use tokio::sync::{Notify, broadcast};

/// A bus the outbox relay publishes to.
#[cfg_attr(any(test, feature = "mock"), mockall::automock)]
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Publishes `batch` in order and returns only once the bus has acknowledged every event.
    /// An error means nothing may be assumed acknowledged: the relay publishes them again.
    async fn publish(&self, batch: &[OutboxRecord]) -> Result<()>;

    /// Called after the relay recorded a batch as published (the in-process bus wakes its
    /// readers here: they read what the relay recorded).
    fn marked(&self) {}
}

/// One event as a bus carries it.
#[derive(Debug, Clone, PartialEq)]
pub struct PublishedEvent {
    /// Topic.
    pub topic: String,
    /// Partition key.
    pub key: String,
    /// The envelope.
    pub event: EventEnvelope,
}

/// The in-process bus: live subscriptions, and optionally a log of everything published.
#[derive(Debug)]
pub struct MemoryBus {
    log: Option<Mutex<Vec<PublishedEvent>>>,
    live: broadcast::Sender<Arc<PublishedEvent>>,
    wake: Arc<Notify>,
}

impl Default for MemoryBus {
    fn default() -> Self {
        MemoryBus { log: None, live: broadcast::channel(4096).0, wake: Arc::new(Notify::new()) }
    }
}

impl MemoryBus {
    /// A bus that only delivers to its live subscribers.
    pub fn new() -> Self {
        Self::default()
    }

    /// A bus that also keeps every event it published (tests, short runs: it grows unbounded).
    pub fn recording() -> Self {
        MemoryBus { log: Some(Mutex::new(Vec::new())), ..Self::default() }
    }

    /// Every event published so far, in publication order (empty unless recording).
    pub fn published(&self) -> Vec<PublishedEvent> {
        self.log.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default()
    }

    /// What the in-process consumers ([`super::MemorySource`]) wait on: notified each time the
    /// relay has recorded a batch.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Events as they are published from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<PublishedEvent>> {
        self.live.subscribe()
    }
}

#[async_trait]
impl EventPublisher for MemoryBus {
    async fn publish(&self, batch: &[OutboxRecord]) -> Result<()> {
        let mut log = self.log.as_ref().map(|l| l.lock().unwrap_or_else(|p| p.into_inner()));
        for r in batch {
            let e = PublishedEvent { topic: r.topic.clone(), key: r.key.clone(), event: r.event.clone() };
            if let Some(log) = log.as_mut() {
                log.push(e.clone());
            }
            // No subscriber is not an error: the log keeps the event.
            let _ = self.live.send(Arc::new(e));
        }
        Ok(())
    }

    fn marked(&self) {
        self.wake.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::EventEnvelope;

    fn record(id: i64) -> OutboxRecord {
        let event = EventEnvelope::new("task.created", "task", id, Some(1), chrono::Utc::now(), serde_json::json!({}));
        OutboxRecord { id, topic: event.topic().to_owned(), key: event.key(), event, published_at: None }
    }

    #[tokio::test]
    async fn subscribers_receive_events_in_publication_order() -> Result<()> {
        let bus = MemoryBus::new();
        let mut rx = bus.subscribe();
        bus.publish(&[record(1), record(2)]).await?;
        let keys: Vec<String> = vec![
            rx.recv().await.map_err(crate::Error::internal)?.key.clone(),
            rx.recv().await.map_err(crate::Error::internal)?.key.clone(),
        ];
        assert_eq!(keys, vec!["task:1", "task:2"]);
        assert!(bus.published().is_empty(), "a live bus keeps no log");
        let recording = MemoryBus::recording();
        recording.publish(&[record(3)]).await?;
        assert_eq!(recording.published().len(), 1);
        Ok(())
    }
}

//! Reading events: the [`EventSource`] trait the consumers read through, and the in-process
//! source of the embedded deployment.

use crate::error::Result;
use crate::services::Ctx;
use crate::store::consume::DeadLetter;
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Where a delivered message sits on its bus; what acknowledging it moves past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Position {
    /// The in-process bus: the relay's publication stamp.
    Seq(i64),
    /// A Redis stream entry.
    Stream {
        /// The stream (key).
        stream: String,
        /// The entry id.
        id: String,
    },
    /// A Kafka partition offset.
    Offset {
        /// Topic (as named on the broker).
        topic: String,
        /// Partition.
        partition: i32,
        /// Offset of this message.
        offset: i64,
    },
}

/// One message as a bus delivered it. The payload is raw: a consumer must survive bytes that
/// are not an event at all.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery {
    /// The logical topic (`task-events`…), without any deployment prefix.
    pub topic: String,
    /// The partition key.
    pub key: String,
    /// The message body (the JSON envelope, if well-formed).
    pub payload: Vec<u8>,
    /// Where it sits, for the acknowledgement.
    pub position: Position,
}

/// A bus the consumers read from.
#[async_trait]
pub trait EventSource: Send + Sync {
    /// `memory`, `redis` or `kafka`.
    fn kind(&self) -> &'static str;
    /// Joins consumer group `group` as `member` (unique per instance) on `topics`. Members of one
    /// group share the work; each group sees every event.
    async fn subscribe(&self, group: &str, member: &str, topics: &[&str]) -> Result<Box<dyn Subscription>>;
    /// Puts a message a consumer gave up on onto `<topic>.dlq`.
    async fn dead_letter(&self, letter: &DeadLetter) -> Result<()>;
}

/// A member's view of its group.
#[async_trait]
pub trait Subscription: Send {
    /// Up to `max` messages, waiting at most `wait` for the first. Messages not acknowledged
    /// are delivered again (to this member or, after it died, to another).
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>>;
    /// Acknowledges messages whose effects are durable.
    async fn ack(&mut self, batch: &[Delivery]) -> Result<()>;
    /// Messages of the subscribed topics the group has not acknowledged yet.
    async fn lag(&mut self) -> Result<u64>;
}

/// The in-process bus's source: the outbox itself, in the order the relay published it, with
/// each group's position kept in the database — so a restart resumes where the effects stopped.
#[derive(Clone)]
pub struct MemorySource {
    ctx: Ctx,
    wake: Arc<Notify>,
}

impl MemorySource {
    /// A source over `ctx`'s store, woken by `wake` (see [`super::MemoryBus::wake_handle`]).
    pub fn new(ctx: Ctx, wake: Arc<Notify>) -> Self {
        MemorySource { ctx, wake }
    }
}

#[async_trait]
impl EventSource for MemorySource {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn subscribe(&self, group: &str, _member: &str, topics: &[&str]) -> Result<Box<dyn Subscription>> {
        Ok(Box::new(MemorySubscription {
            source: self.clone(),
            group: group.to_owned(),
            topics: topics.iter().map(|t| (*t).to_owned()).collect(),
        }))
    }

    async fn dead_letter(&self, letter: &DeadLetter) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.insert_dead_letter(letter).await?;
        tx.commit().await
    }
}

struct MemorySubscription {
    source: MemorySource,
    group: String,
    topics: Vec<String>,
}

#[async_trait]
impl Subscription for MemorySubscription {
    async fn poll(&mut self, max: usize, wait: Duration) -> Result<Vec<Delivery>> {
        let deadline = tokio::time::Instant::now() + wait;
        let limit = u32::try_from(max.max(1)).unwrap_or(u32::MAX);
        loop {
            let woken = self.source.wake.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let rows = self.source.ctx.store.read().await?.bus_read(&self.group, &self.topics, limit).await?;
            if !rows.is_empty() {
                return Ok(rows
                    .into_iter()
                    .map(|r| Delivery {
                        topic: r.topic,
                        key: r.partition_key,
                        payload: r.payload.into_bytes(),
                        position: Position::Seq(r.seq),
                    })
                    .collect());
            }
            // Woken by the relay, or every 250 ms in case the relay runs in another process.
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(Vec::new());
            }
            let nap = (deadline - now).min(Duration::from_millis(250));
            tokio::select! {
                () = &mut woken => {}
                () = tokio::time::sleep(nap) => {}
            }
        }
    }

    async fn ack(&mut self, batch: &[Delivery]) -> Result<()> {
        let last = batch
            .iter()
            .filter_map(|d| match d.position {
                Position::Seq(s) => Some(s),
                _ => None,
            })
            .max();
        if let Some(seq) = last {
            let mut tx = self.source.ctx.store.begin().await?;
            tx.bus_ack(&self.group, seq).await?;
            tx.commit().await?;
        }
        Ok(())
    }

    async fn lag(&mut self) -> Result<u64> {
        self.source.ctx.store.read().await?.bus_lag(&self.group, &self.topics).await
    }
}

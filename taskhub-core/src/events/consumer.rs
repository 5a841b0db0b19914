//! Running a consumer: read a batch from an [`EventSource`], apply each event in one database
//! transaction together with its event id (so a redelivery changes nothing), acknowledge the
//! batch only after the effects committed, and send what cannot be applied to `<topic>.dlq`.
//!
//! Poison messages — bytes that are no event, an unknown major version, or an effect failing
//! `max_attempts` times with back-off — are dead-lettered with the error (and announced as a
//! `consumer.dead_lettered` event); the consumer moves on and never crash-loops.

use super::source::{Delivery, EventSource, Subscription};
use super::{EVENT_VERSION, EventEnvelope};
use crate::error::{Error, Result};
use crate::services::Ctx;
use crate::store::Tx;
use crate::store::consume::DeadLetter;
use async_trait::async_trait;
use serde_json::{Value, json};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// How often a running consumer measures its group's lag.
const LAG_EVERY: Duration = Duration::from_secs(5);

/// One consumer's effect.
#[async_trait]
pub trait Consumer: Send + Sync {
    /// The consumer's name; also its consumer group.
    fn name(&self) -> &'static str;
    /// The topics it reads.
    fn topics(&self) -> &'static [&'static str];
    /// Applies `event` inside `tx`. The runner has already recorded the event id in `tx`, so
    /// this runs at most once in effect per event. Events it does not care about are no-ops.
    async fn apply(&self, tx: &mut dyn Tx, event: &EventEnvelope) -> Result<()>;
    /// Called after the effect of `event` committed (live pushes); must not fail.
    fn committed(&self, _event: &EventEnvelope) {}
}

/// Counters of one running consumer, for `/metrics`.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    /// Consumer name.
    pub name: String,
    /// Effects applied.
    pub applied: AtomicU64,
    /// Redeliveries skipped because the event id was already processed.
    pub duplicates: AtomicU64,
    /// Messages sent to a dead-letter topic.
    pub dead_lettered: AtomicU64,
    /// Failed attempts (each retried or dead-lettered).
    pub failures: AtomicU64,
    /// Messages the group has not acknowledged yet, as last measured.
    pub lag: AtomicU64,
}

/// What happened to one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The effect was applied.
    Applied,
    /// Already applied before: nothing changed.
    Duplicate,
    /// Sent to the dead-letter topic with this error.
    DeadLettered(String),
}

/// Runs one consumer as one member of its group.
pub struct ConsumerRunner {
    ctx: Ctx,
    source: Arc<dyn EventSource>,
    consumer: Arc<dyn Consumer>,
    member: String,
    batch: usize,
    max_attempts: u32,
    backoff: Duration,
    stats: Arc<ConsumerStats>,
}

impl ConsumerRunner {
    /// A runner of `consumer` reading `source`, as a member with a unique name.
    pub fn new(ctx: Ctx, source: Arc<dyn EventSource>, consumer: Arc<dyn Consumer>) -> Self {
        let member = format!("{}-{}", consumer.name(), uuid::Uuid::now_v7().simple());
        let stats = Arc::new(ConsumerStats { name: consumer.name().to_owned(), ..ConsumerStats::default() });
        ConsumerRunner {
            ctx,
            source,
            consumer,
            member,
            batch: 100,
            max_attempts: 3,
            backoff: Duration::from_millis(50),
            stats,
        }
    }

    /// Sets the member name (unique per instance; a restarted instance may reuse its name to
    /// pick up what it left unacknowledged at once).
    pub fn with_member(mut self, member: impl Into<String>) -> Self {
        self.member = member.into();
        self
    }

    /// Sets the batch size.
    pub fn with_batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// Sets how many times an effect is tried before the message is dead-lettered, and the
    /// first pause between tries (doubling).
    pub fn with_retries(mut self, max_attempts: u32, backoff: Duration) -> Self {
        self.max_attempts = max_attempts.max(1);
        self.backoff = backoff;
        self
    }

    /// The runner's counters.
    pub fn stats(&self) -> Arc<ConsumerStats> {
        self.stats.clone()
    }

    /// Joins the consumer's group.
    pub async fn subscribe(&self) -> Result<Box<dyn Subscription>> {
        self.source.subscribe(self.consumer.name(), &self.member, self.consumer.topics()).await
    }

    /// Reads one batch (waiting up to `wait`), applies it and acknowledges it; returns what
    /// happened to each message.
    pub async fn run_once(&self, sub: &mut dyn Subscription, wait: Duration) -> Result<Vec<Outcome>> {
        let batch = sub.poll(self.batch, wait).await?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let outcomes = match self.apply_together(&batch).await {
            Some(outcomes) => outcomes,
            // Something in the batch failed: one by one, with retries and dead letters.
            None => {
                let mut outcomes = Vec::with_capacity(batch.len());
                for d in &batch {
                    outcomes.push(self.handle(d).await?);
                }
                outcomes
            }
        };
        sub.ack(&batch).await?;
        Ok(outcomes)
    }

    /// The fast path: every event of the batch applied in one transaction (one commit instead of
    /// one per event). `None` if any message is poison or any effect fails — nothing of the
    /// batch is then kept, and the caller goes one by one.
    async fn apply_together(&self, batch: &[Delivery]) -> Option<Vec<Outcome>> {
        let events: Vec<EventEnvelope> = batch.iter().map(|d| decode(&d.payload).ok()).collect::<Option<_>>()?;
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await.ok()?;
        let mut outcomes = Vec::with_capacity(events.len());
        for e in &events {
            if tx.mark_processed(self.consumer.name(), &e.id.to_string(), now).await.ok()? {
                self.consumer.apply(tx.as_mut(), e).await.ok()?;
                outcomes.push(Outcome::Applied);
            } else {
                outcomes.push(Outcome::Duplicate);
            }
        }
        tx.commit().await.ok()?;
        for (e, o) in events.iter().zip(&outcomes) {
            if *o == Outcome::Applied {
                self.stats.applied.fetch_add(1, Ordering::Relaxed);
                self.consumer.committed(e);
            } else {
                self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
            }
        }
        Some(outcomes)
    }

    /// Runs until `shutdown`; errors of the bus or the database pause it with back-off (the
    /// unacknowledged batch comes again), they never stop it. A batch in flight is finished
    /// (effects committed, acknowledged) before it stops.
    pub async fn run(&self, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut sub: Option<Box<dyn Subscription>> = None;
        let mut failures = 0u32;
        let mut lag_checked: Option<tokio::time::Instant> = None;
        loop {
            if tokio::time::timeout(Duration::ZERO, &mut shutdown).await.is_ok() {
                break;
            }
            let step = async {
                let s = match sub.as_mut() {
                    Some(s) => s,
                    None => sub.insert(self.subscribe().await?),
                };
                let n = self.run_once(s.as_mut(), Duration::from_millis(500)).await?.len();
                if lag_checked.is_none_or(|t| t.elapsed() >= LAG_EVERY) {
                    lag_checked = Some(tokio::time::Instant::now());
                    self.stats.lag.store(s.lag().await?, Ordering::Relaxed);
                }
                Ok::<usize, Error>(n)
            };
            let pause = match step.await {
                Ok(_) => {
                    failures = 0;
                    Duration::ZERO
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(consumer = self.consumer.name(), error = %e, failures, "consumer: batch failed; it will be delivered again");
                    if failures > 3 {
                        sub = None; // resubscribe: the connection may be gone
                    }
                    Duration::from_millis(100u64.saturating_mul(1 << failures.min(8))).min(Duration::from_secs(30))
                }
            };
            if !pause.is_zero() {
                tokio::select! {
                    () = &mut shutdown => break,
                    () = tokio::time::sleep(pause) => {}
                }
            }
        }
    }

    /// Applies one delivery (retrying), or dead-letters it. An error means the dead letter
    /// itself could not be written: the message must not be acknowledged.
    pub async fn handle(&self, d: &Delivery) -> Result<Outcome> {
        let event = match decode(&d.payload) {
            Ok(e) => e,
            Err(why) => return self.dead_letter(d, None, why).await,
        };
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match self.apply(&event).await {
                Ok(true) => {
                    self.stats.applied.fetch_add(1, Ordering::Relaxed);
                    self.consumer.committed(&event);
                    return Ok(Outcome::Applied);
                }
                Ok(false) => {
                    self.stats.duplicates.fetch_add(1, Ordering::Relaxed);
                    return Ok(Outcome::Duplicate);
                }
                Err(e) => {
                    self.stats.failures.fetch_add(1, Ordering::Relaxed);
                    if attempt >= self.max_attempts {
                        let why = format!("effect failed {attempt} times: {e}");
                        return self.dead_letter(d, Some(&event), why).await;
                    }
                    tracing::debug!(consumer = self.consumer.name(), error = %e, attempt, "consumer: effect failed; retrying");
                    tokio::time::sleep(self.backoff.saturating_mul(1 << (attempt - 1).min(10))).await;
                }
            }
        }
    }

    async fn apply(&self, event: &EventEnvelope) -> Result<bool> {
        let mut tx = self.ctx.store.begin().await?;
        if !tx.mark_processed(self.consumer.name(), &event.id.to_string(), self.ctx.clock.now()).await? {
            return Ok(false);
        }
        self.consumer.apply(tx.as_mut(), event).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn dead_letter(&self, d: &Delivery, event: Option<&EventEnvelope>, error: String) -> Result<Outcome> {
        let now = self.ctx.clock.now();
        let letter = DeadLetter {
            topic: format!("{}.dlq", d.topic),
            key: d.key.clone(),
            payload: String::from_utf8_lossy(&d.payload).into_owned(),
            error: error.clone(),
            consumer: self.consumer.name().to_owned(),
            created_at: now,
        };
        self.source.dead_letter(&letter).await?;
        tracing::warn!(consumer = self.consumer.name(), topic = %d.topic, key = %d.key, %error, "consumer: message dead-lettered");
        self.stats.dead_lettered.fetch_add(1, Ordering::Relaxed);
        let announce = EventEnvelope::new(
            "consumer.dead_lettered",
            "consumer",
            0,
            None,
            now,
            json!({
                "consumer": self.consumer.name(),
                "topic": d.topic,
                "dlq_topic": letter.topic,
                "key": d.key,
                "event_id": event.map(|e| e.id.to_string()),
                "error": error,
            }),
        );
        // A dead letter about a dead-letter announcement is not announced again.
        if event.is_none_or(|e| e.event_type != "consumer.dead_lettered") {
            let mut tx = self.ctx.store.begin().await?;
            tx.insert_outbox(&announce).await?;
            tx.commit().await?;
        }
        Ok(Outcome::DeadLettered(error))
    }
}

/// Parses a message: JSON, an envelope, and a major version this build understands. Unknown
/// fields are ignored (minor versions add fields).
pub fn decode(payload: &[u8]) -> std::result::Result<EventEnvelope, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("version").and_then(Value::as_i64) {
        Some(major) if major == i64::from(EVENT_VERSION) => {}
        Some(major) => return Err(format!("unknown major version {major} (this build reads {EVENT_VERSION})")),
        None => return Err("no integer `version`".to_owned()),
    }
    serde_json::from_value(v).map_err(|e| format!("not an event envelope: {e}"))
}

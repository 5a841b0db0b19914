//! The outbox relay: publishes outbox rows in order and marks them published only after the bus
//! acknowledged them — a crash anywhere means a resend, never a loss.
//!
//! Several relays may run (one per process of a scale-out deployment); a lease in the database
//! makes one of them the leader, so rows are published by one relay at a time and in order per
//! entity. The mark is fenced by the lease: a relay that lost its lease while publishing cannot
//! mark rows, so the new leader publishes them again (consumers are idempotent by event id).

use super::EventPublisher;
use crate::error::Result;
use crate::services::Ctx;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The lease the relays compete for.
pub const LEASE_NAME: &str = "outbox-relay";

/// Publishes the outbox.
pub struct Relay {
    ctx: Ctx,
    publisher: Arc<dyn EventPublisher>,
    holder: String,
    batch: u32,
    lease: chrono::Duration,
}

impl Relay {
    /// A relay publishing to `publisher`, 500 rows a batch, with a 15 s lease.
    pub fn new(ctx: Ctx, publisher: Arc<dyn EventPublisher>) -> Self {
        Relay {
            ctx,
            publisher,
            holder: format!("relay-{}", uuid::Uuid::now_v7()),
            batch: 500,
            lease: chrono::Duration::seconds(15),
        }
    }

    /// Sets the batch size.
    pub fn with_batch(mut self, batch: u32) -> Self {
        self.batch = batch.max(1);
        self
    }

    /// This relay's name in the lease table.
    pub fn holder(&self) -> &str {
        &self.holder
    }

    /// Publishes one batch if this relay is (or becomes) the leader; returns how many rows it
    /// published and marked.
    pub async fn run_once(&self) -> Result<usize> {
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        let leader = tx.acquire_lease(LEASE_NAME, &self.holder, now, now + self.lease).await?;
        tx.commit().await?;
        if !leader {
            return Ok(0);
        }
        let rows = self.ctx.store.read().await?.list_unpublished(self.batch).await?;
        if rows.is_empty() {
            return Ok(0);
        }
        self.publisher.publish(&rows).await?;
        let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        let mut tx = self.ctx.store.begin().await?;
        let marked = tx.mark_published(&ids, self.ctx.clock.now(), LEASE_NAME, &self.holder).await?;
        tx.commit().await?;
        self.publisher.marked();
        Ok(usize::try_from(marked).unwrap_or(0))
    }

    /// Gives up leadership at once (on shutdown), so another relay takes over without waiting
    /// for the lease to run out.
    pub async fn release(&self) -> Result<()> {
        let mut tx = self.ctx.store.begin().await?;
        tx.release_lease(LEASE_NAME, &self.holder).await?;
        tx.commit().await
    }

    /// Publishes until `shutdown`: back to back while there is work, every `idle` when there
    /// is none, and with a growing pause (up to 30 s) while the bus fails.
    pub async fn run(&self, idle: Duration, shutdown: impl Future<Output = ()> + Send) {
        tokio::pin!(shutdown);
        let mut failures = 0u32;
        loop {
            let pause = match self.run_once().await {
                Ok(0) => {
                    failures = 0;
                    idle
                }
                Ok(n) => {
                    failures = 0;
                    tracing::debug!(published = n, "outbox relay published a batch");
                    Duration::ZERO
                }
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(error = %e, failures, "outbox relay: publishing failed; the rows stay and are retried");
                    Duration::from_millis(100u64.saturating_mul(1 << failures.min(8))).min(Duration::from_secs(30))
                }
            };
            tokio::select! {
                () = &mut shutdown => break,
                () = tokio::time::sleep(pause) => {}
            }
        }
        if let Err(e) = self.release().await {
            tracing::warn!(error = %e, "outbox relay: could not release its lease; it will expire");
        }
    }
}

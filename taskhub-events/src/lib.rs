//! # taskhub-events
//!
//! TaskHub's event-consumer shell: the activity feed, search index, audit log, notification
//! dispatcher and analytics aggregator read the topics of EVENTS.md.
//!
//! Every domain change already writes its versioned event into the transactional outbox of
//! `taskhub-core` (see [`taskhub_core::events`]); this crate reads it. In this build it offers
//! the outbox backlog reader that the relay and the consumers build on.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in.

use taskhub_core::Services;
use taskhub_core::events::OutboxRecord;

/// Reads outbox rows in publication order, `limit` at a time, after position `after`.
pub async fn read_outbox(services: &Services, after: i64, limit: u32) -> taskhub_core::Result<Vec<OutboxRecord>> {
    let mut tx = services.store().read().await?;
    tx.list_outbox(after, limit).await
}

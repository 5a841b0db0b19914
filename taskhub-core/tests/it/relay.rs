//! The outbox relay on both engines: order, no loss, resend after a crash, one leader.

use crate::common::{Fx, input};
use anyhow::Result;
use async_trait::async_trait;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use taskhub_core::events::{EventPublisher, MemoryBus, OutboxRecord, Relay};

/// Registers alice and has her create `n` tasks with a comment each; returns her.
async fn fill(fx: &Fx, n: usize) -> Result<taskhub_core::Actor> {
    let a = fx.user("alice").await?;
    for i in 0..n {
        let t = fx.svc.tasks.create(&a, input(json!({"title": format!("t{i}")}))?).await?;
        fx.svc.comments.add(&a, t.id, "c").await?;
    }
    Ok(a)
}

async fn drain(relay: &Relay) -> Result<usize> {
    let mut total = 0;
    loop {
        let n = relay.run_once().await?;
        if n == 0 {
            return Ok(total);
        }
        total += n;
    }
}

async fn unpublished(fx: &Fx) -> Result<usize> {
    Ok(fx.store.read().await?.list_unpublished(100_000).await?.len())
}

pub async fn the_relay_publishes_every_row_once_in_order(fx: Fx) -> Result<()> {
    fill(&fx, 15).await?;
    let rows = fx.store.read().await?.list_outbox(0, 10_000).await?;
    let bus = Arc::new(MemoryBus::recording());
    let relay = Relay::new(fx.svc.ctx.clone(), bus.clone()).with_batch(7);
    assert_eq!(drain(&relay).await?, rows.len());
    let got: Vec<_> = bus.published().into_iter().map(|e| e.event.id).collect();
    let want: Vec<_> = rows.iter().map(|r| r.event.id).collect();
    assert_eq!(got, want, "published in outbox order, each once");
    assert_eq!(unpublished(&fx).await?, 0);
    assert_eq!(relay.run_once().await?, 0, "nothing left");
    Ok(())
}

/// A bus that fails every call until told otherwise.
struct Flaky {
    inner: MemoryBus,
    fail: AtomicUsize,
    ack_lost: bool,
}

#[async_trait]
impl EventPublisher for Flaky {
    async fn publish(&self, batch: &[OutboxRecord]) -> taskhub_core::Result<()> {
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            if self.ack_lost {
                // The bus took the events, but the acknowledgement never arrived.
                self.inner.publish(batch).await?;
            }
            return Err(taskhub_core::Error::internal("broker unavailable"));
        }
        self.inner.publish(batch).await
    }
}

pub async fn a_failing_bus_loses_nothing_and_a_lost_ack_means_a_resend(fx: Fx) -> Result<()> {
    let a = fill(&fx, 5).await?;
    let total = fx.store.read().await?.list_outbox(0, 10_000).await?.len();
    let down = Arc::new(Flaky { inner: MemoryBus::recording(), fail: AtomicUsize::new(3), ack_lost: false });
    let relay = Relay::new(fx.svc.ctx.clone(), down.clone()).with_batch(4);
    for _ in 0..3 {
        assert!(relay.run_once().await.is_err());
    }
    assert_eq!(unpublished(&fx).await?, total, "the outbox keeps everything while the bus is down");
    assert_eq!(drain(&relay).await?, total);
    assert_eq!(down.inner.published().len(), total, "then it drains");
    // A lost acknowledgement: the first batch reaches the bus twice, nothing is missing.
    let fx2 = fx;
    for i in 0..3 {
        fx2.svc.tasks.create(&a, input(json!({"title": format!("late {i}")}))?).await?;
    }
    let lost = Arc::new(Flaky { inner: MemoryBus::recording(), fail: AtomicUsize::new(1), ack_lost: true });
    // A relay in another process, after the first one's lease ran out.
    fx2.clock.advance(chrono::Duration::seconds(16));
    let relay = Relay::new(fx2.svc.ctx.clone(), lost.clone()).with_batch(2);
    assert!(relay.run_once().await.is_err());
    assert_eq!(drain(&relay).await?, 3);
    let mut seen: HashMap<uuid::Uuid, usize> = HashMap::new();
    for e in lost.inner.published() {
        *seen.entry(e.event.id).or_default() += 1;
    }
    assert_eq!(seen.len(), 3, "every event arrived");
    assert_eq!(seen.values().filter(|n| **n == 2).count(), 2, "the unacknowledged batch of 2 was sent again");
    Ok(())
}

pub async fn two_relays_publish_each_row_once_through_one_leader(fx: Fx) -> Result<()> {
    let a_user = fill(&fx, 10).await?;
    let bus = Arc::new(MemoryBus::recording());
    let first = Relay::new(fx.svc.ctx.clone(), bus.clone()).with_batch(3);
    let second = Relay::new(fx.svc.ctx.clone(), bus.clone()).with_batch(3);
    let total = fx.store.read().await?.list_outbox(0, 10_000).await?.len();
    let (a, b) = tokio::join!(drain(&first), drain(&second));
    let (a, b) = (a?, b?);
    assert_eq!(a + b, total);
    assert!(a == 0 || b == 0, "one leader published everything ({a} / {b})");
    let ids: Vec<_> = bus.published().into_iter().map(|e| e.event.id).collect();
    let unique: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "no row twice");
    // The leader stops; once its lease runs out the other takes over.
    fx.svc.tasks.create(&a_user, input(json!({"title": "after"}))?).await?;
    let (leader, other) = if a > 0 { (&first, &second) } else { (&second, &first) };
    assert_eq!(other.run_once().await?, 0, "the lease is still held");
    fx.clock.advance(chrono::Duration::seconds(16));
    assert_eq!(other.run_once().await?, 1, "the other relay took over");
    // A relay that shuts down hands over at once.
    fx.svc.tasks.create(&a_user, input(json!({"title": "after 2"}))?).await?;
    assert_eq!(leader.run_once().await?, 0, "the other one leads now");
    other.release().await?;
    assert_eq!(leader.run_once().await?, 1, "released: no wait for the lease to run out");
    Ok(())
}

pub fn redis_url() -> String {
    std::env::var("TASKHUB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

pub async fn the_relay_publishes_to_redis_streams_in_order(fx: Fx) -> Result<()> {
    use taskhub_core::events::RedisPublisher;
    fill(&fx, 6).await?;
    let rows = fx.store.read().await?.list_outbox(0, 10_000).await?;
    let prefix = format!("taskhub-test-{}:", uuid::Uuid::now_v7().simple());
    let publisher = Arc::new(RedisPublisher::connect(&redis_url(), prefix.clone()).await?);
    let relay = Relay::new(fx.svc.ctx.clone(), publisher.clone()).with_batch(5);
    assert_eq!(drain(&relay).await?, rows.len());
    let client = redis::Client::open(redis_url())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let mut got = Vec::new();
    for topic in ["user-activities", "task-events"] {
        let entries: Vec<(String, Vec<(String, String)>)> =
            redis::cmd("XRANGE").arg(publisher.stream(topic)).arg("-").arg("+").query_async(&mut conn).await?;
        for (_, fields) in entries {
            let f: HashMap<String, String> = fields.into_iter().collect();
            let event: taskhub_core::events::EventEnvelope =
                serde_json::from_str(f.get("payload").map_or("", String::as_str))?;
            assert_eq!(f.get("type"), Some(&event.event_type));
            assert_eq!(f.get("key"), Some(&event.key()));
            got.push((topic, event.id));
        }
    }
    publisher.delete_streams(&["user-activities", "task-events"]).await?;
    // Per topic, the stream holds the topic's rows in outbox order.
    for topic in ["user-activities", "task-events"] {
        let want: Vec<_> = rows.iter().filter(|r| r.topic == topic).map(|r| r.event.id).collect();
        let have: Vec<_> = got.iter().filter(|(t, _)| *t == topic).map(|(_, id)| *id).collect();
        assert_eq!(have, want, "{topic}");
    }
    assert_eq!(got.len(), rows.len());
    Ok(())
}

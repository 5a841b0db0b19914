//! The consumer contract suite: the same tests on every bus (in-process, Redis Streams) and both
//! engines — effects exactly once, redelivery harmless, poison to the DLQ, a consumer killed
//! mid-batch resumes without loss or duplicates, two instances end where one would.

use crate::common::{Engine, Fx, input};
use crate::relay::redis_url;
use anyhow::{Result, bail};
use serde_json::json;
use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;
use taskhub_core::Actor;
use taskhub_core::events::consumer::{Consumer, ConsumerRunner, Outcome};
use taskhub_core::events::{
    EventEnvelope, EventPublisher, EventSource, KafkaBus, MemoryBus, MemorySource, RedisPublisher, RedisSource, Relay,
    TOPIC_ANALYTICS_EVENTS, TOPIC_SYSTEM_NOTIFICATIONS, TOPIC_TASK_EVENTS, TOPIC_USER_ACTIVITIES,
};
use taskhub_core::page::PageRequest;
use taskhub_core::projections;
use taskhub_core::tasks::WriteMode;

const TOPICS: [&str; 4] =
    [TOPIC_TASK_EVENTS, TOPIC_USER_ACTIVITIES, TOPIC_ANALYTICS_EVENTS, TOPIC_SYSTEM_NOTIFICATIONS];

/// Which bus a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BusKind {
    Memory,
    Redis,
    Kafka,
}

pub fn kafka_brokers() -> String {
    std::env::var("TASKHUB_TEST_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// A bus: what the relay writes to and what the consumers read.
pub struct Bus {
    pub kind: BusKind,
    pub publisher: Arc<dyn EventPublisher>,
    pub source: Arc<dyn EventSource>,
    redis: Option<(RedisPublisher, String)>,
    kafka: Option<KafkaBus>,
}

impl Bus {
    pub async fn new(kind: BusKind, fx: &Fx) -> Result<Self> {
        Ok(match kind {
            BusKind::Memory => {
                let bus = Arc::new(MemoryBus::new());
                let source = Arc::new(MemorySource::new(fx.svc.ctx.clone(), bus.wake_handle()));
                Bus { kind, publisher: bus, source, redis: None, kafka: None }
            }
            BusKind::Redis => {
                let prefix = format!("taskhub-test-{}:", uuid::Uuid::now_v7().simple());
                let publisher = RedisPublisher::connect(&redis_url(), prefix.clone()).await?;
                let source = RedisSource::connect(&redis_url(), prefix.clone())
                    .await?
                    .with_reclaim_after(Duration::from_millis(300));
                Bus {
                    kind,
                    publisher: Arc::new(publisher.clone()),
                    source: Arc::new(source),
                    redis: Some((publisher, prefix)),
                    kafka: None,
                }
            }
            BusKind::Kafka => {
                let prefix = format!("taskhub-test-{}.", uuid::Uuid::now_v7().simple());
                let bus = KafkaBus::connect(&kafka_brokers(), prefix, &TOPICS).await?;
                Bus {
                    kind,
                    publisher: Arc::new(bus.clone()),
                    source: Arc::new(bus.clone()),
                    redis: None,
                    kafka: Some(bus),
                }
            }
        })
    }

    /// How long a consumer waits for a message before it counts the bus as drained (a Kafka
    /// group needs a few seconds to join and rebalance).
    pub fn idle(&self) -> Duration {
        if self.kind == BusKind::Kafka { Duration::from_millis(1500) } else { Duration::from_millis(100) }
    }

    /// Puts raw bytes on a topic, as a broken producer would.
    pub async fn inject(&self, fx: &Fx, topic: &str, key: &str, payload: &str) -> Result<()> {
        if let Some(k) = &self.kafka {
            return Ok(k.produce_raw(topic, key, payload.as_bytes()).await?);
        }
        match &self.redis {
            None => {
                // On PostgreSQL the payload column is JSONB: only JSON goes in there.
                let sql = format!(
                    "INSERT INTO outbox (event_id, topic, partition_key, event_type, payload, created_at, published_at, seq) \
                     VALUES ('{}', '{topic}', '{key}', 'x', '{payload}', '2026-11-25T12:00:00Z', '2026-11-25T12:00:00Z', \
                     (SELECT COALESCE(MAX(seq), 0) + 1 FROM outbox))",
                    uuid::Uuid::now_v7()
                );
                fx.db.exec(&sql).await
            }
            Some((p, _)) => {
                let client = redis::Client::open(redis_url())?;
                let mut c = client.get_multiplexed_async_connection().await?;
                redis::cmd("XADD")
                    .arg(p.stream(topic))
                    .arg("*")
                    .arg("key")
                    .arg(key)
                    .arg("payload")
                    .arg(payload)
                    .query_async::<()>(&mut c)
                    .await?;
                Ok(())
            }
        }
    }

    /// Messages on `<topic>.dlq`.
    pub async fn dead_letters(&self, fx: &Fx, topic: &str) -> Result<usize> {
        let dlq = format!("{topic}.dlq");
        if let Some(k) = &self.kafka {
            let group = format!("dlq-reader-{}", uuid::Uuid::now_v7().simple());
            let mut sub = k.subscribe(&group, &group, &[dlq.as_str()]).await?;
            let mut n = 0;
            loop {
                let got = sub.poll(100, Duration::from_secs(3)).await?;
                if got.is_empty() {
                    return Ok(n);
                }
                n += got.len();
            }
        }
        match &self.redis {
            None => Ok(fx.store.read().await?.list_dead_letters(&dlq).await?.len()),
            Some((p, _)) => {
                let client = redis::Client::open(redis_url())?;
                let mut c = client.get_multiplexed_async_connection().await?;
                Ok(redis::cmd("XLEN").arg(p.stream(&dlq)).query_async(&mut c).await?)
            }
        }
    }
}

/// Runs `f` with every topic and dead-letter topic name on a runtime of its own (a `Drop` runs
/// outside any async context).
fn cleanup<F, Fut>(f: F)
where
    F: FnOnce(Vec<String>) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    let _ = std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
            let mut names: Vec<String> = TOPICS.iter().map(|t| (*t).to_owned()).collect();
            names.extend(TOPICS.iter().map(|t| format!("{t}.dlq")));
            rt.block_on(f(names));
        }
    })
    .join();
}

impl Drop for Bus {
    fn drop(&mut self) {
        if let Some(k) = self.kafka.take() {
            cleanup(move |names| async move {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let _ = k.delete_topics(&refs).await;
            });
        }
        if let Some((p, _)) = self.redis.take() {
            cleanup(move |names| async move {
                let refs: Vec<&str> = names.iter().map(String::as_str).collect();
                let _ = p.delete_streams(&refs).await;
            });
        }
    }
}

/// One module of the bus contract: every test on one engine and one bus.
macro_rules! bus_module {
    ($name:ident, $engine:ident, $bus:ident, $($m:ident :: $t:ident),*) => {
        pub mod $name { $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $t() -> anyhow::Result<()> {
                crate::consumers::run(crate::common::Engine::$engine, crate::consumers::BusKind::$bus, crate::$m::$t).await
            }
        )* }
    };
}

/// `bus_contract!(module::test, …)`: each test on SQLite and PostgreSQL with the in-process bus,
/// Redis Streams and Kafka.
macro_rules! bus_contract {
    ($($m:ident :: $t:ident),* $(,)?) => {
        bus_module!(memory_sqlite, Sqlite, Memory, $($m::$t),*);
        bus_module!(memory_postgres, Postgres, Memory, $($m::$t),*);
        bus_module!(redis_sqlite, Sqlite, Redis, $($m::$t),*);
        bus_module!(redis_postgres, Postgres, Redis, $($m::$t),*);
        bus_module!(kafka_sqlite, Sqlite, Kafka, $($m::$t),*);
        bus_module!(kafka_postgres, Postgres, Kafka, $($m::$t),*);
    };
}

pub async fn run<F, Fut>(engine: Engine, kind: BusKind, test: F) -> Result<()>
where
    F: FnOnce(Fx, Bus) -> Fut,
    Fut: std::future::Future<Output = Result<()>>,
{
    let fx = Fx::new(engine).await?;
    let bus = Bus::new(kind, &fx).await?;
    test(fx, bus).await
}

/// A workload touching every consumer: users, a team, tasks with assignees, comments, status
/// changes, an archive. Returns (alice, bob, carol).
async fn workload(fx: &Fx, tasks: usize) -> Result<(Actor, Actor, Actor)> {
    let alice = fx.user("alice").await?;
    let bob = fx.user("bob").await?;
    let carol = fx.user("carol").await?;
    for i in 0..tasks {
        let t = fx
            .svc
            .tasks
            .create(&alice, input(json!({"title": format!("Fix login {i}"), "description": "users cannot sign in"}))?)
            .await?;
        fx.svc.tasks.assign(&alice, t.id, input_assign(&[bob.user_id])?, None).await?;
        fx.svc.comments.add(&bob, t.id, "on it").await?;
        fx.svc.tasks.update(&bob, t.id, input(json!({"status": "in_progress"}))?, WriteMode::Patch, None).await?;
        if i % 3 == 2 {
            fx.svc.tasks.archive(&alice, t.id, None).await?;
        }
    }
    Ok((alice, bob, carol))
}

fn input_assign(users: &[i64]) -> Result<taskhub_core::tasks::AssignInput> {
    Ok(serde_json::from_value(json!({"users": users, "role": "owner"}))?)
}

/// Publishes the whole outbox.
async fn relay_all(fx: &Fx, bus: &Bus) -> Result<usize> {
    let relay = Relay::new(fx.svc.ctx.clone(), bus.publisher.clone());
    let mut total = 0;
    loop {
        let n = relay.run_once().await?;
        if n == 0 {
            relay.release().await?;
            return Ok(total);
        }
        total += n;
    }
}

/// Runs `runner` until two polls in a row bring nothing; returns every outcome.
async fn drain(runner: &ConsumerRunner, idle: Duration) -> Result<Vec<Outcome>> {
    let mut sub = runner.subscribe().await?;
    let mut all = Vec::new();
    let mut empty = 0;
    while empty < 2 {
        let got = runner.run_once(sub.as_mut(), idle).await?;
        if got.is_empty() {
            empty += 1;
        } else {
            empty = 0;
        }
        all.extend(got);
    }
    Ok(all)
}

/// Events of the outbox on any of `topics`.
async fn events_on(fx: &Fx, topics: &[&str]) -> Result<Vec<EventEnvelope>> {
    Ok(crate::common::outbox(fx)
        .await?
        .into_iter()
        .filter(|r| topics.contains(&r.topic.as_str()))
        .map(|r| r.event)
        .collect())
}

/// Rows of `table`.
async fn rows(fx: &Fx, table: &str) -> Result<i64> {
    fx.db.count(table).await
}

fn runner(fx: &Fx, bus: &Bus, c: Arc<dyn Consumer>) -> ConsumerRunner {
    ConsumerRunner::new(fx.svc.ctx.clone(), bus.source.clone(), c)
        .with_batch(25)
        .with_retries(3, Duration::from_millis(5))
}

fn day(s: &str) -> Result<chrono::NaiveDate> {
    Ok(s.parse()?)
}

/// The read models, as comparable values.
async fn snapshot(fx: &Fx) -> Result<BTreeMap<&'static str, i64>> {
    let mut m = BTreeMap::new();
    for t in [
        "activity_feed",
        "notifications",
        "analytics_daily",
        "task_search",
        "audit_log",
        "consumer_processed",
        "mail_outbox",
    ] {
        m.insert(t, rows(fx, t).await?);
    }
    let created: i64 = fx
        .store
        .read()
        .await?
        .list_counters(day("2000-01-01")?, day("2100-01-01")?)
        .await?
        .iter()
        .filter(|c| c.metric == "created")
        .map(|c| c.value)
        .sum();
    m.insert("counter:created", created);
    Ok(m)
}

pub async fn every_consumer_applies_each_event_once(fx: Fx, bus: Bus) -> Result<()> {
    let (alice, bob, carol) = workload(&fx, 3).await?;
    let published = relay_all(&fx, &bus).await?;
    for c in projections::all() {
        let r = runner(&fx, &bus, c.clone());
        let outcomes = drain(&r, bus.idle()).await?;
        let expected = events_on(&fx, c.topics()).await?.len();
        let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
        assert_eq!(applied, expected, "{}: every event of its topics applied once", c.name());
        assert_eq!(outcomes.len(), expected, "{}: nothing else delivered", c.name());
    }
    let p = &fx.svc.projections;
    let page = PageRequest::first(200);
    // Feed: bob hears of the tasks he was assigned; carol, unrelated, only of her registration.
    let bob_feed = p.activity(&bob, &page).await?.items;
    assert!(bob_feed.iter().any(|a| a.event_type == "task.assigned"), "{bob_feed:?}");
    assert!(bob_feed.windows(2).all(|w| (w[0].occurred_at, w[0].id) >= (w[1].occurred_at, w[1].id)), "newest first");
    let carol_feed = p.activity(&carol, &page).await?.items;
    assert_eq!(carol_feed.iter().map(|a| a.event_type.as_str()).collect::<Vec<_>>(), vec!["user.registered"]);
    // Notifications: bob was assigned 3 times; alice hears of bob's comments and status changes,
    // and nobody of their own actions.
    let bob_n = p.notifications(&bob, false, &page).await?.items;
    assert_eq!(bob_n.iter().filter(|n| n.kind == "assigned").count(), 3);
    assert!(bob_n.iter().all(|n| n.kind == "assigned"), "bob's own comments and status changes: {bob_n:?}");
    let alice_n = p.notifications(&alice, false, &page).await?.items;
    assert_eq!(alice_n.iter().filter(|n| n.kind == "comment").count(), 3);
    assert_eq!(alice_n.iter().filter(|n| n.kind == "status_changed").count(), 3);
    // Search: the live tasks, not the archived one.
    let hits = p.search(&alice, "login", &page).await?.items;
    assert_eq!(hits.len(), 2, "{hits:?}");
    // Audit: one chain row per user/system event, and the chain holds.
    let audited = events_on(&fx, &[TOPIC_USER_ACTIVITIES, TOPIC_SYSTEM_NOTIFICATIONS]).await?.len();
    assert_eq!(rows(&fx, "audit_log").await?, i64::try_from(audited)?);
    assert_eq!(p.verify_audit().await?, Ok(u64::try_from(audited)?));
    // Mail: queued with the notifications, one per event and recipient, never to the actor.
    let task_events = events_on(&fx, &[TOPIC_TASK_EVENTS]).await?;
    let mails: usize = task_events.iter().map(|e| projections::mail_recipients(e).len()).sum();
    assert!(mails > 0);
    assert_eq!(rows(&fx, "mail_outbox").await?, i64::try_from(mails)?);
    assert!(task_events.iter().all(|e| projections::mail_recipients(e).iter().all(|m| Some(m.user_id) != e.actor_id)));
    // Counters.
    let before = snapshot(&fx).await?;
    assert_eq!(before["counter:created"], 3);
    // Redelivery of everything changes nothing.
    let again = fx.store.read().await?.list_outbox(0, 100_000).await?;
    for c in projections::all() {
        let r = runner(&fx, &bus, c.clone());
        for rec in again.iter().filter(|r| c.topics().contains(&r.topic.as_str())) {
            let d = taskhub_core::events::Delivery {
                topic: rec.topic.clone(),
                key: rec.key.clone(),
                payload: serde_json::to_vec(&rec.event)?,
                position: taskhub_core::events::Position::Seq(0),
            };
            assert_eq!(r.handle(&d).await?, Outcome::Duplicate);
        }
    }
    assert_eq!(snapshot(&fx).await?, before, "a redelivered event changes nothing");
    println!("[{:?}] events published {published}, read models {before:?}", bus.kind);
    Ok(())
}

/// A consumer whose effect always fails for comments.
struct FailsOnComments;

#[async_trait::async_trait]
impl Consumer for FailsOnComments {
    fn name(&self) -> &'static str {
        "fails-on-comments"
    }
    fn topics(&self) -> &'static [&'static str] {
        &[TOPIC_TASK_EVENTS]
    }
    async fn apply(&self, tx: &mut dyn taskhub_core::store::Tx, e: &EventEnvelope) -> taskhub_core::Result<()> {
        if e.event_type == "comment.added" {
            return Err(taskhub_core::Error::internal("cannot handle comments"));
        }
        tx.bump_counter(e.occurred_at.date_naive(), "seen", "", 1).await
    }
}

pub async fn poison_messages_go_to_the_dlq_and_the_consumer_moves_on(fx: Fx, bus: Bus) -> Result<()> {
    let alice = fx.user("alice").await?;
    let t = fx.svc.tasks.create(&alice, input(json!({"title": "before"}))?).await?;
    relay_all(&fx, &bus).await?;
    bus.inject(&fx, TOPIC_TASK_EVENTS, "task:1", "{\"not\": \"an event\"}").await?;
    bus.inject(&fx, TOPIC_TASK_EVENTS, "task:1", "{\"version\": 2, \"type\": \"task.created\"}").await?;
    if bus.kind != BusKind::Memory {
        bus.inject(&fx, TOPIC_TASK_EVENTS, "task:1", "\u{0}garbage{").await?;
    }
    fx.svc.comments.add(&alice, t.id, "a comment").await?;
    fx.svc.tasks.create(&alice, input(json!({"title": "after"}))?).await?;
    relay_all(&fx, &bus).await?;
    let r = runner(&fx, &bus, Arc::new(FailsOnComments));
    let outcomes = drain(&r, bus.idle()).await?;
    let dead: Vec<&String> = outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::DeadLettered(e) => Some(e),
            _ => None,
        })
        .collect();
    let injected = if bus.kind == BusKind::Memory { 2 } else { 3 };
    assert_eq!(dead.len(), injected + 1, "{outcomes:?}");
    assert!(dead.iter().any(|e| e.contains("unknown major version 2")), "{dead:?}");
    assert!(dead.iter().any(|e| e.contains("failed 3 times")), "{dead:?}");
    assert_eq!(outcomes.iter().filter(|o| **o == Outcome::Applied).count(), 2, "both good events after the poison");
    assert_eq!(bus.dead_letters(&fx, TOPIC_TASK_EVENTS).await?, injected + 1);
    // Each dead letter is announced on system-notifications.
    let announced = fx.db.count("outbox WHERE event_type = 'consumer.dead_lettered'").await?;
    assert_eq!(announced, i64::try_from(injected + 1)?);
    // Nothing comes back: the dead letters were acknowledged.
    assert!(drain(&r, bus.idle()).await?.is_empty());
    Ok(())
}

pub async fn a_consumer_killed_mid_batch_resumes_without_loss_or_duplicates(fx: Fx, bus: Bus) -> Result<()> {
    workload(&fx, 12).await?;
    let produced = relay_all(&fx, &bus).await?;
    let consumer: Arc<dyn Consumer> = Arc::new(projections::AnalyticsAggregator);
    let expected = events_on(&fx, consumer.topics()).await?;
    // The first instance applies part of a batch, then dies before acknowledging it.
    let first = runner(&fx, &bus, consumer.clone()).with_member("aggregator-a");
    let mut sub = first.subscribe().await?;
    let batch = sub.poll(25, bus.idle() * 8).await?;
    assert!(batch.len() > 10, "a whole batch in flight ({})", batch.len());
    for d in batch.iter().take(10) {
        assert_eq!(first.handle(d).await?, Outcome::Applied);
    }
    drop(sub);
    // A new instance (another member: the dead one's entries are taken over) finishes.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let second = runner(&fx, &bus, consumer.clone()).with_member("aggregator-b");
    let outcomes = drain(&second, bus.idle()).await?;
    let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
    let duplicates = outcomes.iter().filter(|o| **o == Outcome::Duplicate).count();
    let processed = rows(&fx, "consumer_processed").await?;
    let lost = expected.len() - usize::try_from(processed)?;
    let duplicate_effects = (10 + applied) - expected.len();
    println!(
        "[{:?}] kill mid-batch: events produced {produced}, consumed {}, effects lost {lost}, duplicate effects {duplicate_effects}, redelivered-and-skipped {duplicates}",
        bus.kind,
        outcomes.len() + 10
    );
    assert_eq!(lost, 0);
    assert_eq!(duplicate_effects, 0);
    assert_eq!(duplicates, 10, "the 10 applied before the kill came again and were skipped");
    let want_created = expected.iter().filter(|e| e.event_type == "task.created").count();
    assert_eq!(snapshot(&fx).await?["counter:created"], i64::try_from(want_created)?);
    Ok(())
}

pub async fn two_instances_of_each_consumer_end_where_one_would(fx: Fx, bus: Bus) -> Result<()> {
    workload(&fx, 9).await?;
    // Two relays at once.
    let r1 = Relay::new(fx.svc.ctx.clone(), bus.publisher.clone()).with_batch(7);
    let r2 = Relay::new(fx.svc.ctx.clone(), bus.publisher.clone()).with_batch(7);
    let drain_relay = |r: Relay| async move {
        let mut n = 0;
        for _ in 0..200 {
            n += r.run_once().await?;
        }
        r.release().await?;
        Ok::<usize, anyhow::Error>(n)
    };
    let (a, b) = tokio::join!(drain_relay(r1), drain_relay(r2));
    let produced = a? + b?;
    // Two instances of every consumer at once, each in its real run loop, until every effect
    // is there (or a minute passed).
    let mut expected = 0;
    let mut notes = 0;
    for c in projections::all() {
        let evs = events_on(&fx, c.topics()).await?;
        if c.name() == "notifications" {
            notes = evs.iter().map(|e| projections::recipients_of(e).len()).sum::<usize>();
        }
        expected += evs.len();
    }
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut handles = Vec::new();
    let mut stats = Vec::new();
    for c in projections::all() {
        for i in 0..2 {
            let r = runner(&fx, &bus, c.clone()).with_member(format!("{}-{i}", c.name()));
            stats.push(r.stats());
            let mut rx = stopped.clone();
            handles.push(tokio::spawn(async move {
                r.run(async move {
                    let _ = rx.wait_for(|s| *s).await;
                })
                .await
            }));
        }
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut max_lag = 0u64;
    while rows(&fx, "consumer_processed").await? < i64::try_from(expected)? && tokio::time::Instant::now() < deadline {
        max_lag = max_lag.max(stats.iter().map(|s| s.lag.load(std::sync::atomic::Ordering::Relaxed)).sum());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more: nothing may be applied twice after the last one.
    tokio::time::sleep(bus.idle() * 2).await;
    stop.send(true)?;
    for h in handles {
        h.await?;
    }
    let applied: u64 = stats.iter().map(|s| s.applied.load(std::sync::atomic::Ordering::Relaxed)).sum();
    let applied = usize::try_from(applied)?;
    let snap = snapshot(&fx).await?;
    println!(
        "[{:?}] two relays + two instances each: events produced {produced}, effects applied {applied} of {expected}, lost {}, duplicates {}, max lag {max_lag}",
        bus.kind,
        expected.saturating_sub(applied),
        applied.saturating_sub(expected)
    );
    assert_eq!(applied, expected, "each event applied once per consumer");
    assert_eq!(snap["consumer_processed"], i64::try_from(expected)?);
    assert_eq!(snap["notifications"], i64::try_from(notes)?, "one notification per recipient and event");
    assert_eq!(snap["counter:created"], 9);
    assert_eq!(snap["task_search"], 6, "9 tasks, 3 archived");
    let audited = events_on(&fx, &[TOPIC_USER_ACTIVITIES, TOPIC_SYSTEM_NOTIFICATIONS]).await?.len();
    assert_eq!(fx.svc.projections.verify_audit().await?, Ok(u64::try_from(audited)?), "one unbroken chain");
    Ok(())
}

pub async fn tampering_with_the_audit_chain_is_detected(fx: Fx, bus: Bus) -> Result<()> {
    for n in ["ann", "ben", "cat", "dan"] {
        fx.user(n).await?;
    }
    relay_all(&fx, &bus).await?;
    drain(&runner(&fx, &bus, Arc::new(projections::AuditLog)), bus.idle()).await?;
    let rows = fx.svc.projections.audit(&fx.staff("root").await?, &PageRequest::first(50)).await?.items;
    assert_eq!(rows.len(), 4);
    assert_eq!(rows[0].prev_hash, projections::GENESIS_HASH);
    assert!(rows.windows(2).all(|w| w[1].prev_hash == w[0].hash));
    assert!(
        rows.iter()
            .all(|r| r.hash.len() == 64 && r.hash.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()))
    );
    assert!(matches!(
        fx.svc.projections.audit(&fx.user("eve").await?, &PageRequest::first(5)).await,
        Err(taskhub_core::Error::Forbidden(_))
    ));
    assert_eq!(fx.svc.projections.verify_audit().await?, Ok(4));
    let third = rows[2].id;
    fx.db.exec(&format!("UPDATE audit_log SET actor_id = 999 WHERE id = {third}")).await?;
    match fx.svc.projections.verify_audit().await? {
        Err(b) if b.id == third => {}
        other => bail!("tampered row {third} not named: {other:?}"),
    }
    // Recomputing that row's hash does not help: the next row no longer links to it.
    let payload =
        rows[2].payload.replace(&format!("\"actor_id\":{}", rows[2].actor_id.unwrap_or_default()), "\"actor_id\":999");
    let forged = projections::chain_hash(&rows[2].prev_hash, &payload);
    fx.db
        .exec(&format!(
            "UPDATE audit_log SET payload = '{}', hash = '{forged}' WHERE id = {third}",
            payload.replace('\'', "''")
        ))
        .await?;
    match fx.svc.projections.verify_audit().await? {
        Err(b) if b.id == rows[3].id => {}
        other => bail!("the row after the forged one must break: {other:?}"),
    }
    Ok(())
}

pub async fn search_is_ranked_visible_and_live(fx: Fx, bus: Bus) -> Result<()> {
    let alice = fx.user("alice").await?;
    let bob = fx.user("bob").await?;
    let title_hit =
        fx.svc.tasks.create(&alice, input(json!({"title": "Login page broken", "description": "nothing"}))?).await?;
    let body_hit = fx
        .svc
        .tasks
        .create(&alice, input(json!({"title": "Dashboard", "description": "slow after LOGIN, twice"}))?)
        .await?;
    let hidden = fx.svc.tasks.create(&bob, input(json!({"title": "Bob's login secret"}))?).await?;
    let gone = fx.svc.tasks.create(&alice, input(json!({"title": "Old login task"}))?).await?;
    fx.svc.tasks.archive(&alice, gone.id, None).await?;
    relay_all(&fx, &bus).await?;
    drain(&runner(&fx, &bus, Arc::new(projections::SearchIndex)), bus.idle()).await?;
    let page = PageRequest::first(10);
    let ids = |hits: Vec<projections::SearchHit>| hits.into_iter().map(|h| h.task_id).collect::<Vec<_>>();
    assert_eq!(ids(fx.svc.projections.search(&alice, "login", &page).await?.items), vec![title_hit.id, body_hit.id]);
    let hits = fx.svc.projections.search(&alice, "LOGIN twice", &page).await?.items;
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].snippet, "slow after [LOGIN,] [twice]");
    assert_eq!(ids(fx.svc.projections.search(&bob, "login", &page).await?.items), vec![hidden.id]);
    assert!(ids(fx.svc.projections.search(&alice, "secret", &page).await?.items).is_empty(), "not hers");
    let staff = fx.staff("root").await?;
    let all: HashSet<i64> = ids(fx.svc.projections.search(&staff, "login", &page).await?.items).into_iter().collect();
    assert_eq!(all, HashSet::from([title_hit.id, body_hit.id, hidden.id]), "archived tasks are gone");
    // Query syntax is only words: these are the words login, or, near — all required, so nothing
    // matches (as FTS5 or tsquery syntax this would be an error or match "login").
    assert!(fx.svc.projections.search(&alice, "\"login\" OR * NEAR(", &page).await?.items.is_empty());
    assert_eq!(
        ids(fx.svc.projections.search(&alice, "\"login\" * (", &page).await?.items),
        vec![title_hit.id, body_hit.id]
    );
    assert!(matches!(fx.svc.projections.search(&alice, "", &page).await, Err(taskhub_core::Error::Validation { .. })));
    assert!(matches!(
        fx.svc.projections.search(&alice, &"x".repeat(201), &page).await,
        Err(taskhub_core::Error::Validation { .. })
    ));
    // Unarchived, it is found again; retitled, found by its new words only.
    fx.svc.tasks.unarchive(&alice, gone.id, None).await?;
    fx.svc.tasks.update(&alice, gone.id, input(json!({"title": "Renamed entirely"}))?, WriteMode::Patch, None).await?;
    relay_all(&fx, &bus).await?;
    drain(&runner(&fx, &bus, Arc::new(projections::SearchIndex)), bus.idle()).await?;
    assert_eq!(ids(fx.svc.projections.search(&alice, "renamed", &page).await?.items), vec![gone.id]);
    assert!(!ids(fx.svc.projections.search(&alice, "old", &page).await?.items).contains(&gone.id));
    Ok(())
}

/// A bus in front of the real one: `down` refuses everything (the broker is unreachable);
/// `lose_acks` lets the messages through but loses the acknowledgement, as when the relay dies
/// between publish and mark.
struct Faulty {
    inner: Arc<dyn EventPublisher>,
    down: std::sync::atomic::AtomicBool,
    lose_acks: std::sync::atomic::AtomicUsize,
}

#[async_trait::async_trait]
impl EventPublisher for Faulty {
    async fn publish(&self, batch: &[taskhub_core::events::OutboxRecord]) -> taskhub_core::Result<()> {
        use std::sync::atomic::Ordering::SeqCst;
        if self.down.load(SeqCst) {
            return Err(taskhub_core::Error::internal("broker unavailable"));
        }
        self.inner.publish(batch).await?;
        if self.lose_acks.load(SeqCst) > 0 {
            self.lose_acks.fetch_sub(1, SeqCst);
            return Err(taskhub_core::Error::internal("relay killed before marking"));
        }
        Ok(())
    }
    fn marked(&self) {
        self.inner.marked();
    }
}

pub async fn a_relay_killed_before_marking_resends_and_nothing_is_applied_twice(fx: Fx, bus: Bus) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize};
    workload(&fx, 6).await?;
    let total = events_on(&fx, &TOPICS).await?.len();
    let faulty =
        Arc::new(Faulty { inner: bus.publisher.clone(), down: AtomicBool::new(false), lose_acks: AtomicUsize::new(2) });
    let dying = Relay::new(fx.svc.ctx.clone(), faulty.clone()).with_batch(10);
    assert!(dying.run_once().await.is_err(), "published, not marked");
    // The relay process died: its lease runs out, another relay takes over and sends again.
    fx.tick(16_000);
    let next = Relay::new(fx.svc.ctx.clone(), faulty.clone()).with_batch(10);
    assert!(next.run_once().await.is_err(), "killed once more");
    fx.tick(16_000);
    let produced = relay_all(&fx, &bus).await?;
    let consumer: Arc<dyn Consumer> = Arc::new(projections::AnalyticsAggregator);
    let outcomes = drain(&runner(&fx, &bus, consumer.clone()), bus.idle()).await?;
    let expected = events_on(&fx, consumer.topics()).await?.len();
    let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
    let skipped = outcomes.iter().filter(|o| **o == Outcome::Duplicate).count();
    println!(
        "[{:?}] relay killed twice between publish and mark: events {total}, published after restart {produced}, consumed {}, effects lost {}, duplicate effects {}, resends skipped {skipped}",
        bus.kind,
        outcomes.len(),
        expected.saturating_sub(applied),
        applied.saturating_sub(expected)
    );
    assert_eq!(produced, total, "every row is still unmarked after the crashes, and is sent");
    assert_eq!(applied, expected, "each event applied exactly once");
    if bus.kind != BusKind::Memory {
        // The in-process bus delivers what the relay marked, so it never sees the lost sends.
        assert!(skipped > 0, "the resent events were delivered twice and skipped");
    }
    Ok(())
}

pub async fn an_unavailable_broker_grows_the_outbox_which_drains_when_it_returns(fx: Fx, bus: Bus) -> Result<()> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
    let alice = fx.user("alice").await?;
    let faulty =
        Arc::new(Faulty { inner: bus.publisher.clone(), down: AtomicBool::new(true), lose_acks: AtomicUsize::new(0) });
    let relay = Relay::new(fx.svc.ctx.clone(), faulty.clone()).with_batch(50);
    // While the broker is down, commands keep succeeding and the outbox grows.
    let mut max_backlog = 0;
    for i in 0..40 {
        fx.svc.tasks.create(&alice, input(json!({"title": format!("while down {i}")}))?).await?;
        if i % 10 == 9 {
            assert!(relay.run_once().await.is_err());
            max_backlog = max_backlog.max(fx.store.read().await?.list_unpublished(100_000).await?.len());
        }
    }
    assert!(max_backlog >= 41, "outbox grew to {max_backlog}");
    // The broker comes back: the outbox drains, the consumers catch up.
    faulty.down.store(false, SeqCst);
    let mut drained = 0;
    loop {
        let n = relay.run_once().await?;
        if n == 0 {
            break;
        }
        drained += n;
    }
    relay.release().await?;
    assert!(fx.store.read().await?.list_unpublished(10).await?.is_empty());
    let consumer: Arc<dyn Consumer> = Arc::new(projections::AnalyticsAggregator);
    let outcomes = drain(&runner(&fx, &bus, consumer.clone()), bus.idle()).await?;
    let expected = events_on(&fx, consumer.topics()).await?.len();
    let applied = outcomes.iter().filter(|o| **o == Outcome::Applied).count();
    println!(
        "[{:?}] broker down for 40 commands: max outbox backlog {max_backlog}, drained {drained}, consumed {}, effects lost {}",
        bus.kind,
        outcomes.len(),
        expected.saturating_sub(applied)
    );
    assert_eq!(drained, max_backlog);
    assert_eq!(applied, expected);
    assert_eq!(snapshot(&fx).await?["counter:created"], 40);
    Ok(())
}

bus_contract!(
    consumers::every_consumer_applies_each_event_once,
    consumers::poison_messages_go_to_the_dlq_and_the_consumer_moves_on,
    consumers::a_consumer_killed_mid_batch_resumes_without_loss_or_duplicates,
    consumers::two_instances_of_each_consumer_end_where_one_would,
    consumers::tampering_with_the_audit_chain_is_detected,
    consumers::search_is_ranked_visible_and_live,
    consumers::a_relay_killed_before_marking_resends_and_nothing_is_applied_twice,
    consumers::an_unavailable_broker_grows_the_outbox_which_drains_when_it_returns,
);

/// The same tasks on SQLite (FTS5) and PostgreSQL (tsvector + GIN): every query finds the same
/// tasks, and for one word title matches rank before description-only ones on both.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fts5_and_tsvector_give_the_same_answers() -> Result<()> {
    const WORDS: [&str; 12] =
        ["login", "page", "slow", "export", "report", "crash", "mobile", "sync", "invoice", "email", "retry", "cache"];
    let mut answers = Vec::new();
    for engine in [Engine::Sqlite, Engine::Postgres] {
        let fx = Fx::new(engine).await?;
        let bus = Bus::new(BusKind::Memory, &fx).await?;
        let alice = fx.user("alice").await?;
        // A fixed pseudo-random corpus: 60 tasks, 2-word titles, 6-word descriptions, tags.
        let mut seed = 7u64;
        let mut pick = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            WORDS[usize::try_from(seed >> 33).unwrap_or(0) % WORDS.len()]
        };
        for _ in 0..60 {
            let title = format!("{} {}", pick(), pick().to_uppercase());
            let description: Vec<&str> = (0..6).map(|_| pick()).collect();
            let tag = pick();
            fx.svc
                .tasks
                .create(&alice, input(json!({"title": title, "description": description.join(", "), "tags": [tag]}))?)
                .await?;
        }
        relay_all(&fx, &bus).await?;
        drain(&runner(&fx, &bus, Arc::new(projections::SearchIndex)), bus.idle()).await?;
        let mut per_query = Vec::new();
        for q in ["login", "Slow page", "crash mobile sync", "EMAIL", "invoice-retry", "nothing", "cache export report"]
        {
            let hits = fx.svc.projections.search(&alice, q, &PageRequest::first(200)).await?.items;
            let in_title: std::collections::BTreeSet<i64> = hits
                .iter()
                .filter(|h| projections::terms(&h.title).iter().any(|t| projections::terms(q).contains(t)))
                .map(|h| h.task_id)
                .collect();
            let first_body_only = hits.iter().position(|h| !in_title.contains(&h.task_id)).unwrap_or(hits.len());
            if projections::terms(q).len() == 1 {
                assert!(
                    hits.iter().skip(first_body_only).all(|h| !in_title.contains(&h.task_id)),
                    "{engine:?} {q}: title matches rank first"
                );
            }
            let all: std::collections::BTreeSet<i64> = hits.iter().map(|h| h.task_id).collect();
            per_query.push((q, all, in_title, hits.iter().map(|h| h.snippet.clone()).collect::<HashSet<_>>()));
        }
        answers.push(per_query);
    }
    let (sqlite, pg) = (&answers[0], &answers[1]);
    let mut total = 0;
    for (a, b) in sqlite.iter().zip(pg.iter()) {
        assert_eq!(a, b, "query {:?}: same hits, same title hits, same snippets on both engines", a.0);
        total += a.1.len();
    }
    assert!(total > 30, "the queries do find things ({total} hits)");
    Ok(())
}

//! # taskhub-events
//!
//! TaskHub's event shell: the outbox relay and the five consumers of EVENTS.md (activity feed,
//! search index, audit log, notifications, analytics aggregator) over the configured bus —
//! in-process (`memory`), Redis Streams (`redis`) or Kafka (`kafka`).
//!
//! `taskhub --role events` runs [`run`] on its own; the embedded server (`--role all`) runs the
//! same thing in-process beside the HTTP server. Several instances may run at once: the relay
//! elects one leader through a database lease, and each consumer is a group whose members share
//! the work and whose effects are idempotent by event id.
//!
//! Features: `sqlite` (default), `postgres`, `redis`, `kafka`.

use anyhow::{Result, bail};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use taskhub_core::config::{BusKind, Config};
use taskhub_core::events::consumer::{Consumer, ConsumerRunner, ConsumerStats};
use taskhub_core::events::{EventPublisher, EventSource, MemoryBus, MemorySource, Relay};
use taskhub_core::services::Ctx;

/// Every topic of EVENTS.md.
pub const ALL_TOPICS: [&str; 4] = [
    taskhub_core::events::TOPIC_TASK_EVENTS,
    taskhub_core::events::TOPIC_USER_ACTIVITIES,
    taskhub_core::events::TOPIC_ANALYTICS_EVENTS,
    taskhub_core::events::TOPIC_SYSTEM_NOTIFICATIONS,
];

/// The two ends of a bus.
#[derive(Clone)]
pub struct BusPair {
    /// What the relay publishes to.
    pub publisher: Arc<dyn EventPublisher>,
    /// What the consumers read.
    pub source: Arc<dyn EventSource>,
}

/// Opens the bus `cfg` names.
pub async fn connect_bus(cfg: &Config, ctx: &Ctx) -> Result<BusPair> {
    match cfg.bus {
        BusKind::Memory => {
            let bus = Arc::new(MemoryBus::new());
            let source = Arc::new(MemorySource::new(ctx.clone(), bus.wake_handle()));
            Ok(BusPair { publisher: bus, source })
        }
        #[cfg(feature = "redis")]
        BusKind::Redis => {
            let Some(url) = cfg.redis_url.as_deref() else { bail!("--bus redis needs --redis-url") };
            let publisher = taskhub_core::events::RedisPublisher::connect(url, "").await?;
            let source = taskhub_core::events::RedisSource::connect(url, "").await?;
            Ok(BusPair { publisher: Arc::new(publisher), source: Arc::new(source) })
        }
        #[cfg(not(feature = "redis"))]
        BusKind::Redis => bail!("this build has no Redis support (feature `redis`)"),
        #[cfg(feature = "kafka")]
        BusKind::Kafka => {
            let Some(brokers) = cfg.kafka_brokers.as_deref() else { bail!("--bus kafka needs --kafka-brokers") };
            let bus = taskhub_core::events::KafkaBus::connect(brokers, "", &ALL_TOPICS).await?;
            Ok(BusPair { publisher: Arc::new(bus.clone()), source: Arc::new(bus) })
        }
        #[cfg(not(feature = "kafka"))]
        BusKind::Kafka => bail!("this build has no Kafka support (feature `kafka`)"),
    }
}

/// The running relay and consumers.
pub struct EventsRuntime {
    /// Counters of each consumer (for `/metrics`).
    pub stats: Vec<Arc<ConsumerStats>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl EventsRuntime {
    /// Waits until every task stopped (after the shutdown signal).
    pub async fn join(self) {
        for t in self.tasks {
            let _ = t.await;
        }
    }
}

/// Starts the relay (if `relay`) and one member of each of `consumers`, until `shutdown`
/// resolves (it is awaited once and shared).
pub fn start(
    ctx: &Ctx,
    bus: &BusPair,
    consumers: Vec<Arc<dyn Consumer>>,
    relay: bool,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> EventsRuntime {
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stop = move || {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    }));
    if relay {
        let r = Relay::new(ctx.clone(), bus.publisher.clone());
        let s = stop();
        tasks.push(tokio::spawn(async move { r.run(Duration::from_millis(50), s).await }));
    }
    let mut stats = Vec::new();
    for c in consumers {
        let runner = ConsumerRunner::new(ctx.clone(), bus.source.clone(), c);
        stats.push(runner.stats());
        let s = stop();
        tasks.push(tokio::spawn(async move { runner.run(s).await }));
    }
    EventsRuntime { stats, tasks }
}

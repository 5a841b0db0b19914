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

/// Reads one counter of a consumer.
type StatOf = fn(&taskhub_core::events::consumer::ConsumerStats) -> u64;

/// Appends the consumers' counters and lag to a Prometheus text exposition.
pub fn render_metrics(out: &mut String, stats: &[std::sync::Arc<taskhub_core::events::consumer::ConsumerStats>]) {
    use std::fmt::Write as _;
    use std::sync::atomic::Ordering::Relaxed;
    if stats.is_empty() {
        return;
    }
    let series: [(&str, &str, &str, StatOf); 5] = [
        ("taskhub_consumer_lag", "gauge", "Messages the consumer's group has not acknowledged yet.", |s| {
            s.lag.load(Relaxed)
        }),
        ("taskhub_consumer_applied_total", "counter", "Events whose effect was applied.", |s| s.applied.load(Relaxed)),
        ("taskhub_consumer_duplicates_total", "counter", "Redelivered events skipped (already applied).", |s| {
            s.duplicates.load(Relaxed)
        }),
        ("taskhub_consumer_dead_lettered_total", "counter", "Messages sent to a dead-letter topic.", |s| {
            s.dead_lettered.load(Relaxed)
        }),
        ("taskhub_consumer_failures_total", "counter", "Failed attempts (retried or dead-lettered).", |s| {
            s.failures.load(Relaxed)
        }),
    ];
    for (name, kind, help, value) in series {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        for s in stats {
            let _ = writeln!(out, "{name}{{consumer=\"{}\"}} {}", s.name, value(s));
        }
    }
}

/// The operations routes of a process running only the events role: `GET /healthz` and
/// `GET /metrics` (each consumer's lag and counters, and the database pool).
pub fn ops_router(services: taskhub_core::Services, stats: Vec<Arc<ConsumerStats>>) -> axum::Router {
    use axum::http::header;
    use axum::response::IntoResponse;
    use axum::routing::get;
    let healthz = || async { axum::Json(serde_json::json!({"data": {"status": "ok"}, "error": null, "meta": {}})) };
    let metrics = move || {
        let stats = stats.clone();
        let services = services.clone();
        async move {
            let mut out = String::new();
            let (open, idle) = services.store().pool_stats();
            out.push_str("# HELP taskhub_db_pool_connections Database pool connections by state.\n");
            out.push_str("# TYPE taskhub_db_pool_connections gauge\n");
            out.push_str(&format!("taskhub_db_pool_connections{{state=\"open\"}} {open}\n"));
            out.push_str(&format!("taskhub_db_pool_connections{{state=\"idle\"}} {idle}\n"));
            render_metrics(&mut out, &stats);
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
        }
    };
    axum::Router::new().route("/healthz", get(healthz)).route("/metrics", get(metrics))
}

/// Runs the events role until SIGINT/SIGTERM: the relay, the five consumers, and the operations
/// routes on `cfg.bind` (logged as the address it listens on).
pub async fn serve(cfg: &Config, services: taskhub_core::Services) -> Result<()> {
    let bus = connect_bus(cfg, &services.ctx).await?;
    let listener = tokio::net::TcpListener::bind(cfg.bind).await?;
    let addr = listener.local_addr()?;
    tracing::info!(address = %addr, bus = ?cfg.bus, "taskhub events listening on http://{addr} (relay and consumers started)");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut rx = stop_rx.clone();
    let rt = start(&services.ctx, &bus, taskhub_core::projections::all(), true, async move {
        let _ = rx.wait_for(|s| *s).await;
    });
    let app = ops_router(services, rt.stats.clone());
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            taskhub_core::runtime::shutdown_signal().await;
            let _ = stop_tx.send(true);
        })
        .await?;
    rt.join().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

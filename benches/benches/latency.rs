//! Commit → consumer-effect latency at a steady 1,000 events/s, per bus and engine: a producer
//! commits one outbox event per millisecond (its own transaction, as a command does), the relay
//! publishes as in production, and a consumer applies each event in its own transaction (with
//! the processed-id record). Latency = effect committed − event committed. Prints p50/p99/max
//! and the throughput actually reached.
//!
//! `cargo bench -p taskhub-benches --bench latency --features postgres,redis,kafka`
//! (`TASKHUB_LATENCY_SECONDS`, default 10 s of load per case; `TASKHUB_BENCH_KAFKA_FETCH_WAIT_MS`,
//! default 50, the consumers' fetch wait).
#![expect(clippy::panic, reason = "a benchmark has no caller to report to: a broken set-up aborts it")]

use async_trait::async_trait;
use chrono::Utc;
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use taskhub_core::events::consumer::{Consumer, ConsumerRunner};
use taskhub_core::events::{EventEnvelope, EventPublisher, EventSource, MemoryBus, MemorySource, Relay};
use taskhub_core::services::Ctx;
use taskhub_core::store::Tx;
use taskhub_core::{Services, store};

/// How often the relay looks at an idle outbox (the production setting of taskhub-events).
const RELAY_IDLE: Duration = Duration::from_millis(20);

/// Records the latency of the events of this run, after their effect committed.
struct Probe {
    run: String,
    seen: Mutex<Vec<f64>>,
}

#[async_trait]
impl Consumer for Probe {
    fn name(&self) -> &'static str {
        "latency-probe"
    }
    fn topics(&self) -> &'static [&'static str] {
        &[taskhub_core::events::TOPIC_TASK_EVENTS]
    }
    async fn apply(&self, tx: &mut dyn Tx, e: &EventEnvelope) -> taskhub_core::Result<()> {
        // A small effect, as a read model's: one counter row.
        tx.bump_counter(e.occurred_at.date_naive(), "latency_probe", "", 1).await
    }
    fn committed(&self, e: &EventEnvelope) {
        if e.data.get("run").and_then(|v| v.as_str()) == Some(self.run.as_str()) {
            let ms = (Utc::now() - e.occurred_at).num_microseconds().unwrap_or(0) as f64 / 1000.0;
            if let Ok(mut s) = self.seen.lock() {
                s.push(ms);
            }
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

async fn fresh_database(engine: &str) -> (String, Option<String>) {
    let name = format!("taskhub_latency_{}", uuid::Uuid::now_v7().simple());
    if engine == "sqlite" {
        return (format!("sqlite://{}", std::env::temp_dir().join(format!("{name}.db")).display()), None);
    }
    use sqlx::Connection;
    let admin =
        std::env::var("TASKHUB_BENCH_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut c)
        .await
        .unwrap_or_else(|e| panic!("create database: {e}"));
    let mut url = url::Url::parse(&admin).unwrap_or_else(|e| panic!("url: {e}"));
    url.set_path(&name);
    (url.to_string(), Some(name))
}

async fn drop_database(name: Option<String>) {
    if let Some(name) = name {
        use sqlx::Connection;
        let admin =
            std::env::var("TASKHUB_BENCH_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
            let _ = sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                .execute(&mut c)
                .await;
        }
    }
}

async fn bus(kind: &str, ctx: &Ctx) -> (Arc<dyn EventPublisher>, Arc<dyn EventSource>) {
    let prefix = format!("taskhub-latency-{}.", uuid::Uuid::now_v7().simple());
    match kind {
        #[cfg(feature = "redis")]
        "redis" => {
            let url = std::env::var("TASKHUB_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let p = taskhub_core::events::RedisPublisher::connect(&url, prefix.clone())
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let s = taskhub_core::events::RedisSource::connect(&url, prefix).await.unwrap_or_else(|e| panic!("{e}"));
            (Arc::new(p), Arc::new(s))
        }
        #[cfg(feature = "kafka")]
        "kafka" => {
            let brokers = std::env::var("TASKHUB_BENCH_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
            let b =
                taskhub_core::events::KafkaBus::connect(&brokers, prefix, &[taskhub_core::events::TOPIC_TASK_EVENTS])
                    .await
                    .unwrap_or_else(|e| panic!("{e}"));
            (Arc::new(b.clone()), Arc::new(b))
        }
        _ => {
            let b = Arc::new(MemoryBus::new());
            let s = Arc::new(MemorySource::new(ctx.clone(), b.wake_handle()));
            (b, s)
        }
    }
}

async fn case(engine: &str, kind: &str, seconds: u64) {
    let (url, pg_name) = fresh_database(engine).await;
    let st = store::connect_with(&url, 16).await.unwrap_or_else(|e| panic!("store: {e}"));
    let services = Services::new(st);
    let ctx = services.ctx.clone();
    let (publisher, source) = bus(kind, &ctx).await;
    let run = uuid::Uuid::now_v7().to_string();
    let probe = Arc::new(Probe { run: run.clone(), seen: Mutex::default() });
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let stop_fut = || {
        let mut rx = stopped.clone();
        async move {
            let _ = rx.wait_for(|s| *s).await;
        }
    };
    let relay = Relay::new(ctx.clone(), publisher);
    let relay_task = tokio::spawn({
        let s = stop_fut();
        async move { relay.run(RELAY_IDLE, s).await }
    });
    let runner = ConsumerRunner::new(ctx.clone(), source, probe.clone());
    let consumer_task = tokio::spawn({
        let s = stop_fut();
        async move { runner.run(s).await }
    });
    let produce = |n: u64, tag: String| {
        let ctx = ctx.clone();
        async move {
            let e = EventEnvelope::new(
                "task.updated",
                "task",
                i64::try_from(n % 1000).unwrap_or(0),
                None,
                Utc::now(),
                json!({"run": tag, "n": n}),
            );
            let mut tx = ctx.store.begin().await.unwrap_or_else(|e| panic!("begin: {e}"));
            tx.insert_outbox(&e).await.unwrap_or_else(|e| panic!("outbox: {e}"));
            tx.commit().await.unwrap_or_else(|e| panic!("commit: {e}"));
        }
    };
    // Warm-up until the consumer is in its group and has seen an event (Kafka joins slowly).
    for i in 0..50 {
        produce(i, "warm-up".into()).await;
    }
    let warm = tokio::time::Instant::now();
    while probe_count(&ctx).await < 50 && warm.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Steady load: one event per millisecond, each committed by its own task.
    let total = seconds * 1000;
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut producers = tokio::task::JoinSet::new();
    for n in 0..total {
        tick.tick().await;
        producers.spawn(produce(n, run.clone()));
        while producers.len() > 64 {
            producers.join_next().await;
        }
    }
    while producers.join_next().await.is_some() {}
    let offered = started.elapsed();
    let wait = tokio::time::Instant::now();
    while probe.seen.lock().map(|s| s.len()).unwrap_or(0) < total as usize && wait.elapsed() < Duration::from_secs(120)
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(true);
    let _ = relay_task.await;
    let _ = consumer_task.await;
    let mut seen = probe.seen.lock().map(|s| s.clone()).unwrap_or_default();
    seen.sort_by(f64::total_cmp);
    println!(
        "{engine:>8} + {kind:<6}: {} of {total} events at {:.0}/s offered; commit→effect p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        seen.len(),
        total as f64 / offered.as_secs_f64(),
        percentile(&seen, 0.50),
        percentile(&seen, 0.99),
        seen.last().copied().unwrap_or(f64::NAN),
    );
    drop(services);
    drop_database(pg_name).await;
}

async fn probe_count(ctx: &Ctx) -> i64 {
    let Ok(mut tx) = ctx.store.read().await else { return 0 };
    let (Ok(from), Ok(to)) = ("2000-01-01".parse(), "2100-01-01".parse()) else { return 0 };
    let Ok(rows) = tx.list_counters(from, to).await else { return 0 };
    rows.iter().filter(|c| c.metric == "latency_probe").map(|c| c.value).sum()
}

fn main() {
    let seconds: u64 = std::env::var("TASKHUB_LATENCY_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(10);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    // `cargo bench` passes `--bench`; a filter argument picks cases (`memory`, `redis`, `kafka`).
    let filter: Option<String> = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    let mut cases = vec![("sqlite", "memory")];
    if cfg!(feature = "postgres") {
        cases.push(("postgres", "memory"));
        if cfg!(feature = "redis") {
            cases.push(("postgres", "redis"));
        }
        if cfg!(feature = "kafka") {
            cases.push(("postgres", "kafka"));
        }
    }
    for (engine, kind) in cases {
        if filter.as_deref().is_some_and(|f| !kind.contains(f) && !engine.contains(f)) {
            continue;
        }
        rt.block_on(case(engine, kind, seconds));
    }
}

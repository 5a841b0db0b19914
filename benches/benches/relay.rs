//! Outbox relay throughput: draining every row of the 10k data set's outbox (≈10k events) to the
//! in-process bus, Redis Streams (`--features redis`) and Kafka (`--features kafka`), on SQLite and
//! PostgreSQL.
//! Reported as time per drain; events/s = rows / time (printed once per case).
//!
//! `cargo bench -p taskhub-benches --bench relay --features postgres,redis,kafka`
#![expect(clippy::panic, reason = "a benchmark has no caller to report to: a broken set-up aborts it")]

use criterion::{Criterion, criterion_group, criterion_main};
use std::sync::Arc;
use std::time::{Duration, Instant};
use taskhub_benches::{Dataset, Engine, reset_outbox};
use taskhub_core::events::{EventPublisher, MemoryBus, Relay};

fn relay(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut g = c.benchmark_group("relay");
    g.sample_size(10).measurement_time(Duration::from_secs(20));
    let mut engines = vec![Engine::Sqlite];
    if cfg!(feature = "postgres") {
        engines.push(Engine::Postgres);
    }
    for engine in engines {
        let ds = rt.block_on(Dataset::open(engine, 10_000)).unwrap_or_else(|e| panic!("data set: {e:#}"));
        let mut buses: Vec<(&str, Arc<dyn EventPublisher>)> = vec![("memory", Arc::new(MemoryBus::new()))];
        #[cfg(feature = "redis")]
        let redis = {
            let url = std::env::var("TASKHUB_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
            let prefix = format!("taskhub-bench-{}:", std::process::id());
            let p = rt
                .block_on(taskhub_core::events::RedisPublisher::connect(&url, prefix))
                .unwrap_or_else(|e| panic!("redis: {e}"));
            buses.push(("redis", Arc::new(p.clone())));
            p
        };
        #[cfg(feature = "kafka")]
        let kafka = {
            let brokers = std::env::var("TASKHUB_BENCH_KAFKA_BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into());
            let prefix = format!("taskhub-bench-{}-{engine:?}.", std::process::id());
            let topics = ["task-events", "user-activities", "analytics-events", "system-notifications"];
            let b = rt
                .block_on(taskhub_core::events::KafkaBus::connect(&brokers, prefix, &topics))
                .unwrap_or_else(|e| panic!("kafka: {e}"));
            buses.push(("kafka", Arc::new(b.clone())));
            b
        };
        for (bus, publisher) in buses {
            let relay = Relay::new(ds.services.ctx.clone(), publisher).with_batch(500);
            let rows = rt.block_on(reset_outbox(&ds.url)).unwrap_or_else(|e| panic!("reset: {e}"));
            let mut reported = false;
            g.bench_function(format!("drain_{rows}_events/{engine:?}/{bus}"), |b| {
                b.iter_custom(|iters| {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        rt.block_on(reset_outbox(&ds.url)).unwrap_or_else(|e| panic!("reset: {e}"));
                        let start = Instant::now();
                        let mut n = 0;
                        loop {
                            let k = rt.block_on(relay.run_once()).unwrap_or_else(|e| panic!("relay: {e}"));
                            if k == 0 {
                                break;
                            }
                            n += k;
                        }
                        let took = start.elapsed();
                        if !reported {
                            println!(
                                "relay {engine:?} → {bus}: {n} events in {took:.2?} = {:.0} events/s",
                                n as f64 / took.as_secs_f64()
                            );
                            reported = true;
                        }
                        total += took;
                    }
                    total
                });
            });
            rt.block_on(relay.release()).unwrap_or_else(|e| panic!("release: {e}"));
        }
        #[cfg(feature = "redis")]
        rt.block_on(redis.delete_streams(&[
            "task-events",
            "user-activities",
            "analytics-events",
            "system-notifications",
        ]))
        .unwrap_or_else(|e| panic!("redis cleanup: {e}"));
        #[cfg(feature = "kafka")]
        rt.block_on(kafka.delete_topics(&[
            "task-events",
            "user-activities",
            "analytics-events",
            "system-notifications",
        ]))
        .unwrap_or_else(|e| panic!("kafka cleanup: {e}"));
    }
    g.finish();
}

criterion_group!(benches, relay);
criterion_main!(benches);

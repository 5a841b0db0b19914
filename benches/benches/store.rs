//! Store benchmarks: create a task, get a task, list a page of 50 visible tasks — on SQLite and
//! PostgreSQL, at 10k tasks (and 1M with `TASKHUB_BENCH_1M=1`).
//!
//! `cargo bench -p taskhub-benches --bench store --features postgres`

#![expect(clippy::panic, reason = "a benchmark has no caller to report to: a broken set-up aborts it")]

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use std::sync::atomic::{AtomicU32, Ordering};
use taskhub_benches::{Dataset, Engine, task_body};
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::TaskQuery;

fn engines() -> Vec<Engine> {
    let mut e = vec![Engine::Sqlite];
    if cfg!(feature = "postgres") {
        e.push(Engine::Postgres);
    }
    e
}

fn sizes() -> Vec<u32> {
    let mut s = vec![10_000];
    if std::env::var("TASKHUB_BENCH_1M").is_ok_and(|v| v == "1") {
        s.push(1_000_000);
    }
    s
}

fn store(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut g = c.benchmark_group("store");
    for engine in engines() {
        for n in sizes() {
            let ds = rt.block_on(Dataset::open(engine, n)).unwrap_or_else(|e| panic!("data set: {e:#}"));
            let me = *ds.users.first().unwrap_or_else(|| panic!("no users"));
            let other = ds.users.get(1).map_or(me.user_id, |u| u.user_id);
            let id = *ds.visible.first().unwrap_or_else(|| panic!("no visible task"));
            let label = format!("{engine:?}/{n}");
            g.bench_function(BenchmarkId::new("get_task", &label), |b| {
                b.to_async(&rt)
                    .iter(|| async { ds.services.tasks.get(&me, id).await.unwrap_or_else(|e| panic!("{e}")) });
            });
            g.bench_function(BenchmarkId::new("list_50_visible", &label), |b| {
                b.to_async(&rt).iter(|| async {
                    let p = ds.services.tasks.list(&me, &TaskQuery::default(), &PageRequest::first(50)).await;
                    p.unwrap_or_else(|e| panic!("{e}"))
                });
            });
            let counter = AtomicU32::new(0);
            g.bench_function(BenchmarkId::new("create_task", &label), |b| {
                b.to_async(&rt).iter(|| async {
                    let i = counter.fetch_add(1, Ordering::Relaxed);
                    ds.services.tasks.create(&me, task_body(i, other)).await.unwrap_or_else(|e| panic!("{e}"))
                });
            });
            rt.block_on(taskhub_benches::trim(&ds.url, ds.tasks)).unwrap_or_else(|e| panic!("trim: {e}"));
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30).measurement_time(std::time::Duration::from_secs(4));
    targets = store
}
criterion_main!(benches);

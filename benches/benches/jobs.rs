//! A job queue on each apalis storage: enqueue latency (p50/p99 of one push), the rate at which
//! one worker runs no-op jobs, and how soon an idle queue runs a job pushed into it.
//!
//! `cargo bench -p taskhub-benches --bench jobs --features postgres,redis`
//! (`TASKHUB_JOBS_N`, default 2,000 jobs per storage).
#![expect(clippy::panic, reason = "a benchmark has no caller to report to: a broken set-up aborts it")]

use std::time::{Duration, Instant};
use taskhub_core::config::{Config, JobsBackend};
use taskhub_core::{Services, store};
use taskhub_jobs::runner::{Job, JobQueue};

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted.get(i).copied().unwrap_or(f64::NAN)
}

/// A database of the benchmark's own (apalis adds its schema and extensions to it).
async fn bench_database() -> String {
    use sqlx::Connection;
    let admin =
        std::env::var("TASKHUB_BENCH_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let mut c = sqlx::PgConnection::connect(&admin).await.unwrap_or_else(|e| panic!("PostgreSQL: {e}"));
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = 'taskhub_bench_jobs'")
        .fetch_optional(&mut c)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    if exists.is_none() {
        sqlx::query("CREATE DATABASE taskhub_bench_jobs").execute(&mut c).await.unwrap_or_else(|e| panic!("{e}"));
    }
    let mut url = url::Url::parse(&admin).unwrap_or_else(|e| panic!("{e}"));
    url.set_path("taskhub_bench_jobs");
    url.to_string()
}

async fn case(backend: JobsBackend, n: usize) {
    let dir = std::env::temp_dir().join(format!("taskhub-jobs-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    let database_url = if backend == JobsBackend::Postgres {
        bench_database().await
    } else {
        format!("sqlite://{}", dir.join("main.db").display())
    };
    let redis_url = std::env::var("TASKHUB_BENCH_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let cfg = Config {
        database_url: database_url.clone(),
        jobs_backend: backend,
        redis_url: Some(redis_url),
        ..Config::default()
    };
    let services = Services::new(store::connect(&database_url).await.unwrap_or_else(|e| panic!("store: {e}")));
    let queue_name = format!("bench-{}", uuid::Uuid::now_v7().simple());
    let mut q = JobQueue::open(&cfg, &queue_name).await.unwrap_or_else(|e| panic!("queue: {e}"));
    let mut lat = Vec::with_capacity(n);
    let started = Instant::now();
    for _ in 0..n {
        let t = Instant::now();
        q.push(Job::Noop).await.unwrap_or_else(|e| panic!("push: {e}"));
        lat.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let enqueue = started.elapsed();
    lat.sort_by(f64::total_cmp);
    // One worker drains the queue; the rate is read from the queue's own records.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let worker = {
        let services = taskhub_jobs::runner::JobContext::new(services.clone());
        let (q, mut rx) = (q.clone(), stopped);
        tokio::spawn(async move {
            let concurrency = taskhub_jobs::runner::INTERACTIVE_CONCURRENCY;
            q.work(format!("bench-{}", uuid::Uuid::now_v7().simple()), services, concurrency, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        })
    };
    let started = Instant::now();
    let finished = |s: &std::collections::BTreeMap<String, f64>| {
        (s.get("DONE_JOBS").copied().unwrap_or(0.0) + s.get("FAILED_JOBS").copied().unwrap_or(0.0)) as usize
    };
    while finished(&q.stats().await.unwrap_or_default()) < n && started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let ran = started.elapsed();
    // Pick-up: one job pushed into the idle queue, until it is recorded done.
    let mut pickup = Vec::new();
    for i in 0..30 {
        let t = Instant::now();
        q.push(Job::Noop).await.unwrap_or_else(|e| panic!("push: {e}"));
        while finished(&q.stats().await.unwrap_or_default()) < n + i + 1 && t.elapsed() < Duration::from_secs(30) {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        pickup.push(t.elapsed().as_secs_f64() * 1000.0);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    pickup.sort_by(f64::total_cmp);
    let _ = stop.send(true);
    let _ = worker.await;
    let stats = q.stats().await.unwrap_or_else(|e| {
        println!("{backend:?} stats: {e}");
        Default::default()
    });
    let shown: Vec<String> = ["PENDING_JOBS", "RUNNING_JOBS", "DONE_JOBS", "FAILED_JOBS"]
        .iter()
        .map(|k| format!("{k}={}", stats.get(*k).copied().unwrap_or(f64::NAN)))
        .collect();
    println!("{backend:?} queue after the run: {}", shown.join(" "));
    println!(
        "{backend:?}: enqueue {n} in {enqueue:.2?} ({:.0}/s, one push p50 {:.2} ms, p99 {:.2} ms); one worker ran them in {ran:.2?} = {:.0} jobs/s",
        n as f64 / enqueue.as_secs_f64(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.99),
        n as f64 / ran.as_secs_f64()
    );
    println!(
        "{backend:?}: idle queue, push to recorded done: p50 {:.1} ms, p90 {:.1} ms, max {:.1} ms",
        percentile(&pickup, 0.5),
        percentile(&pickup, 0.9),
        percentile(&pickup, 1.0)
    );
}

fn main() {
    let n: usize = std::env::var("TASKHUB_JOBS_N").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let rt = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("runtime: {e}"));
    let mut backends = vec![JobsBackend::Sqlite];
    if cfg!(feature = "postgres") {
        backends.push(JobsBackend::Postgres);
    }
    if cfg!(feature = "redis") {
        backends.push(JobsBackend::Redis);
    }
    for b in backends {
        rt.block_on(case(b, n));
    }
}

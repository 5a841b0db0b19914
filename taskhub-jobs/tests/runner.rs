//! The job queues on apalis, the same contract on SQLite, PostgreSQL and Redis storage: jobs
//! pushed are run by the workers, each by one of two workers, with their effect; mail handed to
//! the `interactive` queue is sent once each.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use anyhow::Result;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use taskhub_core::auth::PasswordHasher;
use taskhub_core::clock::{Clock, ManualClock};
use taskhub_core::config::{Config, JobsBackend};
use taskhub_core::services::Ctx;
use taskhub_core::store::maintain::NewMail;
use taskhub_core::{Actor, Services, store};
use taskhub_jobs::mail::{MailSender, Mailer, Outcome, OutgoingMail};
use taskhub_jobs::runner::{Job, JobContext, JobQueue};

/// Records every message it is given.
#[derive(Default)]
struct Recorder(std::sync::Mutex<Vec<String>>);

#[async_trait::async_trait]
impl Mailer for Recorder {
    async fn send(&self, m: &OutgoingMail) -> Result<(), String> {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if m.key.starts_with("refused") {
            return Err("550 mailbox unavailable".into());
        }
        self.0.lock().unwrap().push(m.key.clone());
        Ok(())
    }
}

mod common;

/// A fresh main database: a SQLite file, or (for the PostgreSQL storage) a new PostgreSQL
/// database, which the apalis tables then share, as in a scale-out deployment.
async fn main_database(backend: JobsBackend, dir: &std::path::Path) -> Result<(String, Option<String>)> {
    if backend != JobsBackend::Postgres {
        return Ok((format!("sqlite://{}", dir.join("main.db").display()), None));
    }
    let (url, name) = common::create_pg_database().await?;
    Ok((url, Some(name)))
}

async fn contract(backend: JobsBackend) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("taskhub-runner-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let (database_url, pg) = main_database(backend, &dir).await?;
    let redis_url = std::env::var("TASKHUB_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let cfg = Config {
        database_url: database_url.clone(),
        jobs_backend: backend,
        redis_url: Some(redis_url),
        ..Config::default()
    };
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let ctx = Ctx { store: store::connect(&database_url).await?, clock: clock.clone() };
    let hasher = PasswordHasher::new(argon2::Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
    let services = Services::build(ctx, hasher);
    let ann = Actor::user(common::register(&services, "ann").await?);
    let due = (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339();
    let late = services.tasks.create(&ann, serde_json::from_value(json!({"title": "late", "due_date": due}))?).await?;
    let gone = services.tasks.create(&ann, serde_json::from_value(json!({"title": "gone"}))?).await?;
    services.tasks.archive(&ann, gone.id, None).await?;
    clock.advance(chrono::Duration::days(31));

    // A queue of this test's own; the jobs pushed before any worker runs.
    let queue = format!("long-test-{}", uuid::Uuid::now_v7().simple());
    let mut q = JobQueue::open(&cfg, &queue).await?;
    q.push(Job::OverdueScan).await?;
    // Kept 40 days: nothing to delete yet (the task was archived 31 days ago).
    q.push(Job::ArchiveCleanup { retention_days: 40 }).await?;
    for _ in 0..20 {
        q.push(Job::Noop).await?;
    }
    // Two workers with unique names.
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    for i in 0..2 {
        // Failed tries put off by 100 ms, doubling (the SQLite storage counts whole seconds).
        let services = JobContext::new(services.clone()).with_backoff(q.clone(), Duration::from_millis(100));
        let (q, mut rx) = (q.clone(), stopped.clone());
        workers.push(tokio::spawn(async move {
            q.work(format!("test-{i}-{}", uuid::Uuid::now_v7().simple()), services, 4, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        }));
    }
    let history = |id: i64| {
        let services = services.clone();
        async move { services.tasks.history(&ann, id, &taskhub_core::page::PageRequest::first(10)).await }
    };
    let n = |s: &std::collections::BTreeMap<String, f64>, k: &str| s.get(k).copied().unwrap_or(0.0);
    for _ in 0..200 {
        if n(&q.stats().await?, "DONE_JOBS") >= 22.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(n(&q.stats().await?, "DONE_JOBS") >= 22.0, "{backend:?}: the first 22 jobs ran");
    assert!(services.tasks.get(&ann, gone.id).await.is_ok(), "{backend:?}: kept 40 days, archived 31 ago");
    // Kept 30 days: it goes.
    q.push(Job::ArchiveCleanup { retention_days: 30 }).await?;
    let mut ok = false;
    for _ in 0..200 {
        let announced = history(late.id).await?.items.iter().any(|h| h.action.as_str() == "overdue");
        let purged = services.tasks.get(&ann, gone.id).await.is_err();
        if announced && purged {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "{backend:?}: the overdue scan and the cleanup ran through the queue");
    // Each job once: one overdue row, one purge event.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let overdue = history(late.id).await?.items.iter().filter(|h| h.action.as_str() == "overdue").count();
    assert_eq!(overdue, 1);
    let purges = services
        .store()
        .read()
        .await?
        .list_outbox(0, 10_000)
        .await?
        .iter()
        .filter(|r| r.event.event_type == "tasks.purged")
        .count();
    assert_eq!(purges, 1);
    // The queue's own records: every job done once, none failed, none waiting.
    let mut stats = q.stats().await?;
    for _ in 0..100 {
        if n(&stats, "DONE_JOBS") >= 23.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = q.stats().await?;
    }
    assert_eq!(n(&stats, "FAILED_JOBS"), 0.0, "{backend:?}: {stats:?}");
    assert_eq!(n(&stats, "PENDING_JOBS"), 0.0, "{backend:?}: {stats:?}");
    // Every job recorded done (the workers poll: an idle apalis worker without a poll strategy
    // records its last completions only at its next heartbeat).
    assert_eq!(n(&stats, "DONE_JOBS"), 23.0, "{backend:?}: {stats:?}");
    assert_eq!(n(&stats, "RUNNING_JOBS"), 0.0, "{backend:?}: {stats:?}");
    // Finished records are kept for a while, then forgotten.
    assert_eq!(q.vacuum(Duration::from_secs(3600)).await?, 0, "{backend:?}: nothing that old");
    assert_eq!(q.vacuum(Duration::ZERO).await?, 23, "{backend:?}: the 23 finished jobs");
    let stats = q.stats().await?;
    assert_eq!(n(&stats, "DONE_JOBS"), 0.0, "{backend:?}: {stats:?}");

    // The interactive queue: 30 queued mails handed over (twice: the second finds them taken),
    // sent by two workers, each exactly once.
    let bob = common::register(&services, "bob").await?;
    let mut tx = services.store().begin().await?;
    for i in 0..30 {
        tx.insert_mail(&NewMail {
            key: format!("e{i}:{bob}"),
            user_id: bob,
            kind: "comment".into(),
            task_id: Some(late.id),
            event_id: format!("e{i}"),
            data: json!({"title": "late", "comment": format!("note {i}")}),
            created_at: clock.now(),
        })
        .await?;
    }
    tx.commit().await?;
    let recorder = Arc::new(Recorder::default());
    let sender = Arc::new(MailSender::new(services.clone(), recorder.clone(), "http://x"));
    let mut iq = JobQueue::open(&cfg, &format!("interactive-test-{}", uuid::Uuid::now_v7().simple())).await?;
    assert_eq!(sender.dispatch(&mut iq).await?, 30);
    assert_eq!(sender.dispatch(&mut iq).await?, 0, "handed over once while the lease holds");
    for i in 0..2 {
        let cx = JobContext::new(services.clone()).with_mail(sender.clone());
        let (iq, mut rx) = (iq.clone(), stopped.clone());
        workers.push(tokio::spawn(async move {
            iq.work(format!("mail-{i}-{}", uuid::Uuid::now_v7().simple()), cx, 4, async move {
                let _ = rx.wait_for(|s| *s).await;
            })
            .await
        }));
    }
    for _ in 0..400 {
        if recorder.0.lock().unwrap().len() >= 30 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut sent = recorder.0.lock().unwrap().clone();
    sent.sort();
    let mut expected: Vec<String> = (0..30).map(|i| format!("e{i}:{bob}")).collect();
    expected.sort();
    assert_eq!(sent, expected, "{backend:?}: every mail sent, each once");
    let counts = services.store().read().await?.mail_queue_counts(clock.now()).await?;
    assert_eq!((counts.done, counts.pending, counts.running), (30, 0, 0), "{backend:?}: recorded sent");
    // A mail handed over again (its lease ran out): the job of the older hand-over, run late,
    // sends nothing; the current one sends it.
    let mut tx = services.store().begin().await?;
    tx.insert_mail(&NewMail {
        key: format!("late:{bob}"),
        user_id: bob,
        kind: "comment".into(),
        task_id: Some(late.id),
        event_id: "late".into(),
        data: json!({"title": "late", "comment": "again"}),
        created_at: clock.now(),
    })
    .await?;
    let now = clock.now();
    let first = tx.claim_mail(now, now - chrono::Duration::seconds(1), "older", 10).await?;
    let again = tx.claim_mail(now, now + chrono::Duration::minutes(5), "newer", 10).await?;
    tx.commit().await?;
    assert_eq!((first.len(), again.len()), (1, 1), "the expired claim was taken over");
    let id = again[0].id;
    assert_eq!(sender.send_queued(id, "older").await?, Outcome::Skipped);
    assert_eq!(recorder.0.lock().unwrap().len(), 30, "the older hand-over sent nothing");
    assert_eq!(sender.send_queued(id, "newer").await?, Outcome::Sent);
    assert_eq!(sender.send_queued(id, "newer").await?, Outcome::Skipped, "sent once");
    assert_eq!(recorder.0.lock().unwrap().len(), 31);
    // A refused mail: one try per hand-over, its job killed in the storage (the outbox owns
    // the retries), so no storage runs it again.
    let mut tx = services.store().begin().await?;
    tx.insert_mail(&NewMail {
        key: format!("refused:{bob}"),
        user_id: bob,
        kind: "comment".into(),
        task_id: Some(late.id),
        event_id: "refused".into(),
        data: json!({"title": "late", "comment": "no"}),
        created_at: clock.now(),
    })
    .await?;
    tx.commit().await?;
    assert_eq!(sender.dispatch(&mut iq).await?, 1);
    let mut stats = iq.stats().await?;
    for _ in 0..200 {
        if n(&stats, "KILLED_JOBS") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = iq.stats().await?;
    }
    assert_eq!(n(&stats, "KILLED_JOBS"), 1.0, "{backend:?}: {stats:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let c = services.store().read().await?.mail_queue_counts(clock.now()).await?;
    assert_eq!((c.done, c.failed), (31, 1), "{backend:?}: waiting for its back-off: {c:?}");
    let tries: Vec<i32> = services.store().read().await?.mail_failures(10).await?.iter().map(|f| f.attempts).collect();
    assert_eq!(tries, vec![1], "{backend:?}: tried once");

    // A long job failing every try: retried by the storage up to the limit, then dead, with its
    // error in the jobs view. (The summaries' table is renamed away, so the claim fails.)
    services
        .tasks
        .create(&Actor::user(bob), serde_json::from_value(json!({"title": "b", "assigned_to": [bob]}))?)
        .await?;
    let rename = async |from: &str, to: &str| -> Result<()> {
        use sqlx::Connection;
        let sql = format!("ALTER TABLE {from} RENAME TO {to}");
        if database_url.starts_with("postgres") {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut sqlx::PgConnection::connect(&database_url).await?)
                .await?;
        } else {
            sqlx::query(sqlx::AssertSqlSafe(sql))
                .execute(&mut sqlx::SqliteConnection::connect(&database_url).await?)
                .await?;
        }
        Ok(())
    };
    rename("daily_summaries", "daily_summaries_away").await?;
    q.push(Job::DailySummary { day: clock.now().date_naive() }).await?;
    let pushed = std::time::Instant::now();
    let staff = Actor::staff(ann.user_id);
    let mut dead = None;
    // Redis storage retries after 1, 2, 3, 4 s.
    for _ in 0..1200 {
        let view = services.maintenance.jobs(&staff).await?;
        if let Some(f) = view.recent_failures.iter().find(|f| f.queue == "long" && f.dead) {
            dead = Some(f.clone());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let dead = match dead {
        Some(d) => d,
        None => panic!(
            "{backend:?}: the failing job never went dead: {:?} {:?}",
            services.maintenance.jobs(&staff).await?.recent_failures,
            q.stats().await?
        ),
    };
    assert_eq!((dead.job.as_str(), dead.attempts), ("daily_summary", 5), "{backend:?}: {dead:?}");
    // Tried with pauses between: at least 100 + 200 + 400 + 800 ms.
    assert!(pushed.elapsed() >= Duration::from_millis(1500), "{backend:?}: retried without a pause");
    assert!(dead.error.contains("daily_summaries"), "{backend:?}: {dead:?}");
    // The storage keeps it as killed and tries it no more.
    let mut stats = q.stats().await?;
    for _ in 0..100 {
        if n(&stats, "KILLED_JOBS") >= 1.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        stats = q.stats().await?;
    }
    assert_eq!(n(&stats, "KILLED_JOBS"), 1.0, "{backend:?}: {stats:?}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let again = services.maintenance.jobs(&staff).await?.recent_failures;
    assert_eq!(again.iter().find(|f| f.id == dead.id).map(|f| f.attempts), Some(5), "{backend:?}: not tried again");
    rename("daily_summaries_away", "daily_summaries").await?;

    let _ = stop.send(true);
    for w in workers {
        let _ = tokio::time::timeout(Duration::from_secs(10), w).await;
    }
    drop(services);
    match pg {
        Some(name) => common::drop_pg_database(&name).await,
        None => Ok(()),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_long_queue_runs_its_jobs_on_sqlite_storage() -> Result<()> {
    contract(JobsBackend::Sqlite).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_long_queue_runs_its_jobs_on_postgres_storage() -> Result<()> {
    contract(JobsBackend::Postgres).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_long_queue_runs_its_jobs_on_redis_storage() -> Result<()> {
    contract(JobsBackend::Redis).await
}

/// Jobs a queue has seen, whatever their state. (The figures are read while the workers write
/// the same SQLite file: a read that meets a busy database is tried again.)
async fn seen(q: &JobQueue) -> Result<i64> {
    let mut tries = 0;
    loop {
        match q.counts().await {
            Ok(c) => return Ok(c.pending + c.running + c.done + c.failed + c.dead),
            Err(e) if tries < 5 => {
                eprintln!("reading the queue's figures: {e}; again");
                tries += 1;
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_runner_at_a_time_pushes_the_periodic_jobs_and_another_takes_over() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("taskhub-schedule-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}", dir.join("main.db").display());
    let cfg = Config { database_url: database_url.clone(), ..Config::default() };
    let services = Services::new(store::connect(&database_url).await?);
    // Each runner pushes into a queue of its own, so the queues tell who pushed.
    let open = async |name: &str| JobQueue::open(&cfg, &format!("{name}-{}", uuid::Uuid::now_v7().simple())).await;
    let (qa, qb) = (open("sched-a").await?, open("sched-b").await?);
    let start = |q: JobQueue| {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let long = taskhub_jobs::Long {
            queue: q,
            every: Duration::from_millis(200),
            summary: None,
            archive_retention_days: 30,
        };
        let handle = tokio::spawn(taskhub_jobs::run(services.clone(), Some(long), None, async move {
            let _ = stopped.wait_for(|s| *s).await;
        }));
        (stop, handle)
    };
    let (stop_a, a) = start(qa.clone());
    for _ in 0..100 {
        if seen(&qa).await? >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen(&qa).await? >= 8, "the first runner pushes every period");
    let (stop_b, b) = start(qb.clone());
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(seen(&qb).await?, 0, "the second runner pushes nothing while the first leads");
    // The first one stops (giving the lease back): the second takes over.
    let _ = stop_a.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), a).await;
    let pushed_by_a = seen(&qa).await?;
    for _ in 0..100 {
        if seen(&qb).await? >= 4 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(seen(&qb).await? >= 4, "the second runner took over");
    assert_eq!(seen(&qa).await?, pushed_by_a, "the first pushes no more");
    let _ = stop_b.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), b).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runner_works_only_the_queues_it_is_given() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("taskhub-queues-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let database_url = format!("sqlite://{}", dir.join("main.db").display());
    let services = Services::new(store::connect(&database_url).await?);
    let bob = common::register(&services, "bob").await?;
    let queue_mail = async |n: u32| -> Result<()> {
        let mut tx = services.store().begin().await?;
        tx.insert_mail(&NewMail {
            key: format!("e{n}:{bob}"),
            user_id: bob,
            kind: "comment".into(),
            task_id: Some(1),
            event_id: format!("e{n}"),
            data: json!({"title": "t", "comment": "c"}),
            created_at: chrono::Utc::now(),
        })
        .await?;
        Ok(tx.commit().await?)
    };
    let mails = |d: &std::path::Path| std::fs::read_dir(d).map(|r| r.count()).unwrap_or(0);
    let for_queues = |queues: &str| Config {
        database_url: database_url.clone(),
        mail_dir: dir.join("mail"),
        summary_time: "off".into(),
        queues: queues.into(),
        ..Config::default()
    };
    let run_for = async |cfg: Config, d: Duration| -> Result<()> {
        taskhub_jobs::run_configured(&cfg, services.clone(), tokio::time::sleep(d)).await?;
        Ok(())
    };
    // The periodic jobs that a `long` runner would push are pushed here by hand.
    let mut long = JobQueue::open(&for_queues("long"), taskhub_jobs::QUEUE_LONG).await?;
    long.push(Job::Noop).await?;
    queue_mail(1).await?;
    // `interactive` only: the mail goes, the long job waits.
    run_for(for_queues("interactive"), Duration::from_secs(2)).await?;
    assert_eq!(mails(&dir.join("mail")), 1, "the interactive runner sent the mail");
    let c = long.counts().await?;
    assert_eq!((c.pending, c.done), (1, 0), "the long job was left alone: {c:?}");
    // `long` only: the long jobs run, a new mail waits.
    queue_mail(2).await?;
    run_for(for_queues("long"), Duration::from_secs(2)).await?;
    assert_eq!(mails(&dir.join("mail")), 1, "the long runner sends no mail");
    let c = long.counts().await?;
    assert_eq!(c.pending, 0, "the long runner took the jobs: {c:?}");
    assert!(c.done >= 1, "{c:?}");
    Ok(())
}

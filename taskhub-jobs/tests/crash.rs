//! Job runner processes killed with SIGKILL mid-job: after a restart every job completes, and
//! no mail goes out twice except one whose SMTP acceptance was not yet recorded when the
//! process died (the unavoidable at-least-once window; its stable Message-ID lets mail clients
//! collapse it). Then two runners at once: each job runs once. PostgreSQL job storage, a real
//! SMTP server.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

mod common;

use anyhow::Result;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use taskhub_core::auth::PasswordHasher;
use taskhub_core::config::{Config, JobsBackend};
use taskhub_core::services::Ctx;
use taskhub_core::{Actor, Services, store};
use taskhub_jobs::runner::{Job, JobQueue};

const USERS: usize = 300;

fn runner(database_url: &str, smtp_url: &str, log: &std::path::Path) -> Result<Child> {
    Ok(Command::new(env!("CARGO_BIN_EXE_taskhub-jobs"))
        .env("TASKHUB_DATABASE_URL", database_url)
        .env("TASKHUB_JOBS_BACKEND", "postgres")
        .env("TASKHUB_SMTP_URL", smtp_url)
        // The test pushes the summary job itself: a restarted runner must finish *that* job.
        .env("TASKHUB_SUMMARY_TIME", "off")
        .env("TASKHUB_LOG", "info,apalis=debug")
        .stdout(Stdio::null())
        .stderr(std::fs::OpenOptions::new().create(true).append(true).open(log)?)
        .spawn()?)
}

async fn kill9(mut child: Child) {
    // SIGKILL: no shutdown, no release of anything.
    let _ = child.kill();
    let _ = child.wait();
    // A message whose data reached the server before the kill is still being stored.
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Message-ID → how many times the server got it.
fn received_ids(smtp: &common::SmtpServer) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for m in smtp.received() {
        *out.entry(common::header(&m, "Message-ID")).or_default() += 1;
    }
    out
}

async fn count(pool: &sqlx::PgPool, sql: &'static str) -> Result<i64> {
    Ok(sqlx::query_scalar(sql).fetch_one(pool).await?)
}

/// Mail the server got but the outbox does not record as sent: in doubt after a kill.
async fn in_doubt(pool: &sqlx::PgPool, smtp: &common::SmtpServer) -> Result<BTreeSet<String>> {
    let unsent: Vec<String> =
        sqlx::query_scalar("SELECT key FROM mail_outbox WHERE sent_at IS NULL").fetch_all(pool).await?;
    let got = received_ids(smtp);
    Ok(unsent.into_iter().map(|k| format!("<{k}@taskhub>")).filter(|id| got.contains_key(id)).collect())
}

async fn wait_for(what: &str, log: &std::path::Path, mut done: impl AsyncFnMut() -> Result<bool>) -> Result<()> {
    for _ in 0..1200 {
        if done().await? {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let log = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<&str> = log.lines().rev().take(40).collect();
    anyhow::bail!("timed out waiting for {what}; runner log (newest first):\n{}", tail.join("\n"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_runners_finish_every_job_once_and_two_runners_share_the_queues() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("taskhub-crash-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let log = dir.join("runner.log");
    let (url, db) = common::create_pg_database().await?;
    let smtp = common::SmtpServer::start(dir.join("smtp")).await?;
    let ctx = Ctx { store: store::connect(&url).await?, clock: std::sync::Arc::new(taskhub_core::clock::SystemClock) };
    let hasher = PasswordHasher::new(argon2::Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
    let services = Services::build(ctx, hasher);
    // Every user has a task assigned today: each is owed one summary mail.
    for i in 0..USERS {
        let u = common::register(&services, &format!("user{i}")).await?;
        let task = json!({"title": format!("task {i}"), "assigned_to": [u]});
        services.tasks.create(&Actor::user(u), serde_json::from_value(task)?).await?;
    }
    let pool = sqlx::PgPool::connect(&url).await?;
    let cfg = Config { database_url: url.clone(), jobs_backend: JobsBackend::Postgres, ..Config::default() };
    let day = chrono::Utc::now().date_naive();
    JobQueue::open(&cfg, taskhub_jobs::QUEUE_LONG).await?.push(Job::DailySummary { day }).await?;

    // 1. Killed in the middle of the summary job (some users claimed, not all).
    let first = runner(&url, &smtp.url(), &log)?;
    wait_for("the first summaries", &log, async || Ok(count(&pool, "SELECT COUNT(*) FROM daily_summaries").await? > 0))
        .await?;
    kill9(first).await;
    let claimed = count(&pool, "SELECT COUNT(*) FROM daily_summaries").await?;
    assert!(claimed < USERS as i64, "the kill landed mid-job ({claimed} of {USERS} claimed)");
    let mut doubt = in_doubt(&pool, &smtp).await?;

    // 2. Restarted: the dead worker's job goes back to the queue and completes; killed again
    //    while the mail goes out.
    let second = runner(&url, &smtp.url(), &log)?;
    wait_for("all summaries claimed and some mail sent", &log, async || {
        Ok(count(&pool, "SELECT COUNT(*) FROM daily_summaries").await? == USERS as i64
            && smtp.received().len() > USERS / 3)
    })
    .await?;
    kill9(second).await;
    let sent = count(&pool, "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NOT NULL").await?;
    assert!(sent < USERS as i64, "the second kill landed while mail was going out ({sent} of {USERS} sent)");
    doubt.extend(in_doubt(&pool, &smtp).await?);

    // 3. Two runners at once finish it.
    let (a, b) = (runner(&url, &smtp.url(), &log)?, runner(&url, &smtp.url(), &log)?);
    wait_for("every mail sent", &log, async || {
        Ok(count(&pool, "SELECT COUNT(*) FROM mail_outbox WHERE sent_at IS NOT NULL").await? == USERS as i64)
    })
    .await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    kill9(a).await;
    kill9(b).await;

    assert_eq!(count(&pool, "SELECT COUNT(*) FROM daily_summaries").await?, USERS as i64, "each user once");
    assert_eq!(count(&pool, "SELECT COUNT(*) FROM mail_outbox").await?, USERS as i64, "one mail per user");
    let got = received_ids(&smtp);
    let keys: Vec<String> = sqlx::query_scalar("SELECT key FROM mail_outbox").fetch_all(&pool).await?;
    for k in &keys {
        let id = format!("<{k}@taskhub>");
        let n = got.get(&id).copied().unwrap_or(0);
        assert!(n >= 1, "{id} never arrived");
        assert!(n == 1 || doubt.contains(&id), "{id} arrived {n} times and was not in doubt at a kill");
    }
    assert_eq!(got.len(), USERS, "no other mail");
    // At most the mails in flight at each kill (one worker of `INTERACTIVE_CONCURRENCY`).
    let bound = 2 * taskhub_jobs::runner::INTERACTIVE_CONCURRENCY;
    assert!(doubt.len() <= bound, "at most {bound} mails in flight at the two kills: {doubt:?}");
    println!(
        "crash: {USERS} summaries, {claimed} claimed at the first kill, {sent} sent at the second, \
         {} in doubt, {} received twice",
        doubt.len(),
        got.values().filter(|n| **n > 1).count()
    );
    drop(services);
    pool.close().await;
    common::drop_pg_database(&db).await
}

//! # taskhub-jobs
//!
//! TaskHub's job runner shell. It runs background work over the core services on the `long`
//! and `interactive` queues.
//!
//! Jobs in this build:
//! - `idempotency_purge` (queue `long`, hourly): forgets `Idempotency-Key` records older than
//!   24 hours, the window API.md promises, so the table does not grow without bound.
//! - `token_purge` (queue `long`, hourly): deletes expired refresh tokens, sessions and access
//!   token revocations — an expired token is refused on its own, its row is dead weight.
//! - `overdue_scan` (queue `long`, hourly): announces each task that became overdue once (an
//!   `overdue` history row and a `task.overdue` event); it never changes a status.
//! - `archive_cleanup` (queue `long`, checked hourly): deletes tasks archived more than 30 days
//!   ago with their comments and history, recorded as a `tasks.purged` event.
//! - `daily_summary` (queue `long`, daily at `summary_time` in `timezone`, default 07:00 UTC):
//!   per active user, the last 24 hours (newly assigned, completed, overdue, pending), mailed;
//!   skipped when all are zero, claimed at most once per user and day.
//! - `task_notification` (queue `interactive`, every second): sends the mail the notifications
//!   consumer queued (see [`mail`]), retried with back-off, dead after 5 tries with the error.
//!
//! The `long` jobs go through a persistent apalis queue ([`runner`]); each is idempotent, so
//! several runners at once (each pushing its schedule, each with its worker) do no harm.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in (and the
//! job storages: SQLite in a file of its own, PostgreSQL); `redis` adds Redis job storage.

pub mod mail;
pub mod runner;
pub mod schedule;

use std::future::Future;
use std::time::Duration;
use taskhub_core::Services;

/// The queue of long-running, non-interactive work.
pub const QUEUE_LONG: &str = "long";
/// The queue of work a user is waiting on (notifications).
pub const QUEUE_INTERACTIVE: &str = "interactive";

/// How long an idempotency key is remembered.
pub const IDEMPOTENCY_WINDOW: chrono::Duration = chrono::Duration::hours(24);

/// Forgets idempotency keys older than the window; returns how many went. Idempotent.
pub async fn purge_idempotency_keys(services: &Services) -> taskhub_core::Result<u64> {
    let before = services.ctx.clock.now() - IDEMPOTENCY_WINDOW;
    let mut tx = services.store().begin().await?;
    let n = tx.purge_idempotency(before).await?;
    tx.commit().await?;
    Ok(n)
}

/// Deletes expired refresh tokens, sessions and revocations; returns how many rows went.
pub async fn purge_expired_tokens(services: &Services) -> taskhub_core::Result<u64> {
    let now = services.ctx.clock.now();
    let mut tx = services.store().begin().await?;
    let n = tx.purge_expired_tokens(now).await?;
    tx.commit().await?;
    Ok(n)
}

/// The mailer `cfg` names: SMTP when `smtp_url` is set, else the file mailbox in `mail_dir`.
pub fn mailer(cfg: &taskhub_core::config::Config) -> anyhow::Result<std::sync::Arc<dyn mail::Mailer>> {
    Ok(match cfg.smtp_url.as_deref() {
        Some(url) => std::sync::Arc::new(mail::SmtpMailer::new(url, &cfg.mail_from)?),
        None => std::sync::Arc::new(mail::FileMailbox::new(&cfg.mail_dir, &cfg.mail_from)?),
    })
}

/// Runs every job as `cfg` configures them (job storage, mailer, summary schedule) until
/// `shutdown`: one worker of the `long` queue (named uniquely for this process), the schedule
/// that pushes the periodic jobs into that queue, and the mail sender.
pub async fn run_configured(
    cfg: &taskhub_core::config::Config,
    services: Services,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let sender = mail::MailSender::new(services.clone(), mailer(cfg)?, cfg.public_url.clone());
    let summary = schedule::DailyAt::parse(&cfg.summary_time, &cfg.timezone)?;
    let queue = runner::LongQueue::open(cfg, QUEUE_LONG).await?;
    run(services, Duration::from_secs(3600), queue, Some(sender), Some(summary), shutdown).await;
    Ok(())
}

/// Pushes the periodic jobs into `queue` every `every` (and the daily summary when due), runs
/// a worker of `queue`, and sends queued mail every second (queue `interactive`), until
/// `shutdown` resolves. A failure is logged and retried at the next tick; the process never
/// dies of it.
pub async fn run(
    services: Services,
    every: Duration,
    mut queue: runner::LongQueue,
    mail: Option<mail::MailSender>,
    mut summary: Option<schedule::DailyAt>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (stop_worker, worker_stopped) = tokio::sync::watch::channel(false);
    let worker = {
        let (queue, services, mut rx) = (queue.clone(), services.clone(), worker_stopped);
        let name = format!("taskhub-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
        tokio::spawn(async move {
            let stop = async move {
                let _ = rx.wait_for(|s| *s).await;
            };
            if let Err(e) = queue.work(name, services, stop).await {
                tracing::error!(queue = QUEUE_LONG, error = %e, "the worker stopped");
            }
        })
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut minute = tokio::time::interval(Duration::from_secs(60));
    minute.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut mail_tick = tokio::time::interval(Duration::from_secs(1));
    mail_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = minute.tick(), if summary.is_some() => {
                let day = summary.as_mut().and_then(|s| s.due(services.ctx.clock.now()));
                if let Some(day) = day
                    && let Err(e) = queue.push(runner::LongJob::DailySummary { day }).await
                {
                    tracing::error!(job = "daily_summary", queue = QUEUE_LONG, error = %e, "could not queue the job");
                }
            }
            _ = mail_tick.tick(), if mail.is_some() => {
                if let Some(sender) = &mail {
                    match sender.run_once().await {
                        Ok(r) if r == mail::SendReport::default() => {}
                        Ok(r) => tracing::info!(job = "task_notification", queue = QUEUE_INTERACTIVE, sent = r.sent, retried = r.retried, dead = r.dead, "job done"),
                        Err(e) => tracing::error!(job = "task_notification", queue = QUEUE_INTERACTIVE, error = %e, "job failed"),
                    }
                }
            }
            _ = tick.tick() => {
                use runner::LongJob::{ArchiveCleanup, IdempotencyPurge, OverdueScan, TokenPurge};
                for job in [IdempotencyPurge, TokenPurge, OverdueScan, ArchiveCleanup] {
                    let name = job.name();
                    if let Err(e) = queue.push(job).await {
                        tracing::error!(job = name, queue = QUEUE_LONG, error = %e, "could not queue the job");
                    }
                }
            }
        }
    }
    let _ = stop_worker.send(true);
    let _ = worker.await;
}

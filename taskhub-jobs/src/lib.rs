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
//! - `send_mail` (queue `interactive`): sends one mail the notifications consumer (a
//!   `task_notification`) or the summary job queued in the mail outbox (see [`mail`]); the
//!   outbox hands due mail to the queue every second, retries with back-off, and keeps a mail
//!   dead with its error after 5 tries.
//!
//! Both queues are persistent apalis queues ([`runner`]); each job is idempotent, so several
//! runners at once (each pushing its schedule, each with its workers) do no harm. `queues`
//! (`--queues`) picks the queues a process works.
//!
//! Features: `sqlite` (default) and `postgres` select the storage engines compiled in (and the
//! job storages: SQLite in a file of its own, PostgreSQL); `redis` adds Redis job storage.

pub mod mail;
pub mod monitor;
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

/// Runs the job queues `cfg` names until `shutdown` ([`configure`], then [`Runner::run`]).
pub async fn run_configured(
    cfg: &taskhub_core::config::Config,
    services: Services,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    configure(cfg, services).await?.run(shutdown).await;
    Ok(())
}

/// The job queues `cfg` names (`queues`), ready to run: the job storage opened, the mailer and
/// the summary schedule checked — a bad setting fails here, at start, not in the runner later.
pub async fn configure(cfg: &taskhub_core::config::Config, services: Services) -> anyhow::Result<Runner> {
    let queues = cfg.job_queues()?;
    // Both queues over one storage connection.
    let storage = runner::JobQueue::open(cfg, QUEUE_LONG).await?;
    let long = match queues.contains(&QUEUE_LONG) {
        true => Some(Long {
            queue: storage.clone(),
            every: Duration::from_secs(3600),
            summary: schedule::summary_schedule(cfg)?,
            archive_retention_days: cfg.archive_retention_days,
        }),
        false => None,
    };
    let interactive = match queues.contains(&QUEUE_INTERACTIVE) {
        true => Some(Interactive {
            queue: storage.sibling(QUEUE_INTERACTIVE),
            sender: std::sync::Arc::new(mail::MailSender::new(services.clone(), mailer(cfg)?, cfg.public_url.clone())),
        }),
        false => None,
    };
    Ok(Runner { services, long, interactive, storage })
}

/// Configured job queues (see [`configure`]).
pub struct Runner {
    services: Services,
    long: Option<Long>,
    interactive: Option<Interactive>,
    storage: runner::JobQueue,
}

impl Runner {
    /// The `long` queue in the configured storage (for the jobs view, even when this process
    /// does not work it).
    pub fn long_queue(&self) -> runner::JobQueue {
        self.storage.clone()
    }

    /// Works the queues until `shutdown` (see [`run`]).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        run(self.services, self.long, self.interactive, shutdown).await;
    }
}

/// The `long` queue and its schedule.
pub struct Long {
    /// The queue.
    pub queue: runner::JobQueue,
    /// How often the periodic jobs are pushed.
    pub every: Duration,
    /// When the daily summaries are due (`None`: never).
    pub summary: Option<schedule::DailyAt>,
    /// Days an archived task is kept before the cleanup deletes it.
    pub archive_retention_days: u32,
}

/// The `interactive` queue and the sender its jobs use.
pub struct Interactive {
    /// The queue.
    pub queue: runner::JobQueue,
    /// Sends the mail.
    pub sender: std::sync::Arc<mail::MailSender>,
}

/// How long the job storage keeps the records of finished jobs (the jobs view's `done`).
pub const JOB_RECORDS_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Takes or renews the schedule lease; false when another process holds it (or the database
/// does not answer: then nobody pushes, rather than everybody).
async fn lead(services: &Services, holder: &str) -> bool {
    services.maintenance.lead_schedule(holder).await.unwrap_or_else(|e| {
        tracing::warn!(error = %e, "could not take the schedule lease");
        false
    })
}

fn spawn_worker(
    queue: &runner::JobQueue,
    queue_name: &'static str,
    cx: runner::JobContext,
    concurrency: usize,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let queue = queue.clone();
    let name = format!("taskhub-{queue_name}-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
    tokio::spawn(async move {
        let stop = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = queue.work(name, cx, concurrency, stop).await {
            tracing::error!(queue = queue_name, error = %e, "the worker stopped");
        }
    })
}

/// Works the given queues until `shutdown` resolves: `long` — a worker, and (while this process
/// holds the schedule lease) the periodic jobs pushed every `every` and the daily summary when
/// due; `interactive` — a worker, and every
/// second the due mail handed over to it. A failure is logged and retried at the next tick;
/// the process never dies of it. On shutdown the workers finish the jobs they hold.
pub async fn run(
    services: Services,
    mut long: Option<Long>,
    mut interactive: Option<Interactive>,
    shutdown: impl Future<Output = ()> + Send,
) {
    let (stop_workers, stopped) = tokio::sync::watch::channel(false);
    let mut workers = Vec::new();
    if let Some(l) = &long {
        let cx = runner::JobContext::new(services.clone()).with_backoff(l.queue.clone(), runner::RETRY_BACKOFF);
        workers.push(spawn_worker(&l.queue, QUEUE_LONG, cx, runner::LONG_CONCURRENCY, stopped.clone()));
    }
    if let Some(i) = &interactive {
        let cx = runner::JobContext::new(services.clone()).with_mail(i.sender.clone());
        workers.push(spawn_worker(&i.queue, QUEUE_INTERACTIVE, cx, runner::INTERACTIVE_CONCURRENCY, stopped.clone()));
    }
    // One process at a time pushes the periodic jobs: the holder of a lease in the database,
    // renewed every period; when it dies another takes over within its 3 minutes, and
    // pushes at once (a job run twice is harmless, they are idempotent).
    let holder = format!("jobs-{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
    let every = long.as_ref().map_or(Duration::from_secs(3600), |l| l.every);
    let mut tick = tokio::time::interval(every.min(Duration::from_secs(60)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_push: Option<tokio::time::Instant> = None;
    let mut mail_tick = tokio::time::interval(Duration::from_secs(1));
    mail_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut vacuum_tick = tokio::time::interval(Duration::from_secs(3600));
    vacuum_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            _ = mail_tick.tick(), if interactive.is_some() => {
                let Some(i) = interactive.as_mut() else { continue };
                match i.sender.dispatch(&mut i.queue).await {
                    Ok(0) => {}
                    Ok(n) => tracing::debug!(queue = QUEUE_INTERACTIVE, mails = n, "mail handed to the queue"),
                    Err(e) => tracing::error!(queue = QUEUE_INTERACTIVE, error = %e, "could not hand mail to the queue"),
                }
            }
            _ = vacuum_tick.tick() => {
                let queues = long.iter().map(|l| (QUEUE_LONG, &l.queue)).chain(interactive.iter().map(|i| (QUEUE_INTERACTIVE, &i.queue)));
                for (name, q) in queues {
                    match q.vacuum(JOB_RECORDS_KEPT).await {
                        Ok(0) => {}
                        Ok(n) => tracing::info!(queue = name, records = n, "finished job records forgotten"),
                        Err(e) => tracing::warn!(queue = name, error = %e, "could not vacuum the job storage"),
                    }
                }
            }
            _ = tick.tick(), if long.is_some() => {
                let Some(l) = long.as_mut() else { continue };
                if !lead(&services, &holder).await {
                    last_push = None;
                    continue;
                }
                if last_push.is_none_or(|t| t.elapsed() >= every) {
                    last_push = Some(tokio::time::Instant::now());
                    use runner::Job::{ArchiveCleanup, IdempotencyPurge, OverdueScan, TokenPurge};
                    let cleanup = ArchiveCleanup { retention_days: l.archive_retention_days };
                    for job in [IdempotencyPurge, TokenPurge, OverdueScan, cleanup] {
                        let name = job.name();
                        if let Err(e) = l.queue.push(job).await {
                            tracing::error!(job = name, queue = QUEUE_LONG, error = %e, "could not queue the job");
                        }
                    }
                }
                let day = l.summary.as_mut().and_then(|s| s.due(services.ctx.clock.now()));
                if let Some(day) = day
                    && let Err(e) = l.queue.push(runner::Job::DailySummary { day }).await
                {
                    tracing::error!(job = "daily_summary", queue = QUEUE_LONG, error = %e, "could not queue the job");
                }
            }
        }
    }
    if long.is_some()
        && let Err(e) = services.maintenance.release_schedule(&holder).await
    {
        tracing::warn!(error = %e, "could not release the schedule lease; another runner takes over when it runs out");
    }
    let _ = stop_workers.send(true);
    for w in workers {
        let _ = w.await;
    }
}

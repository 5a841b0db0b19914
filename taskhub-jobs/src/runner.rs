//! The persistent job queues on apalis 1.0 — `long` (maintenance, summaries) and `interactive`
//! (mail a user is waiting for): jobs are pushed into the storage chosen at run time
//! (`--jobs-backend sqlite|postgres|redis`) and executed by workers with unique names, each job
//! by one worker at a time (several runners at once are safe).
//!
//! Every job is idempotent in effect (see [`taskhub_core::maintenance`] and [`crate::mail`]), so
//! a job run again — after its worker died mid-way and the storage handed it to another worker
//! ([`ORPHANED_AFTER`]) — changes nothing twice.

use apalis::prelude::*;
use apalis_core::error::AbortError;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use taskhub_core::Services;
use taskhub_core::config::{Config, JobsBackend};

/// Tries of a `long` job before it stays failed.
pub const MAX_ATTEMPTS: usize = 5;

/// How often a worker tells its storage it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(5);
/// Missed heartbeats after which a worker counts as dead and its running jobs go back to the
/// queue for another worker: [`HEARTBEAT`] × 4 = 20 s (apalis's default is 5 minutes).
pub const MISSED_HEARTBEATS: usize = 4;

/// How often an idle worker looks for jobs. Without a poll strategy an idle apalis 1.0 worker
/// waits for its next heartbeat ([`HEARTBEAT`]) to look again, and records its last
/// completions as late.
pub const POLL: Duration = Duration::from_millis(100);

/// Jobs a `long` worker runs at once.
pub const LONG_CONCURRENCY: usize = 2;
/// Mails an `interactive` worker sends at once. Bounded: a mail accepted by the SMTP server is
/// recorded sent right after, and the fewer in flight, the fewer a crash leaves in doubt.
pub const INTERACTIVE_CONCURRENCY: usize = 4;

/// A job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "snake_case")]
pub enum Job {
    /// Announce the tasks that became overdue.
    OverdueScan,
    /// Delete tasks archived more than `retention_days` days ago.
    ArchiveCleanup {
        /// Days an archived task is kept (30 when a stored job does not say).
        #[serde(default = "default_retention_days")]
        retention_days: u32,
    },
    /// Claim (and queue the mail of) every user's summary of `day`.
    DailySummary {
        /// The local day.
        day: NaiveDate,
    },
    /// Forget idempotency keys older than 24 h.
    IdempotencyPurge,
    /// Delete expired tokens and sessions.
    TokenPurge,
    /// Send one queued mail (queue `interactive`): `task_notification` or a daily summary.
    SendMail {
        /// The mail outbox row.
        id: i64,
        /// The hand-over this job belongs to (see [`crate::mail::MailSender::dispatch`]).
        token: String,
    },
    /// Does nothing (benchmarks and health checks of the queue).
    Noop,
}

fn default_retention_days() -> u32 {
    u32::try_from(taskhub_core::maintenance::DEFAULT_ARCHIVE_RETENTION.num_days()).unwrap_or(30)
}

impl Job {
    /// The job's name (in logs and metrics).
    pub fn name(&self) -> &'static str {
        match self {
            Job::OverdueScan => "overdue_scan",
            Job::ArchiveCleanup { .. } => "archive_cleanup",
            Job::DailySummary { .. } => "daily_summary",
            Job::IdempotencyPurge => "idempotency_purge",
            Job::TokenPurge => "token_purge",
            Job::SendMail { .. } => "send_mail",
            Job::Noop => "noop",
        }
    }

    /// The queue it belongs in.
    pub fn queue(&self) -> &'static str {
        match self {
            Job::SendMail { .. } => crate::QUEUE_INTERACTIVE,
            _ => crate::QUEUE_LONG,
        }
    }

    /// Tries before the storage keeps it as failed. A mail is tried once per hand-over: its
    /// retries and back-off are the mail outbox's (it hands the mail over again when due).
    pub fn max_attempts(&self) -> usize {
        match self {
            Job::SendMail { .. } => 1,
            _ => MAX_ATTEMPTS,
        }
    }
}

/// What a worker's jobs run with.
#[derive(Clone)]
pub struct JobContext {
    /// The core services.
    pub services: Services,
    /// The mail sender (`None`: this worker sends no mail).
    pub mail: Option<Arc<crate::mail::MailSender>>,
    /// The queue the jobs come from, to put off a failed job's next try (`None`: the
    /// storage tries it again at once).
    pub retry_in: Option<(JobQueue, Duration)>,
}

impl JobContext {
    /// Jobs over `services`, without mail, retried at once.
    pub fn new(services: Services) -> Self {
        JobContext { services, mail: None, retry_in: None }
    }

    /// Mail sent by `sender`.
    #[must_use]
    pub fn with_mail(mut self, sender: Arc<crate::mail::MailSender>) -> Self {
        self.mail = Some(sender);
        self
    }

    /// A failed `long` job of `queue` tried again after `base`, doubling ([`RETRY_BACKOFF`] in
    /// production).
    #[must_use]
    pub fn with_backoff(mut self, queue: JobQueue, base: Duration) -> Self {
        self.retry_in = Some((queue, base));
        self
    }
}

/// The first pause before a failed `long` job is tried again; it doubles with each try
/// (30 s, 1, 2, 4 min: dead about 7.5 minutes after the first failure).
pub const RETRY_BACKOFF: Duration = Duration::from_secs(30);

/// Runs one job. A `long` job's failed tries are recorded by its task id (the jobs view shows
/// them; once dead after [`Job::max_attempts`], a staff member can push it again), each next
/// try put off by a doubling pause ([`JobContext::with_backoff`]), and forgotten when it
/// succeeds. A mail's failures are the mail outbox's.
pub async fn execute(job: Job, cx: Data<JobContext>, id: Option<TaskId>) -> Result<(), BoxDynError> {
    let recorded = match (&job, id) {
        (Job::SendMail { .. } | Job::Noop, _) | (_, None) => None,
        (job, Some(id)) => Some((id.to_string(), job.clone())),
    };
    let m = &cx.services.maintenance;
    if let Some((task_id, job)) = &recorded
        && m.job_is_dead(task_id).await?
    {
        let why = format!("{} is dead after {} tries; retry it from the jobs view", job.name(), job.max_attempts());
        return Err(AbortError::new(why).into());
    }
    let result = run(job, &cx).await;
    let Some((task_id, job)) = recorded else { return result };
    let mut dead = false;
    let recorded = match &result {
        Ok(()) => m.job_succeeded(&task_id).await,
        Err(e) => {
            let failure = taskhub_core::store::maintain::NewJobFailure {
                task_id: task_id.clone(),
                queue: job.queue().to_owned(),
                job: job.name().to_owned(),
                args: serde_json::to_string(&job)?,
                error: e.to_string(),
                max_attempts: i32::try_from(job.max_attempts()).unwrap_or(i32::MAX),
                at: cx.services.ctx.clock.now(),
            };
            match m.job_failed(&failure).await {
                Ok(tries) => {
                    dead = tries >= failure.max_attempts;
                    tracing::warn!(job = job.name(), queue = job.queue(), task = %task_id, error = %e, tries, dead, "job failed");
                    match &cx.retry_in {
                        Some((queue, base)) if !dead => {
                            let doublings = u32::try_from(tries.saturating_sub(1)).unwrap_or(0).min(16);
                            let pause = base.saturating_mul(1u32 << doublings);
                            queue.delay_retry(&task_id, pause).await.map_err(|e| {
                                taskhub_core::Error::Internal(format!("cannot put off the retry: {e}").into())
                            })
                        }
                        _ => Ok(()),
                    }
                }
                Err(e) => Err(e),
            }
        }
    };
    if let Err(e) = recorded {
        tracing::error!(job = job.name(), task = %task_id, error = %e, "could not record the job's outcome");
    }
    match result {
        // Dead: the storage keeps it as killed and tries it no more (apalis-redis 1.0 would
        // otherwise try a failed job 25 times, whatever its limit).
        Err(e) if dead => Err(AbortError::new(e).into()),
        other => other,
    }
}

async fn run(job: Job, cx: &JobContext) -> Result<(), BoxDynError> {
    let s: &Services = &cx.services;
    let (name, queue) = (job.name(), job.queue());
    let done = match job {
        Job::OverdueScan => s.maintenance.overdue_scan().await?.len() as u64,
        Job::ArchiveCleanup { retention_days } => {
            s.maintenance.archive_cleanup(chrono::Duration::days(i64::from(retention_days))).await?
        }
        Job::DailySummary { day } => s.maintenance.daily_summaries(day).await? as u64,
        Job::IdempotencyPurge => crate::purge_idempotency_keys(s).await?,
        Job::TokenPurge => crate::purge_expired_tokens(s).await?,
        Job::SendMail { id, token } => {
            let Some(sender) = &cx.mail else { return Err("this worker has no mailer".into()) };
            match sender.send_queued(id, &token).await? {
                crate::mail::Outcome::Sent => 1,
                crate::mail::Outcome::Skipped => 0,
                // Failed: the outbox hands it over again after its back-off (or keeps it dead);
                // this hand-over is over, so no storage may try the job again.
                crate::mail::Outcome::Retry(e) | crate::mail::Outcome::Dead(e) => return Err(AbortError::new(e).into()),
            }
        }
        Job::Noop => 0,
    };
    tracing::info!(job = name, queue, count = done, "job done");
    Ok(())
}

/// The storage of one queue.
#[derive(Clone)]
pub enum JobQueue {
    /// SQLite, in a file of its own.
    Sqlite(apalis_sqlite::SqliteStorage<Job>),
    /// PostgreSQL (schema `apalis`).
    #[cfg(feature = "postgres")]
    Postgres(apalis_postgres::PostgresStorage<Job>),
    /// Redis (with a connection of its own for the figures: apalis-redis 1.0's metrics script
    /// fails on its own key types).
    #[cfg(feature = "redis")]
    Redis(apalis_redis::RedisStorage<Job>, redis::aio::ConnectionManager),
}

fn jobs_sqlite_url(database_url: &str) -> String {
    // Beside the main SQLite file (apalis sets its own pragmas and migrations on its pool).
    match database_url.strip_suffix(".db") {
        Some(stem) if database_url.starts_with("sqlite:") => format!("{stem}-jobs.db"),
        _ => "sqlite://taskhub-jobs.db".to_owned(),
    }
}

impl JobQueue {
    /// Opens the storage `cfg` names, with queue name `queue` ([`crate::QUEUE_LONG`] or
    /// [`crate::QUEUE_INTERACTIVE`] in production).
    pub async fn open(cfg: &Config, queue: &str) -> anyhow::Result<Self> {
        Ok(match cfg.jobs_backend {
            JobsBackend::Sqlite => {
                use std::str::FromStr;
                let url = jobs_sqlite_url(&cfg.database_url);
                let opts = sqlx::sqlite::SqliteConnectOptions::from_str(&url)?.create_if_missing(true);
                let pool = sqlx::SqlitePool::connect_with(opts).await?;
                apalis_sqlite::SqliteStorage::setup(&pool).await?;
                Self::sqlite(&pool, queue)
            }
            #[cfg(not(feature = "postgres"))]
            JobsBackend::Postgres => anyhow::bail!("this build has no PostgreSQL job storage (feature `postgres`)"),
            #[cfg(feature = "postgres")]
            JobsBackend::Postgres => {
                let pool = sqlx::PgPool::connect(&cfg.database_url).await?;
                apalis_postgres::PostgresStorage::setup(&pool).await?;
                Self::postgres(&pool, queue)
            }
            #[cfg(not(feature = "redis"))]
            JobsBackend::Redis => anyhow::bail!("this build has no Redis job storage (feature `redis`)"),
            #[cfg(feature = "redis")]
            JobsBackend::Redis => {
                let Some(url) = cfg.redis_url.as_deref() else {
                    anyhow::bail!("--jobs-backend redis needs --redis-url")
                };
                Self::redis(apalis_redis::connect(url).await?, queue)
            }
        })
    }

    /// The queue named `queue` in the same storage, over the same connections.
    pub fn sibling(&self, queue: &str) -> Self {
        match self {
            JobQueue::Sqlite(s) => Self::sqlite(s.pool(), queue),
            #[cfg(feature = "postgres")]
            JobQueue::Postgres(s) => Self::postgres(s.pool(), queue),
            #[cfg(feature = "redis")]
            JobQueue::Redis(_, conn) => Self::redis(conn.clone(), queue),
        }
    }

    fn sqlite(pool: &sqlx::SqlitePool, queue: &str) -> Self {
        let config = apalis_sqlite::Config::default()
            .queue(queue)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS);
        JobQueue::Sqlite(apalis_sqlite::SqliteStorage::new(pool).with_config(config))
    }

    #[cfg(feature = "postgres")]
    fn postgres(pool: &sqlx::PgPool, queue: &str) -> Self {
        let config = apalis_postgres::Config::default()
            .queue(queue)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS);
        JobQueue::Postgres(apalis_postgres::PostgresStorage::new(pool).with_config(config))
    }

    #[cfg(feature = "redis")]
    fn redis(conn: redis::aio::ConnectionManager, queue: &str) -> Self {
        let config = apalis_redis::Config::default()
            .queue(queue)
            .heartbeat_interval(HEARTBEAT)
            .missed_heartbeats(MISSED_HEARTBEATS);
        JobQueue::Redis(apalis_redis::RedisStorage::new(conn.clone()).with_config(config), conn)
    }

    /// Pushes a job (tried up to [`Job::max_attempts`] times).
    pub async fn push(&mut self, job: Job) -> anyhow::Result<()> {
        let attempts = job.max_attempts();
        let task = TaskBuilder::new(job).max_attempts(attempts).build();
        match self {
            JobQueue::Sqlite(s) => s.push_task(task).await.map_err(|e| anyhow::anyhow!("{e}"))?,
            #[cfg(feature = "postgres")]
            JobQueue::Postgres(s) => s.push_task(task).await.map_err(|e| anyhow::anyhow!("{e}"))?,
            #[cfg(feature = "redis")]
            JobQueue::Redis(s, _) => s.push_task(task).await.map_err(|e| anyhow::anyhow!("{e}"))?,
        }
        Ok(())
    }

    /// The queue's figures as apalis reports them (`PENDING_JOBS`, `RUNNING_JOBS`, `DONE_JOBS`,
    /// `FAILED_JOBS`, `KILLED_JOBS`…), by name.
    pub async fn stats(&self) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
        use apalis_core::backend::Metrics;
        let rows = match self {
            JobQueue::Sqlite(s) => s.fetch_by_queue().await.map_err(|e| anyhow::anyhow!("{e}"))?,
            #[cfg(feature = "postgres")]
            JobQueue::Postgres(s) => s.fetch_by_queue().await.map_err(|e| anyhow::anyhow!("{e}"))?,
            #[cfg(feature = "redis")]
            JobQueue::Redis(s, conn) => return redis_stats(s.get_config(), conn.clone()).await,
        };
        Ok(rows.into_iter().filter_map(|r| Some((r.title, r.value.parse::<f64>().ok()?))).collect())
    }

    /// The queue's jobs by state, in the shape of the jobs view.
    pub async fn counts(&self) -> anyhow::Result<taskhub_core::store::maintain::QueueCounts> {
        let stats = self.stats().await?;
        let n = |k: &str| stats.get(k).copied().unwrap_or(0.0) as i64;
        Ok(taskhub_core::store::maintain::QueueCounts {
            pending: n("PENDING_JOBS"),
            running: n("RUNNING_JOBS"),
            done: n("DONE_JOBS"),
            failed: n("FAILED_JOBS"),
            dead: n("KILLED_JOBS"),
        })
    }

    /// Forgets the records of jobs that finished (done, or failed for good) longer than
    /// `older_than` ago, so the job storage does not grow without bound; returns how many went.
    /// Jobs waiting, running or waiting for a retry are kept.
    pub async fn vacuum(&self, older_than: std::time::Duration) -> anyhow::Result<u64> {
        match self {
            JobQueue::Sqlite(s) => {
                use apalis_core::backend::BackendConfig;
                // apalis-sqlite 1.0's `vacuum_before` compares its integer `run_at` with a date
                // string, which is always smaller: it forgets every finished job, old or not.
                let r = sqlx::query(
                    "DELETE FROM Jobs WHERE job_type = ?1 \
                     AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts)) \
                     AND done_at <= CAST(strftime('%s', 'now') AS INTEGER) - ?2",
                )
                .bind(s.config().queue.as_ref().to_owned())
                .bind(i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX))
                .execute(s.pool())
                .await?;
                Ok(r.rows_affected())
            }
            #[cfg(feature = "postgres")]
            JobQueue::Postgres(s) => {
                // apalis-postgres 1.0 has no vacuum of its own; its table, by its columns.
                let r = sqlx::query(
                    "DELETE FROM apalis.jobs WHERE job_type = $1 \
                     AND (status IN ('Done', 'Killed') OR (status = 'Failed' AND attempts >= max_attempts)) \
                     AND done_at < NOW() - make_interval(secs => $2)",
                )
                .bind(s.config().queue.as_ref().to_owned())
                .bind(older_than.as_secs_f64())
                .execute(s.pool())
                .await?;
                Ok(r.rows_affected())
            }
            #[cfg(feature = "redis")]
            JobQueue::Redis(s, conn) => {
                // apalis-redis 1.0's own vacuum leaves the ids in the done and dead sets (they are
                // what the counts read) and would drop failed jobs waiting for a retry.
                let cfg = s.get_config();
                let n: u64 = redis::Script::new(REDIS_VACUUM)
                    .key(cfg.job_data_hash())
                    .key(cfg.job_meta_hash())
                    .key(cfg.done_jobs_set())
                    .key(cfg.dead_jobs_set())
                    .arg(older_than.as_secs())
                    .invoke_async(&mut conn.clone())
                    .await?;
                Ok(n)
            }
        }
    }

    /// Puts off the next try of the failed job `task_id` by `pause` (the SQL storages try a
    /// failed job when its `run_at` comes; apalis-redis 1.0 keeps its own pause of one second
    /// per try).
    pub async fn delay_retry(&self, task_id: &str, pause: Duration) -> anyhow::Result<()> {
        match self {
            JobQueue::Sqlite(s) => {
                sqlx::query("UPDATE Jobs SET run_at = CAST(strftime('%s', 'now') AS INTEGER) + ?2 WHERE id = ?1")
                    .bind(task_id)
                    .bind(i64::try_from(pause.as_secs_f64().ceil() as u64).unwrap_or(i64::MAX))
                    .execute(s.pool())
                    .await?;
            }
            #[cfg(feature = "postgres")]
            JobQueue::Postgres(s) => {
                sqlx::query("UPDATE apalis.jobs SET run_at = NOW() + make_interval(secs => $2) WHERE id = $1")
                    .bind(task_id)
                    .bind(pause.as_secs_f64())
                    .execute(s.pool())
                    .await?;
            }
            #[cfg(feature = "redis")]
            JobQueue::Redis(..) => {}
        }
        Ok(())
    }

    /// Jobs waiting or running.
    pub async fn pending(&self) -> anyhow::Result<usize> {
        let s = self.stats().await?;
        let n = |k: &str| s.get(k).copied().unwrap_or(0.0);
        Ok((n("PENDING_JOBS") + n("RUNNING_JOBS")) as usize)
    }

    /// Runs a worker named `name` (unique per process), running at most `concurrency` jobs at
    /// once, until `shutdown`.
    pub async fn work(
        &self,
        name: String,
        services: JobContext,
        concurrency: usize,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let signal = async move {
            shutdown.await;
            Ok::<(), std::io::Error>(())
        };
        // The same worker over each storage type.
        macro_rules! worker {
            ($storage:expr) => {
                WorkerBuilder::new(name)
                    .backend($storage.clone().poll_with_interval(POLL))
                    .data(services)
                    .concurrency(concurrency)
                    .build(execute)
                    .run_until(signal)
                    .await
            };
        }
        let r = match self {
            JobQueue::Sqlite(s) => worker!(s),
            #[cfg(feature = "postgres")]
            JobQueue::Postgres(s) => worker!(s),
            #[cfg(feature = "redis")]
            JobQueue::Redis(s, _) => worker!(s),
        };
        r.map_err(|e| anyhow::anyhow!("worker: {e}"))
    }
}

/// Forgets finished jobs of a Redis queue: members of the done and dead sets whose `done_at`
/// is older than ARGV[1] seconds lose their data, their metadata and their membership.
#[cfg(feature = "redis")]
const REDIS_VACUUM: &str = r#"
local cutoff = tonumber(redis.call("TIME")[1]) - tonumber(ARGV[1])
local n = 0
for _, set in ipairs({KEYS[3], KEYS[4]}) do
  if redis.call("TYPE", set)["ok"] == "set" then
    for _, id in ipairs(redis.call("SMEMBERS", set)) do
      local meta = KEYS[2] .. ":" .. id
      local done_at = tonumber(redis.call("HGET", meta, "done_at") or "")
      if done_at == nil or done_at <= cutoff then
        redis.call("HDEL", KEYS[1], id)
        redis.call("HDEL", KEYS[2] .. ":result", id)
        redis.call("DEL", meta)
        redis.call("SREM", set, id)
        n = n + 1
      end
    end
  end
end
return n
"#;

/// The figures of a Redis queue, counted from its keys whatever their type.
#[cfg(feature = "redis")]
async fn redis_stats(
    cfg: &apalis_redis::Config,
    mut conn: redis::aio::ConnectionManager,
) -> anyhow::Result<std::collections::BTreeMap<String, f64>> {
    async fn count(conn: &mut redis::aio::ConnectionManager, key: &str) -> anyhow::Result<f64> {
        let kind: String = redis::cmd("TYPE").arg(key).query_async(conn).await?;
        let cmd = match kind.as_str() {
            "list" => "LLEN",
            "set" => "SCARD",
            "zset" => "ZCARD",
            "hash" => "HLEN",
            _ => return Ok(0.0),
        };
        let n: i64 = redis::cmd(cmd).arg(key).query_async(conn).await?;
        Ok(n as f64)
    }
    let mut out = std::collections::BTreeMap::new();
    let pending =
        count(&mut conn, &cfg.active_jobs_list()).await? + count(&mut conn, &cfg.scheduled_jobs_set()).await?;
    // Each worker keeps its running jobs in a set of its own, `<inflight>:<worker>`; the workers
    // are listed in the queue's workers key (read by type, like the counts).
    let workers_key = cfg.workers_set();
    let kind: String = redis::cmd("TYPE").arg(&workers_key).query_async(&mut conn).await?;
    let workers: Vec<String> = match kind.as_str() {
        "zset" => redis::cmd("ZRANGE").arg(&workers_key).arg(0).arg(-1).query_async(&mut conn).await?,
        "set" => redis::cmd("SMEMBERS").arg(&workers_key).query_async(&mut conn).await?,
        "hash" => redis::cmd("HKEYS").arg(&workers_key).query_async(&mut conn).await?,
        _ => Vec::new(),
    };
    let mut running = count(&mut conn, &cfg.inflight_jobs_set()).await?;
    for w in workers {
        running += count(&mut conn, &format!("{}:{w}", cfg.inflight_jobs_set())).await?;
    }
    out.insert("PENDING_JOBS".to_owned(), pending);
    out.insert("RUNNING_JOBS".to_owned(), running);
    out.insert("DONE_JOBS".to_owned(), count(&mut conn, &cfg.done_jobs_set()).await?);
    out.insert("FAILED_JOBS".to_owned(), count(&mut conn, &cfg.failed_jobs_set()).await?);
    out.insert("KILLED_JOBS".to_owned(), count(&mut conn, &cfg.dead_jobs_set()).await?);
    Ok(out)
}

//! Shared set-up of TaskHub's criterion benchmarks: persistent data sets per engine and size,
//! filled once through the core services (so they carry history and outbox rows like real data)
//! and reused by later runs.

use anyhow::{Context, Result};
use serde_json::json;
use std::sync::Arc;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::{TaskInput, TaskQuery};
use taskhub_core::users::UserInput;
use taskhub_core::{Actor, Services, store};

/// Users in every data set; tasks are spread over them.
pub const USERS: usize = 8;

/// Which engine a data set lives on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// A SQLite file under `target/bench-data/`.
    Sqlite,
    /// A database `taskhub_bench_<n>` on the PostgreSQL of `TASKHUB_BENCH_PG_URL`.
    Postgres,
}

/// A filled data set.
pub struct Dataset {
    /// Its database URL.
    pub url: String,
    /// Its size in tasks.
    pub tasks: u32,
    /// Services over it.
    pub services: Services,
    /// The users (the first is the one benchmarks act as).
    pub users: Vec<Actor>,
    /// Ids of tasks the first user may see.
    pub visible: Vec<i64>,
}

#[cfg(feature = "postgres")]
fn pg_admin_url() -> String {
    std::env::var("TASKHUB_BENCH_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn database_url(engine: Engine, tasks: u32) -> Result<String> {
    match engine {
        Engine::Sqlite => {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
            std::fs::create_dir_all(&dir)?;
            Ok(format!("sqlite://{}/store-{tasks}.db", dir.display()))
        }
        #[cfg(not(feature = "postgres"))]
        Engine::Postgres => anyhow::bail!("this build has no PostgreSQL (feature `postgres`)"),
        #[cfg(feature = "postgres")]
        Engine::Postgres => {
            use sqlx::Connection;
            let admin = pg_admin_url();
            let mut c = sqlx::PgConnection::connect(&admin).await.context("PostgreSQL for benchmarks")?;
            let name = format!("taskhub_bench_{tasks}");
            let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pg_database WHERE datname = $1")
                .bind(&name)
                .fetch_optional(&mut c)
                .await?;
            if exists.is_none() {
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await?;
            }
            let mut url = url::Url::parse(&admin)?;
            url.set_path(&name);
            Ok(url.to_string())
        }
    }
}

impl Dataset {
    /// Opens the data set of `tasks` tasks on `engine`, filling whatever is missing.
    pub async fn open(engine: Engine, tasks: u32) -> Result<Self> {
        let url = database_url(engine, tasks).await?;
        let services = Services::new(store::connect_with(&url, 16).await?);
        let mut users = Vec::new();
        for i in 0..USERS {
            let name = format!("bench{i}");
            let u = match services.users.find_by_username(&name).await? {
                Some(u) => u,
                None => {
                    let input = UserInput {
                        username: name.clone(),
                        email: format!("{name}@bench.invalid"),
                        password: "bench password".into(),
                        ..Default::default()
                    };
                    services.users.create_local(input, false).await?
                }
            };
            users.push(Actor::user(u.id));
        }
        let staff = Actor::staff(users.first().map_or(1, |u| u.user_id));
        let have = services.tasks.list(&staff, &TaskQuery::default(), &PageRequest::first(1)).await?.count.unwrap_or(0);
        if have > i64::from(tasks) {
            // Earlier runs' create benchmarks grew the set: trim it back to its size.
            trim(&url, tasks).await?;
        }
        let missing = u32::try_from(i64::from(tasks) - have).unwrap_or(0);
        if missing > 0 {
            eprintln!("filling {engine:?} data set to {tasks} tasks ({missing} to create)...");
            fill(&services, &users, missing).await?;
        }
        let me = *users.first().context("no users")?;
        let page = services.tasks.list(&me, &TaskQuery::default(), &PageRequest::first(200)).await?;
        let visible = page.items.iter().map(|t| t.id).collect();
        Ok(Dataset { url, tasks, services, users, visible })
    }
}

/// Deletes every task after the first `keep` (cascading to their rows), so a data set keeps
/// its size however many tasks the create benchmark added.
pub async fn trim(url: &str, keep: u32) -> Result<()> {
    use sqlx::Connection;
    let sql = format!(
        "DELETE FROM tasks WHERE id > (SELECT id FROM tasks ORDER BY id LIMIT 1 OFFSET {})",
        keep.saturating_sub(1)
    );
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        sqlx::query("PRAGMA foreign_keys = ON").execute(&mut c).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await?;
        return Ok(());
    }
    #[cfg(feature = "postgres")]
    {
        let mut c = sqlx::PgConnection::connect(url).await?;
        sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await?;
    }
    Ok(())
}

/// Marks every outbox row unpublished again, so a relay benchmark can drain the same rows anew.
pub async fn reset_outbox(url: &str) -> Result<u64> {
    use sqlx::Connection;
    let sql = "UPDATE outbox SET published_at = NULL";
    if url.starts_with("sqlite:") {
        let mut c = sqlx::SqliteConnection::connect(url).await?;
        return Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected());
    }
    #[cfg(feature = "postgres")]
    {
        let mut c = sqlx::PgConnection::connect(url).await?;
        return Ok(sqlx::query(sql).execute(&mut c).await?.rows_affected());
    }
    #[cfg(not(feature = "postgres"))]
    anyhow::bail!("this build has no PostgreSQL (feature `postgres`)")
}

/// A realistic task body: a quarter assigned to someone else, tags, a due date.
pub fn task_body(i: u32, assignee: i64) -> TaskInput {
    let priority = ["low", "medium", "high", "urgent"].get((i % 4) as usize).copied();
    let status = ["todo", "in_progress", "blocked", "done"].get(((i / 4) % 4) as usize).copied();
    let body = json!({
        "title": format!("Benchmark task {i}"),
        "description": "Measure the store under a realistic mix of fields.",
        "priority": priority,
        "status": status,
        "due_date": format!("2026-12-{:02}T12:00:00Z", 1 + i % 28),
        "estimated_hours": f64::from(i % 40) / 4.0,
        "tags": [format!("tag{}", i % 20)],
        "assigned_to": if i.is_multiple_of(4) { vec![assignee] } else { vec![] },
        "metadata": {"bench": true},
    });
    serde_json::from_value(body).unwrap_or_default()
}

async fn fill(services: &Services, users: &[Actor], n: u32) -> Result<()> {
    let services = Arc::new(services.clone());
    let users: Arc<Vec<Actor>> = Arc::new(users.to_vec());
    let workers = 8u32;
    let mut set = tokio::task::JoinSet::new();
    for w in 0..workers {
        let (services, users) = (services.clone(), users.clone());
        set.spawn(async move {
            let mut i = w;
            while i < n {
                let creator = users.get(i as usize % users.len()).copied().unwrap_or(Actor::user(1));
                let assignee = users.get((i as usize + 1) % users.len()).map_or(1, |u| u.user_id);
                services.tasks.create(&creator, task_body(i, assignee)).await?;
                i += workers;
            }
            Ok::<(), taskhub_core::Error>(())
        });
    }
    while let Some(r) = set.join_next().await {
        r??;
    }
    Ok(())
}

//! Test databases and fixtures.

use anyhow::{Context, Result};
use argon2::Params;
use std::sync::Arc;
use taskhub_core::auth::PasswordHasher;
use taskhub_core::clock::ManualClock;
use taskhub_core::services::Ctx;
use taskhub_core::store::{self, Store};
use taskhub_core::tasks::TaskInput;
use taskhub_core::users::UserInput;
use taskhub_core::{Actor, Services};
use uuid::Uuid;

/// Where the PostgreSQL server for tests lives (a maintenance database to create others from).
pub fn pg_admin_url() -> String {
    std::env::var("TASKHUB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// Which engine a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    Sqlite,
    Postgres,
}

/// A fresh, uniquely named database that is removed when dropped.
pub struct TestDb {
    pub url: String,
    pub engine: Engine,
    cleanup: Option<Box<dyn FnOnce() + Send>>,
}

impl TestDb {
    pub async fn new(engine: Engine) -> Result<Self> {
        let name = format!("taskhub_test_{}", Uuid::now_v7().simple());
        match engine {
            Engine::Sqlite => {
                let path = std::env::temp_dir().join(format!("{name}.db"));
                let url = format!("sqlite://{}", path.display());
                let cleanup = move || {
                    for suffix in ["", "-wal", "-shm"] {
                        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
                    }
                };
                Ok(TestDb { url, engine, cleanup: Some(Box::new(cleanup)) })
            }
            Engine::Postgres => {
                use sqlx::Connection;
                let admin = pg_admin_url();
                let mut conn = sqlx::PgConnection::connect(&admin)
                    .await
                    .with_context(|| format!("PostgreSQL must be reachable at {admin} for the contract suite"))?;
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
                conn.close().await?;
                let mut url = url::Url::parse(&admin)?;
                url.set_path(&name);
                let cleanup = move || {
                    // Drop runs outside any runtime guarantee: use a thread with its own runtime.
                    let _ = std::thread::spawn(move || {
                        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build();
                        if let Ok(rt) = rt {
                            rt.block_on(async move {
                                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                                    let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                                }
                            });
                        }
                    })
                    .join();
                };
                Ok(TestDb { url: url.to_string(), engine, cleanup: Some(Box::new(cleanup)) })
            }
        }
    }

    /// Runs raw SQL against the test database (for fault injection and row counts).
    pub async fn exec(&self, sql: &str) -> Result<()> {
        match self.engine {
            Engine::Sqlite => {
                use sqlx::Connection;
                let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await?;
            }
            Engine::Postgres => {
                use sqlx::Connection;
                let mut c = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned())).execute(&mut c).await?;
            }
        }
        Ok(())
    }

    /// `SELECT COUNT(*) FROM <table>`.
    pub async fn count(&self, table: &str) -> Result<i64> {
        use sqlx::Connection;
        let sql = format!("SELECT COUNT(*) FROM {table}");
        Ok(match self.engine {
            Engine::Sqlite => {
                let mut c = sqlx::SqliteConnection::connect(&self.url).await?;
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await?
            }
            Engine::Postgres => {
                let mut c = sqlx::PgConnection::connect(&self.url).await?;
                sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).fetch_one(&mut c).await?
            }
        })
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some(f) = self.cleanup.take() {
            f();
        }
    }
}

/// Services over a fresh database, with a clock the test moves by hand.
pub struct Fx {
    pub db: TestDb,
    pub svc: Services,
    pub store: Arc<dyn Store>,
    pub clock: Arc<ManualClock>,
}

impl Fx {
    pub async fn new(engine: Engine) -> Result<Self> {
        let db = TestDb::new(engine).await?;
        let store = store::connect_with(&db.url, 8).await?;
        let start = chrono::DateTime::parse_from_rfc3339("2026-11-25T12:00:00Z")?.with_timezone(&chrono::Utc);
        let clock = Arc::new(ManualClock::new(start));
        // Cheap hashing parameters keep the suite fast; production uses the OWASP ones.
        let hasher = PasswordHasher::new(Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let svc = Services::build(Ctx { store: store.clone(), clock: clock.clone() }, hasher);
        Ok(Fx { db, svc, store, clock })
    }

    /// Registers a user and returns them as an actor.
    pub async fn user(&self, name: &str) -> Result<Actor> {
        let u = self
            .svc
            .users
            .register(UserInput {
                username: name.into(),
                email: format!("{name}@example.com"),
                password: "correct horse battery".into(),
                display_name: Some(name.to_uppercase()),
                is_staff: None,
            })
            .await?;
        Ok(Actor::user(u.id))
    }

    /// Creates a staff user.
    pub async fn staff(&self, name: &str) -> Result<Actor> {
        let u = self
            .svc
            .users
            .create_local(
                UserInput {
                    username: name.into(),
                    email: format!("{name}@example.com"),
                    password: "correct horse battery".into(),
                    ..Default::default()
                },
                true,
            )
            .await?;
        Ok(Actor::staff(u.id))
    }

    /// What the test clock shows.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        use taskhub_core::clock::Clock;
        self.clock.now()
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn tick(&self, ms: i64) {
        self.clock.advance(chrono::Duration::milliseconds(ms));
    }
}

/// A task body from JSON.
pub fn input(v: serde_json::Value) -> Result<TaskInput> {
    Ok(serde_json::from_value(v)?)
}

/// The field names of a validation error (empty if it is another error).
pub fn invalid_fields<T: std::fmt::Debug>(r: taskhub_core::Result<T>) -> Vec<String> {
    match r {
        Err(taskhub_core::Error::Validation { fields }) => fields.into_keys().collect(),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// Every outbox row, in order.
pub async fn outbox(fx: &Fx) -> Result<Vec<taskhub_core::events::OutboxRecord>> {
    Ok(fx.store.read().await?.list_outbox(0, 100_000).await?)
}

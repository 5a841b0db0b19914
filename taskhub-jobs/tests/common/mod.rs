//! What the job tests share: fresh PostgreSQL databases and a real SMTP server.
#![allow(dead_code, reason = "each test crate uses part of it")]

use anyhow::Result;
use std::time::Duration;

/// Registers user `name` (`<name>@example.com`); returns its id.
pub async fn register(services: &taskhub_core::Services, name: &str) -> Result<i64> {
    let input = taskhub_core::users::UserInput {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: "correct horse battery".into(),
        ..Default::default()
    };
    Ok(services.users.register(input).await?.id)
}

fn admin_url() -> String {
    std::env::var("TASKHUB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A new PostgreSQL database: its URL and name.
pub async fn create_pg_database() -> Result<(String, String)> {
    use sqlx::Connection;
    let name = format!("taskhub_jobs_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(&admin_url()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut c).await?;
    let mut url = url::Url::parse(&admin_url())?;
    url.set_path(&name);
    Ok((url.to_string(), name))
}

/// Drops a database made by [`create_pg_database`].
pub async fn drop_pg_database(name: &str) -> Result<()> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(&admin_url()).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))).execute(&mut c).await?;
    Ok(())
}

/// A real SMTP server (aiosmtpd, installed by scripts/services.sh) storing every message it
/// accepts into the maildir `dir`; killed when dropped.
pub struct SmtpServer {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// The maildir.
    pub dir: std::path::PathBuf,
    child: std::process::Child,
}

impl SmtpServer {
    /// Starts one and waits until it listens.
    pub async fn start(dir: std::path::PathBuf) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&dir)
            .spawn()
            .map_err(|e| anyhow::anyhow!("python3 -m aiosmtpd (scripts/services.sh installs it): {e}"))?;
        let server = SmtpServer { port, dir, child };
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        anyhow::bail!("aiosmtpd did not start (is it installed? scripts/services.sh installs it)")
    }

    /// `smtp://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Every message received so far.
    pub fn received(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.join("new"))
            .map(|d| d.filter_map(|e| e.ok().and_then(|e| std::fs::read_to_string(e.path()).ok())).collect())
            .unwrap_or_default()
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A header's value in a raw message.
pub fn header(mail: &str, name: &str) -> String {
    let prefix = format!("{name}: ");
    mail.lines().find_map(|l| l.strip_prefix(prefix.as_str())).unwrap_or_default().trim().to_owned()
}

//! The command line of `taskhub` (API.md "Running"). Every flag is also `TASKHUB_<NAME>`.

use clap::{Args, Parser, Subcommand};
use serde::Serialize;
use std::path::PathBuf;

/// TaskHub: task management with users, teams, events, jobs and analytics.
#[derive(Debug, Parser)]
#[command(name = "taskhub", version, about)]
pub struct Cli {
    /// Settings that every sub-command shares.
    #[command(flatten)]
    pub flags: Flags,
    /// What to do (default: serve).
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Configuration flags; each overrides the config file and `TASKHUB_*` variables.
#[derive(Debug, Args, Serialize, Default)]
pub struct Flags {
    /// TOML config file (default: ./taskhub.toml if present).
    #[arg(long, global = true)]
    #[serde(skip)]
    pub config: Option<PathBuf>,
    /// all | http | jobs | events | analytics.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Address to listen on.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// sqlite://… or postgres://…
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
    /// Redis URL.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub redis_url: Option<String>,
    /// Kafka bootstrap servers.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kafka_brokers: Option<String>,
    /// memory | redis | kafka.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bus: Option<String>,
    /// sqlite | postgres | redis.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jobs_backend: Option<String>,
    /// Directory of the signing keys.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keys_dir: Option<PathBuf>,
    /// JWKS URL (analytics role).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwks_url: Option<String>,
    /// SMTP server for mail (`smtp://host:port`); unset: mail goes to `--mail-dir`.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_url: Option<String>,
    /// Job queues this process works: interactive,long (default both).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queues: Option<String>,
    /// Directory of the file mailbox (one .eml per message).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mail_dir: Option<std::path::PathBuf>,
    /// JWT issuer.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_issuer: Option<String>,
    /// JWT audience.
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jwt_audience: Option<String>,
    /// Auth requests per client address per minute (0 = off).
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    pub auth_rate_limit: Option<u32>,
}

/// Sub-commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured role (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    User(UserCommand),
    /// Fill the database with realistic demo data.
    SeedDemo(SeedArgs),
    /// Manage the token signing keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
}

/// `taskhub audit …`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the audit chain; exits non-zero and names the first row that does not hold.
    Verify,
}

/// `taskhub keys …`
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Add a new signing key; the old one keeps verifying until its tokens have expired.
    Rotate,
    /// Show every key and its state.
    List,
}

/// `taskhub user …`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create a user.
    Create {
        /// Login name.
        #[arg(long)]
        username: String,
        /// Password (at least 10 characters).
        #[arg(long, env = "TASKHUB_USER_PASSWORD", hide_env_values = true)]
        password: String,
        /// E-mail (default: <username>@localhost.invalid).
        #[arg(long)]
        email: Option<String>,
        /// Make the user staff.
        #[arg(long)]
        staff: bool,
    },
}

/// `taskhub seed-demo`
#[derive(Debug, Args)]
pub struct SeedArgs {
    /// Number of tasks (up to 1,000,000).
    #[arg(long, default_value_t = 2000)]
    pub tasks: u32,
    /// Number of users (at least 20).
    #[arg(long, default_value_t = 24)]
    pub users: u32,
    /// Seed of the random generator, for reproducible data.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Concurrent writers (PostgreSQL benefits; SQLite serializes writers anyway).
    #[arg(long, default_value_t = 4)]
    pub concurrency: usize,
    /// Hide the progress bar.
    #[arg(long)]
    pub quiet: bool,
}

/// `taskhub keys rotate|list`: rotation also announces `keys.rotated` through the outbox.
pub async fn keys(
    cfg: &taskhub_core::config::Config,
    services: &taskhub_core::Services,
    cmd: &KeysCommand,
) -> anyhow::Result<()> {
    let keys = taskhub_core::auth::KeyRing::open(&cfg.keys_dir, services.ctx.clock.clone())?;
    if let KeysCommand::Rotate = cmd {
        let kid = keys.rotate_announced(services.store().as_ref()).await?;
        println!("new signing key {kid}");
    }
    for k in keys.list()? {
        let until = k.retire_at.map(|t| format!(" (verifies until {})", t.to_rfc3339())).unwrap_or_default();
        let state = format!("{:?}", k.state).to_lowercase();
        println!("{}  {state:<8}  created {}{until}", k.kid, k.created_at.to_rfc3339());
    }
    Ok(())
}

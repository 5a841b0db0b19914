//! The one typed configuration of every TaskHub process: built-in defaults, then an optional
//! TOML file, then `TASKHUB_*` environment variables, then command-line flags.
//! Validated at start-up.

use crate::error::{Error, Result};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Which parts of TaskHub a process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything in one process (the embedded default).
    #[default]
    All,
    /// The HTTP API and pages.
    Http,
    /// The job runner.
    Jobs,
    /// The event consumers.
    Events,
    /// The analytics endpoint.
    Analytics,
}

/// The event bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BusKind {
    /// In-process.
    #[default]
    Memory,
    /// Redis Streams.
    Redis,
    /// Kafka.
    Kafka,
}

/// Where jobs are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum JobsBackend {
    /// A SQLite file of its own.
    #[default]
    Sqlite,
    /// PostgreSQL.
    Postgres,
    /// Redis.
    Redis,
}

/// Process configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Role of this process.
    pub role: Role,
    /// Address to listen on.
    pub bind: SocketAddr,
    /// `sqlite://…` or `postgres://…`.
    pub database_url: String,
    /// Largest database pool.
    pub database_max_connections: u32,
    /// Redis URL (bus or jobs).
    pub redis_url: Option<String>,
    /// Kafka bootstrap servers.
    pub kafka_brokers: Option<String>,
    /// Event bus.
    pub bus: BusKind,
    /// Job storage.
    pub jobs_backend: JobsBackend,
    /// Directory of the RSA signing keys.
    pub keys_dir: PathBuf,
    /// JWKS URL that the analytics role verifies tokens with.
    pub jwks_url: Option<String>,
    /// JWT issuer.
    pub jwt_issuer: String,
    /// JWT audience.
    pub jwt_audience: String,
    /// Auth requests per client address per minute (0 = off).
    pub auth_rate_limit: u32,
    /// `tracing` filter, e.g. `info,taskhub_core=debug`.
    pub log: String,
    /// Log as JSON lines instead of text.
    pub log_json: bool,
    /// SMTP server for mail (`smtp://host:port`, `smtps://…`); unset: mail goes to `mail_dir`.
    pub smtp_url: Option<String>,
    /// Directory of the file mailbox (one `.eml` per message) when no SMTP server is set.
    pub mail_dir: PathBuf,
    /// Sender address of TaskHub's mail.
    pub mail_from: String,
    /// Where people reach the pages (links in mail).
    pub public_url: String,
    /// Local time of day of the daily summary mail (`HH:MM`, or `off`).
    pub summary_time: String,
    /// IANA time zone of `summary_time` (e.g. `Europe/Berlin`).
    pub timezone: String,
    /// Days an archived task is kept before the cleanup job deletes it (at least 1).
    pub archive_retention_days: u32,
    /// The job queues this process works, comma-separated: `interactive`, `long` (both by
    /// default; the process working `long` also pushes the periodic jobs).
    pub queues: String,
}

/// The keys of [`Config`], as file keys and (upper-cased, `TASKHUB_`-prefixed) variables.
pub const KEYS: [&str; 23] = [
    "role",
    "bind",
    "database_url",
    "database_max_connections",
    "redis_url",
    "kafka_brokers",
    "bus",
    "jobs_backend",
    "keys_dir",
    "jwks_url",
    "jwt_issuer",
    "jwt_audience",
    "auth_rate_limit",
    "log",
    "log_json",
    "smtp_url",
    "mail_dir",
    "mail_from",
    "public_url",
    "summary_time",
    "timezone",
    "queues",
    "archive_retention_days",
];

impl Default for Config {
    fn default() -> Self {
        Config {
            role: Role::All,
            bind: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: "sqlite://taskhub.db".into(),
            database_max_connections: 10,
            redis_url: None,
            kafka_brokers: None,
            bus: BusKind::Memory,
            jobs_backend: JobsBackend::Sqlite,
            keys_dir: PathBuf::from("keys"),
            jwks_url: None,
            jwt_issuer: "taskhub".into(),
            jwt_audience: "taskhub-api".into(),
            auth_rate_limit: 60,
            log: "info".into(),
            log_json: false,
            smtp_url: None,
            mail_dir: PathBuf::from("mail"),
            mail_from: "TaskHub <taskhub@localhost>".into(),
            public_url: "http://127.0.0.1:8000".into(),
            summary_time: "07:00".into(),
            timezone: "UTC".into(),
            queues: "interactive,long".into(),
            archive_retention_days: 30,
        }
    }
}

impl Config {
    /// Loads defaults → `file` (if given, it must exist; else `taskhub.toml` if present) →
    /// `TASKHUB_*` env → `overrides` (the flags that were given), then validates.
    pub fn load(file: Option<&std::path::Path>, overrides: impl Serialize) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(f) if !f.exists() => {
                return Err(Error::Config(format!("config file {} does not exist", f.display())));
            }
            Some(f) => fig = fig.merge(Toml::file(f)),
            None => fig = fig.merge(Toml::file("taskhub.toml")),
        }
        // Only the configuration's own keys: other TASKHUB_* variables (test settings, the CLI's
        // password variable) are not configuration and must not trip `deny_unknown_fields`.
        let env = Env::prefixed("TASKHUB_").filter(|k| KEYS.contains(&k.as_str().to_ascii_lowercase().as_str()));
        let fig = fig.merge(env).merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The job queues named by `queues`: at least one, each `interactive` or `long`.
    pub fn job_queues(&self) -> Result<Vec<&str>> {
        let names: Vec<&str> = self.queues.split(',').map(str::trim).filter(|q| !q.is_empty()).collect();
        if names.is_empty() {
            return Err(Error::Config("queues must name at least one queue (interactive, long)".into()));
        }
        if let Some(bad) = names.iter().find(|q| !["interactive", "long"].contains(q)) {
            return Err(Error::Config(format!("queues: unknown queue {bad:?} (interactive, long)")));
        }
        Ok(names)
    }

    /// Checks the values hang together.
    pub fn validate(&self) -> Result<()> {
        let url = &self.database_url;
        if !(url.starts_with("sqlite:") || url.starts_with("postgres://") || url.starts_with("postgresql://")) {
            return Err(Error::Config("database_url must start with sqlite: or postgres://".into()));
        }
        if self.database_max_connections == 0 {
            return Err(Error::Config("database_max_connections must be at least 1".into()));
        }
        if self.bus == BusKind::Redis && self.redis_url.is_none() {
            return Err(Error::Config("bus = redis needs redis_url".into()));
        }
        if self.bus == BusKind::Kafka && self.kafka_brokers.is_none() {
            return Err(Error::Config("bus = kafka needs kafka_brokers".into()));
        }
        if self.jobs_backend == JobsBackend::Redis && self.redis_url.is_none() {
            return Err(Error::Config("jobs_backend = redis needs redis_url".into()));
        }
        if self.jobs_backend == JobsBackend::Postgres && !url.starts_with("postgres") {
            return Err(Error::Config("jobs_backend = postgres needs a postgres:// database_url".into()));
        }
        self.job_queues()?;
        if self.archive_retention_days == 0 {
            return Err(Error::Config("archive_retention_days must be at least 1".into()));
        }
        if self.jwt_issuer.is_empty() || self.jwt_audience.is_empty() {
            return Err(Error::Config("jwt_issuer and jwt_audience must not be empty".into()));
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err, reason = "figment::Jail fixes the closure's error type")]
mod tests {
    use super::*;
    use figment::Jail;

    #[derive(Serialize)]
    struct Flags {
        #[serde(skip_serializing_if = "Option::is_none")]
        bind: Option<String>,
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_flags() {
        Jail::expect_with(|jail| {
            jail.create_file(
                "taskhub.toml",
                "database_url = \"postgres://db/file\"\nlog = \"debug\"\nbind = \"127.0.0.1:9000\"",
            )?;
            jail.set_env("TASKHUB_LOG", "warn");
            jail.set_env("TASKHUB_AUTH_RATE_LIMIT", "5");
            jail.set_env("TASKHUB_USER_PASSWORD", "not configuration");
            let cfg = Config::load(None, Flags { bind: Some("127.0.0.1:9100".into()) }).map_err(|e| e.to_string())?;
            assert_eq!(cfg.database_url, "postgres://db/file", "file over default");
            assert_eq!(cfg.log, "warn", "env over file");
            assert_eq!(cfg.auth_rate_limit, 5);
            assert_eq!(cfg.bind.to_string(), "127.0.0.1:9100", "flag over file");
            assert_eq!(cfg.jwt_issuer, "taskhub", "default kept");
            Ok(())
        });
    }

    #[test]
    fn invalid_configuration_is_refused_at_start() {
        Jail::expect_with(|jail| {
            for (key, value) in [
                ("TASKHUB_DATABASE_URL", "mysql://x"),
                ("TASKHUB_BUS", "kafka"),
                ("TASKHUB_ROLE", "everything"),
                ("TASKHUB_BIND", "not-an-address"),
                ("TASKHUB_DATABASE_MAX_CONNECTIONS", "0"),
                ("TASKHUB_QUEUES", "long,reports"),
                ("TASKHUB_QUEUES", " , "),
                ("TASKHUB_ARCHIVE_RETENTION_DAYS", "0"),
            ] {
                jail.set_env(key, value);
                let r = Config::load(None, Flags { bind: None });
                assert!(matches!(r, Err(Error::Config(_))), "{key}={value} must be refused: {r:?}");
                jail.clear_env();
            }
            jail.create_file("bad.toml", "colour = 1")?;
            let r = Config::load(Some(std::path::Path::new("bad.toml")), Flags { bind: None });
            assert!(matches!(r, Err(Error::Config(_))), "unknown file keys are refused");
            let r = Config::load(Some(std::path::Path::new("missing.toml")), Flags { bind: None });
            assert!(matches!(r, Err(Error::Config(_))), "a named file must exist");
            Ok(())
        });
    }
}

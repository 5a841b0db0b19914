//! The one typed configuration of every TaskHub process: built-in defaults, then an optional
//! TOML file, then `TASKHUB_*` environment variables (`__` nests), then command-line flags.
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
}

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
        let fig =
            fig.merge(Env::prefixed("TASKHUB_").split("__").ignore(&["config"])).merge(Serialized::defaults(overrides));
        let cfg: Config = fig.extract().map_err(|e| Error::Config(e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
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
        if self.jwt_issuer.is_empty() || self.jwt_audience.is_empty() {
            return Err(Error::Config("jwt_issuer and jwt_audience must not be empty".into()));
        }
        Ok(())
    }
}

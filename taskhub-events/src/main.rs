//! `taskhub-events`: the outbox relay and the five consumers as their own process (the same as
//! `taskhub --role events`). Configuration as for `taskhub` (taskhub.toml, `TASKHUB_*`).

use anyhow::{Context, Result};
use taskhub_core::config::Config;
use taskhub_core::{Services, store};

#[tokio::main]
async fn main() -> Result<()> {
    let cfg = Config::load(None, serde_json::json!({"role": "events"}))?;
    taskhub_core::runtime::init_tracing(&cfg);
    let store = store::connect_with(&cfg.database_url, cfg.database_max_connections)
        .await
        .with_context(|| format!("cannot open the database {}", store::redact_url(&cfg.database_url)))?;
    let services = Services::new(store);
    taskhub_events::serve(&cfg, services).await
}

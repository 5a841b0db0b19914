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
    let bus = taskhub_events::connect_bus(&cfg, &services.ctx).await?;
    tracing::info!(bus = ?cfg.bus, "event relay and consumers started");
    let rt = taskhub_events::start(
        &services.ctx,
        &bus,
        taskhub_core::projections::all(),
        true,
        taskhub_core::runtime::shutdown_signal(),
    );
    rt.join().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

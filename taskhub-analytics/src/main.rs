//! `taskhub-analytics`: the analytics endpoint as its own process.

use anyhow::{Context, Result};
use taskhub_core::config::Config;

#[tokio::main]
async fn main() -> Result<()> {
    let cfg = Config::load(None, serde_json::json!({"role": "analytics"}))?;
    taskhub_core::runtime::init_tracing(&cfg);
    let listener =
        tokio::net::TcpListener::bind(cfg.bind).await.with_context(|| format!("cannot listen on {}", cfg.bind))?;
    tracing::info!(address = %listener.local_addr()?, "taskhub-analytics listening");
    taskhub_analytics::run(listener, taskhub_core::runtime::shutdown_signal()).await?;
    Ok(())
}

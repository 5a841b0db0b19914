//! `taskhub-jobs`: the job runner as its own process (same as `taskhub --role jobs`).

use anyhow::{Context, Result};
use taskhub_core::config::Config;
use taskhub_core::{Services, store};

#[tokio::main]
async fn main() -> Result<()> {
    let cfg = Config::load(None, serde_json::json!({"role": "jobs"}))?;
    taskhub_core::runtime::init_tracing(&cfg);
    let store = store::connect_with(&cfg.database_url, cfg.database_max_connections)
        .await
        .with_context(|| format!("cannot open the database {}", store::redact_url(&cfg.database_url)))?;
    tracing::info!("job runner started");
    taskhub_jobs::run_configured(&cfg, Services::new(store), taskhub_core::runtime::shutdown_signal()).await
}

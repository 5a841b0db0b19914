//! `taskhub-events`: the event consumers as their own process.

use anyhow::Result;
use taskhub_core::config::Config;

fn main() -> Result<()> {
    let cfg = Config::load(None, serde_json::json!({"role": "events"}))?;
    taskhub_core::runtime::init_tracing(&cfg);
    anyhow::bail!("the event consumers are not available in this build yet")
}

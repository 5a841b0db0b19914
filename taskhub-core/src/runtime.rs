//! Process plumbing every TaskHub binary shares: logging set-up and the shutdown signal.

use crate::config::Config;
use tracing_subscriber::EnvFilter;

/// Initialises `tracing` once for the process: `RUST_LOG` if set, else the configured filter;
/// JSON lines when `log_json` is on. Calling it twice is harmless.
pub fn init_tracing(cfg: &Config) {
    let filter = EnvFilter::try_from_env("RUST_LOG").unwrap_or_else(|_| EnvFilter::new(&cfg.log));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = if cfg.log_json { builder.json().try_init() } else { builder.try_init() };
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
    tracing::info!("shutdown signal received; draining");
}

//! `taskhub`: parse the command line, load the configuration, start logging, build the
//! services, and run the chosen role or sub-command.

use anyhow::{Context, Result};
use clap::Parser;
use std::sync::Arc;
use taskhub_core::auth::{AuthService, KeyRing, TokenSettings};
use taskhub_core::config::{Config, Role};
use taskhub_core::users::UserInput;
use taskhub_core::{Services, store};
use taskhub_http::AppState;
use taskhub_http::cli::{AuditCommand, Cli, Command, UserCommand};

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cfg = Config::load(cli.flags.config.as_deref(), &cli.flags)?;
    taskhub_core::runtime::init_tracing(&cfg);
    let store = store::connect_with(&cfg.database_url, cfg.database_max_connections)
        .await
        .with_context(|| format!("cannot open the database {}", store::redact_url(&cfg.database_url)))?;
    let services = Services::new(store);
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(cfg, services).await,
        Command::Migrate => {
            tracing::info!(database = %store::redact_url(&cfg.database_url), "migrations applied");
            Ok(())
        }
        Command::User(UserCommand::Create { username, password, email, staff }) => {
            let email = email.unwrap_or_else(|| format!("{username}@localhost.invalid"));
            let input = UserInput { username, email, password, display_name: None, is_staff: None };
            let u = services.users.create_local(input, staff).await.map_err(describe)?;
            println!("created user {} (id {}, staff: {})", u.username, u.id, u.is_staff);
            Ok(())
        }
        Command::Audit(AuditCommand::Verify) => match services.projections.verify_audit().await? {
            Ok(rows) => {
                println!("audit chain intact: {rows} rows");
                Ok(())
            }
            Err(b) => anyhow::bail!("audit chain broken at row {}: {}", b.id, b.reason),
        },
        Command::Keys(cmd) => taskhub_http::cli::keys(&cfg, &services, &cmd).await,
        Command::SeedDemo(args) => {
            let started = std::time::Instant::now();
            let r = taskhub_http::seed::seed_demo(&services, &args).await?;
            println!(
                "seeded {} users, {} teams, {} tasks, {} comments in {:.1?} (password of every demo user: {})",
                r.users,
                r.teams,
                r.tasks,
                r.comments,
                started.elapsed(),
                taskhub_http::seed::DEMO_PASSWORD
            );
            Ok(())
        }
    }
}

async fn serve(cfg: Config, services: Services) -> Result<()> {
    if cfg.role == Role::Jobs {
        tracing::info!("job runner started");
        return taskhub_jobs::run_configured(&cfg, services, taskhub_core::runtime::shutdown_signal()).await;
    }
    if cfg.role == Role::Events {
        return taskhub_events::serve(&cfg, services).await;
    }
    if !matches!(cfg.role, Role::All | Role::Http) {
        anyhow::bail!("role {:?} is not available in this build yet; use --role all, http, jobs or events", cfg.role);
    }
    let keys =
        Arc::new(KeyRing::open(&cfg.keys_dir, services.ctx.clock.clone()).context("cannot open the keys directory")?);
    let settings = TokenSettings { issuer: cfg.jwt_issuer.clone(), audience: cfg.jwt_audience.clone() };
    let auth = AuthService::new(services.ctx.clone(), keys, settings, services.users.hasher().clone());
    let mut state = AppState::new(services.clone(), auth, cfg.auth_rate_limit);
    // The embedded server runs the jobs too: a bad job setting stops the start.
    let jobs = match cfg.role {
        Role::All => Some(taskhub_jobs::configure(&cfg, services.clone()).await?),
        _ => None,
    };
    // The jobs view shows the long queue when its storage answers from here.
    state.long_queue = match &jobs {
        Some(runner) => Some(runner.long_queue()),
        None => taskhub_jobs::runner::JobQueue::open(&cfg, taskhub_jobs::QUEUE_LONG)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the long job queue's storage is not reachable; /api/jobs/ shows the mail queue only")
            })
            .ok(),
    };
    let listener =
        tokio::net::TcpListener::bind(cfg.bind).await.with_context(|| format!("cannot listen on {}", cfg.bind))?;
    tracing::info!(address = %listener.local_addr()?, role = ?cfg.role, "taskhub listening on http://{}", listener.local_addr()?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    // The embedded server relays its outbox and runs the consumers in-process.
    let events = if cfg.role == Role::All {
        let bus = taskhub_events::connect_bus(&cfg, &services.ctx).await?;
        let mut rx = stop_rx.clone();
        let rt = taskhub_events::start(&services.ctx, &bus, taskhub_core::projections::all(), true, async move {
            let _ = rx.changed().await;
        });
        state.consumers = rt.stats.clone();
        Some(rt)
    } else {
        None
    };
    let jobs = jobs.map(|runner| {
        let mut rx = stop_rx.clone();
        tokio::spawn(runner.run(async move {
            let _ = rx.changed().await;
        }))
    });
    taskhub_http::run(listener, state, async move {
        taskhub_core::runtime::shutdown_signal().await;
        let _ = stop_tx.send(true);
    })
    .await?;
    if let Some(j) = jobs {
        let _ = j.await;
    }
    if let Some(e) = events {
        e.join().await;
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Spells out validation messages for the terminal.
fn describe(e: taskhub_core::Error) -> anyhow::Error {
    match e {
        taskhub_core::Error::Validation { fields } => {
            let lines: Vec<String> = fields.iter().map(|(f, m)| format!("  {f}: {}", m.join("; "))).collect();
            anyhow::anyhow!("invalid input:\n{}", lines.join("\n"))
        }
        other => other.into(),
    }
}

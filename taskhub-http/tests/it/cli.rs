//! The `taskhub` binary: user creation and the demo seed, on a scratch SQLite database.

use anyhow::Result;
use std::process::Command;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::TaskQuery;
use taskhub_core::{Actor, Services, store};

struct Scratch(std::path::PathBuf);

impl Scratch {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("taskhub-cli-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        Ok(Scratch(dir))
    }

    fn taskhub(&self, args: &[&str]) -> Result<std::process::Output> {
        Ok(Command::new(env!("CARGO_BIN_EXE_taskhub"))
            .current_dir(&self.0)
            .env_remove("RUST_BACKTRACE")
            .env("RUST_LOG", "warn")
            .args(args)
            .output()?)
    }

    fn db_url(&self) -> String {
        format!("sqlite://{}", self.0.join("taskhub.db").display())
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[tokio::test]
async fn user_create_makes_a_staff_user_and_rejects_bad_input() -> Result<()> {
    let s = Scratch::new()?;
    let out = s.taskhub(&["user", "create", "--username", "root", "--password", "a long password", "--staff"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("staff: true"));
    let again = s.taskhub(&["user", "create", "--username", "ROOT", "--password", "a long password"])?;
    assert!(!again.status.success(), "usernames are unique case-insensitively");
    let bad = s.taskhub(&["user", "create", "--username", "x", "--password", "short"])?;
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("password") && err.contains("username"), "{err}");
    let services = Services::new(store::connect(&s.db_url()).await?);
    let root = services.users.find_by_username("root").await?.map(|u| (u.is_staff, u.is_active));
    assert_eq!(root, Some((true, true)));
    Ok(())
}

#[tokio::test]
async fn seed_demo_fills_users_teams_tasks_and_comments() -> Result<()> {
    let s = Scratch::new()?;
    let out = s.taskhub(&["seed-demo", "--tasks", "120", "--users", "20", "--quiet"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("seeded 20 users, 5 teams, 120 tasks"), "{stdout}");
    let services = Services::new(store::connect(&s.db_url()).await?);
    let staff = Actor::staff(1);
    let page = services.tasks.list(&staff, &TaskQuery::default(), &PageRequest::first(200)).await?;
    assert_eq!(page.count, Some(120));
    assert!(page.items.iter().any(|t| !t.tags.is_empty()) && page.items.iter().any(|t| !t.assignees.is_empty()));
    assert!(page.items.iter().any(|t| t.assigned_team.is_some()));
    // Running it again reuses the users and adds tasks.
    let out = s.taskhub(&["seed-demo", "--tasks", "10", "--users", "20", "--quiet"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let page = services.tasks.list(&staff, &TaskQuery::default(), &PageRequest::first(1)).await?;
    assert_eq!(page.count, Some(130));
    Ok(())
}

#[tokio::test]
async fn keys_rotate_and_list_show_the_key_states() -> Result<()> {
    let s = Scratch::new()?;
    let out = s.taskhub(&["keys", "list"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed = String::from_utf8_lossy(&out.stdout).to_string();
    assert_eq!(listed.lines().filter(|l| l.contains("active")).count(), 1, "{listed}");
    let out = s.taskhub(&["keys", "rotate"])?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains("new signing key"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("  retiring  ")).count(), 1, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("  active  ")).count(), 1, "{text}");
    let pems = std::fs::read_dir(s.0.join("keys"))?
        .filter(|e| e.as_ref().is_ok_and(|e| e.path().extension().is_some_and(|x| x == "pem")))
        .count();
    assert_eq!(pems, 2);
    Ok(())
}

#[tokio::test]
async fn role_jobs_runs_the_maintenance_jobs_and_stops_cleanly_on_sigterm() -> Result<()> {
    use std::io::{BufRead, BufReader};
    let s = Scratch::new()?;
    let mut child = Command::new(env!("CARGO_BIN_EXE_taskhub"))
        .current_dir(&s.0)
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .args(["--role", "jobs"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    // The periodic jobs run at start (and, past the summary time, the daily summary too).
    let jobs = ["idempotency_purge", "token_purge", "overdue_scan", "archive_cleanup"];
    let mut seen = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line?;
        if line.contains("job done") {
            seen.push(line.clone());
        }
        if jobs.iter().all(|j| seen.iter().any(|l| l.contains(&format!("job=\"{j}\"")))) || seen.len() >= 10 {
            break;
        }
    }
    for job in jobs {
        assert!(seen.iter().any(|l| l.contains(job)), "{job} ran: {seen:?}");
    }
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    assert!(status.success());
    assert!(child.wait()?.success(), "a clean exit on SIGTERM");
    Ok(())
}

#[tokio::test]
async fn audit_verify_passes_on_an_intact_chain_and_names_a_tampered_row() -> Result<()> {
    use std::sync::Arc;
    use std::time::Duration;
    use taskhub_core::events::consumer::ConsumerRunner;
    use taskhub_core::events::{MemoryBus, MemorySource, Relay};
    let s = Scratch::new()?;
    let services = Services::new(store::connect(&s.db_url()).await?);
    for name in ["ann", "ben", "cat"] {
        let input = taskhub_core::users::UserInput {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: "correct horse battery".into(),
            ..Default::default()
        };
        services.users.create_local(input, false).await?;
    }
    // Relay the outbox and let the audit-log consumer build its chain.
    let bus = Arc::new(MemoryBus::new());
    let relay = Relay::new(services.ctx.clone(), bus.clone());
    while relay.run_once().await? > 0 {}
    relay.release().await?;
    let source = Arc::new(MemorySource::new(services.ctx.clone(), bus.wake_handle()));
    let runner = ConsumerRunner::new(services.ctx.clone(), source, Arc::new(taskhub_core::projections::AuditLog));
    let mut sub = runner.subscribe().await?;
    while !runner.run_once(sub.as_mut(), Duration::from_millis(50)).await?.is_empty() {}

    let ok = s.taskhub(&["audit", "verify"])?;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("audit chain intact: 3 rows"));

    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&s.db_url()).await?;
    sqlx::query("UPDATE audit_log SET event_type = 'user.deactivated' WHERE id = 2").execute(&mut c).await?;
    let bad = s.taskhub(&["audit", "verify"])?;
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success(), "a tampered chain must fail");
    assert!(err.contains("audit chain broken at row 2"), "{err}");
    Ok(())
}

/// `SELECT COUNT(*) …` on a scratch database.
async fn count(url: &str, sql: &str) -> Result<i64> {
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(url).await?;
    Ok(sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned())).fetch_one(&mut c).await?)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn role_events_killed_with_sigkill_resumes_without_loss_or_duplicate_effects() -> Result<()> {
    use std::time::{Duration, Instant};
    let s = Scratch::new()?;
    let url = s.db_url();
    let services = Services::new(store::connect(&url).await?);
    let input = taskhub_core::users::UserInput {
        username: "ann".into(),
        email: "ann@example.com".into(),
        password: "correct horse battery".into(),
        ..Default::default()
    };
    let ann = Actor::user(services.users.create_local(input, false).await?.id);
    const TASKS: i64 = 300;
    for i in 0..TASKS {
        let t =
            services.tasks.create(&ann, serde_json::from_value(serde_json::json!({"title": format!("t{i}")}))?).await?;
        services.comments.add(&ann, t.id, "c").await?;
    }
    let per_topic = |t: &str| format!("SELECT COUNT(*) FROM outbox WHERE topic = '{t}'");
    let (task_ev, user_ev) =
        (count(&url, &per_topic("task-events")).await?, count(&url, &per_topic("user-activities")).await?);
    // activity (both), search (tasks), audit (users), notifications (tasks), analytics (tasks).
    let expected = (task_ev + user_ev) + task_ev + user_ev + task_ev + task_ev;
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_taskhub"))
            .current_dir(&s.0)
            .env("RUST_LOG", "warn")
            .args(["--role", "events", "--bind", "127.0.0.1:0"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    };
    let processed = || count(&url, "SELECT COUNT(*) FROM consumer_processed");
    let mut child = spawn()?;
    let started = Instant::now();
    while processed().await? < expected / 4 {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(60), "the consumers never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    child.kill()?; // SIGKILL, mid-batch
    child.wait()?;
    let at_kill = processed().await?;
    let mut child = spawn()?;
    while processed().await? < expected {
        anyhow::ensure!(started.elapsed() < Duration::from_secs(120), "the restarted consumers never finished");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status()?;
    assert!(status.success());
    assert!(child.wait()?.success(), "a clean exit on SIGTERM");
    let done = processed().await?;
    let counter = |m: &str| {
        format!("SELECT COALESCE(SUM(value), 0) FROM analytics_daily WHERE metric = '{m}' AND dimension = ''")
    };
    let created = count(&url, &counter("created")).await?;
    let comments = count(&url, &counter("comments")).await?;
    let docs = count(&url, "SELECT COUNT(*) FROM task_search").await?;
    let feed = count(&url, "SELECT COUNT(*) FROM activity_feed").await?;
    println!(
        "kill -9 of --role events: events produced {}, effects expected {expected}, applied before the kill {at_kill}, applied in all {done}, effects lost {}, duplicate effects {}",
        task_ev + user_ev,
        expected - done.min(expected),
        (created - TASKS).max(0) + (comments - TASKS).max(0)
    );
    assert_eq!(done, expected, "every event applied once by every consumer");
    assert_eq!((created, comments, docs), (TASKS, TASKS, TASKS), "no counter counted twice, every task indexed");
    assert_eq!(feed, task_ev + user_ev, "one feed row per event for its only user");
    let ok = s.taskhub(&["audit", "verify"])?;
    assert!(ok.status.success(), "{}", String::from_utf8_lossy(&ok.stderr));
    Ok(())
}

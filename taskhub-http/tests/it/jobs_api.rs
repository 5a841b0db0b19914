//! `/api/jobs/`: the queues by state, the latest failures with their errors, the retry of a dead
//! job — staff only.

use crate::app::TestApp;
use anyhow::Result;
use axum::http::StatusCode;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use taskhub_jobs::mail::{MailSender, Mailer, OutgoingMail};

struct Down;

#[async_trait::async_trait]
impl Mailer for Down {
    async fn send(&self, _m: &OutgoingMail) -> Result<(), String> {
        Err("554 relay denied".into())
    }
}

/// A `long` queue on SQLite job storage of its own.
async fn long_queue() -> Result<taskhub_jobs::runner::JobQueue> {
    let dir = std::env::temp_dir().join(format!("taskhub-jobs-api-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let cfg = taskhub_core::config::Config {
        database_url: format!("sqlite://{}", dir.join("main.db").display()),
        ..Default::default()
    };
    taskhub_jobs::runner::JobQueue::open(&cfg, taskhub_jobs::QUEUE_LONG).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_see_the_queue_its_failures_and_retry_a_dead_job() -> Result<()> {
    let mut app = TestApp::new().await?;
    // The long queue with one job waiting.
    let mut long = long_queue().await?;
    long.push(taskhub_jobs::runner::Job::Noop).await?;
    app.state.long_queue = Some(long);
    app.router = taskhub_http::router(app.state.clone());
    let (_, alice) = app.user("alice").await?;
    let (bob, _) = app.user("bob").await?;
    let (_, root) = app.staff("root").await?;
    let t = app.post("/api/tasks/", Some(&alice), json!({"title": "t"})).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    app.post(&format!("/api/tasks/{t}/assign/"), Some(&alice), json!({"users": [bob]})).await?;
    // The relay and the notifications consumer queue bob's mail.
    let ctx = app.state.services.ctx.clone();
    let bus = Arc::new(taskhub_core::events::MemoryBus::new());
    let relay = taskhub_core::events::Relay::new(ctx.clone(), bus.clone());
    while relay.run_once().await? > 0 {}
    let runner = taskhub_core::events::consumer::ConsumerRunner::new(
        ctx.clone(),
        Arc::new(taskhub_core::events::MemorySource::new(ctx, bus.wake_handle())),
        Arc::new(taskhub_core::projections::Notifications::default()),
    );
    let mut sub = runner.subscribe().await?;
    while !runner.run_once(sub.as_mut(), Duration::from_millis(50)).await?.is_empty() {}

    assert_eq!(app.get("/api/jobs/", &alice).await?.status, StatusCode::FORBIDDEN);
    let r = app.get("/api/jobs/", &root).await?;
    assert_eq!(r.status, StatusCode::OK);
    let q = &r.body["data"]["queues"][0];
    assert_eq!(q["name"], "interactive");
    assert_eq!(q["counts"], json!({"pending": 1, "running": 0, "done": 0, "failed": 0, "dead": 0}));
    let long = &r.body["data"]["queues"][1];
    assert_eq!(long["name"], "long");
    assert_eq!(long["counts"], json!({"pending": 1, "running": 0, "done": 0, "failed": 0, "dead": 0}));
    assert!(long["jobs"].as_array().is_some_and(|j| j.contains(&json!("overdue_scan"))));
    let req = axum::http::Request::builder().uri("/metrics").body(axum::body::Body::empty())?;
    let res = tower::ServiceExt::oneshot(app.router.clone(), req).await?;
    let text =
        String::from_utf8_lossy(&http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes()).into_owned();
    assert!(text.contains("taskhub_jobs{queue=\"long\",state=\"pending\"} 1"), "long queue in /metrics");
    assert!(text.contains("taskhub_mail_jobs{queue=\"interactive\",state=\"pending\"} 1"));

    // The mail server refuses: retried with back-off, then dead with the error kept.
    let sender = MailSender::new(app.state.services.clone(), Arc::new(Down), "http://x");
    sender.run_once().await?;
    let r = app.get("/api/jobs/", &root).await?;
    assert_eq!(r.body["data"]["queues"][0]["counts"]["failed"], 1);
    for _ in 0..5 {
        app.clock.advance(chrono::Duration::hours(1));
        sender.run_once().await?;
    }
    // Hours went by: fresh tokens.
    let (root, alice) = (app.login("root").await?.0, app.login("alice").await?.0);
    let r = app.get("/api/jobs/", &root).await?;
    assert_eq!(
        r.body["data"]["queues"][0]["counts"],
        json!({"pending": 0, "running": 0, "done": 0, "failed": 0, "dead": 1})
    );
    let f = &r.body["data"]["recent_failures"][0];
    assert_eq!(
        (f["job"].as_str(), f["error"].as_str(), f["dead"].as_bool(), f["attempts"].as_i64()),
        (Some("task_notification"), Some("554 relay denied"), Some(true), Some(5))
    );
    assert_eq!(f["queue"], "interactive");
    let id = f["id"].as_str().unwrap_or_default().to_owned();
    // Retry: staff only, dead jobs only.
    assert_eq!(
        app.post(&format!("/api/jobs/{id}/retry/"), Some(&alice), json!({})).await?.status,
        StatusCode::FORBIDDEN
    );
    let r = app.post(&format!("/api/jobs/{id}/retry/"), Some(&root), json!({})).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(
        app.post(&format!("/api/jobs/{id}/retry/"), Some(&root), json!({})).await?.status,
        StatusCode::NOT_FOUND
    );
    let r = app.get("/api/jobs/", &root).await?;
    assert_eq!(r.body["data"]["queues"][0]["counts"]["dead"], 0);
    assert_eq!(r.body["data"]["queues"][0]["counts"]["failed"], 1, "back in the queue, its last error kept");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_job_failing_every_try_is_dead_with_its_error_and_staff_push_it_again() -> Result<()> {
    use taskhub_jobs::runner::{Job, JobContext};
    let mut app = TestApp::new().await?;
    let mut long = long_queue().await?;
    app.state.long_queue = Some(long.clone());
    app.router = taskhub_http::router(app.state.clone());
    let (_, alice) = app.user("alice").await?;
    let (bob, bob_token) = app.user("bob").await?;
    let (_, root) = app.staff("root").await?;
    app.post("/api/tasks/", Some(&alice), json!({"title": "t", "assigned_to": [bob]})).await?;
    // The summaries' table is gone: bob's summary cannot be claimed, the job fails every try.
    use sqlx::Connection;
    let mut db = sqlx::SqliteConnection::connect(&app.db_url()).await?;
    sqlx::query("ALTER TABLE daily_summaries RENAME TO daily_summaries_away").execute(&mut db).await?;
    let day = chrono::Utc::now().date_naive();
    long.push(Job::DailySummary { day }).await?;
    let (stop, mut stopped) = tokio::sync::watch::channel(false);
    let worker = {
        let (q, cx) = (long.clone(), JobContext::new(app.state.services.clone()));
        tokio::spawn(async move {
            q.work("api-test-worker".into(), cx, 1, async move {
                let _ = stopped.wait_for(|s| *s).await;
            })
            .await
        })
    };
    let mut failure = serde_json::Value::Null;
    for _ in 0..200 {
        let r = app.get("/api/jobs/", &root).await?;
        let f = &r.body["data"]["recent_failures"][0];
        if f["dead"] == true {
            failure = f.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(failure["queue"], "long", "{failure}");
    assert_eq!(failure["job"], "daily_summary");
    assert_eq!(failure["attempts"], 5, "tried up to the limit: {failure}");
    assert!(failure["error"].as_str().is_some_and(|e| e.contains("daily_summaries")), "{failure}");
    let id = failure["id"].as_str().unwrap_or_default().to_owned();
    let long_counts = async || -> Result<serde_json::Value> {
        let r = app.get("/api/jobs/", &root).await?;
        Ok(r.body["data"]["queues"][1]["counts"].clone())
    };
    let c = long_counts().await?;
    assert_eq!((c["dead"].as_i64(), c["failed"].as_i64()), (Some(1), Some(0)), "{c}");
    // Fixed; pushed again by staff only, once.
    sqlx::query("ALTER TABLE daily_summaries_away RENAME TO daily_summaries").execute(&mut db).await?;
    let retry = format!("/api/jobs/{id}/retry/");
    assert_eq!(app.post(&retry, Some(&bob_token), json!({})).await?.status, StatusCode::FORBIDDEN);
    let r = app.post(&retry, Some(&root), json!({})).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.post(&retry, Some(&root), json!({})).await?.status, StatusCode::NOT_FOUND, "retried once");
    // The job ran again and claimed bob's summary (its mail queued).
    let mut claimed = 0;
    for _ in 0..200 {
        claimed = sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM daily_summaries").fetch_one(&mut db).await?;
        if claimed > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(claimed, 1, "the retried job claimed bob's summary");
    let r = app.get("/api/jobs/", &root).await?;
    assert_eq!(r.body["data"]["recent_failures"], json!([]), "the retried failure left the list");
    let mut c = long_counts().await?;
    for _ in 0..100 {
        if c["done"].as_i64().is_some_and(|d| d >= 1) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        c = long_counts().await?;
    }
    assert_eq!((c["dead"].as_i64(), c["failed"].as_i64()), (Some(0), Some(0)), "{c}");
    assert!(c["done"].as_i64().is_some_and(|d| d >= 1), "the retried job is recorded done: {c}");
    let _ = stop.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
    Ok(())
}

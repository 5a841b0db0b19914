//! The read-back routes of the consumers, with the relay and the five consumers running
//! in-process as in the embedded server: feed, search, audit, notifications, and their metrics.

use crate::app::TestApp;
use anyhow::{Result, bail};
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

/// Starts the relay and the consumers on the in-process bus, as `--role all` does.
async fn with_consumers() -> Result<(TestApp, tokio::sync::oneshot::Sender<()>)> {
    let mut app = TestApp::new().await?;
    let cfg = taskhub_core::config::Config::default();
    let ctx = app.state.services.ctx.clone();
    let bus = taskhub_events::connect_bus(&cfg, &ctx).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let rt = taskhub_events::start(&ctx, &bus, taskhub_core::projections::all(), true, async move {
        let _ = stopped.await;
    });
    app.state.consumers = rt.stats.clone();
    app.router = taskhub_http::router(app.state.clone());
    Ok((app, stop))
}

/// GETs `uri` until `ready` holds for its data (the consumers work asynchronously).
async fn eventually(app: &TestApp, uri: &str, token: &str, ready: impl Fn(&Value) -> bool) -> Result<Value> {
    for _ in 0..200 {
        let r = app.get(uri, token).await?;
        if r.status == StatusCode::OK && ready(&r.body["data"]) {
            return Ok(r.body);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("{uri} never got ready")
}

fn types(data: &Value) -> Vec<String> {
    data.as_array()
        .map(|a| a.iter().filter_map(|x| x["type"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumers_feed_the_read_back_routes() -> Result<()> {
    let (app, _stop) = with_consumers().await?;
    let (_, alice) = app.user("alice").await?;
    let (bob_id, bob) = app.user("bob").await?;
    let (_, carol) = app.user("carol").await?;
    let (_, root) = app.staff("root").await?;
    let t = app
        .post("/api/tasks/", Some(&alice), json!({"title": "Login page broken", "description": "users cannot sign in"}))
        .await?;
    assert_eq!(t.status, StatusCode::CREATED);
    let id = t.body["data"]["id"].as_i64().unwrap_or_default();
    let r = app.post(&format!("/api/tasks/{id}/assign/"), Some(&alice), json!({"users": [bob_id]})).await?;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app.post(&format!("/api/tasks/{id}/comments/"), Some(&bob), json!({"body": "looking"})).await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    // Notifications: bob was assigned; alice hears of bob's comment; nobody of their own action.
    let bob_n = eventually(&app, "/api/notifications/", &bob, |d| d.as_array().is_some_and(|a| !a.is_empty())).await?;
    let n = &bob_n["data"][0];
    assert_eq!((n["kind"].as_str(), n["task_id"].as_i64()), (Some("assigned"), Some(id)));
    for k in ["id", "kind", "task_id", "event_id", "message", "created_at", "read_at"] {
        assert!(n.get(k).is_some(), "notification field {k}: {n}");
    }
    assert_eq!(bob_n["data"].as_array().map(Vec::len), Some(1), "not of his own comment");
    let alice_n =
        eventually(&app, "/api/notifications/", &alice, |d| d.as_array().is_some_and(|a| !a.is_empty())).await?;
    assert_eq!(alice_n["data"][0]["kind"], "comment");
    // Read: once, by its owner only; unread filter.
    let nid = n["id"].as_i64().unwrap_or_default();
    let r = app.post(&format!("/api/notifications/{nid}/read/"), Some(&carol), json!({})).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "not hers");
    let r = app.post(&format!("/api/notifications/{nid}/read/"), Some(&bob), json!({})).await?;
    assert_eq!(r.status, StatusCode::OK);
    let read_at = r.body["data"]["read_at"].clone();
    assert!(read_at.is_string());
    let again = app.post(&format!("/api/notifications/{nid}/read/"), Some(&bob), json!({})).await?;
    assert_eq!(again.body["data"]["read_at"], read_at, "the first read time stays");
    let unread = app.get("/api/notifications/?unread=true", &bob).await?;
    assert_eq!(unread.body["data"], json!([]));
    assert_eq!(app.get("/api/notifications/?unread=maybe", &bob).await?.status, StatusCode::BAD_REQUEST);

    // Search: ranked hits of visible live tasks; `q` is required and bounded.
    let hits = eventually(&app, "/api/search/?q=login", &bob, |d| d.as_array().is_some_and(|a| !a.is_empty())).await?;
    let h = &hits["data"][0];
    assert_eq!(h["task_id"].as_i64(), Some(id));
    assert!(h["rank"].as_f64().is_some() && h["snippet"].is_string() && h["title"] == "Login page broken");
    assert_eq!(app.get("/api/search/?q=login", &carol).await?.body["data"], json!([]), "not visible to carol");
    for bad in ["/api/search/", "/api/search/?q=", &format!("/api/search/?q={}", "x".repeat(201))] {
        let r = app.get(bad, &bob).await?;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.body["error"]["code"], "bad_request");
    }

    // Activity: bob's feed has his assignment, newest first, in the documented shape.
    let feed = eventually(&app, "/api/activity/", &bob, |d| types(d).contains(&"comment.added".to_owned())).await?;
    let got = types(&feed["data"]);
    assert!(got.contains(&"task.assigned".to_owned()) && got.contains(&"user.registered".to_owned()), "{got:?}");
    let row = &feed["data"][0];
    for k in ["id", "event_id", "type", "actor_id", "entity", "summary", "occurred_at"] {
        assert!(row.get(k).is_some(), "activity field {k}: {row}");
    }
    assert!(!types(&app.get("/api/activity/", &carol).await?.body["data"]).contains(&"task.created".to_owned()));

    // Audit: staff only, oldest first, chained hashes.
    assert_eq!(app.get("/api/audit/", &alice).await?.status, StatusCode::FORBIDDEN);
    let audit = eventually(&app, "/api/audit/", &root, |d| d.as_array().is_some_and(|a| a.len() >= 4)).await?;
    let rows = audit["data"].as_array().cloned().unwrap_or_default();
    assert_eq!(rows[0]["prev_hash"], "0".repeat(64));
    for w in rows.windows(2) {
        assert_eq!(w[1]["prev_hash"], w[0]["hash"]);
    }

    // Metrics: each consumer's lag and counters.
    // /metrics is text, not JSON: read it raw.
    let req = axum::http::Request::builder().uri("/metrics").body(axum::body::Body::empty())?;
    let res = tower::ServiceExt::oneshot(app.router.clone(), req).await?;
    let bytes = http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    for c in ["activity-feed", "search-index", "audit-log", "notifications", "analytics-aggregator"] {
        assert!(text.contains(&format!("taskhub_consumer_lag{{consumer=\"{c}\"}}")), "lag of {c} in /metrics");
    }
    assert!(text.contains("taskhub_consumer_applied_total{consumer=\"notifications\"}"));
    // The mails the notifications consumer queued.
    assert!(text.contains("taskhub_mail_jobs{queue=\"interactive\",state=\"pending\"}"), "mail queue in /metrics");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_events_role_serves_health_and_consumer_metrics() -> Result<()> {
    let (app, _stop) = with_consumers().await?;
    app.user("alice").await?;
    let ops = taskhub_events::ops_router(app.state.services.clone(), app.state.consumers.clone());
    let get = |uri: &'static str| {
        let ops = ops.clone();
        async move {
            let req = axum::http::Request::builder().uri(uri).body(axum::body::Body::empty())?;
            let res = tower::ServiceExt::oneshot(ops, req).await?;
            let status = res.status();
            let bytes = http_body_util::BodyExt::collect(res.into_body()).await?.to_bytes();
            Ok::<_, anyhow::Error>((status, String::from_utf8_lossy(&bytes).into_owned()))
        }
    };
    let (status, body) = get("/healthz").await?;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("\"ok\""), "{body}");
    // The audit log applies alice's registration and login; the counter shows them.
    for _ in 0..200 {
        let (_, text) = get("/metrics").await?;
        let applied = text
            .lines()
            .find_map(|l| l.strip_prefix("taskhub_consumer_applied_total{consumer=\"audit-log\"} "))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        if applied >= 2 {
            assert!(text.contains("taskhub_consumer_lag{consumer=\"audit-log\"}"));
            assert!(text.contains("taskhub_db_pool_connections{state=\"open\"}"));
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("the audit-log counter never showed the applied event")
}

//! Every event the system emits validates against its published JSON Schema, and every
//! published schema is exercised by a real event.

use crate::app::TestApp;
use anyhow::{Context, Result};
use axum::http::Method;
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

fn schemas() -> Result<BTreeMap<String, Value>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../taskhub-core/events/schemas");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_owned();
        if let Some(event_type) = name.strip_suffix(".v1.json") {
            out.insert(event_type.to_owned(), serde_json::from_str(&std::fs::read_to_string(&path)?)?);
        }
    }
    Ok(out)
}

#[tokio::test]
async fn every_emitted_event_matches_its_json_schema() -> Result<()> {
    let app = TestApp::new().await?;
    // A scenario that emits every event type of this build.
    let (_, a) = app.user("alice").await?;
    let (bob, b) = app.user("bob").await?;
    let (_, staff) = app.staff("root").await?;
    app.post("/api/auth/login/", None, json!({"username": "alice", "password": "wrong password"})).await?;
    app.post("/api/auth/login/", None, json!({"username": "nobody", "password": "wrong password"})).await?;
    app.call(Method::PATCH, "/api/users/me/", Some(&b), Some(json!({"first_name": "Bob"}))).await?;
    let team =
        app.post("/api/teams/", Some(&a), json!({"name": "T"})).await?.body["data"]["id"].as_i64().unwrap_or_default();
    app.call(Method::PATCH, &format!("/api/teams/{team}/"), Some(&a), Some(json!({"name": "T2"}))).await?;
    app.post(&format!("/api/teams/{team}/add_members/"), Some(&a), json!({"user_ids": [bob]})).await?;
    app.post(&format!("/api/teams/{team}/leave/"), Some(&b), json!({})).await?;
    app.post(&format!("/api/teams/{team}/add_members/"), Some(&a), json!({"user_ids": [bob]})).await?;
    app.post(&format!("/api/teams/{team}/remove_member/"), Some(&a), json!({"user_id": bob})).await?;
    let task = app
        .post("/api/tasks/", Some(&a), json!({"title": "t", "tags": ["x"], "due_date": "2026-01-01T00:00:00Z", "estimated_hours": 1.5, "metadata": {"k": 1}}))
        .await?
        .body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    app.call(Method::PATCH, &format!("/api/tasks/{task}/"), Some(&a), Some(json!({"title": "t2"}))).await?;
    app.call(Method::PATCH, &format!("/api/tasks/{task}/"), Some(&a), Some(json!({"status": "done"}))).await?;
    app.post(&format!("/api/tasks/{task}/assign/"), Some(&a), json!({"users": [bob], "role": "owner"})).await?;
    app.post(&format!("/api/tasks/{task}/unassign/"), Some(&a), json!({"users": [bob]})).await?;
    let c =
        app.post(&format!("/api/tasks/{task}/comments/"), Some(&a), json!({"body": "hi"})).await?.body["data"]["id"]
            .as_i64()
            .unwrap_or_default();
    app.call(Method::PATCH, &format!("/api/tasks/{task}/comments/{c}/"), Some(&a), Some(json!({"body": "hello"})))
        .await?;
    app.call(Method::DELETE, &format!("/api/tasks/{task}/comments/{c}/"), Some(&a), None).await?;
    app.post(&format!("/api/tasks/{task}/archive/"), Some(&a), json!({})).await?;
    app.post(&format!("/api/tasks/{task}/unarchive/"), Some(&a), json!({})).await?;
    app.call(Method::DELETE, &format!("/api/teams/{team}/"), Some(&a), None).await?;
    app.post("/api/auth/logout/", Some(&a), json!({})).await?;
    app.call(Method::DELETE, &format!("/api/users/{bob}/"), Some(&staff), None).await?;
    let cfg = taskhub_core::config::Config { keys_dir: app.keys_dir.clone(), ..Default::default() };
    taskhub_http::cli::keys(&cfg, &app.state.services, &taskhub_http::cli::KeysCommand::Rotate).await?;

    // The maintenance jobs: a task becomes overdue; a long-archived one is purged.
    let a = app.login("alice").await?.0;
    let late = app
        .post(
            "/api/tasks/",
            Some(&a),
            json!({"title": "late", "due_date": (chrono::Utc::now() + chrono::Duration::hours(1)).to_rfc3339()}),
        )
        .await?
        .body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    let gone = app.post("/api/tasks/", Some(&a), json!({"title": "gone"})).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    app.post(&format!("/api/tasks/{gone}/archive/"), Some(&a), json!({})).await?;
    app.clock.advance(chrono::Duration::days(31));
    assert_eq!(app.state.services.maintenance.overdue_scan().await?, vec![late]);
    assert_eq!(app.state.services.maintenance.archive_cleanup(chrono::Duration::days(30)).await?, 1);
    // A message no consumer can read is dead-lettered and announced.
    let ctx = app.state.services.ctx.clone();
    let source = std::sync::Arc::new(taskhub_core::events::MemorySource::new(ctx.clone(), std::sync::Arc::default()));
    let runner = taskhub_core::events::consumer::ConsumerRunner::new(
        ctx,
        source,
        std::sync::Arc::new(taskhub_core::projections::AuditLog),
    );
    let poison = taskhub_core::events::Delivery {
        topic: "user-activities".into(),
        key: "user:1".into(),
        payload: b"not an event".to_vec(),
        position: taskhub_core::events::Position::Seq(0),
    };
    runner.handle(&poison).await?;

    let schemas = schemas()?;
    let validators: BTreeMap<&String, jsonschema::Validator> = schemas
        .iter()
        .map(|(t, s)| {
            Ok((
                t,
                jsonschema::options().should_validate_formats(true).build(s).with_context(|| format!("schema {t}"))?,
            ))
        })
        .collect::<Result<_>>()?;
    let rows = app.state.services.store().read().await?.list_outbox(0, 10_000).await?;
    let mut seen = BTreeSet::new();
    for row in &rows {
        let event = serde_json::to_value(&row.event)?;
        let t = row.event.event_type.clone();
        let v = validators.get(&t).with_context(|| format!("no schema for emitted type {t}"))?;
        let errors: Vec<String> = v.iter_errors(&event).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(errors.is_empty(), "{t} does not match its schema: {errors:?}\n{event}");
        seen.insert(t);
    }
    let published: BTreeSet<String> = schemas.keys().cloned().collect();
    assert_eq!(seen, published, "every schema is exercised by a real event");
    // The schemas are strict: an event with a password in it would fail.
    let mut leaked = serde_json::to_value(
        &rows.iter().find(|r| r.event.event_type == "user.login_failed").context("login_failed")?.event,
    )?;
    leaked["data"]["password"] = json!("hunter2");
    assert!(!validators[&"user.login_failed".to_owned()].is_valid(&leaked));
    println!("event schemas: {} types, {} events validated", published.len(), rows.len());
    Ok(())
}

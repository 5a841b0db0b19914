//! One transaction per command: history rows, outbox events, rollback, versions, idempotency.

use crate::common::{Engine, Fx, input};
use anyhow::Result;
use serde_json::json;
use taskhub_core::Error;
use taskhub_core::events::OutboxRecord;
use taskhub_core::history::HistoryAction;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::{AssignInput, UnassignInput, WriteMode};

async fn outbox(fx: &Fx) -> Result<Vec<OutboxRecord>> {
    let mut tx = fx.store.read().await?;
    Ok(tx.list_outbox(0, 10_000).await?)
}

async fn actions(fx: &Fx, actor: &taskhub_core::Actor, task: i64) -> Result<Vec<HistoryAction>> {
    let page = fx.svc.tasks.history(actor, task, &PageRequest::first(200)).await?;
    Ok(page.items.iter().map(|h| h.action).collect())
}

pub async fn every_action_writes_exactly_one_history_row_and_event(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let before = outbox(&fx).await?.len();
    let t = fx.svc.tasks.create(&a, input(json!({"title": "t"}))?).await?;
    fx.svc
        .tasks
        .update(&a, t.id, input(json!({"status": "in_progress", "title": "t2"}))?, WriteMode::Patch, None)
        .await?;
    fx.svc.tasks.update(&a, t.id, input(json!({"title": "t3"}))?, WriteMode::Patch, None).await?;
    fx.svc.tasks.assign(&a, t.id, AssignInput { users: vec![b.user_id], role: None }, None).await?;
    fx.svc.tasks.unassign(&a, t.id, UnassignInput { users: vec![b.user_id] }, None).await?;
    let c = fx.svc.comments.add(&a, t.id, "c").await?;
    fx.svc.comments.edit(&a, t.id, c.id, "c2", None).await?;
    fx.svc.comments.delete(&a, t.id, c.id, None).await?;
    fx.svc.tasks.archive(&a, t.id, None).await?;
    fx.svc.tasks.unarchive(&a, t.id, None).await?;
    use HistoryAction::*;
    let expected = vec![
        Unarchived,
        Archived,
        CommentDeleted,
        CommentEdited,
        CommentAdded,
        Unassigned,
        Assigned,
        Updated,
        StatusChanged,
        Created,
    ];
    assert_eq!(actions(&fx, &a, t.id).await?, expected, "newest first, one row per action");
    let events: Vec<String> = outbox(&fx).await?.into_iter().skip(before).map(|r| r.event.event_type).collect();
    let mut want: Vec<String> = expected.iter().rev().map(|a| format!("task.{}", a.as_str())).collect();
    want.iter_mut().for_each(|e| {
        if let Some(rest) = e.strip_prefix("task.comment_") {
            *e = format!("comment.{rest}");
        }
    });
    assert_eq!(events, want, "one event per action, in commit order");
    let page = fx.svc.tasks.history(&a, t.id, &PageRequest::first(200)).await?;
    let status_row = page.items.iter().find(|h| h.action == StatusChanged).map(|h| h.changes.clone());
    assert_eq!(
        status_row,
        Some(json!({"status": {"from": "todo", "to": "in_progress"}, "title": {"from": "t", "to": "t2"}}))
    );
    let assigned = page.items.iter().find(|h| h.action == Assigned).map(|h| h.changes.clone());
    assert_eq!(
        assigned,
        Some(json!({"assignees": {"from": [], "to": [{"user_id": b.user_id, "role": "collaborator"}]}}))
    );
    Ok(())
}

pub async fn a_request_that_changes_nothing_writes_nothing(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let t = fx.svc.tasks.create(&a, input(json!({"title": "same", "tags": ["x"]}))?).await?;
    let rows = fx.db.count("task_history").await?;
    let events = fx.db.count("outbox").await?;
    let same = fx
        .svc
        .tasks
        .update(&a, t.id, input(json!({"title": " same ", "tags": ["X"]}))?, WriteMode::Patch, None)
        .await?;
    assert_eq!(same.version, t.version);
    fx.svc.tasks.unassign(&a, t.id, UnassignInput { users: vec![a.user_id] }, None).await?;
    assert_eq!((fx.db.count("task_history").await?, fx.db.count("outbox").await?), (rows, events));
    Ok(())
}

pub async fn outbox_envelopes_follow_the_contract(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let t = fx.svc.tasks.create(&a, input(json!({"title": "t"}))?).await?;
    let c = fx.svc.comments.add(&a, t.id, "hi").await?;
    let rows = outbox(&fx).await?;
    let reg = rows.first().ok_or_else(|| anyhow::anyhow!("no user.registered event"))?;
    assert_eq!(
        (reg.event.event_type.as_str(), reg.topic.as_str(), reg.key.clone()),
        ("user.registered", "user-activities", format!("user:{}", a.user_id))
    );
    assert!(
        reg.event.data.to_string().contains("alice@example.com") && !reg.event.data.to_string().contains("horse"),
        "no password in events"
    );
    let created =
        rows.iter().find(|r| r.event.event_type == "task.created").ok_or_else(|| anyhow::anyhow!("no task.created"))?;
    assert_eq!((created.topic.as_str(), created.key.clone()), ("task-events", format!("task:{}", t.id)));
    let env = serde_json::to_value(&created.event)?;
    assert_eq!(env["version"], json!(1));
    assert_eq!(env["type"], json!("task.created"));
    assert_eq!(env["actor_id"], json!(a.user_id));
    assert_eq!(env["entity"], json!({"kind": "task", "id": t.id}));
    assert_eq!(env["data"]["task"]["title"], json!("t"));
    assert_eq!(created.event.id.get_version_num(), 7, "UUIDv7 ids");
    let commented = rows
        .iter()
        .find(|r| r.event.event_type == "comment.added")
        .ok_or_else(|| anyhow::anyhow!("no comment.added"))?;
    assert_eq!(commented.key, format!("task:{}", t.id), "a task's comments share its partition key");
    assert_eq!(commented.event.data["changes"]["comment"]["to"]["id"], json!(c.id));
    let ids: std::collections::HashSet<_> = rows.iter().map(|r| r.event.id).collect();
    assert_eq!(ids.len(), rows.len(), "event ids are unique");
    Ok(())
}

pub async fn a_failure_half_way_rolls_everything_back(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let tables = ["tasks", "task_assignees", "task_tags", "tags", "task_history", "outbox"];
    let mut before = Vec::new();
    for t in tables {
        before.push(fx.db.count(t).await?);
    }
    // The outbox insert, the last write of the command, fails inside the database.
    let trigger = match fx.db.engine {
        Engine::Sqlite => "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected failure'); END;".to_owned(),
        Engine::Postgres => "CREATE FUNCTION fail_outbox() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$;\
             CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox FOR EACH ROW EXECUTE FUNCTION fail_outbox();".to_owned(),
    };
    fx.db.exec(&trigger).await?;
    let r = fx
        .svc
        .tasks
        .create(&a, input(json!({"title": "doomed", "tags": ["brand-new"], "assigned_to": [b.user_id]}))?)
        .await;
    assert!(matches!(r, Err(Error::Internal(_))), "{r:?}");
    let mut after = Vec::new();
    for t in tables {
        after.push(fx.db.count(t).await?);
    }
    assert_eq!(after, before, "task, assignees, tags, history and outbox all rolled back");
    Ok(())
}

pub async fn stale_versions_are_rejected(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let t = fx.svc.tasks.create(&a, input(json!({"title": "v1"}))?).await?;
    let t2 = fx.svc.tasks.update(&a, t.id, input(json!({"title": "v2"}))?, WriteMode::Patch, Some(1)).await?;
    assert_eq!(t2.version, 2);
    let stale = fx.svc.tasks.update(&a, t.id, input(json!({"title": "lost"}))?, WriteMode::Patch, Some(1)).await;
    assert!(matches!(stale, Err(Error::PreconditionFailed { current: 2 })), "{stale:?}");
    assert!(matches!(fx.svc.tasks.archive(&a, t.id, Some(1)).await, Err(Error::PreconditionFailed { .. })));
    let now = fx.svc.tasks.get(&a, t.id).await?;
    assert_eq!((now.title.as_str(), now.version, now.is_archived), ("v2", 2, false), "nothing changed");
    Ok(())
}

pub async fn concurrent_updates_with_one_version_let_exactly_one_win(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let t = fx.svc.tasks.create(&a, input(json!({"title": "race"}))?).await?;
    let mut handles = Vec::new();
    for i in 0..8 {
        let svc = fx.svc.clone();
        let body = input(json!({"title": format!("writer {i}")}))?;
        handles.push(tokio::spawn(async move { svc.tasks.update(&a, t.id, body, WriteMode::Patch, Some(1)).await }));
    }
    let (mut won, mut stale) = (0, 0);
    for h in handles {
        match h.await? {
            Ok(_) => won += 1,
            Err(Error::PreconditionFailed { .. }) => stale += 1,
            Err(e) => return Err(e.into()),
        }
    }
    assert_eq!((won, stale), (1, 7));
    // Without If-Match every writer lands, one after the other, each on the fresh version.
    let mut handles = Vec::new();
    for i in 0..6 {
        let svc = fx.svc.clone();
        let body = input(json!({"description": format!("d{i}")}))?;
        handles.push(tokio::spawn(async move { svc.tasks.update(&a, t.id, body, WriteMode::Patch, None).await }));
    }
    for h in handles {
        h.await??;
    }
    let end = fx.svc.tasks.get(&a, t.id).await?;
    assert_eq!(end.version, 2 + 6);
    assert_eq!(fx.svc.tasks.history(&a, t.id, &PageRequest::first(50)).await?.items.len(), 1 + 1 + 6);
    Ok(())
}

pub async fn idempotency_records_replay_and_detect_reuse(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let now = fx.clock_now();
    let mut tx = fx.store.begin().await?;
    assert!(tx.claim_idempotency(a.user_id, "k1", "h1", now).await?.is_none(), "first use claims the key");
    tx.commit().await?;
    let mut tx = fx.store.begin().await?;
    let running = tx.claim_idempotency(a.user_id, "k1", "h1", now).await?;
    assert_eq!(running.map(|r| (r.request_hash, r.response)), Some(("h1".to_owned(), None)), "still running");
    tx.complete_idempotency(a.user_id, "k1", 201, &json!({"id": 7})).await?;
    tx.commit().await?;
    let mut tx = fx.store.begin().await?;
    let done = tx.claim_idempotency(a.user_id, "k1", "h1", now).await?;
    assert_eq!(done.and_then(|r| r.response), Some((201, json!({"id": 7}))));
    assert!(tx.claim_idempotency(b.user_id, "k1", "h2", now).await?.is_none(), "keys are per user");
    assert_eq!(tx.purge_idempotency(now + chrono::Duration::hours(25)).await?, 2);
    tx.commit().await?;
    Ok(())
}

pub async fn idempotent_creates_happen_once_even_when_concurrent(fx: Fx) -> Result<()> {
    use taskhub_core::idempotency::{IdempotencyKey, Idempotent};
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let body = json!({"title": "once"});
    let key = IdempotencyKey::new("key-1", body.to_string().as_bytes())?;
    let mut handles = Vec::new();
    for _ in 0..6 {
        let (svc, key, body) = (fx.svc.clone(), key.clone(), input(body.clone())?);
        handles.push(tokio::spawn(async move { svc.tasks.create_idempotent(&a, body, Some(&key)).await }));
    }
    let (mut done, mut replays) = (Vec::new(), Vec::new());
    for h in handles {
        match h.await?? {
            Idempotent::Done(t) => done.push(t),
            Idempotent::Replayed { status, body } => replays.push((status, body)),
        }
    }
    assert_eq!((done.len(), replays.len()), (1, 5), "one creation, the others replay it");
    let first = serde_json::to_value(&done[0])?;
    assert!(replays.iter().all(|(s, b)| *s == 201 && *b == first), "replays return the first response");
    assert_eq!(fx.db.count("tasks").await?, 1);
    // Another body under the same key is refused; another user's same key is independent.
    let other = IdempotencyKey::new("key-1", b"{\"title\":\"twice\"}")?;
    let r = fx.svc.tasks.create_idempotent(&a, input(json!({"title": "twice"}))?, Some(&other)).await;
    assert!(matches!(r, Err(Error::IdempotencyKeyReused)), "{r:?}");
    assert!(matches!(fx.svc.tasks.create_idempotent(&b, input(body.clone())?, Some(&key)).await?, Idempotent::Done(_)));
    // A failed command leaves no record: the same key works once the body is fixed.
    let bad = IdempotencyKey::new("key-2", b"bad")?;
    assert!(fx.svc.tasks.create_idempotent(&a, input(json!({"title": ""}))?, Some(&bad)).await.is_err());
    assert!(matches!(
        fx.svc.tasks.create_idempotent(&a, input(json!({"title": ""}))?, Some(&bad)).await,
        Err(Error::Validation { .. })
    ));
    let t = fx.svc.tasks.create(&a, input(json!({"title": "t"}))?).await?;
    let ck = IdempotencyKey::new("c-1", b"hi")?;
    let c1 = fx.svc.comments.add_idempotent(&a, t.id, "hi", Some(&ck)).await?;
    let c2 = fx.svc.comments.add_idempotent(&a, t.id, "hi", Some(&ck)).await?;
    assert!(matches!((c1, c2), (Idempotent::Done(_), Idempotent::Replayed { status: 201, .. })));
    assert_eq!(fx.db.count("comments").await?, 1);
    // After the 24-hour window the key is new again.
    fx.clock.advance(chrono::Duration::hours(25));
    assert!(matches!(fx.svc.tasks.create_idempotent(&a, input(body)?, Some(&key)).await?, Idempotent::Done(_)));
    assert!(IdempotencyKey::new(&"k".repeat(256), b"").is_err());
    Ok(())
}

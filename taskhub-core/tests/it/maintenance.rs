//! The maintenance jobs' work on both engines, driven by a hand-moved clock: the overdue scan
//! announces each overdue spell once and never touches the status, the cleanup deletes only
//! long-archived tasks, and a daily summary is claimed at most once a day.

use crate::common::{Fx, input, outbox};
use anyhow::Result;
use serde_json::json;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::WriteMode;

fn at(fx: &Fx, hours: i64) -> String {
    (fx.clock_now() + chrono::Duration::hours(hours)).to_rfc3339()
}

async fn overdue_events(fx: &Fx) -> Result<Vec<taskhub_core::events::EventEnvelope>> {
    Ok(outbox(fx).await?.into_iter().map(|r| r.event).filter(|e| e.event_type == "task.overdue").collect())
}

pub async fn the_overdue_scan_announces_each_overdue_spell_once(fx: Fx) -> Result<()> {
    let alice = fx.user("alice").await?;
    let task = |title: &str, due: Option<String>| input(json!({"title": title, "due_date": due}));
    let a = fx.svc.tasks.create(&alice, task("a", Some(at(&fx, 1)))?).await?;
    let b = fx.svc.tasks.create(&alice, task("b", Some(at(&fx, 3)))?).await?;
    fx.svc.tasks.create(&alice, task("no due date", None)?).await?;
    let done = fx.svc.tasks.create(&alice, task("done", Some(at(&fx, 1)))?).await?;
    fx.svc.tasks.update(&alice, done.id, input(json!({"status": "done"}))?, WriteMode::Patch, None).await?;
    let archived = fx.svc.tasks.create(&alice, task("archived", Some(at(&fx, 1)))?).await?;
    fx.svc.tasks.archive(&alice, archived.id, None).await?;
    assert!(fx.svc.maintenance.overdue_scan().await?.is_empty(), "nothing is due yet");

    fx.tick(2 * 3_600_000);
    assert_eq!(fx.svc.maintenance.overdue_scan().await?, vec![a.id]);
    assert!(fx.svc.maintenance.overdue_scan().await?.is_empty(), "announced once, not every hour");
    let after = fx.svc.tasks.get(&alice, a.id).await?;
    assert!(after.is_overdue);
    assert_eq!((after.status, after.version), (a.status, a.version), "status and version untouched");
    let history = fx.svc.tasks.history(&alice, a.id, &PageRequest::first(10)).await?.items;
    assert_eq!(history[0].action.as_str(), "overdue");
    assert_eq!(history[0].actor, None, "the system did it");
    let events = overdue_events(&fx).await?;
    assert_eq!(events.len(), 1);
    assert_eq!((events[0].entity.id, events[0].actor_id), (a.id, None));
    assert_eq!(events[0].data["task"]["is_overdue"], true);

    fx.tick(2 * 3_600_000);
    assert_eq!(fx.svc.maintenance.overdue_scan().await?, vec![b.id]);
    // A new due date starts a new spell, announced again once it passes.
    fx.svc.tasks.update(&alice, a.id, input(json!({"due_date": at(&fx, 1)}))?, WriteMode::Patch, None).await?;
    assert!(fx.svc.maintenance.overdue_scan().await?.is_empty());
    fx.tick(2 * 3_600_000);
    // Two scanners at once (two job runners): each task is announced by one of them.
    let (x, y) = tokio::join!(fx.svc.maintenance.overdue_scan(), fx.svc.maintenance.overdue_scan());
    let mut both = [x?, y?].concat();
    both.sort_unstable();
    assert_eq!(both, vec![a.id]);
    assert_eq!(overdue_events(&fx).await?.len(), 3, "a, b, then a again");
    Ok(())
}

pub async fn the_cleanup_deletes_only_tasks_archived_long_ago(fx: Fx) -> Result<()> {
    let alice = fx.user("alice").await?;
    let old = fx.svc.tasks.create(&alice, input(json!({"title": "old"}))?).await?;
    fx.svc.comments.add(&alice, old.id, "a comment").await?;
    fx.svc.tasks.archive(&alice, old.id, None).await?;
    fx.tick(20 * 86_400_000);
    let recent = fx.svc.tasks.create(&alice, input(json!({"title": "recent"}))?).await?;
    fx.svc.tasks.archive(&alice, recent.id, None).await?;
    let live = fx.svc.tasks.create(&alice, input(json!({"title": "live"}))?).await?;
    fx.tick(11 * 86_400_000);
    let retention = taskhub_core::maintenance::DEFAULT_ARCHIVE_RETENTION;
    assert_eq!(fx.svc.maintenance.archive_cleanup(retention).await?, 1);
    assert_eq!(fx.svc.maintenance.archive_cleanup(retention).await?, 0, "idempotent");
    assert!(fx.svc.tasks.get(&alice, old.id).await.is_err());
    fx.svc.tasks.get(&alice, recent.id).await?;
    fx.svc.tasks.get(&alice, live.id).await?;
    for (table, column) in [("comments", "task_id"), ("task_history", "task_id")] {
        assert_eq!(
            fx.db.count(&format!("{table} WHERE {column} = {}", old.id)).await?,
            0,
            "{table} of the deleted task"
        );
    }
    let purged: Vec<_> = outbox(&fx).await?.into_iter().filter(|r| r.event.event_type == "tasks.purged").collect();
    assert_eq!(purged.len(), 1);
    assert_eq!(purged[0].event.data["task_ids"], json!([old.id]));
    assert_eq!(purged[0].topic, "system-notifications", "the audit log keeps it");
    Ok(())
}

pub async fn a_daily_summary_is_claimed_at_most_once_a_day(fx: Fx) -> Result<()> {
    let alice = fx.user("alice").await?;
    let bob = fx.user("bob").await?;
    let carol = fx.user("carol").await?;
    let assign = |ids: &[i64]| -> Result<taskhub_core::tasks::AssignInput> {
        Ok(serde_json::from_value(json!({"users": ids, "role": "owner"}))?)
    };
    let old = fx.svc.tasks.create(&alice, input(json!({"title": "old", "due_date": at(&fx, 1)}))?).await?;
    fx.svc.tasks.assign(&alice, old.id, assign(&[bob.user_id])?, None).await?;
    fx.tick(30 * 3_600_000);
    for t in ["new 1", "new 2"] {
        let t = fx.svc.tasks.create(&alice, input(json!({"title": t}))?).await?;
        fx.svc.tasks.assign(&alice, t.id, assign(&[bob.user_id])?, None).await?;
        if t.title == "new 2" {
            fx.svc.tasks.update(&bob, t.id, input(json!({"status": "done"}))?, WriteMode::Patch, None).await?;
        }
    }
    let day = fx.clock_now().date_naive();
    let s = fx.svc.maintenance.claim_daily_summary(bob.user_id, day).await?.expect("bob has news");
    assert_eq!((s.newly_assigned, s.completed, s.overdue, s.pending), (2, 1, 1, 2));
    assert_eq!(fx.svc.maintenance.claim_daily_summary(bob.user_id, day).await?, None, "once a day");
    assert_eq!(fx.svc.maintenance.claim_daily_summary(carol.user_id, day).await?, None, "nothing to tell: skipped");
    assert!(fx.svc.maintenance.claim_daily_summary(bob.user_id, day.succ_opt().expect("a next day")).await?.is_some());
    // Every active user at once: only bob has news, and only once a day.
    let later = day.succ_opt().and_then(|d| d.succ_opt()).expect("a later day");
    assert_eq!(fx.svc.maintenance.daily_summaries(later).await?, 1);
    assert_eq!(fx.svc.maintenance.daily_summaries(later).await?, 0, "once a day");
    assert!(fx.svc.maintenance.claim_daily_summary(alice.user_id, later).await?.is_none());
    Ok(())
}

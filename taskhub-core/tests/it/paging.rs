//! Keyset pagination: stable, complete, and robust to inserts between pages.

use crate::common::{Fx, input, invalid_fields};
use anyhow::Result;
use serde_json::json;
use std::collections::HashSet;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::TaskQuery;

pub async fn pagination_walks_every_row_once_while_rows_are_inserted(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let priorities = ["low", "medium", "high", "urgent"];
    let mut existing = HashSet::new();
    for i in 0..95 {
        // Equal timestamps, priorities and due dates in runs exercise the id tie-breaker.
        if i % 3 == 0 {
            fx.tick(1);
        }
        let due = if i % 4 == 0 { json!(null) } else { json!(format!("2026-12-{:02}T00:00:00Z", 1 + i % 5)) };
        let t = fx
            .svc
            .tasks
            .create(
                &a,
                input(json!({"title": format!("task {:02}", i % 7), "priority": priorities[i % 4], "due_date": due}))?,
            )
            .await?;
        existing.insert(t.id);
    }
    for ordering in
        ["-created_at", "created_at", "priority", "-priority", "due_date", "-due_date", "title", "-title", "updated_at"]
    {
        let query: TaskQuery = serde_json::from_value(json!({"ordering": ordering}))?;
        let mut seen = Vec::new();
        let mut page = PageRequest::first(10);
        let snapshot = existing.clone();
        let mut late = Vec::new();
        loop {
            let p = fx.svc.tasks.list(&a, &query, &page).await?;
            assert!(p.items.len() <= 10);
            seen.extend(p.items.iter().map(|t| t.id));
            // Rows inserted between pages must not disturb the walk over the old ones.
            fx.tick(1);
            let t = fx
                .svc
                .tasks
                .create(&a, input(json!({"title": "late", "priority": "medium", "due_date": "2026-12-03T00:00:00Z"}))?)
                .await?;
            late.push(t.id);
            match p.next_cursor {
                Some(c) => page = PageRequest { page_size: Some(10), cursor: Some(c) },
                None => break,
            }
        }
        let unique: HashSet<i64> = seen.iter().copied().collect();
        assert_eq!(unique.len(), seen.len(), "{ordering}: no row twice");
        assert!(
            snapshot.is_subset(&unique),
            "{ordering}: every pre-existing row once ({} missing)",
            snapshot.difference(&unique).count()
        );
        assert!(late.len() >= 10);
        existing.extend(late);
    }
    Ok(())
}

pub async fn page_size_and_cursor_are_validated(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    for i in 0..3 {
        fx.svc.tasks.create(&a, input(json!({"title": format!("t{i}")}))?).await?;
    }
    let q = TaskQuery::default();
    for size in [0, 201] {
        let r = fx.svc.tasks.list(&a, &q, &PageRequest { page_size: Some(size), cursor: None }).await;
        assert_eq!(invalid_fields(r), vec!["page_size"]);
    }
    assert_eq!(fx.svc.tasks.list(&a, &q, &PageRequest { page_size: Some(200), cursor: None }).await?.items.len(), 3);
    let r = fx.svc.tasks.list(&a, &q, &PageRequest { page_size: None, cursor: Some("not-a-cursor".into()) }).await;
    assert_eq!(invalid_fields(r), vec!["cursor"]);
    let first = fx.svc.tasks.list(&a, &q, &PageRequest::first(1)).await?;
    assert_eq!((first.page_size, first.count), (1, Some(3)));
    let other: TaskQuery = serde_json::from_value(json!({"ordering": "title"}))?;
    let r = fx.svc.tasks.list(&a, &other, &PageRequest { page_size: Some(1), cursor: first.next_cursor }).await;
    assert_eq!(invalid_fields(r), vec!["cursor"], "a cursor of another ordering is refused");
    Ok(())
}

//! Task validation, visibility, soft delete, references, filters, comments, templates, tags.

use crate::common::{Fx, input, invalid_fields};
use anyhow::Result;
use serde_json::json;
use taskhub_core::Error;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::{AssignInput, Priority, TaskQuery, TaskStatus, WriteMode};
use taskhub_core::teams::TeamInput;

fn q(v: serde_json::Value) -> TaskQuery {
    serde_json::from_value(v).unwrap_or_default()
}

async fn ids(fx: &Fx, actor: &taskhub_core::Actor, query: serde_json::Value) -> Result<Vec<i64>> {
    let page = fx.svc.tasks.list(actor, &q(query), &PageRequest::first(200)).await?;
    Ok(page.items.iter().map(|t| t.id).collect())
}

pub async fn task_defaults_apply_on_create(fx: Fx) -> Result<()> {
    let alice = fx.user("alice").await?;
    let t = fx.svc.tasks.create(&alice, input(json!({"title": "  Write the spec  "}))?).await?;
    assert_eq!(t.title, "Write the spec");
    assert_eq!((t.status, t.priority), (TaskStatus::Todo, Priority::Medium));
    assert_eq!(t.description, "");
    assert_eq!(
        (t.due_date, t.estimated_hours, t.actual_hours, t.parent_task, t.assigned_team),
        (None, None, None, None, None)
    );
    assert!(t.assignees.is_empty(), "the creator is not auto-assigned");
    assert!(t.tags.is_empty());
    assert_eq!(t.metadata, json!({}));
    assert_eq!(t.created_by, Some(alice.user_id));
    assert_eq!((t.version, t.is_archived, t.is_overdue), (1, false, false));

    let full = fx
        .svc
        .tasks
        .create(
            &alice,
            input(json!({"title": "Ship", "status": "in_progress", "priority": "urgent", "estimated_hours": 9999.99,
                "actual_hours": 0.1, "due_date": "2026-11-24T08:00:00+01:00", "tags": ["Ops", "ops", "Release"],
                "metadata": {"k": [1, 2]}}))?,
        )
        .await?;
    assert_eq!(full.estimated_hours.map(|h| h.hundredths()), Some(999_999));
    assert_eq!(serde_json::to_value(full.actual_hours)?, json!(0.1));
    assert_eq!(full.due_date.map(|d| d.to_rfc3339()), Some("2026-11-24T07:00:00+00:00".into()));
    assert_eq!(full.tags, vec!["Ops", "Release"], "tags dedupe case-insensitively");
    assert!(full.is_overdue, "due in the past and not done");
    assert_eq!(full.status, TaskStatus::InProgress, "overdue never overwrites the status");

    // PUT resets omitted fields to their defaults.
    let put = fx.svc.tasks.update(&alice, full.id, input(json!({"title": "Ship it"}))?, WriteMode::Put, None).await?;
    assert_eq!(
        (put.status, put.priority, put.tags.len(), put.estimated_hours),
        (TaskStatus::Todo, Priority::Medium, 0, None)
    );
    assert_eq!(put.metadata, json!({}));
    // PATCH replaces metadata rather than merging it.
    let p = fx.svc.tasks.update(&alice, full.id, input(json!({"metadata": {"a": 1}}))?, WriteMode::Patch, None).await?;
    let p = fx.svc.tasks.update(&alice, p.id, input(json!({"metadata": {"b": 2}}))?, WriteMode::Patch, None).await?;
    assert_eq!(p.metadata, json!({"b": 2}));
    Ok(())
}

pub async fn every_validation_bound_is_enforced_and_changes_nothing(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let outbox_before = fx.db.count("outbox").await?;
    let big = "x".repeat(16 * 1024);
    let cases = [
        (json!({}), "title"),
        (json!({"title": "   "}), "title"),
        (json!({"title": null}), "title"),
        (json!({"title": "x".repeat(201)}), "title"),
        (json!({"title": "ok", "description": "d".repeat(20_001)}), "description"),
        (json!({"title": "ok", "status": "Done"}), "status"),
        (json!({"title": "ok", "status": "overdue"}), "status"),
        (json!({"title": "ok", "priority": "critical"}), "priority"),
        (json!({"title": "ok", "estimated_hours": 10000}), "estimated_hours"),
        (json!({"title": "ok", "estimated_hours": -0.01}), "estimated_hours"),
        (json!({"title": "ok", "actual_hours": 1.234}), "actual_hours"),
        (json!({"title": "ok", "due_date": "tomorrow"}), "due_date"),
        (json!({"title": "ok", "metadata": [1]}), "metadata"),
        (json!({"title": "ok", "metadata": {"big": big}}), "metadata"),
        (json!({"title": "ok", "tags": ["t".repeat(51)]}), "tags"),
        (json!({"title": "ok", "tags": [""]}), "tags"),
        (json!({"title": "ok", "assignees": [{"user_id": a.user_id, "role": "boss"}]}), "assignees"),
        (json!({"title": "ok", "assigned_to": [a.user_id], "assignees": []}), "assignees"),
        (json!({"title": "ok", "assigned_team": 999_999}), "assigned_team"),
        (json!({"title": "ok", "parent_task": 999_999}), "parent_task"),
        (json!({"title": "ok", "assigned_to": [999_999]}), "assignees"),
    ];
    for (body, field) in cases {
        let r = fx.svc.tasks.create(&a, input(body.clone())?).await;
        assert_eq!(invalid_fields(r), vec![field.to_owned()], "body {body}");
    }
    // Bounds that are allowed.
    let ok = fx
        .svc
        .tasks
        .create(&a, input(json!({"title": "t".repeat(200), "description": "d".repeat(20_000), "estimated_hours": 0}))?)
        .await?;
    assert_eq!(ok.title.chars().count(), 200);
    assert_eq!(fx.db.count("tasks").await?, 1, "only the valid body created a task");
    assert_eq!(fx.db.count("outbox").await?, outbox_before + 1);
    assert_eq!(fx.db.count("task_history").await?, 1);
    // Several bad fields are all reported at once.
    let r = fx.svc.tasks.create(&a, input(json!({"title": "", "priority": "x", "status": "y"}))?).await;
    assert_eq!(invalid_fields(r), vec!["priority", "status", "title"]);
    Ok(())
}

pub async fn visibility_and_edit_rules_follow_each_role(fx: Fx) -> Result<()> {
    let creator = fx.user("creator").await?;
    let collab = fx.user("collab").await?;
    let owner = fx.user("owner").await?;
    let member = fx.user("member").await?;
    let admin = fx.user("admin").await?;
    let stranger = fx.user("stranger").await?;
    let staff = fx.staff("staff").await?;
    let team = fx.svc.teams.create(&admin, serde_json::from_value::<TeamInput>(json!({"name": "Core"}))?).await?;
    fx.svc.teams.add_members(&admin, team.id, &[member.user_id, creator.user_id]).await?;
    let t = fx
        .svc
        .tasks
        .create(
            &creator,
            input(json!({"title": "Shared", "assigned_team": team.id,
                "assignees": [{"user_id": collab.user_id}, {"user_id": owner.user_id, "role": "owner"}]}))?,
        )
        .await?;
    let private = fx.svc.tasks.create(&stranger, input(json!({"title": "Mine"}))?).await?;

    for (who, sees, edits) in [
        (creator, true, true),
        (collab, true, false),
        (owner, true, true),
        (member, true, false),
        (admin, true, true),
        (stranger, false, false),
        (staff, true, true),
    ] {
        let got = fx.svc.tasks.get(&who, t.id).await;
        assert_eq!(got.is_ok(), sees, "{who:?} get");
        if !sees {
            assert!(matches!(got, Err(Error::NotFound(_))), "invisible is not found");
        }
        let listed = ids(&fx, &who, json!({})).await?;
        assert_eq!(listed.contains(&t.id), sees, "{who:?} list");
        assert_eq!(listed.contains(&private.id), who == stranger || who.is_staff, "{who:?} sees only what they may");
        let r = fx
            .svc
            .tasks
            .update(&who, t.id, input(json!({"description": format!("by {}", who.user_id)}))?, WriteMode::Patch, None)
            .await;
        match (sees, edits) {
            (_, true) => assert!(r.is_ok(), "{who:?} may edit: {r:?}"),
            (true, false) => assert!(matches!(r, Err(Error::Forbidden(_))), "{who:?} sees but may not edit"),
            (false, _) => assert!(matches!(r, Err(Error::NotFound(_))), "{who:?} gets not found"),
        }
        let archive = fx.svc.tasks.archive(&who, t.id, None).await;
        assert_eq!(archive.is_ok(), edits, "{who:?} archive");
        if archive.is_ok() {
            fx.svc.tasks.unarchive(&who, t.id, None).await?;
        }
        let assign =
            fx.svc.tasks.assign(&who, t.id, AssignInput { users: vec![stranger.user_id], role: None }, None).await;
        assert_eq!(assign.is_ok(), edits, "{who:?} assign");
        if assign.is_ok() {
            fx.svc
                .tasks
                .unassign(&who, t.id, taskhub_core::tasks::UnassignInput { users: vec![stranger.user_id] }, None)
                .await?;
        }
        let comment = fx.svc.comments.add(&who, t.id, "hello").await;
        assert_eq!(comment.is_ok(), sees, "any viewer may comment");
        let hist = fx.svc.tasks.history(&who, t.id, &PageRequest::default()).await;
        assert_eq!(hist.is_ok(), sees, "{who:?} history");
    }
    // A stranger's failed attempts changed nothing.
    let after = fx.svc.tasks.get(&staff, t.id).await?;
    assert!(!after.description.contains(&format!("by {}", stranger.user_id)));
    Ok(())
}

pub async fn archived_tasks_are_hidden_by_default(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let live = fx.svc.tasks.create(&a, input(json!({"title": "live"}))?).await?;
    let gone = fx.svc.tasks.create(&a, input(json!({"title": "gone"}))?).await?;
    fx.tick(1000);
    let archived = fx.svc.tasks.archive(&a, gone.id, None).await?;
    assert!(archived.is_archived);
    assert_eq!(archived.archived_at, Some(fx.clock_now()));
    assert_eq!(ids(&fx, &a, json!({})).await?, vec![live.id]);
    assert_eq!(ids(&fx, &a, json!({"archived": "true"})).await?, vec![gone.id]);
    assert_eq!(ids(&fx, &a, json!({"archived": "all"})).await?, vec![gone.id, live.id]);
    // Archived tasks stay readable by id, and archiving twice changes nothing.
    assert!(fx.svc.tasks.get(&a, gone.id).await?.is_archived);
    let again = fx.svc.tasks.archive(&a, gone.id, None).await?;
    assert_eq!(again.version, archived.version, "idempotent");
    let back = fx.svc.tasks.unarchive(&a, gone.id, None).await?;
    assert!(!back.is_archived && back.archived_at.is_none());
    assert_eq!(ids(&fx, &a, json!({})).await?.len(), 2);
    Ok(())
}

pub async fn parent_task_must_be_visible_and_acyclic(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let root = fx.svc.tasks.create(&a, input(json!({"title": "root"}))?).await?;
    let child = fx.svc.tasks.create(&a, input(json!({"title": "child", "parent_task": root.id}))?).await?;
    let grandchild = fx.svc.tasks.create(&a, input(json!({"title": "gc", "parent_task": child.id}))?).await?;
    assert_eq!(grandchild.parent_task, Some(child.id));
    let bobs = fx.svc.tasks.create(&b, input(json!({"title": "bob's"}))?).await?;
    let r = fx.svc.tasks.create(&a, input(json!({"title": "x", "parent_task": bobs.id}))?).await;
    assert_eq!(invalid_fields(r), vec!["parent_task"], "an invisible parent is unknown");
    let r = fx.svc.tasks.update(&a, root.id, input(json!({"parent_task": root.id}))?, WriteMode::Patch, None).await;
    assert_eq!(invalid_fields(r), vec!["parent_task"], "not itself");
    let r =
        fx.svc.tasks.update(&a, root.id, input(json!({"parent_task": grandchild.id}))?, WriteMode::Patch, None).await;
    assert_eq!(invalid_fields(r), vec!["parent_task"], "no cycles");
    assert_eq!(fx.svc.tasks.get(&a, root.id).await?.parent_task, None);
    Ok(())
}

pub async fn assignees_must_be_active_users(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let c = fx.user("carol").await?;
    let staff = fx.staff("root").await?;
    fx.svc.users.deactivate(&staff, c.user_id).await?;
    let t = fx.svc.tasks.create(&a, input(json!({"title": "t", "assigned_to": [b.user_id]}))?).await?;
    assert_eq!(t.assignee_ids(), vec![b.user_id]);
    assert_eq!(t.assignees.first().map(|x| x.assigned_by), Some(Some(a.user_id)));
    let r = fx.svc.tasks.assign(&a, t.id, AssignInput { users: vec![c.user_id], role: None }, None).await;
    assert_eq!(invalid_fields(r), vec!["assignees"]);
    let r = fx.svc.tasks.assign(&a, t.id, AssignInput { users: vec![b.user_id, 424_242], role: None }, None).await;
    assert_eq!(invalid_fields(r), vec!["assignees"]);
    let r =
        fx.svc.tasks.assign(&a, t.id, AssignInput { users: vec![b.user_id], role: Some("chief".into()) }, None).await;
    assert_eq!(invalid_fields(r), vec!["role"]);
    assert_eq!(fx.svc.tasks.get(&a, t.id).await?.version, t.version, "nothing changed");
    // Re-assigning changes the role and keeps who assigned and when.
    fx.tick(5000);
    let t2 = fx
        .svc
        .tasks
        .assign(&staff, t.id, AssignInput { users: vec![b.user_id], role: Some("owner".into()) }, None)
        .await?;
    let asg = t2.assignees.first().cloned();
    assert_eq!(
        asg.as_ref().map(|x| (x.role, x.assigned_by, x.assigned_at)),
        t.assignees.first().map(|x| (taskhub_core::tasks::AssigneeRole::Owner, x.assigned_by, x.assigned_at))
    );
    Ok(())
}

pub async fn filters_select_exactly_the_matching_tasks(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let team = fx.svc.teams.create(&a, serde_json::from_value::<TeamInput>(json!({"name": "T"}))?).await?;
    let t1 = fx.svc.tasks.create(&a, input(json!({"title": "Alpha report", "priority": "low", "tags": ["Ops"], "due_date": "2026-11-20T00:00:00Z"}))?).await?;
    fx.tick(10);
    let t2 = fx.svc.tasks.create(&a, input(json!({"title": "beta", "description": "the ALPHA 50% plan", "priority": "urgent", "status": "done", "due_date": "2026-11-21T00:00:00Z", "assigned_to": [b.user_id]}))?).await?;
    fx.tick(10);
    let t3 = fx.svc.tasks.create(&a, input(json!({"title": "gamma", "priority": "high", "status": "blocked", "assigned_team": team.id, "tags": ["ops", "x"], "due_date": "2026-12-01T00:00:00Z"}))?).await?;
    fx.tick(10);
    let t4 = fx.svc.tasks.create(&b, input(json!({"title": "delta_1", "priority": "medium"}))?).await?;
    let all = vec![t4.id, t3.id, t2.id, t1.id];
    assert_eq!(ids(&fx, &a, json!({})).await?, vec![t3.id, t2.id, t1.id], "newest first; t4 invisible to alice");
    assert_eq!(ids(&fx, &b, json!({})).await?, vec![t4.id, t2.id]);
    assert_eq!(ids(&fx, &a, json!({"status": "done,blocked"})).await?, vec![t3.id, t2.id]);
    assert_eq!(ids(&fx, &a, json!({"priority": "low,urgent"})).await?, vec![t2.id, t1.id]);
    assert_eq!(ids(&fx, &a, json!({"tag": "OPS"})).await?, vec![t3.id, t1.id]);
    assert_eq!(ids(&fx, &b, json!({"assignee": "me"})).await?, vec![t2.id]);
    assert_eq!(ids(&fx, &a, json!({"assignee": b.user_id.to_string()})).await?, vec![t2.id]);
    assert_eq!(ids(&fx, &a, json!({"team": team.id.to_string()})).await?, vec![t3.id]);
    assert_eq!(ids(&fx, &b, json!({"created_by": b.user_id.to_string()})).await?, vec![t4.id]);
    assert_eq!(ids(&fx, &a, json!({"overdue": "true"})).await?, vec![t1.id], "t2 is done, t3 due later");
    assert_eq!(ids(&fx, &a, json!({"overdue": "false"})).await?, vec![t3.id, t2.id]);
    assert_eq!(ids(&fx, &a, json!({"due_before": "2026-11-21T00:00:00Z"})).await?, vec![t1.id]);
    assert_eq!(ids(&fx, &a, json!({"due_after": "2026-11-21T00:00:00Z"})).await?, vec![t3.id, t2.id]);
    assert_eq!(ids(&fx, &a, json!({"search": "alpha"})).await?, vec![t2.id, t1.id], "title or description, any case");
    assert_eq!(ids(&fx, &a, json!({"search": "50%"})).await?, vec![t2.id], "LIKE wildcards are literal");
    assert_eq!(ids(&fx, &b, json!({"search": "a_1"})).await?, vec![t4.id]);
    assert_eq!(ids(&fx, &b, json!({"search": "a_"})).await?, vec![t4.id], "underscore is literal");
    assert_eq!(ids(&fx, &a, json!({"ordering": "priority"})).await?, vec![t1.id, t3.id, t2.id], "by rank, not by name");
    assert_eq!(ids(&fx, &a, json!({"ordering": "-priority"})).await?, vec![t2.id, t3.id, t1.id]);
    assert_eq!(ids(&fx, &a, json!({"ordering": "title"})).await?, vec![t1.id, t2.id, t3.id]);
    assert_eq!(ids(&fx, &a, json!({"ordering": "-due_date"})).await?, vec![t3.id, t2.id, t1.id]);
    let staff = fx.staff("root").await?;
    assert_eq!(ids(&fx, &staff, json!({})).await?, all, "staff see everything");
    let page = fx.svc.tasks.list(&a, &q(json!({"status": "done,blocked"})), &PageRequest::first(1)).await?;
    assert_eq!(page.count, Some(2), "count is the total matching, not the page");
    Ok(())
}

pub async fn invalid_filter_values_are_rejected(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    for (query, field) in [
        (json!({"status": "todo,nope"}), "status"),
        (json!({"priority": "HIGH"}), "priority"),
        (json!({"assignee": "you"}), "assignee"),
        (json!({"team": "x"}), "team"),
        (json!({"created_by": "-1"}), "created_by"),
        (json!({"archived": "yes"}), "archived"),
        (json!({"overdue": "1"}), "overdue"),
        (json!({"due_before": "2026-13-01"}), "due_before"),
        (json!({"due_after": "soon"}), "due_after"),
        (json!({"ordering": "-colour"}), "ordering"),
        (json!({"search": "s".repeat(201)}), "search"),
    ] {
        let r = fx.svc.tasks.list(&a, &q(query.clone()), &PageRequest::default()).await;
        assert_eq!(invalid_fields(r), vec![field.to_owned()], "{query}");
    }
    Ok(())
}

pub async fn comments_follow_author_and_editor_rules(fx: Fx) -> Result<()> {
    let creator = fx.user("creator").await?;
    let collab = fx.user("collab").await?;
    let stranger = fx.user("stranger").await?;
    let t = fx.svc.tasks.create(&creator, input(json!({"title": "t", "assigned_to": [collab.user_id]}))?).await?;
    let other = fx.svc.tasks.create(&creator, input(json!({"title": "other"}))?).await?;
    let c = fx.svc.comments.add(&collab, t.id, "first!").await?;
    assert_eq!((c.task, c.author, c.version), (t.id, Some(collab.user_id), 1));
    assert!(matches!(fx.svc.comments.add(&stranger, t.id, "hi").await, Err(Error::NotFound(_))));
    assert_eq!(invalid_fields(fx.svc.comments.add(&collab, t.id, "  ").await), vec!["body"]);
    assert_eq!(invalid_fields(fx.svc.comments.add(&collab, t.id, &"b".repeat(10_001)).await), vec!["body"]);
    assert!(fx.svc.comments.add(&collab, t.id, &"b".repeat(10_000)).await.is_ok());
    // The URL decides the task: the comment is not found under another task.
    assert!(matches!(fx.svc.comments.get(&creator, other.id, c.id).await, Err(Error::NotFound(_))));
    assert!(
        matches!(fx.svc.comments.edit(&creator, t.id, c.id, "mine now", None).await, Err(Error::Forbidden(_))),
        "only the author edits"
    );
    let edited = fx.svc.comments.edit(&collab, t.id, c.id, "edited", Some(1)).await?;
    assert_eq!((edited.body.as_str(), edited.version), ("edited", 2));
    assert!(matches!(
        fx.svc.comments.edit(&collab, t.id, c.id, "again", Some(1)).await,
        Err(Error::PreconditionFailed { current: 2 })
    ));
    // The creator (an editor of the task) may delete another's comment; a collaborator may not
    // delete the creator's.
    let mine = fx.svc.comments.add(&creator, t.id, "creator's").await?;
    assert!(matches!(fx.svc.comments.delete(&collab, t.id, mine.id, None).await, Err(Error::Forbidden(_))));
    fx.svc.comments.delete(&creator, t.id, c.id, None).await?;
    let left = fx.svc.comments.list(&creator, t.id, &PageRequest::default()).await?;
    assert_eq!(left.items.iter().map(|c| c.body.len()).collect::<Vec<_>>(), vec![10_000, 9], "oldest first");
    Ok(())
}

pub async fn templates_validate_defaults_and_instantiate(fx: Fx) -> Result<()> {
    use taskhub_core::tasks::TemplateInput;
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let bad: TemplateInput =
        serde_json::from_value(json!({"name": "Bug", "defaults": {"priority": "severe", "estimated_hours": 1.001}}))?;
    let r = fx.svc.templates.create(&a, bad).await;
    assert!(matches!(r, Err(Error::Validation { .. })), "{r:?}");
    let unknown: TemplateInput = serde_json::from_value(json!({"name": "Bug", "defaults": {"colour": "red"}}))?;
    assert_eq!(invalid_fields(fx.svc.templates.create(&a, unknown).await), vec!["defaults"]);
    let good: TemplateInput = serde_json::from_value(
        json!({"name": "Bug", "defaults": {"title": "Bug: ", "priority": "high", "tags": ["bug"], "estimated_hours": 2.5, "assignees": [{"user_id": b.user_id}]}}),
    )?;
    let tpl = fx.svc.templates.create(&a, good).await?;
    assert!(
        matches!(fx.svc.templates.get(&b, tpl.id).await, Err(Error::NotFound(_))),
        "other users' templates are invisible"
    );
    let t = fx.svc.templates.instantiate(&a, tpl.id, input(json!({"title": "Bug: login fails"}))?).await?;
    assert_eq!(
        (t.title.as_str(), t.priority, t.tags.clone(), t.assignee_ids()),
        ("Bug: login fails", Priority::High, vec!["bug".to_owned()], vec![b.user_id])
    );
    assert_eq!(t.estimated_hours.map(|h| h.hundredths()), Some(250));
    let t2 = fx.svc.tasks.create(&a, input(json!({"template_id": tpl.id, "priority": "low"}))?).await?;
    assert_eq!((t2.title.as_str(), t2.priority), ("Bug:", Priority::Low));
    assert_eq!(
        invalid_fields(fx.svc.tasks.create(&b, input(json!({"template_id": tpl.id}))?).await),
        vec!["template_id"]
    );
    Ok(())
}

pub async fn tag_names_are_unique_case_insensitively(fx: Fx) -> Result<()> {
    use taskhub_core::tasks::TagInput;
    let a = fx.user("alice").await?;
    let staff = fx.staff("root").await?;
    let tag: TagInput = serde_json::from_value(json!({"name": "Backend", "color": "#1E90FF"}))?;
    let t = fx.svc.tags.create(&a, tag).await?;
    assert_eq!(t.color.as_deref(), Some("#1e90ff"));
    let dup: TagInput = serde_json::from_value(json!({"name": "BACKEND"}))?;
    assert!(matches!(fx.svc.tags.create(&a, dup).await, Err(Error::Conflict(_))));
    let bad: TagInput = serde_json::from_value(json!({"name": "ok", "color": "blue"}))?;
    assert_eq!(invalid_fields(fx.svc.tags.create(&a, bad).await), vec!["color"]);
    // Tasks reuse the tag whatever the case; counts skip archived tasks.
    let task = fx.svc.tasks.create(&a, input(json!({"title": "x", "tags": ["backend"]}))?).await?;
    assert_eq!(task.tags, vec!["Backend"]);
    assert_eq!(fx.svc.tags.get(&a, t.id).await?.task_count, 1);
    fx.svc.tasks.archive(&a, task.id, None).await?;
    assert_eq!(fx.svc.tags.get(&a, t.id).await?.task_count, 0);
    let rename: TagInput = serde_json::from_value(json!({"name": "api"}))?;
    assert!(matches!(fx.svc.tags.update(&a, t.id, rename.clone()).await, Err(Error::Forbidden(_))), "staff only");
    assert_eq!(fx.svc.tags.update(&staff, t.id, rename).await?.name, "api");
    fx.svc.tags.delete(&staff, t.id).await?;
    assert!(fx.svc.tasks.get(&a, task.id).await?.tags.is_empty());
    Ok(())
}

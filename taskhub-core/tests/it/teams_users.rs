//! Teams and users.

use crate::common::{Fx, input, invalid_fields};
use anyhow::Result;
use serde_json::json;
use taskhub_core::Error;
use taskhub_core::page::PageRequest;
use taskhub_core::teams::TeamInput;
use taskhub_core::users::{UserInput, UserPatch};

fn team(name: &str) -> Result<TeamInput> {
    Ok(serde_json::from_value(json!({"name": name, "description": "d"}))?)
}

pub async fn teams_follow_admin_and_member_rules(fx: Fx) -> Result<()> {
    let admin = fx.user("admin").await?;
    let member = fx.user("member").await?;
    let outsider = fx.user("outsider").await?;
    let staff = fx.staff("root").await?;
    assert_eq!(invalid_fields(fx.svc.teams.create(&admin, team("  ")?).await), vec!["name"]);
    assert_eq!(invalid_fields(fx.svc.teams.create(&admin, team(&"n".repeat(151))?).await), vec!["name"]);
    let t = fx.svc.teams.create(&admin, team("Platform")?).await?;
    assert_eq!((t.is_admin, t.is_member, t.member_count, t.created_by), (true, true, 1, Some(admin.user_id)));
    // Unknown ids fail the whole call and add nobody.
    assert_eq!(
        invalid_fields(fx.svc.teams.add_members(&admin, t.id, &[member.user_id, 999_999]).await),
        vec!["user_ids"]
    );
    assert_eq!(fx.svc.teams.get(&admin, t.id).await?.member_count, 1);
    let r = fx.svc.teams.add_members(&admin, t.id, &[member.user_id, admin.user_id]).await?;
    assert_eq!((r.added, r.already_members), (vec![member.user_id], vec![admin.user_id]));
    let seen = fx.svc.teams.get(&member, t.id).await?;
    assert_eq!((seen.is_admin, seen.is_member, seen.member_count), (false, true, 2));
    assert!(matches!(fx.svc.teams.get(&outsider, t.id).await, Err(Error::NotFound(_))));
    assert!(fx.svc.teams.get(&staff, t.id).await.is_ok());
    assert!(fx.svc.teams.list(&outsider, &PageRequest::default()).await?.items.is_empty());
    assert_eq!(fx.svc.teams.list(&member, &PageRequest::default()).await?.items.len(), 1);
    assert!(matches!(fx.svc.teams.update(&member, t.id, team("Mine")?, None).await, Err(Error::Forbidden(_))));
    assert!(matches!(fx.svc.teams.update(&outsider, t.id, team("Mine")?, None).await, Err(Error::NotFound(_))));
    assert!(
        matches!(fx.svc.teams.update(&admin, t.id, team("X")?, Some(1)).await, Err(Error::PreconditionFailed { .. })),
        "membership changes bump the version"
    );
    let renamed = fx.svc.teams.update(&admin, t.id, team("Platform 2")?, Some(seen.version)).await?;
    assert_eq!(renamed.name, "Platform 2");
    assert!(matches!(fx.svc.teams.add_members(&member, t.id, &[outsider.user_id]).await, Err(Error::Forbidden(_))));
    assert!(
        matches!(fx.svc.teams.remove_member(&admin, t.id, admin.user_id).await, Err(Error::Conflict(_))),
        "the admin cannot be removed"
    );
    assert!(matches!(fx.svc.teams.leave(&admin, t.id).await, Err(Error::Conflict(_))), "the admin cannot leave");
    let members = fx.svc.teams.members(&member, t.id, &PageRequest::default()).await?;
    assert_eq!(members.items.iter().map(|u| u.id).collect::<Vec<_>>(), vec![admin.user_id, member.user_id]);
    assert!(members.items.iter().all(|u| u.email.is_none() || u.id == member.user_id), "others' e-mails hidden");
    fx.svc.teams.leave(&member, t.id).await?;
    assert!(matches!(fx.svc.teams.get(&member, t.id).await, Err(Error::NotFound(_))));
    assert!(matches!(fx.svc.teams.leave(&member, t.id).await, Err(Error::NotFound(_))));
    fx.svc.teams.add_members(&staff, t.id, &[outsider.user_id]).await?;
    fx.svc.teams.remove_member(&admin, t.id, outsider.user_id).await?;
    assert_eq!(fx.svc.teams.get(&admin, t.id).await?.member_count, 1);
    let types = {
        let mut tx = fx.store.read().await?;
        tx.list_outbox(0, 1000)
            .await?
            .into_iter()
            .map(|r| r.event.event_type)
            .filter(|t| t.starts_with("team."))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        types,
        [
            "team.created",
            "team.member_added",
            "team.updated",
            "team.member_left",
            "team.member_added",
            "team.member_removed"
        ]
    );
    Ok(())
}

pub async fn deleting_a_team_keeps_its_tasks(fx: Fx) -> Result<()> {
    let admin = fx.user("admin").await?;
    let member = fx.user("member").await?;
    let t = fx.svc.teams.create(&admin, team("Ops")?).await?;
    fx.svc.teams.add_members(&admin, t.id, &[member.user_id]).await?;
    let task = fx.svc.tasks.create(&admin, input(json!({"title": "x", "assigned_team": t.id}))?).await?;
    assert!(fx.svc.tasks.get(&member, task.id).await.is_ok(), "team members see the team's tasks");
    assert!(matches!(fx.svc.teams.delete(&member, t.id, None).await, Err(Error::Forbidden(_))));
    fx.svc.teams.delete(&admin, t.id, None).await?;
    let after = fx.svc.tasks.get(&admin, task.id).await?;
    assert_eq!(after.assigned_team, None);
    assert!(matches!(fx.svc.tasks.get(&member, task.id).await, Err(Error::NotFound(_))));
    Ok(())
}

pub async fn user_rules_hide_emails_and_guard_staff_actions(fx: Fx) -> Result<()> {
    let a = fx.user("alice").await?;
    let b = fx.user("bob").await?;
    let staff = fx.staff("root").await?;
    assert_eq!(fx.svc.users.get(&a, b.user_id).await?.email, None);
    assert_eq!(fx.svc.users.get(&b, b.user_id).await?.email.as_deref(), Some("bob@example.com"));
    assert_eq!(fx.svc.users.get(&staff, b.user_id).await?.email.as_deref(), Some("bob@example.com"));
    let new = UserInput {
        username: "eve".into(),
        email: "eve@example.com".into(),
        password: "long enough pw".into(),
        is_staff: Some(true),
        ..Default::default()
    };
    assert!(matches!(fx.svc.users.create(&a, new.clone()).await, Err(Error::Forbidden(_))));
    assert!(
        matches!(fx.svc.users.register(new.clone()).await, Err(Error::Validation { .. })),
        "registration cannot make staff"
    );
    assert!(fx.svc.users.create(&staff, new).await?.is_staff);
    assert!(matches!(fx.svc.users.deactivate(&a, b.user_id).await, Err(Error::Forbidden(_))));
    let patch: UserPatch = serde_json::from_value(json!({"display_name": "B"}))?;
    assert!(matches!(fx.svc.users.update(&a, b.user_id, patch).await, Err(Error::Forbidden(_))));
    let patch: UserPatch = serde_json::from_value(json!({"is_staff": true}))?;
    assert!(matches!(fx.svc.users.update(&a, a.user_id, patch).await, Err(Error::Forbidden(_))), "no self-promotion");
    let patch: UserPatch = serde_json::from_value(json!({"password": "a new password"}))?;
    assert_eq!(invalid_fields(fx.svc.users.update(&a, a.user_id, patch).await), vec!["current_password"]);
    let patch: UserPatch = serde_json::from_value(json!({"password": "a new password", "current_password": "wrong"}))?;
    assert_eq!(invalid_fields(fx.svc.users.update(&a, a.user_id, patch).await), vec!["current_password"]);
    let patch: UserPatch = serde_json::from_value(
        json!({"password": "a new password", "current_password": "correct horse battery", "first_name": "Al"}),
    )?;
    assert_eq!(fx.svc.users.update(&a, a.user_id, patch).await?.first_name, "Al");
    let hash = fx.store.read().await?.get_password_hash(a.user_id).await?;
    assert!(fx.svc.users.hasher().verify(hash.as_deref(), "a new password").await?);
    assert!(hash.is_some_and(|h| h.starts_with("$argon2id$")));
    fx.svc.users.deactivate(&staff, b.user_id).await?;
    assert!(!fx.svc.users.get(&staff, b.user_id).await?.is_active);
    let page = fx.svc.users.list(&a, Some("BO"), &PageRequest::default()).await?;
    assert_eq!((page.items.len(), page.count), (1, Some(1)));
    for (u, e, p, field) in [
        ("ab", "x@example.com", "long enough pw", "username"),
        ("bad name", "x@example.com", "long enough pw", "username"),
        ("okname", "not-an-email", "long enough pw", "email"),
        ("okname", "x@example.com", "short", "password"),
        ("okname1234", "x@example.com", "OKNAME1234", "password"),
    ] {
        let r = fx
            .svc
            .users
            .register(UserInput { username: u.into(), email: e.into(), password: p.into(), ..Default::default() })
            .await;
        assert_eq!(invalid_fields(r), vec![field.to_owned()], "{u} {e} {p}");
    }
    Ok(())
}

pub async fn usernames_and_emails_are_unique_case_insensitively(fx: Fx) -> Result<()> {
    fx.user("Alice").await?;
    let dup = UserInput {
        username: "ALICE".into(),
        email: "other@example.com".into(),
        password: "long enough pw".into(),
        ..Default::default()
    };
    assert!(matches!(fx.svc.users.register(dup).await, Err(Error::Conflict(m)) if m.contains("username")));
    let dup = UserInput {
        username: "bob".into(),
        email: "ALICE@Example.com".into(),
        password: "long enough pw".into(),
        ..Default::default()
    };
    assert!(matches!(fx.svc.users.register(dup).await, Err(Error::Conflict(m)) if m.contains("e-mail")));
    assert_eq!(fx.db.count("users").await?, 1);
    Ok(())
}

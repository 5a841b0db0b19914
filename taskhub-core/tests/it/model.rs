//! Property test: random filter and ordering combinations over random data return exactly what
//! an in-memory reference model returns — on SQLite and on PostgreSQL.

use crate::common::{Engine, Fx, input};
use anyhow::Result;
use chrono::{DateTime, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::json;
use taskhub_core::Actor;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::{Task, TaskQuery, TaskStatus};

const STATUSES: [&str; 4] = ["todo", "in_progress", "blocked", "done"];
const PRIORITIES: [&str; 4] = ["low", "medium", "high", "urgent"];
const TAGS: [&str; 4] = ["Ops", "bug", "UX", "docs"];
const WORDS: [&str; 6] = ["Alpha", "beta", "Gamma", "delta", "ALPHA beta", "zeta"];
const ORDERINGS: [&str; 10] = [
    "created_at",
    "-created_at",
    "updated_at",
    "-updated_at",
    "due_date",
    "-due_date",
    "priority",
    "-priority",
    "title",
    "-title",
];

#[derive(Debug, Clone)]
struct Filter {
    status: Option<Vec<usize>>,
    priority: Option<Vec<usize>>,
    tag: Option<usize>,
    assignee: Option<usize>,
    team: bool,
    created_by: Option<usize>,
    archived: Option<&'static str>,
    overdue: Option<bool>,
    due_before: Option<i64>,
    due_after: Option<i64>,
    search: Option<&'static str>,
    ordering: usize,
    viewer: usize,
}

fn filter() -> impl Strategy<Value = Filter> {
    let idx = |n: usize| proptest::collection::vec(0..n, 1..3);
    (
        (
            proptest::option::of(idx(4)),
            proptest::option::of(idx(4)),
            proptest::option::of(0..4usize),
            proptest::option::of(0..3usize),
        ),
        (
            any::<bool>(),
            proptest::option::of(0..3usize),
            proptest::option::of(prop_oneof![Just("false"), Just("true"), Just("all")]),
        ),
        (proptest::option::of(any::<bool>()), proptest::option::of(-10i64..10), proptest::option::of(-10i64..10)),
        (
            proptest::option::of(prop_oneof![Just("alpha"), Just("BETA"), Just("ga"), Just("zeta"), Just("nothing")]),
            0..10usize,
            0..4usize,
        ),
    )
        .prop_map(
            |(
                (status, priority, tag, assignee),
                (team, created_by, archived),
                (overdue, due_before, due_after),
                (search, ordering, viewer),
            )| Filter {
                status,
                priority,
                tag,
                assignee,
                team,
                created_by,
                archived,
                overdue,
                due_before,
                due_after,
                search,
                ordering,
                viewer,
            },
        )
}

/// The reference: the rules of API.md applied to tasks in memory.
fn reference(
    tasks: &[Task],
    f: &Filter,
    users: &[Actor],
    team_id: i64,
    team_members: &[i64],
    now: DateTime<Utc>,
) -> Vec<i64> {
    let viewer = users[f.viewer % users.len()];
    let day = |d: i64| now + chrono::Duration::days(d);
    let mut out: Vec<&Task> = tasks
        .iter()
        .filter(|t| {
            viewer.is_staff
                || t.created_by == Some(viewer.user_id)
                || t.assignees.iter().any(|a| a.user_id == viewer.user_id)
                || (t.assigned_team == Some(team_id) && team_members.contains(&viewer.user_id))
        })
        .filter(|t| match f.archived.unwrap_or("false") {
            "true" => t.is_archived,
            "all" => true,
            _ => !t.is_archived,
        })
        .filter(|t| f.status.as_ref().is_none_or(|s| s.iter().any(|i| t.status.as_str() == STATUSES[*i])))
        .filter(|t| f.priority.as_ref().is_none_or(|s| s.iter().any(|i| t.priority.as_str() == PRIORITIES[*i])))
        .filter(|t| f.tag.is_none_or(|i| t.tags.iter().any(|g| g.to_lowercase() == TAGS[i].to_lowercase())))
        .filter(|t| f.assignee.is_none_or(|i| t.assignees.iter().any(|a| a.user_id == users[i].user_id)))
        .filter(|t| !f.team || t.assigned_team == Some(team_id))
        .filter(|t| f.created_by.is_none_or(|i| t.created_by == Some(users[i].user_id)))
        .filter(|t| {
            let overdue = t.due_date.is_some_and(|d| d < now) && t.status != TaskStatus::Done;
            f.overdue.is_none_or(|o| o == overdue)
        })
        .filter(|t| f.due_before.is_none_or(|d| t.due_date.is_some_and(|x| x < day(d))))
        .filter(|t| f.due_after.is_none_or(|d| t.due_date.is_some_and(|x| x >= day(d))))
        .filter(|t| {
            f.search.is_none_or(|q| {
                let q = q.to_lowercase();
                t.title.to_lowercase().contains(&q) || t.description.to_lowercase().contains(&q)
            })
        })
        .collect();
    let ordering = ORDERINGS[f.ordering];
    let desc = ordering.starts_with('-');
    out.sort_by(|a, b| {
        use std::cmp::Ordering;
        let key = match ordering.trim_start_matches('-') {
            "created_at" => a.created_at.cmp(&b.created_at),
            "updated_at" => a.updated_at.cmp(&b.updated_at),
            "priority" => a.priority.cmp(&b.priority),
            "title" => a.title.as_bytes().cmp(b.title.as_bytes()),
            _ => match (a.due_date, b.due_date) {
                // Tasks without a due date come last in both directions.
                (None, None) => Ordering::Equal,
                (None, Some(_)) => return Ordering::Greater,
                (Some(_), None) => return Ordering::Less,
                (Some(x), Some(y)) => x.cmp(&y),
            },
        };
        let key = key.then(a.id.cmp(&b.id));
        if desc { key.reverse() } else { key }
    });
    out.iter().map(|t| t.id).collect()
}

pub fn random_filters_match_the_reference_model(engine: Engine) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let (fx, tasks, users, team_id, members) = rt.block_on(async {
        let fx = Fx::new(engine).await?;
        let mut users = Vec::new();
        for n in ["ann", "ben", "cat"] {
            users.push(fx.user(n).await?);
        }
        users.push(fx.staff("root").await?);
        let team = fx.svc.teams.create(&users[0], serde_json::from_value(json!({"name": "T"}))?).await?;
        fx.svc.teams.add_members(&users[0], team.id, &[users[1].user_id]).await?;
        let members = vec![users[0].user_id, users[1].user_id];
        let mut rng_state = 7u64;
        let mut next = |n: u64| {
            rng_state = rng_state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            usize::try_from((rng_state >> 33) % n).unwrap_or(0)
        };
        let now = fx.clock_now();
        let mut ids = Vec::new();
        for i in 0..60 {
            let creator = users[next(3)];
            let due = if next(4) == 0 { json!(null) } else { json!((now + chrono::Duration::days(i64::try_from(next(20)).unwrap_or(0) - 10)).to_rfc3339()) };
            let tags: Vec<&str> = (0..next(3)).map(|_| TAGS[next(4)]).collect();
            let assignees: Vec<i64> = (0..next(3)).map(|_| users[next(3)].user_id).collect();
            let team_ref = if creator.user_id == users[0].user_id && next(2) == 0 { json!(team.id) } else { json!(null) };
            let body = json!({"title": format!("{} {i}", WORDS[next(6)]), "description": WORDS[next(6)], "status": STATUSES[next(4)],
                "priority": PRIORITIES[next(4)], "due_date": due, "tags": tags, "assigned_to": assignees, "assigned_team": team_ref});
            let t = fx.svc.tasks.create(&creator, input(body)?).await?;
            if next(5) == 0 {
                fx.svc.tasks.archive(&creator, t.id, None).await?;
            }
            if next(3) == 0 {
                fx.svc.tasks.update(&creator, t.id, input(json!({"description": "touched"}))?, taskhub_core::tasks::WriteMode::Patch, None).await?;
            }
            ids.push(t.id);
            fx.tick(i64::try_from(next(3)).unwrap_or(0));
        }
        let staff = users[3];
        let mut tasks = Vec::new();
        for id in ids {
            tasks.push(fx.svc.tasks.get(&staff, id).await?);
        }
        anyhow::Ok((fx, tasks, users, team.id, members))
    })?;
    let now = fx.clock_now();
    let mut runner = TestRunner::new(Config { cases: 64, failure_persistence: None, ..Config::default() });
    let result = runner.run(&filter(), |f| {
        let viewer = users[f.viewer % users.len()];
        let day = |d: i64| (now + chrono::Duration::days(d)).to_rfc3339();
        let join = |v: &Option<Vec<usize>>, names: &[&str; 4]| {
            v.as_ref().map(|v| v.iter().map(|i| names[*i]).collect::<Vec<_>>().join(","))
        };
        let q = TaskQuery {
            status: join(&f.status, &STATUSES),
            priority: join(&f.priority, &PRIORITIES),
            tag: f.tag.map(|i| TAGS[i].to_uppercase()),
            assignee: f.assignee.map(|i| users[i].user_id.to_string()),
            team: f.team.then(|| team_id.to_string()),
            created_by: f.created_by.map(|i| users[i].user_id.to_string()),
            archived: f.archived.map(str::to_owned),
            overdue: f.overdue.map(|b| b.to_string()),
            due_before: f.due_before.map(day),
            due_after: f.due_after.map(day),
            search: f.search.map(str::to_owned),
            ordering: Some(ORDERINGS[f.ordering].to_owned()),
        };
        // Walk every page (7 rows each) so the cursors are part of what is checked.
        let got: Vec<i64> = rt
            .block_on(async {
                let mut all = Vec::new();
                let mut page = PageRequest::first(7);
                loop {
                    let p = fx.svc.tasks.list(&viewer, &q, &page).await?;
                    all.extend(p.items.iter().map(|t| t.id));
                    match p.next_cursor {
                        Some(c) => page = PageRequest { page_size: Some(7), cursor: Some(c) },
                        None => break,
                    }
                }
                anyhow::Ok(all)
            })
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = reference(&tasks, &f, &users, team_id, &members, now);
        prop_assert_eq!(got, want, "filter {:?}", f);
        Ok(())
    });
    result.map_err(|e| anyhow::anyhow!("{e}"))
}

#[test]
fn random_filters_match_the_reference_model_on_sqlite() -> Result<()> {
    random_filters_match_the_reference_model(Engine::Sqlite)
}

#[test]
fn random_filters_match_the_reference_model_on_postgres() -> Result<()> {
    random_filters_match_the_reference_model(Engine::Postgres)
}

//! `taskhub seed-demo`: realistic demo data through the core services, so every row obeys the
//! same rules (and writes the same history and events) as data entered through the API.

use crate::cli::SeedArgs;
use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::sync::Arc;
use taskhub_core::tasks::TaskInput;
use taskhub_core::teams::TeamInput;
use taskhub_core::users::UserInput;
use taskhub_core::{Actor, Error, Services};

/// The password of every demo user.
pub const DEMO_PASSWORD: &str = "taskhub-demo-password";

const FIRST: [&str; 24] = [
    "ada",
    "alan",
    "barbara",
    "brian",
    "claude",
    "donald",
    "edsger",
    "frances",
    "grace",
    "guido",
    "hedy",
    "ken",
    "linus",
    "margaret",
    "niklaus",
    "radia",
    "rob",
    "shafi",
    "sophie",
    "tim",
    "tony",
    "whitfield",
    "yukihiro",
    "zoe",
];
const VERBS: [&str; 12] = [
    "Write", "Review", "Fix", "Plan", "Test", "Deploy", "Document", "Refactor", "Design", "Measure", "Migrate", "Audit",
];
const NOUNS: [&str; 14] = [
    "login flow",
    "billing page",
    "search index",
    "release notes",
    "API gateway",
    "onboarding email",
    "CI pipeline",
    "database backup",
    "mobile layout",
    "rate limiter",
    "audit report",
    "cache layer",
    "pricing table",
    "error pages",
];
const TAGS: [&str; 15] = [
    "backend",
    "frontend",
    "bug",
    "feature",
    "ops",
    "security",
    "docs",
    "ux",
    "perf",
    "infra",
    "research",
    "urgent-fix",
    "customer",
    "tech-debt",
    "q4",
];
const TEAMS: [&str; 5] = ["Platform", "Growth", "Mobile", "Data", "Support"];
const COMMENTS: [&str; 6] = [
    "Looks good to me.",
    "I can take this one.",
    "Blocked on the review of the design doc.",
    "Pushed a first draft.",
    "Can we split this into two tasks?",
    "Done on staging, checking production next.",
];

/// What the seed created.
#[derive(Debug, Default)]
pub struct SeedReport {
    /// Users created or reused.
    pub users: usize,
    /// Teams created.
    pub teams: usize,
    /// Tasks created.
    pub tasks: u32,
    /// Comments created.
    pub comments: u32,
}

/// Seeds users, teams, tasks with tags, assignees and comments.
pub async fn seed_demo(services: &Services, args: &SeedArgs) -> Result<SeedReport> {
    anyhow::ensure!(args.users >= 20, "--users must be at least 20");
    anyhow::ensure!((1..=1_000_000).contains(&args.tasks), "--tasks must be between 1 and 1,000,000");
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut report = SeedReport::default();
    let mut actors = Vec::new();
    for i in 0..args.users as usize {
        let base = FIRST.get(i % FIRST.len()).copied().unwrap_or("user");
        let username = if i < FIRST.len() { base.to_owned() } else { format!("{base}{i}") };
        actors.push(demo_user(services, &username, i == 0).await?);
    }
    report.users = actors.len();
    let admin = *actors.first().context("no users")?;
    let mut teams = Vec::new();
    for (n, name) in TEAMS.iter().enumerate() {
        let lead = actors.get(n + 1).copied().unwrap_or(admin);
        let t = services
            .teams
            .create(
                &lead,
                serde_json::from_value::<TeamInput>(json!({"name": name, "description": format!("The {name} team")}))?,
            )
            .await?;
        let members: Vec<i64> = actors.choose_multiple(&mut rng, 6).map(|a| a.user_id).collect();
        services.teams.add_members(&lead, t.id, &members).await?;
        teams.push((t.id, lead));
    }
    report.teams = teams.len();

    let bar = if args.quiet { ProgressBar::hidden() } else { ProgressBar::new(u64::from(args.tasks)) };
    bar.set_style(
        ProgressStyle::with_template("{spinner} seeding tasks [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let services = Arc::new(services.clone());
    let sem = Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut set = tokio::task::JoinSet::new();
    let now = chrono::Utc::now();
    for i in 0..args.tasks {
        let (creator, body, comments) = random_task(&mut rng, &actors, &teams, now, i);
        let permit = sem.clone().acquire_owned().await?;
        let svc = services.clone();
        set.spawn(async move {
            let _permit = permit;
            let task = svc.tasks.create(&creator, body).await?;
            let mut n = 0u32;
            for (author, text) in comments {
                match svc.comments.add(&author, task.id, text).await {
                    Ok(_) => n += 1,
                    Err(Error::NotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok::<u32, Error>(n)
        });
        while set.len() > args.concurrency.max(1) * 2 {
            if let Some(r) = set.join_next().await {
                report.comments += r??;
                report.tasks += 1;
                bar.inc(1);
            }
        }
    }
    while let Some(r) = set.join_next().await {
        report.comments += r??;
        report.tasks += 1;
        bar.inc(1);
    }
    bar.finish_and_clear();
    Ok(report)
}

async fn demo_user(services: &Services, username: &str, staff: bool) -> Result<Actor> {
    if let Some(u) = services.users.find_by_username(username).await? {
        return Ok(Actor { user_id: u.id, is_staff: u.is_staff });
    }
    let input = UserInput {
        username: username.to_owned(),
        email: format!("{username}@demo.taskhub.invalid"),
        password: DEMO_PASSWORD.to_owned(),
        display_name: Some(capitalize(username)),
        is_staff: None,
    };
    let u = services.users.create_local(input, staff).await?;
    Ok(Actor { user_id: u.id, is_staff: u.is_staff })
}

fn capitalize(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

fn random_task(
    rng: &mut StdRng,
    actors: &[Actor],
    teams: &[(i64, Actor)],
    now: chrono::DateTime<chrono::Utc>,
    i: u32,
) -> (Actor, TaskInput, Vec<(Actor, &'static str)>) {
    let pick = |rng: &mut StdRng, xs: &[&'static str]| xs.choose(rng).copied().unwrap_or_default();
    // A share of the tasks belongs to a team, created by its lead so the team reference is allowed.
    let team = if rng.gen_bool(0.3) { teams.choose(rng).copied() } else { None };
    let creator = team.map_or_else(|| actors.choose(rng).copied().unwrap_or(Actor::user(1)), |(_, lead)| lead);
    let status = ["todo", "todo", "in_progress", "blocked", "done", "done"].choose(rng).copied().unwrap_or("todo");
    let priority = ["low", "medium", "medium", "high", "urgent"].choose(rng).copied().unwrap_or("medium");
    let due = rng.gen_bool(0.7).then(|| (now + chrono::Duration::hours(rng.gen_range(-24 * 20..24 * 40))).to_rfc3339());
    let n_tags = rng.gen_range(0..=3);
    let tags: Vec<&str> = TAGS.choose_multiple(rng, n_tags).copied().collect();
    let n_assignees = rng.gen_range(0..=3);
    let assignees: Vec<serde_json::Value> = actors
        .choose_multiple(rng, n_assignees)
        .map(|a| json!({"user_id": a.user_id, "role": if rng.gen_bool(0.3) { "owner" } else { "collaborator" }}))
        .collect();
    let body = json!({
        "title": format!("{} the {} #{}", pick(rng, &VERBS), pick(rng, &NOUNS), i + 1),
        "description": format!("Demo task {} generated by seed-demo.", i + 1),
        "status": status,
        "priority": priority,
        "due_date": due,
        "estimated_hours": f64::from(rng.gen_range(1..=80u32)) / 4.0,
        "tags": tags,
        "assignees": assignees,
        "assigned_team": team.map(|(id, _)| id),
        "metadata": {"source": "seed-demo", "points": rng.gen_range(1..=13)},
    });
    let input: TaskInput = serde_json::from_value(body).unwrap_or_default();
    let comments = (0..rng.gen_range(0..=2)).map(|_| (creator, pick(rng, &COMMENTS))).collect();
    (creator, input, comments)
}

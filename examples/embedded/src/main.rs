//! Embedding `taskhub-core` in another Rust application: no HTTP, no server, the same rules.
//!
//! Run with `cargo run -p taskhub-example-embedded`. It opens an in-memory SQLite database,
//! creates two users and a team, works on a task, and prints its history and the events the
//! outbox holds for a relay to publish.

use anyhow::Result;
use serde_json::json;
use taskhub_core::page::PageRequest;
use taskhub_core::tasks::{AssignInput, TaskInput, TaskQuery, WriteMode};
use taskhub_core::users::UserInput;
use taskhub_core::{Actor, Error, Services, store};

#[tokio::main]
async fn main() -> Result<()> {
    let services = Services::new(store::connect("sqlite::memory:").await?);
    let register = |name: &str| UserInput {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: "a long enough password".into(),
        display_name: None,
        is_staff: None,
    };
    let ada = Actor::user(services.users.register(register("ada")).await?.id);
    let bob = Actor::user(services.users.register(register("bob")).await?.id);

    let body: TaskInput = serde_json::from_value(json!({
        "title": "Write the launch post", "priority": "high", "tags": ["docs"], "estimated_hours": 2.5
    }))?;
    let task = services.tasks.create(&ada, body).await?;
    services.tasks.assign(&ada, task.id, AssignInput { users: vec![bob.user_id], role: None }, None).await?;

    // Bob is a collaborator: he sees the task but may not change it. The rule lives in core.
    let patch: TaskInput = serde_json::from_value(json!({"status": "done"}))?;
    match services.tasks.update(&bob, task.id, patch.clone(), WriteMode::Patch, None).await {
        Err(Error::Forbidden(why)) => println!("bob may not edit: {why}"),
        other => anyhow::bail!("expected forbidden, got {other:?}"),
    }
    services.tasks.update(&ada, task.id, patch, WriteMode::Patch, None).await?;
    services.comments.add(&bob, task.id, "Nice work!").await?;

    let mine = services
        .tasks
        .list(&bob, &TaskQuery { assignee: Some("me".into()), ..Default::default() }, &PageRequest::default())
        .await?;
    println!("bob's tasks: {:?}", mine.items.iter().map(|t| (&t.title, t.status)).collect::<Vec<_>>());
    for h in services.tasks.history(&ada, task.id, &PageRequest::default()).await?.items {
        println!("history: {:<14} by {:?} {}", h.action.as_str(), h.actor, h.changes);
    }
    let outbox = services.store().read().await?.list_outbox(0, 100).await?;
    for row in outbox {
        println!("outbox #{:<2} {:<16} key={:<8} {}", row.id, row.topic, row.key, row.event.event_type);
    }
    Ok(())
}

//! Task notification mail: queued with the notifications consumer's effect, rendered from the
//! templates, sent once per event and recipient (never to the actor), retried with back-off and
//! kept as dead after the last try — into a file mailbox, and over SMTP to a real server
//! (aiosmtpd, installed by scripts/services.sh).
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use anyhow::Result;
use async_trait::async_trait;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use taskhub_core::auth::PasswordHasher;
use taskhub_core::clock::ManualClock;
use taskhub_core::events::consumer::ConsumerRunner;
use taskhub_core::events::{MemoryBus, MemorySource, Relay};
use taskhub_core::services::Ctx;
use taskhub_core::tasks::WriteMode;
use taskhub_core::users::UserInput;
use taskhub_core::{Actor, Services, store};
mod common;

use taskhub_jobs::mail::{FileMailbox, MailSender, Mailer, OutgoingMail, SendReport};

struct World {
    services: Services,
    clock: Arc<ManualClock>,
    dir: std::path::PathBuf,
    alice: Actor,
    bob: Actor,
    carol: Actor,
    task: i64,
}

async fn user(s: &Services, name: &str) -> Result<Actor> {
    let input = UserInput {
        username: name.into(),
        email: format!("{name}@example.com"),
        password: "correct horse battery".into(),
        display_name: Some(name.to_uppercase()),
        ..Default::default()
    };
    Ok(Actor::user(s.users.register(input).await?.id))
}

/// alice creates a task, assigns bob and carol, changes its status; bob comments. Then the
/// notifications consumer runs, queueing the mail.
async fn world() -> Result<World> {
    let dir = std::env::temp_dir().join(format!("taskhub-mail-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir)?;
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let url = format!("sqlite://{}", dir.join("db.sqlite").display());
    let ctx = Ctx { store: store::connect(&url).await?, clock: clock.clone() };
    let hasher = PasswordHasher::new(argon2::Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
    let services = Services::build(ctx.clone(), hasher);
    let (alice, bob, carol) =
        (user(&services, "alice").await?, user(&services, "bob").await?, user(&services, "carol").await?);
    let t = services.tasks.create(&alice, serde_json::from_value(json!({"title": "Fix <login> & co"}))?).await?;
    let assign = serde_json::from_value(json!({"users": [bob.user_id, carol.user_id], "role": "owner"}))?;
    services.tasks.assign(&alice, t.id, assign, None).await?;
    services
        .tasks
        .update(&alice, t.id, serde_json::from_value(json!({"status": "in_progress"}))?, WriteMode::Patch, None)
        .await?;
    services.comments.add(&bob, t.id, "Looking at it <now>").await?;
    // The relay and the notifications consumer, as the embedded server runs them.
    let bus = Arc::new(MemoryBus::new());
    let relay = Relay::new(ctx.clone(), bus.clone());
    while relay.run_once().await? > 0 {}
    relay.release().await?;
    let runner = ConsumerRunner::new(
        ctx.clone(),
        Arc::new(MemorySource::new(ctx.clone(), bus.wake_handle())),
        Arc::new(taskhub_core::projections::Notifications::default()),
    );
    let mut sub = runner.subscribe().await?;
    while !runner.run_once(sub.as_mut(), Duration::from_millis(50)).await?.is_empty() {}
    Ok(World { services, clock, dir, alice, bob, carol, task: t.id })
}

impl World {
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        use taskhub_core::clock::Clock;
        self.clock.now()
    }

    fn clock_day(&self) -> chrono::NaiveDate {
        use taskhub_core::clock::Clock;
        self.clock.now().date_naive()
    }
}

fn mails_in(dir: &std::path::Path) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "eml") {
            out.push(std::fs::read_to_string(p)?);
        }
    }
    Ok(out)
}

fn to_of(mail: &str) -> String {
    common::header(mail, "To")
}

#[tokio::test]
async fn mails_go_to_the_assignees_once_never_to_the_actor() -> Result<()> {
    let w = world().await?;
    let mailbox = w.dir.join("mailbox");
    let sender = MailSender::new(
        w.services.clone(),
        Arc::new(FileMailbox::new(&mailbox, "TaskHub <taskhub@example.com>")?),
        "https://tasks.example.com",
    );
    let report = sender.run_once().await?;
    // assigned → bob, carol; status changed → bob, carol; bob's comment → carol (not bob).
    assert_eq!(report, SendReport { sent: 5, retried: 0, dead: 0 });
    assert_eq!(sender.run_once().await?, SendReport::default(), "each mail once");
    let mails = mails_in(&mailbox)?;
    assert_eq!(mails.len(), 5);
    let to_bob: Vec<&String> = mails.iter().filter(|m| to_of(m).contains("bob@example.com")).collect();
    let to_carol: Vec<&String> = mails.iter().filter(|m| to_of(m).contains("carol@example.com")).collect();
    assert_eq!((to_bob.len(), to_carol.len()), (2, 3));
    assert!(
        mails.iter().all(|m| !to_of(m).contains("alice")),
        "alice acted every time but the comment, and is no assignee"
    );
    let comment =
        to_carol.iter().find(|m| m.contains("Subject: [TaskHub] New comment on")).expect("carol hears of the comment");
    assert!(comment.contains("Looking at it <now>"), "the plain-text part carries the comment:\n{comment}");
    assert!(
        comment.contains("Looking at it &lt;now&gt;") || comment.contains("&#60;now&#62;"),
        "the HTML part escapes it"
    );
    assert!(comment.contains(&format!("https://tasks.example.com/tasks/{}/", w.task)), "a link back to the task");
    assert!(comment.contains("multipart/alternative"));
    assert!(comment.contains("Message-ID: <"));
    assert!(to_bob.iter().any(|m| m.contains("Subject: [TaskHub] Assigned: Fix <login> & co")));
    let _ = (w.alice, w.bob, w.carol, w.clock);
    Ok(())
}

/// Fails the first `fail` sends, then accepts.
struct Flaky {
    fail: AtomicUsize,
    sent: AtomicUsize,
}

#[async_trait]
impl Mailer for Flaky {
    async fn send(&self, _m: &OutgoingMail) -> Result<(), String> {
        if self.fail.load(Ordering::SeqCst) > 0 {
            self.fail.fetch_sub(1, Ordering::SeqCst);
            return Err("421 try again later".into());
        }
        self.sent.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test]
async fn failed_mails_are_retried_with_back_off_then_kept_as_dead() -> Result<()> {
    let w = world().await?;
    // Every send fails twice in a row, then works: all 5 go out on the third pass.
    let flaky = Arc::new(Flaky { fail: AtomicUsize::new(10), sent: AtomicUsize::new(0) });
    let sender = MailSender::new(w.services.clone(), flaky.clone(), "http://x");
    assert_eq!(sender.run_once().await?, SendReport { sent: 0, retried: 5, dead: 0 });
    assert_eq!(sender.run_once().await?, SendReport::default(), "not before the back-off");
    w.clock.advance(chrono::Duration::seconds(31));
    assert_eq!(sender.run_once().await?, SendReport { sent: 0, retried: 5, dead: 0 });
    w.clock.advance(chrono::Duration::seconds(61));
    assert_eq!(sender.run_once().await?, SendReport { sent: 5, retried: 0, dead: 0 });
    assert_eq!(flaky.sent.load(Ordering::SeqCst), 5);
    // A server that never accepts: dead after 5 tries, the error kept.
    let w = world().await?;
    let never = Arc::new(Flaky { fail: AtomicUsize::new(usize::MAX), sent: AtomicUsize::new(0) });
    let sender = MailSender::new(w.services.clone(), never, "http://x");
    let mut dead = 0;
    for _ in 0..5 {
        dead += sender.run_once().await?.dead;
        w.clock.advance(chrono::Duration::hours(1));
    }
    assert_eq!(dead, 5);
    let c = w.services.store().read().await?.mail_queue_counts(w.now()).await?;
    assert_eq!((c.pending, c.running, c.done, c.failed, c.dead), (0, 0, 0, 0, 5));
    let url = format!("sqlite://{}", w.dir.join("db.sqlite").display());
    use sqlx::Connection;
    let mut c = sqlx::SqliteConnection::connect(&url).await?;
    let errors: Vec<(Option<String>, i64)> =
        sqlx::query_as("SELECT last_error, attempts FROM mail_outbox").fetch_all(&mut c).await?;
    assert!(errors.iter().all(|(e, n)| e.as_deref() == Some("421 try again later") && *n == 5), "{errors:?}");
    Ok(())
}

#[tokio::test]
async fn a_real_smtp_server_receives_the_mail() -> Result<()> {
    let w = world().await?;
    let server = common::SmtpServer::start(w.dir.join("smtp")).await?;
    let mailer = taskhub_jobs::mail::SmtpMailer::new(&server.url(), "TaskHub <taskhub@example.com>")?;
    let sender = MailSender::new(w.services.clone(), Arc::new(mailer), "https://tasks.example.com");
    let report = sender.run_once().await?;
    let mut received = Vec::new();
    for _ in 0..100 {
        received = server.received();
        if received.len() >= 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(server);
    assert_eq!(report, SendReport { sent: 5, retried: 0, dead: 0 });
    assert_eq!(received.len(), 5, "the server got every mail");
    let rcpt: Vec<String> = received.iter().map(|m| to_of(m)).collect();
    assert_eq!(rcpt.iter().filter(|t| t.contains("bob@example.com")).count(), 2, "{rcpt:?}");
    assert_eq!(rcpt.iter().filter(|t| t.contains("carol@example.com")).count(), 3, "{rcpt:?}");
    assert!(rcpt.iter().all(|t| !t.contains("alice")), "never the actor: {rcpt:?}");
    assert!(
        received.iter().any(|m| m.contains("Subject: [TaskHub] New comment on") && m.contains("Looking at it <now>"))
    );
    Ok(())
}

#[test]
fn the_daily_summary_is_due_once_a_day_at_the_local_time() -> Result<()> {
    use taskhub_jobs::schedule::DailyAt;
    let at = |s: &str| -> Result<chrono::DateTime<chrono::Utc>> { Ok(s.parse()?) };
    // 07:00 in Berlin is 06:00 UTC in winter and 05:00 UTC in summer.
    let mut s = DailyAt::parse("07:00", "Europe/Berlin")?;
    assert_eq!(s.due(at("2026-11-26T05:59:00Z")?), None);
    assert_eq!(s.due(at("2026-11-26T06:00:00Z")?), Some("2026-11-26".parse()?));
    assert_eq!(s.due(at("2026-11-26T06:01:00Z")?), None, "once a day, even if it fires again");
    assert_eq!(s.due(at("2026-11-26T22:59:00Z")?), None, "23:59 local, same day");
    assert_eq!(s.due(at("2026-11-26T23:30:00Z")?), None, "00:30 local: a new day, before 07:00");
    assert_eq!(s.due(at("2026-11-27T06:00:00Z")?), Some("2026-11-27".parse()?));
    let mut summer = DailyAt::parse("07:00", "Europe/Berlin")?;
    assert_eq!(summer.due(at("2026-07-01T05:00:00Z")?), Some("2026-07-01".parse()?));
    assert!(DailyAt::parse("7am", "UTC").is_err());
    assert!(DailyAt::parse("07:00", "Mars/Olympus_Mons").is_err());
    Ok(())
}

#[tokio::test]
async fn daily_summaries_are_mailed_once_and_skipped_when_empty() -> Result<()> {
    let w = world().await?;
    let day: chrono::NaiveDate = w.clock_day();
    // bob and carol have a task assigned in the last 24 h; alice has nothing assigned.
    assert_eq!(w.services.maintenance.daily_summaries(day).await?, 2);
    assert_eq!(w.services.maintenance.daily_summaries(day).await?, 0, "at most once a day");
    let mailbox = w.dir.join("summaries");
    let sender = MailSender::new(
        w.services.clone(),
        Arc::new(FileMailbox::new(&mailbox, "taskhub@example.com")?),
        "https://t.example",
    );
    sender.run_once().await?;
    let summaries: Vec<String> =
        mails_in(&mailbox)?.into_iter().filter(|m| m.contains("Subject: [TaskHub] Your day:")).collect();
    assert_eq!(summaries.len(), 2);
    let bob = summaries.iter().find(|m| to_of(m).contains("bob@example.com")).expect("bob's summary");
    assert!(bob.contains("Subject: [TaskHub] Your day: 1 new, 0 done, 0 overdue, 1 pending"), "{bob}");
    assert!(bob.contains("https://t.example/dashboard/"));
    assert!(!summaries.iter().any(|m| to_of(m).contains("alice")), "nothing to tell alice");
    Ok(())
}

//! Mail: the queued task notifications rendered from askama templates (plain text and HTML)
//! and sent over SMTP (lettre) or into a mailbox directory (one `.eml` per message, for the
//! embedded default: nothing needs a mail server to run).
//!
//! [`MailSender`] takes due mails from the mail outbox (queued by the notifications consumer in
//! the transaction of its effect), sends each, and records it sent — or retries it with
//! back-off, and after [`MAX_ATTEMPTS`] tries keeps it as dead with the error. A crash between
//! the SMTP acknowledgement and the record means one resend; each message carries a stable
//! `Message-ID` (`<event id>:<user id>@taskhub>`) so mail clients collapse such a duplicate.

use askama::Template;
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use taskhub_core::Services;
use taskhub_core::store::maintain::MailRow;

/// Tries before a mail is dead.
pub const MAX_ATTEMPTS: i32 = 5;

/// A rendered mail.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMail {
    /// Stable id (`<event id>:<user id>`).
    pub key: String,
    /// Recipient address.
    pub to_email: String,
    /// Recipient name.
    pub to_name: String,
    /// Subject.
    pub subject: String,
    /// Plain-text body.
    pub text: String,
    /// HTML body.
    pub html: String,
}

/// Where mail goes.
#[async_trait]
pub trait Mailer: Send + Sync {
    /// Sends one message; `Err` with a reason if it was not accepted.
    async fn send(&self, m: &OutgoingMail) -> Result<(), String>;
}

fn message(from: &Mailbox, m: &OutgoingMail) -> Result<Message, String> {
    let to = Mailbox::new(Some(m.to_name.clone()), m.to_email.parse().map_err(|e| format!("bad address: {e}"))?);
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(m.subject.clone())
        .message_id(Some(format!("<{}@taskhub>", m.key)))
        .multipart(MultiPart::alternative_plain_html(m.text.clone(), m.html.clone()))
        .map_err(|e| format!("cannot build the message: {e}"))
}

/// SMTP (production): `smtp://host:port` (plain), `smtps://…` (TLS) or `smtp://…?tls=required`.
pub struct SmtpMailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl SmtpMailer {
    /// A mailer for `url`, sending as `from`.
    pub fn new(url: &str, from: &str) -> anyhow::Result<Self> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)?.build();
        Ok(SmtpMailer { transport, from: from.parse()? })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, m: &OutgoingMail) -> Result<(), String> {
        let msg = message(&self.from, m)?;
        self.transport.send(msg).await.map(|_| ()).map_err(|e| format!("SMTP: {e}"))
    }
}

/// A directory of `.eml` files (the embedded default).
pub struct FileMailbox {
    dir: PathBuf,
    from: Mailbox,
}

impl FileMailbox {
    /// Writes into `dir` (created if missing), sending as `from`.
    pub fn new(dir: impl Into<PathBuf>, from: &str) -> anyhow::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(FileMailbox { dir, from: from.parse()? })
    }
}

#[async_trait]
impl Mailer for FileMailbox {
    async fn send(&self, m: &OutgoingMail) -> Result<(), String> {
        let bytes = message(&self.from, m)?.formatted();
        let name = m.key.replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let path = self.dir.join(format!("{name}.eml"));
        // Written whole, then renamed: a reader never sees half a message.
        tokio::fs::write(&tmp, bytes).await.map_err(|e| format!("mailbox: {e}"))?;
        tokio::fs::rename(&tmp, &path).await.map_err(|e| format!("mailbox: {e}"))
    }
}

/// What the task templates show.
struct TaskView<'a> {
    name: &'a str,
    headline: &'a str,
    title: &'a str,
    status: &'a str,
    comment: Option<&'a str>,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/task.txt")]
struct TaskText<'a> {
    v: &'a TaskView<'a>,
}

#[derive(Template)]
#[template(path = "mail/task.html")]
struct TaskHtml<'a> {
    v: &'a TaskView<'a>,
}

/// What the summary templates show.
struct SummaryView<'a> {
    name: &'a str,
    day: &'a str,
    newly_assigned: i64,
    completed: i64,
    overdue: i64,
    pending: i64,
    link: &'a str,
}

#[derive(Template)]
#[template(path = "mail/summary.txt")]
struct SummaryText<'a> {
    v: &'a SummaryView<'a>,
}

#[derive(Template)]
#[template(path = "mail/summary.html")]
struct SummaryHtml<'a> {
    v: &'a SummaryView<'a>,
}

fn both(text: impl Template, html: impl Template) -> Result<(String, String), String> {
    Ok((text.render().map_err(|e| format!("template: {e}"))?, html.render().map_err(|e| format!("template: {e}"))?))
}

fn render_summary(
    row: &MailRow,
    data: &Value,
    to_email: &str,
    to_name: &str,
    base_url: &str,
) -> Result<OutgoingMail, String> {
    let n = |k: &str| data.pointer(&format!("/counts/{k}")).and_then(Value::as_i64).unwrap_or_default();
    let link = format!("{}/dashboard/", base_url.trim_end_matches('/'));
    let v = SummaryView {
        name: to_name,
        day: data.get("day").and_then(Value::as_str).unwrap_or_default(),
        newly_assigned: n("newly_assigned"),
        completed: n("completed"),
        overdue: n("overdue"),
        pending: n("pending"),
        link: &link,
    };
    let (text, html) = both(SummaryText { v: &v }, SummaryHtml { v: &v })?;
    Ok(OutgoingMail {
        key: row.key.clone(),
        to_email: to_email.to_owned(),
        to_name: to_name.to_owned(),
        subject: format!(
            "[TaskHub] Your day: {} new, {} done, {} overdue, {} pending",
            v.newly_assigned, v.completed, v.overdue, v.pending
        ),
        text,
        html,
    })
}

/// Renders a queued mail for its recipient; `base_url` is where the pages are served.
pub fn render(row: &MailRow, to_email: &str, to_name: &str, base_url: &str) -> Result<OutgoingMail, String> {
    let data: Value = serde_json::from_str(&row.data).map_err(|e| format!("bad mail data: {e}"))?;
    if row.kind == "daily_summary" {
        return render_summary(row, &data, to_email, to_name, base_url);
    }
    let s = |k: &str| data.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
    let (title, status) = (s("title"), s("status"));
    let comment = data.get("comment").and_then(Value::as_str);
    let (subject, headline) = match row.kind.as_str() {
        "created" => (format!("[TaskHub] New task: {title}"), "A task was created for you.".to_owned()),
        "assigned" => (format!("[TaskHub] Assigned: {title}"), "You were assigned to a task.".to_owned()),
        "status_changed" => (format!("[TaskHub] {title} is now {status}"), format!("A task of yours is now {status}.")),
        "comment" => (format!("[TaskHub] New comment on {title}"), "A task of yours has a new comment.".to_owned()),
        "overdue" => (format!("[TaskHub] Overdue: {title}"), "A task of yours is past its due date.".to_owned()),
        other => return Err(format!("unknown mail kind {other}")),
    };
    let link = format!("{}/tasks/{}/", base_url.trim_end_matches('/'), row.task_id.unwrap_or_default());
    let v = TaskView { name: to_name, headline: &headline, title: &title, status: &status, comment, link: &link };
    let (text, html) = both(TaskText { v: &v }, TaskHtml { v: &v })?;
    Ok(OutgoingMail {
        key: row.key.clone(),
        to_email: to_email.to_owned(),
        to_name: to_name.to_owned(),
        subject,
        text,
        html,
    })
}

/// What one pass of the sender did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendReport {
    /// Sent.
    pub sent: usize,
    /// Failed, to be retried.
    pub retried: usize,
    /// Failed for the last time (or undeliverable): kept as dead with the error.
    pub dead: usize,
}

/// What became of one mail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Sent and recorded.
    Sent,
    /// Nothing to do: already sent, dead, or handed over again meanwhile.
    Skipped,
    /// Failed; tried again after the back-off.
    Retry(String),
    /// Failed for the last time; kept as dead with the error.
    Dead(String),
}

/// How long a mail handed to the `interactive` queue stays with that hand-over. A job that is
/// lost with its storage (or waits longer than this) does not lose the mail: it is handed over
/// again, and the older job, if it ever runs, finds the token changed and does nothing.
pub const DISPATCH_LEASE: chrono::Duration = chrono::Duration::minutes(5);

/// Sends the mail outbox.
pub struct MailSender {
    services: Services,
    mailer: Arc<dyn Mailer>,
    base_url: String,
    backoff: chrono::Duration,
}

impl MailSender {
    /// A sender through `mailer`; links point at `base_url`.
    pub fn new(services: Services, mailer: Arc<dyn Mailer>, base_url: impl Into<String>) -> Self {
        MailSender { services, mailer, base_url: base_url.into(), backoff: chrono::Duration::seconds(30) }
    }

    /// Sends what is due now (up to 50 mails) in this task, without a job queue; several
    /// senders at once each take other mails.
    pub async fn run_once(&self) -> taskhub_core::Result<SendReport> {
        let now = self.services.ctx.clock.now();
        let token = uuid::Uuid::now_v7().to_string();
        let mut tx = self.services.store().begin().await?;
        let rows = tx.claim_mail(now, now + chrono::Duration::seconds(120), &token, 50).await?;
        tx.commit().await?;
        let mut report = SendReport::default();
        for row in rows {
            match self.deliver(row).await? {
                Outcome::Sent => report.sent += 1,
                Outcome::Retry(_) => report.retried += 1,
                Outcome::Dead(_) => report.dead += 1,
                Outcome::Skipped => {}
            }
        }
        Ok(report)
    }

    /// Hands the mails due now (up to 200) to the `interactive` queue, one
    /// [`Job::SendMail`](crate::runner::Job::SendMail) each, under a fresh token and
    /// [`DISPATCH_LEASE`]; returns how many. A mail whose push failed is given back at once.
    pub async fn dispatch(&self, queue: &mut crate::runner::JobQueue) -> anyhow::Result<usize> {
        let now = self.services.ctx.clock.now();
        let token = uuid::Uuid::now_v7().to_string();
        let mut tx = self.services.store().begin().await?;
        let rows = tx.claim_mail(now, now + DISPATCH_LEASE, &token, 200).await?;
        tx.commit().await?;
        let mut pushed = 0;
        let mut rows = rows.into_iter();
        for row in rows.by_ref() {
            if let Err(e) = queue.push(crate::runner::Job::SendMail { id: row.id, token: token.clone() }).await {
                let mut tx = self.services.store().begin().await?;
                tx.release_mail(row.id, &token).await?;
                for rest in rows {
                    tx.release_mail(rest.id, &token).await?;
                }
                tx.commit().await?;
                return Err(e.context("cannot hand mail to the interactive queue"));
            }
            pushed += 1;
        }
        Ok(pushed)
    }

    /// The job of the `interactive` queue: sends mail `id` if it still waits under `token`.
    pub async fn send_queued(&self, id: i64, token: &str) -> taskhub_core::Result<Outcome> {
        let row = self.services.store().read().await?.mail_for_send(id, token).await?;
        match row {
            Some(row) => self.deliver(row).await,
            None => Ok(Outcome::Skipped),
        }
    }

    /// Renders and sends one claimed mail, and records what came of it.
    async fn deliver(&self, row: MailRow) -> taskhub_core::Result<Outcome> {
        let user = self.services.users.get_raw(row.user_id).await?;
        let outcome = match user {
            Some(u) if u.is_active => match render(&row, &u.email, u.shown_name(), &self.base_url) {
                Ok(m) => self.mailer.send(&m).await.map_err(|e| (e, true)),
                Err(e) => Err((e, false)),
            },
            _ => Err(("the recipient is gone or inactive".to_owned(), false)),
        };
        let now = self.services.ctx.clock.now();
        let mut tx = self.services.store().begin().await?;
        let outcome = match outcome {
            Ok(()) => {
                tx.mail_sent(row.id, now).await?;
                Outcome::Sent
            }
            Err((error, retryable)) => {
                let attempt = row.attempts + 1;
                let retry_at = (retryable && attempt < MAX_ATTEMPTS)
                    .then(|| now + self.backoff * 2i32.saturating_pow(u32::try_from(attempt - 1).unwrap_or(0)));
                tx.mail_failed(row.id, &error, retry_at, now).await?;
                if retry_at.is_some() {
                    Outcome::Retry(error)
                } else {
                    tracing::warn!(mail = %row.key, %error, attempts = attempt, "mail dead");
                    Outcome::Dead(error)
                }
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }
}

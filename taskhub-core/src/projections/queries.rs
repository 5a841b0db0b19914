//! Reading back what the consumers built.

use super::audit::{ChainBreak, GENESIS_HASH, check_row};
use super::search::terms;
use crate::error::{Error, Result};
use crate::page::{Page, PageRequest};
use crate::services::{Actor, Ctx};
use crate::store::consume::{Activity, AuditEntry, Counter, Notification};
use crate::validation::Violations;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;

/// Longest accepted search query, in characters.
pub const MAX_QUERY_CHARS: usize = 200;

/// A search hit.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// The task.
    pub task_id: i64,
    /// Its title.
    pub title: String,
    /// Where the first term occurs in the description (or its start), `[`/`]` around matches.
    pub snippet: String,
    /// Relevance; higher is better.
    pub rank: f64,
}

/// Queries over the read models.
#[derive(Clone)]
pub struct ProjectionService {
    ctx: Ctx,
}

impl ProjectionService {
    /// Queries over `ctx`'s store.
    pub fn new(ctx: Ctx) -> Self {
        ProjectionService { ctx }
    }

    /// The caller's activity feed, newest first.
    pub async fn activity(&self, actor: &Actor, page: &PageRequest) -> Result<Page<Activity>> {
        let size = page.size()?;
        let before: Option<(DateTime<Utc>, i64)> = page.position()?;
        let rows = self.ctx.store.read().await?.list_activity(actor.user_id, before, size + 1).await?;
        Page::from_overfetch(rows, size, None, |a| (a.occurred_at, a.id))
    }

    /// Live tasks the caller may see whose text holds every term of `q`, best first.
    pub async fn search(&self, actor: &Actor, q: &str, page: &PageRequest) -> Result<Page<SearchHit>> {
        let mut v = Violations::new();
        let len = q.chars().count();
        if len == 0 || len > MAX_QUERY_CHARS {
            v.add("q", format!("must be 1 to {MAX_QUERY_CHARS} characters"));
        }
        v.finish()?;
        let size = page.size()?;
        let offset: u32 = page.position()?.unwrap_or(0);
        let terms = terms(q);
        let vis = crate::tasks::policy::visibility(actor);
        let rows = self.ctx.store.read().await?.search_tasks(&vis, &terms, offset, size + 1).await?;
        let hits: Vec<SearchHit> = rows
            .into_iter()
            .map(|r| SearchHit {
                task_id: r.task_id,
                snippet: snippet(&r.description, &terms),
                title: r.title,
                rank: r.rank,
            })
            .collect();
        let more = hits.len() > size as usize;
        let mut items = hits;
        items.truncate(size as usize);
        // The cursor is the offset of the next page.
        let next_cursor = if more { Some(crate::page::encode_cursor(&offset.saturating_add(size))?) } else { None };
        Ok(Page { items, next_cursor, page_size: size, count: None })
    }

    /// The audit chain, oldest first (staff only).
    pub async fn audit(&self, actor: &Actor, page: &PageRequest) -> Result<Page<AuditEntry>> {
        if !actor.is_staff {
            return Err(Error::Forbidden("only staff may read the audit log".into()));
        }
        let size = page.size()?;
        let after: i64 = page.position()?.unwrap_or(0);
        let rows = self.ctx.store.read().await?.list_audit(after, size + 1).await?;
        Page::from_overfetch(rows, size, None, |a| a.id)
    }

    /// Walks the whole audit chain: `Ok(rows)` if every row holds, else the first broken row.
    pub async fn verify_audit(&self) -> Result<std::result::Result<u64, ChainBreak>> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut after = 0;
        let mut rows = 0u64;
        loop {
            let batch = self.ctx.store.read().await?.list_audit(after, 1000).await?;
            let Some(last) = batch.last() else { return Ok(Ok(rows)) };
            after = last.id;
            for row in batch {
                if let Err(reason) = check_row(&prev, &row) {
                    return Ok(Err(ChainBreak { id: row.id, reason }));
                }
                prev = row.hash;
                rows += 1;
            }
        }
    }

    /// The caller's notifications, newest first.
    pub async fn notifications(
        &self,
        actor: &Actor,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<Notification>> {
        let size = page.size()?;
        let before: Option<(DateTime<Utc>, i64)> = page.position()?;
        let rows =
            self.ctx.store.read().await?.list_notifications(actor.user_id, unread_only, before, size + 1).await?;
        Page::from_overfetch(rows, size, None, |n| (n.created_at, n.id))
    }

    /// Marks one of the caller's notifications read (the first read time stays).
    pub async fn read_notification(&self, actor: &Actor, id: i64) -> Result<Notification> {
        let mut tx = self.ctx.store.begin().await?;
        let n = tx
            .read_notification(actor.user_id, id, self.ctx.clock.now())
            .await?
            .ok_or(Error::NotFound("notification"))?;
        tx.commit().await?;
        Ok(n)
    }

    /// The aggregator's counters for days `from..=to`.
    pub async fn counters(&self, from: NaiveDate, to: NaiveDate) -> Result<Vec<Counter>> {
        self.ctx.store.read().await?.list_counters(from, to).await
    }
}

/// Up to ~160 characters of `text` around the first occurrence of a term, terms in brackets.
fn snippet(text: &str, terms: &[String]) -> String {
    const WIDTH: usize = 160;
    let words: Vec<&str> = text.split_whitespace().collect();
    let hit = |w: &str| super::search::terms(w).iter().any(|t| terms.contains(t));
    let first = words.iter().position(|w| hit(w)).unwrap_or(0);
    let start = first.saturating_sub(8);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    for w in words.iter().skip(start) {
        if out.chars().count() + w.chars().count() > WIDTH {
            out.push('…');
            break;
        }
        if !out.is_empty() && !out.ends_with('…') {
            out.push(' ');
        }
        if hit(w) {
            out.push('[');
            out.push_str(w);
            out.push(']');
        } else {
            out.push_str(w);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::snippet;

    #[test]
    fn snippet_brackets_matching_words_near_the_first_hit() {
        let terms = vec!["login".to_owned()];
        assert_eq!(snippet("Users cannot login today.", &terms), "Users cannot [login] today.");
        let long = format!("{} login at last", "word ".repeat(40));
        let s = snippet(&long, &terms);
        assert!(s.starts_with('…') && s.contains("[login]"), "{s}");
        assert_eq!(snippet("", &terms), "");
    }
}

//! search-index: one full-text document per live task, in the database's own engine (SQLite
//! FTS5, PostgreSQL `tsvector` + GIN). The effect re-reads the task's current row, so it is the
//! same whatever order a task's events arrive in; archived or deleted tasks leave the index.
//!
//! Text is tokenized here, not by the engine: lower-cased runs of letters and digits. Both
//! engines then index exactly the same terms and a query means the same on both — every term
//! must be present (no stemming, no stop words).

use crate::error::Result;
use crate::events::consumer::Consumer;
use crate::events::{EventEnvelope, TOPIC_TASK_EVENTS};
use crate::store::Tx;
use async_trait::async_trait;

/// The search-index consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct SearchIndex;

/// The terms of `text`: lower-cased runs of letters and digits, in order.
pub fn terms(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Re-indexes task `id` from its current row (or removes it).
pub(crate) async fn reindex(tx: &mut dyn Tx, id: i64) -> Result<()> {
    match tx.get_task(id).await? {
        Some(t) if !t.is_archived => {
            let title = terms(&t.title).join(" ");
            let mut body = terms(&t.description);
            for tag in &t.tags {
                body.extend(terms(tag));
            }
            tx.index_task(id, &title, &body.join(" ")).await
        }
        _ => tx.unindex_task(id).await,
    }
}

#[async_trait]
impl Consumer for SearchIndex {
    fn name(&self) -> &'static str {
        "search-index"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[TOPIC_TASK_EVENTS]
    }

    async fn apply(&self, tx: &mut dyn Tx, e: &EventEnvelope) -> Result<()> {
        // Comment events do not change the document.
        if e.entity.kind == "task" && !e.event_type.starts_with("comment.") {
            reindex(tx, e.entity.id).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::terms;

    #[test]
    fn terms_are_lowercased_alphanumeric_runs() {
        assert_eq!(terms("Fix the LOGIN-page, v2!"), vec!["fix", "the", "login", "page", "v2"]);
        assert_eq!(terms("\"a\" OR b* NEAR(c)"), vec!["a", "or", "b", "near", "c"]);
        assert_eq!(terms("Café über"), vec!["café", "über"]);
        assert!(terms(" -- ").is_empty());
    }
}

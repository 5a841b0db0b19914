//! analytics-aggregator: per-day counters that make the analytics endpoints cheap — tasks
//! created (by priority and team), status changes (by new status), completions, archives, and
//! analytics views (by endpoint). Counters add, so the order of events does not matter.

use crate::error::Result;
use crate::events::consumer::Consumer;
use crate::events::{EventEnvelope, TOPIC_ANALYTICS_EVENTS, TOPIC_TASK_EVENTS};
use crate::store::Tx;
use async_trait::async_trait;
use serde_json::Value;

/// The analytics-aggregator consumer.
#[derive(Debug, Clone, Copy, Default)]
pub struct AnalyticsAggregator;

/// The `(metric, dimension)` counters `e` adds one to.
pub(crate) fn increments(e: &EventEnvelope) -> Vec<(&'static str, String)> {
    let task = e.data.get("task");
    let field = |name: &str| task.and_then(|t| t.get(name)).map(dimension).unwrap_or_default();
    match e.event_type.as_str() {
        "task.created" => vec![
            ("created", String::new()),
            ("created_by_priority", field("priority")),
            ("created_by_team", field("assigned_team")),
            ("created_by_status", field("status")),
        ],
        "task.status_changed" => {
            let status = field("status");
            let mut v = vec![("status_changed", status.clone())];
            if status == "done" {
                v.push(("completed", String::new()));
                v.push(("completed_by_team", field("assigned_team")));
            }
            v
        }
        "task.archived" => vec![("archived", String::new())],
        "task.overdue" => vec![("overdue", String::new())],
        "comment.added" => vec![("comments", String::new())],
        "analytics.viewed" => vec![("viewed", e.data.get("endpoint").map(dimension).unwrap_or_default())],
        "report.requested" | "report.completed" | "report.failed" => {
            vec![(report_metric(&e.event_type), String::new())]
        }
        _ => Vec::new(),
    }
}

fn report_metric(t: &str) -> &'static str {
    match t {
        "report.requested" => "reports_requested",
        "report.completed" => "reports_completed",
        _ => "reports_failed",
    }
}

fn dimension(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[async_trait]
impl Consumer for AnalyticsAggregator {
    fn name(&self) -> &'static str {
        "analytics-aggregator"
    }

    fn topics(&self) -> &'static [&'static str] {
        &[TOPIC_ANALYTICS_EVENTS, TOPIC_TASK_EVENTS]
    }

    async fn apply(&self, tx: &mut dyn Tx, e: &EventEnvelope) -> Result<()> {
        let day = e.occurred_at.date_naive();
        for (metric, dim) in increments(e) {
            tx.bump_counter(day, metric, &dim, 1).await?;
        }
        Ok(())
    }
}

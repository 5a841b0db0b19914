//! `/metrics` in the Prometheus text format: request counts and latency histograms by route and
//! status, and database pool usage. Kept in the app state (not a process-global recorder), so
//! every server instance in one process — tests, embedding apps — counts its own.

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

/// Upper bounds of the latency buckets, in seconds.
const BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The counters of one server.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<(String, String), Histogram>>,
}

impl Metrics {
    /// Records one request.
    pub fn observe(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut r) = self.requests.lock() {
            *r.entry((method.to_owned(), route.to_owned(), status)).or_default() += 1;
        }
        if let Ok(mut l) = self.latency.lock() {
            let h = l.entry((method.to_owned(), route.to_owned())).or_default();
            h.count += 1;
            h.sum += seconds;
            for (i, bound) in BUCKETS.iter().enumerate() {
                if seconds <= *bound
                    && let Some(c) = h.counts.get_mut(i)
                {
                    *c += 1;
                }
            }
        }
    }

    /// The Prometheus text exposition, with the pool's (open, idle) connections.
    pub fn render(&self, pool: (u32, usize)) -> String {
        let mut out = String::new();
        out.push_str("# HELP taskhub_http_requests_total HTTP requests by method, route and status.\n");
        out.push_str("# TYPE taskhub_http_requests_total counter\n");
        if let Ok(r) = self.requests.lock() {
            for ((m, route, status), n) in r.iter() {
                let _ = writeln!(
                    out,
                    "taskhub_http_requests_total{{method=\"{m}\",route=\"{route}\",status=\"{status}\"}} {n}"
                );
            }
        }
        out.push_str("# HELP taskhub_http_request_duration_seconds HTTP request latency by method and route.\n");
        out.push_str("# TYPE taskhub_http_request_duration_seconds histogram\n");
        if let Ok(l) = self.latency.lock() {
            for ((m, route), h) in l.iter() {
                let labels = format!("method=\"{m}\",route=\"{route}\"");
                for (bound, c) in BUCKETS.iter().zip(h.counts.iter()) {
                    let _ =
                        writeln!(out, "taskhub_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {c}");
                }
                let _ =
                    writeln!(out, "taskhub_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}", h.count);
                let _ = writeln!(out, "taskhub_http_request_duration_seconds_sum{{{labels}}} {}", h.sum);
                let _ = writeln!(out, "taskhub_http_request_duration_seconds_count{{{labels}}} {}", h.count);
            }
        }
        let (open, idle) = pool;
        out.push_str("# HELP taskhub_db_pool_connections Database pool connections by state.\n");
        out.push_str("# TYPE taskhub_db_pool_connections gauge\n");
        let _ = writeln!(out, "taskhub_db_pool_connections{{state=\"open\"}} {open}");
        let _ = writeln!(out, "taskhub_db_pool_connections{{state=\"idle\"}} {idle}");
        out
    }
}

/// Times every routed request under its route pattern (so ids do not explode the labels).
pub async fn track(State(state): State<crate::AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = req.method().to_string();
    let started = Instant::now();
    let mut res = next.run(req).await;
    state.metrics.observe(&method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
    // The request log (outside routing) names the route pattern: action and entity.
    res.extensions_mut().insert(RoutePattern(route));
    res
}

/// The route pattern that served a response, e.g. `/api/tasks/{id}/`.
#[derive(Debug, Clone)]
pub struct RoutePattern(pub String);

/// `GET /metrics`.
#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics (text exposition format)",
    responses((status = 200, content_type = "text/plain", body = String)))]
pub async fn endpoint(State(state): State<crate::AppState>) -> Response {
    let mut body = state.metrics.render(state.services.store().pool_stats());
    taskhub_events::render_metrics(&mut body, &state.consumers);
    // The mail queue (job `task_notification`, queue `interactive`).
    if let Ok(mut tx) = state.services.store().read().await
        && let Ok(c) = tx.mail_queue_counts(state.services.ctx.clock.now()).await
    {
        body.push_str("# HELP taskhub_mail_jobs Mail jobs by state (queue interactive).\n");
        body.push_str("# TYPE taskhub_mail_jobs gauge\n");
        for (state, n) in
            [("pending", c.pending), ("running", c.running), ("done", c.done), ("failed", c.failed), ("dead", c.dead)]
        {
            let _ = writeln!(body, "taskhub_mail_jobs{{queue=\"interactive\",state=\"{state}\"}} {n}");
        }
    }
    if let Some(c) = crate::jobs::long_view(&state).await.map(|v| v.counts) {
        body.push_str("# HELP taskhub_jobs Jobs of the long queue by state.\n");
        body.push_str("# TYPE taskhub_jobs gauge\n");
        for (state, n) in
            [("pending", c.pending), ("running", c.running), ("done", c.done), ("failed", c.failed), ("dead", c.dead)]
        {
            let _ = writeln!(body, "taskhub_jobs{{queue=\"long\",state=\"{state}\"}} {n}");
        }
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}

//! The operational routes and the envelope.

use anyhow::Result;
use axum::body::Body;
use axum::http::{Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::Value;
use taskhub_core::{Services, store};
use tower::ServiceExt;

async fn call(app: axum::Router, uri: &str, request_id: Option<&str>) -> Result<(StatusCode, Option<String>, Value)> {
    let mut req = Request::get(uri);
    if let Some(id) = request_id {
        req = req.header("x-request-id", id);
    }
    let res = app.oneshot(req.body(Body::empty())?).await?;
    let status = res.status();
    let header = res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, header, serde_json::from_slice(&body)?))
}

async fn app() -> Result<crate::app::TestApp> {
    crate::app::TestApp::new().await
}

#[tokio::test]
async fn healthz_answers_in_the_envelope_with_the_request_id() -> Result<()> {
    let t = app().await?;
    let app = t.router.clone();
    let (status, header, body) = call(app.clone(), "/healthz", Some("req-123")).await?;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(header.as_deref(), Some("req-123"));
    assert_eq!(body["data"]["status"], "ok");
    assert_eq!(body["error"], Value::Null);
    assert_eq!(body["meta"]["request_id"], "req-123");
    let (_, header, body) = call(app, "/healthz", None).await?;
    let generated = header.unwrap_or_default();
    assert_eq!(generated.len(), 36, "a UUID is generated when the client sent none");
    assert_eq!(body["meta"]["request_id"], generated.as_str());
    Ok(())
}

#[tokio::test]
async fn unknown_api_routes_answer_a_json_404() -> Result<()> {
    let t = app().await?;
    let (status, _, body) = call(t.router.clone(), "/api/nope/", None).await?;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["data"], Value::Null);
    assert_eq!(body["error"]["code"], "not_found");
    Ok(())
}

#[tokio::test]
async fn readyz_is_503_when_the_database_is_gone() -> Result<()> {
    use sqlx::Connection;
    let admin =
        std::env::var("TASKHUB_TEST_PG_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let name = format!("taskhub_http_test_{}", uuid::Uuid::now_v7().simple());
    let mut conn = sqlx::PgConnection::connect(&admin).await?;
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&mut conn).await?;
    let mut url = url::Url::parse(&admin)?;
    url.set_path(&name);
    let t = app().await?;
    let mut state = t.state.clone();
    state.services = Services::new(store::connect_with(url.as_str(), 2).await?);
    let app = taskhub_http::router(state);
    let (status, _, body) = call(app.clone(), "/readyz", None).await?;
    assert_eq!((status, body["data"]["database"].as_str()), (StatusCode::OK, Some("ok")));
    sqlx::query(sqlx::AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)"))).execute(&mut conn).await?;
    let (status, _, body) = call(app.clone(), "/readyz", None).await?;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, _, _) = call(app, "/healthz", None).await?;
    assert_eq!(status, StatusCode::OK, "liveness does not depend on the database");
    Ok(())
}

#[tokio::test]
async fn serve_drains_in_flight_requests_on_shutdown() -> Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (entered_tx, entered_rx) = tokio::sync::oneshot::channel::<()>();
    let entered = std::sync::Arc::new(std::sync::Mutex::new(Some(entered_tx)));
    // A slow route that says when it started, so shutdown is signalled mid-request.
    let t = app().await?;
    let app = taskhub_http::router(t.state.clone()).route(
        "/slow",
        axum::routing::get(move || {
            let entered = entered.clone();
            async move {
                if let Some(tx) = entered.lock().ok().and_then(|mut g| g.take()) {
                    let _ = tx.send(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(300)).await;
                "finished"
            }
        }),
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(taskhub_http::serve(listener, app, async move {
        let _ = stopped.await;
    }));
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await?;
    entered_rx.await?;
    stop.send(()).map_err(|()| anyhow::anyhow!("server gone"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("finished"), "drained: {response}");
    tokio::time::timeout(std::time::Duration::from_secs(5), server).await???;
    assert!(tokio::net::TcpStream::connect(addr).await.is_err(), "the listener is closed");
    Ok(())
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_status() -> Result<()> {
    let t = app().await?;
    let (_, a) = t.user("alice").await?;
    let id = t.post("/api/tasks/", Some(&a), serde_json::json!({"title": "x"})).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    t.get(&format!("/api/tasks/{id}/"), &a).await?;
    t.get(&format!("/api/tasks/{id}/"), &a).await?;
    t.get("/api/tasks/999999/", &a).await?;
    let res = t.router.clone().oneshot(Request::get("/metrics").body(Body::empty())?).await?;
    assert_eq!(res.status(), StatusCode::OK);
    let text = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;
    assert!(
        text.contains(r#"taskhub_http_requests_total{method="GET",route="/api/tasks/{id}/",status="200"} 2"#),
        "{text}"
    );
    assert!(text.contains(r#"taskhub_http_requests_total{method="GET",route="/api/tasks/{id}/",status="404"} 1"#));
    assert!(text.contains(r#"taskhub_http_request_duration_seconds_count{method="GET",route="/api/tasks/{id}/"} 3"#));
    assert!(text.contains(
        r#"taskhub_http_request_duration_seconds_bucket{method="GET",route="/api/tasks/{id}/",le="+Inf"} 3"#
    ));
    assert!(text.contains("taskhub_db_pool_connections{state=\"open\"}"));
    Ok(())
}

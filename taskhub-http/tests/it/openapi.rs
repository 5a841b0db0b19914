//! The served OpenAPI document: valid, self-consistent, and in step with the router and API.md.

use crate::app::TestApp;
use anyhow::Result;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::Value;

/// The routes of API.md's implemented sections (Identity, Teams, Tasks, Tags and templates).
const API_MD: &[(&str, &str)] = &[
    ("post", "/api/auth/register/"),
    ("post", "/api/auth/login/"),
    ("post", "/api/auth/refresh/"),
    ("post", "/api/auth/logout/"),
    ("get", "/.well-known/jwks.json"),
    ("get", "/api/auth/public-key/"),
    ("get", "/api/users/"),
    ("post", "/api/users/"),
    ("get", "/api/users/me/"),
    ("patch", "/api/users/me/"),
    ("get", "/api/users/{id}/"),
    ("put", "/api/users/{id}/"),
    ("patch", "/api/users/{id}/"),
    ("delete", "/api/users/{id}/"),
    ("get", "/api/teams/"),
    ("post", "/api/teams/"),
    ("get", "/api/teams/{id}/"),
    ("put", "/api/teams/{id}/"),
    ("patch", "/api/teams/{id}/"),
    ("delete", "/api/teams/{id}/"),
    ("get", "/api/teams/{id}/members/"),
    ("post", "/api/teams/{id}/add_members/"),
    ("post", "/api/teams/{id}/remove_member/"),
    ("post", "/api/teams/{id}/leave/"),
    ("get", "/api/tasks/"),
    ("post", "/api/tasks/"),
    ("get", "/api/tasks/{id}/"),
    ("put", "/api/tasks/{id}/"),
    ("patch", "/api/tasks/{id}/"),
    ("delete", "/api/tasks/{id}/"),
    ("post", "/api/tasks/{id}/archive/"),
    ("post", "/api/tasks/{id}/unarchive/"),
    ("post", "/api/tasks/{id}/assign/"),
    ("post", "/api/tasks/{id}/unassign/"),
    ("get", "/api/tasks/{id}/history/"),
    ("get", "/api/tasks/{id}/comments/"),
    ("post", "/api/tasks/{id}/comments/"),
    ("patch", "/api/tasks/{id}/comments/{cid}/"),
    ("delete", "/api/tasks/{id}/comments/{cid}/"),
    ("get", "/api/tags/"),
    ("post", "/api/tags/"),
    ("patch", "/api/tags/{id}/"),
    ("delete", "/api/tags/{id}/"),
    ("get", "/api/task-templates/"),
    ("post", "/api/task-templates/"),
    ("get", "/api/task-templates/{id}/"),
    ("put", "/api/task-templates/{id}/"),
    ("patch", "/api/task-templates/{id}/"),
    ("delete", "/api/task-templates/{id}/"),
    ("post", "/api/task-templates/{id}/instantiate/"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/openapi.json"),
    ("get", "/api/docs"),
];

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(o) => {
            for (k, x) in o {
                if k == "$ref" {
                    if let Some(s) = x.as_str() {
                        out.push(s.to_owned());
                    }
                } else {
                    refs(x, out);
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
        _ => {}
    }
}

#[tokio::test]
async fn the_served_document_is_valid_and_lists_every_route() -> Result<()> {
    let app = TestApp::new().await?;
    let r = app.call(Method::GET, "/api/openapi.json", None, None).await?;
    assert_eq!(r.status, StatusCode::OK);
    let doc = r.body;
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.1")), "{}", doc["openapi"]);
    // It parses as an OpenAPI document, and every reference resolves.
    serde_json::from_value::<utoipa::openapi::OpenApi>(doc.clone())?;
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in &all {
        let pointer = r.strip_prefix('#').unwrap_or(r);
        assert!(doc.pointer(pointer).is_some(), "dangling reference {r}");
    }
    let paths = doc["paths"].as_object().cloned().unwrap_or_default();
    for (method, path) in API_MD {
        assert!(paths.get(*path).and_then(|p| p.get(*method)).is_some(), "{method} {path} missing from the spec");
    }
    // Every documented operation is served (not the JSON 404 of unknown routes, not 405) —
    // with and without the trailing slash.
    let mut operations = 0;
    for (path, item) in &paths {
        for (method, op) in item.as_object().into_iter().flatten() {
            operations += 1;
            let concrete = path.replace("{id}", "1").replace("{cid}", "1");
            for uri in [concrete.clone(), concrete.trim_end_matches('/').to_owned()] {
                if uri.is_empty() || uri.ends_with(".json") && uri != concrete {
                    continue;
                }
                let req = Request::builder().method(method.to_uppercase().as_str()).uri(&uri).body(Body::empty())?;
                use http_body_util::BodyExt;
                use tower::ServiceExt;
                let res = app.router.clone().oneshot(req).await?;
                let status = res.status();
                let body = res.into_body().collect().await?.to_bytes();
                let unknown =
                    status == StatusCode::NOT_FOUND && String::from_utf8_lossy(&body).contains("no such route");
                assert!(
                    !unknown && status != StatusCode::METHOD_NOT_ALLOWED,
                    "{method} {uri} is documented but not served"
                );
            }
            assert!(op["responses"].as_object().is_some_and(|r| !r.is_empty()), "{method} {path} has no responses");
            let operational = op.pointer("/tags/0").and_then(Value::as_str) == Some("operations");
            if path.starts_with("/api/") && !operational {
                assert!(
                    op["responses"]["422"].is_object() && op["responses"]["401"].is_object(),
                    "{method} {path} lacks the error responses"
                );
            }
        }
    }
    assert!(operations >= API_MD.len());
    // The envelope and the error format are described.
    let schemas = doc["components"]["schemas"].as_object().cloned().unwrap_or_default();
    for name in ["ErrorEnvelope", "ErrorBody", "Meta", "Task", "Team", "UserView", "Comment", "HistoryEntry"] {
        assert!(schemas.contains_key(name), "schema {name} missing");
    }
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    Ok(())
}

#[tokio::test]
async fn api_docs_render_every_route_for_people() -> Result<()> {
    let app = TestApp::new().await?;
    // The page is HTML, not JSON: read it raw.
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let res = app.router.clone().oneshot(Request::get("/api/docs").body(Body::empty())?).await?;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(
        res.headers().get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("text/html"))
    );
    let html = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;
    for (_, path) in API_MD {
        assert!(html.contains(path), "{path} not on the docs page");
    }
    Ok(())
}

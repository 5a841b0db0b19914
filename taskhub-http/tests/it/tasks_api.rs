//! `/api/tasks/`, tags and templates over HTTP: routes, roles, ETags, idempotency, filters.

use crate::app::TestApp;
use anyhow::Result;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

fn etag(r: &crate::app::Reply) -> String {
    r.headers.get(header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn with_headers(
    app: &TestApp,
    method: Method,
    uri: &str,
    token: &str,
    headers: &[(&str, &str)],
    body: Option<Value>,
) -> Result<crate::app::Reply> {
    let mut req = Request::builder().method(method).uri(uri).header("authorization", format!("Bearer {token}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = match body {
        Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string()))?,
        None => req.body(Body::empty())?,
    };
    app.send(req).await
}

#[tokio::test]
async fn task_lifecycle_over_http() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, a) = app.user("alice").await?;
    let r = app
        .post(
            "/api/tasks/",
            Some(&a),
            json!({"title": "Ship it", "priority": "high", "tags": ["release"], "estimated_hours": 1.25}),
        )
        .await?;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(
        r.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
        Some(format!("/api/tasks/{id}/").as_str())
    );
    assert_eq!(etag(&r), "\"1\"");
    let t = &r.body["data"];
    assert_eq!(
        (t["status"].as_str(), t["estimated_hours"].as_f64(), t["assignees"].clone(), t["is_overdue"].as_bool()),
        (Some("todo"), Some(1.25), json!([]), Some(false))
    );
    let r = app.post("/api/tasks/", Some(&a), json!({"title": "", "metadata": {"x": "y".repeat(17 * 1024)}})).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body["error"]["fields"]["title"].is_array() && r.body["error"]["fields"]["metadata"].is_array());
    let r = app.get(&format!("/api/tasks/{id}"), &a).await?;
    assert_eq!((r.status, etag(&r)), (StatusCode::OK, "\"1\"".to_owned()));
    let r = with_headers(
        &app,
        Method::PATCH,
        &format!("/api/tasks/{id}/"),
        &a,
        &[("if-match", "\"7\"")],
        Some(json!({"status": "done"})),
    )
    .await?;
    assert_eq!(r.status, StatusCode::PRECONDITION_FAILED);
    let r = with_headers(
        &app,
        Method::PATCH,
        &format!("/api/tasks/{id}/"),
        &a,
        &[("if-match", "\"1\"")],
        Some(json!({"status": "done"})),
    )
    .await?;
    assert_eq!(
        (r.status, etag(&r), r.body["data"]["status"].as_str()),
        (StatusCode::OK, "\"2\"".to_owned(), Some("done"))
    );
    let r =
        app.call(Method::PUT, &format!("/api/tasks/{id}/"), Some(&a), Some(json!({"title": "Ship it now"}))).await?;
    assert_eq!(
        (r.body["data"]["priority"].as_str(), r.body["data"]["tags"].clone()),
        (Some("medium"), json!([])),
        "PUT resets omitted fields"
    );
    let h = app.get(&format!("/api/tasks/{id}/history/"), &a).await?;
    let actions: Vec<&str> =
        h.body["data"].as_array().map(|v| v.iter().filter_map(|x| x["action"].as_str()).collect()).unwrap_or_default();
    assert_eq!(actions, vec!["status_changed", "status_changed", "created"]);
    assert_eq!(h.body["data"][1]["changes"]["status"], json!({"from": "todo", "to": "done"}));
    for _ in 0..2 {
        let r = app.call(Method::DELETE, &format!("/api/tasks/{id}/"), Some(&a), None).await?;
        assert_eq!((r.status, r.body.clone()), (StatusCode::NO_CONTENT, Value::Null), "DELETE archives, idempotently");
    }
    assert_eq!(app.get("/api/tasks/", &a).await?.body["meta"]["count"], 0);
    assert_eq!(app.get("/api/tasks/?archived=true", &a).await?.body["meta"]["count"], 1);
    let r = app.post(&format!("/api/tasks/{id}/unarchive/"), Some(&a), json!({})).await?;
    assert_eq!((r.status, r.body["data"]["is_archived"].as_bool()), (StatusCode::OK, Some(false)));
    Ok(())
}

#[tokio::test]
async fn every_role_gets_what_the_permission_matrix_says() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, creator) = app.user("creator").await?;
    let (collab_id, collab) = app.user("collab").await?;
    let (owner_id, owner) = app.user("owner").await?;
    let (member_id, member) = app.user("member").await?;
    let (_, admin) = app.user("admin").await?;
    let (stranger_id, stranger) = app.user("stranger").await?;
    let (_, staff) = app.staff("root").await?;
    let team = app.post("/api/teams/", Some(&admin), json!({"name": "T"})).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    let cr = app.call(Method::GET, "/api/users/me/", Some(&creator), None).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    app.post(&format!("/api/teams/{team}/add_members/"), Some(&admin), json!({"user_ids": [member_id, cr]})).await?;
    let r = app
        .post(
            "/api/tasks/",
            Some(&creator),
            json!({"title": "Shared", "assigned_team": team,
            "assignees": [{"user_id": collab_id}, {"user_id": owner_id, "role": "owner"}]}),
        )
        .await?;
    let id = r.body["data"]["id"].as_i64().unwrap_or_default();
    let c = app.post(&format!("/api/tasks/{id}/comments/"), Some(&creator), json!({"body": "first"})).await?;
    let cid = c.body["data"]["id"].as_i64().unwrap_or_default();
    // (who, sees, edits)
    let roles = [
        ("creator", &creator, true, true),
        ("collaborator", &collab, true, false),
        ("owner-assignee", &owner, true, true),
        ("team member", &member, true, false),
        ("team admin", &admin, true, true),
        ("stranger", &stranger, false, false),
        ("staff", &staff, true, true),
    ];
    for (name, token, sees, edits) in roles {
        let not_found = |r: &crate::app::Reply| r.status == StatusCode::NOT_FOUND;
        let view = if sees { StatusCode::OK } else { StatusCode::NOT_FOUND };
        let edit = match (sees, edits) {
            (true, true) => StatusCode::OK,
            (true, false) => StatusCode::FORBIDDEN,
            _ => StatusCode::NOT_FOUND,
        };
        assert_eq!(app.get(&format!("/api/tasks/{id}/"), token).await?.status, view, "{name} get");
        assert_eq!(app.get(&format!("/api/tasks/{id}/history/"), token).await?.status, view, "{name} history");
        assert_eq!(app.get(&format!("/api/tasks/{id}/comments/"), token).await?.status, view, "{name} comments");
        let r = app
            .call(Method::PATCH, &format!("/api/tasks/{id}/"), Some(token), Some(json!({"description": name})))
            .await?;
        assert_eq!(r.status, edit, "{name} patch");
        let r = app
            .call(
                Method::PUT,
                &format!("/api/tasks/{id}/"),
                Some(token),
                Some(json!({"title": "Shared", "assigned_team": team,
            "assignees": [{"user_id": collab_id}, {"user_id": owner_id, "role": "owner"}]})),
            )
            .await?;
        assert_eq!(r.status, edit, "{name} put");
        let r = app.post(&format!("/api/tasks/{id}/assign/"), Some(token), json!({"users": [stranger_id]})).await?;
        assert_eq!(r.status, edit, "{name} assign");
        if r.status == StatusCode::OK {
            let r =
                app.post(&format!("/api/tasks/{id}/unassign/"), Some(token), json!({"users": [stranger_id]})).await?;
            assert_eq!(r.status, StatusCode::OK);
        }
        let r = app.post(&format!("/api/tasks/{id}/archive/"), Some(token), json!({})).await?;
        assert_eq!(r.status, edit, "{name} archive");
        if r.status == StatusCode::OK {
            app.post(&format!("/api/tasks/{id}/unarchive/"), Some(token), json!({})).await?;
        }
        let r = app.call(Method::DELETE, &format!("/api/tasks/{id}/"), Some(token), None).await?;
        let want = if edit == StatusCode::OK { StatusCode::NO_CONTENT } else { edit };
        assert_eq!(r.status, want, "{name} delete");
        if r.status == StatusCode::NO_CONTENT {
            app.post(&format!("/api/tasks/{id}/unarchive/"), Some(token), json!({})).await?;
        }
        let r = app.post(&format!("/api/tasks/{id}/comments/"), Some(token), json!({"body": "hi"})).await?;
        assert_eq!(r.status, if sees { StatusCode::CREATED } else { StatusCode::NOT_FOUND }, "{name} comment");
        let r = app
            .call(Method::PATCH, &format!("/api/tasks/{id}/comments/{cid}/"), Some(token), Some(json!({"body": "x"})))
            .await?;
        let want = match (sees, name) {
            (false, _) => StatusCode::NOT_FOUND,
            (true, "creator") => StatusCode::OK,
            _ => StatusCode::FORBIDDEN,
        };
        assert_eq!(r.status, want, "{name} edit the creator's comment");
        let listed = app.get("/api/tasks/", token).await?;
        let ids: Vec<i64> = listed.body["data"]
            .as_array()
            .map(|v| v.iter().filter_map(|t| t["id"].as_i64()).collect())
            .unwrap_or_default();
        assert_eq!(ids.contains(&id), sees, "{name} list");
        if !sees {
            assert!(not_found(&app.get(&format!("/api/tasks/{id}/"), token).await?));
        }
    }
    // The stranger changed nothing: no history row is theirs.
    let h = app.get(&format!("/api/tasks/{id}/history/?page_size=200"), &staff).await?;
    assert!(h.body["data"].as_array().is_some_and(|rows| rows.iter().all(|r| r["actor"] != json!(stranger_id))));
    let t = app.get(&format!("/api/tasks/{id}/"), &staff).await?;
    assert_ne!(t.body["data"]["description"], "stranger");
    Ok(())
}

#[tokio::test]
async fn list_filters_are_validated_and_paginated() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, a) = app.user("alice").await?;
    for i in 0..7 {
        let p = ["low", "urgent"][i % 2];
        app.post("/api/tasks/", Some(&a), json!({"title": format!("task {i}"), "priority": p, "tags": ["x"]})).await?;
        app.clock.advance(chrono::Duration::milliseconds(5));
    }
    let r = app.get("/api/tasks/?priority=urgent&ordering=-created_at&page_size=2", &a).await?;
    assert_eq!(
        (r.status, r.body["meta"]["count"].as_i64(), r.body["meta"]["page"]["page_size"].as_i64()),
        (StatusCode::OK, Some(3), Some(2))
    );
    let cursor = r.body["meta"]["page"]["next_cursor"].as_str().unwrap_or_default().to_owned();
    let r2 =
        app.get(&format!("/api/tasks/?priority=urgent&ordering=-created_at&page_size=2&cursor={cursor}"), &a).await?;
    assert_eq!(
        (r2.body["data"].as_array().map(Vec::len), r2.body["meta"]["page"]["next_cursor"].clone()),
        (Some(1), Value::Null)
    );
    for bad in [
        "status=open",
        "priority=HIGH",
        "ordering=colour",
        "archived=maybe",
        "assignee=you",
        "page_size=0",
        "page_size=201",
        "due_before=tomorrow",
        "stauts=done",
        "overdue=yes",
    ] {
        let r = app.get(&format!("/api/tasks/?{bad}"), &a).await?;
        assert_eq!(
            (r.status, r.body["error"]["code"].as_str()),
            (StatusCode::BAD_REQUEST, Some("bad_request")),
            "{bad}: {}",
            r.body
        );
    }
    assert_eq!(app.get("/api/tasks/?page_size=200&tag=X", &a).await?.body["meta"]["count"], 7);
    assert_eq!(app.get("/api/tasks?search=TASK%203", &a).await?.body["meta"]["count"], 1);
    Ok(())
}

#[tokio::test]
async fn idempotency_keys_replay_the_first_response() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, a) = app.user("alice").await?;
    let body = json!({"title": "once"});
    let key = [("idempotency-key", "k-123")];
    let first = with_headers(&app, Method::POST, "/api/tasks/", &a, &key, Some(body.clone())).await?;
    let again = with_headers(&app, Method::POST, "/api/tasks/", &a, &key, Some(body.clone())).await?;
    assert_eq!((first.status, again.status), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(first.body["data"], again.body["data"]);
    assert_ne!(first.body["meta"]["request_id"], again.body["meta"]["request_id"]);
    let other = with_headers(&app, Method::POST, "/api/tasks/", &a, &key, Some(json!({"title": "twice"}))).await?;
    assert_eq!(
        (other.status, other.body["error"]["code"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("idempotency_key_reused"))
    );
    let mut handles = Vec::new();
    for _ in 0..5 {
        let (router, token) = (app.router.clone(), a.clone());
        handles.push(tokio::spawn(async move {
            use tower::ServiceExt;
            let req = Request::post("/api/tasks/")
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .header("idempotency-key", "concurrent")
                .body(Body::from(json!({"title": "raced"}).to_string()))?;
            Ok::<_, anyhow::Error>(router.oneshot(req).await?.status())
        }));
    }
    for h in handles {
        assert_eq!(h.await??, StatusCode::CREATED);
    }
    assert_eq!(
        app.get("/api/tasks/?search=raced", &a).await?.body["meta"]["count"],
        1,
        "concurrent duplicates create one task"
    );
    let id = first.body["data"]["id"].as_i64().unwrap_or_default();
    let c1 = with_headers(
        &app,
        Method::POST,
        &format!("/api/tasks/{id}/comments/"),
        &a,
        &[("idempotency-key", "c")],
        Some(json!({"body": "hi", "task": 999})),
    )
    .await?;
    let c2 = with_headers(
        &app,
        Method::POST,
        &format!("/api/tasks/{id}/comments/"),
        &a,
        &[("idempotency-key", "c")],
        Some(json!({"body": "hi", "task": 999})),
    )
    .await?;
    assert_eq!(
        (c1.status, c1.body["data"]["task"].as_i64()),
        (StatusCode::CREATED, Some(id)),
        "the URL decides the task"
    );
    assert_eq!(c1.body["data"], c2.body["data"]);
    assert_eq!(
        app.get(&format!("/api/tasks/{id}/comments/"), &a).await?.body["data"].as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}

#[tokio::test]
async fn tags_and_templates_over_http() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, a) = app.user("alice").await?;
    let (_, b) = app.user("bob").await?;
    let (_, staff) = app.staff("root").await?;
    let r = app.post("/api/tags/", Some(&a), json!({"name": "Backend", "color": "#00ff00"})).await?;
    assert_eq!(r.status, StatusCode::CREATED);
    let tag = r.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(app.post("/api/tags/", Some(&b), json!({"name": "backend"})).await?.status, StatusCode::CONFLICT);
    assert_eq!(
        app.call(Method::PATCH, &format!("/api/tags/{tag}/"), Some(&a), Some(json!({"name": "api"}))).await?.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::PATCH, &format!("/api/tags/{tag}/"), Some(&staff), Some(json!({"name": "api"}))).await?.status,
        StatusCode::OK
    );
    let r = app
        .post(
            "/api/task-templates/",
            Some(&a),
            json!({"name": "Bug", "defaults": {"priority": "urgent", "tags": ["bug"]}}),
        )
        .await?;
    assert_eq!(r.status, StatusCode::CREATED);
    let tpl = r.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(app.get(&format!("/api/task-templates/{tpl}/"), &b).await?.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/api/task-templates/{tpl}/instantiate/"),
            Some(&a),
            json!({"overrides": {"title": "Login broken"}}),
        )
        .await?;
    assert_eq!(
        (r.status, r.body["data"]["priority"].as_str(), r.body["data"]["tags"].clone()),
        (StatusCode::CREATED, Some("urgent"), json!(["bug"]))
    );
    let r =
        app.post("/api/task-templates/", Some(&a), json!({"name": "Bad", "defaults": {"priority": "severe"}})).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    Ok(())
}

#[tokio::test]
async fn every_creating_post_honours_idempotency_keys() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, staff) = app.staff("root").await?;
    let cases = [
        ("/api/teams/", json!({"name": "Ops"}), "/api/teams/", json!({"name": "other"})),
        ("/api/tags/", json!({"name": "once"}), "/api/tags/", json!({"name": "other"})),
        (
            "/api/task-templates/",
            json!({"name": "T", "defaults": {"priority": "high"}}),
            "/api/task-templates/",
            json!({"name": "other"}),
        ),
        (
            "/api/users/",
            json!({"username": "eve", "email": "eve@example.com", "password": "correct horse battery"}),
            "/api/users/?search=eve",
            json!({"username": "mal", "email": "mal@example.com", "password": "correct horse battery"}),
        ),
        ("/api/tasks/", json!({"title": "idem"}), "/api/tasks/?search=idem", json!({"title": "other"})),
    ];
    for (uri, body, list, other) in cases {
        // A key is the user's, whatever the route: each route here gets its own.
        let key = format!("key-{uri}");
        let first =
            with_headers(&app, Method::POST, uri, &staff, &[("idempotency-key", &key)], Some(body.clone())).await?;
        let second =
            with_headers(&app, Method::POST, uri, &staff, &[("idempotency-key", &key)], Some(body.clone())).await?;
        assert_eq!((first.status, second.status), (StatusCode::CREATED, StatusCode::CREATED), "{uri}: {}", second.body);
        assert_eq!(first.body["data"], second.body["data"], "{uri} replays");
        let listed = app.get(list, &staff).await?;
        assert_eq!(listed.body["data"].as_array().map(Vec::len), Some(1), "{uri} created once");
        let reused = with_headers(&app, Method::POST, uri, &staff, &[("idempotency-key", &key)], Some(other)).await?;
        assert_eq!(reused.body["error"]["code"], "idempotency_key_reused", "{uri}");
    }
    Ok(())
}

#[tokio::test]
async fn action_posts_replay_their_first_response_under_one_key() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, admin) = app.user("admin").await?;
    let (member, _) = app.user("member").await?;
    let team = app.post("/api/teams/", Some(&admin), json!({"name": "T"})).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    app.post(&format!("/api/teams/{team}/add_members/"), Some(&admin), json!({"user_ids": [member]})).await?;
    let uri = format!("/api/teams/{team}/remove_member/");
    let body = json!({"user_id": member});
    let first =
        with_headers(&app, Method::POST, &uri, &admin, &[("idempotency-key", "rm-1")], Some(body.clone())).await?;
    let second =
        with_headers(&app, Method::POST, &uri, &admin, &[("idempotency-key", "rm-1")], Some(body.clone())).await?;
    assert_eq!((first.status, second.status), (StatusCode::OK, StatusCode::OK), "{}", second.body);
    assert_eq!(first.body["data"], second.body["data"]);
    let unkeyed = app.post(&uri, Some(&admin), body).await?;
    assert_eq!(
        unkeyed.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "without a key the action runs again (and is refused)"
    );
    let other =
        with_headers(&app, Method::POST, &uri, &admin, &[("idempotency-key", "rm-1")], Some(json!({"user_id": 1})))
            .await?;
    assert_eq!(other.body["error"]["code"], "idempotency_key_reused");
    // A failed action leaves the key free.
    let task = app.post("/api/tasks/", Some(&admin), json!({"title": "t"})).await?.body["data"]["id"]
        .as_i64()
        .unwrap_or_default();
    let bad = with_headers(
        &app,
        Method::POST,
        &format!("/api/tasks/{task}/assign/"),
        &admin,
        &[("idempotency-key", "as-1")],
        Some(json!({"users": [999999]})),
    )
    .await?;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let bad_again = with_headers(
        &app,
        Method::POST,
        &format!("/api/tasks/{task}/assign/"),
        &admin,
        &[("idempotency-key", "as-1")],
        Some(json!({"users": [999999]})),
    )
    .await?;
    assert_eq!(bad_again.status, StatusCode::UNPROCESSABLE_ENTITY, "not a replay of a stored failure, and not 409");
    let ok1 = with_headers(
        &app,
        Method::POST,
        &format!("/api/tasks/{task}/assign/"),
        &admin,
        &[("idempotency-key", "as-2")],
        Some(json!({"users": [member]})),
    )
    .await?;
    let ok2 = with_headers(
        &app,
        Method::POST,
        &format!("/api/tasks/{task}/assign/"),
        &admin,
        &[("idempotency-key", "as-2")],
        Some(json!({"users": [member]})),
    )
    .await?;
    assert_eq!((ok1.status, ok2.body["data"].clone()), (StatusCode::OK, ok1.body["data"].clone()));
    assert_eq!(etag_of(&ok2), format!("\"{}\"", ok1.body["data"]["version"]));
    Ok(())
}

fn etag_of(r: &crate::app::Reply) -> String {
    r.headers.get(header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_remaining_routes_answer_their_happy_paths() -> Result<()> {
    let app = TestApp::new().await?;
    let (alice_id, a) = app.user("alice").await?;
    let (_, b) = app.user("bob").await?;
    let (_, staff) = app.staff("root").await?;
    // Templates: list, PUT, PATCH, DELETE with ETags.
    let t =
        app.post("/api/task-templates/", Some(&a), json!({"name": "Bug", "defaults": {"priority": "high"}})).await?;
    let tpl = t.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(app.get("/api/task-templates/", &a).await?.body["data"].as_array().map(Vec::len), Some(1));
    assert_eq!(app.get("/api/task-templates/", &b).await?.body["data"], json!([]), "only one's own");
    assert_eq!(
        app.get("/api/task-templates/", &staff).await?.body["data"].as_array().map(Vec::len),
        Some(1),
        "staff: all"
    );
    let r = with_headers(
        &app,
        Method::PUT,
        &format!("/api/task-templates/{tpl}/"),
        &a,
        &[("if-match", "\"1\"")],
        Some(json!({"name": "Incident"})),
    )
    .await?;
    assert_eq!(
        (r.status, r.body["data"]["defaults"].clone(), etag(&r)),
        (StatusCode::OK, json!({}), "\"2\"".to_owned()),
        "PUT resets defaults"
    );
    let r = app
        .call(Method::PATCH, &format!("/api/task-templates/{tpl}"), Some(&a), Some(json!({"description": "sev1"})))
        .await?;
    assert_eq!(
        (r.body["data"]["name"].as_str(), r.body["data"]["description"].as_str()),
        (Some("Incident"), Some("sev1"))
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/task-templates/{tpl}/"), Some(&b), None).await?.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/task-templates/{tpl}/"), Some(&a), None).await?.status,
        StatusCode::NO_CONTENT
    );
    // Tags: list with counts, delete (staff).
    app.post("/api/tasks/", Some(&a), json!({"title": "x", "tags": ["infra"]})).await?;
    let tags = app.get("/api/tags/", &b).await?;
    assert_eq!(
        (tags.body["data"][0]["name"].as_str(), tags.body["data"][0]["task_count"].as_i64()),
        (Some("infra"), Some(1))
    );
    let tag = tags.body["data"][0]["id"].as_i64().unwrap_or_default();
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/tags/{tag}/"), Some(&a), None).await?.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/tags/{tag}/"), Some(&staff), None).await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get("/api/tags/", &b).await?.body["data"], json!([]));
    // Users: PUT by self and by staff; staff may deactivate through PATCH too.
    let r = app
        .call(Method::PUT, &format!("/api/users/{alice_id}/"), Some(&a), Some(json!({"display_name": "Alice A."})))
        .await?;
    assert_eq!((r.status, r.body["data"]["display_name"].as_str()), (StatusCode::OK, Some("Alice A.")));
    let r = app
        .call(Method::PATCH, &format!("/api/users/{alice_id}/"), Some(&staff), Some(json!({"is_active": false})))
        .await?;
    assert_eq!((r.status, r.body["data"]["is_active"].as_bool()), (StatusCode::OK, Some(false)));
    assert_eq!(
        app.get("/api/users/me/", &a).await?.status,
        StatusCode::UNAUTHORIZED,
        "deactivated: the token stops at once"
    );
    // Comments: the task's editor deletes another's comment; the author edits with If-Match.
    let task =
        app.post("/api/tasks/", Some(&staff), json!({"title": "y", "assigned_to": []})).await?.body["data"]["id"]
            .as_i64()
            .unwrap_or_default();
    app.post(
        &format!("/api/tasks/{task}/assign/"),
        Some(&staff),
        json!({"users": [app.get("/api/users/me/", &b).await?.body["data"]["id"]]}),
    )
    .await?;
    let c = app.post(&format!("/api/tasks/{task}/comments/"), Some(&b), json!({"body": "hello"})).await?;
    let cid = c.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(etag(&c), "\"1\"");
    let r = with_headers(
        &app,
        Method::PATCH,
        &format!("/api/tasks/{task}/comments/{cid}/"),
        &b,
        &[("if-match", "\"1\"")],
        Some(json!({"body": "hello!"})),
    )
    .await?;
    assert_eq!((r.status, etag(&r)), (StatusCode::OK, "\"2\"".to_owned()));
    let r = app.call(Method::DELETE, &format!("/api/tasks/{task}/comments/{cid}/"), Some(&staff), None).await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let h = app.get(&format!("/api/tasks/{task}/history/"), &staff).await?;
    let actions: Vec<&str> =
        h.body["data"].as_array().map(|v| v.iter().filter_map(|x| x["action"].as_str()).collect()).unwrap_or_default();
    assert_eq!(actions, vec!["comment_deleted", "comment_edited", "comment_added", "assigned", "created"]);
    Ok(())
}

//! Identity over HTTP: register, login, refresh, logout, users, and the error conventions.

use crate::app::TestApp;
use anyhow::Result;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::{Value, json};

#[tokio::test]
async fn register_validates_and_refuses_duplicates() -> Result<()> {
    let app = TestApp::new().await?;
    let r = app
        .post(
            "/api/auth/register/",
            None,
            json!({"username": "alice", "email": "alice@example.com", "password": "correct horse battery"}),
        )
        .await?;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(
        r.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()),
        Some(format!("/api/users/{id}/").as_str())
    );
    assert_eq!(r.body["data"]["email"], "alice@example.com");
    assert!(r.body["data"].get("password").is_none() && !r.body.to_string().contains("argon2"));
    let r = app
        .post(
            "/api/auth/register",
            None,
            json!({"username": "ALICE", "email": "x@example.com", "password": "correct horse battery"}),
        )
        .await?;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict")),
        "no trailing slash works too"
    );
    let r =
        app.post("/api/auth/register/", None, json!({"username": "b", "email": "nope", "password": "short"})).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(r.body["error"]["code"], "validation_failed");
    let fields: Vec<&str> =
        r.body["error"]["fields"].as_object().map(|o| o.keys().map(String::as_str).collect()).unwrap_or_default();
    assert_eq!(fields, vec!["email", "password", "username"]);
    assert_eq!(r.body["data"], Value::Null);
    let r = app.post("/api/auth/register/", None, json!({"username": "carol", "email": "c@example.com", "password": "correct horse battery", "is_staff": true})).await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "nobody registers as staff");
    Ok(())
}

#[tokio::test]
async fn login_answers_the_same_for_unknown_users_and_wrong_passwords() -> Result<()> {
    let app = TestApp::new().await?;
    let id = app.register("alice").await?;
    let r =
        app.post("/api/auth/login/", None, json!({"username": "alice", "password": "correct horse battery"})).await?;
    assert_eq!(r.status, StatusCode::OK);
    let d = &r.body["data"];
    assert_eq!(
        (d["token_type"].as_str(), d["expires_in"].as_i64(), d["user"]["id"].as_i64()),
        (Some("Bearer"), Some(900), Some(id))
    );
    let wrong =
        app.post("/api/auth/login/", None, json!({"username": "alice", "password": "not the password"})).await?;
    let unknown =
        app.post("/api/auth/login/", None, json!({"username": "mallory", "password": "not the password"})).await?;
    assert_eq!((wrong.status, unknown.status), (StatusCode::UNAUTHORIZED, StatusCode::UNAUTHORIZED));
    assert_eq!(wrong.body["error"], unknown.body["error"]);
    assert!(wrong.headers.get(header::WWW_AUTHENTICATE).is_some());
    Ok(())
}

#[tokio::test]
async fn refresh_rotates_and_a_replay_revokes_the_family() -> Result<()> {
    let app = TestApp::new().await?;
    app.register("alice").await?;
    let (_, refresh) = app.login("alice").await?;
    let r = app.post("/api/auth/refresh/", None, json!({"refresh": refresh})).await?;
    assert_eq!(r.status, StatusCode::OK);
    let next = r.body["data"]["refresh"].as_str().unwrap_or_default().to_owned();
    let access = r.body["data"]["access"].as_str().unwrap_or_default().to_owned();
    assert_eq!(app.get("/api/users/me/", &access).await?.status, StatusCode::OK);
    let replay = app.post("/api/auth/refresh/", None, json!({"refresh": refresh})).await?;
    assert_eq!(replay.status, StatusCode::UNAUTHORIZED);
    let after = app.post("/api/auth/refresh/", None, json!({"refresh": next})).await?;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED, "the whole family is revoked");
    Ok(())
}

#[tokio::test]
async fn logout_takes_effect_on_the_next_request() -> Result<()> {
    let app = TestApp::new().await?;
    app.register("alice").await?;
    let (access, refresh) = app.login("alice").await?;
    assert_eq!(app.get("/api/users/me/", &access).await?.status, StatusCode::OK);
    let r = app.post("/api/auth/logout/", Some(&access), json!({"refresh": refresh})).await?;
    assert_eq!((r.status, r.body["data"].clone()), (StatusCode::OK, json!({})));
    let me = app.get("/api/users/me/", &access).await?;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.body["error"]["code"], "unauthenticated");
    assert_eq!(
        app.post("/api/auth/refresh/", None, json!({"refresh": refresh})).await?.status,
        StatusCode::UNAUTHORIZED
    );
    // Logout with no body ends the session of the access token alone, refresh family included.
    let (access, refresh) = app.login("alice").await?;
    let r = app.call(Method::POST, "/api/auth/logout", Some(&access), None).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        app.post("/api/auth/refresh/", None, json!({"refresh": refresh})).await?.status,
        StatusCode::UNAUTHORIZED
    );
    Ok(())
}

#[tokio::test]
async fn users_api_hides_emails_and_guards_staff_actions() -> Result<()> {
    let app = TestApp::new().await?;
    let (alice, a) = app.user("alice").await?;
    let (bob, b) = app.user("bob").await?;
    let (_, staff) = app.staff("root").await?;
    let list = app.get("/api/users/?search=bo", &a).await?;
    assert_eq!(list.status, StatusCode::OK);
    assert_eq!(list.body["meta"]["count"], 1);
    assert_eq!(list.body["data"][0]["id"], bob);
    assert_eq!(list.body["data"][0]["email"], Value::Null, "other users' e-mails are hidden");
    assert_eq!(app.get(&format!("/api/users/{bob}/"), &a).await?.body["data"]["email"], Value::Null);
    assert_eq!(app.get(&format!("/api/users/{bob}/"), &staff).await?.body["data"]["email"], "bob@example.com");
    assert_eq!(app.get("/api/users/me", &a).await?.body["data"]["email"], "alice@example.com");
    // The seed's holes: any user deleting or creating users.
    let r = app.call(Method::DELETE, &format!("/api/users/{bob}/"), Some(&a), None).await?;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::FORBIDDEN, Some("forbidden")));
    let new_user =
        json!({"username": "eve", "email": "eve@example.com", "password": "correct horse battery", "is_staff": true});
    assert_eq!(app.post("/api/users/", Some(&a), new_user.clone()).await?.status, StatusCode::FORBIDDEN);
    let r = app
        .call(Method::PATCH, &format!("/api/users/{bob}/"), Some(&a), Some(json!({"display_name": "pwned"})))
        .await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.call(Method::PATCH, "/api/users/me/", Some(&a), Some(json!({"is_staff": true}))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "no self-promotion");
    let r = app.post("/api/users/", Some(&staff), new_user).await?;
    assert_eq!((r.status, r.body["data"]["is_staff"].as_bool()), (StatusCode::CREATED, Some(true)));
    let r = app.call(Method::PATCH, "/api/users/me/", Some(&a), Some(json!({"first_name": "Alice"}))).await?;
    assert_eq!((r.status, r.body["data"]["first_name"].as_str()), (StatusCode::OK, Some("Alice")));
    // Deactivation: 204, and the user's live token stops working at once.
    let r = app.call(Method::DELETE, &format!("/api/users/{bob}/"), Some(&staff), None).await?;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(app.get("/api/users/me/", &b).await?.status, StatusCode::UNAUTHORIZED);
    assert_eq!(app.get(&format!("/api/users/{bob}/"), &staff).await?.body["data"]["is_active"], false);
    assert_eq!(app.get("/api/users/999999/", &a).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/users/{alice}/"), &a).await?.status, StatusCode::OK);
    Ok(())
}

#[tokio::test]
async fn every_bad_request_speaks_the_error_format() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, a) = app.user("alice").await?;
    let raw = |ct: Option<&str>, body: Vec<u8>| {
        let mut r = Request::post("/api/teams/").header("authorization", format!("Bearer {a}"));
        if let Some(ct) = ct {
            r = r.header("content-type", ct);
        }
        r.body(Body::from(body))
    };
    let cases: Vec<(Request<Body>, StatusCode, &str)> = vec![
        (raw(Some("application/json"), b"{not json".to_vec())?, StatusCode::BAD_REQUEST, "bad_request"),
        (raw(Some("application/json"), Vec::new())?, StatusCode::BAD_REQUEST, "bad_request"),
        (raw(Some("application/json"), vec![0xff, 0xfe, b'{', b'}'])?, StatusCode::BAD_REQUEST, "bad_request"),
        (raw(Some("text/plain"), b"{}".to_vec())?, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (raw(None, b"{}".to_vec())?, StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
        (
            raw(Some("application/json"), format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 1)).into_bytes())?,
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
        ),
        (
            raw(Some("application/json"), b"{\"name\": 42}".to_vec())?,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation_failed",
        ),
        (raw(Some("application/json"), b"[1, 2]".to_vec())?, StatusCode::BAD_REQUEST, "bad_request"),
        (
            Request::get("/api/teams/abc/").header("authorization", format!("Bearer {a}")).body(Body::empty())?,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Request::get("/api/teams/?page_size=x")
                .header("authorization", format!("Bearer {a}"))
                .body(Body::empty())?,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Request::get("/api/teams/?page_size=500")
                .header("authorization", format!("Bearer {a}"))
                .body(Body::empty())?,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (
            Request::get("/api/users/?cursor=garbage")
                .header("authorization", format!("Bearer {a}"))
                .body(Body::empty())?,
            StatusCode::BAD_REQUEST,
            "bad_request",
        ),
        (Request::get("/api/teams/").body(Body::empty())?, StatusCode::UNAUTHORIZED, "unauthenticated"),
        (
            Request::get("/api/teams/").header("authorization", "Basic YTpi").body(Body::empty())?,
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
        ),
        (Request::get("/api/nope/").body(Body::empty())?, StatusCode::NOT_FOUND, "not_found"),
        (
            Request::delete("/api/auth/login/").body(Body::empty())?,
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
        ),
    ];
    let n = cases.len();
    for (req, status, code) in cases {
        let what = format!("{} {}", req.method(), req.uri());
        let r = app.send(req).await?;
        assert_eq!((r.status, r.body["error"]["code"].as_str()), (status, Some(code)), "{what}: {}", r.body);
        assert_eq!(r.body["data"], Value::Null);
        let rid = r.headers.get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        assert_eq!(r.body["meta"]["request_id"].as_str(), Some(rid.as_str()), "{what}");
    }
    let r = app.post("/api/teams/", Some(&a), json!({"name": 42})).await?;
    assert!(r.body["error"]["fields"]["name"].is_array(), "{}", r.body);
    let r = app.post("/api/auth/login/", None, json!({"username": "alice"})).await?;
    assert_eq!(
        (r.status, r.body["error"]["fields"]["password"].is_array()),
        (StatusCode::UNPROCESSABLE_ENTITY, true),
        "{}",
        r.body
    );
    let teams = app.get("/api/teams/", &a).await?;
    assert_eq!(teams.body["data"], json!([]), "nothing was created by the bad requests ({n} cases)");
    Ok(())
}

#[tokio::test]
async fn auth_routes_are_rate_limited_per_client_address() -> Result<()> {
    let app = TestApp::with_rate_limit(3).await?;
    for _ in 0..3 {
        let r = app.post("/api/auth/login/", None, json!({"username": "x", "password": "y"})).await?;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.post("/api/auth/login/", None, json!({"username": "x", "password": "y"})).await?;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
    let retry: u64 =
        r.headers.get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).unwrap_or(0);
    assert!((1..=60).contains(&retry));
    assert_eq!(r.headers.get("ratelimit-policy").and_then(|v| v.to_str().ok()), Some("3;w=60"));
    assert!(r.headers.get("ratelimit").is_some());
    app.clock.advance(chrono::Duration::seconds(61));
    let r = app.post("/api/auth/login/", None, json!({"username": "x", "password": "y"})).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "a new window opens");
    Ok(())
}

#[tokio::test]
async fn username_back_off_answers_429_with_retry_after() -> Result<()> {
    let app = TestApp::new().await?;
    app.register("alice").await?;
    for _ in 0..5 {
        app.post("/api/auth/login/", None, json!({"username": "alice", "password": "wrong password!"})).await?;
    }
    let r =
        app.post("/api/auth/login/", None, json!({"username": "alice", "password": "correct horse battery"})).await?;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(r.headers.get(header::RETRY_AFTER).is_some());
    app.clock.advance(chrono::Duration::seconds(5));
    app.login("alice").await?;
    Ok(())
}

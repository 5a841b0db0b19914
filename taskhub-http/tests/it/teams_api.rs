//! `/api/teams/` over HTTP.

use crate::app::TestApp;
use anyhow::Result;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use serde_json::json;

#[tokio::test]
async fn teams_api_follows_admin_member_and_etag_rules() -> Result<()> {
    let app = TestApp::new().await?;
    let (_, admin) = app.user("admin").await?;
    let (member_id, member) = app.user("member").await?;
    let (_, stranger) = app.user("stranger").await?;
    let (_, staff) = app.staff("root").await?;
    let r = app.post("/api/teams/", Some(&admin), json!({"name": "Platform"})).await?;
    assert_eq!(r.status, StatusCode::CREATED);
    let id = r.body["data"]["id"].as_i64().unwrap_or_default();
    assert_eq!(r.headers.get(header::ETAG).and_then(|v| v.to_str().ok()), Some("\"1\""));
    assert_eq!((r.body["data"]["is_admin"].as_bool(), r.body["data"]["member_count"].as_i64()), (Some(true), Some(1)));
    let r = app
        .post(&format!("/api/teams/{id}/add_members/"), Some(&admin), json!({"user_ids": [member_id, 424242]}))
        .await?;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "unknown id: nothing added");
    let r = app.post(&format!("/api/teams/{id}/add_members"), Some(&admin), json!({"user_ids": [member_id]})).await?;
    assert_eq!(r.body["data"], json!({"added": [member_id], "already_members": []}));
    assert_eq!(app.get(&format!("/api/teams/{id}/"), &member).await?.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/teams/{id}/"), &stranger).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(app.get(&format!("/api/teams/{id}/"), &staff).await?.status, StatusCode::OK);
    assert_eq!(
        app.get(&format!("/api/teams/{id}/members/"), &member).await?.body["data"].as_array().map(Vec::len),
        Some(2)
    );
    let r = app.call(Method::PATCH, &format!("/api/teams/{id}/"), Some(&member), Some(json!({"name": "Mine"}))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let stale = Request::patch(format!("/api/teams/{id}/"))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .header("if-match", "\"1\"")
        .body(Body::from(json!({"name": "Renamed"}).to_string()))?;
    let r = app.send(stale).await?;
    assert_eq!(
        (r.status, r.body["error"]["code"].as_str()),
        (StatusCode::PRECONDITION_FAILED, Some("precondition_failed"))
    );
    let current = app.get(&format!("/api/teams/{id}/"), &admin).await?;
    let etag = current.headers.get(header::ETAG).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let fresh = Request::put(format!("/api/teams/{id}"))
        .header("authorization", format!("Bearer {admin}"))
        .header("content-type", "application/json")
        .header("if-match", etag)
        .body(Body::from(json!({"name": "Renamed"}).to_string()))?;
    let r = app.send(fresh).await?;
    assert_eq!((r.status, r.body["data"]["name"].as_str()), (StatusCode::OK, Some("Renamed")));
    let r = app.post(&format!("/api/teams/{id}/leave/"), Some(&admin), json!({})).await?;
    assert_eq!(r.status, StatusCode::CONFLICT, "the admin cannot leave");
    let r = app.post(&format!("/api/teams/{id}/remove_member/"), Some(&admin), json!({"user_id": member_id})).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(app.get(&format!("/api/teams/{id}/"), &member).await?.status, StatusCode::NOT_FOUND);
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/teams/{id}/"), Some(&stranger), None).await?.status,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        app.call(Method::DELETE, &format!("/api/teams/{id}/"), Some(&admin), None).await?.status,
        StatusCode::NO_CONTENT
    );
    assert_eq!(app.get(&format!("/api/teams/{id}/"), &staff).await?.status, StatusCode::NOT_FOUND);
    Ok(())
}

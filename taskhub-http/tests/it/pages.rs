//! The pages: sign-in with the cookie and CSRF token, and the staff jobs page with the retry of
//! a dead job.

use crate::app::TestApp;
use anyhow::Result;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use http_body_util::BodyExt;
use std::sync::Arc;
use taskhub_jobs::mail::{MailSender, Mailer, OutgoingMail};
use tower::ServiceExt;

struct Page {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    html: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The value of cookie `name` this response sets, with its attributes.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The value of the hidden `csrf` field.
    fn csrf_field(&self) -> String {
        let marker = "name=\"csrf\" value=\"";
        let start = self.html.find(marker).map(|i| i + marker.len()).unwrap_or_default();
        self.html[start..].chars().take_while(|c| *c != '"').collect()
    }
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie.split(';').next().and_then(|kv| kv.split_once('=')).map(|(_, v)| v.to_owned()).unwrap_or_default()
}

async fn send(app: &TestApp, method: &str, uri: &str, cookies: &str, form: Option<String>) -> Result<Page> {
    let mut req = Request::builder().method(method).uri(uri).header(header::COOKIE, cookies);
    if form.is_some() {
        req = req.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let res = app.router.clone().oneshot(req.body(form.map(Body::from).unwrap_or_else(Body::empty))?).await?;
    let (status, headers) = (res.status(), res.headers().clone());
    let html = String::from_utf8(res.into_body().collect().await?.to_bytes().to_vec())?;
    Ok(Page { status, headers, html })
}

fn form(fields: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(fields).unwrap_or_default()
}

/// Signs `user` in through the form; returns the cookies to send.
async fn sign_in(app: &TestApp, user: &str) -> Result<String> {
    let login = send(app, "GET", "/login/?next=/jobs/", "", None).await?;
    let csrf = cookie_value(&login.set_cookie("taskhub_csrf").unwrap_or_default());
    let f = form(&[("csrf", &csrf), ("next", "/jobs/"), ("username", user), ("password", "correct horse battery")]);
    let r = send(app, "POST", "/login/", &format!("taskhub_csrf={csrf}"), Some(f)).await?;
    anyhow::ensure!(r.status == StatusCode::SEE_OTHER, "sign-in of {user}: {}", r.status);
    let access = cookie_value(&r.set_cookie("taskhub_access").unwrap_or_default());
    Ok(format!("taskhub_csrf={csrf}; taskhub_access={access}"))
}

#[tokio::test]
async fn sign_in_sets_an_http_only_cookie_behind_a_csrf_token_and_refuses_bad_forms() -> Result<()> {
    let app = TestApp::new().await?;
    app.register("alice").await?;
    // Not signed in: to the sign-in page, coming back here after.
    let r = send(&app, "GET", "/jobs/", "", None).await?;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login/?next=/jobs/"));
    let login = send(&app, "GET", "/login/?next=/jobs/", "", None).await?;
    assert_eq!(login.status, StatusCode::OK);
    let set = login.set_cookie("taskhub_csrf").unwrap_or_default();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"), "{set}");
    let csrf = cookie_value(&set);
    assert_eq!(csrf.len(), 64);
    assert_eq!(login.csrf_field(), csrf, "the form carries the cookie's token");
    assert_eq!(login.headers.get("x-frame-options").and_then(|v| v.to_str().ok()), Some("DENY"));
    let good = |next: &str, password: &str| {
        form(&[("csrf", &csrf), ("next", next), ("username", "alice"), ("password", password)])
    };
    let jar = format!("taskhub_csrf={csrf}");
    // A form from elsewhere (no cookie, or another token) signs nobody in.
    let r = send(&app, "POST", "/login/", "", Some(good("/jobs/", "correct horse battery"))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.set_cookie("taskhub_access").is_none());
    let forged = form(&[("csrf", &"0".repeat(64)), ("username", "alice"), ("password", "correct horse battery")]);
    let r = send(&app, "POST", "/login/", &jar, Some(forged)).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A wrong password: the form again, with the name kept (escaped) and no cookie.
    let r = send(&app, "POST", "/login/", &jar, Some(good("/jobs/", "wrong password"))).await?;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.html.contains("Wrong username or password") && r.html.contains("value=\"alice\""));
    assert!(r.set_cookie("taskhub_access").is_none());
    // Signed in: an HttpOnly, SameSite=Lax cookie holding a working access token.
    let r = send(&app, "POST", "/login/", &jar, Some(good("/jobs/", "correct horse battery"))).await?;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/jobs/"));
    let access = r.set_cookie("taskhub_access").unwrap_or_default();
    assert!(access.contains("HttpOnly") && access.contains("SameSite=Lax") && access.contains("Path=/"), "{access}");
    let token = cookie_value(&access);
    assert_eq!(app.get("/api/users/me/", &token).await?.status, StatusCode::OK, "the cookie holds the access token");
    // Only local paths after signing in.
    for next in ["//evil.example/x", "https://evil.example/", "/\\evil.example"] {
        let r = send(&app, "POST", "/login/", &jar, Some(good(next, "correct horse battery"))).await?;
        assert_eq!(r.location(), "/jobs/", "next={next}");
    }
    // Signing out revokes the token and clears the cookie.
    let jar = format!("taskhub_csrf={csrf}; taskhub_access={token}");
    let r = send(&app, "POST", "/logout/", &jar, Some(form(&[("csrf", &csrf)]))).await?;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, "/login/"));
    assert!(r.set_cookie("taskhub_access").is_some_and(|c| c.contains("Max-Age=0")));
    assert_eq!(app.get("/api/users/me/", &token).await?.status, StatusCode::UNAUTHORIZED);
    Ok(())
}

struct Refusing;

#[async_trait::async_trait]
impl Mailer for Refusing {
    async fn send(&self, _m: &OutgoingMail) -> Result<(), String> {
        Err("554 <relay> denied".into())
    }
}

#[tokio::test]
async fn staff_see_the_jobs_page_and_retry_a_dead_job_from_it() -> Result<()> {
    let app = TestApp::new().await?;
    let (bob, _) = app.user("bob").await?;
    app.staff("root").await?;
    // A mail to bob that the server refuses five times: dead, with its error.
    let services = app.state.services.clone();
    let mut tx = services.store().begin().await?;
    tx.insert_mail(&taskhub_core::store::maintain::NewMail {
        key: format!("e1:{bob}"),
        user_id: bob,
        kind: "comment".into(),
        task_id: Some(1),
        event_id: "e1".into(),
        data: serde_json::json!({"title": "t", "comment": "c"}),
        created_at: services.ctx.clock.now(),
    })
    .await?;
    tx.commit().await?;
    let sender = MailSender::new(services.clone(), Arc::new(Refusing), "http://x");
    for _ in 0..5 {
        sender.run_once().await?;
        app.clock.advance(chrono::Duration::hours(1));
    }
    let (bob_jar, root_jar) = (sign_in(&app, "bob").await?, sign_in(&app, "root").await?);
    let r = send(&app, "GET", "/jobs/", &bob_jar, None).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "staff only");
    let r = send(&app, "GET", "/jobs/", &root_jar, None).await?;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.html.contains("<strong>interactive</strong>"), "{}", r.html);
    assert!(r.html.contains("554 &#60;relay&#62; denied") || r.html.contains("554 &lt;relay&gt; denied"), "escaped");
    assert!(!r.html.contains("<relay>"));
    let failures = services.maintenance.jobs(&taskhub_core::Actor::staff(0)).await?.recent_failures;
    let id = failures[0].id.clone();
    let action = format!("/jobs/{id}/retry/");
    assert!(r.html.contains(&format!("action=\"{action}\"")), "a retry button for the dead mail");
    let csrf = r.csrf_field();
    // Without the CSRF token nothing happens.
    let r = send(&app, "POST", &action, &root_jar, Some(form(&[("csrf", "")]))).await?;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let failures = services.maintenance.jobs(&taskhub_core::Actor::staff(0)).await?.recent_failures;
    assert!(failures[0].dead, "still dead");
    // With it: back in the queue, and said so.
    let r = send(&app, "POST", &action, &root_jar, Some(form(&[("csrf", &csrf)]))).await?;
    assert_eq!((r.status, r.location()), (StatusCode::SEE_OTHER, format!("/jobs/?retried={id}").as_str()));
    let failures = services.maintenance.jobs(&taskhub_core::Actor::staff(0)).await?.recent_failures;
    assert!(!failures[0].dead, "retried");
    let r = send(&app, "GET", &format!("/jobs/?retried={id}"), &root_jar, None).await?;
    assert!(r.html.contains("is back in its queue"));
    // Twice: not dead any more.
    let r = send(&app, "POST", &action, &root_jar, Some(form(&[("csrf", &csrf)]))).await?;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    Ok(())
}

//! Server-rendered pages (askama): sign-in, sign-out and the staff jobs page.
//!
//! Pages authenticate with an HttpOnly, SameSite=Lax cookie holding the access token (API.md),
//! and every form carries a CSRF token that must equal the one in a cookie of its own (double
//! submit: a page of another site can neither read the cookie nor set it).

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientAddr;
use askama::Template;
use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use taskhub_core::auth::Principal;
use taskhub_core::maintenance::JobsView;

/// The cookie holding the access token.
pub const ACCESS_COOKIE: &str = "taskhub_access";
/// The cookie holding the CSRF token.
pub const CSRF_COOKIE: &str = "taskhub_csrf";

/// The page routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login/", get(login_page).post(login_submit))
        .route("/login", get(|| async { redirect("/login/") }))
        .route("/logout/", post(logout))
        .route("/jobs/", get(jobs_page))
        .route("/jobs", get(|| async { redirect("/jobs/") }))
        .route("/jobs/{id}/retry/", post(jobs_retry))
}

fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

fn redirect(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

/// A local path to go to after signing in; anything else (another site, `//host`) is refused.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p) if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.contains(['\r', '\n']) => {
            p.to_owned()
        }
        _ => "/jobs/".to_owned(),
    }
}

/// The page's CSRF token: the cookie's, or a new one (then set with the response).
struct Csrf {
    token: String,
    is_new: bool,
}

impl Csrf {
    fn of(headers: &HeaderMap) -> Csrf {
        match cookie(headers, CSRF_COOKIE) {
            Some(t) if t.len() == 64 && t.bytes().all(|b| b.is_ascii_hexdigit()) => {
                Csrf { token: t.to_owned(), is_new: false }
            }
            _ => {
                use rand::RngCore;
                let mut bytes = [0u8; 32];
                rand::thread_rng().fill_bytes(&mut bytes);
                Csrf { token: bytes.iter().map(|b| format!("{b:02x}")).collect(), is_new: true }
            }
        }
    }

    /// Whether a submitted form's token matches the cookie (compared in constant time).
    fn check(headers: &HeaderMap, submitted: &str) -> bool {
        let Some(expected) = cookie(headers, CSRF_COOKIE) else { return false };
        let (a, b) = (expected.as_bytes(), submitted.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

/// Renders `t` with `status` and the pages' headers (no caching, no framing, a strict CSP),
/// setting the CSRF cookie when it is new.
fn page(status: StatusCode, t: &impl Template, csrf: &Csrf) -> Response {
    let html = match t.render() {
        Ok(html) => html,
        Err(e) => {
            tracing::error!(error = %e, "page template failed");
            return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
        }
    };
    let mut res = (status, html).into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(HeaderName::from_static("x-frame-options"), HeaderValue::from_static("DENY"));
    h.insert(HeaderName::from_static("x-content-type-options"), HeaderValue::from_static("nosniff"));
    h.insert(HeaderName::from_static("referrer-policy"), HeaderValue::from_static("same-origin"));
    h.insert(
        HeaderName::from_static("content-security-policy"),
        HeaderValue::from_static("default-src 'self'; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'"),
    );
    if csrf.is_new
        && let Ok(v) = HeaderValue::from_str(&format!("{CSRF_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax", csrf.token))
    {
        h.append(SET_COOKIE, v);
    }
    res
}

#[derive(Template)]
#[template(path = "pages/error.html")]
struct ErrorPage<'a> {
    user: Option<String>,
    csrf: &'a str,
    title: &'a str,
    message: &'a str,
}

/// A form whose CSRF token does not match.
fn csrf_failed(user: Option<String>, csrf: &Csrf) -> Response {
    let message = "The form expired or came from elsewhere; reload the page and try again.";
    page(StatusCode::FORBIDDEN, &ErrorPage { user, csrf: &csrf.token, title: "Forbidden", message }, csrf)
}

/// An error as a page: the API error's status and sentence.
fn error_page(e: ApiError, user: Option<String>, csrf: &Csrf) -> Response {
    let api = e.into_response();
    let status = api.status();
    let retry_after = api.headers().get(RETRY_AFTER).cloned();
    let message = match status {
        StatusCode::FORBIDDEN => "This page is for staff only.",
        StatusCode::NOT_FOUND => "There is no such job, or it is not dead.",
        StatusCode::TOO_MANY_REQUESTS => "Too many attempts; wait a little and try again.",
        StatusCode::SERVICE_UNAVAILABLE => "The job's queue storage does not answer; try again later.",
        s if s.is_server_error() => "Something went wrong on our side; it has been logged.",
        _ => "The request could not be handled.",
    };
    let title = status.canonical_reason().unwrap_or("Error");
    let mut res = page(status, &ErrorPage { user, csrf: &csrf.token, title, message }, csrf);
    if let Some(v) = retry_after {
        res.headers_mut().insert(RETRY_AFTER, v);
    }
    res
}

/// The signed-in user of a page request, or the redirect to the sign-in page.
async fn signed_in(state: &AppState, headers: &HeaderMap, here: &str) -> Result<Principal, Response> {
    let to_login = || redirect(&format!("/login/?next={}", url_escape(here)));
    let Some(token) = cookie(headers, ACCESS_COOKIE) else { return Err(to_login()) };
    state.auth.authenticate(token).await.map_err(|_| to_login())
}

fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

async fn display_name(state: &AppState, p: &Principal) -> Option<String> {
    let user = state.services.users.get_raw(p.actor.user_id).await.ok()??;
    Some(user.shown_name().to_owned())
}

#[derive(Template)]
#[template(path = "pages/login.html")]
struct LoginPage<'a> {
    user: Option<String>,
    csrf: &'a str,
    next: &'a str,
    username: &'a str,
    error: Option<&'a str>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(headers: HeaderMap, Query(q): Query<NextQuery>) -> Response {
    let csrf = Csrf::of(&headers);
    let next = local_path(q.next.as_deref());
    page(StatusCode::OK, &LoginPage { user: None, csrf: &csrf.token, next: &next, username: "", error: None }, &csrf)
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
    #[serde(default)]
    username: String,
    #[serde(default)]
    password: String,
}

async fn login_submit(
    State(state): State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let csrf = Csrf::of(&headers);
    let next = local_path(Some(&form.next));
    let again = |status: StatusCode, error: &str| {
        let p = LoginPage { user: None, csrf: &csrf.token, next: &next, username: &form.username, error: Some(error) };
        page(status, &p, &csrf)
    };
    if !Csrf::check(&headers, &form.csrf) {
        return again(StatusCode::FORBIDDEN, "The form expired; please sign in again.");
    }
    if let Err(e) = crate::auth::limit(&state, addr) {
        return error_page(e, None, &csrf);
    }
    match state.auth.login(&form.username, &form.password).await {
        Ok((pair, _)) => {
            let mut res = redirect(&next);
            let c =
                format!("{ACCESS_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}", pair.access, pair.expires_in);
            if let Ok(v) = HeaderValue::from_str(&c) {
                res.headers_mut().append(SET_COOKIE, v);
            }
            res
        }
        Err(taskhub_core::Error::Unauthenticated(_)) => {
            again(StatusCode::UNAUTHORIZED, "Wrong username or password, or the account is inactive.")
        }
        Err(e) => error_page(e.into(), None, &csrf),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> Response {
    let csrf = Csrf::of(&headers);
    if !Csrf::check(&headers, &form.csrf) {
        return csrf_failed(None, &csrf);
    }
    if let Some(token) = cookie(&headers, ACCESS_COOKIE)
        && let Ok(p) = state.auth.authenticate(token).await
        && let Err(e) = state.auth.logout(&p, None).await
    {
        tracing::warn!(error = %e, "page sign-out: the token could not be revoked");
    }
    let mut res = redirect("/login/");
    if let Ok(v) = HeaderValue::from_str(&format!("{ACCESS_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0")) {
        res.headers_mut().append(SET_COOKIE, v);
    }
    res
}

#[derive(Template)]
#[template(path = "pages/jobs.html")]
struct JobsPage<'a> {
    user: Option<String>,
    csrf: &'a str,
    view: &'a JobsView,
    retried: Option<&'a str>,
}

#[derive(Deserialize)]
struct JobsQuery {
    retried: Option<String>,
}

async fn jobs_page(State(state): State<AppState>, headers: HeaderMap, Query(q): Query<JobsQuery>) -> Response {
    let p = match signed_in(&state, &headers, "/jobs/").await {
        Ok(p) => p,
        Err(to_login) => return to_login,
    };
    let csrf = Csrf::of(&headers);
    let user = display_name(&state, &p).await;
    match crate::jobs::view(&state, &p.actor).await {
        Ok(view) => {
            let retried =
                q.retried.as_deref().filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric()));
            page(StatusCode::OK, &JobsPage { user, csrf: &csrf.token, view: &view, retried }, &csrf)
        }
        Err(e) => error_page(e, user, &csrf),
    }
}

async fn jobs_retry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Response {
    let p = match signed_in(&state, &headers, "/jobs/").await {
        Ok(p) => p,
        Err(to_login) => return to_login,
    };
    let csrf = Csrf::of(&headers);
    if !Csrf::check(&headers, &form.csrf) {
        return csrf_failed(display_name(&state, &p).await, &csrf);
    }
    match crate::jobs::retry_dead(&state, &p.actor, &id).await {
        Ok(()) => redirect(&format!("/jobs/?retried={}", url_escape(&id))),
        Err(e) => error_page(e, display_name(&state, &p).await, &csrf),
    }
}

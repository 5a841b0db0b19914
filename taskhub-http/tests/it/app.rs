//! An in-process TaskHub for tests: SQLite, a fresh keys directory, a hand-moved clock.

use anyhow::Result;
use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use taskhub_core::auth::{AuthService, KeyRing, PasswordHasher, TokenSettings};
use taskhub_core::clock::ManualClock;
use taskhub_core::services::Ctx;
use taskhub_core::{Services, store};
use taskhub_http::AppState;
use tower::ServiceExt;

pub struct TestApp {
    pub router: Router,
    pub state: AppState,
    pub clock: Arc<ManualClock>,
    pub keys_dir: std::path::PathBuf,
    db_path: std::path::PathBuf,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Value,
}

impl TestApp {
    pub async fn new() -> Result<Self> {
        Self::with_rate_limit(0).await
    }

    pub async fn with_rate_limit(per_minute: u32) -> Result<Self> {
        let id = uuid::Uuid::now_v7().simple().to_string();
        let db_path = std::env::temp_dir().join(format!("taskhub-http-{id}.db"));
        let keys_dir = std::env::temp_dir().join(format!("taskhub-http-keys-{id}"));
        let store = store::connect(&format!("sqlite://{}", db_path.display())).await?;
        let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
        let hasher = PasswordHasher::new(argon2::Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
        let ctx = Ctx { store, clock: clock.clone() };
        let services = Services::build(ctx.clone(), hasher.clone());
        let keys = Arc::new(KeyRing::open(&keys_dir, clock.clone())?);
        let auth = AuthService::new(ctx, keys, TokenSettings::default(), hasher);
        let state = AppState::new(services, auth, per_minute);
        Ok(TestApp { router: taskhub_http::router(state.clone()), state, clock, keys_dir, db_path })
    }

    /// The app database's URL.
    pub fn db_url(&self) -> String {
        format!("sqlite://{}", self.db_path.display())
    }

    pub async fn send(&self, req: Request<Body>) -> Result<Reply> {
        let res = self.router.clone().oneshot(req).await?;
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = res.into_body().collect().await?.to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes)? };
        Ok(Reply { status, headers, body })
    }

    pub async fn call(&self, method: Method, uri: &str, token: Option<&str>, body: Option<Value>) -> Result<Reply> {
        let mut req = Request::builder().method(method).uri(uri);
        if let Some(t) = token {
            req = req.header("authorization", format!("Bearer {t}"));
        }
        let req = match body {
            Some(b) => req.header("content-type", "application/json").body(Body::from(b.to_string()))?,
            None => req.body(Body::empty())?,
        };
        self.send(req).await
    }

    pub async fn get(&self, uri: &str, token: &str) -> Result<Reply> {
        self.call(Method::GET, uri, Some(token), None).await
    }

    pub async fn post(&self, uri: &str, token: Option<&str>, body: Value) -> Result<Reply> {
        self.call(Method::POST, uri, token, Some(body)).await
    }

    /// Registers `name` (password `correct horse battery`) and returns the user id.
    pub async fn register(&self, name: &str) -> Result<i64> {
        let r = self
            .post(
                "/api/auth/register/",
                None,
                json!({"username": name, "email": format!("{name}@example.com"), "password": "correct horse battery"}),
            )
            .await?;
        anyhow::ensure!(r.status == StatusCode::CREATED, "register {name}: {} {}", r.status, r.body);
        r.body["data"]["id"].as_i64().ok_or_else(|| anyhow::anyhow!("no id"))
    }

    /// Logs in and returns (access, refresh).
    pub async fn login(&self, name: &str) -> Result<(String, String)> {
        let r =
            self.post("/api/auth/login/", None, json!({"username": name, "password": "correct horse battery"})).await?;
        anyhow::ensure!(r.status == StatusCode::OK, "login {name}: {} {}", r.status, r.body);
        let s = |k: &str| r.body["data"][k].as_str().map(str::to_owned).ok_or_else(|| anyhow::anyhow!("no {k}"));
        Ok((s("access")?, s("refresh")?))
    }

    /// Registers and logs in; returns (id, access token).
    pub async fn user(&self, name: &str) -> Result<(i64, String)> {
        let id = self.register(name).await?;
        Ok((id, self.login(name).await?.0))
    }

    /// A staff user made through the core (no API can make the first staff user).
    pub async fn staff(&self, name: &str) -> Result<(i64, String)> {
        let input = taskhub_core::users::UserInput {
            username: name.into(),
            email: format!("{name}@example.com"),
            password: "correct horse battery".into(),
            ..Default::default()
        };
        let u = self.state.services.users.create_local(input, true).await?;
        Ok((u.id, self.login(name).await?.0))
    }

    /// The PEM of the current signing key, to sign arbitrary claims in tests.
    pub fn signing_pem(&self) -> Result<(String, String)> {
        let (kid, _) = self.state.auth.tokens().keys().public_key()?;
        let pem = std::fs::read_to_string(self.keys_dir.join(format!("{kid}.pem")))?;
        Ok((kid, pem))
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.keys_dir);
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", self.db_path.display()));
        }
    }
}

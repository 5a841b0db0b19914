//! The maintenance jobs forget exactly what has outlived its window.
#![allow(
    clippy::panic,
    clippy::indexing_slicing,
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "tests fail by panicking"
)]

use anyhow::Result;
use std::sync::Arc;
use taskhub_core::auth::{AuthService, KeyRing, PasswordHasher, TokenSettings};
use taskhub_core::clock::ManualClock;
use taskhub_core::services::Ctx;
use taskhub_core::users::UserInput;
use taskhub_core::{Actor, Services, store};

#[tokio::test]
async fn purges_forget_expired_keys_and_tokens_and_keep_live_ones() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("taskhub-jobs-{}", uuid::Uuid::now_v7().simple()));
    let clock = Arc::new(ManualClock::new(chrono::Utc::now()));
    let ctx = Ctx { store: store::connect("sqlite::memory:").await?, clock: clock.clone() };
    let hasher = PasswordHasher::new(argon2::Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
    let services = Services::build(ctx.clone(), hasher.clone());
    let auth = AuthService::new(ctx, Arc::new(KeyRing::open(&dir, clock.clone())?), TokenSettings::default(), hasher);
    let input = UserInput {
        username: "alice".into(),
        email: "a@example.com".into(),
        password: "correct horse battery".into(),
        ..Default::default()
    };
    let user = Actor::user(services.users.register(input).await?.id);
    let (pair, _) = auth.login("alice", "correct horse battery").await?;
    let key = taskhub_core::idempotency::IdempotencyKey::new("k", b"x")?;
    services
        .tasks
        .create_idempotent(&user, serde_json::from_value(serde_json::json!({"title": "t"}))?, Some(&key))
        .await?;
    assert_eq!(taskhub_jobs::purge_idempotency_keys(&services).await?, 0, "a fresh key stays");
    assert_eq!(taskhub_jobs::purge_expired_tokens(&services).await?, 0, "live sessions stay");
    auth.refresh(&pair.refresh).await?;
    clock.advance(chrono::Duration::days(8));
    assert_eq!(taskhub_jobs::purge_idempotency_keys(&services).await?, 1);
    // Two refresh tokens and their family have expired.
    assert_eq!(taskhub_jobs::purge_expired_tokens(&services).await?, 3);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

//! Authentication on both engines: login, refresh rotation and reuse, logout, deactivation,
//! back-off; and the key ring's rotation drill.

use crate::common::Fx;
use anyhow::Result;
use std::sync::Arc;
use taskhub_core::Error;
use taskhub_core::auth::keys::KeyState;
use taskhub_core::auth::{AuthService, KeyRing, PasswordHasher, TokenSettings, TokenType};

pub struct KeysDir(pub std::path::PathBuf);

impl KeysDir {
    pub fn new() -> Self {
        KeysDir(std::env::temp_dir().join(format!("taskhub-keys-{}", uuid::Uuid::now_v7().simple())))
    }
}

impl Drop for KeysDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn auth(fx: &Fx, dir: &KeysDir) -> Result<AuthService> {
    let keys = Arc::new(KeyRing::open(&dir.0, fx.clock.clone())?);
    let hasher = PasswordHasher::new(argon2::Params::new(256, 1, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?);
    Ok(AuthService::new(fx.svc.ctx.clone(), keys, TokenSettings::default(), hasher))
}

const PW: &str = "correct horse battery";

pub async fn login_issues_tokens_and_refresh_rotates_them(fx: Fx) -> Result<()> {
    let dir = KeysDir::new();
    let auth = auth(&fx, &dir)?;
    let a = fx.user("alice").await?;
    let (pair, user) = auth.login("ALICE", PW).await?;
    assert_eq!((user.id, pair.token_type, pair.expires_in), (a.user_id, "Bearer", 900));
    let p = auth.authenticate(&pair.access).await?;
    assert_eq!(p.actor, a);
    assert_eq!(
        (p.claims.iss.as_str(), p.claims.aud.as_str(), p.claims.token_type),
        ("taskhub", "taskhub-api", TokenType::Access)
    );
    assert!(auth.authenticate(&pair.refresh).await.is_err(), "a refresh token is not an access token");
    let second = auth.refresh(&pair.refresh).await?;
    assert_ne!(second.refresh, pair.refresh);
    auth.authenticate(&second.access).await?;
    // Replaying the spent refresh token revokes the whole family, including the new one.
    assert!(matches!(auth.refresh(&pair.refresh).await, Err(Error::Unauthenticated(_))));
    assert!(matches!(auth.refresh(&second.refresh).await, Err(Error::Unauthenticated(_))), "family revoked");
    // Another session is untouched.
    let (other, _) = auth.login("alice", PW).await?;
    auth.refresh(&other.refresh).await?;
    Ok(())
}

pub async fn concurrent_refreshes_of_one_token_let_one_win(fx: Fx) -> Result<()> {
    let dir = KeysDir::new();
    let auth = auth(&fx, &dir)?;
    fx.user("alice").await?;
    let (pair, _) = auth.login("alice", PW).await?;
    let mut handles = Vec::new();
    for _ in 0..6 {
        let (auth, token) = (auth.clone(), pair.refresh.clone());
        handles.push(tokio::spawn(async move { auth.refresh(&token).await }));
    }
    let mut ok = 0;
    for h in handles {
        if h.await?.is_ok() {
            ok += 1;
        }
    }
    assert_eq!(ok, 1, "a refresh token works once");
    Ok(())
}

pub async fn logout_and_deactivation_take_effect_on_the_next_request(fx: Fx) -> Result<()> {
    let dir = KeysDir::new();
    let auth = auth(&fx, &dir)?;
    let a = fx.user("alice").await?;
    let staff = fx.staff("root").await?;
    let (pair, _) = auth.login("alice", PW).await?;
    let p = auth.authenticate(&pair.access).await?;
    auth.logout(&p, None).await?;
    assert!(matches!(auth.authenticate(&pair.access).await, Err(Error::Unauthenticated(_))), "access revoked");
    assert!(matches!(auth.refresh(&pair.refresh).await, Err(Error::Unauthenticated(_))), "family revoked");
    let (pair, _) = auth.login("alice", PW).await?;
    auth.authenticate(&pair.access).await?;
    fx.svc.users.deactivate(&staff, a.user_id).await?;
    assert!(matches!(auth.authenticate(&pair.access).await, Err(Error::Unauthenticated(_))), "deactivated");
    assert!(auth.refresh(&pair.refresh).await.is_err());
    assert!(
        matches!(auth.login("alice", PW).await, Err(Error::Unauthenticated(m)) if m == taskhub_core::auth::BAD_CREDENTIALS)
    );
    // A staff flag removed takes effect at once, whatever the token says.
    let b = fx.staff("boss").await?;
    let (pb, _) = auth.login("boss", PW).await?;
    assert!(auth.authenticate(&pb.access).await?.actor.is_staff);
    let patch: taskhub_core::users::UserPatch = serde_json::from_value(serde_json::json!({"is_staff": false}))?;
    fx.svc.users.update(&staff, b.user_id, patch).await?;
    assert!(!auth.authenticate(&pb.access).await?.actor.is_staff);
    Ok(())
}

pub async fn failed_logins_back_off_without_locking_out_for_good(fx: Fx) -> Result<()> {
    let dir = KeysDir::new();
    let auth = auth(&fx, &dir)?;
    fx.user("alice").await?;
    let unknown = auth.login("nobody", "whatever-password").await;
    let wrong = auth.login("alice", "wrong-password").await;
    match (unknown, wrong) {
        (Err(Error::Unauthenticated(m1)), Err(Error::Unauthenticated(m2))) => {
            assert_eq!(m1, m2, "same message either way")
        }
        other => panic!("{other:?}"),
    }
    for _ in 0..4 {
        assert!(matches!(auth.login("alice", "wrong-password").await, Err(Error::Unauthenticated(_))));
    }
    // Five failures in a row: now even the right password waits.
    match auth.login("alice", PW).await {
        Err(Error::RateLimited { retry_after }) => assert!((1..=900).contains(&retry_after)),
        other => panic!("expected back-off, got {other:?}"),
    }
    fx.clock.advance(chrono::Duration::seconds(2));
    auth.login("alice", PW).await?;
    // Success resets the count.
    assert!(matches!(auth.login("alice", "wrong-password").await, Err(Error::Unauthenticated(_))));
    auth.login("alice", PW).await?;
    let events: Vec<String> =
        fx.store.read().await?.list_outbox(0, 1000).await?.into_iter().map(|r| r.event.event_type).collect();
    assert!(events.iter().filter(|e| *e == "user.login_failed").count() >= 6);
    assert!(events.iter().any(|e| e == "user.logged_in"));
    let failed = fx.store.read().await?.list_outbox(0, 1000).await?;
    assert!(failed.iter().all(|r| !r.event.data.to_string().contains("wrong-password")), "no password in events");
    Ok(())
}

pub async fn expired_tokens_are_refused(fx: Fx) -> Result<()> {
    let dir = KeysDir::new();
    let auth = auth(&fx, &dir)?;
    fx.user("alice").await?;
    let (pair, _) = auth.login("alice", PW).await?;
    fx.clock.advance(chrono::Duration::minutes(16));
    assert!(matches!(auth.authenticate(&pair.access).await, Err(Error::Unauthenticated(_))));
    auth.refresh(&pair.refresh).await?;
    fx.clock.advance(chrono::Duration::days(8));
    let (p2, _) = auth.login("alice", PW).await?;
    fx.clock.advance(chrono::Duration::days(8));
    assert!(auth.refresh(&p2.refresh).await.is_err(), "refresh tokens expire after 7 days");
    Ok(())
}

/// Not a contract test (no database): the key ring alone.
#[test]
fn thumbprint_matches_rfc_7638() {
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    assert_eq!(taskhub_core::auth::keys::thumbprint(n, "AQAB"), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn rotation_drill_keeps_old_tokens_until_the_grace_ends() -> Result<()> {
    let dir = KeysDir::new();
    let clock = Arc::new(taskhub_core::clock::ManualClock::new(chrono::Utc::now()));
    let grace = chrono::Duration::hours(1);
    let ring = Arc::new(KeyRing::open_with_grace(&dir.0, clock.clone(), grace)?);
    let tokens = taskhub_core::auth::Tokens::new(ring.clone(), TokenSettings::default(), clock.clone());
    let (old, old_claims) = tokens.sign(1, "alice", false, TokenType::Access, None)?;
    let old_kid = ring.list()?.first().map(|k| k.kid.clone()).unwrap_or_default();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.0.join(format!("{old_kid}.pem")))?.permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "private keys are owner-only");
    }
    // A second process sharing the directory.
    let other = KeyRing::open_with_grace(&dir.0, clock.clone(), grace)?;
    let new_kid = ring.rotate()?;
    assert_ne!(new_kid, old_kid);
    tokens.verify(&old, TokenType::Access)?;
    let (fresh, _) = tokens.sign(1, "alice", false, TokenType::Access, None)?;
    assert_eq!(jsonwebtoken::decode_header(&fresh)?.kid.as_deref(), Some(new_kid.as_str()));
    let kids: Vec<_> = ring.jwks().keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![old_kid.clone(), new_kid.clone()]);
    // The other process learns the new key the moment it sees a token naming it.
    let other_tokens = taskhub_core::auth::Tokens::new(Arc::new(other), TokenSettings::default(), clock.clone());
    other_tokens.verify(&fresh, TokenType::Access)?;
    let states: Vec<_> = ring.list()?.into_iter().map(|k| k.state).collect();
    assert_eq!(states, vec![KeyState::Retiring, KeyState::Active]);
    clock.advance(grace + chrono::Duration::seconds(1));
    assert!(tokens.verify(&old, TokenType::Access).is_err(), "after the grace the old key verifies nothing");
    let kids: Vec<_> = ring.jwks().keys.iter().filter_map(|k| k.common.key_id.clone()).collect();
    assert_eq!(kids, vec![new_kid]);
    assert_eq!(ring.list()?.first().map(|k| k.state), Some(KeyState::Retired));
    let _ = old_claims;
    Ok(())
}

//! Login, refresh with rotation and reuse detection (RFC 9700), logout, and authentication of
//! a bearer token — with revocation and the user's current state checked on every request.

use super::keys::KeyRing;
use super::password::PasswordHasher;
use super::throttle::backoff;
use super::tokens::{Claims, REFRESH_TTL, TokenSettings, TokenType, Tokens};
use crate::error::{Error, Result};
use crate::events::EventEnvelope;
use crate::services::{Actor, Ctx};
use crate::store::RefreshUse;
use crate::users::{User, normalize_username};
use serde::Serialize;
use serde_json::json;
use std::sync::Arc;

/// The message of every failed login, whether the user exists or not.
pub const BAD_CREDENTIALS: &str = "invalid username or password";

/// A new token pair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenPair {
    /// The access token.
    pub access: String,
    /// The refresh token.
    pub refresh: String,
    /// Always `Bearer`.
    #[cfg_attr(feature = "openapi", schema(value_type = String))]
    pub token_type: &'static str,
    /// Seconds the access token lives.
    pub expires_in: i64,
}

/// An authenticated request's principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The acting user, with the staff flag as the database has it now.
    pub actor: Actor,
    /// The access token's claims.
    pub claims: Claims,
}

/// Authentication.
#[derive(Clone)]
pub struct AuthService {
    ctx: Ctx,
    tokens: Tokens,
    hasher: PasswordHasher,
}

impl AuthService {
    /// Authentication over `ctx`'s store, signing with `keys`.
    pub fn new(ctx: Ctx, keys: Arc<KeyRing>, settings: TokenSettings, hasher: PasswordHasher) -> Self {
        let tokens = Tokens::new(keys, settings, ctx.clock.clone());
        AuthService { ctx, tokens, hasher }
    }

    /// The token signer and verifier.
    pub fn tokens(&self) -> &Tokens {
        &self.tokens
    }

    /// Checks credentials and opens a session (a new refresh family). Failures are counted
    /// per username; after five in a row the username backs off exponentially (≤ 15 min).
    #[tracing::instrument(skip_all)]
    pub async fn login(&self, username: &str, password: &str) -> Result<(TokenPair, User)> {
        let key = normalize_username(username.trim());
        let now = self.ctx.clock.now();
        let (found, failures) = {
            let mut tx = self.ctx.store.read().await?;
            let failures = tx.login_failures(&key).await?;
            if let Some((_, Some(until))) = failures.filter(|(_, until)| until.is_some_and(|u| u > now)) {
                let secs = (until - now).num_seconds().max(1);
                return Err(Error::RateLimited { retry_after: u64::try_from(secs).unwrap_or(1) });
            }
            (tx.get_user_credentials(&key).await?, failures.map_or(0, |(n, _)| n))
        };
        let ok = self.hasher.verify(found.as_ref().map(|(_, h)| h.as_str()), password).await?;
        let user = match found {
            Some((u, _)) if ok && u.is_active => u,
            other => {
                let n = failures.saturating_add(1);
                let mut tx = self.ctx.store.begin().await?;
                tx.record_login_failure(&key, n, now, backoff(n).map(|d| now + d)).await?;
                let actor = other.map(|(u, _)| u.id);
                let data = json!({"username": username.trim(), "failures": n});
                tx.insert_outbox(&EventEnvelope::new(
                    "user.login_failed",
                    "user",
                    actor.unwrap_or(0),
                    actor,
                    now,
                    data,
                ))
                .await?;
                tx.commit().await?;
                return Err(Error::Unauthenticated(BAD_CREDENTIALS.into()));
            }
        };
        let family = uuid::Uuid::now_v7().to_string();
        let mut tx = self.ctx.store.begin().await?;
        tx.clear_login_failures(&key).await?;
        tx.insert_token_family(&family, user.id, now, now + REFRESH_TTL).await?;
        let pair = self.issue(&mut *tx, &user, &family).await?;
        tx.insert_outbox(&EventEnvelope::new(
            "user.logged_in",
            "user",
            user.id,
            Some(user.id),
            now,
            json!({"username": user.username}),
        ))
        .await?;
        tx.commit().await?;
        Ok((pair, user))
    }

    async fn issue(&self, tx: &mut dyn crate::store::Tx, user: &User, family: &str) -> Result<TokenPair> {
        let now = self.ctx.clock.now();
        let (access, a) = self.tokens.sign(user.id, &user.username, user.is_staff, TokenType::Access, None)?;
        let (refresh, r) =
            self.tokens.sign(user.id, &user.username, user.is_staff, TokenType::Refresh, Some(family))?;
        tx.insert_refresh_token(&r.jti, &a.jti, family, user.id, now, now + REFRESH_TTL).await?;
        Ok(TokenPair { access, refresh, token_type: "Bearer", expires_in: a.exp - a.iat })
    }

    /// Trades a refresh token for a new pair. Each refresh token works once: presenting a
    /// spent one revokes its whole family (the session), since one of the two holders stole it.
    #[tracing::instrument(skip_all)]
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenPair> {
        let claims = self.tokens.verify(refresh_token, TokenType::Refresh)?;
        let now = self.ctx.clock.now();
        let mut tx = self.ctx.store.begin().await?;
        match tx.use_refresh_token(&claims.jti, now).await? {
            RefreshUse::Fresh { family, user_id } => {
                let user = tx.get_user(user_id).await?.filter(|u| u.is_active);
                let live = tx.family_revoked(&family).await? == Some(false);
                let Some(user) = user.filter(|_| live) else {
                    return Err(Error::Unauthenticated("the session has ended; log in again".into()));
                };
                let pair = self.issue(&mut *tx, &user, &family).await?;
                tx.commit().await?;
                Ok(pair)
            }
            RefreshUse::Reused { family, user_id } => {
                tx.revoke_family(&family, now, "refresh token reused").await?;
                let data = json!({"reason": "refresh_token_reused"});
                tx.insert_outbox(&EventEnvelope::new("user.logged_out", "user", user_id, Some(user_id), now, data))
                    .await?;
                tx.commit().await?;
                tracing::warn!(user.id = user_id, "refresh token reused: session revoked");
                Err(Error::Unauthenticated("refresh token already used; the session is revoked".into()))
            }
            RefreshUse::Unknown => Err(Error::Unauthenticated("unknown refresh token".into())),
        }
    }

    /// Ends a session: the access token stops working at once, and so does its refresh family
    /// (the one issued with it, and the one of `refresh` if given and the caller's).
    #[tracing::instrument(skip_all, fields(user.id = p.actor.user_id))]
    pub async fn logout(&self, p: &Principal, refresh: Option<&str>) -> Result<()> {
        let now = self.ctx.clock.now();
        let other = match refresh {
            Some(r) => {
                let c = self
                    .tokens
                    .verify(r, TokenType::Refresh)
                    .map_err(|_| Error::field("refresh", "is not a valid refresh token"))?;
                if c.sub != p.claims.sub {
                    return Err(Error::field("refresh", "belongs to another user"));
                }
                c.fam
            }
            None => None,
        };
        let expires = chrono::DateTime::from_timestamp(p.claims.exp, 0).unwrap_or(now);
        let mut tx = self.ctx.store.begin().await?;
        tx.revoke_access_token(&p.claims.jti, p.actor.user_id, expires).await?;
        let own = tx.family_of_access(&p.claims.jti).await?;
        for fam in own.iter().chain(other.iter()) {
            tx.revoke_family(fam, now, "logout").await?;
        }
        tx.insert_outbox(&EventEnvelope::new(
            "user.logged_out",
            "user",
            p.actor.user_id,
            Some(p.actor.user_id),
            now,
            json!({}),
        ))
        .await?;
        tx.commit().await
    }

    /// Authenticates a bearer access token: signature and claims, then — in one indexed read —
    /// that the token was not revoked and its user is still active (and whether staff now).
    pub async fn authenticate(&self, token: &str) -> Result<Principal> {
        let claims = self.tokens.verify(token, TokenType::Access)?;
        let user_id = claims.user_id()?;
        let state = self.ctx.store.read().await?.auth_state(user_id, &claims.jti).await?;
        match state {
            Some(s) if s.is_active && !s.revoked => {
                Ok(Principal { actor: Actor { user_id, is_staff: s.is_staff }, claims })
            }
            Some(s) if s.revoked => Err(Error::Unauthenticated("the token was revoked".into())),
            _ => Err(Error::Unauthenticated("the account is not active".into())),
        }
    }
}

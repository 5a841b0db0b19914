//! Verification for services other than the issuer: they know only the issuer's JWKS URL — no
//! shared secret, no private key. The key set is cached, refetched when it grows stale and
//! when a token names an unknown kid (at most once per `min_refetch`, so a flood of forged
//! kids cannot make this service hammer the issuer).
//!
//! A JWKS verifier checks signature and claims; it cannot see revocations, which live in the
//! issuer's database: a revoked access token is refused there at once and here when it
//! expires (15 minutes at most).

use super::tokens::{Claims, TokenSettings, TokenType, check_header, verify_with};
use crate::clock::Clock;
use crate::error::{Error, Result};
use chrono::{DateTime, Utc};
use jsonwebtoken::DecodingKey;
use jsonwebtoken::jwk::JwkSet;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::RwLock;

struct Cached {
    set: JwkSet,
    fetched: Option<DateTime<Utc>>,
}

/// Verifies tokens with the keys published at a JWKS URL.
pub struct JwksVerifier {
    url: String,
    client: reqwest::Client,
    settings: TokenSettings,
    clock: Arc<dyn Clock>,
    cache: RwLock<Cached>,
    max_age: Duration,
    min_refetch: Duration,
}

impl JwksVerifier {
    /// A verifier of tokens from `settings.issuer` for `settings.audience`, keys from `url`.
    pub fn new(url: impl Into<String>, settings: TokenSettings, clock: Arc<dyn Clock>) -> Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .map_err(|e| Error::Config(format!("HTTP client: {e}")))?;
        Ok(JwksVerifier {
            url: url.into(),
            client,
            settings,
            clock,
            cache: RwLock::new(Cached { set: JwkSet { keys: Vec::new() }, fetched: None }),
            max_age: Duration::from_secs(300),
            min_refetch: Duration::from_secs(30),
        })
    }

    /// Sets how often an unknown kid may trigger a refetch.
    pub fn with_min_refetch(mut self, d: Duration) -> Self {
        self.min_refetch = d;
        self
    }

    /// Fetches the key set now.
    pub async fn refresh(&self) -> Result<()> {
        let res = self.client.get(&self.url).send().await.map_err(|e| Error::internal(format!("JWKS fetch: {e}")))?;
        if !res.status().is_success() {
            return Err(Error::internal(format!("JWKS fetch: {} answered {}", self.url, res.status())));
        }
        let set: JwkSet = res.json().await.map_err(|e| Error::internal(format!("JWKS parse: {e}")))?;
        *self.cache.write().await = Cached { set, fetched: Some(self.clock.now()) };
        Ok(())
    }

    async fn key(&self, kid: &str) -> Result<Option<DecodingKey>> {
        let find = |c: &Cached| c.set.find(kid).and_then(|jwk| DecodingKey::from_jwk(jwk).ok());
        let now = self.clock.now();
        let (found, age) = {
            let c = self.cache.read().await;
            (find(&c), c.fetched.map(|t| (now - t).to_std().unwrap_or_default()))
        };
        let stale = age.is_none_or(|a| a > self.max_age);
        let may_refetch = age.is_none_or(|a| a > self.min_refetch);
        if found.is_some() && !stale {
            return Ok(found);
        }
        if stale || may_refetch {
            if let Err(e) = self.refresh().await {
                // Keep verifying with the keys we have while the issuer is unreachable.
                tracing::warn!(error = %e, url = %self.url, "JWKS refresh failed");
                return Ok(found);
            }
            return Ok(find(&*self.cache.read().await));
        }
        Ok(found)
    }

    /// Verifies an access token: header, signature against the published key, and claims.
    pub async fn verify(&self, token: &str) -> Result<Claims> {
        let (_, kid) = check_header(token)?;
        let key =
            self.key(&kid).await?.ok_or_else(|| Error::Unauthenticated("invalid token: unknown key id".into()))?;
        verify_with(token, &key, &self.settings, TokenType::Access, self.clock.now().timestamp())
    }
}

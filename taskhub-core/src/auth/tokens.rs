//! RS256 access and refresh tokens (API.md "Identity"): signing with the active key, and
//! verification that checks alg, kid, iss, aud, exp, nbf and token_type — and refuses headers
//! that point elsewhere for keys (`jku`, `x5u`, `jwk`, `x5c`) or demand extensions (`crit`).

use super::keys::KeyRing;
use crate::clock::Clock;
use crate::error::{Error, Result};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// Lifetime of an access token.
pub const ACCESS_TTL: chrono::Duration = chrono::Duration::minutes(15);
/// Lifetime of a refresh token.
pub const REFRESH_TTL: chrono::Duration = chrono::Duration::days(7);
/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: i64 = 30;
/// Longest token accepted, in bytes.
pub const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Which kind a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// Authorizes API requests for 15 minutes.
    Access,
    /// Buys a new pair, once, within 7 days.
    Refresh,
}

/// The claims of both token kinds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// The user id, as a string.
    pub sub: String,
    /// The username.
    pub username: String,
    /// Staff when issued.
    pub is_staff: bool,
    /// Issued at (Unix seconds).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
    /// Unique id.
    pub jti: String,
    /// `access` or `refresh`.
    pub token_type: TokenType,
    /// Refresh family (refresh tokens only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fam: Option<String>,
}

impl Claims {
    /// The user id in `sub`.
    pub fn user_id(&self) -> Result<i64> {
        self.sub.parse().map_err(|_| rejected("subject is not a user id"))
    }
}

/// Issuer and audience every token carries and every verifier checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// `iss`.
    pub issuer: String,
    /// `aud`.
    pub audience: String,
}

impl Default for TokenSettings {
    fn default() -> Self {
        TokenSettings { issuer: "taskhub".into(), audience: "taskhub-api".into() }
    }
}

fn rejected(why: &str) -> Error {
    Error::Unauthenticated(format!("invalid token: {why}"))
}

/// Checks a header: RS256 only, a kid, and no header that points to other keys.
pub fn check_header(token: &str) -> Result<(Header, String)> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(rejected("too long"));
    }
    let header = jsonwebtoken::decode_header(token).map_err(|_| rejected("malformed"))?;
    if header.alg != Algorithm::RS256 {
        return Err(rejected("algorithm must be RS256"));
    }
    if header.jku.is_some()
        || header.x5u.is_some()
        || header.jwk.is_some()
        || header.x5c.is_some()
        || header.crit.is_some()
    {
        return Err(rejected("header names keys or extensions this service does not accept"));
    }
    let kid = header.kid.clone().ok_or_else(|| rejected("no key id"))?;
    Ok((header, kid))
}

/// Verifies the signature with `key` and every claim, judging time by `now` (Unix seconds).
pub fn verify_with(
    token: &str,
    key: &jsonwebtoken::DecodingKey,
    settings: &TokenSettings,
    expected: TokenType,
    now: i64,
) -> Result<Claims> {
    let mut v = Validation::new(Algorithm::RS256);
    v.set_issuer(&[&settings.issuer]);
    v.set_audience(&[&settings.audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iat", "iss", "aud", "sub"]);
    // Time is judged below against the injected clock, so tests and simulations can move it.
    v.validate_exp = false;
    v.validate_nbf = false;
    let data = jsonwebtoken::decode::<Claims>(token, key, &v).map_err(|e| rejected(&e.to_string()))?;
    let c = data.claims;
    if c.exp + LEEWAY_SECS <= now {
        return Err(rejected("expired"));
    }
    if c.nbf - LEEWAY_SECS > now {
        return Err(rejected("not yet valid"));
    }
    if c.token_type != expected {
        return Err(rejected("wrong token type"));
    }
    if expected == TokenType::Refresh && c.fam.is_none() {
        return Err(rejected("refresh token without family"));
    }
    c.user_id()?;
    Ok(c)
}

/// Signs and verifies tokens with the keys of a [`KeyRing`].
#[derive(Clone)]
pub struct Tokens {
    keys: Arc<KeyRing>,
    settings: TokenSettings,
    clock: Arc<dyn Clock>,
}

impl Tokens {
    /// Tokens signed by `keys`.
    pub fn new(keys: Arc<KeyRing>, settings: TokenSettings, clock: Arc<dyn Clock>) -> Self {
        Tokens { keys, settings, clock }
    }

    /// The key ring.
    pub fn keys(&self) -> &Arc<KeyRing> {
        &self.keys
    }

    /// Issuer and audience.
    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    /// Signs a token of `kind` for a user; returns it with its claims.
    pub fn sign(
        &self,
        user_id: i64,
        username: &str,
        is_staff: bool,
        kind: TokenType,
        fam: Option<&str>,
    ) -> Result<(String, Claims)> {
        let now = self.clock.now();
        let ttl = match kind {
            TokenType::Access => ACCESS_TTL,
            TokenType::Refresh => REFRESH_TTL,
        };
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            aud: self.settings.audience.clone(),
            sub: user_id.to_string(),
            username: username.to_owned(),
            is_staff,
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + ttl).timestamp(),
            jti: uuid::Uuid::now_v7().to_string(),
            token_type: kind,
            fam: fam.map(str::to_owned),
        };
        let key = self.keys.signing_key()?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(key.meta.kid.clone());
        let token =
            jsonwebtoken::encode(&header, &claims, &key.encoding).map_err(|e| Error::internal(e.to_string()))?;
        Ok((token, claims))
    }

    /// Verifies a token of the `expected` kind (signature and claims; not revocation).
    pub fn verify(&self, token: &str, expected: TokenType) -> Result<Claims> {
        let (_, kid) = check_header(token)?;
        let key = self.keys.verifying_key(&kid).ok_or_else(|| rejected("unknown key id"))?;
        verify_with(token, &key, &self.settings, expected, self.clock.now().timestamp())
    }
}

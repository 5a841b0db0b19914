//! Authentication over HTTP: the bearer extractor, and the `/api/auth/` and JWKS routes.

use crate::envelope::{self, ActorSlot};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientAddr, parse_json};
use crate::{AppState, both};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::json;
use taskhub_core::Actor;
use taskhub_core::auth::Principal;
use taskhub_core::users::UserInput;

/// The authenticated caller of a request (`Authorization: Bearer <access token>`).
#[derive(Debug, Clone)]
pub struct Auth(pub Principal);

impl Auth {
    /// The acting user.
    pub fn actor(&self) -> Actor {
        self.0.actor
    }
}

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::AUTHORIZATION) else {
            return Err(ApiError::Unauthenticated { message: "authentication required".into(), token_given: false });
        };
        let token = value
            .to_str()
            .ok()
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| ApiError::Unauthenticated {
                message: "use Authorization: Bearer <token>".into(),
                token_given: true,
            })?;
        let principal = state.auth.authenticate(token).await?;
        if let Some(slot) = parts.extensions.get::<ActorSlot>()
            && let Ok(mut g) = slot.0.lock()
        {
            *g = Some(principal.actor.user_id);
        }
        Ok(Auth(principal))
    }
}

/// The `/api/auth/` routes and the JWKS.
pub fn routes() -> Router<AppState> {
    let r = Router::new().route("/.well-known/jwks.json", get(jwks));
    let r = both(r, "/api/auth/register/", post(register));
    let r = both(r, "/api/auth/login/", post(login));
    let r = both(r, "/api/auth/refresh/", post(refresh));
    let r = both(r, "/api/auth/logout/", post(logout));
    both(r, "/api/auth/public-key/", get(public_key))
}

fn limit(state: &AppState, addr: ClientAddr) -> ApiResult<()> {
    let now = state.services.ctx.clock.now();
    state.limiter.check(addr.0, now).map(|_| ()).map_err(|retry_after| {
        tracing::warn!(client = %addr.0, "auth rate limit hit");
        ApiError::RateLimited { retry_after, limit: Some(state.limiter.per_minute()) }
    })
}

async fn register(State(state): State<AppState>, addr: ClientAddr, ApiJson(input): ApiJson<UserInput>) -> ApiResult {
    limit(&state, addr)?;
    let user = state.services.users.register(input).await?;
    let location = format!("/api/users/{}/", user.id);
    Ok(envelope::created(&user.view_for(None), &location, None))
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(State(state): State<AppState>, addr: ClientAddr, ApiJson(body): ApiJson<LoginBody>) -> ApiResult {
    limit(&state, addr)?;
    let (pair, user) = state.auth.login(&body.username, &body.password).await?;
    Ok(envelope::ok(&json!({
        "access": pair.access, "refresh": pair.refresh, "token_type": pair.token_type,
        "expires_in": pair.expires_in, "user": user.view_for(None),
    })))
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh: String,
}

async fn refresh(State(state): State<AppState>, addr: ClientAddr, ApiJson(body): ApiJson<RefreshBody>) -> ApiResult {
    limit(&state, addr)?;
    Ok(envelope::ok(&state.auth.refresh(&body.refresh).await?))
}

#[derive(Deserialize, Default)]
struct LogoutBody {
    #[serde(default)]
    refresh: Option<String>,
}

/// The body is optional: an empty body logs out the session of the access token alone.
async fn logout(State(state): State<AppState>, auth: Auth, headers: axum::http::HeaderMap, body: Bytes) -> ApiResult {
    let body: LogoutBody = if body.is_empty() {
        LogoutBody::default()
    } else {
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if !json {
            return Err(ApiError::UnsupportedMediaType);
        }
        parse_json(&body)?
    };
    state.auth.logout(&auth.0, body.refresh.as_deref()).await?;
    Ok(envelope::ok(&json!({})))
}

async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = axum::Json(state.auth.tokens().keys().jwks()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

async fn public_key(State(state): State<AppState>) -> ApiResult {
    let (kid, pem) = state.auth.tokens().keys().public_key()?;
    Ok(envelope::ok(&json!({"public_key": pem, "key_id": kid, "algorithm": "RS256", "use": "sig"})))
}

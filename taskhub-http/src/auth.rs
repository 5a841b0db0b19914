//! Authentication over HTTP: the bearer extractor, and the `/api/auth/` and JWKS routes.

use crate::AppState;
use crate::envelope::{self, ActorSlot};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ClientAddr, parse_json};
use crate::openapi::{Envelope, Errors};
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;
use taskhub_core::Actor;
use taskhub_core::auth::Principal;
use taskhub_core::auth::TokenPair;
use taskhub_core::users::{UserInput, UserView};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(jwks))
        .routes(routes!(register))
        .routes(routes!(login))
        .routes(routes!(refresh))
        .routes(routes!(logout))
        .routes(routes!(public_key))
}

pub(crate) fn limit(state: &AppState, addr: ClientAddr) -> ApiResult<()> {
    let now = state.services.ctx.clock.now();
    state.limiter.check(addr.0, now).map(|_| ()).map_err(|retry_after| {
        tracing::warn!(client = %addr.0, "auth rate limit hit");
        ApiError::RateLimited { retry_after, limit: Some(state.limiter.per_minute()) }
    })
}

#[utoipa::path(post, path = "/api/auth/register/", tag = "auth", summary = "Register a user", request_body = UserInput, responses((status = 201, body = Envelope<UserView>), Errors))]
async fn register(State(state): State<AppState>, addr: ClientAddr, ApiJson(input): ApiJson<UserInput>) -> ApiResult {
    limit(&state, addr)?;
    let user = state.services.users.register(input).await?;
    let location = format!("/api/users/{}/", user.id);
    Ok(envelope::created(&user.view_for(None), &location, None))
}

#[derive(Deserialize, ToSchema)]
struct LoginBody {
    username: String,
    password: String,
}

/// What a login answers.
#[derive(serde::Serialize, ToSchema)]
struct LoginReply {
    access: String,
    refresh: String,
    token_type: String,
    expires_in: i64,
    user: UserView,
}

/// The current signing key.
#[derive(serde::Serialize, ToSchema)]
struct PublicKey {
    public_key: String,
    key_id: String,
    algorithm: String,
    #[serde(rename = "use")]
    key_use: String,
}

#[utoipa::path(post, path = "/api/auth/login/", tag = "auth", summary = "Log in: access and refresh tokens", request_body = LoginBody, responses((status = 200, body = Envelope<LoginReply>), Errors))]
async fn login(State(state): State<AppState>, addr: ClientAddr, ApiJson(body): ApiJson<LoginBody>) -> ApiResult {
    limit(&state, addr)?;
    let (pair, user) = state.auth.login(&body.username, &body.password).await?;
    let reply = LoginReply {
        access: pair.access,
        refresh: pair.refresh,
        token_type: pair.token_type.to_owned(),
        expires_in: pair.expires_in,
        user: user.view_for(None),
    };
    Ok(envelope::ok(&reply))
}

#[derive(Deserialize, ToSchema)]
struct RefreshBody {
    refresh: String,
}

#[utoipa::path(post, path = "/api/auth/refresh/", tag = "auth", summary = "Trade a refresh token (once) for a new pair", request_body = RefreshBody, responses((status = 200, body = Envelope<TokenPair>), Errors))]
async fn refresh(State(state): State<AppState>, addr: ClientAddr, ApiJson(body): ApiJson<RefreshBody>) -> ApiResult {
    limit(&state, addr)?;
    Ok(envelope::ok(&state.auth.refresh(&body.refresh).await?))
}

#[derive(Deserialize, Default, ToSchema)]
struct LogoutBody {
    #[serde(default)]
    refresh: Option<String>,
}

#[utoipa::path(post, path = "/api/auth/logout/", tag = "auth", summary = "End the session: revoke the access token and its refresh family", request_body(content = Option<LogoutBody>, description = "optional"), responses((status = 200, body = Envelope<Object>), Errors), security(("bearer" = [])))]
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

#[utoipa::path(get, path = "/.well-known/jwks.json", tag = "auth", summary = "The JWKS: every key that may verify a live token (no envelope)", responses((status = 200, body = Object)))]
async fn jwks(State(state): State<AppState>) -> Response {
    let mut res = axum::Json(state.auth.tokens().keys().jwks()).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

#[utoipa::path(get, path = "/api/auth/public-key/", tag = "auth", summary = "The current signing key as PEM", responses((status = 200, body = Envelope<PublicKey>), Errors))]
async fn public_key(State(state): State<AppState>) -> ApiResult {
    let (kid, pem) = state.auth.tokens().keys().public_key()?;
    Ok(envelope::ok(&PublicKey { public_key: pem, key_id: kid, algorithm: "RS256".into(), key_use: "sig".into() }))
}

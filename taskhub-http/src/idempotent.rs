//! `Idempotency-Key` for the action POSTs (archive, assign, membership changes…). Creating POSTs
//! claim their key inside the command's own transaction (see the core); actions are idempotent
//! in effect, so they claim in a transaction of their own, with a lease, around the handler.

use crate::envelope;
use crate::error::ApiError;
use crate::extract::{MAX_BODY, idempotency_key};
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use taskhub_core::Actor;
use taskhub_core::auth::TokenType;
use taskhub_core::idempotency::Claim;

/// The POST routes whose keys this layer handles.
const ACTIONS: &[&str] = &[
    "/api/tasks/{id}/archive/",
    "/api/tasks/{id}/unarchive/",
    "/api/tasks/{id}/assign/",
    "/api/tasks/{id}/unassign/",
    "/api/teams/{id}/add_members/",
    "/api/teams/{id}/remove_member/",
    "/api/teams/{id}/leave/",
];

/// Replays or records the response of an action POST that carries an `Idempotency-Key`.
pub async fn actions(State(state): State<crate::AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_owned()).unwrap_or_default();
    if req.method() != Method::POST
        || !ACTIONS.contains(&route.as_str())
        || !req.headers().contains_key("idempotency-key")
    {
        return next.run(req).await;
    }
    // Whose key it is: a token that does not verify is left to the handler's 401.
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let Some(user) =
        token.and_then(|t| state.auth.tokens().verify(&t, TokenType::Access).ok()).and_then(|c| c.user_id().ok())
    else {
        return next.run(req).await;
    };
    let actor = Actor::user(user);
    let (parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_BODY).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    let key = match idempotency_key(&parts.headers, parts.uri.path(), &bytes) {
        Ok(Some(k)) => k,
        Ok(None) => return next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Err(e) => return e.into_response(),
    };
    match state.services.idempotency.claim(&actor, &key).await {
        Err(e) => return ApiError::from(e).into_response(),
        Ok(Claim::Replay(status, data)) => {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let version = data.get("version").and_then(serde_json::Value::as_i64);
            let res = envelope::with_status(status, data, None, None);
            return match version {
                Some(v) => envelope::tag(res, v),
                None => res,
            };
        }
        Ok(Claim::Run) => {}
    }
    let res = next.run(Request::from_parts(parts, Body::from(bytes))).await;
    if !res.status().is_success() {
        if let Err(e) = state.services.idempotency.release(&actor, &key).await {
            tracing::error!(error = %e, "cannot release an idempotency key");
        }
        return res;
    }
    let (parts, body) = res.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    };
    let data = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|v| v.get("data").cloned())
        .unwrap_or_default();
    if let Err(e) = state.services.idempotency.complete(&actor, &key, parts.status.as_u16(), &data).await {
        tracing::error!(error = %e, "cannot record an idempotent response");
    }
    Response::from_parts(parts, Body::from(bytes))
}

//! Extractors whose every rejection speaks the API's error format: JSON bodies (415, 413, 400,
//! 422 with per-field messages), query strings and path ids (400), `If-Match`, and the client
//! address.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, SocketAddr};
use taskhub_core::FieldErrors;

/// Largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// A JSON body.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// The raw bytes of a JSON body, kept for idempotency fingerprints.
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    content_type.and_then(|v| v.to_str().ok()).is_some_and(|ct| {
        let mime = ct.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
    })
}

async fn json_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    if !is_json(req.headers().get(header::CONTENT_TYPE)) {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = Bytes::from_request(req, state).await.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge
        } else {
            ApiError::BadRequest(r.body_text())
        }
    })?;
    if bytes.is_empty() {
        return Err(ApiError::BadRequest("the request body is empty".into()));
    }
    if std::str::from_utf8(&bytes).is_err() {
        return Err(ApiError::BadRequest("the request body is not UTF-8".into()));
    }
    Ok(bytes)
}

/// Parses JSON: syntax errors are 400; a well-formed body with a wrong field is 422 naming it.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    // Every body of this API is an object; anything else at the root is malformed, not invalid.
    if bytes.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ApiError::BadRequest("the request body must be a JSON object".into()));
    }
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize::<_, T>(de) {
        Ok(v) => Ok(v),
        Err(e) => {
            let path = e.path().to_string();
            let inner = e.into_inner();
            let missing = inner.to_string().starts_with("missing field");
            if inner.is_syntax() || inner.is_eof() || (path == "." && !missing) {
                return Err(ApiError::BadRequest(format!("invalid JSON: {inner}")));
            }
            let mut msg = inner.to_string();
            if let Some(i) = msg.find(" at line ") {
                msg.truncate(i);
            }
            let mut fields = FieldErrors::new();
            let field = if let Some(rest) = msg.strip_prefix("missing field `") {
                rest.trim_end_matches('`').to_owned()
            } else {
                path
            };
            let text = if msg.starts_with("missing field") { "is required".to_owned() } else { msg };
            fields.insert(field, vec![text]);
            Err(ApiError::Invalid(fields))
        }
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = json_bytes(req, state).await?;
        Ok(ApiJson(parse_json(&bytes)?))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(JsonBytes(json_bytes(req, state).await?))
    }
}

/// A query string; anything unparseable is a 400.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let q = parts.uri.query().unwrap_or_default();
        serde_urlencoded::from_str(q)
            .map(ApiQuery)
            .map_err(|e| ApiError::BadRequest(format!("invalid query string: {e}")))
    }
}

/// A positive integer id from the path.
#[derive(Debug, Clone, Copy)]
pub struct Id(pub i64);

/// Two ids from the path (`/tasks/{id}/comments/{cid}/`).
#[derive(Debug, Clone, Copy)]
pub struct Ids(pub i64, pub i64);

fn parse_id(s: &str) -> Result<i64, ApiError> {
    s.parse::<i64>().ok().filter(|n| *n > 0).ok_or_else(|| ApiError::BadRequest(format!("`{s}` is not a valid id")))
}

impl<S: Send + Sync> FromRequestParts<S> for Id {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path(raw) = axum::extract::Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("invalid path".into()))?;
        Ok(Id(parse_id(&raw)?))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Ids {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let axum::extract::Path((a, b)) = axum::extract::Path::<(String, String)>::from_request_parts(parts, state)
            .await
            .map_err(|_| ApiError::BadRequest("invalid path".into()))?;
        Ok(Ids(parse_id(&a)?, parse_id(&b)?))
    }
}

/// The `If-Match` version: `None` when absent or `*`. A value that is no ETag of ours can
/// never match, so it answers 412.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<i64>);

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let Some(v) = parts.headers.get(header::IF_MATCH) else { return Ok(IfMatch(None)) };
        let v = v.to_str().unwrap_or_default().trim();
        if v == "*" {
            return Ok(IfMatch(None));
        }
        let n = v.trim_matches('"').parse::<i64>().unwrap_or(-1);
        Ok(IfMatch(Some(if v.starts_with('"') && v.ends_with('"') { n } else { -1 })))
    }
}

/// The client's address (the peer of the connection; 127.0.0.1 in in-process tests).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map_or(IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
        Ok(ClientAddr(ip))
    }
}

/// The `Idempotency-Key` of a POST, fingerprinted with its path and body.
pub fn idempotency_key(
    headers: &axum::http::HeaderMap,
    path: &str,
    body: &[u8],
) -> Result<Option<taskhub_core::idempotency::IdempotencyKey>, ApiError> {
    let Some(v) = headers.get("idempotency-key") else { return Ok(None) };
    let key = v.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key must be printable ASCII".into()))?;
    let mut fingerprint = path.as_bytes().to_vec();
    fingerprint.push(0);
    fingerprint.extend_from_slice(body);
    Ok(Some(taskhub_core::idempotency::IdempotencyKey::new(key, &fingerprint)?))
}

//! One error type for every failure a handler can answer with, mapped to the envelope, status
//! codes and error codes of API.md. Internal details go to the log with the request id, never
//! to the client.

use crate::envelope;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use taskhub_core::{Error, FieldErrors};

/// A failed request.
#[derive(Debug)]
pub enum ApiError {
    /// A core error.
    Core(Error),
    /// Unparseable JSON, an empty or non-UTF-8 body, a bad query string or path id.
    BadRequest(String),
    /// A query string whose values break a rule (400, with per-parameter messages).
    BadQuery(FieldErrors),
    /// Body over the limit.
    PayloadTooLarge,
    /// A body whose Content-Type is not `application/json`.
    UnsupportedMediaType,
    /// Wrong field types or missing fields in a well-formed body.
    Invalid(FieldErrors),
    /// No or an unusable `Authorization` header.
    Unauthenticated {
        /// The sentence for the client.
        message: String,
        /// Whether a token was presented (adds `error="invalid_token"`).
        token_given: bool,
    },
    /// Over a rate limit.
    RateLimited {
        /// Seconds to wait.
        retry_after: u64,
        /// The limit per minute, for `RateLimit-Policy`.
        limit: Option<u32>,
    },
    /// The route exists, the method does not.
    MethodNotAllowed,
    /// A backend the request needs does not answer (503).
    Unavailable(String),
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Unauthenticated(message) => ApiError::Unauthenticated { message, token_given: true },
            Error::RateLimited { retry_after } => ApiError::RateLimited { retry_after, limit: None },
            other => ApiError::Core(other),
        }
    }
}

fn body(status: StatusCode, code: &str, message: &str, fields: Option<&FieldErrors>) -> Response {
    let mut error = json!({"code": code, "message": message});
    if let (Some(f), Some(obj)) = (fields, error.as_object_mut()) {
        obj.insert("fields".into(), serde_json::to_value(f).unwrap_or(Value::Null));
    }
    envelope::with_status(status, Value::Null, Some(error), None)
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Core(e) => core_response(e),
            ApiError::BadRequest(m) => body(StatusCode::BAD_REQUEST, "bad_request", &m, None),
            ApiError::Unavailable(m) => body(StatusCode::SERVICE_UNAVAILABLE, "unavailable", &m, None),
            ApiError::BadQuery(fields) => {
                body(StatusCode::BAD_REQUEST, "bad_request", "the query string is not valid", Some(&fields))
            }
            ApiError::PayloadTooLarge => {
                body(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", "the request body is larger than 1 MiB", None)
            }
            ApiError::UnsupportedMediaType => body(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "the request body must be application/json",
                None,
            ),
            ApiError::Invalid(fields) => {
                body(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "the request is not valid", Some(&fields))
            }
            ApiError::Unauthenticated { message, token_given } => {
                let mut res = body(StatusCode::UNAUTHORIZED, "unauthenticated", &message, None);
                let challenge = if token_given {
                    r#"Bearer realm="taskhub", error="invalid_token""#
                } else {
                    r#"Bearer realm="taskhub""#
                };
                res.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                res
            }
            ApiError::RateLimited { retry_after, limit } => {
                let mut res =
                    body(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "too many requests; retry later", None);
                let h = res.headers_mut();
                if let Ok(v) = HeaderValue::from_str(&retry_after.to_string()) {
                    h.insert(header::RETRY_AFTER, v);
                }
                if let Some(limit) = limit {
                    if let Ok(v) = HeaderValue::from_str(&format!("{limit};w=60")) {
                        h.insert("ratelimit-policy", v);
                    }
                    if let Ok(v) = HeaderValue::from_str(&format!("limit={limit}, remaining=0, reset={retry_after}")) {
                        h.insert("ratelimit", v);
                    }
                }
                res
            }
            ApiError::MethodNotAllowed => {
                body(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", "this method is not allowed here", None)
            }
        }
    }
}

fn core_response(e: Error) -> Response {
    match e {
        Error::Validation { fields } => {
            body(StatusCode::UNPROCESSABLE_ENTITY, "validation_failed", "the request is not valid", Some(&fields))
        }
        Error::NotFound(what) => body(StatusCode::NOT_FOUND, "not_found", &format!("{what} not found"), None),
        Error::Forbidden(m) => body(StatusCode::FORBIDDEN, "forbidden", &m, None),
        Error::Conflict(m) => body(StatusCode::CONFLICT, "conflict", &m, None),
        Error::PreconditionFailed { current } => body(
            StatusCode::PRECONDITION_FAILED,
            "precondition_failed",
            &format!("the resource has changed; its current ETag is \"{current}\""),
            None,
        ),
        Error::IdempotencyKeyReused => body(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "this Idempotency-Key was used with a different request",
            None,
        ),
        Error::Unauthenticated(m) => ApiError::Unauthenticated { message: m, token_given: true }.into_response(),
        Error::RateLimited { retry_after } => ApiError::RateLimited { retry_after, limit: None }.into_response(),
        e @ (Error::Config(_) | Error::Internal(_)) => {
            tracing::error!(error = %e, detail = ?e, "internal error");
            body(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "something went wrong on our side; it has been logged",
                None,
            )
        }
    }
}

/// Maps the validation errors of list parameters to 400 (API.md: a bad query string is a bad
/// request), leaving other errors as they are.
pub fn query_error(e: Error) -> ApiError {
    match e {
        Error::Validation { fields } => ApiError::BadQuery(fields),
        other => other.into(),
    }
}

/// Handler result.
pub type ApiResult<T = Response> = Result<T, ApiError>;

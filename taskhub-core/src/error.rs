//! Typed errors of the core services.
//!
//! Every service returns [`Error`]; shells map each variant to their own representation (the
//! HTTP shell maps them to the envelope and status codes of API.md).

use std::collections::BTreeMap;

/// Per-field validation messages: `{"title": ["must not be empty"]}`.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Result alias of the core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a core operation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input broke a rule; `fields` says which and why.
    #[error("validation failed")]
    Validation {
        /// Messages per field name.
        fields: FieldErrors,
    },
    /// The resource does not exist or the caller may not see it (never leaks existence).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The caller may see the resource but not perform this action.
    #[error("{0}")]
    Forbidden(String),
    /// A uniqueness or state conflict (name taken, admin cannot leave, concurrent change).
    #[error("{0}")]
    Conflict(String),
    /// An `If-Match` version did not match the current version.
    #[error("the resource has changed (current version {current})")]
    PreconditionFailed {
        /// The version the resource has now.
        current: i64,
    },
    /// An idempotency key was used again with a different request body.
    #[error("idempotency key reused with a different request")]
    IdempotencyKeyReused,
    /// The caller is not (or no longer) authenticated.
    #[error("{0}")]
    Unauthenticated(String),
    /// Too many attempts; try again after `retry_after` seconds.
    #[error("too many attempts; retry in {retry_after} s")]
    RateLimited {
        /// Seconds until the next attempt may succeed.
        retry_after: u64,
    },
    /// Configuration is invalid or names a backend that was not compiled in.
    #[error("configuration error: {0}")]
    Config(String),
    /// Anything else: storage failures and bugs. The detail is for logs, never for clients.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl Error {
    /// A validation error on one field.
    pub fn field(field: &str, message: impl Into<String>) -> Self {
        let mut fields = FieldErrors::new();
        fields.insert(field.to_owned(), vec![message.into()]);
        Error::Validation { fields }
    }

    /// An internal error from any error value.
    pub fn internal(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        Error::Internal(e.into())
    }
}

impl From<sqlx::Error> for Error {
    fn from(e: sqlx::Error) -> Self {
        Error::Internal(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        Error::Internal(Box::new(e))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::Internal(Box::new(e))
    }
}

//! The one error type of ChatiCO.
//!
//! Every fallible operation in every crate ends in [`Error`]. Each variant has a stable,
//! machine-readable [`Error::code`] that transports put on the wire (HTTP body, WebSocket
//! error frame, FFI error enum) and that clients match on. Messages are for humans and never
//! contain internals (SQL, stack traces, secrets); backends log details with `tracing` and
//! return [`Error::Unavailable`] or [`Error::Internal`].

use serde::{Deserialize, Serialize};

/// Result alias used across ChatiCO.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A typed, stable error. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or exists but the caller may not know it does
    /// (a conversation you are not a member of answers exactly like a missing one).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// The caller is known and may see the thing, but may not do this to it.
    #[error("forbidden: {reason}")]
    Forbidden { reason: String },
    /// A field of the request is malformed or out of bounds. Nothing was changed.
    #[error("invalid {field}: {reason}")]
    InvalidInput { field: String, reason: String },
    /// Too many requests; retry after the given number of milliseconds.
    #[error("rate limited; retry after {retry_after_ms} ms")]
    RateLimited { retry_after_ms: u64 },
    /// The request conflicts with the current state (e.g. already a member).
    #[error("conflict: {reason}")]
    Conflict { reason: String },
    /// Missing, expired, revoked or tampered credentials, or a wrong OTP code.
    #[error("unauthorized: {reason}")]
    Unauthorized { reason: String },
    /// A payload exceeds a configured limit (bytes, items, pixels...).
    #[error("{what} too large (limit {limit})")]
    TooLarge { what: String, limit: u64 },
    /// A dependency (database, broker, SMS provider) is unreachable. Retry later; nothing
    /// acknowledged has been lost.
    #[error("service unavailable: {reason}")]
    Unavailable { reason: String },
    /// A bug or an invariant violation. Details are logged, never sent.
    #[error("internal error")]
    Internal { reason: String },
}

/// The stable wire codes, one per [`Error`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    NotFound,
    Forbidden,
    InvalidInput,
    RateLimited,
    Conflict,
    Unauthorized,
    TooLarge,
    Unavailable,
    Internal,
}

impl ErrorCode {
    /// The code as it appears on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::InvalidInput => "invalid_input",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The serialisable shape of an error on the wire: `{"code", "message", "field"?, "retry_after_ms"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    pub code: ErrorCode,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl Error {
    pub fn code(&self) -> ErrorCode {
        match self {
            Error::NotFound { .. } => ErrorCode::NotFound,
            Error::Forbidden { .. } => ErrorCode::Forbidden,
            Error::InvalidInput { .. } => ErrorCode::InvalidInput,
            Error::RateLimited { .. } => ErrorCode::RateLimited,
            Error::Conflict { .. } => ErrorCode::Conflict,
            Error::Unauthorized { .. } => ErrorCode::Unauthorized,
            Error::TooLarge { .. } => ErrorCode::TooLarge,
            Error::Unavailable { .. } => ErrorCode::Unavailable,
            Error::Internal { .. } => ErrorCode::Internal,
        }
    }

    pub fn not_found(what: &'static str) -> Self {
        Error::NotFound { what }
    }
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Error::Forbidden { reason: reason.into() }
    }
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
    pub fn conflict(reason: impl Into<String>) -> Self {
        Error::Conflict { reason: reason.into() }
    }
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Error::Unauthorized { reason: reason.into() }
    }
    pub fn too_large(what: impl Into<String>, limit: u64) -> Self {
        Error::TooLarge {
            what: what.into(),
            limit,
        }
    }
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Error::Unavailable { reason: reason.into() }
    }
    pub fn internal(reason: impl Into<String>) -> Self {
        Error::Internal { reason: reason.into() }
    }

    /// The wire body. `Internal` and `Unavailable` reasons are replaced by generic text so
    /// that backend details never leave the process.
    pub fn body(&self) -> ErrorBody {
        let message = match self {
            Error::Internal { .. } => "internal error".to_owned(),
            Error::Unavailable { .. } => "service temporarily unavailable".to_owned(),
            other => other.to_string(),
        };
        ErrorBody {
            code: self.code(),
            message,
            field: match self {
                Error::InvalidInput { field, .. } => Some(field.clone()),
                _ => None,
            },
            retry_after_ms: match self {
                Error::RateLimited { retry_after_ms } => Some(*retry_after_ms),
                _ => None,
            },
        }
    }
}

impl From<ErrorBody> for Error {
    /// Rebuilds a typed error from a wire body (used by clients).
    fn from(b: ErrorBody) -> Self {
        match b.code {
            ErrorCode::NotFound => Error::NotFound { what: "resource" },
            ErrorCode::Forbidden => Error::Forbidden { reason: b.message },
            ErrorCode::InvalidInput => Error::InvalidInput {
                field: b.field.unwrap_or_default(),
                reason: b.message,
            },
            ErrorCode::RateLimited => Error::RateLimited {
                retry_after_ms: b.retry_after_ms.unwrap_or(1000),
            },
            ErrorCode::Conflict => Error::Conflict { reason: b.message },
            ErrorCode::Unauthorized => Error::Unauthorized { reason: b.message },
            ErrorCode::TooLarge => Error::TooLarge {
                what: b.message,
                limit: 0,
            },
            ErrorCode::Unavailable => Error::Unavailable { reason: b.message },
            ErrorCode::Internal => Error::Internal { reason: b.message },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_never_reach_the_body() {
        let e = Error::internal("SELECT * FROM secrets failed at db.rs:12");
        let b = e.body();
        assert_eq!(b.code, ErrorCode::Internal);
        assert!(!b.message.contains("SELECT"));
        let e = Error::unavailable("connection refused 10.0.0.3:5432");
        assert!(!e.body().message.contains("10.0.0.3"));
    }

    #[test]
    fn codes_are_stable_snake_case() {
        let e = Error::RateLimited { retry_after_ms: 1500 };
        let json = serde_json::to_value(e.body()).expect("serialize");
        assert_eq!(json["code"], "rate_limited");
        assert_eq!(json["retry_after_ms"], 1500);
        let e = Error::invalid("display_name", "empty");
        let json = serde_json::to_value(e.body()).expect("serialize");
        assert_eq!(json["code"], "invalid_input");
        assert_eq!(json["field"], "display_name");
        for c in [
            ErrorCode::NotFound,
            ErrorCode::Forbidden,
            ErrorCode::InvalidInput,
            ErrorCode::RateLimited,
            ErrorCode::Conflict,
            ErrorCode::Unauthorized,
            ErrorCode::TooLarge,
            ErrorCode::Unavailable,
            ErrorCode::Internal,
        ] {
            assert_eq!(serde_json::to_value(c).expect("ser"), c.as_str());
        }
    }
}

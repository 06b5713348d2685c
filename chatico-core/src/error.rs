//! The one error type of ChatiCO.
//!
//! Every fallible operation in every crate ends in [`Error`]. Each variant has a stable,
//! machine-readable [`Error::code`] that transports put on the wire (HTTP body, WebSocket
//! error frame, FFI error enum) and that clients match on. Messages are for humans and never
//! contain internals (SQL, stack traces, secrets); backends log details with `tracing` and
//! return [`Error::Unavailable`] or [`Error::Internal`].
//!
//! # One text, one mapping
//!
//! An error's `Display` is its human text, written once: "invalid phone: must be E.164",
//! "forbidden: blocked", "upload too large (limit 10485760)". [`Error::body`] puts exactly
//! that text in the wire `message` (the public form: `Internal` and `Unavailable` reasons are
//! replaced by generic text), with the structured parts beside it (`field`,
//! `retry_after_ms`, `limit`). [`Error::from_wire`] and [`Error::from_response`] are the one
//! way back from a status and body to an `Error`, used by every client (native and wasm):
//! the round trip gives back an error equal to the server's public one, whose `Display` is
//! the wire message again, never a repetition of it.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

/// Result alias used across ChatiCO.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A typed, stable error. See the module docs.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The thing does not exist, or exists but the caller may not know it does
    /// (a conversation you are not a member of answers exactly like a missing one).
    #[error("{what} not found")]
    NotFound {
        /// What was looked for ("conversation", "message"...).
        what: Cow<'static, str>,
    },
    /// The caller is known and may see the thing, but may not do this to it.
    #[error("forbidden: {reason}")]
    Forbidden {
        /// Which rule refused it ("blocked", "not an admin"...).
        reason: String,
    },
    /// A field of the request is malformed or out of bounds. Nothing was changed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The request field at fault, by its wire name.
        field: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Too many requests; retry after the given number of milliseconds.
    #[error("rate limited; retry after {retry_after_ms} ms")]
    RateLimited {
        /// How long to wait before trying again, in ms.
        retry_after_ms: u64,
    },
    /// The request conflicts with the current state (e.g. already a member).
    #[error("conflict: {reason}")]
    Conflict {
        /// What the request collides with.
        reason: String,
    },
    /// Missing, expired, revoked or tampered credentials, or a wrong OTP code.
    #[error("unauthorized: {reason}")]
    Unauthorized {
        /// Why the credentials were refused.
        reason: String,
    },
    /// A payload exceeds a configured limit (bytes, items, pixels...). `limit` 0 means the
    /// limit is not known (a client's reading of a bare 413).
    #[error("{what} too large{}", limit_text(*.limit))]
    TooLarge {
        /// What was too large ("blob", "frame"...).
        what: String,
        /// The limit exceeded, in the unit of `what`; 0 when unknown.
        limit: u64,
    },
    /// A dependency (database, broker, SMS provider) is unreachable. Retry later; nothing
    /// acknowledged has been lost.
    #[error("service unavailable: {reason}")]
    Unavailable {
        /// The failure, for logs; the wire carries a generic text.
        reason: String,
    },
    /// A bug or an invariant violation. Details are logged, never sent.
    #[error("internal error")]
    Internal {
        /// The failure, for logs; never sent.
        reason: String,
    },
}

fn limit_text(limit: u64) -> String {
    if limit == 0 {
        String::new()
    } else {
        format!(" (limit {limit})")
    }
}

/// The text an [`Error::Unavailable`] carries on the wire instead of its (private) reason.
const UNAVAILABLE_PUBLIC: &str = "try again later";
/// The reason an [`Error::Internal`] carries on the wire.
const INTERNAL_PUBLIC: &str = "internal error";

/// The stable wire codes, one per [`Error`] variant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// See [`Error::NotFound`]; HTTP 404.
    NotFound,
    /// See [`Error::Forbidden`]; HTTP 403.
    Forbidden,
    /// See [`Error::InvalidInput`]; HTTP 400.
    InvalidInput,
    /// See [`Error::RateLimited`]; HTTP 429.
    RateLimited,
    /// See [`Error::Conflict`]; HTTP 409.
    Conflict,
    /// See [`Error::Unauthorized`]; HTTP 401.
    Unauthorized,
    /// See [`Error::TooLarge`]; HTTP 413.
    TooLarge,
    /// See [`Error::Unavailable`]; HTTP 503.
    Unavailable,
    /// See [`Error::Internal`]; HTTP 500.
    Internal,
}

impl ErrorCode {
    /// Every code, in declaration order.
    pub const ALL: [ErrorCode; 9] = [
        ErrorCode::NotFound,
        ErrorCode::Forbidden,
        ErrorCode::InvalidInput,
        ErrorCode::RateLimited,
        ErrorCode::Conflict,
        ErrorCode::Unauthorized,
        ErrorCode::TooLarge,
        ErrorCode::Unavailable,
        ErrorCode::Internal,
    ];

    /// The HTTP status that carries this code (one per code).
    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::NotFound => 404,
            ErrorCode::Forbidden => 403,
            ErrorCode::InvalidInput => 400,
            ErrorCode::RateLimited => 429,
            ErrorCode::Conflict => 409,
            ErrorCode::Unauthorized => 401,
            ErrorCode::TooLarge => 413,
            ErrorCode::Unavailable => 503,
            ErrorCode::Internal => 500,
        }
    }

    /// The code of an HTTP error status that came without a body: the inverse of
    /// [`ErrorCode::http_status`], any other 5xx `unavailable` (a proxy in front of a server
    /// that is down), any other 4xx `invalid_input`.
    pub fn from_http_status(status: u16) -> ErrorCode {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.http_status() == status)
            .unwrap_or(if status >= 500 {
                ErrorCode::Unavailable
            } else {
                ErrorCode::InvalidInput
            })
    }

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

/// The serialisable shape of an error on the wire:
/// `{"code", "message", "field"?, "retry_after_ms"?, "limit"?}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Which kind of error, stable across versions.
    pub code: ErrorCode,
    /// Human-readable text (English); not meant to be parsed.
    pub message: String,
    /// `invalid_input` only: the request field at fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// `rate_limited` only: how long to wait, in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
    /// `too_large` only: the limit that was exceeded (bytes, pixels...), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

impl Error {
    /// The wire code of this error.
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

    /// An [`Error::NotFound`] for `what`.
    pub fn not_found(what: &'static str) -> Self {
        Error::NotFound {
            what: Cow::Borrowed(what),
        }
    }
    /// An [`Error::Forbidden`] with the rule that refused it.
    pub fn forbidden(reason: impl Into<String>) -> Self {
        Error::Forbidden { reason: reason.into() }
    }
    /// An [`Error::InvalidInput`] naming the field and what is wrong.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }
    /// An [`Error::Conflict`].
    pub fn conflict(reason: impl Into<String>) -> Self {
        Error::Conflict { reason: reason.into() }
    }
    /// An [`Error::Unauthorized`].
    pub fn unauthorized(reason: impl Into<String>) -> Self {
        Error::Unauthorized { reason: reason.into() }
    }
    /// An [`Error::TooLarge`]: `what` exceeded `limit` (0 if unknown).
    pub fn too_large(what: impl Into<String>, limit: u64) -> Self {
        Error::TooLarge {
            what: what.into(),
            limit,
        }
    }
    /// An [`Error::Unavailable`]; `reason` is logged, not sent.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        Error::Unavailable { reason: reason.into() }
    }
    /// An [`Error::Internal`]; `reason` is logged, never sent.
    pub fn internal(reason: impl Into<String>) -> Self {
        Error::Internal { reason: reason.into() }
    }

    /// What may leave the process: `Internal` and `Unavailable` with generic reasons (the
    /// real ones are for logs), anything else as it is.
    pub fn public(&self) -> Error {
        match self {
            Error::Internal { .. } => Error::internal(INTERNAL_PUBLIC),
            Error::Unavailable { .. } => Error::unavailable(UNAVAILABLE_PUBLIC),
            other => other.clone(),
        }
    }

    /// The wire body: the public form's text as `message`, its structured parts beside it.
    pub fn body(&self) -> ErrorBody {
        let public = self.public();
        ErrorBody {
            code: public.code(),
            message: public.to_string(),
            field: match &public {
                Error::InvalidInput { field, .. } => Some(field.clone()),
                _ => None,
            },
            retry_after_ms: match &public {
                Error::RateLimited { retry_after_ms } => Some(*retry_after_ms),
                _ => None,
            },
            limit: match &public {
                Error::TooLarge { limit, .. } if *limit > 0 => Some(*limit),
                _ => None,
            },
        }
    }

    /// Rebuilds the typed error a wire body carries: the inverse of [`Error::body`]
    /// (`from_wire(&e.body()) == e.public()` for every error). The parts `Display` adds around
    /// a reason are taken off again, so the rebuilt error displays as the wire message, once.
    /// A message in another form (another server) is kept whole as the reason.
    pub fn from_wire(b: &ErrorBody) -> Error {
        let m = b.message.as_str();
        let strip = |prefix: &str| m.strip_prefix(prefix).unwrap_or(m).to_owned();
        match b.code {
            ErrorCode::NotFound => Error::NotFound {
                what: Cow::Owned(m.strip_suffix(" not found").unwrap_or(m).to_owned()),
            },
            ErrorCode::Forbidden => Error::Forbidden {
                reason: strip("forbidden: "),
            },
            ErrorCode::InvalidInput => {
                let field = b.field.clone().unwrap_or_default();
                Error::InvalidInput {
                    reason: strip(&format!("invalid {field}: ")),
                    field,
                }
            }
            ErrorCode::RateLimited => Error::RateLimited {
                retry_after_ms: b.retry_after_ms.unwrap_or(1000),
            },
            ErrorCode::Conflict => Error::Conflict {
                reason: strip("conflict: "),
            },
            ErrorCode::Unauthorized => Error::Unauthorized {
                reason: strip("unauthorized: "),
            },
            ErrorCode::TooLarge => {
                let limit = b.limit.unwrap_or(0);
                let what = m
                    .strip_suffix(&limit_text(limit))
                    .and_then(|w| w.strip_suffix(" too large"))
                    .unwrap_or(m)
                    .to_owned();
                Error::TooLarge { what, limit }
            }
            ErrorCode::Unavailable => Error::Unavailable {
                reason: strip("service unavailable: "),
            },
            ErrorCode::Internal => Error::Internal { reason: m.to_owned() },
        }
    }

    /// The error an HTTP answer with a non-success `status` and this `body` carries: the
    /// documented body when it is one ([`Error::from_wire`]), else the code of the status
    /// ([`ErrorCode::from_http_status`]) with a text that says what came back.
    pub fn from_response(status: u16, body: &[u8]) -> Error {
        if let Ok(b) = serde_json::from_slice::<ErrorBody>(body) {
            return Error::from_wire(&b);
        }
        let said = format!("the server answered HTTP {status} without an error body");
        match ErrorCode::from_http_status(status) {
            ErrorCode::NotFound => Error::not_found("resource"),
            ErrorCode::Forbidden => Error::forbidden(said),
            ErrorCode::InvalidInput => Error::invalid("request", said),
            ErrorCode::RateLimited => Error::RateLimited { retry_after_ms: 1000 },
            ErrorCode::Conflict => Error::conflict(said),
            ErrorCode::Unauthorized => Error::unauthorized(said),
            ErrorCode::TooLarge => Error::too_large("request", 0),
            ErrorCode::Unavailable => Error::unavailable(said),
            ErrorCode::Internal => Error::internal(said),
        }
    }
}

impl From<ErrorBody> for Error {
    /// [`Error::from_wire`].
    fn from(b: ErrorBody) -> Self {
        Error::from_wire(&b)
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

    /// One error of every variant, with the reasons a server really sends.
    fn every_variant() -> Vec<Error> {
        vec![
            Error::not_found("conversation"),
            Error::forbidden("blocked"),
            Error::invalid("phone", "must start with + and a country code (E.164)"),
            Error::invalid("since", "beyond the end of the log"),
            Error::invalid("", "no field"),
            Error::RateLimited { retry_after_ms: 1500 },
            Error::conflict("already subscribed"),
            Error::unauthorized("token expired"),
            Error::too_large("upload", 10_485_760),
            Error::too_large("request body", 65_536),
            Error::too_large("request", 0),
            Error::unavailable("connection refused 10.0.0.3:5432"),
            Error::internal("SELECT * FROM secrets"),
        ]
    }

    #[test]
    fn the_wire_round_trip_is_lossless_and_says_things_once() {
        let mut codes = std::collections::HashSet::new();
        for e in every_variant() {
            codes.insert(e.code());
            let body = e.body();
            // Through JSON, as a client receives it.
            let json = serde_json::to_vec(&body).expect("ser");
            let status = body.code.http_status();
            let back = Error::from_response(status, &json);
            assert_eq!(back, e.public(), "{e:?} came back as {back:?}");
            assert_eq!(back.to_string(), body.message, "the client's text is the server's");
            assert_eq!(back.body(), body, "a second trip changes nothing");
            // No part of the text repeats (the defect: "forbidden: forbidden: blocked").
            let m = &body.message;
            for w in [
                "forbidden:",
                "invalid",
                "unauthorized:",
                "conflict:",
                "too large",
                "not found",
            ] {
                assert!(m.matches(w).count() <= 1, "{m}");
            }
            assert!(!m.contains("limit 0"), "{m}");
        }
        assert_eq!(codes.len(), ErrorCode::ALL.len(), "every variant is covered");
        // The texts a person reads.
        assert_eq!(Error::forbidden("blocked").body().message, "forbidden: blocked");
        assert_eq!(
            Error::too_large("upload", 10_485_760).body().message,
            "upload too large (limit 10485760)"
        );
        assert_eq!(Error::too_large("upload", 10_485_760).body().limit, Some(10_485_760));
    }

    #[test]
    fn a_status_without_a_body_maps_to_its_code() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::from_http_status(c.http_status()), c);
            let e = Error::from_response(c.http_status(), b"<html>oops</html>");
            assert_eq!(e.code(), c, "{e:?}");
            assert!(!e.to_string().contains("limit 0"), "{e}");
        }
        assert_eq!(Error::from_response(502, b"").code(), ErrorCode::Unavailable);
        assert_eq!(Error::from_response(405, b"").code(), ErrorCode::InvalidInput);
        // A foreign message is kept whole, displayed once.
        let b = ErrorBody {
            code: ErrorCode::Forbidden,
            message: "nope".into(),
            field: None,
            retry_after_ms: None,
            limit: None,
        };
        assert_eq!(Error::from_wire(&b).to_string(), "forbidden: nope");
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
        for c in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(c).expect("ser"), c.as_str());
        }
    }
}

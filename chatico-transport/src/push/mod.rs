//! Push senders for the core [`PushSender`](chatico_core::push::PushSender) port:
//!
//! - [`FcmSender`] (feature `fcm`): Firebase Cloud Messaging HTTP v1 with a service-account
//!   key; the OAuth2 access token comes from the JWT-bearer grant (RFC 7523: an RS256 JWT
//!   signed with `jsonwebtoken`, posted with `reqwest`) and is cached until shortly before it
//!   expires.
//! - [`ApnsSender`] (feature `apns`): Apple Push Notification service over HTTP/2 (reqwest's
//!   `http2` on rustls, ALPN `h2`) with token-based authentication: an ES256 provider JWT
//!   (`jsonwebtoken`) reused for 50 minutes (Apple refuses one older than an hour and
//!   throttles one renewed more often than every 20 minutes).
//!
//! Both make one attempt per call and map the provider's answer to a
//! [`PushError`](chatico_core::push::PushError): an invalid token → `Unregistered` (the
//! engine removes it), 429 / 5xx / timeouts → `Retry` with the provider's `Retry-After`,
//! anything else → `Rejected` (a configuration problem, logged). The gateway's push queue
//! retries (`chatico_transport::gateway::PushConfig`). Route both with
//! [`PushRouter`](chatico_core::push::PushRouter).

#[cfg(feature = "apns")]
mod apns;
#[cfg(feature = "fcm")]
mod fcm;

#[cfg(feature = "apns")]
pub use apns::{APNS_PRODUCTION, APNS_SANDBOX, ApnsConfig, ApnsSender};
#[cfg(feature = "fcm")]
pub use fcm::{FCM_API_BASE, FCM_SCOPE, FcmConfig, FcmSender, ServiceAccountKey};

#[cfg(any(feature = "apns", feature = "fcm"))]
use std::time::Duration;

/// The delay a `Retry-After` header asks for (delta-seconds; an HTTP date is not honoured
/// and reads as absent).
#[cfg(any(feature = "apns", feature = "fcm"))]
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse::<u64>()
        .ok()
        .map(Duration::from_secs)
}

/// Seconds since the Unix epoch, for JWT `iat` / `exp`.
#[cfg(any(feature = "apns", feature = "fcm"))]
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A transport failure (timeout, refused connection, reset): transient.
#[cfg(any(feature = "apns", feature = "fcm"))]
fn transport_error(what: &str, e: &reqwest::Error) -> chatico_core::push::PushError {
    chatico_core::push::PushError::Retry {
        retry_after: None,
        reason: format!(
            "{what}: {}",
            if e.is_timeout() { "timeout" } else { "connection failed" }
        ),
    }
}

#[cfg(all(test, any(feature = "apns", feature = "fcm")))]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_delta_seconds_only() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(reqwest::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(
            reqwest::header::RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }
}

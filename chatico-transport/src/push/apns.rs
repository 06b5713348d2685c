//! Apple Push Notification service: `POST /3/device/{token}` over HTTP/2 with token-based
//! (ES256 JWT) provider authentication.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatico_core::error::{Error, Result};
use chatico_core::push::{PushError, PushNotification, PushSender};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{retry_after, transport_error, unix_now};

/// APNs production endpoint.
pub const APNS_PRODUCTION: &str = "https://api.push.apple.com";
/// APNs development (sandbox) endpoint.
pub const APNS_SANDBOX: &str = "https://api.sandbox.push.apple.com";
/// A provider token is reused this long (Apple: refresh at most every 20 minutes, and
/// tokens older than an hour are refused).
const TOKEN_REUSE: Duration = Duration::from_secs(50 * 60);
/// How long APNs keeps trying to reach an offline device (a day).
const EXPIRATION_SECS: u64 = 24 * 3600;

/// How an [`ApnsSender`] is set up.
#[derive(Clone)]
pub struct ApnsConfig {
    /// The signing key (`AuthKey_XXXXXXXXXX.p8`, PKCS#8 PEM, P-256).
    pub key_pem: String,
    /// The key's id (10 characters; the JWT `kid`).
    pub key_id: String,
    /// The Apple developer team id (the JWT `iss`).
    pub team_id: String,
    /// The endpoint: [`APNS_PRODUCTION`] (default) or [`APNS_SANDBOX`] (tests: a mock).
    pub base_url: String,
    /// Extra trusted root certificates (PEM), beside the built-in ones (tests: a test CA).
    pub extra_roots_pem: Option<String>,
    /// Timeout of one request (default 10 s).
    pub timeout: Duration,
}

impl fmt::Debug for ApnsConfig {
    /// The key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsConfig")
            .field("key_id", &self.key_id)
            .field("team_id", &self.team_id)
            .field("base_url", &self.base_url)
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ApnsConfig {
    /// A production config for this key.
    pub fn new(key_pem: impl Into<String>, key_id: impl Into<String>, team_id: impl Into<String>) -> Self {
        ApnsConfig {
            key_pem: key_pem.into(),
            key_id: key_id.into(),
            team_id: team_id.into(),
            base_url: APNS_PRODUCTION.to_owned(),
            extra_roots_pem: None,
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends through APNs over one HTTP/2 connection (reqwest multiplexes the requests).
pub struct ApnsSender {
    http: reqwest::Client,
    base: String,
    key_id: String,
    team_id: String,
    signing_key: EncodingKey,
    token: Mutex<Option<(String, Instant)>>,
}

impl fmt::Debug for ApnsSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApnsSender")
            .field("base", &self.base)
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    iat: u64,
}

fn alnum(field: &'static str, s: &str) -> Result<()> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid(field, "letters and digits only"));
    }
    Ok(())
}

impl ApnsSender {
    /// A sender for `config`; `invalid_input` when the key, ids or URL are unusable.
    pub fn new(config: ApnsConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/');
        if !base.starts_with("https://") {
            return Err(Error::invalid("apns.base_url", "must be an https URL"));
        }
        alnum("apns.key_id", &config.key_id)?;
        alnum("apns.team_id", &config.team_id)?;
        let signing_key = EncodingKey::from_ec_pem(config.key_pem.as_bytes())
            .map_err(|_| Error::invalid("apns.key", "not a P-256 private key in PEM (.p8)"))?;
        let mut http = reqwest::Client::builder()
            .timeout(config.timeout)
            .http2_prior_knowledge()
            .https_only(true);
        if let Some(pem) = &config.extra_roots_pem {
            for cert in reqwest::Certificate::from_pem_bundle(pem.as_bytes())
                .map_err(|_| Error::invalid("apns.extra_roots_pem", "not PEM certificates"))?
            {
                http = http.add_root_certificate(cert);
            }
        }
        let http = http.build().map_err(|e| Error::internal(format!("http client: {e}")))?;
        Ok(ApnsSender {
            http,
            base: base.to_owned(),
            key_id: config.key_id,
            team_id: config.team_id,
            signing_key,
            token: Mutex::new(None),
        })
    }

    /// The provider token, reused for [`TOKEN_REUSE`].
    async fn provider_token(&self) -> std::result::Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.key_id.clone());
        let claims = Claims {
            iss: &self.team_id,
            iat: unix_now(),
        };
        let t = jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .map_err(|e| PushError::Rejected(format!("apns: signing the provider token failed: {e}")))?;
        *cached = Some((t.clone(), Instant::now() + TOKEN_REUSE));
        Ok(t)
    }

    async fn forget_token(&self, token: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t == token) {
            *cached = None;
        }
    }

    /// The JSON payload for `n`: `aps` (alert, badge, sound, thread) and the ChatiCO keys.
    pub fn payload(n: &PushNotification) -> Value {
        let mut alert = json!({ "title": n.title });
        if let Some(b) = &n.body {
            alert["body"] = json!(b);
        }
        let mut v = json!({
            "aps": { "alert": alert, "badge": n.badge, "sound": "default", "thread-id": n.collapse_id },
        });
        for (k, val) in n.data() {
            v[k] = Value::String(val);
        }
        v
    }
}

/// Maps an APNs error answer (`{"reason": "..."}`).
fn classify(status: StatusCode, after: Option<Duration>, body: &str) -> PushError {
    let reason = serde_json::from_str::<Value>(body)
        .ok()
        .and_then(|v| v["reason"].as_str().map(str::to_owned))
        .unwrap_or_default();
    match (status, reason.as_str()) {
        (StatusCode::GONE, _) | (_, "Unregistered" | "BadDeviceToken" | "DeviceTokenNotForTopic") => {
            PushError::Unregistered
        }
        (StatusCode::TOO_MANY_REQUESTS, _) => PushError::Retry {
            retry_after: after,
            reason: format!("apns answered 429 {reason}"),
        },
        (s, _) if s.is_server_error() => PushError::Retry {
            retry_after: after,
            reason: format!("apns answered {s} {reason}"),
        },
        (s, _) => PushError::Rejected(format!("apns answered {s} {reason}")),
    }
}

#[async_trait]
impl PushSender for ApnsSender {
    async fn send(&self, n: &PushNotification) -> std::result::Result<(), PushError> {
        if n.token.is_empty() || !n.token.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PushError::Unregistered);
        }
        let url = format!("{}/3/device/{}", self.base, n.token);
        let body = Self::payload(n);
        let expiration = (unix_now() + EXPIRATION_SECS).to_string();
        // One renewal when APNs says the provider token expired or is not valid any more.
        for renewed in [false, true] {
            let token = self.provider_token().await?;
            let resp = self
                .http
                .post(&url)
                .header("authorization", format!("bearer {token}"))
                .header("apns-topic", &n.app_id)
                .header("apns-push-type", "alert")
                .header("apns-priority", "10")
                .header("apns-expiration", &expiration)
                .header("apns-collapse-id", &n.collapse_id)
                .json(&body)
                .send()
                .await
                .map_err(|e| transport_error("apns", &e))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let after = retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            if status == StatusCode::FORBIDDEN && text.contains("ExpiredProviderToken") && !renewed {
                self.forget_token(&token).await;
                continue;
            }
            return Err(classify(status, after, &text));
        }
        Err(PushError::Rejected("apns: provider token refused twice".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_reasons_map_to_push_errors() {
        assert_eq!(
            classify(
                StatusCode::GONE,
                None,
                r#"{"reason":"Unregistered","timestamp":1700000000000}"#
            ),
            PushError::Unregistered
        );
        assert_eq!(
            classify(StatusCode::BAD_REQUEST, None, r#"{"reason":"BadDeviceToken"}"#),
            PushError::Unregistered
        );
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(2)), r#"{"reason":"TooManyRequests"}"#),
            PushError::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(2)
        ));
        assert!(matches!(
            classify(
                StatusCode::SERVICE_UNAVAILABLE,
                None,
                r#"{"reason":"ServiceUnavailable"}"#
            ),
            PushError::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::FORBIDDEN, None, r#"{"reason":"InvalidProviderToken"}"#),
            PushError::Rejected(_)
        ));
    }
}

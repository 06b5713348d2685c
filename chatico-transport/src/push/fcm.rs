//! Firebase Cloud Messaging HTTP v1 (`projects/{id}/messages:send`) with a service-account
//! key and the OAuth2 JWT-bearer grant.

use std::fmt;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use chatico_core::error::{Error, Result};
use chatico_core::push::{PushError, PushNotification, PushSender};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use super::{retry_after, transport_error, unix_now};

/// Base URL of the FCM HTTP v1 API.
pub const FCM_API_BASE: &str = "https://fcm.googleapis.com";
/// The OAuth2 scope FCM sends need.
pub const FCM_SCOPE: &str = "https://www.googleapis.com/auth/firebase.messaging";
/// How long before its expiry a cached access token is renewed.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);
/// Lifetime asked for the grant's assertion (Google's maximum).
const ASSERTION_SECS: u64 = 3600;

/// The fields of a Google service-account key file (JSON) that FCM needs.
#[derive(Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// The Firebase project the key belongs to.
    pub project_id: String,
    /// The key's id (the JWT `kid`).
    pub private_key_id: String,
    /// The RSA private key, PKCS#8 PEM.
    pub private_key: String,
    /// The service account's email (the JWT `iss`).
    pub client_email: String,
    /// Where the grant is posted (the JWT `aud`).
    pub token_uri: String,
}

impl fmt::Debug for ServiceAccountKey {
    /// The private key is never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccountKey")
            .field("project_id", &self.project_id)
            .field("private_key_id", &self.private_key_id)
            .field("client_email", &self.client_email)
            .field("token_uri", &self.token_uri)
            .field("private_key", &"<redacted>")
            .finish()
    }
}

impl ServiceAccountKey {
    /// Reads a key file's JSON.
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| Error::invalid("fcm.service_account", format!("not a service-account key: {e}")))
    }
}

/// How an [`FcmSender`] is set up.
#[derive(Debug, Clone)]
pub struct FcmConfig {
    /// The service-account key.
    pub key: ServiceAccountKey,
    /// The API's base URL (default [`FCM_API_BASE`]; tests point it at a mock).
    pub base_url: String,
    /// Timeout of one request (default 10 s).
    pub timeout: Duration,
}

impl FcmConfig {
    /// A config for `key` against the real service.
    pub fn new(key: ServiceAccountKey) -> Self {
        FcmConfig {
            key,
            base_url: FCM_API_BASE.to_owned(),
            timeout: Duration::from_secs(10),
        }
    }
}

/// Sends through FCM HTTP v1. The access token is fetched on first use, shared by concurrent
/// sends (one grant at a time) and renewed a minute before it expires or when FCM answers
/// 401.
pub struct FcmSender {
    http: reqwest::Client,
    send_url: String,
    key: ServiceAccountKey,
    signing_key: EncodingKey,
    token: Mutex<Option<(String, Instant)>>,
}

impl fmt::Debug for FcmSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FcmSender")
            .field("send_url", &self.send_url)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    expires_in: u64,
}

impl FcmSender {
    /// A sender for `config`; `invalid_input` when the key or URL is unusable.
    pub fn new(config: FcmConfig) -> Result<Self> {
        let base = config.base_url.trim_end_matches('/');
        if !(base.starts_with("https://") || base.starts_with("http://")) {
            return Err(Error::invalid("fcm.base_url", "must be an http(s) URL"));
        }
        let k = &config.key;
        if k.project_id.is_empty() || !k.project_id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(Error::invalid("fcm.project_id", "letters, digits and '-' only"));
        }
        if k.client_email.is_empty() || !k.token_uri.starts_with("http") {
            return Err(Error::invalid(
                "fcm.service_account",
                "client_email and token_uri are required",
            ));
        }
        let signing_key = EncodingKey::from_rsa_pem(k.private_key.as_bytes())
            .map_err(|_| Error::invalid("fcm.private_key", "not an RSA private key in PEM"))?;
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| Error::internal(format!("http client: {e}")))?;
        Ok(FcmSender {
            http,
            send_url: format!("{base}/v1/projects/{}/messages:send", k.project_id),
            key: config.key,
            signing_key,
            token: Mutex::new(None),
        })
    }

    /// The grant's assertion: an RS256 JWT with `kid`, for [`FCM_SCOPE`].
    fn assertion(&self) -> std::result::Result<String, PushError> {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.key.private_key_id.clone());
        let iat = unix_now();
        let claims = Claims {
            iss: &self.key.client_email,
            scope: FCM_SCOPE,
            aud: &self.key.token_uri,
            iat,
            exp: iat + ASSERTION_SECS,
        };
        jsonwebtoken::encode(&header, &claims, &self.signing_key)
            .map_err(|e| PushError::Rejected(format!("fcm: signing the assertion failed: {e}")))
    }

    /// The cached access token, or a new one from the grant.
    async fn access_token(&self) -> std::result::Result<String, PushError> {
        let mut cached = self.token.lock().await;
        if let Some((t, until)) = cached.as_ref()
            && Instant::now() < *until
        {
            return Ok(t.clone());
        }
        let form = [
            ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
            ("assertion", &self.assertion()?),
        ];
        let resp = self
            .http
            .post(&self.key.token_uri)
            .form(&form)
            .send()
            .await
            .map_err(|e| transport_error("fcm token", &e))?;
        let status = resp.status();
        let after = retry_after(resp.headers());
        let body = resp.text().await.map_err(|e| transport_error("fcm token", &e))?;
        if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
            return Err(PushError::Retry {
                retry_after: after,
                reason: format!("fcm token endpoint answered {status}"),
            });
        }
        if !status.is_success() {
            // invalid_grant, invalid_client...: the key is wrong, revoked or the clock is off.
            let err = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v["error"].as_str().map(str::to_owned))
                .unwrap_or_default();
            return Err(PushError::Rejected(format!(
                "fcm token endpoint refused the grant ({status} {err})"
            )));
        }
        let t: TokenResponse = serde_json::from_str(&body)
            .map_err(|_| PushError::Rejected("fcm token endpoint answered no access_token".into()))?;
        let lifetime = Duration::from_secs(t.expires_in).saturating_sub(TOKEN_MARGIN);
        *cached = Some((t.access_token.clone(), Instant::now() + lifetime));
        Ok(t.access_token)
    }

    async fn forget_token(&self, token: &str) {
        let mut cached = self.token.lock().await;
        if cached.as_ref().is_some_and(|(t, _)| t == token) {
            *cached = None;
        }
    }

    /// The HTTP v1 message for `n`.
    pub fn message(n: &PushNotification) -> Value {
        let data: serde_json::Map<String, Value> = n
            .data()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), Value::String(v)))
            .collect();
        let mut notification = json!({ "title": n.title });
        let mut aps_alert = json!({ "title": n.title });
        if let Some(b) = &n.body {
            notification["body"] = json!(b);
            aps_alert["body"] = json!(b);
        }
        json!({
            "message": {
                "token": n.token,
                "notification": notification,
                "data": data,
                "android": {
                    "collapse_key": n.collapse_id,
                    "priority": "high",
                    "notification": { "tag": n.collapse_id, "notification_count": n.badge },
                },
                "apns": {
                    "headers": { "apns-collapse-id": n.collapse_id },
                    "payload": { "aps": { "alert": aps_alert, "badge": n.badge, "sound": "default" } },
                },
            }
        })
    }
}

/// Maps an FCM error answer. `UNREGISTERED` (404) means the token is gone.
fn classify(status: StatusCode, after: Option<Duration>, body: &str) -> PushError {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let error_code = v["error"]["details"]
        .as_array()
        .into_iter()
        .flatten()
        .find_map(|d| d["errorCode"].as_str())
        .unwrap_or("");
    let status_name = v["error"]["status"].as_str().unwrap_or("");
    if error_code == "UNREGISTERED" || (status == StatusCode::NOT_FOUND && status_name == "NOT_FOUND") {
        return PushError::Unregistered;
    }
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return PushError::Retry {
            retry_after: after,
            reason: format!("fcm answered {status} {error_code}"),
        };
    }
    PushError::Rejected(format!("fcm answered {status} {status_name} {error_code}"))
}

#[async_trait]
impl PushSender for FcmSender {
    async fn send(&self, n: &PushNotification) -> std::result::Result<(), PushError> {
        let body = Self::message(n);
        // One renewal when FCM says the token is no longer good (revoked, clock skew).
        for renewed in [false, true] {
            let token = self.access_token().await?;
            let resp = self
                .http
                .post(&self.send_url)
                .bearer_auth(&token)
                .json(&body)
                .send()
                .await
                .map_err(|e| transport_error("fcm send", &e))?;
            let status = resp.status();
            if status.is_success() {
                return Ok(());
            }
            let after = retry_after(resp.headers());
            let text = resp.text().await.unwrap_or_default();
            if status == StatusCode::UNAUTHORIZED && !renewed {
                self.forget_token(&token).await;
                continue;
            }
            return Err(classify(status, after, &text));
        }
        Err(PushError::Rejected("fcm: access token refused twice".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_shapes_map_to_push_errors() {
        let unreg = r#"{"error":{"code":404,"message":"Requested entity was not found.","status":"NOT_FOUND",
            "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}]}}"#;
        assert_eq!(classify(StatusCode::NOT_FOUND, None, unreg), PushError::Unregistered);
        let quota = r#"{"error":{"code":429,"status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"QUOTA_EXCEEDED"}]}}"#;
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, Some(Duration::from_secs(3)), quota),
            PushError::Retry { retry_after: Some(d), .. } if d == Duration::from_secs(3)
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, None, ""),
            PushError::Retry { .. }
        ));
        let invalid = r#"{"error":{"code":400,"status":"INVALID_ARGUMENT",
            "details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"INVALID_ARGUMENT"}]}}"#;
        assert!(matches!(
            classify(StatusCode::BAD_REQUEST, None, invalid),
            PushError::Rejected(_)
        ));
    }

    #[test]
    fn keys_are_never_printed() {
        let k = ServiceAccountKey {
            project_id: "p".into(),
            private_key_id: "k".into(),
            private_key: "-----BEGIN PRIVATE KEY-----secret".into(),
            client_email: "e".into(),
            token_uri: "https://t".into(),
        };
        assert!(!format!("{k:?}").contains("secret"));
    }
}

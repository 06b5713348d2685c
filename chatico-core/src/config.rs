//! Engine configuration: every limit and every auth parameter, explicit and configurable.
//!
//! All structs deserialize with `#[serde(default)]`, so a configuration file only names what
//! it changes. [`Config::validate`] rejects values the engine cannot work with.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything the [`crate::engine::Engine`] is configured with.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    /// Size and rate limits the engine enforces.
    pub limits: Limits,
    /// Token, OTP and session settings.
    pub auth: AuthConfig,
}

impl Config {
    /// Checks that every value is usable (non-zero pages, a long enough secret...).
    pub fn validate(&self) -> Result<()> {
        self.limits.validate()?;
        self.auth.validate()
    }
}

/// Size and count limits. Text lengths count Unicode scalar values (`char`s), not bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Limits {
    /// Longest text message (and media caption).
    pub max_text_chars: usize,
    /// Longest display name (at least 1 character after trimming).
    pub max_display_name_chars: usize,
    /// Longest bio (may be empty).
    pub max_bio_chars: usize,
    /// Longest group title (at least 1 character after trimming).
    pub max_group_title_chars: usize,
    /// Most members a group may have, owner included.
    pub max_group_members: usize,
    /// Largest history page; bigger requests are clamped.
    pub max_history_page: u32,
    /// Largest sync page; bigger requests are clamped.
    pub max_sync_page: u32,
    /// Largest user list / search page; bigger requests are clamped.
    pub max_user_page: u32,
    /// Largest conversation list; bigger requests are clamped.
    pub max_conversation_page: u32,
    /// Longest `client_msg_id` (at least 1 character).
    pub max_client_msg_id_chars: usize,
    /// Longest user search query.
    pub max_search_query_chars: usize,
    /// Longest avatar URL.
    pub max_url_chars: usize,
    /// Longest device label of a session.
    pub max_device_chars: usize,
    /// Most users in one presence query.
    pub max_presence_query: usize,
    /// How long a "typing" indicator lasts unless refreshed, in milliseconds.
    pub typing_expiry_ms: i64,
    /// Largest registered blob, in bytes.
    pub max_blob_bytes: u64,
    /// Most pixels (width × height) of an uploaded image (also of every GIF frame).
    pub max_image_pixels: u64,
    /// Most @mentions in one text message.
    pub max_mentions: usize,
    /// Most conversations a user may have pinned at once.
    pub max_pins: u32,
    /// How long after sending the sender may edit a message, in milliseconds.
    pub edit_window_ms: i64,
    /// Most distinct emoji on one message; a new emoji past it is refused (`too_large`).
    pub max_reactions_per_message: u32,
    /// Largest message search page; bigger requests are clamped. (The query itself is
    /// bounded by `max_search_query_chars`.)
    pub max_search_page: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_text_chars: 4096,
            max_display_name_chars: 64,
            max_bio_chars: 500,
            max_group_title_chars: 100,
            max_group_members: 256,
            max_history_page: 200,
            max_sync_page: 500,
            max_user_page: 100,
            max_conversation_page: 500,
            max_client_msg_id_chars: 64,
            max_search_query_chars: 64,
            max_url_chars: 2048,
            max_device_chars: 128,
            max_presence_query: 256,
            typing_expiry_ms: 6_000,
            max_blob_bytes: 20 * 1024 * 1024,
            max_image_pixels: 50_000_000,
            max_mentions: 50,
            max_pins: 5,
            edit_window_ms: 15 * 60 * 1000,
            max_reactions_per_message: 20,
            max_search_page: 50,
        }
    }
}

impl Limits {
    /// Checks every limit is positive; an `Error::InvalidInput` names the first that is not.
    pub fn validate(&self) -> Result<()> {
        let positive: [(&str, u64); 21] = [
            ("limits.max_text_chars", self.max_text_chars as u64),
            ("limits.max_display_name_chars", self.max_display_name_chars as u64),
            ("limits.max_group_title_chars", self.max_group_title_chars as u64),
            ("limits.max_group_members", self.max_group_members as u64),
            ("limits.max_history_page", self.max_history_page as u64),
            ("limits.max_sync_page", self.max_sync_page as u64),
            ("limits.max_user_page", self.max_user_page as u64),
            ("limits.max_conversation_page", self.max_conversation_page as u64),
            ("limits.max_client_msg_id_chars", self.max_client_msg_id_chars as u64),
            ("limits.max_search_query_chars", self.max_search_query_chars as u64),
            ("limits.max_url_chars", self.max_url_chars as u64),
            ("limits.max_device_chars", self.max_device_chars as u64),
            ("limits.max_presence_query", self.max_presence_query as u64),
            ("limits.typing_expiry_ms", self.typing_expiry_ms.max(0) as u64),
            ("limits.max_blob_bytes", self.max_blob_bytes),
            ("limits.max_image_pixels", self.max_image_pixels),
            ("limits.max_mentions", self.max_mentions as u64),
            ("limits.max_pins", u64::from(self.max_pins)),
            ("limits.edit_window_ms", self.edit_window_ms.max(0) as u64),
            (
                "limits.max_reactions_per_message",
                u64::from(self.max_reactions_per_message),
            ),
            ("limits.max_search_page", u64::from(self.max_search_page)),
        ];
        for (field, v) in positive {
            if v == 0 {
                return Err(Error::invalid(field, "must be positive"));
            }
        }
        if self.max_group_members < 2 {
            return Err(Error::invalid("limits.max_group_members", "must be at least 2"));
        }
        Ok(())
    }
}

/// Login parameters: OTP codes, their rate limits, and JWT sessions.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Digits in an OTP code.
    pub otp_length: usize,
    /// How long a code stays valid, in milliseconds.
    pub otp_ttl_ms: i64,
    /// Wrong guesses allowed per code; the code is gone after that many.
    pub otp_max_attempts: u32,
    /// Least time between two codes for one phone, in milliseconds.
    pub otp_resend_cooldown_ms: i64,
    /// Codes one phone may request per `rate_window_ms`.
    pub otp_requests_per_phone: u32,
    /// Codes one caller key (the client IP, as the transport sees it) may request per
    /// `rate_window_ms`.
    pub otp_requests_per_caller: u32,
    /// Code checks one caller key may make per `rate_window_ms` (across all phones).
    pub otp_verifications_per_caller: u32,
    /// The window of the per-phone and per-caller limits, in milliseconds.
    pub rate_window_ms: i64,
    /// Access token lifetime, in milliseconds.
    pub access_ttl_ms: i64,
    /// Refresh token (and session) lifetime, in milliseconds; every refresh starts it again.
    pub refresh_ttl_ms: i64,
    /// JWT `iss`.
    pub issuer: String,
    /// JWT `aud`.
    pub audience: String,
    /// The HS256 secret (at least 32 bytes). Also keys the OTP code hashes (through a
    /// derived key). The default is random per process: tokens then do not survive a
    /// restart, so a deployment sets its own.
    pub jwt_secret: String,
    /// The product name in the SMS text.
    pub sms_app_name: String,
}

impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("otp_length", &self.otp_length)
            .field("otp_ttl_ms", &self.otp_ttl_ms)
            .field("otp_max_attempts", &self.otp_max_attempts)
            .field("otp_resend_cooldown_ms", &self.otp_resend_cooldown_ms)
            .field("otp_requests_per_phone", &self.otp_requests_per_phone)
            .field("otp_requests_per_caller", &self.otp_requests_per_caller)
            .field("otp_verifications_per_caller", &self.otp_verifications_per_caller)
            .field("rate_window_ms", &self.rate_window_ms)
            .field("access_ttl_ms", &self.access_ttl_ms)
            .field("refresh_ttl_ms", &self.refresh_ttl_ms)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("jwt_secret", &"<redacted>")
            .field("sms_app_name", &self.sms_app_name)
            .finish()
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        let secret: [u8; 32] = rand::random();
        AuthConfig {
            otp_length: 6,
            otp_ttl_ms: 5 * 60 * 1000,
            otp_max_attempts: 5,
            otp_resend_cooldown_ms: 30 * 1000,
            otp_requests_per_phone: 5,
            otp_requests_per_caller: 20,
            otp_verifications_per_caller: 60,
            rate_window_ms: 60 * 60 * 1000,
            access_ttl_ms: 15 * 60 * 1000,
            refresh_ttl_ms: 30 * 24 * 60 * 60 * 1000,
            issuer: "chatico".to_owned(),
            audience: "chatico-clients".to_owned(),
            jwt_secret: hex::encode(secret),
            sms_app_name: "ChatiCO".to_owned(),
        }
    }
}

impl AuthConfig {
    /// Checks OTP length (4..=10), lifetimes and the JWT secret; an `Error::InvalidInput` names the
    /// bad field.
    pub fn validate(&self) -> Result<()> {
        if !(4..=10).contains(&self.otp_length) {
            return Err(Error::invalid("auth.otp_length", "must be between 4 and 10"));
        }
        let positive: [(&str, i64); 9] = [
            ("auth.otp_ttl_ms", self.otp_ttl_ms),
            ("auth.otp_max_attempts", i64::from(self.otp_max_attempts)),
            ("auth.otp_requests_per_phone", i64::from(self.otp_requests_per_phone)),
            ("auth.otp_requests_per_caller", i64::from(self.otp_requests_per_caller)),
            (
                "auth.otp_verifications_per_caller",
                i64::from(self.otp_verifications_per_caller),
            ),
            ("auth.rate_window_ms", self.rate_window_ms),
            ("auth.access_ttl_ms", self.access_ttl_ms),
            ("auth.refresh_ttl_ms", self.refresh_ttl_ms),
            ("auth.otp_resend_cooldown_ms", self.otp_resend_cooldown_ms.max(0) + 1),
        ];
        for (field, v) in positive {
            if v <= 0 {
                return Err(Error::invalid(field, "must be positive"));
            }
        }
        if self.jwt_secret.len() < 32 {
            return Err(Error::invalid("auth.jwt_secret", "must be at least 32 bytes"));
        }
        if self.issuer.is_empty() || self.audience.is_empty() {
            return Err(Error::invalid("auth.issuer", "issuer and audience must not be empty"));
        }
        Ok(())
    }

    /// The key of the OTP code hashes, derived from the JWT secret with a fixed label so the
    /// two uses never share a key.
    pub fn otp_key(&self) -> Vec<u8> {
        use hmac::{Hmac, Mac};
        type HmacSha256 = Hmac<sha2::Sha256>;
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = match HmacSha256::new_from_slice(self.jwt_secret.as_bytes()) {
            Ok(m) => m,
            Err(_) => return Vec::new(),
        };
        mac.update(b"chatico otp code key v1");
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_values() {
        let c = Config::default();
        assert_eq!(c.limits.max_text_chars, 4096);
        assert_eq!(c.limits.max_display_name_chars, 64);
        assert_eq!(c.limits.max_bio_chars, 500);
        assert_eq!(c.limits.max_group_title_chars, 100);
        assert_eq!(c.limits.max_group_members, 256);
        assert_eq!(c.limits.max_history_page, 200);
        assert_eq!(c.limits.max_sync_page, 500);
        assert_eq!(c.limits.max_client_msg_id_chars, 64);
        assert_eq!(c.limits.typing_expiry_ms, 6000);
        assert_eq!(c.auth.otp_length, 6);
        assert_eq!(c.auth.otp_ttl_ms, 300_000);
        assert_eq!(c.auth.otp_max_attempts, 5);
        assert_eq!(c.auth.otp_resend_cooldown_ms, 30_000);
        assert_eq!(c.auth.access_ttl_ms, 900_000);
        assert_eq!(c.auth.refresh_ttl_ms, 30 * 86_400_000);
        c.validate().expect("defaults are valid");
    }

    #[test]
    fn partial_config_deserializes_over_defaults() {
        let c: Config =
            serde_json::from_str(r#"{"limits":{"max_text_chars":10},"auth":{"otp_length":8}}"#).expect("deserialize");
        assert_eq!(c.limits.max_text_chars, 10);
        assert_eq!(c.limits.max_bio_chars, 500);
        assert_eq!(c.auth.otp_length, 8);
        assert_eq!(c.auth.otp_max_attempts, 5);
    }

    #[test]
    fn bad_values_are_rejected() {
        let mut c = Config::default();
        c.auth.jwt_secret = "short".into();
        assert!(matches!(c.validate(), Err(Error::InvalidInput { field, .. }) if field == "auth.jwt_secret"));
        let mut c = Config::default();
        c.limits.max_history_page = 0;
        assert!(c.validate().is_err());
        let mut c = Config::default();
        c.auth.otp_length = 2;
        assert!(c.validate().is_err());
    }

    #[test]
    fn the_secret_never_prints() {
        let c = AuthConfig::default();
        assert!(!format!("{c:?}").contains(&c.jwt_secret));
    }
}

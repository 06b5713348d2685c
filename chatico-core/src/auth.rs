//! Server-side authentication (feature `server`): OTP codes, their rate limits, and JWT
//! sessions with rotating refresh tokens.
//!
//! - [`LocalOtpVerifier`] generates codes with the OS CSPRNG, keeps only an HMAC-SHA-256 of
//!   each in an [`OtpCache`] (checked there in constant time, single use, attempts bounded
//!   atomically) and sends them with an [`SmsSender`].
//! - [`RateLimiter`] enforces per-phone, per-caller (IP) and resend-cooldown limits through
//!   [`OtpCache::hit`], so several nodes sharing one cache share the counters.
//! - [`TokenService`] issues and checks HS256 JWTs. The algorithm is pinned, `iss`, `aud` and
//!   `exp` and `nbf` are checked (both against the engine's [`crate::ports::Clock`], with no
//!   leeway: the clock that checks is the one that issued), and the `typ`
//!   claim keeps access and refresh tokens apart. A refresh token carries a random secret;
//!   the session keeps only its SHA-256 ([`refresh_hash`]).
//!
//! The [`crate::engine::Engine`] ties these to the store (sessions, users).

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rand::Rng;
use rand::rngs::OsRng;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use crate::otp_cache::MemoryOtpCache;

use crate::config::AuthConfig;
use crate::error::{Error, Result};
use crate::ids::{Phone, SessionId, Timestamp, UserId};
use crate::ports::{OtpCache, OtpCheck, OtpEntry, OtpVerifier, SmsSender, VerifyOutcome};

type HmacSha256 = Hmac<Sha256>;

// ---- OTP codes ------------------------------------------------------------------------------

/// A fresh code of `len` decimal digits from the OS CSPRNG (uniform per digit).
pub fn generate_code(len: usize) -> String {
    let mut rng = OsRng;
    (0..len).map(|_| char::from(b'0' + rng.gen_range(0..10u8))).collect()
}

/// HMAC-SHA-256 under `key` of `phone ":" code`: what the cache keeps instead of the code.
pub fn code_hash(key: &[u8], phone: &Phone, code: &str) -> Result<Vec<u8>> {
    let mut mac = HmacSha256::new_from_slice(key).map_err(|_| Error::internal("bad otp key"))?;
    mac.update(phone.as_str().as_bytes());
    mac.update(b":");
    mac.update(code.as_bytes());
    Ok(mac.finalize().into_bytes().to_vec())
}

/// The cache key of a phone's pending code.
fn otp_key(phone: &Phone) -> String {
    format!("otp:code:{phone}")
}

/// The core's own OTP implementation of [`OtpVerifier`]: codes generated here, hashed into an
/// [`OtpCache`], delivered by an [`SmsSender`].
pub struct LocalOtpVerifier {
    cache: Arc<dyn OtpCache>,
    sms: Arc<dyn SmsSender>,
    key: Vec<u8>,
    code_length: usize,
    ttl_ms: i64,
    max_attempts: u32,
    app_name: String,
}

impl LocalOtpVerifier {
    /// Codes of `config.otp_length` digits, valid `config.otp_ttl_ms`, `config.otp_max_attempts`
    /// guesses each, hashed under [`AuthConfig::otp_key`].
    pub fn new(cache: Arc<dyn OtpCache>, sms: Arc<dyn SmsSender>, config: &AuthConfig) -> Self {
        LocalOtpVerifier {
            cache,
            sms,
            key: config.otp_key(),
            code_length: config.otp_length,
            ttl_ms: config.otp_ttl_ms,
            max_attempts: config.otp_max_attempts,
            app_name: config.sms_app_name.clone(),
        }
    }

    /// The SMS text for a code.
    pub fn sms_body(&self, code: &str) -> String {
        let minutes = (self.ttl_ms + 59_999) / 60_000;
        format!(
            "Your {} code is {code}. It expires in {minutes} minutes. Do not share it with anyone.",
            self.app_name
        )
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl OtpVerifier for LocalOtpVerifier {
    async fn start(&self, phone: &Phone, now: Timestamp) -> Result<()> {
        let code = generate_code(self.code_length);
        let entry = OtpEntry {
            code_hash: code_hash(&self.key, phone, &code)?,
            sent_at: now,
            expires_at: now + self.ttl_ms,
            attempts: 0,
        };
        // Replaces any pending code: a resend invalidates the previous one.
        self.cache.put(&otp_key(phone), entry).await?;
        self.sms.send(phone, &self.sms_body(&code)).await?;
        tracing::debug!(target: "chatico::auth", "otp code issued");
        Ok(())
    }

    async fn verify(&self, phone: &Phone, code: &str, now: Timestamp) -> Result<VerifyOutcome> {
        let candidate = code_hash(&self.key, phone, code)?;
        let check = self
            .cache
            .check_and_consume(&otp_key(phone), &candidate, now, self.max_attempts)
            .await?;
        Ok(match check {
            OtpCheck::Match => VerifyOutcome::Approved,
            OtpCheck::Mismatch { attempts_left } => VerifyOutcome::Rejected {
                attempts_left: Some(attempts_left),
            },
            OtpCheck::Missing => VerifyOutcome::Rejected { attempts_left: None },
        })
    }
}

// ---- rate limits ----------------------------------------------------------------------------

/// Per-phone, per-caller and cooldown limits on OTP requests and checks, counted in an
/// [`OtpCache`] (shared by every node that shares the cache).
pub struct RateLimiter {
    cache: Arc<dyn OtpCache>,
    per_phone: u32,
    per_caller: u32,
    verifications_per_caller: u32,
    window_ms: i64,
    cooldown_ms: i64,
}

impl RateLimiter {
    /// A limiter over `cache`, with the windows and limits of `config`.
    pub fn new(cache: Arc<dyn OtpCache>, config: &AuthConfig) -> Self {
        RateLimiter {
            cache,
            per_phone: config.otp_requests_per_phone,
            per_caller: config.otp_requests_per_caller,
            verifications_per_caller: config.otp_verifications_per_caller,
            window_ms: config.rate_window_ms,
            cooldown_ms: config.otp_resend_cooldown_ms,
        }
    }

    async fn count(&self, key: &str, now: Timestamp, window_ms: i64, allowed: u32) -> Result<()> {
        let (n, ends) = self.cache.hit(key, now, window_ms).await?;
        if n > allowed {
            return Err(Error::RateLimited {
                retry_after_ms: (ends - now).max(1) as u64,
            });
        }
        Ok(())
    }

    /// Counts a code request: first against the caller, then the phone's resend cooldown,
    /// then the phone's window. Known and unknown phones are counted alike.
    pub async fn check_request(&self, phone: &Phone, caller_key: &str, now: Timestamp) -> Result<()> {
        self.count(
            &format!("rl:otp:caller:{caller_key}"),
            now,
            self.window_ms,
            self.per_caller,
        )
        .await?;
        if self.cooldown_ms > 0 {
            self.count(&format!("rl:otp:cooldown:{phone}"), now, self.cooldown_ms, 1)
                .await?;
        }
        self.count(&format!("rl:otp:phone:{phone}"), now, self.window_ms, self.per_phone)
            .await
    }

    /// Counts a code check against the caller (guesses spread over many phones).
    pub async fn check_verify(&self, caller_key: &str, now: Timestamp) -> Result<()> {
        self.count(
            &format!("rl:otp:verify:{caller_key}"),
            now,
            self.window_ms,
            self.verifications_per_caller,
        )
        .await
    }
}

// ---- tokens ---------------------------------------------------------------------------------

/// Which kind of token a JWT is; checked on every decode so the two cannot be swapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenType {
    /// A short-lived token for API calls and the WebSocket.
    Access,
    /// A long-lived token accepted only by the refresh call.
    Refresh,
}

/// The claims of ChatiCO's JWTs. Times are JWT NumericDates (seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// Issuer; must equal `AuthConfig::issuer`.
    pub iss: String,
    /// Audience; must equal `AuthConfig::audience`.
    pub aud: String,
    /// The user.
    pub sub: UserId,
    /// The session (one per device login).
    pub sid: SessionId,
    /// Access or refresh; a token of the other type is refused.
    pub typ: TokenType,
    /// Issued at (seconds since the Unix epoch).
    pub iat: i64,
    /// Expires at (seconds since the Unix epoch), checked against the engine clock.
    pub exp: i64,
    /// Not before: a token carrying one is refused until the engine clock reaches it. The
    /// engine's own tokens leave it out (they are valid from `iat`); a token minted elsewhere
    /// with the same secret may set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<i64>,
    /// Refresh tokens only: the random secret whose SHA-256 the session keeps.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rt: Option<String>,
}

/// A fresh refresh-token secret: 32 random bytes, base64url.
pub fn new_refresh_secret() -> String {
    let bytes: [u8; 32] = OsRng.r#gen();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// The hex SHA-256 of a refresh secret, as stored in [`crate::model::Session::refresh_hash`].
pub fn refresh_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Constant-time equality of two strings (hashes).
pub fn ct_str_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// Issues and checks HS256 JWTs.
pub struct TokenService {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    access_ttl_ms: i64,
    refresh_ttl_ms: i64,
}

impl std::fmt::Debug for TokenService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenService")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl TokenService {
    /// A service signing and checking HS256 tokens with `config.jwt_secret`.
    pub fn new(config: &AuthConfig) -> Self {
        // Only HS256 is accepted; `exp` and `nbf` are checked against the engine clock in
        // `decode` (the library would use the system clock), `iss` and `aud` by the library.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.leeway = 0;
        validation.set_issuer(&[config.issuer.as_str()]);
        validation.set_audience(&[config.audience.as_str()]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        TokenService {
            encoding: EncodingKey::from_secret(config.jwt_secret.as_bytes()),
            decoding: DecodingKey::from_secret(config.jwt_secret.as_bytes()),
            validation,
            issuer: config.issuer.clone(),
            audience: config.audience.clone(),
            access_ttl_ms: config.access_ttl_ms,
            refresh_ttl_ms: config.refresh_ttl_ms,
        }
    }

    /// Signs a token of type `typ`; returns it and its expiry (ms, whole seconds).
    /// `refresh_secret` must be given for refresh tokens.
    pub fn issue(
        &self,
        typ: TokenType,
        user: UserId,
        session: SessionId,
        now_ms: Timestamp,
        refresh_secret: Option<&str>,
    ) -> Result<(String, Timestamp)> {
        let ttl = match typ {
            TokenType::Access => self.access_ttl_ms,
            TokenType::Refresh => self.refresh_ttl_ms,
        };
        let exp = (now_ms + ttl) / 1000;
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: user,
            sid: session,
            typ,
            iat: now_ms / 1000,
            exp,
            nbf: None,
            rt: match typ {
                TokenType::Access => None,
                TokenType::Refresh => Some(
                    refresh_secret
                        .ok_or_else(|| Error::internal("refresh token without a secret"))?
                        .to_owned(),
                ),
            },
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| Error::internal(format!("jwt encode: {e}")))?;
        Ok((token, exp * 1000))
    }

    /// Checks signature, algorithm, `iss`, `aud`, `exp` and `nbf` (against `now_ms`, no
    /// leeway) and `typ`. Every failure is `Unauthorized`.
    pub fn decode(&self, token: &str, expected: TokenType, now_ms: Timestamp) -> Result<Claims> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map_err(|e| {
            tracing::debug!(target: "chatico::auth", error = %e, "token rejected");
            Error::unauthorized("invalid token")
        })?;
        let claims = data.claims;
        if claims.typ != expected {
            return Err(Error::unauthorized("wrong token type"));
        }
        if claims.exp * 1000 <= now_ms {
            return Err(Error::unauthorized("token expired"));
        }
        if claims.nbf.is_some_and(|nbf| nbf.saturating_mul(1000) > now_ms) {
            return Err(Error::unauthorized("token not valid yet"));
        }
        if expected == TokenType::Refresh && claims.rt.is_none() {
            return Err(Error::unauthorized("invalid token"));
        }
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use futures::executor::block_on;

    use super::*;

    #[derive(Default)]
    struct Recorder(Mutex<Vec<(Phone, String)>>);

    #[async_trait]
    impl SmsSender for Recorder {
        async fn send(&self, to: &Phone, body: &str) -> Result<()> {
            self.0.lock().expect("lock").push((to.clone(), body.to_owned()));
            Ok(())
        }
    }

    fn last_code(r: &Recorder) -> String {
        let sent = r.0.lock().expect("lock");
        let body = &sent.last().expect("an sms").1;
        body.split_whitespace()
            .find(|w| w.trim_end_matches('.').chars().all(|c| c.is_ascii_digit()) && w.len() > 3)
            .expect("a code in the body")
            .trim_end_matches('.')
            .to_owned()
    }

    #[test]
    fn codes_are_digits_of_the_configured_length_and_vary() {
        let codes: Vec<String> = (0..50).map(|_| generate_code(8)).collect();
        assert!(
            codes
                .iter()
                .all(|c| c.len() == 8 && c.bytes().all(|b| b.is_ascii_digit()))
        );
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert!(distinct.len() > 40, "codes must come from a random source");
    }

    #[test]
    fn the_cache_keeps_a_keyed_hash_not_the_code() {
        block_on(async {
            let cache = Arc::new(MemoryOtpCache::new());
            let sms = Arc::new(Recorder::default());
            let cfg = AuthConfig::default();
            let v = LocalOtpVerifier::new(cache.clone(), sms.clone(), &cfg);
            let phone = Phone::parse("+15550001111").expect("phone");
            v.start(&phone, 0).await.expect("start");
            let code = last_code(&sms);
            assert_eq!(code.len(), 6);
            let entry = cache.get(&otp_key(&phone), 1).await.expect("get").expect("entry");
            assert_ne!(entry.code_hash, code.as_bytes());
            assert_eq!(entry.code_hash, code_hash(&cfg.otp_key(), &phone, &code).expect("hash"));
            // A different key gives a different hash: the hash is keyed.
            assert_ne!(entry.code_hash, code_hash(b"another key", &phone, &code).expect("hash"));
            let body = &sms.0.lock().expect("lock")[0].1;
            assert!(body.contains("ChatiCO") && body.contains("5 minutes"), "{body}");
        });
    }

    fn tokens() -> (TokenService, AuthConfig) {
        let cfg = AuthConfig {
            jwt_secret: "x".repeat(32),
            ..AuthConfig::default()
        };
        (TokenService::new(&cfg), cfg)
    }

    #[test]
    fn tokens_round_trip_and_check_type_and_expiry() {
        let (t, cfg) = tokens();
        let u = UserId::new(1);
        let s = SessionId::new(1);
        let now = 1_700_000_000_000;
        let (access, exp) = t.issue(TokenType::Access, u, s, now, None).expect("issue");
        assert_eq!(exp, (now + cfg.access_ttl_ms) / 1000 * 1000);
        let c = t.decode(&access, TokenType::Access, now).expect("valid");
        assert_eq!((c.sub, c.sid), (u, s));
        assert!(
            t.decode(&access, TokenType::Refresh, now).is_err(),
            "access used as refresh"
        );
        assert!(t.decode(&access, TokenType::Access, exp).is_err(), "expired");
        let (refresh, _) = t.issue(TokenType::Refresh, u, s, now, Some("secret")).expect("issue");
        assert!(
            t.decode(&refresh, TokenType::Access, now).is_err(),
            "refresh used as access"
        );
        assert_eq!(
            t.decode(&refresh, TokenType::Refresh, now)
                .expect("valid")
                .rt
                .as_deref(),
            Some("secret")
        );
    }
}

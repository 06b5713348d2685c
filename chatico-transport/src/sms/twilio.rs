//! Twilio Programmable Messaging and Twilio Verify over their REST APIs (form-encoded POSTs,
//! HTTP Basic auth), with reqwest + rustls.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use chatico_core::error::{Error, Result};
use chatico_core::ids::{Phone, Timestamp};
use chatico_core::ports::{OtpVerifier, SmsSender, VerifyOutcome};
use reqwest::StatusCode;
use serde::Deserialize;

use super::mask_phone;
use chatico_core::retry::RetryPolicy;

/// Base URL of Twilio's REST API (Programmable Messaging).
pub const TWILIO_API_BASE: &str = "https://api.twilio.com";
/// Base URL of Twilio Verify.
pub const TWILIO_VERIFY_BASE: &str = "https://verify.twilio.com";

/// Twilio error codes that are about the destination number: mapped to `invalid_input` on
/// field `phone`. 21211 invalid 'To', 21214 cannot be reached, 21217 does not appear valid,
/// 21401 invalid number, 21407/21408 region not supported/enabled, 21421 invalid, 21604
/// 'To' required, 21608 unverified number on a trial account, 21610 unsubscribed recipient,
/// 21612 not reachable by SMS, 21614 not a mobile number, 60200 Verify invalid parameter
/// (To), 60205 landline, 60410 delivery to this number blocked (fraud prevention).
const PHONE_ERROR_CODES: &[u32] = &[
    21211, 21214, 21217, 21401, 21407, 21408, 21421, 21604, 21608, 21610, 21612, 21614, 60200, 60205, 60410,
];
/// Verify: max (5) check attempts reached for the pending verification.
const VERIFY_MAX_CHECKS: u32 = 60202;
/// Twilio's "resource not found" (a VerificationCheck without a pending verification).
const NOT_FOUND_CODE: u32 = 20404;
/// Twilio's limit on a message body, in characters.
const MAX_BODY_CHARS: usize = 1600;

/// How requests authenticate (HTTP Basic).
#[derive(Clone, PartialEq, Eq)]
pub enum TwilioAuth {
    /// The account SID (`AC…`) and its auth token.
    AuthToken {
        /// The account SID (`AC…`).
        account_sid: String,
        /// The account's auth token.
        auth_token: String,
    },
    /// An API key SID (`SK…`) and its secret, acting for `account_sid` (recommended: keys
    /// can be revoked one by one).
    ApiKey {
        /// The account SID (`AC…`) the key acts for.
        account_sid: String,
        /// The API key SID (`SK…`).
        key_sid: String,
        /// The API key's secret.
        key_secret: String,
    },
}

impl TwilioAuth {
    /// The account requests act for (the `AC…` SID).
    pub fn account_sid(&self) -> &str {
        match self {
            TwilioAuth::AuthToken { account_sid, .. } | TwilioAuth::ApiKey { account_sid, .. } => account_sid,
        }
    }

    /// (username, password) for HTTP Basic.
    fn basic(&self) -> (&str, &str) {
        match self {
            TwilioAuth::AuthToken {
                account_sid,
                auth_token,
            } => (account_sid, auth_token),
            TwilioAuth::ApiKey {
                key_sid, key_secret, ..
            } => (key_sid, key_secret),
        }
    }

    fn validate(&self) -> Result<()> {
        check_sid("twilio.account_sid", self.account_sid())?;
        match self {
            TwilioAuth::AuthToken { auth_token, .. } if auth_token.is_empty() => {
                Err(Error::invalid("twilio.auth_token", "empty"))
            }
            TwilioAuth::ApiKey {
                key_sid, key_secret, ..
            } => {
                check_sid("twilio.api_key_sid", key_sid)?;
                if key_secret.is_empty() {
                    return Err(Error::invalid("twilio.api_key_secret", "empty"));
                }
                Ok(())
            }
            TwilioAuth::AuthToken { .. } => Ok(()),
        }
    }
}

impl fmt::Debug for TwilioAuth {
    /// Secrets are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TwilioAuth::AuthToken { account_sid, .. } => f
                .debug_struct("AuthToken")
                .field("account_sid", account_sid)
                .field("auth_token", &"<redacted>")
                .finish(),
            TwilioAuth::ApiKey {
                account_sid, key_sid, ..
            } => f
                .debug_struct("ApiKey")
                .field("account_sid", account_sid)
                .field("key_sid", key_sid)
                .field("key_secret", &"<redacted>")
                .finish(),
        }
    }
}

/// SIDs go into URL paths: only ASCII letters and digits are accepted.
fn check_sid(field: &'static str, sid: &str) -> Result<()> {
    if sid.is_empty() || !sid.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(Error::invalid(
            field,
            "must be a non-empty Twilio SID (letters and digits)",
        ));
    }
    Ok(())
}

fn check_base_url(base: &str) -> Result<String> {
    let base = base.trim_end_matches('/');
    if !(base.starts_with("https://") || base.starts_with("http://")) {
        return Err(Error::invalid("twilio.base_url", "must be an http(s) URL"));
    }
    Ok(base.to_owned())
}

/// Timeouts and retries shared by both Twilio adapters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TwilioOptions {
    /// Whole-request timeout (a timeout counts as a transient failure and is retried).
    pub timeout: Duration,
    /// Timeout to establish the TCP/TLS connection.
    pub connect_timeout: Duration,
    /// How transient failures (timeouts, 5xx) are retried.
    pub retry: RetryPolicy,
    /// `retry_after` reported on a 429 that carries no usable `Retry-After` header.
    pub default_retry_after: Duration,
}

impl Default for TwilioOptions {
    fn default() -> Self {
        TwilioOptions {
            timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
            default_retry_after: Duration::from_secs(60),
        }
    }
}

/// Who a Programmable Messaging SMS is from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessagesFrom {
    /// A Twilio phone number (E.164) or alphanumeric sender id: form field `From`.
    Number(String),
    /// A Messaging Service SID (`MG…`): form field `MessagingServiceSid`.
    MessagingService(String),
}

/// Configuration of [`TwilioMessagesSender`]. `new` fills the defaults.
#[derive(Debug, Clone)]
pub struct TwilioMessagesConfig {
    /// The credentials.
    pub auth: TwilioAuth,
    /// The sender number or Messaging Service.
    pub from: MessagesFrom,
    /// [`TWILIO_API_BASE`] unless pointed elsewhere (tests, a proxy).
    pub base_url: String,
    /// Timeouts and retries.
    pub options: TwilioOptions,
}

impl TwilioMessagesConfig {
    /// A configuration with the default base URL and options.
    pub fn new(auth: TwilioAuth, from: MessagesFrom) -> Self {
        TwilioMessagesConfig {
            auth,
            from,
            base_url: TWILIO_API_BASE.to_owned(),
            options: TwilioOptions::default(),
        }
    }
}

/// Configuration of [`TwilioVerify`]. `new` fills the defaults.
#[derive(Debug, Clone)]
pub struct TwilioVerifyConfig {
    /// The credentials.
    pub auth: TwilioAuth,
    /// The Verify service SID (`VA…`).
    pub service_sid: String,
    /// [`TWILIO_VERIFY_BASE`] unless pointed elsewhere (tests, a proxy).
    pub base_url: String,
    /// Timeouts and retries.
    pub options: TwilioOptions,
}

impl TwilioVerifyConfig {
    /// A configuration with the default base URL and options.
    pub fn new(auth: TwilioAuth, service_sid: impl Into<String>) -> Self {
        TwilioVerifyConfig {
            auth,
            service_sid: service_sid.into(),
            base_url: TWILIO_VERIFY_BASE.to_owned(),
            options: TwilioOptions::default(),
        }
    }
}

// ----- the shared HTTP client -----

/// Twilio's JSON error body: `{"code", "message", "more_info", "status"}`.
#[derive(Debug, Default, Deserialize)]
struct TwilioErrorBody {
    code: Option<u32>,
    message: Option<String>,
}

/// Why a call did not succeed, before it is mapped to a core error.
#[derive(Debug)]
enum Failure {
    /// A non-2xx answer (5xx only after the retries ran out).
    Status {
        status: StatusCode,
        code: Option<u32>,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Timeout, refused connection, broken body... (after the retries ran out).
    Transport(String),
}

#[derive(Clone)]
struct TwilioHttp {
    client: reqwest::Client,
    auth: TwilioAuth,
    options: TwilioOptions,
}

impl TwilioHttp {
    fn new(auth: TwilioAuth, options: TwilioOptions) -> Result<Self> {
        auth.validate()?;
        if options.retry.max_attempts == 0 {
            return Err(Error::invalid("twilio.retry.max_attempts", "must be at least 1"));
        }
        let client = reqwest::Client::builder()
            .timeout(options.timeout)
            .connect_timeout(options.connect_timeout)
            .user_agent(concat!("chatico/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| Error::internal(format!("building the Twilio HTTP client: {e}")))?;
        Ok(TwilioHttp { client, auth, options })
    }

    /// POSTs a form; returns the body of a 2xx answer. Transport failures and 5xx are
    /// retried per the policy; other statuses return at once.
    async fn post_form(&self, op: &'static str, url: &str, form: &[(&str, &str)]) -> Result<Vec<u8>, Failure> {
        let (user, pass) = self.auth.basic();
        let policy = self.options.retry;
        let mut attempt = 1;
        loop {
            let sent = self
                .client
                .post(url)
                .basic_auth(user, Some(pass))
                .form(form)
                .send()
                .await;
            let failure = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = retry_after(resp.headers());
                    match resp.bytes().await {
                        Ok(body) if status.is_success() => return Ok(body.to_vec()),
                        Ok(body) => {
                            let parsed: TwilioErrorBody = serde_json::from_slice(&body).unwrap_or_default();
                            let failure = Failure::Status {
                                status,
                                code: parsed.code,
                                message: parsed.message.unwrap_or_default(),
                                retry_after,
                            };
                            if !status.is_server_error() {
                                return Err(failure);
                            }
                            failure
                        }
                        Err(e) => Failure::Transport(format!("reading the answer: {e}")),
                    }
                }
                Err(e) => Failure::Transport(describe(&e)),
            };
            if attempt >= policy.max_attempts {
                return Err(failure);
            }
            let delay = policy.backoff(attempt);
            tracing::warn!(op, attempt, ?delay, failure = ?failure, "twilio call failed; retrying");
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
    }

    /// The mapping shared by both adapters (callers handle their special cases first).
    fn map_failure(&self, op: &'static str, failure: Failure) -> Error {
        match failure {
            Failure::Transport(reason) => {
                tracing::error!(op, %reason, "twilio unreachable");
                Error::unavailable(format!("twilio {op}: {reason}"))
            }
            Failure::Status {
                status, code, message, ..
            } if status.is_server_error() => {
                tracing::error!(op, %status, ?code, %message, "twilio server error");
                Error::unavailable(format!("twilio {op}: HTTP {status}"))
            }
            Failure::Status {
                status,
                retry_after,
                code,
                ..
            } if status == StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after.unwrap_or(self.options.default_retry_after);
                tracing::warn!(op, ?code, ?wait, "twilio rate limited the request");
                Error::RateLimited {
                    retry_after_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                }
            }
            Failure::Status {
                code: Some(code),
                message,
                ..
            } if PHONE_ERROR_CODES.contains(&code) => {
                tracing::info!(op, code, %message, "twilio refused the destination number");
                Error::invalid(
                    "phone",
                    format!("the SMS provider cannot deliver to this number (Twilio {code})"),
                )
            }
            Failure::Status {
                status, code, message, ..
            } => {
                if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                    tracing::error!(op, %status, ?code, %message, "twilio rejected the credentials; check the configuration");
                } else {
                    tracing::error!(op, %status, ?code, %message, "twilio refused the request");
                }
                Error::internal(format!("twilio {op}: HTTP {status}, code {code:?}: {message}"))
            }
        }
    }
}

/// `Retry-After` in seconds (an HTTP date is not honoured: the default applies).
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn describe(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        format!("request failed: {e}")
    }
}

// ----- Programmable Messaging -----

/// [`SmsSender`] over Twilio Programmable Messaging:
/// `POST {base}/2010-04-01/Accounts/{AccountSid}/Messages.json` with `To`, `From` or
/// `MessagingServiceSid`, and `Body`.
///
/// A retry after a timeout may deliver the same text twice (Twilio may have accepted the
/// first request); for an OTP that is harmless.
#[derive(Clone)]
pub struct TwilioMessagesSender {
    http: TwilioHttp,
    url: String,
    from: MessagesFrom,
}

impl fmt::Debug for TwilioMessagesSender {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioMessagesSender")
            .field("url", &self.url)
            .field("auth", &self.http.auth)
            .field("from", &self.from)
            .finish()
    }
}

impl TwilioMessagesSender {
    /// A sender; `Error::InvalidInput` for a base URL that is not http(s), an empty sender, a
    /// malformed SID or unusable options.
    pub fn new(config: TwilioMessagesConfig) -> Result<Self> {
        let base = check_base_url(&config.base_url)?;
        match &config.from {
            MessagesFrom::Number(n) if n.trim().is_empty() => return Err(Error::invalid("twilio.from", "empty")),
            MessagesFrom::MessagingService(sid) => check_sid("twilio.messaging_service_sid", sid)?,
            MessagesFrom::Number(_) => {}
        }
        let http = TwilioHttp::new(config.auth, config.options)?;
        let url = format!("{base}/2010-04-01/Accounts/{}/Messages.json", http.auth.account_sid());
        Ok(TwilioMessagesSender {
            http,
            url,
            from: config.from,
        })
    }
}

/// The part of a created Message we log.
#[derive(Debug, Default, Deserialize)]
struct MessageCreated {
    sid: Option<String>,
    status: Option<String>,
}

#[async_trait]
impl SmsSender for TwilioMessagesSender {
    async fn send(&self, to: &Phone, body: &str) -> Result<()> {
        if body.is_empty() || body.chars().count() > MAX_BODY_CHARS {
            return Err(Error::invalid(
                "body",
                format!("must be 1 to {MAX_BODY_CHARS} characters"),
            ));
        }
        let from = match &self.from {
            MessagesFrom::Number(n) => ("From", n.as_str()),
            MessagesFrom::MessagingService(sid) => ("MessagingServiceSid", sid.as_str()),
        };
        let form = [("To", to.as_str()), from, ("Body", body)];
        let answer = self
            .http
            .post_form("messages.create", &self.url, &form)
            .await
            .map_err(|f| self.http.map_failure("messages.create", f))?;
        let created: MessageCreated = serde_json::from_slice(&answer).unwrap_or_default();
        tracing::info!(
            to = %mask_phone(to.as_str()),
            sid = created.sid.as_deref().unwrap_or("?"),
            status = created.status.as_deref().unwrap_or("?"),
            "sms accepted by twilio"
        );
        Ok(())
    }
}

// ----- Verify -----

/// [`OtpVerifier`] over Twilio Verify: Twilio generates, sends and checks the code.
/// `start` is `POST {base}/v2/Services/{ServiceSid}/Verifications` (`To`, `Channel=sms`);
/// `verify` is `POST {base}/v2/Services/{ServiceSid}/VerificationCheck` (`To`, `Code`), and
/// `status: approved` is the only approval. A check without a pending verification (404:
/// expired, already approved, never started) is a rejection, as is 60202 (5 wrong codes).
#[derive(Clone)]
pub struct TwilioVerify {
    http: TwilioHttp,
    start_url: String,
    check_url: String,
}

impl fmt::Debug for TwilioVerify {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TwilioVerify")
            .field("start_url", &self.start_url)
            .field("auth", &self.http.auth)
            .finish()
    }
}

impl TwilioVerify {
    /// A verifier; `Error::InvalidInput` for a base URL that is not http(s), a malformed SID or
    /// unusable options.
    pub fn new(config: TwilioVerifyConfig) -> Result<Self> {
        let base = check_base_url(&config.base_url)?;
        check_sid("twilio.verify_service_sid", &config.service_sid)?;
        let http = TwilioHttp::new(config.auth, config.options)?;
        let service = format!("{base}/v2/Services/{}", config.service_sid);
        Ok(TwilioVerify {
            http,
            start_url: format!("{service}/Verifications"),
            check_url: format!("{service}/VerificationCheck"),
        })
    }
}

#[derive(Debug, Default, Deserialize)]
struct VerificationAnswer {
    status: Option<String>,
}

#[async_trait]
impl OtpVerifier for TwilioVerify {
    async fn start(&self, phone: &Phone, _now: Timestamp) -> Result<()> {
        let form = [("To", phone.as_str()), ("Channel", "sms")];
        let answer = self
            .http
            .post_form("verify.start", &self.start_url, &form)
            .await
            .map_err(|f| self.http.map_failure("verify.start", f))?;
        let v: VerificationAnswer = serde_json::from_slice(&answer).unwrap_or_default();
        tracing::info!(
            to = %mask_phone(phone.as_str()),
            status = v.status.as_deref().unwrap_or("?"),
            "twilio verify started"
        );
        Ok(())
    }

    async fn verify(&self, phone: &Phone, code: &str, _now: Timestamp) -> Result<VerifyOutcome> {
        // Verify accepts 4 to 10 digits; anything else would be a 60200 round trip.
        if !(4..=10).contains(&code.len()) || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::invalid("code", "must be 4 to 10 digits"));
        }
        let form = [("To", phone.as_str()), ("Code", code)];
        match self.http.post_form("verify.check", &self.check_url, &form).await {
            Ok(answer) => {
                let v: VerificationAnswer = serde_json::from_slice(&answer)
                    .map_err(|e| Error::internal(format!("twilio verify.check answer: {e}")))?;
                let approved = v.status.as_deref() == Some("approved");
                tracing::info!(to = %mask_phone(phone.as_str()), status = ?v.status, "twilio verify checked");
                Ok(if approved {
                    VerifyOutcome::Approved
                } else {
                    VerifyOutcome::Rejected { attempts_left: None }
                })
            }
            Err(Failure::Status { status, code, .. })
                if status == StatusCode::NOT_FOUND && code.is_none_or(|c| c == NOT_FOUND_CODE) =>
            {
                Ok(VerifyOutcome::Rejected { attempts_left: None })
            }
            Err(Failure::Status {
                code: Some(VERIFY_MAX_CHECKS),
                ..
            }) => Ok(VerifyOutcome::Rejected { attempts_left: Some(0) }),
            Err(Failure::Status {
                code: Some(60200),
                message,
                ..
            }) if message.contains("Code") => Err(Error::invalid("code", "rejected by the verification provider")),
            Err(f) => Err(self.http.map_failure("verify.check", f)),
        }
    }
}

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::SendSyncOutsideWasm;
use crate::error::Result;
use crate::ids::{Phone, Timestamp};

/// A pending OTP code, kept only as a keyed hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpEntry {
    /// HMAC-SHA-256 of the code under the server's OTP key.
    pub code_hash: Vec<u8>,
    /// When the code was sent (ms since the Unix epoch).
    pub sent_at: Timestamp,
    /// When the code stops working (ms since the Unix epoch).
    pub expires_at: Timestamp,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// The result of one atomic check against the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtpCheck {
    /// The hash matched; the entry is gone (single use).
    Match,
    /// Wrong code; the attempt was counted. `attempts_left` may be 0 (the entry is then gone).
    Mismatch {
        /// Comparisons still allowed for this entry.
        attempts_left: u32,
    },
    /// No pending code (never sent, expired, used, or attempts exhausted earlier).
    Missing,
}

/// A TTL cache for OTP codes and rate-limit counters: in memory for one node, Redis for
/// several. Every method is atomic with respect to concurrent callers.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait OtpCache: SendSyncOutsideWasm {
    /// Stores the entry for `key`, replacing any previous one (a resend invalidates the old
    /// code). It expires at `entry.expires_at`.
    async fn put(&self, key: &str, entry: OtpEntry) -> Result<()>;
    /// The live entry for `key`, if any (expired entries are absent).
    async fn get(&self, key: &str, now: Timestamp) -> Result<Option<OtpEntry>>;
    /// Atomically: if a live entry exists and has fewer than `max_attempts` failures, compare
    /// `candidate_hash` with its hash in constant time; on a match remove it, otherwise count
    /// the failure (removing the entry when it reaches `max_attempts`). Parallel calls can
    /// never exceed `max_attempts` comparisons in total.
    async fn check_and_consume(
        &self,
        key: &str,
        candidate_hash: &[u8],
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<OtpCheck>;
    /// Fixed-window counter: counts one hit on `key` in the window of `window_ms` that
    /// contains `now`, returning the count including this hit and when the window ends.
    async fn hit(&self, key: &str, now: Timestamp, window_ms: i64) -> Result<(u32, Timestamp)>;
}

/// Sends a text message to a phone (Twilio Messages, the console in development...).
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait SmsSender: SendSyncOutsideWasm {
    /// Sends `body` to `to`; `Error::Unavailable` if the provider cannot be reached.
    async fn send(&self, to: &Phone, body: &str) -> Result<()>;
}

/// The answer to a code check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VerifyOutcome {
    /// The code is right; the provider consumed it.
    Approved,
    /// Wrong code (`attempts_left` when known) or no pending code.
    Rejected {
        /// Attempts the provider still allows, when it says.
        attempts_left: Option<u32>,
    },
}

/// Who owns OTP codes: the core (codes generated here, hashed into an [`OtpCache`], sent
/// with an [`SmsSender`]) or a provider that generates and checks them itself (Twilio
/// Verify). The auth service calls this and does not care which one runs; rate limits,
/// cooldowns and sessions stay in the core either way.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait OtpVerifier: SendSyncOutsideWasm {
    /// Issues a new code to `phone` (replacing a pending one) and delivers it.
    async fn start(&self, phone: &Phone, now: Timestamp) -> Result<()>;
    /// Checks `code` for `phone`. Single use: an approved code cannot be used again.
    async fn verify(&self, phone: &Phone, code: &str, now: Timestamp) -> Result<VerifyOutcome>;
}

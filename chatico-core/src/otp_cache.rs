//! [`MemoryOtpCache`]: the in-process [`OtpCache`] for a single node.
//!
//! Several nodes share codes and counters through a networked cache (Redis) implementing the
//! same port instead.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::ids::Timestamp;
use crate::ports::{OtpCache, OtpCheck, OtpEntry};

/// Expired entries are swept after this many writes (lazily otherwise).
const SWEEP_EVERY: u32 = 1024;

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<String, OtpEntry>,
    /// key → (count, window end)
    counters: HashMap<String, (u32, Timestamp)>,
    writes: u32,
}

impl Inner {
    fn maybe_sweep(&mut self, now: Timestamp) {
        self.writes = self.writes.wrapping_add(1);
        if self.writes.is_multiple_of(SWEEP_EVERY) {
            self.entries.retain(|_, e| e.expires_at > now);
            self.counters.retain(|_, (_, ends)| *ends > now);
        }
    }
}

/// An [`OtpCache`] in a `Mutex<HashMap>`. Expiry follows the `now` each call passes (so a
/// `ManualClock` drives it in tests); expired entries read as absent and are swept lazily.
///
/// `hit` counters are fixed windows that start at the first hit after the previous window
/// ended (the semantics of Redis `INCR` + `PEXPIRE` on the first hit).
#[derive(Debug, Default)]
pub struct MemoryOtpCache {
    inner: Mutex<Inner>,
}

impl MemoryOtpCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, Inner>> {
        self.inner
            .lock()
            .map_err(|_| Error::internal("otp cache lock poisoned"))
    }
}

#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
impl OtpCache for MemoryOtpCache {
    async fn put(&self, key: &str, entry: OtpEntry) -> Result<()> {
        let mut inner = self.lock()?;
        inner.maybe_sweep(entry.sent_at);
        inner.entries.insert(key.to_owned(), entry);
        Ok(())
    }

    async fn get(&self, key: &str, now: Timestamp) -> Result<Option<OtpEntry>> {
        let inner = self.lock()?;
        Ok(inner.entries.get(key).filter(|e| e.expires_at > now).cloned())
    }

    async fn check_and_consume(
        &self,
        key: &str,
        candidate_hash: &[u8],
        now: Timestamp,
        max_attempts: u32,
    ) -> Result<OtpCheck> {
        let mut inner = self.lock()?;
        let Some(entry) = inner.entries.get_mut(key) else {
            return Ok(OtpCheck::Missing);
        };
        if entry.expires_at <= now || entry.attempts >= max_attempts {
            inner.entries.remove(key);
            return Ok(OtpCheck::Missing);
        }
        let matched: bool = entry.code_hash.ct_eq(candidate_hash).into();
        if matched {
            inner.entries.remove(key);
            return Ok(OtpCheck::Match);
        }
        entry.attempts += 1;
        let attempts_left = max_attempts - entry.attempts;
        if attempts_left == 0 {
            inner.entries.remove(key);
        }
        Ok(OtpCheck::Mismatch { attempts_left })
    }

    async fn hit(&self, key: &str, now: Timestamp, window_ms: i64) -> Result<(u32, Timestamp)> {
        let mut inner = self.lock()?;
        inner.maybe_sweep(now);
        let slot = inner.counters.entry(key.to_owned()).or_insert((0, now + window_ms));
        if slot.1 <= now {
            *slot = (0, now + window_ms);
        }
        slot.0 = slot.0.saturating_add(1);
        Ok(*slot)
    }
}

#[cfg(test)]
mod tests {
    use futures::executor::block_on;

    use super::*;

    fn entry(hash: &[u8], now: Timestamp) -> OtpEntry {
        OtpEntry {
            code_hash: hash.to_vec(),
            sent_at: now,
            expires_at: now + 1000,
            attempts: 0,
        }
    }

    #[test]
    fn match_consumes_the_entry() {
        block_on(async {
            let c = MemoryOtpCache::new();
            c.put("k", entry(b"h", 0)).await.expect("put");
            assert_eq!(
                c.check_and_consume("k", b"h", 1, 5).await.expect("check"),
                OtpCheck::Match
            );
            assert_eq!(
                c.check_and_consume("k", b"h", 1, 5).await.expect("check"),
                OtpCheck::Missing
            );
        });
    }

    #[test]
    fn mismatches_are_counted_and_exhaust_the_entry() {
        block_on(async {
            let c = MemoryOtpCache::new();
            c.put("k", entry(b"h", 0)).await.expect("put");
            for left in (0..3).rev() {
                assert_eq!(
                    c.check_and_consume("k", b"x", 1, 3).await.expect("check"),
                    OtpCheck::Mismatch { attempts_left: left }
                );
            }
            assert_eq!(
                c.check_and_consume("k", b"h", 1, 3).await.expect("check"),
                OtpCheck::Missing
            );
        });
    }

    #[test]
    fn expired_entries_are_absent() {
        block_on(async {
            let c = MemoryOtpCache::new();
            c.put("k", entry(b"h", 0)).await.expect("put");
            assert!(c.get("k", 999).await.expect("get").is_some());
            assert!(c.get("k", 1000).await.expect("get").is_none());
            assert_eq!(
                c.check_and_consume("k", b"h", 1000, 5).await.expect("check"),
                OtpCheck::Missing
            );
        });
    }

    #[test]
    fn hit_counts_in_a_window_that_starts_at_the_first_hit() {
        block_on(async {
            let c = MemoryOtpCache::new();
            assert_eq!(c.hit("r", 100, 50).await.expect("hit"), (1, 150));
            assert_eq!(c.hit("r", 149, 50).await.expect("hit"), (2, 150));
            assert_eq!(c.hit("r", 150, 50).await.expect("hit"), (1, 200));
            assert_eq!(c.hit("other", 150, 50).await.expect("hit"), (1, 200));
        });
    }
}

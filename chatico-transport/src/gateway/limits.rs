//! Per-user rate limiting: a token bucket per user, in this node's memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use chatico_core::ids::{Timestamp, UserId};
use chatico_core::ports::Clock;
use chatico_core::{Error, Result};

use super::config::RateLimit;

const SHARDS: usize = 16;
/// Buckets kept per shard before idle (full) ones are swept.
const SWEEP_AT: usize = 4096;

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Tokens, in thousandths.
    milli_tokens: i64,
    at: Timestamp,
}

/// Token buckets keyed by user. See [`RateLimit`].
pub struct RateLimiter {
    limit: RateLimit,
    clock: Arc<dyn Clock>,
    shards: Box<[Mutex<HashMap<UserId, Bucket>>]>,
}

impl std::fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimiter").field("limit", &self.limit).finish()
    }
}

impl RateLimiter {
    /// A limiter granting `limit` per user, timed by `clock`.
    pub fn new(limit: RateLimit, clock: Arc<dyn Clock>) -> Self {
        RateLimiter {
            limit,
            clock,
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    fn capacity(&self) -> i64 {
        i64::from(self.limit.burst.max(1)) * 1000
    }

    fn refill(&self, b: &mut Bucket, now: Timestamp) {
        let elapsed = (now - b.at).max(0);
        // per_second tokens per 1000 ms = per_second milli-tokens per ms
        let add = elapsed.saturating_mul(i64::from(self.limit.per_second));
        b.milli_tokens = (b.milli_tokens.saturating_add(add)).min(self.capacity());
        b.at = now;
    }

    /// Takes one token for `user`, or answers `rate_limited` with the wait until one is back.
    pub fn check(&self, user: UserId) -> Result<()> {
        let now = self.clock.now_ms();
        let shard = &self.shards[(user.0.as_u128() % SHARDS as u128) as usize];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= SWEEP_AT {
            let cap = self.capacity();
            let per_second = i64::from(self.limit.per_second);
            map.retain(|_, b| b.milli_tokens + (now - b.at).max(0).saturating_mul(per_second) < cap);
        }
        let cap = self.capacity();
        let b = map.entry(user).or_insert(Bucket {
            milli_tokens: cap,
            at: now,
        });
        self.refill(b, now);
        if b.milli_tokens >= 1000 {
            b.milli_tokens -= 1000;
            return Ok(());
        }
        let per_second = i64::from(self.limit.per_second.max(1));
        let missing = 1000 - b.milli_tokens;
        let retry_after_ms = (missing + per_second - 1) / per_second;
        Err(Error::RateLimited {
            retry_after_ms: retry_after_ms.max(1) as u64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatico_core::ErrorCode;
    use chatico_core::ports::ManualClock;

    #[test]
    fn a_burst_is_allowed_then_limited_then_refilled_by_time() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let rl = RateLimiter::new(
            RateLimit {
                per_second: 10,
                burst: 3,
            },
            clock.clone(),
        );
        let u = UserId(uuid::Uuid::from_u128(5));
        let other = UserId(uuid::Uuid::from_u128(6));
        for _ in 0..3 {
            rl.check(u).expect("within burst");
        }
        let err = rl.check(u).expect_err("over the burst");
        assert_eq!(err.code(), ErrorCode::RateLimited);
        assert_eq!(err, Error::RateLimited { retry_after_ms: 100 });
        // someone else is unaffected
        rl.check(other).expect("other user has their own bucket");
        clock.advance(100);
        rl.check(u).expect("one token back after 100 ms at 10/s");
        assert!(rl.check(u).is_err());
        clock.advance(10_000);
        for _ in 0..3 {
            rl.check(u).expect("refilled to the burst, not beyond");
        }
        assert!(rl.check(u).is_err());
    }
}

//! A retry policy for adapters that call remote services (SMS providers, object stores):
//! pure arithmetic, the caller sleeps with its own runtime.

use std::time::Duration;

use rand::Rng;

/// Bounded retries with exponential backoff and jitter, for transient failures (5xx,
/// timeouts, refused connections). Client errors (4xx, 429 included) are never retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included (1 = no retry). At least 1.
    pub max_attempts: u32,
    /// Delay before the first retry; doubles for each retry after it.
    pub initial_backoff: Duration,
    /// Cap on one delay.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// 3 attempts, 200 ms then 400 ms (each with jitter), capped at 2 s.
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 3,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(2),
        }
    }
}

impl RetryPolicy {
    /// One attempt, no retry.
    pub fn none() -> Self {
        RetryPolicy {
            max_attempts: 1,
            ..RetryPolicy::default()
        }
    }

    /// The delay before retry number `retry` (1-based): `initial × 2^(retry-1)`, capped,
    /// then drawn uniformly from its upper half so that callers failing together spread out.
    pub fn backoff(&self, retry: u32) -> Duration {
        self.backoff_with(retry, &mut rand::thread_rng())
    }

    /// [`RetryPolicy::backoff`] with the jitter drawn from `rng` (seeded in tests).
    pub fn backoff_with(&self, retry: u32, rng: &mut impl Rng) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(retry.saturating_sub(1)))
            .min(self.max_backoff);
        let half = exp / 2;
        let spread = u64::try_from((exp - half).as_micros()).unwrap_or(u64::MAX);
        if spread == 0 {
            return exp;
        }
        half + Duration::from_micros(rng.gen_range(0..=spread))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_within_bounds_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(300),
        };
        for _ in 0..100 {
            let b1 = p.backoff(1);
            assert!(
                b1 >= Duration::from_millis(50) && b1 <= Duration::from_millis(100),
                "{b1:?}"
            );
            let b2 = p.backoff(2);
            assert!(
                b2 >= Duration::from_millis(100) && b2 <= Duration::from_millis(200),
                "{b2:?}"
            );
            let b9 = p.backoff(9);
            assert!(
                b9 >= Duration::from_millis(150) && b9 <= Duration::from_millis(300),
                "{b9:?}"
            );
        }
        assert_eq!(RetryPolicy::none().max_attempts, 1);
    }
}

//! Reconnect delays: exponential growth with jitter.

use std::time::Duration;

/// How long to wait between reconnect attempts.
///
/// Attempt `n` (from 0) waits a random duration in `[d/2, d]` where
/// `d = min(max, initial * factor^n)` ("equal jitter"): clients that lost the same server at
/// the same moment spread out instead of reconnecting in lockstep, and every client still
/// waits at least half the nominal delay.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(250),
            max: Duration::from_secs(30),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The nominal (jitter-free) delay of attempt `attempt`.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let exp = self.factor.max(1.0).powi(attempt.min(64) as i32);
        let ms = (self.initial.as_millis() as f64 * exp).min(self.max.as_millis() as f64);
        Duration::from_millis(ms as u64)
    }

    /// The delay of attempt `attempt` with jitter drawn from `rng`.
    pub fn delay(&self, attempt: u32, rng: &mut impl rand::Rng) -> Duration {
        let d = self.nominal(attempt).as_millis() as u64;
        let half = d / 2;
        Duration::from_millis(half + rng.gen_range(0..=d - half))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn grows_exponentially_up_to_the_cap_with_bounded_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(2),
            factor: 2.0,
        };
        let nominal: Vec<u64> = (0..7).map(|a| b.nominal(a).as_millis() as u64).collect();
        assert_eq!(nominal, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let mut distinct = std::collections::BTreeSet::new();
        for a in 0..7 {
            for _ in 0..50 {
                let d = b.delay(a, &mut rng).as_millis() as u64;
                let n = nominal[a as usize];
                assert!(d >= n / 2 && d <= n, "attempt {a}: {d} outside [{}, {n}]", n / 2);
                distinct.insert(d);
            }
        }
        assert!(distinct.len() > 20, "jitter must spread delays");
        assert_eq!(b.nominal(u32::MAX), Duration::from_secs(2));
    }
}

use std::sync::atomic::{AtomicI64, Ordering};

use crate::SendSyncOutsideWasm;
use crate::ids::Timestamp;

/// Wall-clock time in milliseconds since the Unix epoch.
pub trait Clock: SendSyncOutsideWasm {
    /// Now, in ms since the Unix epoch.
    fn now_ms(&self) -> Timestamp;
}

/// The system clock (not on wasm: the browser binding supplies `Date.now()`).
#[cfg(not(target_family = "wasm"))]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

#[cfg(not(target_family = "wasm"))]
impl Clock for SystemClock {
    fn now_ms(&self) -> Timestamp {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0)
    }
}

/// A clock tests move by hand, so expiry is testable without sleeping.
#[derive(Debug, Default)]
pub struct ManualClock(AtomicI64);

impl ManualClock {
    /// A clock reading `start_ms` until moved.
    pub fn new(start_ms: Timestamp) -> Self {
        ManualClock(AtomicI64::new(start_ms))
    }
    /// Moves the clock by `ms` (negative moves back).
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// Sets the clock to `ms`.
    pub fn set(&self, ms: Timestamp) {
        self.0.store(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

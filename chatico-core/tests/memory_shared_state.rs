//! The shared-state conformance suites on the in-memory implementations (one node).

use std::sync::Arc;

use chatico_core::{MemoryOtpCache, MemoryPresence};

async fn presence() -> Arc<MemoryPresence> {
    Arc::new(MemoryPresence::new())
}

async fn otp_cache() -> Arc<MemoryOtpCache> {
    Arc::new(MemoryOtpCache::new())
}

chatico_core::presence_conformance_tests!(presence, executor = futures);
chatico_core::otp_cache_conformance_tests!(otp_cache, executor = futures);

//! The store conformance suite (`chatico_core::testing`) against the in-memory store, plus
//! its property tests. Run: `cargo test -p chatico-core --test memory_conformance`.

use chatico_core::memory::MemoryStore;

async fn get_store() -> MemoryStore {
    MemoryStore::new()
}

chatico_core::store_conformance_tests!(get_store, executor = futures);
chatico_core::store_conformance_proptests!(get_store, cases = 64, executor = futures);

//! The core store conformance suite (and its property tests) on SQLite: each test gets a
//! fresh database file.
#![cfg(feature = "sqlite")]

use std::path::PathBuf;

use chatico_store::{SqliteConfig, SqliteStore};

/// A fresh database under the target's test temp dir (files older than an hour, left by
/// earlier runs, are removed).
async fn get_store() -> SqliteStore {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("sqlite-conformance");
    std::fs::create_dir_all(&dir).expect("create test dir");
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.elapsed().ok())
                .is_some_and(|age| age.as_secs() > 3600);
            if old {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    let path = dir.join(format!("{:016x}.db", rand::random::<u64>()));
    SqliteStore::open(path, SqliteConfig::default())
        .await
        .expect("open SQLite")
}

chatico_core::store_conformance_tests!(get_store);
chatico_core::store_conformance_proptests!(get_store, cases = 16);

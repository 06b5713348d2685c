//! SQLite backend: focused tests (the core conformance suite runs in `sqlite_conformance`).
#![cfg(feature = "sqlite")]

mod common;

use std::sync::Arc;

use chatico_core::ports::Store;
use chatico_store::{SqliteConfig, SqliteStore};
use tempfile::TempDir;

async fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("chat.db"), SqliteConfig::default())
        .await
        .expect("open")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_are_gap_free_and_idempotent() {
    let dir = TempDir::new().expect("tempdir");
    common::concurrent_sends_are_gap_free_and_idempotent(Arc::new(open(&dir).await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_without_group_commit() {
    let dir = TempDir::new().expect("tempdir");
    let config = SqliteConfig {
        group_commit: false,
        ..SqliteConfig::default()
    };
    let store = SqliteStore::open(dir.path().join("chat.db"), config)
        .await
        .expect("open");
    common::concurrent_sends_are_gap_free_and_idempotent(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_fails_alone() {
    let dir = TempDir::new().expect("tempdir");
    common::a_bad_message_fails_alone(Arc::new(open(&dir).await)).await;
}

#[tokio::test]
async fn data_survives_reopen() {
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir).await;
    let a = common::user(&store, 1, "alice").await;
    let c = common::group(&store, a, &[], common::NOW).await;
    store
        .insert_message(&common::text(c, a, "m1", "hello", common::NOW))
        .await
        .expect("insert");
    store.close().await;
    drop(store);
    let store = open(&dir).await;
    let m = store.get_message(c, 1).await.expect("get").expect("kept");
    assert_eq!(m.client_msg_id, "m1");
    assert_eq!(store.latest_pos().await.expect("pos"), 3);
}

fn open_error(r: chatico_core::Result<SqliteStore>) -> chatico_core::Error {
    match r {
        Ok(s) => panic!("opened {s:?}"),
        Err(e) => e,
    }
}

#[tokio::test]
async fn unwritable_path_fails_at_open_naming_the_path() {
    let dir = TempDir::new().expect("tempdir");
    // A regular file where a directory should be: no user (root included) can create the
    // database under it.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"x").expect("write");
    let path = blocker.join("chat.db");
    let e = open_error(SqliteStore::open(&path, SqliteConfig::default()).await);
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert_eq!(e.code().as_str(), "unavailable");
}

#[tokio::test]
async fn corrupt_file_fails_at_open_naming_the_path() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("corrupt.db");
    std::fs::write(&path, vec![0x5a_u8; 64 * 1024]).expect("write garbage");
    let e = open_error(SqliteStore::open(&path, SqliteConfig::default()).await);
    let text = e.to_string();
    assert!(text.contains(&path.display().to_string()), "{text}");
    assert!(text.contains("not a database"), "{text}");
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let dir = TempDir::new().expect("tempdir");
    let path = dir.path().join("future.db");
    let store = SqliteStore::open(&path, SqliteConfig::default()).await.expect("open");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, x'00', 0)",
    )
    .execute(store.read_pool())
    .await
    .expect("fake a newer migration");
    store.close().await;
    let e = open_error(SqliteStore::open(&path, SqliteConfig::default()).await);
    let text = e.to_string();
    assert!(text.contains("newer than this binary"), "{text}");
    assert!(text.contains(&path.display().to_string()), "{text}");
}

/// Memory does not grow with the database: every connection's page cache is bounded by
/// `cache_kib` (8 MiB by default; it was 64 MiB per connection) and memory-mapped I/O is off.
#[tokio::test]
async fn page_cache_is_bounded_per_connection() {
    async fn pragma(store: &SqliteStore, name: &str) -> i64 {
        sqlx::query_scalar(&format!("PRAGMA {name}"))
            .fetch_one(store.read_pool())
            .await
            .expect("pragma")
    }
    let dir = TempDir::new().expect("tempdir");
    let store = open(&dir).await;
    assert_eq!(pragma(&store, "cache_size").await, -8 * 1024, "KiB, negative");
    assert_eq!(pragma(&store, "mmap_size").await, 0);
    let config = SqliteConfig {
        cache_kib: 1024,
        ..SqliteConfig::default()
    };
    let small = SqliteStore::open(dir.path().join("small.db"), config)
        .await
        .expect("open");
    assert_eq!(pragma(&small, "cache_size").await, -1024);
}

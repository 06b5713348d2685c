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
    let store = SqliteStore::open(dir.path().join("chat.db"), config).await.expect("open");
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

//! Postgres backend: focused tests (the core conformance suite runs in
//! `postgres_conformance`). Needs `CHATICO_TEST_POSTGRES_URL`; skipped loudly without it.
#![cfg(feature = "postgres")]

mod common;

use std::sync::Arc;

use chatico_core::ports::Store;
use chatico_store::PostgresConfig;
use common::pg;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_are_gap_free_and_idempotent() {
    let Some(store) = pg::store().await else { return };
    common::concurrent_sends_are_gap_free_and_idempotent(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_sends_without_group_commit() {
    let Some(store) = pg::store_with(|c| PostgresConfig {
        group_commit: false,
        ..c
    })
    .await
    else {
        return;
    };
    common::concurrent_sends_are_gap_free_and_idempotent(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_message_fails_alone() {
    let Some(store) = pg::store().await else { return };
    common::a_bad_message_fails_alone(Arc::new(store)).await;
}

#[tokio::test]
async fn data_survives_reconnect() {
    let Some(url) = pg::url() else { return };
    let schema = pg::fresh_schema();
    let store = chatico_store::PostgresStore::connect(&url, pg::config(schema.clone()))
        .await
        .expect("connect");
    let a = common::user(&store, 1, "alice").await;
    let c = common::group(&store, a, &[], common::NOW).await;
    store
        .insert_message(&common::text(c, a, "m1", "hello", common::NOW))
        .await
        .expect("insert");
    store.close().await;
    let store = chatico_store::PostgresStore::connect(&url, pg::config(schema))
        .await
        .expect("reconnect");
    let m = store.get_message(c, 1).await.expect("get").expect("kept");
    assert_eq!(m.client_msg_id, "m1");
    assert_eq!(store.latest_pos().await.expect("pos"), 3);
}

#[tokio::test]
async fn newer_schema_is_refused() {
    let Some(url) = pg::url() else { return };
    let schema = pg::fresh_schema();
    let store = chatico_store::PostgresStore::connect(&url, pg::config(schema.clone()))
        .await
        .expect("connect");
    sqlx::query(
        "INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time) \
         VALUES (99990101000000, 'from the future', TRUE, '\\x00', 0)",
    )
    .execute(store.pool())
    .await
    .expect("fake a newer migration");
    store.close().await;
    match chatico_store::PostgresStore::connect(&url, pg::config(schema)).await {
        Ok(_) => panic!("a newer schema was accepted"),
        Err(e) => assert!(e.to_string().contains("newer than this binary"), "{e}"),
    }
}

#[tokio::test]
async fn unreachable_server_is_unavailable() {
    // Nothing listens on port 1 of loopback.
    let config = PostgresConfig {
        acquire_timeout: std::time::Duration::from_secs(1),
        ..PostgresConfig::default()
    };
    match chatico_store::PostgresStore::connect("postgres://postgres@127.0.0.1:1/test", config).await {
        Ok(_) => panic!("connected to nothing"),
        Err(e) => assert_eq!(e.code().as_str(), "unavailable", "{e}"),
    }
}

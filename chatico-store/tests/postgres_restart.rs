//! Postgres stopped and started again while a store is in use: operations answer
//! `unavailable` while it is down and succeed again once it is back, on the same store
//! object (no reconnect call, no process restart).
//!
//! This is the only test in its binary on purpose: `cargo test` runs test binaries one after
//! another, so no other test of the workspace talks to the server while this one stops it.
//! A guard starts the cluster again even if the test fails. It needs the loopback cluster
//! managed by `pg_ctlcluster` (Debian's postgresql-common), as on the CI machine, and skips
//! loudly otherwise.
#![cfg(feature = "postgres")]

mod common;

use std::process::Command;
use std::time::Duration;

use chatico_core::ErrorCode;
use chatico_core::ports::Store;
use chatico_store::{PostgresConfig, PostgresStore};

fn cluster_version() -> Option<String> {
    let mut versions: Vec<String> = std::fs::read_dir("/etc/postgresql")
        .ok()?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    versions.sort();
    versions.into_iter().next()
}

fn pg_ctl(version: &str, action: &str) -> bool {
    let mut cmd = Command::new("pg_ctlcluster");
    cmd.args(["--skip-systemctl-redirect", version, "main", action]);
    if action == "stop" {
        cmd.args(["-m", "fast"]);
    }
    cmd.status().map(|s| s.success()).unwrap_or(false)
}

fn reachable() -> bool {
    std::net::TcpStream::connect_timeout(&"127.0.0.1:5432".parse().expect("addr"), Duration::from_millis(500)).is_ok()
}

/// Starts the cluster again when dropped (also when the test panics) and waits for it.
struct RestartOnDrop(String);

impl Drop for RestartOnDrop {
    fn drop(&mut self) {
        if !reachable() {
            pg_ctl(&self.0, "start");
        }
        for _ in 0..60 {
            if reachable() {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        eprintln!("WARNING: PostgreSQL did not come back on 127.0.0.1:5432");
    }
}

fn assert_unavailable<T: std::fmt::Debug>(what: &str, r: chatico_core::Result<T>) {
    match r {
        Err(e) => assert_eq!(e.code(), ErrorCode::Unavailable, "{what}: {e}"),
        Ok(v) => panic!("{what} succeeded while the database was down: {v:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restart_answers_unavailable_then_recovers() {
    let Some(url) = common::pg::url() else { return };
    let Some(version) = cluster_version() else {
        eprintln!("SKIPPED: no pg_ctlcluster-managed PostgreSQL here; restart test not run");
        return;
    };
    if !url.contains("127.0.0.1") && !url.contains("localhost") {
        eprintln!("SKIPPED: CHATICO_TEST_POSTGRES_URL is not the loopback cluster; restart test not run");
        return;
    }
    let config = PostgresConfig {
        acquire_timeout: Duration::from_secs(1),
        ..common::pg::config(common::pg::fresh_schema())
    };
    let store = PostgresStore::connect(&url, config).await.expect("connect");
    let a = common::user(&store, 1, "alice").await;
    let c = common::group(&store, a, &[], common::NOW).await;
    let m1 = common::text(c, a, "before", "hello", common::NOW);
    store.insert_message(&m1).await.expect("insert before the outage");

    let guard = RestartOnDrop(version.clone());
    assert!(pg_ctl(&version, "stop"), "pg_ctlcluster stop failed");
    assert!(!reachable(), "PostgreSQL still reachable after stop");

    let m2 = common::text(c, a, "during", "anyone?", common::NOW + 1);
    assert_unavailable("insert_message", store.insert_message(&m2).await);
    assert_unavailable("sync", store.sync(a, 0, 10).await);
    assert_unavailable("get_user", store.get_user(a).await);
    assert_unavailable("list_conversations", store.list_conversations(a, false, 10).await);
    assert_unavailable("update_receipts", store.update_receipts(c, a, Some(1), Some(1)).await);

    assert!(pg_ctl(&version, "start"), "pg_ctlcluster start failed");
    drop(guard); // waits until the port answers

    // The same store recovers by itself: retry like a client would (bounded).
    let mut result = store.insert_message(&m2).await;
    for _ in 0..60 {
        match &result {
            Err(e) if e.code() == ErrorCode::Unavailable => {
                tokio::time::sleep(Duration::from_millis(500)).await;
                result = store.insert_message(&m2).await;
            }
            _ => break,
        }
    }
    let (stored, _) = result.expect("insert after the database came back");
    assert_eq!(stored.seq, 2, "seq stays gap-free across the outage");
    let again = store.insert_message(&m2).await.expect("retry is idempotent");
    assert_eq!(again.0.seq, 2);
    assert!(again.1.is_none(), "a retry records nothing");
    assert_eq!(
        store.get_message(c, 1).await.expect("read").expect("m1").client_msg_id,
        "before"
    );
    let page = store.sync(a, 0, 100).await.expect("sync after recovery");
    assert!(!page.limited);
    assert!(page.changes.len() >= 4);
}

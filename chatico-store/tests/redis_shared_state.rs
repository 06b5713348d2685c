//! The shared state on Redis (feature `redis`): the presence and OTP cache conformance suites
//! (the same functions the in-memory implementations run), then what needs several nodes —
//! multi-device presence across nodes, the reaper (driven by explicit times, no sleeping), a
//! graceful retirement, Redis losing its data, Redis down.
//!
//! Each test starts its own `redis-server` on a free port (`chatico_test_support::process::BrokerProcess`)
//! and needs the binary (the Debian package `redis-server`).
#![cfg(feature = "redis")]

use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use chatico_core::ErrorCode;
use chatico_core::ids::UserId;
use chatico_core::ports::{OtpCache, OtpCheck, OtpEntry, PresenceChanges, PresenceTracker};
use chatico_store::redis::{RedisOtpCache, RedisPresence, RedisState, RedisStateConfig};
use chatico_test_support::process::{BrokerKind, BrokerProcess};

const T: i64 = 1_700_000_000_000;
const LEASE: i64 = 15_000;

/// A value that keeps its Redis server alive.
struct WithServer<V> {
    value: V,
    _server: BrokerProcess,
}

impl<V> Deref for WithServer<V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.value
    }
}

fn server() -> BrokerProcess {
    BrokerProcess::start(BrokerKind::Redis).expect("these tests need `redis-server` on PATH")
}

async fn state(s: &BrokerProcess) -> RedisState {
    RedisState::connect(&s.url(), RedisStateConfig::default())
        .await
        .expect("connect")
}

async fn presence() -> WithServer<RedisPresence> {
    let s = server();
    let p = RedisPresence::new(state(&s).await, "n1");
    p.maintain(chatico_core::testing::shared_state::NOW)
        .await
        .expect("register");
    WithServer { value: p, _server: s }
}

async fn otp_cache() -> WithServer<RedisOtpCache> {
    let s = server();
    WithServer {
        value: RedisOtpCache::new(state(&s).await),
        _server: s,
    }
}

chatico_core::presence_conformance_tests!(presence);
chatico_core::otp_cache_conformance_tests!(otp_cache);

fn user(n: u128) -> UserId {
    UserId(uuid::Uuid::from_u128(0x0100_0000_0000_7000_8000_0000_0000_0000 + n))
}

async fn node(s: &BrokerProcess, name: &str, now: i64) -> RedisPresence {
    let p = RedisPresence::new(state(s).await, name);
    assert_eq!(p.maintain(now).await.expect("register"), PresenceChanges::default());
    p
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_on_two_nodes_goes_offline_when_both_closed() {
    let s = server();
    let (a, b) = (node(&s, "a", T).await, node(&s, "b", T).await);
    let u = user(1);
    assert!(a.connect(u, 1, T).await.expect("a"), "first device anywhere: online");
    assert!(!b.connect(u, 1, T).await.expect("b"), "second node: no transition");
    assert!(!a.disconnect(u, 1, T).await.expect("a off"), "still on b");
    assert_eq!(
        a.online(&[u]).await.expect("online"),
        vec![u],
        "node a sees b's connection"
    );
    assert!(
        b.disconnect(u, 1, T).await.expect("b off"),
        "last one anywhere: offline"
    );
    assert!(a.online(&[u]).await.expect("online").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reaper_turns_a_dead_nodes_users_offline_once() {
    let s = server();
    let (a, b, c) = (node(&s, "a", T).await, node(&s, "b", T).await, node(&s, "c", T).await);
    let (only_a, both) = (user(1), user(2));
    a.connect(only_a, 1, T).await.expect("connect");
    a.connect(both, 2, T).await.expect("connect");
    b.connect(both, 1, T).await.expect("connect");
    let conv = chatico_core::ids::ConversationId(uuid::Uuid::from_u128(7));
    a.set_typing(conv, only_a, T + 60_000, T).await.expect("typing");
    // `a` stops renewing (killed). Before its lease ends nothing happens.
    for now in [T + 5_000, T + 10_000, T + LEASE - 1] {
        assert_eq!(b.maintain(now).await.expect("b"), PresenceChanges::default());
        assert_eq!(c.maintain(now).await.expect("c"), PresenceChanges::default());
    }
    assert_eq!(b.online(&[only_a, both]).await.expect("online"), vec![only_a, both]);
    // After it, b and c reap at the same moment: exactly one of them reports it.
    let (rb, rc) = tokio::join!(b.maintain(T + LEASE + 1), c.maintain(T + LEASE + 1));
    let mut offline = rb.expect("b").offline;
    offline.extend(rc.expect("c").offline);
    assert_eq!(offline, vec![(only_a, T + LEASE)], "last seen is the lease's expiry");
    assert_eq!(
        b.online(&[only_a, both]).await.expect("online"),
        vec![both],
        "b still holds `both`"
    );
    assert!(
        b.typing(&[conv], T + LEASE + 1).await.expect("typing").is_empty(),
        "typing ended"
    );
    assert_eq!(
        b.maintain(T + LEASE + 2).await.expect("again"),
        PresenceChanges::default()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retired_node_hands_over_without_flapping() {
    let s = server();
    let (a, b) = (node(&s, "a", T).await, node(&s, "b", T).await);
    let (moves, leaves) = (user(1), user(2));
    a.connect(moves, 1, T).await.expect("connect");
    a.connect(leaves, 2, T).await.expect("connect");
    a.retire(T + 1_000).await.expect("retire");
    assert!(!a.disconnect(moves, 1, T + 1_000).await.expect("closed by shutdown"));
    assert!(!a.disconnect(leaves, 2, T + 1_000).await.expect("closed by shutdown"));
    assert_eq!(
        a.maintain(T + 2_000).await.expect("retired"),
        PresenceChanges::default()
    );
    // The client reconnects to b: still online, so no event.
    assert!(!b.connect(moves, 1, T + 2_000).await.expect("reconnect"));
    assert_eq!(b.online(&[moves, leaves]).await.expect("online"), vec![moves, leaves]);
    // a's lease lapses: only the user who did not come back goes offline.
    let changes = b.maintain(T + LEASE + 1).await.expect("reap");
    assert_eq!(changes.offline, vec![(leaves, T + LEASE)]);
    assert!(changes.online.is_empty());
    assert_eq!(b.online(&[moves, leaves]).await.expect("online"), vec![moves]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_reaped_while_alive_comes_back_with_online_events() {
    let s = server();
    let (a, b) = (node(&s, "a", T).await, node(&s, "b", T).await);
    let u = user(1);
    a.connect(u, 1, T).await.expect("connect");
    // a is cut off longer than its lease; b reaps it.
    assert_eq!(
        b.maintain(T + LEASE + 1).await.expect("reap").offline,
        vec![(u, T + LEASE)]
    );
    // a is back: its connection is still open, so u comes online again, once.
    let changes = a.maintain(T + LEASE + 2).await.expect("renew");
    assert_eq!(changes.online, vec![u]);
    assert!(changes.offline.is_empty());
    assert_eq!(b.online(&[u]).await.expect("online"), vec![u]);
    assert_eq!(
        a.maintain(T + LEASE + 3).await.expect("again"),
        PresenceChanges::default()
    );
}

/// Retries `maintain` until Redis answers again (the connection manager reconnects).
async fn maintain_until_ok(p: &RedisPresence, now: i64) -> PresenceChanges {
    for _ in 0..100 {
        if let Ok(c) = p.maintain(now).await {
            return c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("redis did not come back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_nodes_reregister_silently() {
    let mut s = server();
    let (a, b) = (node(&s, "a", T).await, node(&s, "b", T).await);
    let (u, v) = (user(1), user(2));
    a.connect(u, 1, T).await.expect("connect");
    b.connect(v, 1, T).await.expect("connect");
    s.restart();
    assert_eq!(
        maintain_until_ok(&a, T + 5_000).await,
        PresenceChanges::default(),
        "no events"
    );
    assert_eq!(
        maintain_until_ok(&b, T + 5_000).await,
        PresenceChanges::default(),
        "no events"
    );
    assert_eq!(
        a.online(&[u, v]).await.expect("online"),
        vec![u, v],
        "both re-registered"
    );
    // Presence keeps working afterwards: exactly one offline for u.
    assert!(a.disconnect(u, 1, T + 6_000).await.expect("off"));
    assert_eq!(b.online(&[u, v]).await.expect("online"), vec![v]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_presence_degrades_to_the_node_and_otp_fails_closed() {
    let mut s = server();
    let a = node(&s, "a", T).await;
    let otp = RedisOtpCache::new(state(&s).await);
    let (u, v) = (user(1), user(2));
    a.connect(u, 1, T).await.expect("connect");
    s.kill();
    // Presence: this node's own view, no error.
    assert_eq!(a.online(&[u, v]).await.expect("online"), vec![u]);
    assert!(
        a.connect(v, 1, T).await.expect("connect while down"),
        "first here: online"
    );
    assert!(!a.is_healthy());
    // OTP: unavailable, never a silent pass.
    let e = otp.hit("rl:x", T, 1000).await.expect_err("fails closed");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    let e = otp
        .check_and_consume("otp:x", b"h", T, 5)
        .await
        .expect_err("fails closed");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    assert!(a.maintain(T + 1_000).await.is_err(), "lease cannot be renewed");
    s.restart();
    let changes = maintain_until_ok(&a, T + 5_000).await;
    assert_eq!(changes, PresenceChanges::default(), "data lost: re-registered silently");
    assert!(a.is_healthy());
    let b = node(&s, "b", T + 5_000).await;
    assert_eq!(b.online(&[u, v]).await.expect("online"), vec![u, v]);
    // The cache's own connection reconnects by itself (with backoff, at most 1 s apart).
    let mut recovered = false;
    for _ in 0..60 {
        if otp.hit("rl:x", T, 1000).await.is_ok() {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "otp works again once redis is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attempt_limit_holds_across_connections() {
    let s = server();
    let caches: Vec<Arc<RedisOtpCache>> = vec![
        Arc::new(RedisOtpCache::new(state(&s).await)),
        Arc::new(RedisOtpCache::new(state(&s).await)),
        Arc::new(RedisOtpCache::new(state(&s).await)),
    ];
    let entry = OtpEntry {
        code_hash: b"right".to_vec(),
        sent_at: T,
        expires_at: T + 300_000,
        attempts: 0,
    };
    caches[0].put("otp:code:+15550001", entry).await.expect("put");
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let c = caches[i % 3].clone();
            tokio::spawn(async move { c.check_and_consume("otp:code:+15550001", b"wrong", T + 1, 5).await })
        })
        .collect();
    let mut evaluated = 0;
    for t in tasks {
        match t.await.expect("join").expect("check") {
            OtpCheck::Mismatch { .. } => evaluated += 1,
            OtpCheck::Missing => {}
            OtpCheck::Match => panic!("wrong code matched"),
        }
    }
    assert_eq!(evaluated, 5, "exactly the attempt limit was evaluated");
    assert_eq!(
        caches[1]
            .check_and_consume("otp:code:+15550001", b"right", T + 2, 5)
            .await
            .expect("check"),
        OtpCheck::Missing
    );
}

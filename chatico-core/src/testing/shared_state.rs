//! Conformance suites of the two ports several nodes share: [`PresenceTracker`] and
//! [`OtpCache`]. The in-memory implementations of this crate and the Redis ones of
//! `chatico-store` run the same functions, through
//! [`presence_conformance_tests!`](crate::presence_conformance_tests) and
//! [`otp_cache_conformance_tests!`](crate::otp_cache_conformance_tests).
//!
//! Each test takes one tracker (or cache) as one node sees it and only uses the port. What
//! needs several nodes (leases, the reaper, re-registration) depends on a shared backend and
//! is tested beside it.

use futures::future::join_all;

use crate::ids::{ConversationId, UserId};
use crate::model::Typing;
use crate::ports::{OtpCache, OtpCheck, OtpEntry, PresenceChanges, PresenceTracker};

/// The time the suites start at (ms).
pub const NOW: i64 = 1_700_000_000_000;

fn user(n: u128) -> UserId {
    UserId(uuid::Uuid::from_u128(0x0100_0000_0000_7000_8000_0000_0000_0000 + n))
}

fn conv(n: u128) -> ConversationId {
    ConversationId(uuid::Uuid::from_u128(0x0200_0000_0000_7000_8000_0000_0000_0000 + n))
}

/// Only a user's first connection is a transition to online; a repeated one is not.
pub async fn presence_connect_reports_the_first_connection_only(p: &dyn PresenceTracker) {
    let a = user(1);
    assert!(p.connect(a, 1, NOW).await.expect("connect"), "first connection: online");
    assert!(
        !p.connect(a, 2, NOW).await.expect("connect"),
        "second device: no transition"
    );
    assert!(
        !p.connect(a, 1, NOW).await.expect("connect"),
        "same connection again: nothing"
    );
    assert!(
        p.connect(user(2), 1, NOW).await.expect("connect"),
        "connection ids are per user"
    );
}

/// Only the last connection's end is a transition to offline; unknown connections change
/// nothing.
pub async fn presence_disconnect_reports_the_last_connection_only(p: &dyn PresenceTracker) {
    let a = user(1);
    assert!(
        !p.disconnect(a, 9, NOW).await.expect("unknown"),
        "unknown user: nothing"
    );
    p.connect(a, 1, NOW).await.expect("connect");
    p.connect(a, 2, NOW).await.expect("connect");
    assert!(
        !p.disconnect(a, 9, NOW).await.expect("unknown"),
        "unknown connection: nothing"
    );
    assert!(
        !p.disconnect(a, 1, NOW).await.expect("disconnect"),
        "one device left: online"
    );
    assert_eq!(p.online(&[a]).await.expect("online"), vec![a]);
    assert!(
        p.disconnect(a, 2, NOW).await.expect("disconnect"),
        "last device: offline"
    );
    assert!(!p.disconnect(a, 2, NOW).await.expect("again"), "twice: nothing");
    assert!(p.online(&[a]).await.expect("online").is_empty());
    assert!(p.connect(a, 3, NOW).await.expect("connect"), "back: online again");
}

/// `online` answers in the order asked, once each, only the connected.
pub async fn presence_online_answers_in_order_once_each(p: &dyn PresenceTracker) {
    let (a, b, c) = (user(1), user(2), user(3));
    assert!(p.online(&[]).await.expect("empty").is_empty());
    p.connect(a, 1, NOW).await.expect("connect");
    p.connect(c, 1, NOW).await.expect("connect");
    assert_eq!(p.online(&[c, b, a, c, a]).await.expect("online"), vec![c, a]);
}

/// Typing entries: set replaces, clear removes, expiry hides, and only the conversations
/// asked are answered, sorted.
pub async fn presence_typing_set_clear_expire(p: &dyn PresenceTracker) {
    let (a, b) = (user(1), user(2));
    let (c1, c2, c3) = (conv(1), conv(2), conv(3));
    p.set_typing(c1, b, NOW + 100, NOW).await.expect("set");
    p.set_typing(c1, a, NOW + 50, NOW).await.expect("set");
    p.set_typing(c2, a, NOW + 100, NOW).await.expect("set");
    let t = |c, u, e| Typing {
        conversation_id: c,
        user_id: u,
        expires_at: e,
    };
    assert_eq!(
        p.typing(&[c1], NOW).await.expect("typing"),
        vec![t(c1, a, NOW + 50), t(c1, b, NOW + 100)]
    );
    assert!(p.typing(&[c3], NOW).await.expect("typing").is_empty());
    assert!(p.typing(&[], NOW).await.expect("typing").is_empty());
    // Expired at exactly expires_at.
    assert_eq!(
        p.typing(&[c1, c2], NOW + 50).await.expect("typing"),
        vec![t(c1, b, NOW + 100), t(c2, a, NOW + 100)]
    );
    // A refresh replaces the expiry.
    p.set_typing(c1, a, NOW + 500, NOW).await.expect("refresh");
    assert_eq!(
        p.typing(&[c1], NOW + 200).await.expect("typing"),
        vec![t(c1, a, NOW + 500)]
    );
    p.clear_typing(c1, a).await.expect("clear");
    p.clear_typing(c3, a).await.expect("clearing nothing is fine");
    assert!(p.typing(&[c1], NOW + 200).await.expect("typing").is_empty());
}

/// Going offline ends the user's typing everywhere; a device closing while another stays
/// does not.
pub async fn presence_going_offline_ends_typing(p: &dyn PresenceTracker) {
    let (a, b) = (user(1), user(2));
    let (c1, c2) = (conv(1), conv(2));
    p.connect(a, 1, NOW).await.expect("connect");
    p.connect(a, 2, NOW).await.expect("connect");
    p.connect(b, 1, NOW).await.expect("connect");
    p.set_typing(c1, a, NOW + 1000, NOW).await.expect("set");
    p.set_typing(c2, a, NOW + 1000, NOW).await.expect("set");
    p.set_typing(c1, b, NOW + 1000, NOW).await.expect("set");
    p.disconnect(a, 1, NOW).await.expect("one device");
    assert_eq!(p.typing(&[c1, c2], NOW).await.expect("typing").len(), 3);
    assert!(p.disconnect(a, 2, NOW).await.expect("last device"));
    let left = p.typing(&[c1, c2], NOW).await.expect("typing");
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].user_id, b);
}

/// Parallel connects and disconnects of one user report exactly one transition each way.
pub async fn presence_parallel_transitions_are_reported_once(p: &dyn PresenceTracker) {
    let a = user(1);
    let ups = join_all((0..32u64).map(|c| p.connect(a, c, NOW))).await;
    let onlines = ups.into_iter().map(|r| r.expect("connect")).filter(|x| *x).count();
    assert_eq!(onlines, 1, "exactly one connect reports online");
    let downs = join_all((0..32u64).map(|c| p.disconnect(a, c, NOW))).await;
    let offlines = downs.into_iter().map(|r| r.expect("disconnect")).filter(|x| *x).count();
    assert_eq!(offlines, 1, "exactly one disconnect reports offline");
    assert!(p.online(&[a]).await.expect("online").is_empty());
}

/// A maintenance tick of a live node with its own connections changes nothing.
pub async fn presence_maintain_keeps_a_live_node(p: &dyn PresenceTracker) {
    let a = user(1);
    p.connect(a, 1, NOW).await.expect("connect");
    for i in 0..3 {
        assert_eq!(
            p.maintain(NOW + i * 1000).await.expect("maintain"),
            PresenceChanges::default()
        );
    }
    assert_eq!(p.online(&[a]).await.expect("online"), vec![a]);
}

fn entry(hash: &[u8], sent_at: i64, ttl: i64) -> OtpEntry {
    OtpEntry {
        code_hash: hash.to_vec(),
        sent_at,
        expires_at: sent_at + ttl,
        attempts: 0,
    }
}

/// `put` then `get`; expiry at `expires_at`; a resend replaces the entry and its count.
pub async fn otp_put_get_expire_replace(c: &dyn OtpCache) {
    assert_eq!(c.get("otp:a", NOW).await.expect("get"), None);
    c.put("otp:a", entry(b"h1", NOW, 1000)).await.expect("put");
    assert_eq!(
        c.get("otp:a", NOW + 999).await.expect("get"),
        Some(entry(b"h1", NOW, 1000))
    );
    assert_eq!(c.get("otp:a", NOW + 1000).await.expect("get"), None, "expired");
    c.put("otp:a", entry(b"h2", NOW + 10, 1000)).await.expect("put");
    assert_eq!(
        c.check_and_consume("otp:a", b"xx", NOW + 20, 3).await.expect("check"),
        OtpCheck::Mismatch { attempts_left: 2 }
    );
    c.put("otp:a", entry(b"h3", NOW + 30, 1000)).await.expect("resend");
    let e = c.get("otp:a", NOW + 40).await.expect("get").expect("entry");
    assert_eq!((e.code_hash, e.attempts), (b"h3".to_vec(), 0), "a resend starts afresh");
}

/// A match consumes the entry; a wrong code is counted, and the last allowed one removes it.
pub async fn otp_check_and_consume_counts_and_consumes(c: &dyn OtpCache) {
    c.put("otp:m", entry(b"right", NOW, 10_000)).await.expect("put");
    assert_eq!(
        c.check_and_consume("otp:m", b"right", NOW + 1, 3).await.expect("check"),
        OtpCheck::Match
    );
    assert_eq!(
        c.check_and_consume("otp:m", b"right", NOW + 2, 3).await.expect("check"),
        OtpCheck::Missing,
        "single use"
    );
    c.put("otp:m", entry(b"right", NOW, 10_000)).await.expect("put");
    for left in (0..3).rev() {
        assert_eq!(
            c.check_and_consume("otp:m", b"wrong", NOW + 3, 3).await.expect("check"),
            OtpCheck::Mismatch { attempts_left: left }
        );
    }
    assert_eq!(
        c.check_and_consume("otp:m", b"right", NOW + 4, 3).await.expect("check"),
        OtpCheck::Missing,
        "exhausted"
    );
    c.put("otp:m", entry(b"right", NOW, 100)).await.expect("put");
    assert_eq!(
        c.check_and_consume("otp:m", b"right", NOW + 100, 3)
            .await
            .expect("check"),
        OtpCheck::Missing,
        "expired"
    );
    assert_eq!(
        c.check_and_consume("otp:none", b"x", NOW, 3).await.expect("check"),
        OtpCheck::Missing
    );
}

/// 100 parallel wrong guesses: exactly `max_attempts` are compared, the rest find nothing,
/// and the right code after them finds nothing either.
pub async fn otp_parallel_guesses_never_exceed_the_limit(c: &dyn OtpCache) {
    c.put("otp:p", entry(b"right", NOW, 60_000)).await.expect("put");
    let results = join_all((0..100).map(|_| c.check_and_consume("otp:p", b"wrong", NOW + 1, 5))).await;
    let mut mismatches = Vec::new();
    for r in results {
        match r.expect("check") {
            OtpCheck::Mismatch { attempts_left } => mismatches.push(attempts_left),
            OtpCheck::Missing => {}
            OtpCheck::Match => panic!("a wrong code matched"),
        }
    }
    mismatches.sort_unstable();
    assert_eq!(mismatches, vec![0, 1, 2, 3, 4], "exactly the limit was evaluated");
    assert_eq!(
        c.check_and_consume("otp:p", b"right", NOW + 2, 5).await.expect("check"),
        OtpCheck::Missing
    );
}

/// Fixed windows that start at the first hit; keys are independent; parallel hits count
/// each once.
pub async fn otp_hit_counts_fixed_windows(c: &dyn OtpCache) {
    assert_eq!(c.hit("rl:a", NOW, 50).await.expect("hit"), (1, NOW + 50));
    assert_eq!(c.hit("rl:a", NOW + 49, 50).await.expect("hit"), (2, NOW + 50));
    assert_eq!(c.hit("rl:a", NOW + 50, 50).await.expect("hit"), (1, NOW + 100));
    assert_eq!(c.hit("rl:b", NOW + 50, 50).await.expect("hit"), (1, NOW + 100));
    let counts = join_all((0..40).map(|_| c.hit("rl:c", NOW, 60_000))).await;
    let mut n: Vec<u32> = counts.into_iter().map(|r| r.expect("hit").0).collect();
    n.sort_unstable();
    assert_eq!(n, (1..=40).collect::<Vec<u32>>(), "each parallel hit counted once");
}

/// Expands the presence conformance suite into `#[tokio::test]`s (or plain `#[test]`s on
/// the futures executor with `executor = futures`); `$get:path` is an `async fn` returning a
/// fresh tracker (anything that derefs to a `PresenceTracker`, e.g. an `Arc`).
#[macro_export]
macro_rules! presence_conformance_tests {
    ($get:path) => {
        $crate::presence_conformance_tests!($get, executor = tokio);
    };
    ($get:path, executor = $mode:ident) => {
        $crate::__shared_state_emit!($mode presence_conformance $get;
            presence_connect_reports_the_first_connection_only
            presence_disconnect_reports_the_last_connection_only
            presence_online_answers_in_order_once_each
            presence_typing_set_clear_expire
            presence_going_offline_ends_typing
            presence_parallel_transitions_are_reported_once
            presence_maintain_keeps_a_live_node
        );
    };
}

/// Expands the OTP cache conformance suite like
/// [`presence_conformance_tests!`](crate::presence_conformance_tests); `$get:path` is an
/// `async fn` returning a fresh, empty cache (anything that derefs to an `OtpCache`).
#[macro_export]
macro_rules! otp_cache_conformance_tests {
    ($get:path) => {
        $crate::otp_cache_conformance_tests!($get, executor = tokio);
    };
    ($get:path, executor = $mode:ident) => {
        $crate::__shared_state_emit!($mode otp_cache_conformance $get;
            otp_put_get_expire_replace
            otp_check_and_consume_counts_and_consumes
            otp_parallel_guesses_never_exceed_the_limit
            otp_hit_counts_fixed_windows
        );
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __shared_state_emit {
    (tokio $module:ident $get:path; $($name:ident)*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let it = $get().await;
                    $crate::testing::shared_state::$name(&*it).await;
                }
            )*
        }
    };
    (futures $module:ident $get:path; $($name:ident)*) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    $crate::testing::block_on(async {
                        let it = $get().await;
                        $crate::testing::shared_state::$name(&*it).await;
                    });
                }
            )*
        }
    };
}

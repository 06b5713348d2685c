//! Push notifications end to end: devices register over REST, messages sent through the
//! gateway reach a recording push sender (what APNs or FCM would get) per the engine's rules.

use std::sync::Arc;
use std::time::Duration;

use chatico_core::ids::UserId;
use chatico_core::ports::{Clock, Store};
use chatico_core::push::{DEFAULT_TITLE, Platform, PushError, PushKind};
use chatico_transport::gateway::PushConfig;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::*;

/// The collapse window of these tests: long enough that a burst of concurrent sends falls in
/// one window on a loaded machine, short enough to keep the tests quick.
const WINDOW: Duration = Duration::from_millis(800);

fn config() -> PushConfig {
    PushConfig {
        collapse_window: WINDOW,
        retry: chatico_core::retry::RetryPolicy {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(200),
        },
        ..PushConfig::default()
    }
}

async fn server(previews: bool) -> (TestServer, Arc<RecordingPush>) {
    let push = Arc::new(RecordingPush::default());
    let srv = TestServer::builder()
        .push(push.clone(), config())
        .push_previews(previews)
        .start()
        .await;
    (srv, push)
}

async fn register(srv: &TestServer, u: &User, platform: &str, token: &str) {
    let (s, v) = srv
        .call(
            Method::PUT,
            "/v1/push/device",
            Some(&u.token),
            Some(json!({ "platform": platform, "token": token, "app_id": "com.example.chat", "locale": "en-GB" })),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT, "{v}");
}

async fn group(srv: &TestServer, owner: &User, members: &[&User]) -> String {
    let ids: Vec<&str> = members.iter().map(|m| m.id.as_str()).collect();
    srv.ok(
        Method::POST,
        "/v1/conversations/group",
        owner,
        json!({ "title": "Team", "members": ids }),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn uid(u: &User) -> UserId {
    UserId(u.id.parse().expect("uuid"))
}

/// Waits (bounded by [`PATIENCE`]) until `cond` holds: counters move just after the sender
/// answered.
async fn eventually(cond: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in {PATIENCE:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lets a collapse window (and a margin) pass, so a push that was going to be sent has been.
async fn settle() {
    tokio::time::sleep(WINDOW * 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_member_is_pushed_once_per_collapse_window_with_the_badge() {
    let (srv, push) = server(false).await;
    let a = srv.login("+15550180001").await;
    let b = srv.login("+15550180002").await;
    register(&srv, &b, "fcm", "fcm-token-b").await;
    let conv = srv.open_direct(&a, &b).await;

    // A burst of three while b is offline: one push, for the newest, badge 3.
    let keys: Vec<String> = (1..=3).map(|i| format!("m{i}")).collect();
    let sends = keys.iter().map(|k| srv.send_text(&conv, &a, k, "secret text"));
    futures::future::join_all(sends).await;
    let got = push.wait_attempts("fcm-token-b", 1).await;
    settle().await;
    assert_eq!(push.attempts_to("fcm-token-b").len(), 1, "collapsed into one push");
    let n = &got[0].notification;
    assert_eq!(n.platform, Platform::Fcm);
    assert_eq!((n.seq, n.badge, n.kind), (3, 3, PushKind::Message));
    assert_eq!(n.conversation_id.to_string(), conv);
    assert_eq!(n.collapse_id, conv);
    assert_eq!(
        (n.title.as_str(), n.body.as_deref()),
        (DEFAULT_TITLE, None),
        "no text by default"
    );
    assert_eq!(
        (n.app_id.as_str(), n.locale.as_deref()),
        ("com.example.chat", Some("en-GB"))
    );
    assert_eq!(n.user_id, uid(&b));
    assert!(
        push.attempts().iter().all(|x| x.notification.user_id != uid(&a)),
        "never the sender"
    );

    // The next window: another push, the badge counting everything unread.
    srv.send_text(&conv, &a, "m4", "more").await;
    let got = push.wait_attempts("fcm-token-b", 2).await;
    assert_eq!((got[1].notification.seq, got[1].notification.badge), (4, 4));
    // b reads up to 3: the badge of the next push is what is left unread.
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{conv}/receipts"),
        &b,
        json!({ "read_seq": 3 }),
    )
    .await;
    srv.send_text(&conv, &a, "m5", "again").await;
    let got = push.wait_attempts("fcm-token-b", 3).await;
    assert_eq!((got[2].notification.seq, got[2].notification.badge), (5, 2));
    eventually(|| srv.gateway.push_stats().delivered == 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_online_member_is_not_pushed_and_previews_are_opt_in() {
    let (srv, push) = server(true).await;
    let a = srv.login("+15550180011").await;
    let b = srv.login("+15550180012").await;
    let c = srv.login("+15550180013").await;
    register(&srv, &b, "apns", "b0b0").await;
    register(&srv, &c, "fcm", "fcm-c").await;
    let g = group(&srv, &a, &[&b, &c]).await;
    // The invitations went out (b and c were offline at the group's creation).
    let inv = push.wait_attempts("fcm-c", 1).await;
    assert_eq!(inv[0].notification.kind, PushKind::Invitation);
    let body = inv[0].notification.body.clone().unwrap_or_default();
    assert!(body.ends_with(" added you"), "{body}");
    push.wait_attempts("b0b0", 1).await;

    let mut ws = srv.ws(&b).await;
    srv.send_text(&g, &a, "hello", "lunch at noon?").await;
    let got = push.wait_attempts("fcm-c", 2).await;
    settle().await;
    assert_eq!(push.attempts_to("b0b0").len(), 1, "b is online: only the invitation");
    let n = &got[1].notification;
    assert_eq!(n.title, "Team", "previews on: the group's title");
    assert!(
        n.body.as_deref().is_some_and(|t| t.ends_with(": lunch at noon?")),
        "{:?}",
        n.body
    );
    ws.event(|f| is_change(f, "message")).await;

    // b goes offline: pushed again.
    drop(ws);
    tokio::time::sleep(Duration::from_millis(200)).await;
    srv.send_text(&g, &a, "hello2", "still there?").await;
    push.wait_attempts("b0b0", 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_muted_conversation_is_not_pushed_until_unmuted() {
    let (srv, push) = server(false).await;
    let a = srv.login("+15550180021").await;
    let b = srv.login("+15550180022").await;
    let c = srv.login("+15550180023").await;
    let g = group(&srv, &a, &[&b, &c]).await;
    settle().await; // the invitations' windows closed before the devices registered
    register(&srv, &b, "fcm", "fcm-b").await;
    register(&srv, &c, "fcm", "fcm-c").await;

    let now = srv.clock.now_ms();
    let (s, v) = srv
        .call(
            Method::PUT,
            &format!("/v1/conversations/{g}/mute"),
            Some(&b.token),
            Some(json!({ "until": now - 1 })),
        )
        .await;
    assert_eq!(
        (s, v["field"].as_str()),
        (StatusCode::BAD_REQUEST, Some("until")),
        "{v}"
    );
    let (s, _) = srv
        .call(
            Method::PUT,
            &format!("/v1/conversations/{g}/mute"),
            Some(&b.token),
            Some(json!({ "until": now + 600_000 })),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    // The mute is per-user conversation state: b's devices see it through sync.
    let sync = srv.get("/v1/sync?since=0", &b).await;
    let muted: Vec<&Value> = sync["page"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["kind"]["type"] == "muted")
        .collect();
    assert_eq!(muted.len(), 1, "{sync}");
    assert_eq!(muted[0]["kind"]["until"], json!(now + 600_000));
    // ... and a device that starts from the conversation list sees it there.
    let list = srv.get("/v1/conversations", &b).await;
    let entry = list
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["conversation"]["id"] == json!(g))
        .expect("the group");
    assert_eq!(
        (&entry["muted"], &entry["muted_until"]),
        (&json!(true), &json!(now + 600_000))
    );
    let list = srv.get("/v1/conversations", &c).await;
    assert_eq!(list[0]["muted"], json!(false), "per user");

    srv.send_text(&g, &a, "m1", "hi").await;
    push.wait_attempts("fcm-c", 1).await;
    settle().await;
    assert!(push.attempts_to("fcm-b").is_empty(), "muted: not pushed");

    // An ended mute pushes again (the engine's clock passes its end).
    srv.clock.advance(600_001);
    srv.send_text(&g, &a, "m2", "hi").await;
    push.wait_attempts("fcm-b", 1).await;

    // Muted until unmuted, then unmuted.
    let (s, _) = srv
        .call(
            Method::PUT,
            &format!("/v1/conversations/{g}/mute"),
            Some(&b.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    settle().await;
    srv.send_text(&g, &a, "m3", "hi").await;
    push.wait_attempts("fcm-c", 3).await;
    settle().await;
    assert_eq!(push.attempts_to("fcm-b").len(), 1);
    let (s, _) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{g}/mute"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    srv.send_text(&g, &a, "m4", "hi").await;
    push.wait_attempts("fcm-b", 2).await;

    // Not a member: as if the conversation did not exist.
    let outsider = srv.login("+15550180024").await;
    let (s, _) = srv
        .call(
            Method::PUT,
            &format!("/v1/conversations/{g}/mute"),
            Some(&outsider.token),
            Some(json!({})),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blocked_sender_pushes_nobody_across_the_block() {
    let (srv, push) = server(false).await;
    let a = srv.login("+15550180031").await;
    let b = srv.login("+15550180032").await;
    let c = srv.login("+15550180033").await;
    let g = group(&srv, &a, &[&b, &c]).await;
    let d = srv.open_direct(&a, &b).await;
    settle().await; // the invitations' windows closed before the devices registered
    register(&srv, &b, "fcm", "fcm-b").await;
    register(&srv, &c, "fcm", "fcm-c").await;
    let (s, _) = srv
        .call(Method::PUT, &format!("/v1/blocks/{}", a.id), Some(&b.token), None)
        .await;
    assert!(s.is_success());

    // Direct: the send is refused, nobody is pushed.
    let (s, _) = srv
        .call(
            Method::POST,
            &format!("/v1/conversations/{d}/messages"),
            Some(&a.token),
            Some(json!({ "client_msg_id": "d1", "content": { "type": "text", "text": "hi" } })),
        )
        .await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    // Group: the message reaches every member, but b (who blocked a) gets no push.
    srv.send_text(&g, &a, "g1", "hi all").await;
    push.wait_attempts("fcm-c", 1).await;
    settle().await;
    assert!(push.attempts_to("fcm-b").is_empty(), "no push across a block");
    // b's own message in the group pushes c, not b.
    srv.send_text(&g, &b, "g2", "hello").await;
    push.wait_attempts("fcm-c", 2).await;
    settle().await;
    assert!(push.attempts_to("fcm-b").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_token_is_removed_and_a_503_then_200_delivers_once() {
    let (srv, push) = server(false).await;
    let a = srv.login("+15550180041").await;
    let b = srv.login("+15550180042").await;
    let c = srv.login("+15550180043").await;
    register(&srv, &b, "apns", "dead0001").await;
    register(&srv, &c, "fcm", "fcm-flaky").await;
    let (db, dc) = (srv.open_direct(&a, &b).await, srv.open_direct(&a, &c).await);

    push.fail_next("dead0001", vec![PushError::Unregistered]);
    push.fail_next(
        "fcm-flaky",
        vec![PushError::Retry {
            retry_after: Some(Duration::from_millis(300)),
            reason: "503".into(),
        }],
    );
    srv.send_text(&db, &a, "b1", "x").await;
    srv.send_text(&dc, &a, "c1", "x").await;

    let got = push.wait_attempts("fcm-flaky", 2).await;
    assert!(got[0].result.is_err() && got[1].result.is_ok());
    push.wait_attempts("dead0001", 1).await;
    settle().await;
    assert_eq!(push.delivered_to("fcm-flaky").len(), 1, "delivered once");
    assert_eq!(push.attempts_to("fcm-flaky").len(), 2, "one retry, then done");

    // The invalid token is gone: the next message does not try it.
    // The removal follows the attempt: wait for it (bounded).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !srv
        .store
        .push_devices(uid(&b), srv.clock.now_ms())
        .await
        .expect("devices")
        .is_empty()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the invalid token was not removed"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.send_text(&db, &a, "b2", "x").await;
    settle().await;
    assert_eq!(push.attempts_to("dead0001").len(), 1);
    eventually(|| {
        let stats = srv.gateway.push_stats();
        (stats.tokens_removed, stats.retried, stats.delivered) == (1, 1, 1)
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn registration_is_validated_replaced_on_rotation_and_ends_with_the_session() {
    let (srv, _push) = server(false).await;
    let b = srv.login("+15550180052").await;
    let cases = [
        (
            json!({ "platform": "apns", "token": "not-hex", "app_id": "x" }),
            "token",
        ),
        (json!({ "platform": "fcm", "token": "", "app_id": "x" }), "token"),
        (
            json!({ "platform": "fcm", "token": "has space", "app_id": "x" }),
            "token",
        ),
        (json!({ "platform": "fcm", "token": "t", "app_id": "" }), "app_id"),
        (
            json!({ "platform": "fcm", "token": "t", "app_id": "x", "locale": "fr CA" }),
            "locale",
        ),
    ];
    for (body, field) in cases {
        let (s, v) = srv
            .call(Method::PUT, "/v1/push/device", Some(&b.token), Some(body.clone()))
            .await;
        assert_eq!(
            (s, v["field"].as_str()),
            (StatusCode::BAD_REQUEST, Some(field)),
            "{body}: {v}"
        );
    }
    let (s, v) = srv
        .call(
            Method::PUT,
            "/v1/push/device",
            Some(&b.token),
            Some(json!({ "platform": "webpush", "token": "t", "app_id": "x" })),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    let now = srv.clock.now_ms();
    assert!(srv.store.push_devices(uid(&b), now).await.expect("devices").is_empty());

    register(&srv, &b, "fcm", "first").await;
    register(&srv, &b, "fcm", "rotated").await;
    let devices = srv.store.push_devices(uid(&b), now).await.expect("devices");
    assert_eq!(devices.len(), 1, "one per session");
    assert_eq!(devices[0].token, "rotated");
    // A second login (another device) has its own.
    let b2 = srv.login("+15550180052").await;
    register(&srv, &b2, "apns", "abcd").await;
    assert_eq!(srv.store.push_devices(uid(&b), now).await.expect("devices").len(), 2);

    let (s, _) = srv.call(Method::DELETE, "/v1/push/device", Some(&b2.token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert_eq!(srv.store.push_devices(uid(&b), now).await.expect("devices").len(), 1);
    register(&srv, &b2, "apns", "abcd").await;

    // Logout ends the session and its registration; the other session keeps its own.
    let (s, _) = srv.call(Method::POST, "/v1/auth/logout", Some(&b.token), None).await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let left = srv.store.push_devices(uid(&b), now).await.expect("devices");
    assert_eq!(left.iter().map(|d| d.token.as_str()).collect::<Vec<_>>(), vec!["abcd"]);
    let (s, _) = srv
        .call(Method::POST, "/v1/auth/logout-everywhere", Some(&b2.token), None)
        .await;
    assert!(s.is_success(), "{s}");
    assert!(srv.store.push_devices(uid(&b), now).await.expect("devices").is_empty());
    let (s, _) = srv.call(Method::PUT, "/v1/push/device", None, Some(json!({}))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mention_is_pushed_through_a_mute_as_a_mention() {
    let (srv, push) = server(false).await;
    let a = srv.login("+15550180081").await;
    let b = srv.login("+15550180082").await;
    let c = srv.login("+15550180083").await;
    let g = group(&srv, &a, &[&b, &c]).await;
    settle().await; // the invitations' windows closed before the devices registered
    register(&srv, &b, "fcm", "fcm-b").await;
    register(&srv, &c, "fcm", "fcm-c").await;
    for u in [&b, &c] {
        let (s, _) = srv
            .call(
                Method::PUT,
                &format!("/v1/conversations/{g}/mute"),
                Some(&u.token),
                Some(json!({})),
            )
            .await;
        assert_eq!(s, StatusCode::NO_CONTENT);
    }
    // Both muted: a plain message pushes nobody.
    srv.send_text(&g, &a, "plain", "hi").await;
    settle().await;
    assert!(push.attempts().is_empty(), "muted: nobody pushed");
    // A mention of b goes through b's mute (kind `mention`); c stays silent.
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{g}/messages"),
        &a,
        json!({ "client_msg_id": "m1", "content": { "type": "text", "text": "@B look",
                "mentions": [{ "user_id": b.id, "start": 0, "end": 2 }] } }),
    )
    .await;
    let got = push.wait_attempts("fcm-b", 1).await;
    assert_eq!(
        (got[0].notification.kind, got[0].notification.seq),
        (PushKind::Mention, 3)
    );
    settle().await;
    assert!(push.attempts_to("fcm-c").is_empty(), "c was not mentioned");
}

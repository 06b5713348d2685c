//! The native client's push calls against a gateway that pushes through a recording sender:
//! token registration, mute and unmute (reaching the local view through sync), and reading a
//! delivered push's APNs and FCM payloads back into the conversation and seq to open.

use std::sync::Arc;
use std::time::Duration;

use chatico_core::ErrorCode;
use chatico_transport::client::{PushKind, PushPlatform, parse_push_payload};
use chatico_transport::gateway::PushConfig;
use chatico_transport::push::{ApnsSender, FcmSender};

use crate::common::*;

#[tokio::test]
async fn a_client_registers_mutes_and_opens_what_a_push_points_to() {
    let push = Arc::new(chatico_test_support::RecordingPush::default());
    let server = TestServer(
        chatico_test_support::TestServer::builder()
            .system_clock()
            .push(
                push.clone(),
                PushConfig {
                    collapse_window: Duration::from_millis(200),
                    ..PushConfig::default()
                },
            )
            .start()
            .await,
    );
    let alice = login(&server, &server.url(), "+15550180101", "Alice").await;
    let bob = login(&server, &server.url(), "+15550180102", "Bob").await;
    let bad = bob
        .register_push(PushPlatform::Apns, "zz-not-hex", "com.example.chat", None)
        .await
        .expect_err("an APNs token is hex");
    assert_eq!(bad.code(), ErrorCode::InvalidInput);
    bob.register_push(PushPlatform::Fcm, "fcm-bob", "com.example.chat", Some("en-GB"))
        .await
        .expect("register");
    let conv = alice.open_direct(bob.user_id().expect("bob")).await.expect("direct").id;
    alice.connect().await.expect("connect");
    alice.send_text(conv, "hello");

    let got = push.wait_attempts("fcm-bob", 1).await;
    let n = &got[0].notification;
    // What FCM would hand the app (`data`), and what APNs would (`userInfo`).
    let fcm = FcmSender::message(n)["message"]["data"].to_string();
    let apns = ApnsSender::payload(n).to_string();
    for payload in [fcm, apns] {
        let t = parse_push_payload(&payload).expect("a ChatiCO push");
        assert_eq!(
            (t.conversation_id, t.seq, t.kind),
            (conv, 1, PushKind::Message),
            "{payload}"
        );
    }

    // Muting reaches the user's devices through sync, and unmuting too.
    bob.mute(conv, None).await.expect("mute");
    bob.connect().await.expect("connect");
    eventually("bob's view is muted", || {
        bob.conversation(conv).is_some_and(|c| c.muted)
    })
    .await;
    bob.unmute(conv).await.expect("unmute");
    eventually("bob's view is unmuted", || {
        bob.conversation(conv).is_some_and(|c| !c.muted)
    })
    .await;
    bob.unregister_push().await.expect("unregister");
    bob.unregister_push().await.expect("unregistering twice is fine");
}

//! Login, messaging, receipts, typing, offline sends, resume and token refresh.

use std::collections::HashMap;

use chatico_core::client::ViewUpdate;
use chatico_core::ids::ConversationId;
use chatico_core::model::{Content, Message};
use chatico_core::sync::{ChangeKind, Event};
use chatico_transport::client::{Client, ClientEvent, ConnectionState, Session};

use crate::common::*;

async fn connected(c: &Client) {
    let mut w = c.watch_connection();
    tokio::time::timeout(PATIENCE, w.wait_for(|s| *s == ConnectionState::Connected))
        .await
        .expect("timed out connecting")
        .expect("watch");
}

fn text_of(m: &Message) -> String {
    match &m.content {
        Some(Content::Text { text, .. }) => text.clone(),
        other => format!("{other:?}"),
    }
}

/// Messages of `conv` received as change events so far, by seq (duplicates counted).
/// Collects this conversation's reported messages until `n` have been reported (or PATIENCE
/// passes), then once more after the longest the machine holds a message back (a checkpoint
/// delay), so a late duplicate is seen too. The local view may show a message before it is
/// reported: the machine applies a live message to the view at once but reports it only in
/// `seq` order, which can wait for the next checkpoint.
async fn collect_reported(
    rx: &mut tokio::sync::broadcast::Receiver<ClientEvent>,
    conv: ConversationId,
    n: usize,
) -> Vec<Message> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while got.len() < n && tokio::time::Instant::now() < deadline {
        collect(rx, conv, &mut got);
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    collect(rx, conv, &mut got);
    got
}

fn collect(rx: &mut tokio::sync::broadcast::Receiver<ClientEvent>, conv: ConversationId, into: &mut Vec<Message>) {
    while let Ok(e) = rx.try_recv() {
        if let ClientEvent::Change(c) = e
            && let ChangeKind::Message { message } = c.kind
            && message.conversation_id == conv
        {
            into.push(message);
        }
    }
}

#[tokio::test]
async fn two_clients_chat_with_receipts_typing_and_a_local_view() {
    let server = TestServer::start().await;
    let alice = login(&server, &server.url(), "+15550000001", "Alice").await;
    let bob = login(&server, &server.url(), "+15550000002", "Bob").await;
    let bob_id = bob.user_id().expect("bob id");
    let alice_id = alice.user_id().expect("alice id");

    let mut a_events = alice.events();
    let mut b_events = bob.events();
    alice.connect().await.expect("connect");
    bob.connect().await.expect("connect");
    connected(&alice).await;
    connected(&bob).await;

    let conv = alice.open_direct(bob_id).await.expect("open direct").id;
    // Bob learns about the conversation from its changes and loads it.
    wait_for(&mut b_events, |e| match e {
        ClientEvent::View(ViewUpdate::Conversation { conversation_id }) if *conversation_id == conv => Some(()),
        _ => None,
    })
    .await;

    let pending: Vec<_> = (1..=5).map(|i| alice.send_text(conv, format!("hello {i}"))).collect();
    assert_eq!(alice.pending().len(), 5, "queued in the outbox first");
    // Alice gets an acknowledgement per message, with the original client_msg_id.
    let mut acked = HashMap::new();
    while acked.len() < 5 {
        let (id, m) = wait_for(&mut a_events, |e| match e {
            ClientEvent::Sent { client_msg_id, message } => Some((client_msg_id.clone(), message.clone())),
            _ => None,
        })
        .await;
        acked.insert(id, m);
    }
    for (i, p) in pending.iter().enumerate() {
        let m = &acked[&p.client_msg_id];
        assert_eq!(m.seq, i as i64 + 1, "seq follows the send order");
        assert_eq!(text_of(m), format!("hello {}", i + 1));
    }
    assert!(alice.pending().is_empty());

    // Bob receives each exactly once, in seq order.
    eventually("bob has 5 messages in his view", || bob.messages(conv).len() == 5).await;
    let got = collect_reported(&mut b_events, conv, 5).await;
    let seqs: Vec<i64> = got.iter().map(|m| m.seq).collect();
    assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    let view = bob.conversation(conv).expect("bob's view");
    assert_eq!(view.unread(), 5);
    assert_eq!(bob.total_unread(), 5);
    assert_eq!(view.last_message.as_ref().map(text_of), Some("hello 5".into()));

    // Bob's client acknowledged delivery by itself; reading moves the read watermark and
    // Alice sees both as receipts.
    eventually("bob's client acknowledged delivery of all 5", || {
        bob.conversation(conv).is_some_and(|c| c.delivered_seq == 5)
    })
    .await;
    let (delivered, read) = bob.mark_read(conv, 3).await.expect("mark read");
    assert_eq!((delivered, read), (5, 3));
    wait_for(&mut a_events, |e| match e {
        ClientEvent::Change(c) => match &c.kind {
            ChangeKind::Receipt {
                user_id,
                read_seq: 3,
                delivered_seq: 5,
            } if *user_id == bob_id => Some(()),
            _ => None,
        },
        _ => None,
    })
    .await;
    eventually("alice's view shows bob's receipt", || {
        alice
            .conversation(conv)
            .and_then(|c| c.members.iter().find(|m| m.user_id == bob_id).map(|m| m.read_seq))
            == Some(3)
    })
    .await;
    assert_eq!(bob.conversation(conv).map(|c| c.unread()), Some(2));

    // Typing reaches the other side as an ephemeral event and in the view.
    bob.set_typing(conv, true).await.expect("typing");
    wait_for(&mut a_events, |e| match e {
        ClientEvent::Ephemeral(Event::Typing {
            user_id, typing: true, ..
        }) if *user_id == bob_id => Some(()),
        _ => None,
    })
    .await;
    let now = chatico_core::ports::Clock::now_ms(&chatico_core::ports::SystemClock);
    assert_eq!(alice.conversation(conv).map(|c| c.typing_at(now)), Some(vec![bob_id]));
    // A message from the typist clears the indicator.
    bob.send_text(conv, "done typing");
    eventually("alice sees bob's message and no typing", || {
        alice.messages(conv).len() == 6 && alice.conversation(conv).is_some_and(|c| c.typing.is_empty())
    })
    .await;

    // Presence: both online.
    eventually("alice sees bob online", || {
        alice.presence(bob_id).is_some_and(|p| p.online)
    })
    .await;
    let _ = alice_id;
    alice.disconnect().await;
    bob.disconnect().await;
}

#[tokio::test]
async fn messages_sent_offline_are_delivered_once_and_missed_ones_resume() {
    let server = TestServer::start().await;
    let alice = login(&server, &server.url(), "+15550000011", "Alice").await;
    let bob = login(&server, &server.url(), "+15550000012", "Bob").await;
    let bob_id = bob.user_id().expect("bob id");
    let conv = alice.open_direct(bob_id).await.expect("open").id;

    let mut b_events = bob.events();
    let mut a_events = alice.events();
    alice.connect().await.expect("connect");
    bob.connect().await.expect("connect");
    connected(&alice).await;
    connected(&bob).await;
    eventually("bob has loaded the conversation", || bob.conversation(conv).is_some()).await;

    alice.send_text(conv, "before");
    eventually("bob got 'before'", || bob.messages(conv).len() == 1).await;

    // Bob goes offline. Alice keeps writing; Bob writes too (queued in his outbox).
    bob.disconnect().await;
    assert_eq!(bob.connection_state(), ConnectionState::Disconnected);
    for i in 0..3 {
        alice.send_text(conv, format!("while away {i}"));
    }
    let offline: Vec<_> = (0..2).map(|i| bob.send_text(conv, format!("offline {i}"))).collect();
    assert_eq!(bob.pending().len(), 2);
    eventually("alice's sends are acknowledged", || alice.pending().is_empty()).await;
    let state_before = bob.export_state().expect("state");
    assert!(
        state_before.contains(&offline[0].client_msg_id),
        "the outbox is part of the state"
    );

    // Bob reconnects: he resumes from his cursor and his outbox goes out with its ids.
    bob.connect().await.expect("reconnect");
    eventually("bob's outbox drained", || bob.pending().is_empty()).await;
    eventually("bob has all 6 messages", || bob.messages(conv).len() == 6).await;
    eventually("alice has all 6 messages", || alice.messages(conv).len() == 6).await;

    let got = collect_reported(&mut b_events, conv, 6).await;
    let mut seqs: Vec<i64> = got.iter().map(|m| m.seq).collect();
    let n = seqs.len();
    seqs.dedup();
    assert_eq!(seqs.len(), n, "no message reported twice to bob: {seqs:?}");
    assert_eq!(seqs, vec![1, 2, 3, 4, 5, 6], "bob sees every message once, in order");
    let bob_texts: Vec<String> = bob.messages(conv).iter().map(text_of).collect();
    assert_eq!(
        bob_texts,
        vec![
            "before",
            "while away 0",
            "while away 1",
            "while away 2",
            "offline 0",
            "offline 1"
        ]
    );
    let a_got = collect_reported(&mut a_events, conv, 6).await;
    let a_seqs: Vec<i64> = a_got.iter().map(|m| m.seq).collect();
    assert_eq!(a_seqs, vec![1, 2, 3, 4, 5, 6], "alice sees every message once");
    for p in &offline {
        let ids: Vec<_> = alice.messages(conv).iter().map(|m| m.client_msg_id.clone()).collect();
        assert!(ids.contains(&p.client_msg_id), "sent with its original client_msg_id");
    }
    alice.disconnect().await;
    bob.disconnect().await;
}

#[tokio::test]
async fn expired_or_refused_access_tokens_are_refreshed_and_a_dead_session_logs_out() {
    let server = TestServer::start().await;
    let alice = login(&server, &server.url(), "+15550000021", "Alice").await;
    let session = alice.session().await.expect("session");

    // A client restored with an access token that looks expired refreshes before calling.
    let c1 = Client::new(client_config(server.url())).expect("client");
    let mut ev = c1.events();
    c1.restore_session(Session {
        access_expires_at: 0,
        ..session.clone()
    })
    .await;
    let me = c1.me().await.expect("me after a proactive refresh");
    assert_eq!(me.id, session.user_id);
    let refreshed = wait_for(&mut ev, |e| match e {
        ClientEvent::SessionRefreshed(s) => Some(s.clone()),
        _ => None,
    })
    .await;
    assert_ne!(refreshed.refresh_token, session.refresh_token, "refresh tokens rotate");

    // A token the server refuses (here: garbage that still looks valid) is refreshed on 401.
    let c2 = Client::new(client_config(server.url())).expect("client");
    c2.restore_session(Session {
        access_token: "not-a-jwt".into(),
        access_expires_at: i64::MAX,
        ..refreshed.clone()
    })
    .await;
    assert_eq!(c2.me().await.expect("me after a reactive refresh").id, session.user_id);
    // The WebSocket connects with the refreshed token.
    c2.connect().await.expect("connect");
    connected(&c2).await;
    c2.disconnect().await;

    // The first refresh token was used: reusing it is refused and ends the session.
    let c3 = Client::new(client_config(server.url())).expect("client");
    let mut ev3 = c3.events();
    c3.restore_session(Session {
        access_token: "not-a-jwt".into(),
        ..session.clone()
    })
    .await;
    let err = c3.me().await.expect_err("refused");
    assert_eq!(err.code(), chatico_core::ErrorCode::Unauthorized);
    wait_for(&mut ev3, |e| matches!(e, ClientEvent::SessionExpired).then_some(())).await;
    assert!(c3.session().await.is_none());
}

//! The native client's mentions and pins against a real gateway: a mention sent by one
//! client reaches another's local view (the message's mentions, the unread-mention count,
//! cleared by reading); a pin from one device reaches the user's other device live and
//! orders its list; the server's refusals arrive as typed errors.

use chatico_core::ErrorCode;
use chatico_core::model::{Content, Mention};

use crate::common::*;

#[tokio::test]
async fn a_mention_and_a_pin_reach_the_local_views() {
    let server = TestServer(chatico_test_support::TestServer::builder().system_clock().start().await);
    let alice = login(&server, &server.url(), "+15550180201", "Alice").await;
    let bob = login(&server, &server.url(), "+15550180202", "Bob").await;
    let bob2 = login(&server, &server.url(), "+15550180202", "Bob").await;
    let carol = login(&server, &server.url(), "+15550180203", "Carol").await;
    let b = bob.user_id().expect("bob");
    let g = alice.create_group("Trip", vec![b], None).await.expect("group").id;
    for c in [&alice, &bob, &bob2] {
        c.connect().await.expect("connect");
    }
    eventually("bob's view has the group", || bob.conversation(g).is_some()).await;

    // "😀 @Bob": the mention is 3..7 in UTF-16 code units.
    let text = "😀 @Bob";
    let start = text.encode_utf16().position(|u| u == u16::from(b'@')).expect("@") as u32;
    alice.send_text_with_mentions(
        g,
        text,
        vec![Mention {
            user_id: b,
            start,
            end: start + 4,
        }],
    );
    eventually("bob's unread mention", || {
        bob.conversation(g).is_some_and(|c| c.unread_mentions() == 1)
    })
    .await;
    let msg = bob
        .conversation(g)
        .and_then(|c| c.last_message.clone())
        .expect("last message");
    assert!(matches!(&msg.content, Some(Content::Text { mentions, .. }) if mentions[0].start == 3));
    assert_eq!(alice.conversation(g).map(|c| c.unread_mentions()), Some(0));
    bob.mark_read(g, msg.seq).await.expect("read");
    eventually("read", || bob.conversation(g).is_some_and(|c| c.unread_mentions() == 0)).await;

    // Pins: bob's other device follows live; the list puts the pinned group first.
    let d = bob
        .open_direct(alice.user_id().expect("alice"))
        .await
        .expect("direct")
        .id;
    bob.send_text(d, "newer");
    eventually("the direct chat first on bob2", || {
        bob2.conversations(false)
            .first()
            .is_some_and(|c| c.conversation.id == d)
    })
    .await;
    let pin = bob.pin(g).await.expect("pin");
    assert_eq!(pin.conversation_id, g);
    eventually("the pin on bob2", || {
        bob2.conversations(false)
            .first()
            .is_some_and(|c| c.conversation.id == g && c.pinned_at == Some(pin.pinned_at))
    })
    .await;
    assert!(alice.conversation(g).is_some_and(|c| !c.pinned()), "pins are per user");
    let err = carol.pin(g).await.expect_err("not a member");
    assert_eq!(err.code(), ErrorCode::NotFound);
    bob.unpin(g).await.expect("unpin");
    eventually("unpinned on bob2", || {
        bob2.conversations(false)
            .first()
            .is_some_and(|c| c.conversation.id == d)
    })
    .await;
}

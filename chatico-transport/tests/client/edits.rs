//! The native client's edit and reaction calls: the other member's local view (driven by
//! the client machine) shows the latest text with its edit time and the reactions with who
//! reacted; refusals come back as typed errors.

use chatico_core::ErrorCode;

use crate::common::*;

#[tokio::test]
async fn edits_and_reactions_reach_the_other_members_view() {
    let server = TestServer::start().await;
    let alice = login(&server, &server.url(), "+15550190101", "Alice").await;
    let bob = login(&server, &server.url(), "+15550190102", "Bob").await;
    let conv = alice.open_direct(bob.user_id().expect("bob")).await.expect("direct").id;
    let alice_id = alice.user_id().expect("alice");
    let bob_id = bob.user_id().expect("bob");
    alice.connect().await.expect("connect");
    bob.connect().await.expect("connect");
    alice.send_text(conv, "helo");
    eventually("bob has the message", || bob.messages(conv).iter().any(|m| m.seq == 1)).await;

    let edited = alice.edit_message(conv, 1, "hello").await.expect("edit");
    assert!(edited.edited_at.is_some());
    eventually("bob's view shows the edit", || {
        bob.messages(conv).iter().any(|m| {
            m.seq == 1
                && m.edited_at == edited.edited_at
                && matches!(&m.content, Some(chatico_core::model::Content::Text { text, .. }) if text == "hello")
        })
    })
    .await;

    let m = bob.react(conv, 1, "👍").await.expect("react");
    assert_eq!(m.reactions[0].users, vec![bob_id]);
    alice.react(conv, 1, "👍").await.expect("react");
    eventually("both reactions in alice's view", || {
        alice.messages(conv).iter().any(|m| {
            m.seq == 1
                && m.reactions
                    .first()
                    .is_some_and(|r| r.count == 2 && r.users == vec![bob_id, alice_id])
        })
    })
    .await;
    bob.unreact(conv, 1, "👍").await.expect("unreact");
    eventually("bob's reaction left alice's view", || {
        alice
            .messages(conv)
            .iter()
            .any(|m| m.seq == 1 && m.reactions.first().is_some_and(|r| r.users == vec![alice_id]))
    })
    .await;

    // Typed refusals.
    let e = bob.edit_message(conv, 1, "not mine").await.expect_err("not the sender");
    assert_eq!(e.code(), ErrorCode::Forbidden);
    let e = bob.react(conv, 1, "nope").await.expect_err("not an emoji");
    assert_eq!(e.code(), ErrorCode::InvalidInput);
}

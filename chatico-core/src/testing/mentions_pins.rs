//! Conformance: unread mentions in the conversation list, and pinned conversations.

use crate::ErrorCode;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::model::{Content, ConversationSummary, Mention, Message, NewMessage};
use crate::ports::Store;
use crate::sync::ChangeKind;

use super::fixtures::{Fx, T0};

/// A text mentioning `users` (one range each, in order).
fn mentioning(fx: &Fx<'_>, conversation: ConversationId, sender: UserId, users: &[UserId]) -> NewMessage {
    let at = fx.tick();
    let mut text = String::from("hi");
    let mut mentions = Vec::new();
    for u in users {
        text.push(' ');
        let start = text.encode_utf16().count() as u32;
        text.push_str("@someone");
        mentions.push(Mention {
            user_id: *u,
            start,
            end: text.encode_utf16().count() as u32,
        });
    }
    NewMessage {
        id: MessageId::new(at),
        conversation_id: conversation,
        sender_id: sender,
        client_msg_id: format!("mention-{:016x}", rand::random::<u64>()),
        content: Content::Text { text, mentions },
        reply_to_seq: None,
        created_at: at,
    }
}

async fn send_mentioning(fx: &Fx<'_>, conversation: ConversationId, sender: UserId, users: &[UserId]) -> Message {
    let new = mentioning(fx, conversation, sender, users);
    let (m, change) = fx.store.insert_message(&new).await.expect("insert");
    assert!(change.is_some(), "inserted");
    assert_eq!(
        m.content.as_ref(),
        Some(&new.content),
        "mentions are stored with the text"
    );
    m
}

async fn summary(store: &dyn Store, user: UserId, conversation: ConversationId) -> ConversationSummary {
    store
        .list_conversations(user, false, 50)
        .await
        .expect("list")
        .into_iter()
        .find(|s| s.conversation.id == conversation)
        .expect("listed")
}

/// Mentions are stored in the message's content (history, `get_message` and sync read them
/// back); `unread_mentions` counts the messages above the user's `read_seq` that mention
/// them (a message mentioning them twice counts once), and drops as they read, when a
/// message is deleted for everyone or hidden by them.
pub async fn unread_mentions_follow_reads_deletes_and_hides(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, b) = (fx.user("o").await, fx.user("a").await, fx.user("b").await);
    let g = fx.group(&owner, &[&a, &b]).await;
    let other = fx.group(&owner, &[&a]).await;
    let m1 = send_mentioning(&fx, g.id, owner.id, &[a.id]).await;
    fx.send(g.id, owner.id).await;
    let m3 = send_mentioning(&fx, g.id, b.id, &[a.id, owner.id, a.id]).await;
    let m4 = send_mentioning(&fx, g.id, owner.id, &[a.id, b.id]).await;
    send_mentioning(&fx, other.id, owner.id, &[a.id]).await;

    assert_eq!(summary(store, a.id, g.id).await.unread_mentions, 3);
    assert_eq!(summary(store, a.id, other.id).await.unread_mentions, 1);
    assert_eq!(
        summary(store, b.id, g.id).await.unread_mentions,
        1,
        "b's own message moved b's read_seq past nothing b was mentioned in before"
    );
    assert_eq!(
        summary(store, owner.id, g.id).await.unread_mentions,
        0,
        "owner's later message moved their read_seq past m3"
    );
    let got = store.get_message(g.id, m3.seq).await.expect("get").expect("m3");
    assert_eq!(got.content, m3.content);
    let synced = fx.sync_all(a.id, 0, 100).await;
    assert!(synced.iter().any(|c| matches!(&c.kind,
        ChangeKind::Message { message } if message.seq == m4.seq && message.content == m4.content)));

    store
        .update_receipts(g.id, a.id, None, Some(m1.seq))
        .await
        .expect("read m1");
    assert_eq!(summary(store, a.id, g.id).await.unread_mentions, 2, "read up to m1");
    store
        .delete_message_for_everyone(g.id, m3.seq, T0 + 99)
        .await
        .expect("delete m3");
    assert_eq!(summary(store, a.id, g.id).await.unread_mentions, 1, "deleted m3");
    store.hide_message(a.id, g.id, m4.seq).await.expect("hide m4");
    assert_eq!(summary(store, a.id, g.id).await.unread_mentions, 0, "hid m4");
    assert_eq!(summary(store, b.id, g.id).await.unread_mentions, 1, "hidden for a only");
    store
        .update_receipts(g.id, b.id, None, Some(m4.seq))
        .await
        .expect("b reads");
    assert_eq!(summary(store, b.id, g.id).await.unread_mentions, 0);
    let later = send_mentioning(&fx, g.id, owner.id, &[a.id]).await;
    assert_eq!(summary(store, a.id, g.id).await.unread_mentions, 1);
    store
        .update_receipts(g.id, a.id, None, Some(later.seq))
        .await
        .expect("read all");
    assert_eq!(summary(store, a.id, g.id).await.unread_mentions, 0);
}

/// `set_pin` records `Pinned` (targeted) when the state changes and nothing otherwise (a
/// second pin keeps the first time); the bound is `TooLarge("pins")` and writes nothing; a
/// non-member is `NotFound`; the list shows pinned conversations first, newest pin first;
/// leaving drops the pin.
pub async fn pins_are_bounded_targeted_and_listed_first(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, outsider) = (fx.user("o").await, fx.user("a").await, fx.user("x").await);
    let mut convs = Vec::new();
    for _ in 0..4 {
        convs.push(fx.group(&owner, &[&a]).await);
    }
    // Activity: the newest conversation is convs[3]; make convs[0] the most active.
    fx.send(convs[0].id, owner.id).await;
    let start = fx.latest_pos().await;
    let audience = [owner.id, a.id];

    let (at, c) = fx
        .checked(&audience, store.set_pin(convs[2].id, a.id, true, T0 + 10, 3))
        .await;
    assert_eq!(at, Some(T0 + 10));
    assert!(c.is_some());
    let (at, c) = fx
        .checked(&audience, store.set_pin(convs[2].id, a.id, true, T0 + 20, 3))
        .await;
    assert_eq!((at, c), (Some(T0 + 10), None), "pinning again keeps the first time");
    fx.checked(&audience, store.set_pin(convs[1].id, a.id, true, T0 + 11, 3))
        .await
        .1
        .expect("pin 1");
    fx.checked(&audience, store.set_pin(convs[3].id, a.id, true, T0 + 12, 3))
        .await
        .1
        .expect("pin 3");
    let before = fx.latest_pos().await;
    let err = store
        .set_pin(convs[0].id, a.id, true, T0 + 13, 3)
        .await
        .expect_err("over the bound");
    assert_eq!(err.code(), ErrorCode::TooLarge);
    assert_eq!(err, crate::Error::too_large("pins", 3));
    assert_eq!(fx.latest_pos().await, before, "nothing recorded");

    let order: Vec<ConversationId> = store
        .list_conversations(a.id, false, 10)
        .await
        .expect("list")
        .iter()
        .map(|s| s.conversation.id)
        .collect();
    assert_eq!(order, vec![convs[3].id, convs[1].id, convs[2].id, convs[0].id]);
    let first = summary(store, a.id, convs[3].id).await;
    assert_eq!((first.pinned, first.pinned_at), (true, Some(T0 + 12)));
    let unpinned = summary(store, a.id, convs[0].id).await;
    assert_eq!((unpinned.pinned, unpinned.pinned_at), (false, None));
    let top: Vec<ConversationId> = store
        .list_conversations(a.id, false, 2)
        .await
        .expect("list")
        .iter()
        .map(|s| s.conversation.id)
        .collect();
    assert_eq!(
        top,
        vec![convs[3].id, convs[1].id],
        "pins come first within the limit too"
    );
    let owner_order: Vec<ConversationId> = store
        .list_conversations(owner.id, false, 10)
        .await
        .expect("list")
        .iter()
        .map(|s| s.conversation.id)
        .collect();
    assert_eq!(
        owner_order[0], convs[0].id,
        "another user's pins change nothing for them"
    );

    let (at, c) = fx
        .checked(&audience, store.set_pin(convs[1].id, a.id, false, T0 + 14, 3))
        .await;
    assert_eq!(at, None);
    assert!(c.is_some());
    let (_, c) = fx
        .checked(&audience, store.set_pin(convs[1].id, a.id, false, T0 + 15, 3))
        .await;
    assert_eq!(c, None, "unpinning twice records nothing");
    fx.checked(&audience, store.set_pin(convs[0].id, a.id, true, T0 + 16, 3))
        .await
        .1
        .expect("room again");

    let err = store
        .set_pin(convs[0].id, outsider.id, true, T0, 3)
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), ErrorCode::NotFound);

    let kinds: Vec<ChangeKind> = fx.sync_all(a.id, start, 10).await.into_iter().map(|c| c.kind).collect();
    let pin = |at| ChangeKind::Pinned {
        pinned: true,
        at: Some(at),
    };
    assert_eq!(
        kinds,
        vec![
            pin(T0 + 10),
            pin(T0 + 11),
            pin(T0 + 12),
            ChangeKind::Pinned {
                pinned: false,
                at: None
            },
            pin(T0 + 16),
        ]
    );
    assert!(
        fx.sync_all(owner.id, start, 10).await.is_empty(),
        "targeted at the user only"
    );

    store.remove_member(convs[2].id, a.id, a.id).await.expect("a leaves");
    fx.checked(&audience, store.set_pin(convs[1].id, a.id, true, T0 + 17, 3))
        .await
        .1
        .expect("leaving freed a pin");
}

//! Conformance: edits and reactions.

use futures::future::join_all;

use crate::ErrorCode;
use crate::model::{Content, MediaRef, Message};
use crate::ports::{Store, StoredReaction};
use crate::sync::ChangeKind;

use super::fixtures::{Fx, text};

/// An edit rewrites the content in place: the seq stays, `edited_at` is set, every read
/// shows the latest content (get, history, the conversation list, and the `message` change
/// in sync), and `MessageEdited` is recorded for the members, resolved at read time (an
/// older edit change reads as the content now; as `None` once deleted). Editing to the same
/// content records nothing; a deleted message is `Conflict`, a missing one `NotFound`.
pub async fn edit_message_rewrites_content_in_place(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    let sent = fx.send_n(conv.id, a.id, 3).await;
    let t1 = fx.tick();
    let (edited, change) = fx
        .checked(&[a.id, b.id], store.edit_message(conv.id, 2, &text("edited"), t1))
        .await;
    let expected = Message {
        content: Some(text("edited")),
        edited_at: Some(t1),
        ..sent[1].clone()
    };
    assert_eq!(edited, expected);
    assert_eq!(
        change.map(|c| c.kind),
        Some(ChangeKind::MessageEdited {
            seq: 2,
            content: Some(text("edited")),
            edited_at: t1,
        })
    );
    assert_eq!(
        store.get_message(conv.id, 2).await.expect("get"),
        Some(expected.clone())
    );
    assert_eq!(
        fx.full_history(conv.id, b.id).await,
        vec![sent[0].clone(), expected.clone(), sent[2].clone()]
    );

    let (same, change) = fx
        .checked(
            &[a.id, b.id],
            store.edit_message(conv.id, 2, &text("edited"), fx.tick()),
        )
        .await;
    assert_eq!(same, expected, "the same content again changes nothing");
    assert_eq!(change, None);

    let t2 = fx.tick();
    fx.checked(&[a.id, b.id], store.edit_message(conv.id, 2, &text("v3"), t2))
        .await;
    let changes = fx.sync_all(b.id, 0, 4).await;
    let edits: Vec<(Option<Content>, i64)> = changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::MessageEdited {
                seq: 2,
                content,
                edited_at,
            } => Some((content.clone(), *edited_at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        edits,
        vec![(Some(text("v3")), t1), (Some(text("v3")), t2)],
        "edit changes resolve to the content now"
    );
    let resolved: Vec<&Message> = changes
        .iter()
        .filter_map(|c| match &c.kind {
            ChangeKind::Message { message } if message.seq == 2 => Some(message),
            _ => None,
        })
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0].content, Some(text("v3")));
    assert_eq!(resolved[0].edited_at, Some(t2));

    // The newest message, edited, in the conversation list.
    let t3 = fx.tick();
    fx.checked(&[a.id, b.id], store.edit_message(conv.id, 3, &text("last"), t3))
        .await;
    let list = store.list_conversations(b.id, false, 10).await.expect("list");
    let last = list[0].last_message.as_ref().expect("last message");
    assert_eq!((last.seq, last.edited_at), (3, Some(t3)));
    assert_eq!(last.content, Some(text("last")));

    // Deleted: refused, and the edit changes now read as content-less.
    store
        .delete_message_for_everyone(conv.id, 2, fx.tick())
        .await
        .expect("delete");
    let before = fx.latest_pos().await;
    let err = store
        .edit_message(conv.id, 2, &text("again"), fx.tick())
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(fx.latest_pos().await, before, "a refused edit records nothing");
    assert!(
        fx.sync_all(b.id, 0, 64).await.iter().all(|c| !matches!(
            &c.kind,
            ChangeKind::MessageEdited {
                seq: 2,
                content: Some(_),
                ..
            }
        )),
        "a deleted message's edits carry no content"
    );
    let err = store
        .edit_message(conv.id, 99, &text("x"), fx.tick())
        .await
        .expect_err("missing");
    assert_eq!(err.code(), ErrorCode::NotFound);
}

/// A media message's edit keeps the blob and changes the caption (the store writes what
/// the engine gives it; the engine only ever changes the caption).
pub async fn edit_media_caption_keeps_the_blob(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.direct(&a, &b).await;
    let media = MediaRef {
        blob_key: "k/one".into(),
        content_type: "image/png".into(),
        size: 10,
        width: Some(1),
        height: Some(1),
        caption: None,
    };
    let mut new = fx.new_message(conv.id, a.id, "m1");
    new.content = Content::Media(media.clone());
    let (sent, _) = store.insert_message(&new).await.expect("send");
    let captioned = Content::Media(MediaRef {
        caption: Some("a cat".into()),
        ..media
    });
    let t = fx.tick();
    let (edited, _) = fx
        .checked(&[a.id, b.id], store.edit_message(conv.id, sent.seq, &captioned, t))
        .await;
    assert_eq!(edited.content, Some(captioned));
    assert_eq!(edited.edited_at, Some(t));
}

fn reaction(seq: i64, user: crate::ids::UserId, emoji: &str, at: i64) -> StoredReaction {
    StoredReaction {
        seq,
        user_id: user,
        emoji: emoji.into(),
        created_at: at,
    }
}

/// Reactions: one of each emoji per user (a repeat records nothing), removal records
/// `ReactionRemoved` once, `reactions` lists by seq then time, a new emoji past
/// `max_distinct` is `TooLarge` (an existing emoji is still accepted), a deleted message
/// takes none (`Conflict`) and lists none, a missing message is `NotFound`.
pub async fn reactions_are_one_per_user_and_emoji_and_bounded(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, c) = (fx.user("a").await, fx.user("b").await, fx.user("c").await);
    let conv = fx.group(&a, &[&b, &c]).await;
    fx.send_n(conv.id, a.id, 2).await;
    let all = [a.id, b.id, c.id];
    let t1 = fx.tick();
    let added = fx
        .checked(&all, store.add_reaction(conv.id, 1, a.id, "👍", t1, 2))
        .await;
    assert_eq!(
        added.map(|c| c.kind),
        Some(ChangeKind::ReactionAdded {
            seq: 1,
            user_id: a.id,
            emoji: "👍".into(),
        })
    );
    let again = fx
        .checked(&all, store.add_reaction(conv.id, 1, a.id, "👍", fx.tick(), 2))
        .await;
    assert_eq!(again, None, "one of each emoji per user");
    let t2 = fx.tick();
    fx.checked(&all, store.add_reaction(conv.id, 1, b.id, "👍", t2, 2))
        .await;
    let t3 = fx.tick();
    fx.checked(&all, store.add_reaction(conv.id, 1, b.id, "❤️", t3, 2))
        .await;
    assert_eq!(
        store.reactions(conv.id, 1, 2).await.expect("reactions"),
        vec![
            reaction(1, a.id, "👍", t1),
            reaction(1, b.id, "👍", t2),
            reaction(1, b.id, "❤️", t3)
        ]
    );

    // The bound counts distinct emoji.
    let before = fx.latest_pos().await;
    let err = store
        .add_reaction(conv.id, 1, c.id, "😂", fx.tick(), 2)
        .await
        .expect_err("a third emoji");
    assert_eq!(err.code(), ErrorCode::TooLarge);
    assert!(matches!(err, crate::Error::TooLarge { limit: 2, .. }), "{err:?}");
    assert_eq!(fx.latest_pos().await, before, "nothing recorded");
    let t4 = fx.tick();
    fx.checked(&all, store.add_reaction(conv.id, 1, c.id, "👍", t4, 2))
        .await;

    let removed = fx.checked(&all, store.remove_reaction(conv.id, 1, b.id, "❤️")).await;
    assert_eq!(
        removed.map(|c| c.kind),
        Some(ChangeKind::ReactionRemoved {
            seq: 1,
            user_id: b.id,
            emoji: "❤️".into(),
        })
    );
    let again = fx.checked(&all, store.remove_reaction(conv.id, 1, b.id, "❤️")).await;
    assert_eq!(again, None, "removing twice records once");
    let t5 = fx.tick();
    fx.checked(&all, store.add_reaction(conv.id, 2, c.id, "😂", t5, 2))
        .await;
    assert_eq!(
        store.reactions(conv.id, 1, 2).await.expect("reactions"),
        vec![
            reaction(1, a.id, "👍", t1),
            reaction(1, b.id, "👍", t2),
            reaction(1, c.id, "👍", t4),
            reaction(2, c.id, "😂", t5)
        ]
    );
    assert_eq!(
        store.reactions(conv.id, 2, 2).await.expect("reactions"),
        vec![reaction(2, c.id, "😂", t5)]
    );

    for err in [
        store.add_reaction(conv.id, 9, a.id, "👍", fx.tick(), 2).await,
        store.remove_reaction(conv.id, 9, a.id, "👍").await,
    ] {
        assert_eq!(err.expect_err("missing").code(), ErrorCode::NotFound);
    }
    store
        .delete_message_for_everyone(conv.id, 1, fx.tick())
        .await
        .expect("delete");
    let err = store
        .add_reaction(conv.id, 1, b.id, "🎉", fx.tick(), 2)
        .await
        .expect_err("deleted");
    assert_eq!(err.code(), ErrorCode::Conflict);
    assert_eq!(
        store.reactions(conv.id, 1, 2).await.expect("reactions"),
        vec![reaction(2, c.id, "😂", t5)],
        "a deleted message lists no reactions"
    );
}

/// Many users adding a new emoji each to one message at once: exactly `max_distinct`
/// succeed, the others are `TooLarge`, and the message ends with `max_distinct` emoji.
pub async fn concurrent_reactions_keep_the_bound(store: &dyn Store) {
    let fx = Fx::new(store);
    let owner = fx.user("owner").await;
    let others = fx.users(&["u1", "u2", "u3", "u4", "u5", "u6", "u7", "u8"]).await;
    let refs: Vec<&crate::model::User> = others.iter().collect();
    let conv = fx.group(&owner, &refs).await;
    fx.send(conv.id, owner.id).await;
    let emoji = ["😀", "😁", "😂", "🤣", "😃", "😄", "😅", "😆"];
    let now = fx.tick();
    let results = join_all(
        others
            .iter()
            .zip(emoji)
            .map(|(u, e)| store.add_reaction(conv.id, 1, u.id, e, now, 3)),
    )
    .await;
    let ok = results.iter().filter(|r| matches!(r, Ok(Some(_)))).count();
    let too_large = results
        .iter()
        .filter(|r| matches!(r, Err(e) if e.code() == ErrorCode::TooLarge))
        .count();
    assert_eq!((ok, too_large), (3, 5), "{results:?}");
    assert_eq!(store.reactions(conv.id, 1, 1).await.expect("reactions").len(), 3);
}

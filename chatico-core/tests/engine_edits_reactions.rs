//! Engine rules of edits and reactions: who may, when, what reaches whom (live, sync,
//! history), blocks and late joiners.

mod common;

use chatico_core::Error;
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{
    BlobMeta, BlobPurpose, Content, HistoryDirection, HistoryQuery, MediaRef, Message, Reaction,
};
use chatico_core::ports::Store;
use chatico_core::sync::{ChangeKind, Delivery, Event};
use common::*;

fn newest() -> HistoryQuery {
    HistoryQuery {
        direction: HistoryDirection::Before,
        anchor: None,
        limit: 50,
    }
}

fn text(s: &str) -> Option<Content> {
    Some(Content::text(s))
}

fn message(h: &Harness, viewer: UserId, c: ConversationId, seq: i64) -> Message {
    block_on(h.engine.history(viewer, c, newest()))
        .expect("history")
        .into_iter()
        .find(|m| m.seq == seq)
        .expect("the message is in history")
}

/// Every change delivery reaches exactly the users (among `users`) whose engine sync
/// returns it, with the same content.
fn assert_live_matches_sync(h: &Harness, deliveries: &[Delivery], users: &[UserId]) {
    for d in deliveries {
        let Event::Change(change) = &d.event else { continue };
        for u in users {
            let page = block_on(h.engine.sync_changes(*u, change.pos - 1, 1)).expect("sync");
            let synced = page.changes.iter().find(|c| c.pos == change.pos);
            assert_eq!(synced.is_some(), d.recipients.contains(u), "{u} on {change:?}");
            if let Some(s) = synced {
                assert_eq!(s, change);
            }
        }
    }
}

fn changes_of(h: &Harness, u: UserId) -> Vec<ChangeKind> {
    block_on(h.engine.sync_changes(u, 0, 500))
        .expect("sync")
        .changes
        .into_iter()
        .map(|c| c.kind)
        .collect()
}

#[test]
fn the_sender_edits_within_the_window_and_every_member_sees_it() {
    let h = Harness::new();
    let [o, a, b] = h.users(&["O", "A", "B"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[a, b]);
    let s = h.say(a, g, "helo");
    h.clock.advance(60_000);
    let out = block_on(h.engine.edit_message(a, g, s, "hello".into())).expect("edit");
    assert_eq!(out.value.seq, s, "the message keeps its seq");
    assert_eq!(out.value.content, text("hello"));
    assert_eq!(out.value.edited_at, Some(T0 + 60_000));
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(sorted(out.deliveries[0].recipients.clone()), sorted(vec![o, a, b]));
    assert_live_matches_sync(&h, &out.deliveries, &[o, a, b]);
    for u in [o, a, b] {
        let m = message(&h, u, g, s);
        assert_eq!((m.content, m.edited_at), (text("hello"), Some(T0 + 60_000)));
    }
    // The same text again: nothing changes, nothing is delivered.
    let again = block_on(h.engine.edit_message(a, g, s, "hello".into())).expect("same");
    assert!(again.deliveries.is_empty());
    assert_eq!(again.value.edited_at, Some(T0 + 60_000));
}

#[test]
fn edits_are_refused_to_others_outsiders_late_and_on_deleted_or_system_messages() {
    let h = Harness::new();
    let [o, a, b, x] = h.users(&["O", "A", "B", "X"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[a, b]);
    let s = h.say(a, g, "mine");
    // Someone else's message, even a group owner's moderation power does not edit.
    assert!(is_forbidden(block_on(h.engine.edit_message(b, g, s, "hijack".into()))));
    assert!(is_forbidden(block_on(h.engine.edit_message(o, g, s, "hijack".into()))));
    // Not a member: the conversation does not exist for them.
    assert_eq!(
        block_on(h.engine.edit_message(x, g, s, "x".into())).map(|o| o.value),
        Err(not_found_conversation())
    );
    // A system notice (seq 1 is "group created") is nobody's to edit.
    assert!(is_forbidden(block_on(h.engine.edit_message(o, g, 1, "x".into()))));
    // Missing message, bad seq, blank and too long text.
    assert_eq!(
        block_on(h.engine.edit_message(a, g, 99, "x".into())).map(|o| o.value),
        Err(Error::not_found("message"))
    );
    assert_eq!(
        invalid_field(block_on(h.engine.edit_message(a, g, 0, "x".into()))),
        Some("seq".into())
    );
    assert_eq!(
        invalid_field(block_on(h.engine.edit_message(a, g, s, "  ".into()))),
        Some("text".into())
    );
    let long = "x".repeat(h.engine.config().limits.max_text_chars + 1);
    assert_eq!(
        invalid_field(block_on(h.engine.edit_message(a, g, s, long.into()))),
        Some("text".into())
    );
    // After the window.
    h.clock.advance(h.engine.config().limits.edit_window_ms + 1);
    assert!(is_forbidden(block_on(h.engine.edit_message(a, g, s, "late".into()))));
    // Deleted for everyone.
    let s2 = h.say(a, g, "soon gone");
    block_on(h.engine.delete_for_everyone(a, g, s2)).expect("delete");
    assert!(matches!(
        block_on(h.engine.edit_message(a, g, s2, "back".into())),
        Err(Error::Conflict { .. })
    ));
    // Nothing of the above changed the messages.
    assert_eq!(message(&h, b, g, s).content, text("mine"));
    assert_eq!(message(&h, b, g, s).edited_at, None);
    assert_eq!(message(&h, b, g, s2).content, None);
}

#[test]
fn the_edit_window_is_the_engines_configuration() {
    let mut config = test_config();
    config.limits.edit_window_ms = 1_000;
    let h = Harness::with_config(config);
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let s = h.say(a, d, "x");
    h.clock.advance(1_000);
    block_on(h.engine.edit_message(a, d, s, "y".into())).expect("at the edge");
    h.clock.advance(1);
    assert!(is_forbidden(block_on(h.engine.edit_message(a, d, s, "z".into()))));
}

#[test]
fn a_media_message_edits_its_caption_only() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let meta = BlobMeta {
        key: "k1".into(),
        owner_id: a,
        content_type: "image/png".into(),
        size: 5,
        width: Some(2),
        height: Some(3),
        purpose: BlobPurpose::Media,
        created_at: T0,
    };
    block_on(h.store.insert_blob(&meta)).expect("blob");
    let media = MediaRef {
        blob_key: "k1".into(),
        content_type: "image/png".into(),
        size: 5,
        width: Some(2),
        height: Some(3),
        caption: None,
    };
    let mut req = text_msg(d, "m1", "");
    req.content = Content::Media(media.clone());
    let s = block_on(h.engine.send(a, req)).expect("send").value.seq;
    let out = block_on(h.engine.edit_message(a, d, s, "a cat".into())).expect("caption");
    assert_eq!(
        out.value.content,
        Some(Content::Media(MediaRef {
            caption: Some("a cat".into()),
            ..media.clone()
        }))
    );
    let out = block_on(h.engine.edit_message(a, d, s, " ".into())).expect("no caption");
    assert_eq!(out.value.content, Some(Content::Media(media)));
}

#[test]
fn a_late_joiner_sees_no_edit_or_reaction_of_history_before_them() {
    let h = Harness::new();
    let [o, a, late] = h.users(&["O", "A", "L"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[a]);
    let s = h.say(a, g, "before you came");
    block_on(h.engine.add_members(o, g, vec![late])).expect("add");
    let edit = block_on(h.engine.edit_message(a, g, s, "secret".into())).expect("edit");
    let react = block_on(h.engine.react(o, g, s, "👍")).expect("react");
    for d in edit.deliveries.iter().chain(&react.deliveries) {
        assert!(!d.recipients.contains(&late), "{d:?}");
    }
    assert_live_matches_sync(&h, &edit.deliveries, &[o, a, late]);
    assert_live_matches_sync(&h, &react.deliveries, &[o, a, late]);
    assert!(
        changes_of(&h, late).iter().all(|k| k.about_seq().is_none()),
        "{:?}",
        changes_of(&h, late)
    );
    // Nor may they touch it.
    assert_eq!(
        block_on(h.engine.react(late, g, s, "👍")).map(|o| o.value),
        Err(Error::not_found("message"))
    );
}

#[test]
fn any_member_reacts_once_per_emoji_and_history_counts_who() {
    let h = Harness::new();
    let [o, a, b, x] = h.users(&["O", "A", "B", "X"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[a, b]);
    let s = h.say(a, g, "react to me");
    let first = block_on(h.engine.react(b, g, s, "👍")).expect("react");
    assert_live_matches_sync(&h, &first.deliveries, &[o, a, b]);
    assert_eq!(sorted(first.deliveries[0].recipients.clone()), sorted(vec![o, a, b]));
    let again = block_on(h.engine.react(b, g, s, "👍")).expect("again");
    assert!(again.deliveries.is_empty(), "idempotent");
    h.clock.advance(1);
    block_on(h.engine.react(o, g, s, "👍")).expect("react");
    h.clock.advance(1);
    let out = block_on(h.engine.react(a, g, s, "❤️")).expect("react");
    let expected = vec![
        Reaction {
            emoji: "👍".into(),
            count: 2,
            users: vec![b, o],
        },
        Reaction {
            emoji: "❤️".into(),
            count: 1,
            users: vec![a],
        },
    ];
    assert_eq!(out.value.reactions, expected);
    assert_eq!(message(&h, o, g, s).reactions, expected);
    // Take back, twice.
    let off = block_on(h.engine.unreact(b, g, s, "👍")).expect("unreact");
    assert_live_matches_sync(&h, &off.deliveries, &[o, a, b]);
    assert!(
        block_on(h.engine.unreact(b, g, s, "👍"))
            .expect("again")
            .deliveries
            .is_empty()
    );
    assert_eq!(message(&h, a, g, s).reactions[0].users, vec![o]);
    // Outsiders, bad emoji, missing and deleted messages.
    assert_eq!(
        block_on(h.engine.react(x, g, s, "👍")).map(|o| o.value),
        Err(not_found_conversation())
    );
    assert_eq!(
        block_on(h.engine.unreact(x, g, s, "👍")).map(|o| o.value),
        Err(not_found_conversation())
    );
    for bad in ["", "ok", "👍👍", "<b>", " 👍"] {
        assert_eq!(
            invalid_field(block_on(h.engine.react(b, g, s, bad))),
            Some("emoji".into()),
            "{bad:?}"
        );
    }
    assert_eq!(
        block_on(h.engine.react(b, g, 99, "👍")).map(|o| o.value),
        Err(Error::not_found("message"))
    );
    block_on(h.engine.delete_for_everyone(a, g, s)).expect("delete");
    assert!(matches!(
        block_on(h.engine.react(b, g, s, "🎉")),
        Err(Error::Conflict { .. })
    ));
    assert!(
        message(&h, o, g, s).reactions.is_empty(),
        "a tombstone shows no reactions"
    );
}

#[test]
fn distinct_emoji_per_message_are_bounded_with_a_typed_error() {
    let mut config = test_config();
    config.limits.max_reactions_per_message = 2;
    let h = Harness::with_config(config);
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let s = h.say(a, d, "x");
    block_on(h.engine.react(a, d, s, "👍")).expect("1");
    block_on(h.engine.react(b, d, s, "❤️")).expect("2");
    let err = block_on(h.engine.react(b, d, s, "😂")).map(|o| o.value);
    assert_eq!(
        err,
        Err(Error::TooLarge {
            what: "reactions".into(),
            limit: 2
        })
    );
    block_on(h.engine.react(b, d, s, "👍")).expect("an emoji already there is fine");
    assert_eq!(message(&h, a, d, s).reactions.len(), 2);
}

#[test]
fn blocked_users_reactions_are_hidden_both_ways() {
    let h = Harness::new();
    let [o, a, b] = h.users(&["O", "A", "B"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[a, b]);
    let s = h.say(o, g, "hi all");
    block_on(h.engine.block(a, b)).expect("block");
    let from_b = block_on(h.engine.react(b, g, s, "👍")).expect("b reacts");
    h.clock.advance(1);
    let from_a = block_on(h.engine.react(a, g, s, "❤️")).expect("a reacts");
    assert!(
        !from_b.deliveries[0].recipients.contains(&a),
        "the blocker does not get it"
    );
    assert!(!from_a.deliveries[0].recipients.contains(&b), "nor the blocked");
    assert_live_matches_sync(&h, &from_b.deliveries, &[o, a, b]);
    assert_live_matches_sync(&h, &from_a.deliveries, &[o, a, b]);
    let seen_by = |u| -> Vec<(String, Vec<UserId>)> {
        message(&h, u, g, s)
            .reactions
            .into_iter()
            .map(|r| (r.emoji, r.users))
            .collect()
    };
    assert_eq!(seen_by(a), vec![("❤️".to_string(), vec![a])]);
    assert_eq!(seen_by(b), vec![("👍".to_string(), vec![b])]);
    assert_eq!(
        seen_by(o),
        vec![("👍".to_string(), vec![b]), ("❤️".to_string(), vec![a])]
    );
    assert_eq!(from_b.value.reactions.len(), 1, "the answer hides the blocked too");
    // In a direct conversation a block refuses the reaction.
    let d = h.direct(o, a);
    let sd = h.say(o, d, "x");
    block_on(h.engine.block(o, a)).expect("block");
    assert!(is_forbidden(block_on(h.engine.react(a, d, sd, "👍"))));
    assert!(is_forbidden(block_on(h.engine.edit_message(o, d, sd, "y".into()))));
}

//! Mentions (validated against the text and the members, counted in the list) and pins
//! (bounded, per user, first in the list, synced to the user's devices) through the engine.

mod common;

use chatico_core::engine::SendMessage;
use chatico_core::error::Error;
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{Content, ConversationSummary, Mention};
use chatico_core::sync::{ChangeKind, Event};
use common::*;

fn mention(user: UserId, start: u32, end: u32) -> Mention {
    Mention {
        user_id: user,
        start,
        end,
    }
}

fn send_with(
    h: &Harness,
    from: UserId,
    conv: ConversationId,
    text: &str,
    mentions: Vec<Mention>,
) -> chatico_core::Result<i64> {
    block_on(h.engine.send(
        from,
        SendMessage {
            conversation_id: conv,
            client_msg_id: uuid_ish(),
            content: Content::Text {
                text: text.into(),
                mentions,
            },
            reply_to_seq: None,
        },
    ))
    .map(|o| o.value.seq)
}

fn summary(h: &Harness, user: UserId, conv: ConversationId) -> ConversationSummary {
    block_on(h.engine.list_conversations(user, false, 100))
        .expect("list")
        .into_iter()
        .find(|s| s.conversation.id == conv)
        .expect("listed")
}

#[test]
fn mentions_name_members_of_groups_by_utf16_ranges_inside_the_text() {
    let h = Harness::new();
    let [a, b, c, outsider] = h.users(&["A", "B", "C", "X"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c]);
    // "😀 @B": the emoji is two UTF-16 code units, so "@B" is 3..5.
    let seq = send_with(&h, a, g, "😀 @B", vec![mention(b, 3, 5)]).expect("valid mention");
    let msgs = block_on(h.engine.history(
        b,
        g,
        chatico_core::model::HistoryQuery {
            anchor: None,
            direction: chatico_core::model::HistoryDirection::Before,
            limit: 10,
        },
    ))
    .expect("history");
    let m = msgs.iter().find(|m| m.seq == seq).expect("stored");
    assert_eq!(m.content.as_ref().map(Content::mentioned), Some(vec![b]));
    assert_eq!(summary(&h, b, g).unread_mentions, 1);
    assert_eq!(summary(&h, c, g).unread_mentions, 0);

    let last = h.say(a, g, "plain");
    let refused = [
        ("out of bounds", vec![mention(b, 3, 6)]),
        ("splits the emoji", vec![mention(b, 1, 5)]),
        ("empty range", vec![mention(b, 3, 3)]),
        ("overlap", vec![mention(b, 0, 4), mention(c, 3, 5)]),
        ("non-member", vec![mention(outsider, 3, 5)]),
    ];
    for (why, mentions) in refused {
        assert_eq!(
            invalid_field(send_with(&h, a, g, "😀 @B", mentions)),
            Some("mentions".into()),
            "{why}"
        );
    }
    let too_many: Vec<Mention> = (0..51).map(|i| mention(b, i, i + 1)).collect();
    assert_eq!(
        invalid_field(send_with(&h, a, g, &"b".repeat(60), too_many)),
        Some("mentions".into())
    );
    // A member who left is no longer mentionable.
    block_on(h.engine.leave(c, g)).expect("c leaves");
    assert_eq!(
        invalid_field(send_with(&h, a, g, "@C", vec![mention(c, 0, 2)])),
        Some("mentions".into())
    );
    // Direct conversations carry no mentions.
    let d = h.direct(a, b);
    assert_eq!(
        invalid_field(send_with(&h, a, d, "@B", vec![mention(b, 0, 2)])),
        Some("mentions".into())
    );
    // A non-member cannot learn anything by mentioning: the conversation is not found.
    assert_eq!(
        send_with(&h, outsider, g, "@B", vec![mention(b, 0, 2)]).unwrap_err(),
        not_found_conversation()
    );
    // Nothing refused was stored.
    let newest = block_on(h.engine.list_conversations(a, false, 10)).expect("list");
    let g_row = newest.iter().find(|s| s.conversation.id == g).expect("g");
    assert_eq!(
        g_row.conversation.last_seq,
        last + 1,
        "only c's leave notice after the plain message"
    );
}

#[test]
fn unread_mentions_drop_on_read_and_delete() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b]);
    let s1 = send_with(&h, a, g, "@B one", vec![mention(b, 0, 2)]).expect("s1");
    let s2 = send_with(&h, a, g, "@B two", vec![mention(b, 0, 2)]).expect("s2");
    h.say(a, g, "no mention");
    assert_eq!(summary(&h, b, g).unread_mentions, 2);
    block_on(h.engine.mark_read(b, g, s1)).expect("read s1");
    assert_eq!(summary(&h, b, g).unread_mentions, 1);
    block_on(h.engine.delete_for_everyone(a, g, s2)).expect("delete s2");
    assert_eq!(summary(&h, b, g).unread_mentions, 0);
}

#[test]
fn pins_are_bounded_first_in_the_list_and_reach_every_device_of_the_user_only() {
    let mut config = test_config();
    config.limits.max_pins = 2;
    let h = Harness::with_config(config);
    let [a, b, outsider] = h.users(&["A", "B", "X"])[..] else {
        unreachable!()
    };
    let g1 = h.group(a, "G1", &[b]);
    let g2 = h.group(a, "G2", &[b]);
    let g3 = h.group(a, "G3", &[b]);
    h.say(b, g3, "g3 is the most active");

    let o = block_on(h.engine.pin(a, g1)).expect("pin g1");
    assert_eq!(o.value.conversation_id, g1);
    assert_eq!(o.deliveries.len(), 1);
    assert_eq!(o.deliveries[0].recipients, vec![a], "the pinner's devices only");
    assert!(matches!(
        &o.deliveries[0].event,
        Event::Change(c) if c.kind == ChangeKind::Pinned { pinned: true, at: Some(o.value.pinned_at) }
    ));
    h.assert_deliveries_match_sync(&o.deliveries, &[a, b]);
    h.clock.advance(10);
    let o2 = block_on(h.engine.pin(a, g2)).expect("pin g2");
    h.assert_deliveries_match_sync(&o2.deliveries, &[a, b]);
    let again = block_on(h.engine.pin(a, g1)).expect("pin g1 again");
    assert!(again.deliveries.is_empty(), "already pinned: nothing changes");
    assert_eq!(again.value.pinned_at, o.value.pinned_at, "keeps its time");

    let over = block_on(h.engine.pin(a, g3)).map(|_| ()).unwrap_err();
    assert_eq!(over, Error::too_large("pins", 2));

    let order: Vec<ConversationId> = block_on(h.engine.list_conversations(a, false, 10))
        .expect("list")
        .iter()
        .map(|s| s.conversation.id)
        .collect();
    assert_eq!(order, vec![g2, g1, g3], "pinned first, newest pin first");
    assert!(summary(&h, a, g1).pinned);
    assert!(!summary(&h, b, g1).pinned, "pins are per user");

    // Attackers: a conversation you are not in answers like a missing one.
    for r in [
        block_on(h.engine.pin(outsider, g1)).map(|_| ()),
        block_on(h.engine.unpin(outsider, g1)).map(|_| ()),
    ] {
        assert_eq!(r.unwrap_err(), not_found_conversation());
    }
    assert!(summary(&h, a, g1).pinned, "the outsider changed nothing");

    let un = block_on(h.engine.unpin(a, g1)).expect("unpin");
    h.assert_deliveries_match_sync(&un.deliveries, &[a, b]);
    assert!(block_on(h.engine.unpin(a, g1)).expect("again").deliveries.is_empty());
    block_on(h.engine.pin(a, g3)).expect("room for g3 now");
}

#[test]
fn an_edit_replaces_the_mentions_checked_as_on_send() {
    use chatico_core::protocol::EditMessage;
    let h = Harness::new();
    let [a, b, c, outsider] = h.users(&["A", "B", "C", "X"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c]);
    let seq = send_with(&h, a, g, "hi @B", vec![mention(b, 3, 5)]).expect("sent");
    assert_eq!(summary(&h, b, g).unread_mentions, 1);

    let edit = |text: &str, mentions: Vec<Mention>| {
        block_on(h.engine.edit_message(
            a,
            g,
            seq,
            EditMessage {
                text: text.into(),
                mentions,
            },
        ))
    };
    // Refused like a send, changing nothing: a non-member, a range outside the new text.
    for (what, bad) in [
        ("outsider", edit("hi @X", vec![mention(outsider, 3, 5)])),
        ("out of the text", edit("hi", vec![mention(c, 3, 5)])),
    ] {
        assert!(
            matches!(bad, Err(Error::InvalidInput { ref field, .. }) if field == "mentions"),
            "{what}: {bad:?}"
        );
    }
    assert_eq!(summary(&h, b, g).unread_mentions, 1);

    // The edit moves the mention from B to C: the counts follow in the same write.
    edit("hi @C", vec![mention(c, 3, 5)]).expect("edit");
    assert_eq!(summary(&h, b, g).unread_mentions, 0);
    assert_eq!(summary(&h, c, g).unread_mentions, 1);
    // An edit without mentions drops them.
    edit("hi all", Vec::new()).expect("edit");
    assert_eq!(summary(&h, c, g).unread_mentions, 0);
}

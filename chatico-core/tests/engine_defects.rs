//! Rules from issue 12 (security and protocol defects), each with a test that fails without
//! its rule: cursors from the future, receipts across a block, who sees a phone number, and
//! what an avatar may point at.

mod common;

use chatico_core::Error;
use chatico_core::ports::Store as _;
use common::*;

// ---- a cursor beyond the log's end ------------------------------------------------------

#[test]
fn a_cursor_beyond_the_end_of_the_log_is_invalid_input() {
    let h = Harness::new();
    let [a, b] = h.users(&["Ann", "Bob"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    h.say(a, d, "hi");
    let end = block_on(h.store.latest_pos()).expect("latest");
    assert!(end > 0);
    for since in [end + 1, end + 100_000, i64::MAX] {
        assert_eq!(
            invalid_field(block_on(h.engine.sync(a, since, 10))).as_deref(),
            Some("since"),
            "{since}"
        );
        assert_eq!(
            invalid_field(block_on(h.engine.sync_changes(b, since, 10))).as_deref(),
            Some("since"),
            "{since}"
        );
    }
    // The end itself and anything before it are fine, also for a user who sees nothing there.
    let c = h.user("Cy");
    for since in [0, 1, end] {
        block_on(h.engine.sync(a, since, 10)).expect("a cursor within the log");
        block_on(h.engine.sync(c, since, 10)).expect("a cursor within the log");
    }
    let page = block_on(h.engine.sync(c, end, 10)).expect("sync").page;
    assert!(page.changes.is_empty() && page.next >= end);
    // A cursor the server handed out stays valid as the log grows.
    h.say(b, d, "more");
    block_on(h.engine.sync(a, end + 1, 10)).expect("the new end");
}

#[test]
fn an_empty_log_accepts_only_zero() {
    let h = Harness::new();
    let a = h.user("Ann");
    block_on(h.engine.sync(a, 0, 10)).expect("zero");
    assert_eq!(
        invalid_field(block_on(h.engine.sync(a, 1, 10))).as_deref(),
        Some("since")
    );
}

// ---- receipts across a block --------------------------------------------------------------

use chatico_core::ids::{ConversationId, UserId};
use chatico_core::sync::{ChangeKind, Delivery, Event};

/// The receipt changes of `of` that `viewer` gets by sync after `since`.
fn synced_receipts(h: &Harness, viewer: UserId, of: UserId, since: i64) -> Vec<(i64, i64)> {
    block_on(h.engine.sync(viewer, since, 1000))
        .expect("sync")
        .page
        .changes
        .into_iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Receipt {
                user_id,
                delivered_seq,
                read_seq,
            } if user_id == of => Some((delivered_seq, read_seq)),
            _ => None,
        })
        .collect()
}

fn receipt_recipients(deliveries: &[Delivery]) -> Vec<UserId> {
    recipients_of(
        deliveries,
        |e| matches!(e, Event::Change(c) if matches!(c.kind, ChangeKind::Receipt { .. })),
    )
}

/// (delivered, read) of `of` as `viewer` sees them in the conversation and in their list.
fn watermarks_seen(h: &Harness, viewer: UserId, of: UserId, conv: ConversationId) -> [(i64, i64); 2] {
    let details = block_on(h.engine.get_conversation(viewer, conv)).expect("details");
    let m = details.members.iter().find(|m| m.user_id == of).expect("member");
    let list = block_on(h.engine.list_conversations(viewer, false, 100)).expect("list");
    let s = list.iter().find(|s| s.conversation.id == conv).expect("summary");
    let i = s.members.iter().find(|m| m.user_id == of).expect("member info");
    [(m.delivered_seq, m.read_seq), (i.delivered_seq, i.read_seq)]
}

#[test]
fn receipts_do_not_cross_a_block_live_in_sync_or_in_members() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["Ann", "Bob", "Cy"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let g = h.group(a, "G", &[b, c]);
    let s1 = h.say(b, d, "one");
    let g1 = h.say(b, g, "one");
    h.say(c, g, "two");
    let before_block = block_on(h.store.latest_pos()).expect("pos");
    // B blocks A. From now on A's receipts do not reach B, and B's do not reach A.
    block_on(h.engine.block(b, a)).expect("block");
    let since = block_on(h.store.latest_pos()).expect("pos");
    for (conv, seq) in [(d, s1), (g, g1 + 1)] {
        let o = block_on(h.engine.mark_read(a, conv, seq)).expect("read");
        let to = receipt_recipients(&o.deliveries);
        assert!(to.contains(&a), "the reader's own devices are told");
        assert!(!to.contains(&b), "a receipt crossed the block live: {to:?}");
        if conv == g {
            assert!(to.contains(&c), "the others in the group are still told");
        }
        let o = block_on(h.engine.mark_read(b, conv, seq)).expect("read");
        assert!(!receipt_recipients(&o.deliveries).contains(&a), "the other way too");
    }
    // Sync agrees with live: neither replays the other's receipts; C sees both.
    assert_eq!(synced_receipts(&h, b, a, since), vec![]);
    assert_eq!(synced_receipts(&h, a, b, since), vec![]);
    assert_eq!(synced_receipts(&h, c, a, since).len(), 1);
    assert_eq!(synced_receipts(&h, c, b, since).len(), 1);
    // A resume from before the block does not return them either (nor older ones).
    assert_eq!(synced_receipts(&h, b, a, before_block - 5), vec![]);
    // Members' watermarks: hidden as 0 across the block, real to everyone else.
    assert_eq!(watermarks_seen(&h, b, a, d), [(0, 0); 2]);
    assert_eq!(watermarks_seen(&h, a, b, d), [(0, 0); 2]);
    assert_eq!(watermarks_seen(&h, b, a, g), [(0, 0); 2]);
    assert_eq!(watermarks_seen(&h, c, a, g), [(g1 + 1, g1 + 1); 2]);
    assert_eq!(
        watermarks_seen(&h, a, a, g),
        [(g1 + 1, g1 + 1); 2],
        "your own are yours"
    );
    // Unblocked: the watermarks show again, and new receipts flow.
    block_on(h.engine.unblock(b, a)).expect("unblock");
    assert_eq!(watermarks_seen(&h, b, a, g), [(g1 + 1, g1 + 1); 2]);
    let s = h.say(c, g, "three");
    let o = block_on(h.engine.mark_read(a, g, s)).expect("read");
    assert!(receipt_recipients(&o.deliveries).contains(&b));
}


//! Conformance: messages, history, deletion, receipts, the conversation list.

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::ErrorCode;
use crate::ids::{ConversationId, MessageId, UserId};
use crate::model::{Content, MediaRef, MemberInfo, Message, NewMessage, ProfilePatch, SystemNotice};
use crate::ports::Store;
use crate::sync::{Change, ChangeKind};

use super::fixtures::{Fx, T0, after, assert_message_matches, before, text};

fn seqs(messages: &[Message]) -> Vec<i64> {
    messages.iter().map(|m| m.seq).collect()
}

/// The seqs of the `Message` changes of `conversation`, in sync (position) order.
fn message_seqs(changes: &[Change], conversation: ConversationId) -> Vec<i64> {
    changes
        .iter()
        .filter(|c| c.conversation_id == Some(conversation))
        .filter_map(|c| match &c.kind {
            ChangeKind::Message { message } => Some(message.seq),
            _ => None,
        })
        .collect()
}

/// Seqs start at 1 and have no gaps, per conversation; every content kind and `reply_to_seq`
/// round-trip; `last_seq` follows; `get_message` reads each one back.
pub async fn insert_message_assigns_gap_free_seqs_from_one(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let c1 = fx.group(&a, &[&b]).await;
    let c2 = fx.direct(&a, &b).await;

    let mut sent = Vec::new();
    for i in 0..5 {
        let sender = if i % 2 == 0 { a.id } else { b.id };
        sent.push(fx.send(c1.id, sender).await);
    }
    let media = NewMessage {
        content: Content::Media(MediaRef {
            blob_key: "k-media".into(),
            content_type: "image/jpeg".into(),
            size: 2048,
            width: Some(10),
            height: Some(20),
            caption: Some("look".into()),
        }),
        reply_to_seq: Some(2),
        ..fx.new_message(c1.id, a.id, "media-1")
    };
    let (m, change) = fx.checked(&[a.id, b.id], store.insert_message(&media)).await;
    assert!(change.is_some());
    assert_message_matches(&m, &media);
    sent.push(m);
    let notice = NewMessage {
        content: Content::System(SystemNotice::MembersAdded { users: vec![b.id] }),
        ..fx.new_message(c1.id, a.id, "notice-1")
    };
    let (m, _) = fx.checked(&[a.id, b.id], store.insert_message(&notice)).await;
    assert_message_matches(&m, &notice);
    sent.push(m);

    assert_eq!(seqs(&sent), (1..=7).collect::<Vec<_>>());
    assert_eq!(fx.conversation(c1.id).await.last_seq, 7);
    for m in &sent {
        assert_eq!(store.get_message(c1.id, m.seq).await.expect("get").as_ref(), Some(m));
    }
    assert_eq!(store.get_message(c1.id, 8).await.expect("get"), None);
    assert_eq!(store.get_message(c1.id, 0).await.expect("get"), None);
    assert_eq!(store.get_message(c2.id, 1).await.expect("get"), None);

    let other = fx.send(c2.id, b.id).await;
    assert_eq!(other.seq, 1, "seqs are per conversation");
    assert_eq!(fx.conversation(c2.id).await.last_seq, 1);
    assert_eq!(fx.conversation(c1.id).await.last_seq, 7);
}

/// Inserting into a conversation that does not exist is `NotFound` and writes nothing.
pub async fn insert_message_into_missing_conversation_is_not_found(store: &dyn Store) {
    let fx = Fx::new(store);
    let a = fx.user("a").await;
    let pos = fx.latest_pos().await;
    let err = store
        .insert_message(&fx.new_message(ConversationId::new(T0), a.id, "x"))
        .await
        .expect_err("missing conversation");
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(fx.latest_pos().await, pos);
}

/// A retry with the same `(sender, client_msg_id)` returns the original message and no
/// change, and writes nothing, even with another id, content or conversation; another
/// sender may use the same key.
pub async fn insert_message_is_idempotent_on_sender_and_client_msg_id(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    let other_conv = fx.group(&b, &[&a]).await;
    let first = fx.new_message(conv.id, a.id, "key-1");
    let audience = [a.id, b.id];
    let (original, inserted) = fx.checked(&audience, store.insert_message(&first)).await;
    assert!(inserted.is_some());
    let pos = fx.latest_pos().await;

    let retry = NewMessage {
        id: MessageId::new(T0 + 99),
        content: text("a different body"),
        created_at: T0 + 99,
        ..first.clone()
    };
    let (again, inserted) = fx.checked(&audience, store.insert_message(&retry)).await;
    assert_eq!(inserted, None, "a retry must not insert");
    assert_eq!(again, original, "a retry returns the original message");
    let (again, inserted) = fx.checked(&audience, store.insert_message(&first)).await;
    assert_eq!(inserted, None);
    assert_eq!(again, original);

    let elsewhere = NewMessage {
        conversation_id: other_conv.id,
        ..retry.clone()
    };
    let (again, inserted) = fx.checked(&audience, store.insert_message(&elsewhere)).await;
    assert_eq!(inserted, None, "(sender, client_msg_id) is unique across conversations");
    assert_eq!(again, original);

    assert_eq!(fx.latest_pos().await, pos, "retries record nothing");
    assert_eq!(fx.conversation(conv.id).await.last_seq, 1);
    assert_eq!(fx.conversation(other_conv.id).await.last_seq, 0);
    assert_eq!(fx.full_history(conv.id, a.id).await, vec![original.clone()]);

    let (theirs, inserted) = fx
        .checked(&audience, store.insert_message(&fx.new_message(conv.id, b.id, "key-1")))
        .await;
    assert!(inserted.is_some(), "the key is per sender");
    assert_eq!(theirs.seq, 2);
}

/// Many concurrent identical sends are stored once; every caller gets the same message and
/// exactly one gets the `Message` change, which is what sync returns.
pub async fn concurrent_duplicate_sends_are_stored_once(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    let start = fx.latest_pos().await;
    let new = fx.new_message(conv.id, a.id, "dup");
    let results: Vec<(Message, Option<Change>)> = join_all((0..32).map(|_| store.insert_message(&new)))
        .await
        .into_iter()
        .map(|r| r.expect("insert_message"))
        .collect();
    let returned: Vec<Change> = results.iter().filter_map(|(_, c)| c.clone()).collect();
    assert_eq!(returned.len(), 1, "stored exactly once");
    fx.assert_returned(start, &returned, &[a.id, b.id]).await;
    let msg = results[0].0.clone();
    assert_message_matches(&msg, &new);
    assert_eq!(msg.seq, 1);
    assert!(results.iter().all(|(m, _)| *m == msg), "everyone gets the same message");
    assert_eq!(fx.conversation(conv.id).await.last_seq, 1);
    assert_eq!(fx.full_history(conv.id, b.id).await, vec![msg.clone()]);
    let changes = fx.sync_all(b.id, start, 100).await;
    assert_eq!(message_seqs(&changes, conv.id), vec![1], "one Message change");
}

/// Many senders sending at once into one conversation get seqs `1..=N`, unique, no gaps;
/// sync lists the messages in seq order, exactly as the sends returned them (positions
/// included: group commit must hand each caller its own change); each sender's watermarks
/// end at their newest seq.
pub async fn concurrent_senders_get_unique_gap_free_seqs(store: &dyn Store) {
    let fx = Fx::new(store);
    let users = fx.users(&["s0", "s1", "s2", "s3", "s4", "s5"]).await;
    let refs: Vec<&crate::model::User> = users[1..].iter().collect();
    let conv = fx.group(&users[0], &refs).await;
    let start = fx.latest_pos().await;
    let per_sender = 10;
    let news: Vec<NewMessage> = (0..per_sender)
        .flat_map(|i| users.iter().map(move |u| (u.id, i)))
        .map(|(uid, i)| fx.new_message(conv.id, uid, &format!("{uid}-{i}")))
        .collect();
    let mut returned: Vec<Change> = Vec::new();
    let results: Vec<Message> = join_all(news.iter().map(|n| store.insert_message(n)))
        .await
        .into_iter()
        .map(|r| {
            let (m, change) = r.expect("insert_message");
            let change = change.expect("a fresh key inserts");
            assert_eq!(change.kind, ChangeKind::Message { message: m.clone() });
            returned.push(change);
            m
        })
        .collect();
    returned.sort_by_key(|c| c.pos);
    let everyone: Vec<UserId> = users.iter().map(|u| u.id).collect();
    fx.assert_returned(start, &returned, &everyone).await;
    for (m, n) in results.iter().zip(&news) {
        assert_message_matches(m, n);
    }
    let n = news.len() as i64;
    let mut got = seqs(&results);
    got.sort();
    assert_eq!(got, (1..=n).collect::<Vec<_>>(), "unique and gap-free");
    assert_eq!(fx.conversation(conv.id).await.last_seq, n);

    let mut by_seq = results.clone();
    by_seq.sort_by_key(|m| m.seq);
    assert_eq!(fx.full_history(conv.id, users[0].id).await, by_seq);
    let changes = fx.sync_all(users[0].id, start, 7).await;
    assert_eq!(
        message_seqs(&changes, conv.id),
        (1..=n).collect::<Vec<_>>(),
        "positions follow seqs: sync yields the messages in seq order"
    );
    for u in &users {
        let newest = results
            .iter()
            .filter(|m| m.sender_id == u.id)
            .map(|m| m.seq)
            .max()
            .expect("sent");
        let m = fx.member(conv.id, u.id).await;
        assert_eq!((m.delivered_seq, m.read_seq), (newest, newest), "sender watermarks");
    }
}

/// Concurrent new sends and retries mixed: each key is stored once, every call for a key
/// gets the same message, and the seqs are `1..=keys`.
pub async fn concurrent_mixed_sends_and_retries(store: &dyn Store) {
    let fx = Fx::new(store);
    let users = fx.users(&["a", "b", "c", "d"]).await;
    let conv = fx.group(&users[0], &[&users[1], &users[2], &users[3]]).await;
    let mut news: Vec<NewMessage> = Vec::new();
    for u in &users {
        for k in 0..5 {
            news.push(fx.new_message(conv.id, u.id, &format!("key-{k}")));
        }
    }
    // Three copies of each, spread so that copies are not adjacent.
    let calls: Vec<&NewMessage> = (0..3).flat_map(|_| news.iter()).collect();
    let results: Vec<(Message, bool)> = join_all(calls.iter().map(|n| store.insert_message(n)))
        .await
        .into_iter()
        .map(|r| {
            let (m, change) = r.expect("insert_message");
            (m, change.is_some())
        })
        .collect();
    let mut per_key: BTreeMap<(UserId, String), Vec<&(Message, bool)>> = BTreeMap::new();
    for (r, n) in results.iter().zip(&calls) {
        per_key
            .entry((n.sender_id, n.client_msg_id.clone()))
            .or_default()
            .push(r);
    }
    assert_eq!(per_key.len(), 20);
    let mut all_seqs = Vec::new();
    for (key, rs) in &per_key {
        assert_eq!(rs.iter().filter(|(_, i)| *i).count(), 1, "{key:?} inserted once");
        assert!(
            rs.iter().all(|(m, _)| *m == rs[0].0),
            "{key:?}: same message for all calls"
        );
        all_seqs.push(rs[0].0.seq);
    }
    all_seqs.sort();
    assert_eq!(all_seqs, (1..=20).collect::<Vec<_>>());
    assert_eq!(fx.conversation(conv.id).await.last_seq, 20);
    assert_eq!(fx.full_history(conv.id, users[1].id).await.len(), 20);
}

/// Inserting moves the sender's `delivered_seq` and `read_seq` to the new seq, and nobody
/// else's.
pub async fn insert_message_moves_sender_watermarks(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, c) = (fx.user("a").await, fx.user("b").await, fx.user("c").await);
    let conv = fx.group(&a, &[&b, &c]).await;
    fx.send(conv.id, b.id).await;
    let wm = |m: crate::model::Member| (m.delivered_seq, m.read_seq);
    assert_eq!(wm(fx.member(conv.id, b.id).await), (1, 1));
    assert_eq!(wm(fx.member(conv.id, a.id).await), (0, 0));
    store
        .update_receipts(conv.id, c.id, Some(1), None)
        .await
        .expect("receipts");
    fx.send_n(conv.id, a.id, 2).await;
    assert_eq!(wm(fx.member(conv.id, a.id).await), (3, 3));
    assert_eq!(wm(fx.member(conv.id, b.id).await), (1, 1));
    assert_eq!(wm(fx.member(conv.id, c.id).await), (1, 0));
    fx.send(conv.id, c.id).await;
    assert_eq!(wm(fx.member(conv.id, c.id).await), (4, 4));
}

/// History pages: `Before` (newest first page, returned ascending) and `After`, with limits.
pub async fn history_pages_before_and_after(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    let sent = fx.send_n(conv.id, a.id, 10).await;
    let page = |q| async move { seqs(&store.history(conv.id, b.id, q).await.expect("history")) };
    assert_eq!(page(before(None, 3)).await, vec![8, 9, 10]);
    assert_eq!(page(before(Some(8), 3)).await, vec![5, 6, 7]);
    assert_eq!(page(before(Some(2), 5)).await, vec![1]);
    assert_eq!(page(before(Some(1), 5)).await, Vec::<i64>::new());
    assert_eq!(page(before(None, 100)).await, (1..=10).collect::<Vec<_>>());
    assert_eq!(page(before(Some(100), 2)).await, vec![9, 10]);
    assert_eq!(page(after(0, 4)).await, vec![1, 2, 3, 4]);
    assert_eq!(page(after(8, 5)).await, vec![9, 10]);
    assert_eq!(page(after(10, 5)).await, Vec::<i64>::new());
    assert_eq!(page(after(3, 1)).await, vec![4]);
    assert_eq!(
        store.history(conv.id, b.id, before(None, 100)).await.expect("history"),
        sent,
        "history returns the stored messages"
    );
}

/// History leaves out messages hidden for the viewer (for them only; limits count visible
/// messages) and seqs at or below the viewer's `joined_seq`. `hide_message` records a
/// targeted `MessageHidden` the first time only.
pub async fn history_excludes_hidden_and_seqs_before_join(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, late) = (fx.user("o").await, fx.user("a").await, fx.user("late").await);
    let conv = fx.group(&owner, &[&a]).await;
    let sent = fx.send_n(conv.id, owner.id, 6).await;
    let start = fx.latest_pos().await;
    let audience = [owner.id, a.id, late.id];
    let hidden = fx.checked(&audience, store.hide_message(a.id, conv.id, 2)).await;
    assert_eq!(hidden.map(|c| c.kind), Some(ChangeKind::MessageHidden { seq: 2 }));
    assert!(
        fx.checked(&audience, store.hide_message(a.id, conv.id, 6))
            .await
            .is_some()
    );
    let again = fx.checked(&audience, store.hide_message(a.id, conv.id, 2)).await;
    assert_eq!(again, None, "hiding twice records once");

    let page = |viewer: UserId, q| async move { seqs(&store.history(conv.id, viewer, q).await.expect("history")) };
    assert_eq!(page(a.id, before(None, 100)).await, vec![1, 3, 4, 5]);
    assert_eq!(
        page(a.id, before(None, 3)).await,
        vec![3, 4, 5],
        "the limit counts visible messages"
    );
    assert_eq!(page(a.id, after(0, 2)).await, vec![1, 3]);
    assert_eq!(
        page(owner.id, before(None, 100)).await,
        (1..=6).collect::<Vec<_>>(),
        "hidden for a only"
    );
    assert_eq!(
        store.get_message(conv.id, 2).await.expect("get"),
        Some(sent[1].clone()),
        "hiding is not deleting"
    );
    let a_sees = fx.sync_all(a.id, start, 10).await;
    assert_eq!(
        a_sees.iter().map(|c| c.kind.clone()).collect::<Vec<_>>(),
        vec![
            ChangeKind::MessageHidden { seq: 2 },
            ChangeKind::MessageHidden { seq: 6 }
        ]
    );
    assert!(a_sees.iter().all(|c| c.conversation_id == Some(conv.id)));
    assert!(
        fx.sync_all(owner.id, start, 10).await.is_empty(),
        "targeted at the hider only"
    );

    store
        .add_members(conv.id, &[(late.id, crate::model::Role::Member)], fx.tick())
        .await
        .expect("add");
    assert!(page(late.id, before(None, 100)).await.is_empty());
    assert!(page(late.id, after(0, 100)).await.is_empty());
    fx.send(conv.id, a.id).await;
    assert_eq!(page(late.id, before(None, 100)).await, vec![7]);
    assert_eq!(page(late.id, after(2, 100)).await, vec![7]);
    assert_eq!(page(late.id, before(Some(7), 100)).await, Vec::<i64>::new());
    let err = store
        .hide_message(a.id, conv.id, 99)
        .await
        .expect_err("no such message");
    assert_eq!(err.code(), ErrorCode::NotFound);
}

/// Deleting for everyone leaves a tombstone (seq, sender, times kept; content gone) that every
/// read shows: `get_message`, history, sync, the conversation list. `MessageDeleted` is
/// recorded once; a missing message is `NotFound`.
pub async fn delete_for_everyone_tombstones_everywhere(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    let sent = fx.send_n(conv.id, a.id, 3).await;
    let at = fx.tick();
    let (tomb, change) = fx
        .checked(&[a.id, b.id], store.delete_message_for_everyone(conv.id, 2, at))
        .await;
    assert_eq!(
        change.map(|c| c.kind),
        Some(ChangeKind::MessageDeleted { seq: 2, deleted_at: at })
    );
    let expected = Message {
        content: None,
        deleted_at: Some(at),
        ..sent[1].clone()
    };
    assert_eq!(tomb, expected);
    assert_eq!(
        store.get_message(conv.id, 2).await.expect("get"),
        Some(expected.clone())
    );
    let (again, change) = fx
        .checked(&[a.id, b.id], store.delete_message_for_everyone(conv.id, 2, fx.tick()))
        .await;
    assert_eq!(again, expected, "the first deletion time stays");
    assert_eq!(change, None, "MessageDeleted is recorded once");

    for viewer in [a.id, b.id] {
        let h = fx.full_history(conv.id, viewer).await;
        assert_eq!(h, vec![sent[0].clone(), expected.clone(), sent[2].clone()]);
        let changes = fx.sync_all(viewer, 0, 3).await;
        let resolved: Vec<&Message> = changes
            .iter()
            .filter_map(|c| match &c.kind {
                ChangeKind::Message { message } if message.seq == 2 => Some(message),
                _ => None,
            })
            .collect();
        assert_eq!(resolved, vec![&expected], "sync resolves the message to its tombstone");
        let deleted: Vec<&ChangeKind> = changes
            .iter()
            .map(|c| &c.kind)
            .filter(|k| matches!(k, ChangeKind::MessageDeleted { .. }))
            .collect();
        assert_eq!(deleted, vec![&ChangeKind::MessageDeleted { seq: 2, deleted_at: at }]);
    }
    assert_eq!(fx.conversation(conv.id).await.last_seq, 3, "seqs are kept");

    let at3 = fx.tick();
    store
        .delete_message_for_everyone(conv.id, 3, at3)
        .await
        .expect("delete last");
    let list = store.list_conversations(b.id, false, 10).await.expect("list");
    let last = list[0].last_message.clone().expect("a last message");
    assert_eq!((last.seq, last.content, last.deleted_at), (3, None, Some(at3)));

    let err = store
        .delete_message_for_everyone(conv.id, 99, fx.tick())
        .await
        .expect_err("no such message");
    assert_eq!(err.code(), ErrorCode::NotFound);
}

fn receipt_changes(changes: &[Change], user: UserId) -> Vec<(i64, i64)> {
    changes
        .iter()
        .filter_map(|c| match c.kind {
            ChangeKind::Receipt {
                user_id,
                delivered_seq,
                read_seq,
            } if user_id == user => Some((delivered_seq, read_seq)),
            _ => None,
        })
        .collect()
}

/// Watermarks only move forward, never above `last_seq`; a `Receipt` change is recorded
/// only when something moved; unread = `last_seq - read_seq`.
pub async fn receipts_are_monotonic_and_clamped(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    fx.send_n(conv.id, a.id, 5).await;
    let start = fx.latest_pos().await;
    let fx = &fx;
    let mark = |d: Option<i64>, r: Option<i64>| async move {
        let (m, change) = fx
            .checked(&[a.id, b.id], store.update_receipts(conv.id, b.id, d, r))
            .await;
        assert_eq!(m, fx_member(store, conv.id, b.id).await, "returns the stored member");
        if let Some(c) = &change {
            assert_eq!(
                c.kind,
                ChangeKind::Receipt {
                    user_id: b.id,
                    delivered_seq: m.delivered_seq,
                    read_seq: m.read_seq
                }
            );
        }
        ((m.delivered_seq, m.read_seq), change.is_some())
    };
    assert_eq!(mark(Some(3), None).await, ((3, 0), true));
    assert_eq!(mark(None, Some(2)).await, ((3, 2), true));
    assert_eq!(mark(Some(1), Some(1)).await, ((3, 2), false), "never backwards");
    assert_eq!(mark(Some(10), None).await, ((5, 2), true), "clamped to last_seq");
    assert_eq!(mark(None, Some(99)).await, ((5, 5), true));
    assert_eq!(
        mark(Some(5), Some(5)).await,
        ((5, 5), false),
        "nothing moved, nothing recorded"
    );
    assert_eq!(mark(None, None).await, ((5, 5), false));
    fx.send(conv.id, a.id).await;
    assert_eq!(mark(Some(4), Some(4)).await, ((5, 5), false));
    let list = store.list_conversations(b.id, false, 10).await.expect("list");
    assert_eq!(list[0].unread, 1);
    assert_eq!(mark(Some(6), None).await, ((6, 5), true));

    let recorded = receipt_changes(&fx.sync_all(a.id, start, 2).await, b.id);
    assert_eq!(recorded, vec![(3, 0), (3, 2), (5, 2), (5, 5), (6, 5)]);
    assert_eq!(receipt_changes(&fx.sync_all(b.id, start, 100).await, b.id), recorded);
}

async fn fx_member(store: &dyn Store, c: ConversationId, u: UserId) -> crate::model::Member {
    store.get_member(c, u).await.expect("get_member").expect("member")
}

/// Reading up to a seq also delivers up to it; out-of-range values are clamped or ignored.
pub async fn read_receipt_implies_delivered(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, c) = (fx.user("a").await, fx.user("b").await, fx.user("c").await);
    let conv = fx.group(&a, &[&b, &c]).await;
    let audience = [a.id, b.id, c.id];
    let (empty, change) = fx
        .checked(&audience, store.update_receipts(conv.id, b.id, Some(3), Some(3)))
        .await;
    assert_eq!((empty.delivered_seq, empty.read_seq), (0, 0), "clamped to last_seq 0");
    assert_eq!(change, None);
    fx.send_n(conv.id, a.id, 5).await;
    let (m, _) = fx
        .checked(&audience, store.update_receipts(conv.id, b.id, None, Some(3)))
        .await;
    assert_eq!((m.delivered_seq, m.read_seq), (3, 3));
    let (m, _) = fx
        .checked(&audience, store.update_receipts(conv.id, c.id, Some(1), Some(4)))
        .await;
    assert_eq!((m.delivered_seq, m.read_seq), (4, 4), "delivered >= read");
    let (m, change) = fx
        .checked(&audience, store.update_receipts(conv.id, c.id, Some(-5), Some(-1)))
        .await;
    assert_eq!((m.delivered_seq, m.read_seq), (4, 4));
    assert_eq!(change, None);
}

/// Receipts of a non-member, or in a missing conversation, are `NotFound`.
pub async fn receipts_for_non_member_are_not_found(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, x) = (fx.user("a").await, fx.user("b").await, fx.user("x").await);
    let conv = fx.group(&a, &[&b]).await;
    fx.send(conv.id, a.id).await;
    let pos = fx.latest_pos().await;
    let err = store
        .update_receipts(conv.id, x.id, Some(1), Some(1))
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), ErrorCode::NotFound);
    let err = store
        .update_receipts(ConversationId::new(T0), a.id, Some(1), Some(1))
        .await
        .expect_err("no conversation");
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert_eq!(fx.latest_pos().await, pos);
}

/// Concurrent receipt updates end at the maximum; the recorded `Receipt` changes only ever
/// move forward, and are exactly the ones the calls returned.
pub async fn concurrent_receipts_keep_the_maximum(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&a, &[&b]).await;
    fx.send_n(conv.id, a.id, 20).await;
    let start = fx.latest_pos().await;
    let order: Vec<i64> = (1..=20).map(|i| (i * 7) % 20 + 1).collect();
    let results = join_all(order.iter().map(|&r| {
        let d = if r % 3 == 0 { Some(r) } else { None };
        store.update_receipts(conv.id, b.id, d, Some(r))
    }))
    .await;
    let mut returned: Vec<Change> = Vec::new();
    for r in results {
        let (m, change) = r.expect("update_receipts");
        assert!(m.delivered_seq >= m.read_seq);
        returned.extend(change);
    }
    returned.sort_by_key(|c| c.pos);
    fx.assert_returned(start, &returned, &[a.id, b.id]).await;
    let m = fx.member(conv.id, b.id).await;
    assert_eq!((m.delivered_seq, m.read_seq), (20, 20));
    let recorded = receipt_changes(&fx.sync_all(b.id, start, 100).await, b.id);
    assert!(!recorded.is_empty());
    for w in recorded.windows(2) {
        assert!(
            w[1].0 >= w[0].0 && w[1].1 >= w[0].1 && w[1] != w[0],
            "receipts in the log move forward: {recorded:?}"
        );
    }
    assert_eq!(recorded.last(), Some(&(20, 20)));
}

/// The list is ordered by newest activity: the newest message's `created_at`, else the
/// conversation's; ties by conversation id, descending.
pub async fn list_conversations_orders_by_activity(store: &dyn Store) {
    let fx = Fx::new(store);
    let (u, v) = (fx.user("u").await, fx.user("v").await);
    let c1 = fx.group(&u, &[&v]).await;
    let c2 = fx.group(&v, &[&u]).await;
    let c3 = fx.direct(&u, &v).await;
    let order =
        |list: Vec<crate::model::ConversationSummary>| list.iter().map(|s| s.conversation.id).collect::<Vec<_>>();
    assert_eq!(
        order(store.list_conversations(u.id, false, 10).await.expect("list")),
        vec![c3.id, c2.id, c1.id]
    );
    fx.send(c1.id, v.id).await;
    assert_eq!(
        order(store.list_conversations(u.id, false, 10).await.expect("list")),
        vec![c1.id, c3.id, c2.id]
    );
    fx.send(c2.id, u.id).await;
    assert_eq!(
        order(store.list_conversations(u.id, false, 10).await.expect("list")),
        vec![c2.id, c1.id, c3.id]
    );
    assert_eq!(
        order(store.list_conversations(v.id, false, 10).await.expect("list")),
        vec![c2.id, c1.id, c3.id]
    );

    // Ties: same creation time, no messages.
    let w = fx.user("w").await;
    let at = fx.tick();
    let mut tied = Vec::new();
    for _ in 0..3 {
        let new = crate::ports::NewConversation {
            created_at: at,
            ..fx.new_group(&w, &[&u], "tie")
        };
        tied.push(store.create_conversation(&new).await.expect("create").0.id);
    }
    tied.sort();
    tied.reverse();
    assert_eq!(
        order(store.list_conversations(w.id, false, 10).await.expect("list")),
        tied
    );
}

/// Each row carries the conversation, the caller's membership, the newest message visible to
/// them (tombstoned if deleted), unread = `last_seq - read_seq`, and the members with their
/// current profile and watermarks.
pub async fn list_conversations_unread_members_and_last_message(store: &dyn Store) {
    let fx = Fx::new(store);
    let (o, a) = (fx.user("Olga").await, fx.user("Arno").await);
    store
        .update_profile(
            o.id,
            &ProfilePatch {
                avatar_url: Some(Some("https://img/o.png".into())),
                ..Default::default()
            },
        )
        .await
        .expect("avatar");
    let conv = fx.group(&o, &[&a]).await;
    let empty = store.list_conversations(a.id, false, 10).await.expect("list");
    assert_eq!(empty.len(), 1);
    assert_eq!((empty[0].last_message.clone(), empty[0].unread), (None, 0));

    let sent = fx.send_n(conv.id, o.id, 3).await;
    let row = |user: UserId| async move {
        let mut list = store.list_conversations(user, false, 10).await.expect("list");
        assert_eq!(list.len(), 1);
        list.remove(0)
    };
    let r = row(a.id).await;
    assert_eq!(r.conversation, fx.conversation(conv.id).await);
    assert_eq!(r.me, fx.member(conv.id, a.id).await);
    assert_eq!(r.unread, 3);
    assert_eq!(r.last_message.as_ref(), Some(&sent[2]));
    let order: Vec<UserId> = store
        .list_members(conv.id)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(
        r.members.iter().map(|m| m.user_id).collect::<Vec<_>>(),
        order,
        "members in list_members order"
    );
    let mut members = r.members.clone();
    members.sort_by_key(|m| m.user_id);
    let mut expected = vec![
        MemberInfo {
            user_id: o.id,
            role: crate::model::Role::Owner,
            display_name: "Olga".into(),
            avatar_url: Some("https://img/o.png".into()),
            delivered_seq: 3,
            read_seq: 3,
        },
        MemberInfo {
            user_id: a.id,
            role: crate::model::Role::Member,
            display_name: "Arno".into(),
            avatar_url: None,
            delivered_seq: 0,
            read_seq: 0,
        },
    ];
    expected.sort_by_key(|m| m.user_id);
    assert_eq!(members, expected);
    assert_eq!(row(o.id).await.unread, 0, "own messages are read");

    store.update_receipts(conv.id, a.id, None, Some(2)).await.expect("read");
    store
        .update_profile(
            a.id,
            &ProfilePatch {
                display_name: Some("Arnold".into()),
                ..Default::default()
            },
        )
        .await
        .expect("rename");
    let r = row(a.id).await;
    assert_eq!(r.unread, 1);
    let me_info = r.members.iter().find(|m| m.user_id == a.id).expect("listed");
    assert_eq!(
        (me_info.display_name.as_str(), me_info.delivered_seq, me_info.read_seq),
        ("Arnold", 2, 2),
        "members carry current profiles and watermarks"
    );

    store.hide_message(a.id, conv.id, 3).await.expect("hide");
    assert_eq!(
        row(a.id).await.last_message.as_ref(),
        Some(&sent[1]),
        "newest visible to the caller"
    );
    assert_eq!(row(o.id).await.last_message.as_ref(), Some(&sent[2]));
    let at = fx.tick();
    store.delete_message_for_everyone(conv.id, 2, at).await.expect("delete");
    let last = row(a.id).await.last_message.expect("last");
    assert_eq!((last.seq, last.content, last.deleted_at), (2, None, Some(at)));
}

/// The archived flag filters the list (per user), `limit` cuts it, and conversations the
/// user is not (or no longer) a member of never appear.
pub async fn list_conversations_filters_archived_and_limits(store: &dyn Store) {
    let fx = Fx::new(store);
    let (u, v, w) = (fx.user("u").await, fx.user("v").await, fx.user("w").await);
    let c1 = fx.group(&u, &[&v]).await;
    let c2 = fx.group(&u, &[&v]).await;
    let c3 = fx.direct(&u, &v).await;
    let c4 = fx.group(&u, &[&w]).await;
    let gone = fx.group(&v, &[&u]).await;
    let _not_mine = fx.group(&v, &[&w]).await;
    store.remove_member(gone.id, u.id, v.id).await.expect("remove");
    store.set_archived(c1.id, u.id, true).await.expect("archive");
    store.set_archived(c3.id, u.id, true).await.expect("archive");
    let ids = |list: Vec<crate::model::ConversationSummary>| {
        list.iter()
            .map(|s| {
                assert_eq!(s.me.user_id, u.id);
                s.conversation.id
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(store.list_conversations(u.id, false, 10).await.expect("list")),
        vec![c4.id, c2.id]
    );
    let archived = store.list_conversations(u.id, true, 10).await.expect("list");
    assert!(archived.iter().all(|s| s.me.archived));
    assert_eq!(ids(archived), vec![c3.id, c1.id]);
    assert_eq!(
        ids(store.list_conversations(u.id, false, 1).await.expect("list")),
        vec![c4.id]
    );
    assert_eq!(
        store.list_conversations(v.id, false, 10).await.expect("list").len(),
        5,
        "archiving is per user"
    );
    store.set_archived(c1.id, u.id, false).await.expect("unarchive");
    assert_eq!(
        ids(store.list_conversations(u.id, false, 10).await.expect("list")),
        vec![c4.id, c2.id, c1.id]
    );
}

/// `blob_shared_with`: true exactly when a media message referencing the key, not deleted
/// for everyone, is in a conversation the user is a member of now, above their
/// `joined_seq`. Text that merely mentions a key, other keys (prefixes, `LIKE`
/// metacharacters), outsiders, late joiners, removed members and tombstones do not count.
pub async fn blob_shared_with_follows_membership_and_deletion(store: &dyn Store) {
    let fx = Fx::new(store);
    let [a, b, c, late, outsider] = &fx.users(&["a", "b", "c", "late", "outsider"]).await[..] else {
        unreachable!()
    };
    let group = fx.group(a, &[b, c]).await;
    let direct = fx.direct(a, b).await;
    let media = |conv: ConversationId, sender: UserId, cmid: &str, key: &str| NewMessage {
        content: Content::Media(MediaRef {
            blob_key: key.into(),
            content_type: "image/png".into(),
            size: 10,
            width: Some(1),
            height: Some(1),
            caption: Some(format!("caption mentioning {key}-other")),
        }),
        ..fx.new_message(conv, sender, cmid)
    };
    let shared = |key: &'static str, user: UserId| async move {
        store.blob_shared_with(key, user).await.expect("blob_shared_with")
    };

    fx.send(group.id, a.id).await;
    store
        .insert_message(&media(group.id, a.id, "m1", "k-shared"))
        .await
        .expect("insert");
    for u in [a, b, c] {
        assert!(shared("k-shared", u.id).await, "members see it");
    }
    assert!(!shared("k-shared", outsider.id).await, "an outsider does not");
    assert!(!shared("k-missing", a.id).await);
    assert!(!shared("k-shar", a.id).await, "a prefix is another key");
    assert!(!shared("k-shared-other", a.id).await, "a caption is not a reference");

    // A text message whose text looks like media content references nothing.
    let fake = NewMessage {
        content: text(r#"{"type":"media","blob_key":"k-text"}"#),
        ..fx.new_message(group.id, a.id, "fake")
    };
    store.insert_message(&fake).await.expect("insert");
    assert!(!shared("k-text", b.id).await);

    // Keys are compared exactly, metacharacters included.
    store
        .insert_message(&media(group.id, b.id, "m-meta", "k_%"))
        .await
        .expect("insert");
    assert!(shared("k_%", c.id).await);
    assert!(!shared("kx%", c.id).await);
    assert!(!shared("k_x", c.id).await);

    // A late joiner does not see history from before their join...
    store
        .add_members(group.id, &[(late.id, crate::model::Role::Member)], fx.tick())
        .await
        .expect("add");
    assert!(!shared("k-shared", late.id).await);
    // ...until the blob is sent again after it.
    let (m2, _) = store
        .insert_message(&media(group.id, b.id, "m2", "k-shared"))
        .await
        .expect("insert");
    assert!(shared("k-shared", late.id).await);

    // A removed member no longer sees it.
    store.remove_member(group.id, c.id, a.id).await.expect("remove");
    assert!(!shared("k-shared", c.id).await);
    assert!(shared("k-shared", b.id).await);

    // Deleted for everyone: gone, unless another message still references the key.
    let (m, _) = store
        .insert_message(&media(direct.id, a.id, "d1", "k-direct"))
        .await
        .expect("insert");
    assert!(shared("k-direct", b.id).await);
    store
        .delete_message_for_everyone(direct.id, m.seq, fx.tick())
        .await
        .expect("delete");
    assert!(!shared("k-direct", b.id).await);
    assert!(!shared("k-direct", a.id).await);
    let (m, _) = store
        .insert_message(&media(direct.id, b.id, "d2", "k-shared"))
        .await
        .expect("insert");
    store
        .delete_message_for_everyone(direct.id, m.seq, fx.tick())
        .await
        .expect("delete");
    assert!(shared("k-shared", b.id).await, "still in the group");

    // Hiding the messages for oneself does not unshare what was shared.
    store.hide_message(b.id, group.id, 2).await.expect("hide");
    store.hide_message(b.id, group.id, m2.seq).await.expect("hide");
    assert!(shared("k-shared", b.id).await);
}

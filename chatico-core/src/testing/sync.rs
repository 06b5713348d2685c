//! Conformance: sync positions, paging, replay and audiences.

use std::collections::BTreeMap;

use crate::ids::UserId;
use crate::model::{Message, Role};
use crate::ports::Store;
use crate::sync::{Change, ChangeKind, SyncCursor};

use super::fixtures::{Fx, sync_all};

fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.kind.clone()).collect()
}

/// A fresh store is at position 0; every recording write moves `latest_pos` to the position
/// of the (last) change it recorded; reads and no-op writes do not move it; a sync from
/// `latest_pos` is empty.
pub async fn latest_pos_starts_at_zero_and_moves_with_writes(store: &dyn Store) {
    let fx = Fx::new(store);
    assert_eq!(fx.latest_pos().await, 0, "a fresh store is at position 0");
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let p0 = fx.latest_pos().await;
    assert!(store.sync(a.id, p0, 10).await.expect("sync").changes.is_empty());

    store.add_contact(a.id, b.id, fx.tick()).await.expect("add");
    let p1 = fx.latest_pos().await;
    assert!(p1 > p0);
    let seen = fx.sync_all(a.id, p0, 10).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].pos, p1, "latest_pos is the position of the newest change");

    let conv = fx.group(&a, &[&b]).await;
    let p2 = fx.latest_pos().await;
    assert!(p2 > p1);
    let created = fx.sync_all(b.id, p1, 10).await;
    assert_eq!(created.last().map(|c| c.pos), Some(p2));

    fx.send(conv.id, a.id).await;
    let p3 = fx.latest_pos().await;
    assert!(p3 > p2);
    store.get_conversation(conv.id).await.expect("read");
    store.list_conversations(a.id, false, 10).await.expect("read");
    fx.sync_all(a.id, 0, 10).await;
    assert_eq!(store.add_contact(a.id, b.id, fx.tick()).await.expect("no-op"), None);
    assert_eq!(
        fx.latest_pos().await,
        p3,
        "reads and no-op writes do not move the position"
    );
    for u in [a.id, b.id] {
        let page = store.sync(u, p3, 10).await.expect("sync");
        assert!(page.changes.is_empty() && !page.limited && page.next >= p3);
        for c in fx.sync_all(u, 0, 10).await {
            assert!(c.pos <= p3, "no change is after latest_pos");
        }
    }
}

/// Paging: `limited` is true exactly when more changes for the user exist after `next`
/// (changes of other users do not count); `next` resumes without loss or duplicates.
pub async fn sync_pages_report_limited_and_next(store: &dyn Store) {
    let fx = Fx::new(store);
    let u = fx.user("u").await;
    let others = fx.users(&["c0", "c1", "c2", "c3", "c4", "c5"]).await;
    let stranger = fx.user("stranger").await;
    let start = fx.latest_pos().await;
    for c in &others {
        store.add_contact(u.id, c.id, fx.tick()).await.expect("add");
        // Someone else's change between each of u's.
        store.add_contact(stranger.id, c.id, fx.tick()).await.expect("add");
    }
    let all = fx.sync_all(u.id, start, 100).await;
    assert_eq!(all.len(), 6);

    let exact = store.sync(u.id, start, 6).await.expect("sync");
    assert_eq!(exact.changes, all);
    assert!(!exact.limited, "exactly `limit` changes and nothing after: not limited");
    assert!(exact.next >= all[5].pos);

    let first = store.sync(u.id, start, 5).await.expect("sync");
    assert_eq!(first.changes, all[..5].to_vec());
    assert!(first.limited);
    assert_eq!(first.next, all[4].pos);
    let rest = store.sync(u.id, first.next, 5).await.expect("sync");
    assert_eq!(rest.changes, all[5..].to_vec());
    assert!(!rest.limited);

    for page in [1u32, 2, 4] {
        assert_eq!(fx.sync_all(u.id, start, page).await, all, "page size {page}");
    }
    let tail = store.sync(u.id, all[5].pos, 3).await.expect("sync");
    assert!(tail.changes.is_empty() && !tail.limited);
    assert!(tail.next >= all[5].pos);
}

/// Builds a varied history around `u` and returns u's full change list.
async fn varied_history(fx: &Fx<'_>) -> (UserId, Vec<Change>) {
    let store = fx.store;
    let (u, v, w, x) = (
        fx.user("u").await,
        fx.user("v").await,
        fx.user("w").await,
        fx.user("x").await,
    );
    store.add_contact(u.id, v.id, fx.tick()).await.expect("contact");
    let g = fx.group(&u, &[&v, &w]).await;
    let d = fx.direct(&u, &x).await;
    fx.send_n(g.id, v.id, 3).await;
    fx.send(d.id, x.id).await;
    store
        .update_receipts(g.id, u.id, Some(3), Some(2))
        .await
        .expect("receipts");
    store.hide_message(u.id, g.id, 1).await.expect("hide");
    store
        .delete_message_for_everyone(g.id, 2, fx.tick())
        .await
        .expect("delete");
    store.set_archived(d.id, u.id, true).await.expect("archive");
    store.set_role(g.id, v.id, Role::Admin).await.expect("role");
    store.block(u.id, w.id, fx.tick()).await.expect("block");
    store.remove_member(g.id, w.id, u.id).await.expect("remove");
    store
        .update_conversation(g.id, Some("renamed".into()), None)
        .await
        .expect("rename");
    fx.send(g.id, u.id).await;
    let other = fx.group(&v, &[&w]).await;
    fx.send(other.id, v.id).await;
    store
        .add_members(other.id, &[(u.id, Role::Member)], fx.tick())
        .await
        .expect("add");
    fx.send(other.id, w.id).await;
    let all = fx.sync_all(u.id, 0, 1000).await;
    (u.id, all)
}

/// Replaying from every cursor — each position u has seen, and the positions just before
/// them — with various page sizes yields exactly the rest of the same sequence.
pub async fn sync_replay_from_every_cursor_is_identical(store: &dyn Store) {
    let fx = Fx::new(store);
    let (u, all) = varied_history(&fx).await;
    assert!(all.len() >= 20, "the history is varied ({} changes)", all.len());
    let pages: [&[u32]; 3] = [&[1], &[2, 5], &[3, 1, 7]];
    for (i, c) in all.iter().enumerate() {
        let p = pages[i % pages.len()];
        assert_eq!(
            sync_all(store, u, c.pos, p).await,
            all[i + 1..].to_vec(),
            "from pos {}",
            c.pos
        );
        assert_eq!(
            sync_all(store, u, c.pos - 1, p).await,
            all[i..].to_vec(),
            "from pos {}",
            c.pos - 1
        );
    }
    assert_eq!(sync_all(store, u, 0, &[1]).await, all);
}

/// Conversation changes reach current members from their own `MemberJoined` on, and nobody
/// else; each member sees the same change at the same position.
pub async fn sync_conversation_changes_reach_members_from_their_join(store: &dyn Store) {
    let fx = Fx::new(store);
    let (o, a, b, x) = (
        fx.user("o").await,
        fx.user("a").await,
        fx.user("b").await,
        fx.user("x").await,
    );
    let conv = fx.group(&o, &[&a]).await;
    let elsewhere = fx.group(&x, &[&o]).await;
    fx.send_n(conv.id, a.id, 2).await;
    fx.send(elsewhere.id, x.id).await;
    let (added, _) = fx
        .checked(
            &[o.id, a.id, b.id, x.id],
            store.add_members(conv.id, &[(b.id, Role::Member)], fx.tick()),
        )
        .await;
    assert_eq!(added.len(), 1);
    let m3 = fx.send(conv.id, o.id).await;
    store.set_role(conv.id, a.id, Role::Admin).await.expect("role");

    let b_sees = fx.sync_all(b.id, 0, 100).await;
    assert_eq!(
        kinds(&b_sees),
        vec![
            ChangeKind::MemberJoined {
                user_id: b.id,
                role: Role::Member
            },
            ChangeKind::Message { message: m3 },
            ChangeKind::RoleChanged {
                user_id: a.id,
                role: Role::Admin
            },
        ]
    );
    assert!(b_sees.iter().all(|c| c.conversation_id == Some(conv.id)));

    let a_sees = fx.sync_all(a.id, 0, 100).await;
    assert!(
        a_sees.iter().all(|c| c.conversation_id == Some(conv.id)),
        "nothing of other conversations"
    );
    let by_pos: BTreeMap<SyncCursor, &Change> = a_sees.iter().map(|c| (c.pos, c)).collect();
    for c in &b_sees {
        assert_eq!(
            by_pos.get(&c.pos),
            Some(&c),
            "the same change at the same position for everyone"
        );
    }
    let x_sees = fx.sync_all(x.id, 0, 100).await;
    assert!(x_sees.iter().all(|c| c.conversation_id == Some(elsewhere.id)));
    let o_sees = fx.sync_all(o.id, 0, 100).await;
    let convs: std::collections::BTreeSet<_> = o_sees.iter().filter_map(|c| c.conversation_id).collect();
    assert_eq!(convs, [conv.id, elsewhere.id].into_iter().collect());
}

/// Targeted changes (`MessageHidden`, `Archived`, targeted `MemberLeft`, contacts, blocks)
/// reach their target once, and nobody else — not even the other members.
pub async fn sync_targeted_changes_reach_only_the_target(store: &dyn Store) {
    let fx = Fx::new(store);
    let (t, o, other) = (fx.user("t").await, fx.user("o").await, fx.user("other").await);
    let conv = fx.group(&o, &[&t, &other]).await;
    fx.send(conv.id, o.id).await;
    let start = fx.latest_pos().await;
    store.hide_message(t.id, conv.id, 1).await.expect("hide");
    store.set_archived(conv.id, t.id, true).await.expect("archive");
    store.add_contact(t.id, o.id, fx.tick()).await.expect("contact");
    store.block(t.id, other.id, fx.tick()).await.expect("block");
    assert!(fx.sync_all(o.id, start, 10).await.is_empty());
    assert!(fx.sync_all(other.id, start, 10).await.is_empty());
    assert_eq!(
        kinds(&fx.sync_all(t.id, start, 10).await),
        vec![
            ChangeKind::MessageHidden { seq: 1 },
            ChangeKind::Archived { archived: true },
            ChangeKind::ContactAdded { user_id: o.id },
            ChangeKind::Blocked { user_id: other.id },
        ]
    );
    let start = fx.latest_pos().await;
    store.remove_member(conv.id, other.id, o.id).await.expect("remove");
    let left = ChangeKind::MemberLeft {
        user_id: other.id,
        by: o.id,
    };
    assert_eq!(kinds(&fx.sync_all(other.id, start, 10).await), vec![left.clone()]);
    assert_eq!(kinds(&fx.sync_all(t.id, start, 10).await), vec![left.clone()]);
    assert_eq!(kinds(&fx.sync_all(o.id, start, 10).await), vec![left]);
    let t_pos = fx.sync_all(t.id, start, 10).await[0].pos;
    let other_pos = fx.sync_all(other.id, start, 10).await[0].pos;
    assert_ne!(t_pos, other_pos, "the targeted copy is a change of its own");
}

/// A `Message` change carries the stored message, and reads as its tombstone once deleted;
/// a client that synced before the deletion gets `MessageDeleted` next.
pub async fn sync_message_changes_resolve_to_tombstones(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let conv = fx.direct(&a, &b).await;
    let start = fx.latest_pos().await;
    let m = fx.send(conv.id, a.id).await;
    let before = fx.sync_all(b.id, start, 10).await;
    assert_eq!(kinds(&before), vec![ChangeKind::Message { message: m.clone() }]);
    let cursor = before[0].pos;
    let at = fx.tick();
    store
        .delete_message_for_everyone(conv.id, m.seq, at)
        .await
        .expect("delete");
    assert_eq!(
        kinds(&fx.sync_all(b.id, cursor, 10).await),
        vec![ChangeKind::MessageDeleted { seq: 1, deleted_at: at }]
    );
    let tomb = Message {
        content: None,
        deleted_at: Some(at),
        ..m
    };
    assert_eq!(
        kinds(&fx.sync_all(b.id, start, 10).await),
        vec![
            ChangeKind::Message { message: tomb },
            ChangeKind::MessageDeleted { seq: 1, deleted_at: at }
        ]
    );
}

/// Positions are store-wide: distinct changes never share a position, whoever reads them.
pub async fn sync_positions_are_unique_across_users(store: &dyn Store) {
    let fx = Fx::new(store);
    let (u, all) = varied_history(&fx).await;
    let latest = fx.latest_pos().await;
    let mut seen: BTreeMap<SyncCursor, Change> = all.iter().map(|c| (c.pos, c.clone())).collect();
    assert_eq!(seen.len(), all.len());
    let members = store.search_users(None, None, 100).await.expect("users");
    for m in members.iter().filter(|m| m.id != u) {
        for c in fx.sync_all(m.id, 0, 1000).await {
            assert!(c.pos <= latest);
            match seen.get(&c.pos) {
                Some(prev) => assert_eq!(prev, &c, "one position, one change"),
                None => {
                    seen.insert(c.pos, c);
                }
            }
        }
    }
}

/// `audience(from, to)` is exactly the users for whom a sync from `from` returns a change at
/// or below `to`, for every range of a log with targeted changes, joins, a removal (the
/// removed user keeps their targeted `MemberLeft` only), a re-join and several
/// conversations; each user once, ordered by id; empty ranges are empty.
pub async fn audience_is_who_sync_shows_each_range_to(store: &dyn Store) {
    let fx = Fx::new(store);
    let (o, a, b, c, x) = (
        fx.user("o").await,
        fx.user("a").await,
        fx.user("b").await,
        fx.user("c").await,
        fx.user("x").await,
    );
    let start = fx.latest_pos().await;
    let conv = fx.group(&o, &[&a]).await;
    fx.send(conv.id, a.id).await;
    store.add_contact(x.id, o.id, fx.tick()).await.expect("contact");
    let other = fx.group(&x, &[&c]).await;
    fx.send(other.id, c.id).await;
    store
        .add_members(conv.id, &[(b.id, Role::Member)], fx.tick())
        .await
        .expect("add");
    fx.send(conv.id, b.id).await;
    store.remove_member(conv.id, a.id, o.id).await.expect("remove");
    fx.send(conv.id, o.id).await;
    store.set_archived(other.id, c.id, true).await.expect("archive");
    store
        .add_members(conv.id, &[(a.id, Role::Member)], fx.tick())
        .await
        .expect("re-add");
    fx.send(conv.id, o.id).await;
    store.block(b.id, x.id, fx.tick()).await.expect("block");
    let latest = fx.latest_pos().await;
    assert!(latest - start >= 15, "the script records a log to slice");

    let everyone = [o.id, a.id, b.id, c.id, x.id];
    let mut visible: BTreeMap<UserId, Vec<SyncCursor>> = BTreeMap::new();
    for u in everyone {
        visible.insert(u, fx.sync_all(u, 0, 100).await.iter().map(|c| c.pos).collect());
    }
    for from in start..=latest {
        for to in from..=latest + 1 {
            let mut expected: Vec<UserId> = visible
                .iter()
                .filter(|(_, ps)| ps.iter().any(|&p| p > from && p <= to))
                .map(|(u, _)| *u)
                .collect();
            expected.sort_unstable();
            let got = store.audience(from, to).await.expect("audience");
            assert_eq!(got, expected, "audience({from}, {to})");
        }
    }
    assert!(
        store.audience(latest, start).await.expect("audience").is_empty(),
        "to < from"
    );
    // The removed-then-re-added member sees the changes from their new join only: not the
    // message sent while they were out (they got their targeted MemberLeft before it).
    let out_msg = visible[&o.id]
        .iter()
        .copied()
        .filter(|p| !visible[&a.id].contains(p))
        .filter(|&p| p > start)
        .max()
        .expect("a change `a` does not see");
    assert!(
        !store
            .audience(out_msg - 1, out_msg)
            .await
            .expect("audience")
            .contains(&a.id)
    );
}

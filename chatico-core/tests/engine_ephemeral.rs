//! Typing, presence (several devices), the sync snapshot, and blocking hiding all of it.

mod common;

use chatico_core::model::Presence;
use chatico_core::ports::Store;
use chatico_core::sync::Event;
use common::*;

fn presence_events(deliveries: &[chatico_core::sync::Delivery]) -> Vec<(Vec<chatico_core::ids::UserId>, Presence)> {
    deliveries
        .iter()
        .filter_map(|d| match &d.event {
            Event::Presence(p) => Some((d.recipients.clone(), p.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn typing_reaches_the_other_members_and_expires() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c]);
    let out = block_on(h.engine.typing(a, g, true)).expect("typing");
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].recipients, sorted(vec![b, c]), "not the typist");
    let Event::Typing { expires_at, typing, .. } = &out.deliveries[0].event else {
        panic!("typing event")
    };
    assert!(*typing);
    assert_eq!(*expires_at, Some(T0 + 6_000));

    let snap = block_on(h.engine.sync(b, 0, 10)).expect("sync").ephemeral;
    assert_eq!(snap.typing.len(), 1);
    assert_eq!((snap.typing[0].user_id, snap.typing[0].expires_at), (a, T0 + 6_000));
    assert!(
        block_on(h.engine.sync(a, 0, 10))
            .expect("sync")
            .ephemeral
            .typing
            .is_empty(),
        "not your own"
    );

    h.clock.advance(5_999);
    assert_eq!(
        block_on(h.engine.sync(b, 0, 10)).expect("sync").ephemeral.typing.len(),
        1
    );
    h.clock.advance(1);
    assert!(
        block_on(h.engine.sync(b, 0, 10))
            .expect("sync")
            .ephemeral
            .typing
            .is_empty(),
        "expired"
    );

    // A refresh extends it; a stop ends it at once.
    block_on(h.engine.typing(a, g, true)).expect("typing");
    h.clock.advance(3_000);
    block_on(h.engine.typing(a, g, true)).expect("refresh");
    h.clock.advance(4_000);
    assert_eq!(
        block_on(h.engine.sync(b, 0, 10)).expect("sync").ephemeral.typing.len(),
        1
    );
    let stop = block_on(h.engine.typing(a, g, false)).expect("stop");
    let Event::Typing { typing, expires_at, .. } = &stop.deliveries[0].event else {
        panic!("typing event")
    };
    assert_eq!((*typing, *expires_at), (false, None));
    assert!(
        block_on(h.engine.sync(b, 0, 10))
            .expect("sync")
            .ephemeral
            .typing
            .is_empty()
    );
}

#[test]
fn typing_expiry_is_configurable() {
    let mut c = test_config();
    c.limits.typing_expiry_ms = 1_000;
    let h = Harness::with_config(c);
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    block_on(h.engine.typing(a, d, true)).expect("typing");
    h.clock.advance(1_000);
    assert!(
        block_on(h.engine.sync(b, 0, 10))
            .expect("sync")
            .ephemeral
            .typing
            .is_empty()
    );
}

#[test]
fn typing_never_crosses_a_block() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c]);
    block_on(h.engine.block(c, a)).expect("c blocks a");
    let out = block_on(h.engine.typing(a, g, true)).expect("typing");
    assert_eq!(out.deliveries[0].recipients, vec![b]);
    assert!(
        block_on(h.engine.sync(c, 0, 100))
            .expect("sync")
            .ephemeral
            .typing
            .is_empty()
    );
    // And the other way: the blocker's typing does not reach the blocked.
    let out = block_on(h.engine.typing(c, g, true)).expect("typing");
    assert_eq!(out.deliveries[0].recipients, vec![b]);
    assert!(
        block_on(h.engine.sync(a, 0, 100))
            .expect("sync")
            .ephemeral
            .typing
            .iter()
            .all(|t| t.user_id != c)
    );
}

#[test]
fn presence_is_online_while_any_connection_is_open() {
    let h = Harness::new();
    let [a, friend] = h.users(&["A", "Friend"])[..] else {
        unreachable!()
    };
    block_on(h.engine.add_contact(friend, a)).expect("contact");

    let on = block_on(h.engine.connected(a, 1)).expect("connect phone");
    let ev = presence_events(&on.deliveries);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, vec![friend]);
    assert!(ev[0].1.online);
    assert!(block_on(h.engine.is_online(a)).expect("is_online"));

    let laptop = block_on(h.engine.connected(a, 2)).expect("connect laptop");
    assert!(laptop.deliveries.is_empty(), "already online");
    let phone_off = block_on(h.engine.disconnected(a, 1)).expect("phone off");
    assert!(phone_off.deliveries.is_empty(), "still online on the laptop");
    let p = block_on(h.engine.presence_of(friend, &[a])).expect("presence");
    assert!(p[0].online);
    assert_eq!(block_on(h.store.get_user(a)).expect("u").expect("u").last_seen_at, None);

    h.clock.advance(60_000);
    let off = block_on(h.engine.disconnected(a, 2)).expect("laptop off");
    let ev = presence_events(&off.deliveries);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].0, vec![friend]);
    assert_eq!((ev[0].1.online, ev[0].1.last_seen_at), (false, Some(T0 + 60_000)));
    assert_eq!(
        block_on(h.store.get_user(a)).expect("u").expect("u").last_seen_at,
        Some(T0 + 60_000),
        "last seen stored on the last disconnect"
    );
    assert!(!block_on(h.engine.is_online(a)).expect("is_online"));
    // An unknown connection closing changes nothing.
    assert!(
        block_on(h.engine.disconnected(a, 99))
            .expect("noop")
            .deliveries
            .is_empty()
    );
}

#[test]
fn presence_goes_to_contact_owners_and_co_members_never_across_a_block() {
    let h = Harness::new();
    let [a, owner_of_contact, co_member, blocked_co_member, blocker, stranger] =
        h.users(&["A", "Contact owner", "Co", "Blocked", "Blocker", "Stranger"])[..]
    else {
        unreachable!()
    };
    block_on(h.engine.add_contact(owner_of_contact, a)).expect("contact");
    block_on(h.engine.add_contact(blocker, a)).expect("contact");
    h.group(a, "G", &[co_member, blocked_co_member]);
    block_on(h.engine.block(a, blocked_co_member)).expect("a blocks");
    block_on(h.engine.block(blocker, a)).expect("blocker blocks a");
    let on = block_on(h.engine.connected(a, 1)).expect("connect");
    let ev = presence_events(&on.deliveries);
    assert_eq!(ev[0].0, sorted(vec![owner_of_contact, co_member]));
    assert!(!ev[0].0.contains(&stranger));

    // The blocked see a as offline with no last seen, even though a is online.
    for viewer in [blocked_co_member, blocker] {
        let p = block_on(h.engine.presence_of(viewer, &[a])).expect("presence");
        assert_eq!((p[0].online, p[0].last_seen_at), (false, None));
        let snap = block_on(h.engine.sync(viewer, 0, 100)).expect("sync").ephemeral;
        assert!(
            snap.presence.iter().all(|p| p.user_id != a),
            "no presence across a block"
        );
    }
    // Everyone else sees a online, also in the sync snapshot.
    let p = block_on(h.engine.presence_of(co_member, &[a])).expect("presence");
    assert!(p[0].online);
    let snap = block_on(h.engine.sync(co_member, 0, 100)).expect("sync").ephemeral;
    assert!(snap.presence.iter().any(|p| p.user_id == a && p.online));
    // a's own snapshot does not show the users across a block.
    let snap = block_on(h.engine.sync(a, 0, 100)).expect("sync").ephemeral;
    let shown: Vec<_> = snap.presence.iter().map(|p| p.user_id).collect();
    assert!(shown.contains(&co_member));
    assert!(!shown.contains(&blocked_co_member) && !shown.contains(&blocker));
}

#[test]
fn presence_queries_are_bounded() {
    let mut c = test_config();
    c.limits.max_presence_query = 2;
    let h = Harness::with_config(c);
    let [a, b, c2, d] = h.users(&["A", "B", "C", "D"])[..] else {
        unreachable!()
    };
    assert_eq!(
        invalid_field(block_on(h.engine.presence_of(a, &[b, c2, d]))).as_deref(),
        Some("users")
    );
    assert_eq!(block_on(h.engine.presence_of(a, &[b, b])).expect("ok").len(), 1);
}

#[test]
fn disconnecting_ends_typing() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    block_on(h.engine.connected(a, 7)).expect("connect");
    block_on(h.engine.typing(a, d, true)).expect("typing");
    block_on(h.engine.disconnected(a, 7)).expect("gone");
    assert!(
        block_on(h.engine.sync(b, 0, 10))
            .expect("sync")
            .ephemeral
            .typing
            .is_empty()
    );
}

#[test]
fn sync_returns_everything_missed_and_live_positions_match_it() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let g = block_on(h.engine.create_group(a, "G".into(), vec![b])).expect("group");
    let mut live = g.deliveries.clone();
    let g = g.value.id;
    let sent = block_on(h.engine.send(a, text_msg(g, "1", "one"))).expect("send");
    live.extend(sent.deliveries);
    let added = block_on(h.engine.add_members(a, g, vec![c])).expect("add");
    live.extend(added.deliveries);
    let read = block_on(h.engine.mark_read(b, g, 2)).expect("read");
    live.extend(read.deliveries);
    // What b got live is exactly b's sync from 0, in the same order.
    let synced = block_on(h.engine.sync(b, 0, 500)).expect("sync").page;
    assert!(!synced.limited);
    let got_live: Vec<_> = live
        .iter()
        .filter(|d| d.recipients.contains(&b))
        .filter_map(|d| match &d.event {
            Event::Change(c) => Some(c.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(got_live, synced.changes);
    // c, who joined later, sees from their own join on.
    let c_sync = block_on(h.engine.sync(c, 0, 500)).expect("sync").page;
    let c_live: Vec<_> = live
        .iter()
        .filter(|d| d.recipients.contains(&c))
        .filter_map(|d| match &d.event {
            Event::Change(ch) => Some(ch.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(c_live, c_sync.changes);
    // `sync_changes` (what a connection's checkpoint reads) is the same page, without the
    // snapshot; invalid cursors are refused the same way.
    for (user, since, limit) in [(b, 0, 500), (b, 2, 1), (c, 0, 500), (c, 3, 2)] {
        let full = block_on(h.engine.sync(user, since, limit)).expect("sync").page;
        let changes = block_on(h.engine.sync_changes(user, since, limit)).expect("sync_changes");
        assert_eq!(changes, full);
    }
    assert!(block_on(h.engine.sync_changes(b, -1, 10)).is_err());
}

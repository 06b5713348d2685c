//! The engine's rules: membership privacy, blocking, roles, deletes, receipts, idempotency,
//! validation and limits — and that every `Outcome` reaches exactly the users concerned.

mod common;

use chatico_core::Error;
use chatico_core::engine::SendMessage;
use chatico_core::ids::ConversationId;
use chatico_core::model::{
    BlobMeta, BlobPurpose, Content, HistoryDirection, HistoryQuery, MediaRef, ProfilePatch, Role, SystemNotice,
};
use chatico_core::ports::Store;
use chatico_core::sync::{ChangeKind, Event};
use common::*;

type ConvOp<'a> = Box<dyn Fn(ConversationId) -> chatico_core::Result<()> + 'a>;

fn newest(limit: u32) -> HistoryQuery {
    HistoryQuery {
        direction: HistoryDirection::Before,
        anchor: None,
        limit,
    }
}

// ---- membership privacy --------------------------------------------------------------------

#[test]
fn a_conversation_you_are_not_in_answers_like_a_missing_one() {
    let h = Harness::new();
    let [a, b, outsider] = h.users(&["A", "B", "Outsider"])[..] else {
        unreachable!()
    };
    let group = h.group(a, "G", &[b]);
    let direct = h.direct(a, b);
    h.say(a, group, "hi");
    let missing = ConversationId::new(T0);
    let e = &h.engine;
    for conv in [group, direct] {
        // Every operation on a conversation, by a non-member on an existing one and on one
        // that does not exist: the same error, to the byte.
        let ops: Vec<(&str, ConvOp<'_>)> = vec![
            (
                "get",
                Box::new(|c| block_on(e.get_conversation(outsider, c)).map(|_| ())),
            ),
            (
                "history",
                Box::new(|c| block_on(e.history(outsider, c, newest(10))).map(|_| ())),
            ),
            (
                "send",
                Box::new(|c| block_on(e.send(outsider, text_msg(c, "x", "hi"))).map(|_| ())),
            ),
            (
                "typing",
                Box::new(|c| block_on(e.typing(outsider, c, true)).map(|_| ())),
            ),
            ("read", Box::new(|c| block_on(e.mark_read(outsider, c, 1)).map(|_| ()))),
            (
                "delivered",
                Box::new(|c| block_on(e.mark_delivered(outsider, c, 1)).map(|_| ())),
            ),
            (
                "delete_me",
                Box::new(|c| block_on(e.delete_for_me(outsider, c, 1)).map(|_| ())),
            ),
            (
                "delete_all",
                Box::new(|c| block_on(e.delete_for_everyone(outsider, c, 1)).map(|_| ())),
            ),
            (
                "add",
                Box::new(|c| block_on(e.add_members(outsider, c, vec![a])).map(|_| ())),
            ),
            (
                "remove",
                Box::new(|c| block_on(e.remove_member(outsider, c, b)).map(|_| ())),
            ),
            (
                "role",
                Box::new(|c| block_on(e.set_role(outsider, c, b, Role::Admin)).map(|_| ())),
            ),
            ("leave", Box::new(|c| block_on(e.leave(outsider, c)).map(|_| ()))),
            (
                "search",
                Box::new(|c| {
                    let req = chatico_core::protocol::SearchRequest {
                        q: "hi".into(),
                        conversation_id: Some(c),
                        ..Default::default()
                    };
                    block_on(e.search_messages(outsider, req)).map(|_| ())
                }),
            ),
            (
                "update",
                Box::new(|c| block_on(e.update_group(outsider, c, Some("T".into()), None)).map(|_| ())),
            ),
            (
                "archive",
                Box::new(|c| block_on(e.archive(outsider, c, true)).map(|_| ())),
            ),
        ];
        for (name, op) in &ops {
            let existing = op(conv);
            let absent = op(missing);
            assert_eq!(
                existing,
                Err(not_found_conversation()),
                "{name} on an existing conversation"
            );
            assert_eq!(
                existing, absent,
                "{name}: existing and missing must be indistinguishable"
            );
            assert_eq!(
                format!("{:?}", existing.as_ref().map_err(|e| e.body())),
                format!("{:?}", absent.as_ref().map_err(|e| e.body())),
            );
        }
    }
    // Nothing changed for the members.
    assert_eq!(block_on(e.history(a, group, newest(50))).expect("history").len(), 2);
}

#[test]
fn a_removed_member_loses_access() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b]);
    block_on(h.engine.remove_member(a, g, b)).expect("remove");
    assert_eq!(
        block_on(h.engine.history(b, g, newest(10))),
        Err(not_found_conversation())
    );
}

// ---- direct conversations -------------------------------------------------------------------

#[test]
fn open_direct_is_one_per_pair_and_idempotent() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let first = block_on(h.engine.open_direct(a, b)).expect("open");
    assert!(!first.deliveries.is_empty());
    h.assert_deliveries_match_sync(&first.deliveries, &[a, b]);
    let again = block_on(h.engine.open_direct(a, b)).expect("again");
    let reverse = block_on(h.engine.open_direct(b, a)).expect("reverse");
    assert_eq!(again.value.id, first.value.id);
    assert_eq!(reverse.value.id, first.value.id);
    assert!(again.deliveries.is_empty() && reverse.deliveries.is_empty());
    assert_eq!(
        invalid_field(block_on(h.engine.open_direct(a, a))).as_deref(),
        Some("user_id")
    );
    let ghost = chatico_core::ids::UserId::new(T0);
    assert_eq!(
        block_on(h.engine.open_direct(a, ghost)).map(|o| o.value),
        Err(Error::not_found("user"))
    );
}

#[test]
fn direct_conversations_have_no_member_management_and_cannot_be_left() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    assert!(is_forbidden(block_on(h.engine.add_members(a, d, vec![c]))));
    assert!(is_forbidden(block_on(h.engine.remove_member(a, d, b))));
    assert!(is_forbidden(block_on(h.engine.set_role(a, d, b, Role::Admin))));
    assert!(is_forbidden(block_on(h.engine.update_group(
        a,
        d,
        Some("x".into()),
        None
    ))));
    assert!(is_forbidden(block_on(h.engine.leave(a, d))));
    assert_eq!(block_on(h.store.list_members(d)).expect("members").len(), 2);
}

// ---- blocking ------------------------------------------------------------------------------

#[test]
fn blocking_forbids_direct_messages_both_ways() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    h.say(b, d, "before");
    let blocked = block_on(h.engine.block(a, b)).expect("block");
    assert!(blocked.value);
    h.assert_deliveries_match_sync(&blocked.deliveries, &[a, b]);
    assert_eq!(
        blocked.deliveries[0].recipients,
        vec![a],
        "only the blocker hears of it"
    );
    assert!(is_forbidden(block_on(h.engine.send(b, text_msg(d, "1", "hello?")))));
    assert!(is_forbidden(block_on(h.engine.send(a, text_msg(d, "2", "hello?")))));
    assert!(is_forbidden(block_on(h.engine.open_direct(b, a))));
    assert!(is_forbidden(block_on(h.engine.open_direct(a, b))));
    assert_eq!(block_on(h.engine.history(a, d, newest(10))).expect("history").len(), 1);
    block_on(h.engine.unblock(a, b)).expect("unblock");
    h.say(b, d, "after");
}

#[test]
fn a_direct_conversation_cannot_be_opened_across_a_block() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    block_on(h.engine.block(b, a)).expect("block");
    assert!(is_forbidden(block_on(h.engine.open_direct(a, b))));
    assert!(
        block_on(h.engine.list_conversations(a, false, 10))
            .expect("list")
            .is_empty()
    );
}

#[test]
fn blocking_forbids_group_invitations_both_ways() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    block_on(h.engine.block(b, a)).expect("b blocks a");
    // a may not invite b (b blocked a) ...
    assert!(is_forbidden(block_on(h.engine.create_group(a, "G".into(), vec![b, c]))));
    assert!(
        block_on(h.engine.list_conversations(c, false, 10))
            .expect("list")
            .is_empty()
    );
    let g = h.group(a, "G", &[c]);
    assert!(is_forbidden(block_on(h.engine.add_members(a, g, vec![b]))));
    // ... and b may not invite a (b blocked a).
    assert!(is_forbidden(block_on(h.engine.create_group(b, "H".into(), vec![a]))));
    assert_eq!(block_on(h.store.list_members(g)).expect("members").len(), 2);
}

#[test]
fn group_messages_reach_every_member_even_across_a_block() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c]);
    block_on(h.engine.block(b, c)).expect("block");
    let out = block_on(h.engine.send(c, text_msg(g, "m1", "hello all"))).expect("send");
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].recipients, sorted(vec![a, b, c]));
    h.assert_deliveries_match_sync(&out.deliveries, &[a, b, c]);
}

#[test]
fn profile_updates_never_cross_a_block() {
    let h = Harness::new();
    let [a, b, c, d, e] = h.users(&["A", "B", "C", "D", "E"])[..] else {
        unreachable!()
    };
    h.group(a, "G", &[b, c]);
    block_on(h.engine.add_contact(d, a)).expect("d has a as contact");
    block_on(h.engine.block(a, c)).expect("a blocks c");
    let out = block_on(h.engine.update_profile(
        a,
        ProfilePatch {
            display_name: Some("  Alice  ".into()),
            ..Default::default()
        },
    ))
    .expect("update");
    assert_eq!(out.value.display_name, "Alice");
    let to = recipients_of(&out.deliveries, |e| matches!(e, Event::Profile(_)));
    // Self (other devices), a co-member, a contact owner; not the blocked c, not stranger e.
    assert_eq!(to, sorted(vec![a, b, d]));
    assert!(!to.contains(&e));
    // The blocked side's updates do not reach the blocker either.
    let out = block_on(h.engine.update_profile(
        c,
        ProfilePatch {
            bio: Some("hi".into()),
            ..Default::default()
        },
    ))
    .expect("update");
    assert_eq!(
        recipients_of(&out.deliveries, |e| matches!(e, Event::Profile(_))),
        sorted(vec![b, c])
    );
    // No change, no event.
    let same = block_on(h.engine.update_profile(
        c,
        ProfilePatch {
            bio: Some("hi".into()),
            ..Default::default()
        },
    ))
    .expect("update");
    assert!(same.deliveries.is_empty());
}

#[test]
fn last_seen_is_hidden_across_a_block_in_every_profile_read() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    block_on(h.engine.connected(a, 1)).expect("online");
    block_on(h.engine.disconnected(a, 1)).expect("offline");
    block_on(h.engine.connected(a, 2)).expect("online again");
    block_on(h.engine.block(b, a)).expect("b blocks a");
    block_on(h.engine.add_contact(b, a)).expect("contact");
    block_on(h.engine.add_contact(c, a)).expect("contact");
    let seen_by_b = block_on(h.engine.get_profile(b, a)).expect("profile");
    let seen_by_c = block_on(h.engine.get_profile(c, a)).expect("profile");
    assert_eq!(seen_by_c.last_seen_at, Some(T0));
    assert!(seen_by_c.online);
    assert_eq!((seen_by_b.last_seen_at, seen_by_b.online), (None, false));
    let listed = block_on(h.engine.list_users(b, Some("A"), None, 10)).expect("list");
    let la = listed.iter().find(|p| p.id == a).expect("a listed");
    assert_eq!((la.last_seen_at, la.online), (None, false));
    let contacts = block_on(h.engine.list_contacts(b)).expect("contacts");
    assert_eq!((contacts[0].last_seen_at, contacts[0].online), (None, false));
    // Both ways: a does not see b's either.
    block_on(h.engine.connected(b, 3)).expect("b online");
    let b_for_a = block_on(h.engine.get_profile(a, b)).expect("profile");
    assert!(!b_for_a.online);
    assert_eq!(block_on(h.engine.list_blocked(b)).expect("blocked")[0].id, a);
}

// ---- roles ---------------------------------------------------------------------------------

#[test]
fn only_owner_and_admins_manage_members() {
    let h = Harness::new();
    let [owner, admin, m1, m2, newbie] = h.users(&["O", "Ad", "M1", "M2", "N"])[..] else {
        unreachable!()
    };
    let g = h.group(owner, "G", &[admin, m1, m2]);
    let r = block_on(h.engine.set_role(owner, g, admin, Role::Admin)).expect("promote");
    h.assert_deliveries_match_sync(&r.deliveries, &[owner, admin, m1, m2]);

    // A plain member cannot add, remove, edit or change roles.
    assert!(is_forbidden(block_on(h.engine.add_members(m1, g, vec![newbie]))));
    assert!(is_forbidden(block_on(h.engine.remove_member(m1, g, m2))));
    assert!(is_forbidden(block_on(h.engine.update_group(
        m1,
        g,
        Some("T".into()),
        None
    ))));
    assert!(is_forbidden(block_on(h.engine.set_role(m1, g, m2, Role::Admin))));

    // An admin adds and removes plain members and edits the group ...
    let added = block_on(h.engine.add_members(admin, g, vec![newbie])).expect("admin adds");
    assert_eq!(added.value.len(), 1);
    h.assert_deliveries_match_sync(&added.deliveries, &[owner, admin, m1, m2, newbie]);
    let removed = block_on(h.engine.remove_member(admin, g, m2)).expect("admin removes a member");
    h.assert_deliveries_match_sync(&removed.deliveries, &[owner, admin, m1, m2, newbie]);
    block_on(h.engine.update_group(admin, g, Some("Renamed".into()), None)).expect("admin edits");
    // ... but neither removes the owner nor changes roles.
    assert!(is_forbidden(block_on(h.engine.remove_member(admin, g, owner))));
    assert!(is_forbidden(block_on(h.engine.set_role(admin, g, m1, Role::Admin))));

    // Only the owner removes an admin; ownership is not given through set_role.
    let admin2 = newbie;
    block_on(h.engine.set_role(owner, g, admin2, Role::Admin)).expect("promote");
    assert!(is_forbidden(block_on(h.engine.remove_member(admin, g, admin2))));
    assert_eq!(
        invalid_field(block_on(h.engine.set_role(owner, g, m1, Role::Owner))).as_deref(),
        Some("role")
    );
    block_on(h.engine.remove_member(owner, g, admin2)).expect("owner removes an admin");
    let mut roles: Vec<(chatico_core::ids::UserId, Role)> = block_on(h.store.list_members(g))
        .expect("members")
        .into_iter()
        .map(|m| (m.user_id, m.role))
        .collect();
    roles.sort();
    let mut expected = vec![(owner, Role::Owner), (admin, Role::Admin), (m1, Role::Member)];
    expected.sort();
    assert_eq!(roles, expected);
}

#[test]
fn an_owner_leaving_hands_ownership_to_the_oldest_admin_else_the_oldest_member() {
    let h = Harness::new();
    let [o, m1, m2, ad] = h.users(&["O", "M1", "M2", "Ad"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[m1, m2]);
    h.clock.advance(1000);
    block_on(h.engine.add_members(o, g, vec![ad])).expect("add");
    block_on(h.engine.set_role(o, g, ad, Role::Admin)).expect("admin");
    let out = block_on(h.engine.leave(o, g)).expect("leave");
    h.assert_deliveries_match_sync(&out.deliveries, &[o, m1, m2, ad]);
    let role_of = |u| block_on(h.store.get_member(g, u)).expect("member").map(|m| m.role);
    assert_eq!(role_of(ad), Some(Role::Owner), "the admin, though newest");
    assert_eq!(role_of(o), None);
    // Without admins: the oldest member.
    block_on(h.engine.leave(ad, g)).expect("leave");
    let first = block_on(h.store.list_members(g)).expect("members")[0].user_id;
    assert_eq!(role_of(first), Some(Role::Owner));
    // The last one out leaves an empty group.
    let rest: Vec<_> = block_on(h.store.list_members(g))
        .expect("m")
        .into_iter()
        .map(|m| m.user_id)
        .collect();
    for u in rest {
        block_on(h.engine.leave(u, g)).expect("leave");
    }
    assert!(block_on(h.store.list_members(g)).expect("members").is_empty());
}

#[test]
fn group_size_is_limited() {
    let mut c = test_config();
    c.limits.max_group_members = 3;
    let h = Harness::with_config(c);
    let [o, a, b, x] = h.users(&["O", "A", "B", "X"])[..] else {
        unreachable!()
    };
    assert_eq!(
        invalid_field(block_on(h.engine.create_group(o, "G".into(), vec![a, b, x]))).as_deref(),
        Some("members")
    );
    let g = h.group(o, "G", &[a, b]);
    assert_eq!(
        invalid_field(block_on(h.engine.add_members(o, g, vec![x]))).as_deref(),
        Some("members")
    );
    assert_eq!(block_on(h.store.list_members(g)).expect("members").len(), 3);
    // Duplicates and the creator do not count twice.
    h.group(o, "H", &[a, a, o, b]);
}

#[test]
fn create_group_tells_every_member_and_writes_a_notice() {
    let h = Harness::new();
    let [o, a, b] = h.users(&["O", "A", "B"])[..] else {
        unreachable!()
    };
    let out = block_on(h.engine.create_group(o, "  Team  ".into(), vec![a, b])).expect("create");
    assert_eq!(out.value.title.as_deref(), Some("Team"));
    h.assert_deliveries_match_sync(&out.deliveries, &[o, a, b]);
    let msgs = block_on(h.engine.history(a, out.value.id, newest(10))).expect("history");
    assert!(matches!(
        &msgs[0].content,
        Some(Content::System(SystemNotice::GroupCreated { title })) if title == "Team"
    ));
    assert!(matches!(
        block_on(
            h.engine
                .create_group(o, "G".into(), vec![chatico_core::ids::UserId::new(1)])
        ),
        Err(Error::NotFound { ref what }) if what == "user"
    ));
}

// ---- deletes -------------------------------------------------------------------------------

#[test]
fn only_the_sender_or_a_group_admin_deletes_for_everyone() {
    let h = Harness::new();
    let [o, a, b] = h.users(&["O", "A", "B"])[..] else {
        unreachable!()
    };
    let g = h.group(o, "G", &[a, b]);
    let s1 = h.say(a, g, "from a");
    let s2 = h.say(b, g, "from b");
    assert!(is_forbidden(block_on(h.engine.delete_for_everyone(b, g, s1))));
    let own = block_on(h.engine.delete_for_everyone(a, g, s1)).expect("sender deletes");
    assert!(own.value.content.is_none() && own.value.deleted_at.is_some());
    h.assert_deliveries_match_sync(&own.deliveries, &[o, a, b]);
    block_on(h.engine.delete_for_everyone(o, g, s2)).expect("owner moderates");
    // Tombstones keep their seq; content is gone from every read.
    for u in [o, a, b] {
        let msgs = block_on(h.engine.history(u, g, newest(10))).expect("history");
        let t: Vec<_> = msgs.iter().filter(|m| m.seq == s1 || m.seq == s2).collect();
        assert_eq!(t.len(), 2);
        assert!(t.iter().all(|m| m.content.is_none()));
    }
    // Twice is fine and delivers nothing new.
    let again = block_on(h.engine.delete_for_everyone(a, g, s1)).expect("again");
    assert!(again.deliveries.is_empty());
    // System notices stay.
    assert!(is_forbidden(block_on(h.engine.delete_for_everyone(o, g, 1))));
    assert_eq!(
        block_on(h.engine.delete_for_everyone(a, g, 99)).map(|o| o.value),
        Err(Error::not_found("message"))
    );
}

#[test]
fn in_a_direct_conversation_only_the_sender_deletes_for_everyone() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let s = h.say(a, d, "mine");
    assert!(is_forbidden(block_on(h.engine.delete_for_everyone(b, d, s))));
    block_on(h.engine.delete_for_everyone(a, d, s)).expect("sender");
}

#[test]
fn delete_for_me_hides_for_me_only() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let s = h.say(a, d, "hello");
    let out = block_on(h.engine.delete_for_me(b, d, s)).expect("hide");
    assert_eq!(out.deliveries.len(), 1);
    assert_eq!(out.deliveries[0].recipients, vec![b]);
    h.assert_deliveries_match_sync(&out.deliveries, &[a, b]);
    assert!(block_on(h.engine.history(b, d, newest(10))).expect("h").is_empty());
    assert_eq!(block_on(h.engine.history(a, d, newest(10))).expect("h").len(), 1);
    assert_eq!(
        invalid_field(block_on(h.engine.delete_for_me(b, d, 0))).as_deref(),
        Some("seq")
    );
}

// ---- receipts ------------------------------------------------------------------------------

#[test]
fn receipts_are_clamped_and_monotonic() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    for i in 0..3 {
        h.say(a, d, &format!("m{i}"));
    }
    let out = block_on(h.engine.mark_read(b, d, 100)).expect("read");
    assert_eq!(
        (out.value.read_seq, out.value.delivered_seq),
        (3, 3),
        "clamped to last seq"
    );
    h.assert_deliveries_match_sync(&out.deliveries, &[a, b]);
    assert_eq!(out.deliveries[0].recipients, sorted(vec![a, b]));
    let back = block_on(h.engine.mark_read(b, d, 1)).expect("read");
    assert_eq!(back.value.read_seq, 3, "never backwards");
    assert!(back.deliveries.is_empty(), "nothing moved, nothing delivered");
    let del = block_on(h.engine.mark_delivered(b, d, 2)).expect("delivered");
    assert_eq!(del.value.delivered_seq, 3);
    assert_eq!(
        invalid_field(block_on(h.engine.mark_read(b, d, -1))).as_deref(),
        Some("seq")
    );
    let summary = &block_on(h.engine.list_conversations(b, false, 10)).expect("list")[0];
    assert_eq!(summary.unread, 0);
    h.say(a, d, "m3");
    let summary = &block_on(h.engine.list_conversations(b, false, 10)).expect("list")[0];
    assert_eq!(summary.unread, 1);
    let del = block_on(h.engine.mark_delivered(b, d, 4)).expect("delivered");
    assert_eq!((del.value.delivered_seq, del.value.read_seq), (4, 3));
}

// ---- sending -------------------------------------------------------------------------------

#[test]
fn a_retried_send_returns_the_original_and_delivers_nothing() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let first = block_on(h.engine.send(a, text_msg(d, "tx-1", "hello"))).expect("send");
    assert_eq!(first.deliveries.len(), 1);
    h.assert_deliveries_match_sync(&first.deliveries, &[a, b]);
    let retry = block_on(h.engine.send(a, text_msg(d, "tx-1", "hello"))).expect("retry");
    assert_eq!(retry.value, first.value);
    assert!(retry.deliveries.is_empty());
    assert_eq!(block_on(h.engine.history(b, d, newest(10))).expect("h").len(), 1);
    // The same id from another sender is another message.
    block_on(h.engine.send(b, text_msg(d, "tx-1", "hello"))).expect("b's own tx-1");
    // The same id in another conversation is a conflict, not a silent no-op.
    let g = h.group(a, "G", &[b]);
    assert!(matches!(
        block_on(h.engine.send(a, text_msg(g, "tx-1", "x"))),
        Err(Error::Conflict { .. })
    ));
}

#[test]
fn texts_and_ids_are_validated_and_bounded() {
    let mut c = test_config();
    c.limits.max_text_chars = 10;
    let h = Harness::with_config(c);
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let e = &h.engine;
    assert_eq!(
        invalid_field(block_on(e.send(a, text_msg(d, "1", &"x".repeat(11))))).as_deref(),
        Some("text")
    );
    block_on(e.send(a, text_msg(d, "2", &"é".repeat(10)))).expect("10 chars is the limit");
    assert_eq!(
        invalid_field(block_on(e.send(a, text_msg(d, "3", "  ")))).as_deref(),
        Some("text")
    );
    assert_eq!(
        invalid_field(block_on(e.send(a, text_msg(d, "4", "a\u{0}b")))).as_deref(),
        Some("text")
    );
    assert_eq!(
        invalid_field(block_on(e.send(a, text_msg(d, "", "x")))).as_deref(),
        Some("client_msg_id")
    );
    assert_eq!(
        invalid_field(block_on(e.send(a, text_msg(d, &"i".repeat(65), "x")))).as_deref(),
        Some("client_msg_id")
    );
    block_on(e.send(a, text_msg(d, &"i".repeat(64), "x"))).expect("64 chars is the limit");
    let system = SendMessage {
        content: Content::System(SystemNotice::TitleChanged { title: "x".into() }),
        ..text_msg(d, "5", "x")
    };
    assert_eq!(invalid_field(block_on(e.send(a, system))).as_deref(), Some("content"));
    let reply = |seq| SendMessage {
        reply_to_seq: Some(seq),
        ..text_msg(d, &format!("r{seq}"), "re")
    };
    assert_eq!(
        invalid_field(block_on(e.send(a, reply(99)))).as_deref(),
        Some("reply_to_seq")
    );
    assert_eq!(
        invalid_field(block_on(e.send(a, reply(0)))).as_deref(),
        Some("reply_to_seq")
    );
    block_on(e.send(a, reply(1))).expect("a reply to seq 1");
    // Only the three valid sends were stored.
    assert_eq!(block_on(e.history(a, d, newest(50))).expect("h").len(), 3);
}

#[test]
fn the_default_text_limit_is_4096_characters() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    block_on(h.engine.send(a, text_msg(d, "ok", &"x".repeat(4096)))).expect("4096");
    assert_eq!(
        invalid_field(block_on(h.engine.send(a, text_msg(d, "no", &"x".repeat(4097))))).as_deref(),
        Some("text")
    );
}

#[test]
fn media_must_reference_the_senders_own_blob() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let meta = |key: &str, owner| BlobMeta {
        key: key.into(),
        owner_id: owner,
        content_type: "image/png".into(),
        size: 1234,
        width: Some(10),
        height: Some(20),
        purpose: BlobPurpose::Media,
        created_at: T0,
    };
    assert!(is_forbidden(block_on(h.engine.register_blob(a, meta("k0", b)))));
    block_on(h.engine.register_blob(a, meta("blob-a", a))).expect("register");
    block_on(h.engine.register_blob(b, meta("blob-b", b))).expect("register");
    assert!(matches!(
        block_on(h.engine.register_blob(b, meta("blob-b", b))),
        Err(Error::Conflict { .. })
    ));
    assert_eq!(
        invalid_field(block_on(h.engine.register_blob(a, meta("../etc", a)))).as_deref(),
        Some("key")
    );
    let mut big = meta("big", a);
    big.size = 21 * 1024 * 1024;
    assert!(matches!(
        block_on(h.engine.register_blob(a, big)),
        Err(Error::TooLarge { .. })
    ));
    let media = |key: &str, cmid: &str| SendMessage {
        content: Content::Media(MediaRef {
            blob_key: key.into(),
            content_type: "text/html".into(),
            size: 1,
            width: None,
            height: None,
            caption: Some("look".into()),
        }),
        ..text_msg(d, cmid, "")
    };
    assert_eq!(
        block_on(h.engine.send(a, media("nope", "1"))).map(|o| o.value),
        Err(Error::not_found("blob"))
    );
    assert!(is_forbidden(block_on(h.engine.send(a, media("blob-b", "2")))));
    let sent = block_on(h.engine.send(a, media("blob-a", "3"))).expect("own blob");
    let Some(Content::Media(m)) = sent.value.content else {
        panic!("media")
    };
    assert_eq!(
        (m.content_type.as_str(), m.size, m.width),
        ("image/png", 1234, Some(10))
    );
    assert_eq!(m.caption.as_deref(), Some("look"));
}

#[test]
fn blobs_are_read_by_whoever_may_see_them_and_hidden_from_everyone_else() {
    let h = Harness::new();
    let [a, b, c, outsider] = h.users(&["A", "B", "C", "Outsider"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b]);
    let blob = |key: &str, owner, purpose| BlobMeta {
        key: key.into(),
        owner_id: owner,
        content_type: "image/png".into(),
        size: 10,
        width: Some(1),
        height: Some(1),
        purpose,
        created_at: T0,
    };
    block_on(h.engine.register_blob(a, blob("avatar-a", a, BlobPurpose::Avatar))).expect("register");
    block_on(h.engine.register_blob(a, blob("media-a", a, BlobPurpose::Media))).expect("register");
    block_on(h.engine.register_blob(a, blob("unsent-a", a, BlobPurpose::Media))).expect("register");
    let read = |who, key: &str| block_on(h.engine.blob_for_reading(who, key)).map(|m| m.key);
    let hidden = Err(Error::not_found("blob"));

    // An avatar: any signed-in user.
    for who in [a, b, c, outsider] {
        assert_eq!(read(who, "avatar-a"), Ok("avatar-a".to_owned()));
    }
    // A media blob nobody was sent: its owner only; to anyone else, like a missing key.
    assert_eq!(read(a, "unsent-a"), Ok("unsent-a".to_owned()));
    assert_eq!(read(b, "unsent-a"), hidden);
    assert_eq!(read(b, "missing"), hidden);
    assert_eq!(read(b, ""), hidden);
    assert_eq!(read(b, &"k".repeat(10_000)), hidden);

    // Sent into the group: its members, not outsiders.
    let sent = block_on(h.engine.send(
        a,
        SendMessage {
            content: Content::Media(MediaRef {
                blob_key: "media-a".into(),
                content_type: "image/png".into(),
                size: 10,
                width: None,
                height: None,
                caption: None,
            }),
            ..text_msg(g, "m1", "")
        },
    ))
    .expect("send")
    .value;
    assert_eq!(read(b, "media-a"), Ok("media-a".to_owned()));
    assert_eq!(read(outsider, "media-a"), hidden);
    // A member added later does not see history from before their join.
    block_on(h.engine.add_members(a, g, vec![c])).expect("add");
    assert_eq!(read(c, "media-a"), hidden);
    // A removed member loses access.
    block_on(h.engine.remove_member(a, g, b)).expect("remove");
    assert_eq!(read(b, "media-a"), hidden);
    block_on(h.engine.add_members(a, g, vec![b])).expect("re-add");
    // Deleted for everyone: only the owner still reads it.
    block_on(h.engine.delete_for_everyone(a, g, sent.seq)).expect("delete");
    assert_eq!(read(a, "media-a"), Ok("media-a".to_owned()));
    assert_eq!(read(c, "media-a"), hidden);
}

// ---- pages and profile validation ----------------------------------------------------------

#[test]
fn pages_are_clamped_to_the_configured_maximum() {
    let mut c = test_config();
    c.limits.max_history_page = 3;
    c.limits.max_sync_page = 2;
    c.limits.max_user_page = 2;
    let h = Harness::with_config(c);
    let [a, b, _c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    for i in 0..5 {
        h.say(a, d, &format!("m{i}"));
    }
    assert_eq!(block_on(h.engine.history(a, d, newest(1000))).expect("h").len(), 3);
    let s = block_on(h.engine.sync(a, 0, 1000)).expect("sync");
    assert_eq!(s.page.changes.len(), 2);
    assert!(s.page.limited);
    assert_eq!(
        block_on(h.engine.list_users(a, None, None, 1000)).expect("users").len(),
        2
    );
    assert_eq!(
        invalid_field(block_on(h.engine.sync(a, -1, 10))).as_deref(),
        Some("since")
    );
}

#[test]
fn profile_fields_are_validated_and_nothing_changes_on_error() {
    let h = Harness::new();
    let a = h.user("A");
    let before = block_on(h.engine.me(a)).expect("me");
    let bad = [
        (
            ProfilePatch {
                display_name: Some("n".repeat(65)),
                ..Default::default()
            },
            "display_name",
        ),
        (
            ProfilePatch {
                display_name: Some("   ".into()),
                ..Default::default()
            },
            "display_name",
        ),
        (
            ProfilePatch {
                bio: Some("b".repeat(501)),
                ..Default::default()
            },
            "bio",
        ),
        (
            ProfilePatch {
                display_name: Some("Fine".into()),
                avatar_url: Some(Some("javascript:alert(1)".into())),
                ..Default::default()
            },
            "avatar_url",
        ),
    ];
    for (patch, field) in bad {
        assert_eq!(
            invalid_field(block_on(h.engine.update_profile(a, patch))).as_deref(),
            Some(field)
        );
    }
    assert_eq!(block_on(h.engine.me(a)).expect("me"), before, "nothing changed");
    let ok = block_on(h.engine.update_profile(
        a,
        ProfilePatch {
            display_name: Some("n".repeat(64)),
            bio: Some("b".repeat(500)),
            avatar_url: None,
        },
    ))
    .expect("limits are inclusive");
    assert_eq!(ok.value.bio.len(), 500);
    let cleared = block_on(h.engine.update_profile(
        a,
        ProfilePatch {
            avatar_url: Some(None),
            ..Default::default()
        },
    ))
    .expect("clear");
    assert_eq!(cleared.value.avatar_url, None);
}

#[test]
fn group_titles_are_validated() {
    let h = Harness::new();
    let [o, a] = h.users(&["O", "A"])[..] else {
        unreachable!()
    };
    assert_eq!(
        invalid_field(block_on(h.engine.create_group(o, "t".repeat(101), vec![a]))).as_deref(),
        Some("title")
    );
    assert_eq!(
        invalid_field(block_on(h.engine.create_group(o, " ".into(), vec![a]))).as_deref(),
        Some("title")
    );
    let g = h.group(o, &"t".repeat(100), &[a]);
    assert_eq!(
        invalid_field(block_on(h.engine.update_group(o, g, Some("t".repeat(101)), None))).as_deref(),
        Some("title")
    );
    let out = block_on(h.engine.update_group(o, g, Some("New".into()), Some(None))).expect("ok");
    h.assert_deliveries_match_sync(&out.deliveries, &[o, a]);
    assert!(
        out.deliveries
            .iter()
            .any(|d| matches!(&d.event, Event::Change(c) if matches!(c.kind, ChangeKind::ConversationUpdated { .. })))
    );
}

// ---- contacts and archive ------------------------------------------------------------------

#[test]
fn contacts_blocks_and_archive_are_per_user() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let added = block_on(h.engine.add_contact(a, b)).expect("add");
    assert!(added.value);
    h.assert_deliveries_match_sync(&added.deliveries, &[a, b]);
    assert!(!block_on(h.engine.add_contact(a, b)).expect("again").value);
    assert_eq!(block_on(h.engine.list_contacts(a)).expect("list")[0].id, b);
    assert!(block_on(h.engine.list_contacts(b)).expect("list").is_empty());
    assert_eq!(
        invalid_field(block_on(h.engine.add_contact(a, a))).as_deref(),
        Some("user_id")
    );
    assert!(block_on(h.engine.remove_contact(a, b)).expect("remove").value);
    let d = h.direct(a, b);
    let arch = block_on(h.engine.archive(a, d, true)).expect("archive");
    assert!(arch.value.archived);
    assert_eq!(arch.deliveries[0].recipients, vec![a]);
    h.assert_deliveries_match_sync(&arch.deliveries, &[a, b]);
    assert!(
        block_on(h.engine.list_conversations(a, false, 10))
            .expect("l")
            .is_empty()
    );
    assert_eq!(block_on(h.engine.list_conversations(a, true, 10)).expect("l").len(), 1);
    assert_eq!(block_on(h.engine.list_conversations(b, false, 10)).expect("l").len(), 1);
}

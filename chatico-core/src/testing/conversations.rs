//! Conformance: conversations and members.

use std::collections::BTreeMap;

use futures::future::join_all;

use crate::ErrorCode;
use crate::ids::{ConversationId, UserId};
use crate::model::{ConversationKind, Role};
use crate::ports::{NewConversation, Store};
use crate::sync::{Change, ChangeKind};

use super::fixtures::{Fx, T0};

fn kinds(changes: &[Change]) -> Vec<ChangeKind> {
    changes.iter().map(|c| c.kind.clone()).collect()
}

/// Creating a group stores it (`last_seq` 0) and its members (roles as given, `joined_seq`
/// 0, watermarks 0, not archived); it records one `MemberJoined` per member and then
/// `ConversationCreated`, and each member sees exactly the joins from their own on.
pub async fn create_group_stores_members_and_records_changes(store: &dyn Store) {
    let fx = Fx::new(store);
    let owner = fx.user("Owner").await;
    let a = fx.user("A").await;
    let b = fx.user("B").await;
    let outsider = fx.user("Outsider").await;
    let start = fx.latest_pos().await;

    let new = fx.new_group(&owner, &[&a, &b], "Team");
    let members_and_outsider = [owner.id, a.id, b.id, outsider.id];
    let (conv, returned) = fx.checked(&members_and_outsider, store.create_conversation(&new)).await;
    assert_eq!(returned.len(), 4, "three MemberJoined and ConversationCreated");
    assert_eq!(conv.id, new.id);
    assert_eq!(conv.kind, ConversationKind::Group);
    assert_eq!(conv.title.as_deref(), Some("Team"));
    assert_eq!(conv.avatar_url, None);
    assert_eq!(conv.created_by, owner.id);
    assert_eq!(conv.created_at, new.created_at);
    assert_eq!(conv.last_seq, 0);
    assert_eq!(store.get_conversation(conv.id).await.expect("get"), Some(conv.clone()));
    assert_eq!(
        store.get_conversation(ConversationId::new(T0)).await.expect("get"),
        None
    );

    let members = store.list_members(conv.id).await.expect("members");
    assert_eq!(members.len(), 3);
    for (uid, role) in &new.members {
        let m = fx.member(conv.id, *uid).await;
        assert!(members.contains(&m));
        assert_eq!(m.conversation_id, conv.id);
        assert_eq!(m.role, *role);
        assert!(!m.archived);
        assert_eq!((m.delivered_seq, m.read_seq, m.joined_seq), (0, 0, 0));
        assert_eq!(m.joined_at, new.created_at);
    }
    assert_eq!(store.get_member(conv.id, outsider.id).await.expect("get"), None);

    // Where each MemberJoined sits, as seen by its own subject.
    let mut join_pos: BTreeMap<UserId, i64> = BTreeMap::new();
    let mut seen: BTreeMap<UserId, Vec<Change>> = BTreeMap::new();
    for (uid, role) in &new.members {
        let changes = fx.sync_all(*uid, start, 100).await;
        assert!(changes.iter().all(|c| c.conversation_id == Some(conv.id)));
        let own = changes
            .iter()
            .find(|c| {
                c.kind
                    == ChangeKind::MemberJoined {
                        user_id: *uid,
                        role: *role,
                    }
            })
            .unwrap_or_else(|| panic!("{uid} must see their own MemberJoined"));
        join_pos.insert(*uid, own.pos);
        let last = changes.last().expect("changes");
        assert_eq!(
            last.kind,
            ChangeKind::ConversationCreated {
                conversation: conv.clone()
            },
            "ConversationCreated comes after the joins"
        );
        seen.insert(*uid, changes);
    }
    for (uid, changes) in &seen {
        let joins: Vec<(i64, UserId, Role)> = changes
            .iter()
            .filter_map(|c| match c.kind {
                ChangeKind::MemberJoined { user_id, role } => Some((c.pos, user_id, role)),
                _ => None,
            })
            .collect();
        let mut expected: Vec<(i64, UserId, Role)> = new
            .members
            .iter()
            .filter(|(m, _)| join_pos[m] >= join_pos[uid])
            .map(|(m, r)| (join_pos[m], *m, *r))
            .collect();
        expected.sort();
        assert_eq!(joins, expected, "{uid} sees exactly the joins from their own on");
        assert_eq!(changes.len(), joins.len() + 1, "only joins and ConversationCreated");
    }
    assert!(
        fx.sync_all(outsider.id, start, 100).await.is_empty(),
        "outsiders see nothing"
    );
}

/// One direct conversation per unordered pair: creating it again (either order, any id)
/// writes nothing and returns the existing one; `find_direct` works both ways.
pub async fn direct_conversation_is_unique_per_unordered_pair(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, c) = (fx.user("a").await, fx.user("b").await, fx.user("c").await);
    assert_eq!(store.find_direct(a.id, b.id).await.expect("find"), None);
    let new = fx.new_direct(&a, &b);
    let (conv, returned) = fx.checked(&[a.id, b.id], store.create_conversation(&new)).await;
    assert_eq!(returned.len(), 3, "two MemberJoined and ConversationCreated");
    assert_eq!(conv.kind, ConversationKind::Direct);
    assert_eq!(conv.title, None);
    let members = store.list_members(conv.id).await.expect("members");
    let mut member_ids: Vec<UserId> = members.iter().map(|m| m.user_id).collect();
    member_ids.sort();
    let mut pair = vec![a.id, b.id];
    pair.sort();
    assert_eq!(member_ids, pair);

    let pos = fx.latest_pos().await;
    let again = fx.new_direct(&b, &a);
    let (existing, returned) = fx.checked(&[a.id, b.id], store.create_conversation(&again)).await;
    assert!(returned.is_empty(), "the pair already has a direct conversation");
    assert_eq!(existing, conv);
    assert_eq!(fx.latest_pos().await, pos, "nothing is recorded");
    assert_eq!(
        store.get_conversation(again.id).await.expect("get"),
        None,
        "the new id is not stored"
    );

    assert_eq!(store.find_direct(a.id, b.id).await.expect("find"), Some(conv.clone()));
    assert_eq!(store.find_direct(b.id, a.id).await.expect("find"), Some(conv.clone()));
    assert_eq!(store.find_direct(a.id, c.id).await.expect("find"), None);

    // A group of the same two users is not a direct conversation.
    fx.group(&a, &[&b]).await;
    assert_eq!(store.find_direct(a.id, b.id).await.expect("find"), Some(conv.clone()));
    let ac = fx.direct(&a, &c).await;
    assert_ne!(ac.id, conv.id);
    assert_eq!(store.find_direct(c.id, a.id).await.expect("find"), Some(ac));
}

/// Concurrent creations of the same direct conversation (both orders) yield one conversation.
pub async fn concurrent_direct_creation_yields_one(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let start = fx.latest_pos().await;
    let news: Vec<NewConversation> = (0..12)
        .map(|i| {
            if i % 2 == 0 {
                fx.new_direct(&a, &b)
            } else {
                fx.new_direct(&b, &a)
            }
        })
        .collect();
    let results: Vec<_> = join_all(news.iter().map(|n| store.create_conversation(n)))
        .await
        .into_iter()
        .map(|r| r.expect("create_conversation"))
        .collect();
    assert_eq!(
        results.iter().filter(|(_, ch)| !ch.is_empty()).count(),
        1,
        "exactly one creates"
    );
    let (conv, returned) = results.iter().find(|(_, ch)| !ch.is_empty()).cloned().expect("creator");
    fx.assert_returned(start, &returned, &[a.id, b.id]).await;
    assert!(results.iter().all(|(c, _)| *c == conv), "all get the same conversation");
    assert_eq!(store.list_members(conv.id).await.expect("members").len(), 2);
    let created = fx
        .sync_all(a.id, start, 100)
        .await
        .into_iter()
        .filter(|c| matches!(c.kind, ChangeKind::ConversationCreated { .. }))
        .count();
    assert_eq!(created, 1, "one ConversationCreated");
}

/// `add_members` adds only newcomers (returned in argument order), with `joined_seq`,
/// `delivered_seq` and `read_seq` = the current `last_seq`, and records `MemberJoined` for
/// each; the newcomer's sync, history and conversation row start at their join; a missing
/// conversation is `NotFound`.
pub async fn add_members_sets_joined_seq_and_skips_existing(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, b, c) = (
        fx.user("o").await,
        fx.user("a").await,
        fx.user("b").await,
        fx.user("c").await,
    );
    let conv = fx.group(&owner, &[&a]).await;
    fx.send_n(conv.id, owner.id, 3).await;
    let start = fx.latest_pos().await;
    let now = fx.tick();
    let (added, returned) = fx
        .checked(
            &[owner.id, a.id, b.id, c.id],
            store.add_members(
                conv.id,
                &[(b.id, Role::Admin), (a.id, Role::Admin), (c.id, Role::Member)],
                now,
            ),
        )
        .await;
    assert_eq!(
        returned.iter().map(|ch| ch.kind.clone()).collect::<Vec<_>>(),
        vec![
            ChangeKind::MemberJoined {
                user_id: b.id,
                role: Role::Admin
            },
            ChangeKind::MemberJoined {
                user_id: c.id,
                role: Role::Member
            },
        ]
    );
    let added_ids: Vec<UserId> = added.iter().map(|m| m.user_id).collect();
    assert_eq!(
        added_ids,
        vec![b.id, c.id],
        "existing members are skipped; argument order"
    );
    for m in &added {
        assert_eq!(m.joined_seq, 3);
        assert_eq!(
            (m.delivered_seq, m.read_seq),
            (3, 3),
            "newcomers start with nothing unread"
        );
        assert_eq!(m.joined_at, now);
        assert_eq!(m.conversation_id, conv.id);
        assert!(!m.archived);
        assert_eq!(&fx.member(conv.id, m.user_id).await, m);
    }
    assert_eq!(
        added.iter().find(|m| m.user_id == b.id).map(|m| m.role),
        Some(Role::Admin)
    );
    assert_eq!(
        fx.member(conv.id, a.id).await.role,
        Role::Member,
        "existing role untouched"
    );

    let owner_sees = kinds(&fx.sync_all(owner.id, start, 100).await);
    assert_eq!(owner_sees.len(), 2);
    assert!(owner_sees.contains(&ChangeKind::MemberJoined {
        user_id: b.id,
        role: Role::Admin
    }));
    assert!(owner_sees.contains(&ChangeKind::MemberJoined {
        user_id: c.id,
        role: Role::Member
    }));
    let b_all = fx.sync_all(b.id, 0, 100).await;
    assert_eq!(
        b_all.first().map(|c| c.kind.clone()),
        Some(ChangeKind::MemberJoined {
            user_id: b.id,
            role: Role::Admin
        }),
        "a newcomer's view starts at their own join"
    );
    assert!(!b_all.iter().any(|c| matches!(c.kind, ChangeKind::Message { .. })));
    assert!(
        fx.full_history(conv.id, b.id).await.is_empty(),
        "nothing before the join"
    );
    let row = store.list_conversations(b.id, false, 10).await.expect("list");
    assert_eq!(row.len(), 1);
    assert_eq!(row[0].last_message, None, "no last message from before the join");
    assert_eq!(row[0].unread, 0);
    let err = store
        .add_members(ConversationId::new(T0), &[(b.id, Role::Member)], fx.tick())
        .await
        .expect_err("missing conversation");
    assert_eq!(err.code(), ErrorCode::NotFound);

    let (none, returned) = fx
        .checked(&[a.id], store.add_members(conv.id, &[(a.id, Role::Member)], fx.tick()))
        .await;
    assert!(
        none.is_empty() && returned.is_empty(),
        "adding nobody new records nothing"
    );
}

/// `remove_member` records `MemberLeft` for the remaining members and, targeted, for the
/// removed one; afterwards the removed user sees nothing more of the conversation, not even
/// its earlier changes (they are no longer a current member).
pub async fn remove_member_records_left_twice_and_stops_sync(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, b) = (fx.user("o").await, fx.user("a").await, fx.user("b").await);
    let conv = fx.group(&owner, &[&a, &b]).await;
    fx.send(conv.id, b.id).await;
    let before = fx.latest_pos().await;
    assert!(!fx.sync_all(a.id, 0, 100).await.is_empty());

    let returned = fx
        .checked(&[owner.id, a.id, b.id], store.remove_member(conv.id, a.id, owner.id))
        .await;
    let left_kind = ChangeKind::MemberLeft {
        user_id: a.id,
        by: owner.id,
    };
    assert_eq!(
        returned.iter().map(|ch| ch.kind.clone()).collect::<Vec<_>>(),
        vec![left_kind.clone(), left_kind],
        "the conversation change, then the targeted one"
    );
    assert_eq!(
        fx.sync_all(a.id, before, 10).await,
        vec![returned[1].clone()],
        "the removed user gets the second (targeted) one"
    );
    assert!(!fx.is_member(conv.id, a.id).await);
    assert!(
        !store
            .list_members(conv.id)
            .await
            .expect("members")
            .iter()
            .any(|m| m.user_id == a.id)
    );
    let again = fx
        .checked(&[owner.id, a.id], store.remove_member(conv.id, a.id, owner.id))
        .await;
    assert!(again.is_empty(), "removing a non-member records nothing");

    // Activity after the removal.
    fx.send(conv.id, b.id).await;
    store
        .update_conversation(conv.id, Some("renamed".into()), None)
        .await
        .expect("rename");
    store
        .update_receipts(conv.id, owner.id, Some(2), Some(2))
        .await
        .expect("receipts");

    let left = ChangeKind::MemberLeft {
        user_id: a.id,
        by: owner.id,
    };
    let a_sees = fx.sync_all(a.id, before, 100).await;
    assert_eq!(
        kinds(&a_sees),
        vec![left.clone()],
        "the removed user gets MemberLeft and nothing after"
    );
    assert_eq!(a_sees[0].conversation_id, Some(conv.id));
    let a_all = fx.sync_all(a.id, 0, 100).await;
    assert_eq!(
        kinds(&a_all),
        vec![left.clone()],
        "conversation changes reach current members only"
    );
    for u in [&owner, &b] {
        let seen = fx.sync_all(u.id, before, 100).await;
        let lefts: Vec<&Change> = seen.iter().filter(|c| c.kind == left).collect();
        assert_eq!(lefts.len(), 1, "remaining members see MemberLeft once");
        assert_eq!(lefts[0].conversation_id, Some(conv.id));
        assert_eq!(seen.len(), 4, "MemberLeft, message, rename, receipt");
    }
}

/// A removed member who is added back sees the conversation from the new join on: not the
/// messages in between (history or sync), and everything after.
pub async fn removed_member_rejoining_sees_from_new_join(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a) = (fx.user("o").await, fx.user("a").await);
    let conv = fx.group(&owner, &[&a]).await;
    fx.send(conv.id, owner.id).await;
    let cursor = fx.latest_pos().await;
    store.remove_member(conv.id, a.id, a.id).await.expect("leave");
    let missed = fx.send(conv.id, owner.id).await;
    let (added, _) = fx
        .checked(
            &[owner.id, a.id],
            store.add_members(conv.id, &[(a.id, Role::Member)], fx.tick()),
        )
        .await;
    assert_eq!(added.len(), 1);
    assert_eq!(added[0].joined_seq, 2);
    let after_join = fx.send(conv.id, owner.id).await;

    let seen = kinds(&fx.sync_all(a.id, cursor, 100).await);
    assert_eq!(
        seen,
        vec![
            ChangeKind::MemberLeft {
                user_id: a.id,
                by: a.id
            },
            ChangeKind::MemberJoined {
                user_id: a.id,
                role: Role::Member
            },
            ChangeKind::Message {
                message: after_join.clone()
            },
        ]
    );
    assert!(!seen.contains(&ChangeKind::Message { message: missed }));
    assert_eq!(fx.full_history(conv.id, a.id).await, vec![after_join]);
}

/// `set_role` changes the role and records `RoleChanged` when it changes; non-members are
/// `NotFound`.
pub async fn set_role_records_change(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, outsider) = (fx.user("o").await, fx.user("a").await, fx.user("x").await);
    let conv = fx.group(&owner, &[&a]).await;
    let start = fx.latest_pos().await;
    let (m, returned) = fx
        .checked(
            &[owner.id, a.id, outsider.id],
            store.set_role(conv.id, a.id, Role::Admin),
        )
        .await;
    assert!(returned.is_some());
    assert_eq!((m.user_id, m.role), (a.id, Role::Admin));
    assert_eq!(fx.member(conv.id, a.id).await, m);
    let change = ChangeKind::RoleChanged {
        user_id: a.id,
        role: Role::Admin,
    };
    assert_eq!(kinds(&fx.sync_all(owner.id, start, 10).await), vec![change.clone()]);
    assert_eq!(kinds(&fx.sync_all(a.id, start, 10).await), vec![change]);
    assert!(fx.sync_all(outsider.id, start, 10).await.is_empty());
    let (same, returned) = fx
        .checked(&[owner.id, a.id], store.set_role(conv.id, a.id, Role::Admin))
        .await;
    assert_eq!(same.role, Role::Admin);
    assert_eq!(returned, None, "an unchanged role records nothing");
    let err = store
        .set_role(conv.id, outsider.id, Role::Admin)
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), ErrorCode::NotFound);
}

/// `set_archived` flips the per-user flag and records a targeted `Archived` only when it
/// changes; other members see nothing; non-members are `NotFound`.
pub async fn set_archived_records_targeted_change_when_flag_changes(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, outsider) = (fx.user("o").await, fx.user("a").await, fx.user("x").await);
    let conv = fx.group(&owner, &[&a]).await;
    let start = fx.latest_pos().await;

    let audience = [owner.id, a.id];
    let (m, returned) = fx.checked(&audience, store.set_archived(conv.id, a.id, true)).await;
    assert!(m.archived && returned.is_some());
    assert!(fx.member(conv.id, a.id).await.archived);
    assert!(!fx.member(conv.id, owner.id).await.archived, "archived is per user");
    let (m, returned) = fx.checked(&audience, store.set_archived(conv.id, a.id, true)).await;
    assert!(m.archived);
    assert_eq!(returned, None, "no change recorded when the flag is unchanged");
    let (m, returned) = fx.checked(&audience, store.set_archived(conv.id, a.id, false)).await;
    assert!(!m.archived && returned.is_some());

    let seen = fx.sync_all(a.id, start, 10).await;
    assert_eq!(
        kinds(&seen),
        vec![
            ChangeKind::Archived { archived: true },
            ChangeKind::Archived { archived: false }
        ]
    );
    assert!(seen.iter().all(|c| c.conversation_id == Some(conv.id)));
    assert!(
        fx.sync_all(owner.id, start, 10).await.is_empty(),
        "targeted at the user only"
    );
    let err = store
        .set_archived(conv.id, outsider.id, true)
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), ErrorCode::NotFound);
}

/// `update_conversation`: `None` leaves a field, `Some` sets it, `avatar: Some(None)` clears;
/// `ConversationUpdated` carries the resulting values, for members only, and is recorded only
/// when something changed; a missing conversation is `NotFound`.
pub async fn update_conversation_patches_title_and_avatar(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, outsider) = (fx.user("o").await, fx.user("a").await, fx.user("x").await);
    let conv = fx.group(&owner, &[&a]).await;
    let start = fx.latest_pos().await;

    let audience = [owner.id, a.id, outsider.id];
    let (c, _) = fx
        .checked(
            &audience,
            store.update_conversation(conv.id, None, Some(Some("https://img/g.png".into()))),
        )
        .await;
    assert_eq!(
        (c.title.as_deref(), c.avatar_url.as_deref()),
        (Some("group"), Some("https://img/g.png"))
    );
    let (c, _) = fx
        .checked(
            &audience,
            store.update_conversation(conv.id, Some("New title".into()), None),
        )
        .await;
    assert_eq!(
        (c.title.as_deref(), c.avatar_url.as_deref()),
        (Some("New title"), Some("https://img/g.png")),
        "None leaves the avatar"
    );
    let (c, _) = fx
        .checked(&audience, store.update_conversation(conv.id, None, Some(None)))
        .await;
    assert_eq!((c.title.as_deref(), c.avatar_url.as_deref()), (Some("New title"), None));
    assert_eq!(fx.conversation(conv.id).await, c);
    assert_eq!(
        (c.id, c.created_at, c.created_by, c.last_seq),
        (conv.id, conv.created_at, conv.created_by, 0)
    );

    let expected = vec![
        ChangeKind::ConversationUpdated {
            title: Some("group".into()),
            avatar_url: Some("https://img/g.png".into()),
        },
        ChangeKind::ConversationUpdated {
            title: Some("New title".into()),
            avatar_url: Some("https://img/g.png".into()),
        },
        ChangeKind::ConversationUpdated {
            title: Some("New title".into()),
            avatar_url: None,
        },
    ];
    assert_eq!(kinds(&fx.sync_all(a.id, start, 2).await), expected);
    assert_eq!(kinds(&fx.sync_all(owner.id, start, 100).await), expected);
    assert!(fx.sync_all(outsider.id, start, 10).await.is_empty());

    let (_, returned) = fx
        .checked(&audience, store.update_conversation(conv.id, None, None))
        .await;
    assert_eq!(returned, None, "nothing changed, nothing recorded");
    let (same, returned) = fx
        .checked(
            &audience,
            store.update_conversation(conv.id, Some("New title".into()), Some(None)),
        )
        .await;
    assert_eq!(same, c);
    assert_eq!(returned, None, "nothing changed, nothing recorded");
    let err = store
        .update_conversation(ConversationId::new(T0), Some("x".into()), None)
        .await
        .expect_err("missing conversation");
    assert_eq!(err.code(), ErrorCode::NotFound);
}

/// Members are listed by join time, then user id (the late joiners here have the smallest
/// ids, so id order alone is wrong).
pub async fn list_members_orders_by_join_time_then_id(store: &dyn Store) {
    let fx = Fx::new(store);
    let users = fx.users(&["early-1", "early-2", "early-3", "o", "a", "b"]).await;
    let conv = fx.group(&users[3], &[&users[5], &users[4]]).await;
    store
        .add_members(
            conv.id,
            &[(users[1].id, Role::Member), (users[0].id, Role::Member)],
            fx.tick(),
        )
        .await
        .expect("add");
    store
        .add_members(conv.id, &[(users[2].id, Role::Member)], fx.tick())
        .await
        .expect("add");
    let mut first = vec![users[3].id, users[4].id, users[5].id];
    first.sort();
    let mut second = vec![users[0].id, users[1].id];
    second.sort();
    let mut expected = first;
    expected.extend(second);
    expected.push(users[2].id);
    let listed: Vec<UserId> = store
        .list_members(conv.id)
        .await
        .expect("members")
        .iter()
        .map(|m| m.user_id)
        .collect();
    assert_eq!(listed, expected);
}

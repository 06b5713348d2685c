//! Conformance: users, profiles, sessions, contacts, blocks, blobs.

use futures::future::join_all;

use crate::ids::{Phone, SessionId, UserId};
use crate::model::{BlobMeta, BlobPurpose, ProfilePatch, Session, User};
use crate::ports::Store;
use crate::sync::ChangeKind;

use super::fixtures::{Fx, T0};

fn ids(users: &[User]) -> Vec<UserId> {
    users.iter().map(|u| u.id).collect()
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

/// `get_or_create_user` creates once with the given id, name, empty bio and no avatar, then
/// returns the same user (`false`) whatever id and name later calls pass.
pub async fn get_or_create_user_is_idempotent(store: &dyn Store) {
    let fx = Fx::new(store);
    let phone = fx.phone();
    let id = UserId::new(T0);
    let (u, created) = store.get_or_create_user(&phone, id, "Alice", T0).await.expect("create");
    assert!(created);
    assert_eq!(u.id, id);
    assert_eq!(u.phone, phone);
    assert_eq!(u.display_name, "Alice");
    assert_eq!(u.bio, "");
    assert_eq!(u.avatar_url, None);
    assert_eq!(u.created_at, T0);
    assert_eq!(u.last_seen_at, None);

    let (again, created) = store
        .get_or_create_user(&phone, UserId::new(T0 + 5), "Someone else", T0 + 5)
        .await
        .expect("get");
    assert!(!created, "the second call must not create");
    assert_eq!(again, u, "the second call returns the original user unchanged");
    assert_eq!(store.get_user(id).await.expect("get_user"), Some(u));
    assert_eq!(store.get_user(UserId::new(T0)).await.expect("get_user"), None);
}

/// Many concurrent `get_or_create_user` calls for one phone create exactly one user and all
/// return it; concurrent calls for different phones each create their own.
pub async fn concurrent_get_or_create_user_creates_one(store: &dyn Store) {
    let fx = Fx::new(store);
    let phone = fx.phone();
    let calls = (0..24).map(|i| {
        let phone = phone.clone();
        async move {
            store
                .get_or_create_user(&phone, UserId::new(T0 + i), &format!("racer {i}"), T0 + i)
                .await
                .expect("get_or_create_user")
        }
    });
    let results = join_all(calls).await;
    let created = results.iter().filter(|(_, c)| *c).count();
    assert_eq!(created, 1, "exactly one concurrent call creates the user");
    let winner = results
        .iter()
        .find(|(_, c)| *c)
        .map(|(u, _)| u.clone())
        .expect("a creator");
    for (u, _) in &results {
        assert_eq!(u, &winner, "every caller gets the one user");
    }
    assert_eq!(store.search_users(None, None, 100).await.expect("search").len(), 1);

    let phones: Vec<Phone> = (0..12).map(|_| fx.phone()).collect();
    let results = join_all(
        phones
            .iter()
            .enumerate()
            .map(|(i, p)| store.get_or_create_user(p, UserId::new(T0 + 100 + i as i64), "distinct", T0)),
    )
    .await;
    assert!(
        results.iter().all(|r| matches!(r, Ok((_, true)))),
        "distinct phones all create"
    );
    assert_eq!(store.search_users(None, None, 100).await.expect("search").len(), 13);
}

/// `get_users` returns the existing users among the ids, ignoring unknown ones.
pub async fn get_users_returns_existing_only(store: &dyn Store) {
    let fx = Fx::new(store);
    let users = fx.users(&["a", "b", "c"]).await;
    let unknown = UserId::new(T0);
    let got = store
        .get_users(&[users[2].id, unknown, users[0].id])
        .await
        .expect("get_users");
    let mut got_ids = ids(&got);
    got_ids.sort();
    assert_eq!(got_ids, sorted(vec![users[0].id, users[2].id]));
    for u in &got {
        assert!(users.contains(u), "full records are returned");
    }
    assert!(store.get_users(&[]).await.expect("get_users").is_empty());
}

/// Search matches display names case-insensitively (substring) and phones by prefix only;
/// `None` lists everyone; results are ordered by id.
pub async fn search_users_by_name_and_phone_prefix(store: &dyn Store) {
    let mk = |phone: &str, name: &str, n: i64| {
        let phone = Phone::parse(phone).expect("phone");
        let name = name.to_owned();
        async move {
            store
                .get_or_create_user(&phone, UserId::new(T0 + n), &name, T0)
                .await
                .expect("create")
                .0
        }
    };
    let alice = mk("+442079460001", "Alice Smith", 1).await;
    let alicia = mk("+442079460002", "ALICIA", 2).await;
    let bob = mk("+33612345678", "Bob", 3).await;
    let malice = mk("+15550000001", "malice", 4).await;

    let q = |s: &'static str| async move { store.search_users(Some(s), None, 50).await.expect("search") };
    assert_eq!(ids(&q("alic").await), sorted(vec![alice.id, alicia.id, malice.id]));
    assert_eq!(ids(&q("ALICE").await), sorted(vec![alice.id, malice.id]));
    assert_eq!(ids(&q("smith").await), vec![alice.id]);
    assert_eq!(ids(&q("+4420794").await), sorted(vec![alice.id, alicia.id]));
    assert_eq!(ids(&q("+336").await), vec![bob.id]);
    assert!(q("2079460001").await.is_empty(), "phones match by prefix only");
    assert!(q("zzz").await.is_empty());
    let all = store.search_users(None, None, 50).await.expect("search");
    assert_eq!(ids(&all), sorted(vec![alice.id, alicia.id, bob.id, malice.id]));
    let limited = store.search_users(Some("alic"), None, 2).await.expect("search");
    assert_eq!(
        ids(&limited),
        sorted(vec![alice.id, alicia.id, malice.id])[..2].to_vec()
    );
}

/// Paging with `after` (the last id of the previous page) walks every user exactly once, in
/// id order, with and without a query.
pub async fn search_users_pages_by_id(store: &dyn Store) {
    let fx = Fx::new(store);
    let mut names = Vec::new();
    for i in 0..11 {
        names.push(if i % 2 == 0 {
            format!("Even {i}")
        } else {
            format!("Odd {i}")
        });
    }
    let users = fx.users(&names.iter().map(String::as_str).collect::<Vec<_>>()).await;
    let all = sorted(ids(&users));
    let evens = sorted(
        users
            .iter()
            .filter(|u| u.display_name.starts_with("Even"))
            .map(|u| u.id)
            .collect(),
    );
    for (query, expected) in [(None, &all), (Some("even"), &evens)] {
        for limit in [1u32, 3, 4, 100] {
            let mut seen = Vec::new();
            let mut after = None;
            for _ in 0..=users.len() + 1 {
                let page = store.search_users(query, after, limit).await.expect("search");
                assert!(page.len() <= limit as usize);
                if let Some(a) = after {
                    assert!(page.iter().all(|u| u.id > a), "a page holds only ids after `after`");
                }
                if page.is_empty() {
                    break;
                }
                after = page.last().map(|u| u.id);
                seen.extend(ids(&page));
            }
            assert_eq!(&seen, expected, "query {query:?} limit {limit}");
        }
    }
}

/// `update_profile`: `None` leaves a field alone, `Some` sets it, `avatar_url: Some(None)`
/// clears the avatar; unknown users are `NotFound`; the stored user reflects each patch.
pub async fn update_profile_applies_patch_semantics(store: &dyn Store) {
    let fx = Fx::new(store);
    let u = fx.user("Before").await;

    let p = store
        .update_profile(
            u.id,
            &ProfilePatch {
                display_name: Some("After".into()),
                ..Default::default()
            },
        )
        .await
        .expect("patch name");
    assert_eq!(
        (p.display_name.as_str(), p.bio.as_str(), p.avatar_url.as_deref()),
        ("After", "", None)
    );
    assert_eq!(p.phone, u.phone);
    assert_eq!(p.created_at, u.created_at);

    let p = store
        .update_profile(
            u.id,
            &ProfilePatch {
                bio: Some("hello".into()),
                avatar_url: Some(Some("https://img/1.png".into())),
                ..Default::default()
            },
        )
        .await
        .expect("patch bio+avatar");
    assert_eq!(p.display_name, "After");
    assert_eq!(p.bio, "hello");
    assert_eq!(p.avatar_url.as_deref(), Some("https://img/1.png"));

    let p = store
        .update_profile(u.id, &ProfilePatch::default())
        .await
        .expect("empty patch");
    assert_eq!(
        p.avatar_url.as_deref(),
        Some("https://img/1.png"),
        "None leaves the avatar"
    );
    assert_eq!(p.bio, "hello");

    let p = store
        .update_profile(
            u.id,
            &ProfilePatch {
                avatar_url: Some(None),
                ..Default::default()
            },
        )
        .await
        .expect("clear avatar");
    assert_eq!(p.avatar_url, None, "Some(None) clears the avatar");
    assert_eq!((p.display_name.as_str(), p.bio.as_str()), ("After", "hello"));
    assert_eq!(store.get_user(u.id).await.expect("get"), Some(p));

    let err = store
        .update_profile(UserId::new(T0), &ProfilePatch::default())
        .await
        .expect_err("unknown user");
    assert_eq!(err.code(), crate::ErrorCode::NotFound);
}

/// `set_last_seen` is stored and read back; an unknown user is `NotFound`.
pub async fn set_last_seen_is_stored(store: &dyn Store) {
    let fx = Fx::new(store);
    let u = fx.user("Seen").await;
    store.set_last_seen(u.id, T0 + 42).await.expect("set_last_seen");
    let got = store.get_user(u.id).await.expect("get").expect("exists");
    assert_eq!(got.last_seen_at, Some(T0 + 42));
    store.set_last_seen(u.id, T0 + 43).await.expect("set_last_seen");
    assert_eq!(
        store.get_user(u.id).await.expect("get").expect("exists").last_seen_at,
        Some(T0 + 43)
    );
    let err = store
        .set_last_seen(UserId::new(T0), T0)
        .await
        .expect_err("unknown user");
    assert_eq!(err.code(), crate::ErrorCode::NotFound);
}

fn session(user: UserId, n: i64, hash: &str) -> Session {
    Session {
        id: SessionId::new(T0 + n),
        user_id: user,
        refresh_hash: hash.to_owned(),
        created_at: T0 + n,
        expires_at: T0 + 1_000_000,
        device: Some(format!("device {n}")),
    }
}

/// Sessions are stored as given; `delete_session` revokes one, `delete_user_sessions` every
/// session of one user (and only theirs).
pub async fn sessions_create_get_delete(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let s1 = session(a.id, 1, "h1");
    let s2 = session(a.id, 2, "h2");
    let s3 = Session {
        device: None,
        ..session(b.id, 3, "h3")
    };
    for s in [&s1, &s2, &s3] {
        store.create_session(s).await.expect("create_session");
    }
    assert_eq!(store.get_session(s1.id).await.expect("get"), Some(s1.clone()));
    assert_eq!(store.get_session(s3.id).await.expect("get"), Some(s3.clone()));
    assert_eq!(store.get_session(SessionId::new(T0)).await.expect("get"), None);

    assert!(store.delete_session(s1.id).await.expect("delete"));
    assert!(
        !store.delete_session(s1.id).await.expect("delete again"),
        "second delete is false"
    );
    assert_eq!(store.get_session(s1.id).await.expect("get"), None);

    let s4 = session(a.id, 4, "h4");
    store.create_session(&s4).await.expect("create");
    assert_eq!(store.delete_user_sessions(a.id).await.expect("delete all"), 2);
    assert_eq!(store.get_session(s2.id).await.expect("get"), None);
    assert_eq!(store.get_session(s4.id).await.expect("get"), None);
    assert_eq!(
        store.get_session(s3.id).await.expect("get"),
        Some(s3),
        "other users keep theirs"
    );
    assert_eq!(store.delete_user_sessions(a.id).await.expect("delete none"), 0);
}

/// `rotate_session` swaps the hash only when the current hash matches; a replayed (old)
/// hash and unknown sessions are refused and change nothing.
pub async fn rotate_session_is_compare_and_swap(store: &dyn Store) {
    let fx = Fx::new(store);
    let u = fx.user("u").await;
    let s = session(u.id, 1, "old");
    store.create_session(&s).await.expect("create");

    assert!(
        !store
            .rotate_session(s.id, "wrong", "new", T0 + 9)
            .await
            .expect("rotate")
    );
    assert_eq!(
        store.get_session(s.id).await.expect("get"),
        Some(s.clone()),
        "refused CAS changes nothing"
    );

    assert!(
        store
            .rotate_session(s.id, "old", "new", T0 + 2_000_000)
            .await
            .expect("rotate")
    );
    let got = store.get_session(s.id).await.expect("get").expect("exists");
    assert_eq!(got.refresh_hash, "new");
    assert_eq!(got.expires_at, T0 + 2_000_000);
    assert_eq!(
        (got.user_id, got.created_at, &got.device),
        (s.user_id, s.created_at, &s.device)
    );

    assert!(
        !store
            .rotate_session(s.id, "old", "newer", T0 + 9)
            .await
            .expect("rotate"),
        "a replayed old hash is refused"
    );
    assert_eq!(
        store
            .get_session(s.id)
            .await
            .expect("get")
            .expect("exists")
            .refresh_hash,
        "new"
    );
    assert!(
        !store
            .rotate_session(SessionId::new(T0), "old", "x", T0)
            .await
            .expect("rotate")
    );
    store.delete_session(s.id).await.expect("delete");
    assert!(
        !store.rotate_session(s.id, "new", "x", T0).await.expect("rotate"),
        "revoked sessions never rotate"
    );
}

/// Concurrent rotations from the same hash: exactly one wins, and its hash is stored.
pub async fn concurrent_rotations_let_exactly_one_win(store: &dyn Store) {
    let fx = Fx::new(store);
    let u = fx.user("u").await;
    let s = session(u.id, 1, "h0");
    store.create_session(&s).await.expect("create");
    let news: Vec<String> = (0..16).map(|i| format!("h1-{i}")).collect();
    let results = join_all(news.iter().map(|n| store.rotate_session(s.id, "h0", n, T0 + 5))).await;
    let winners: Vec<&String> = results
        .iter()
        .zip(&news)
        .filter(|(r, _)| *r.as_ref().expect("rotate"))
        .map(|(_, n)| n)
        .collect();
    assert_eq!(winners.len(), 1, "exactly one concurrent rotation wins");
    let stored = store.get_session(s.id).await.expect("get").expect("exists");
    assert_eq!(&stored.refresh_hash, winners[0]);
}

/// Contacts: add/remove report whether they changed anything; lists are ordered by display
/// name then id; `contact_owners` is the reverse relation; each change is recorded once,
/// targeted at the owner only.
pub async fn contacts_add_remove_list_and_record_changes(store: &dyn Store) {
    let fx = Fx::new(store);
    let owner = fx.user("Owner").await;
    let carol = fx.user("Carol").await;
    let bob1 = fx.user("Bob").await;
    let bob2 = fx.user("Bob").await;
    let other = fx.user("Other").await;
    let start = fx.latest_pos().await;

    for c in [&carol, &bob2, &bob1] {
        let added = fx
            .checked(&[owner.id, c.id], store.add_contact(owner.id, c.id, fx.tick()))
            .await;
        assert_eq!(
            added.map(|ch| ch.kind),
            Some(ChangeKind::ContactAdded { user_id: c.id })
        );
    }
    let again = fx
        .checked(&[owner.id], store.add_contact(owner.id, carol.id, fx.tick()))
        .await;
    assert_eq!(again, None, "adding again records nothing");
    assert!(
        fx.checked(&[other.id], store.add_contact(other.id, carol.id, fx.tick()))
            .await
            .is_some()
    );

    let mut bobs = [bob1.id, bob2.id];
    bobs.sort();
    let listed = ids(&store.list_contacts(owner.id).await.expect("list"));
    assert_eq!(
        listed,
        vec![bobs[0], bobs[1], carol.id],
        "ordered by display name then id"
    );
    assert_eq!(
        sorted(store.contact_owners(carol.id).await.expect("owners")),
        sorted(vec![owner.id, other.id])
    );
    assert!(
        store.list_contacts(carol.id).await.expect("list").is_empty(),
        "contacts are one-way"
    );

    let removed = fx
        .checked(&[owner.id, carol.id], store.remove_contact(owner.id, carol.id))
        .await;
    assert_eq!(
        removed.map(|ch| ch.kind),
        Some(ChangeKind::ContactRemoved { user_id: carol.id })
    );
    assert_eq!(
        fx.checked(&[owner.id], store.remove_contact(owner.id, carol.id)).await,
        None
    );
    assert_eq!(store.contact_owners(carol.id).await.expect("owners"), vec![other.id]);
    assert_eq!(ids(&store.list_contacts(owner.id).await.expect("list")), bobs.to_vec());

    let changes = fx.sync_all(owner.id, start, 100).await;
    let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::ContactAdded { user_id: carol.id },
            ChangeKind::ContactAdded { user_id: bob2.id },
            ChangeKind::ContactAdded { user_id: bob1.id },
            ChangeKind::ContactRemoved { user_id: carol.id },
        ],
        "one change per effective add/remove, none for no-ops"
    );
    assert!(changes.iter().all(|c| c.conversation_id.is_none()));
    assert!(
        fx.sync_all(carol.id, start, 100).await.is_empty(),
        "the contact is not told"
    );
    assert!(fx.sync_all(bob1.id, start, 100).await.is_empty());
    assert_eq!(fx.sync_all(other.id, start, 100).await.len(), 1);
}

/// Blocks: block/unblock report whether they changed anything; `list_blocked` is ordered by
/// display name then id; the either-way queries see both directions; each change is
/// recorded once, targeted at the blocker only.
pub async fn blocks_block_unblock_list_and_record_changes(store: &dyn Store) {
    let fx = Fx::new(store);
    let a = fx.user("A").await;
    let zed = fx.user("Zed").await;
    let mia = fx.user("Mia").await;
    let c = fx.user("C").await;
    let start = fx.latest_pos().await;

    let blocked = fx.checked(&[a.id, zed.id], store.block(a.id, zed.id, fx.tick())).await;
    assert_eq!(blocked.map(|ch| ch.kind), Some(ChangeKind::Blocked { user_id: zed.id }));
    assert!(
        fx.checked(&[a.id], store.block(a.id, mia.id, fx.tick()))
            .await
            .is_some()
    );
    assert_eq!(
        fx.checked(&[a.id], store.block(a.id, zed.id, fx.tick())).await,
        None,
        "blocking again records nothing"
    );
    assert!(
        fx.checked(&[c.id, a.id], store.block(c.id, a.id, fx.tick()))
            .await
            .is_some()
    );

    assert_eq!(
        ids(&store.list_blocked(a.id).await.expect("list")),
        vec![mia.id, zed.id]
    );
    assert!(store.is_blocked_either_way(a.id, zed.id).await.expect("q"));
    assert!(
        store.is_blocked_either_way(zed.id, a.id).await.expect("q"),
        "either way"
    );
    assert!(store.is_blocked_either_way(a.id, c.id).await.expect("q"));
    assert!(!store.is_blocked_either_way(zed.id, mia.id).await.expect("q"));
    assert_eq!(
        sorted(store.blocked_either_way(a.id).await.expect("q")),
        sorted(vec![zed.id, mia.id, c.id])
    );
    assert_eq!(store.blocked_either_way(zed.id).await.expect("q"), vec![a.id]);
    assert!(store.list_blocked(zed.id).await.expect("list").is_empty());

    let unblocked = fx.checked(&[a.id, zed.id], store.unblock(a.id, zed.id)).await;
    assert_eq!(
        unblocked.map(|ch| ch.kind),
        Some(ChangeKind::Unblocked { user_id: zed.id })
    );
    assert_eq!(
        fx.checked(&[a.id], store.unblock(a.id, zed.id)).await,
        None,
        "unblocking again records nothing"
    );
    assert_eq!(
        fx.checked(&[zed.id], store.unblock(zed.id, a.id)).await,
        None,
        "not blocked that way"
    );
    assert!(!store.is_blocked_either_way(a.id, zed.id).await.expect("q"));
    assert_eq!(ids(&store.list_blocked(a.id).await.expect("list")), vec![mia.id]);

    let kinds: Vec<ChangeKind> = fx
        .sync_all(a.id, start, 2)
        .await
        .into_iter()
        .map(|c| {
            assert!(c.conversation_id.is_none());
            c.kind
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Blocked { user_id: zed.id },
            ChangeKind::Blocked { user_id: mia.id },
            ChangeKind::Unblocked { user_id: zed.id },
        ]
    );
    assert!(
        fx.sync_all(zed.id, start, 10).await.is_empty(),
        "the blocked user is not told"
    );
    assert_eq!(
        fx.sync_all(c.id, start, 10)
            .await
            .into_iter()
            .map(|c| c.kind)
            .collect::<Vec<_>>(),
        vec![ChangeKind::Blocked { user_id: a.id }]
    );
}

/// Blob metadata round-trips; delete reports whether it existed.
pub async fn blobs_insert_get_delete(store: &dyn Store) {
    let fx = Fx::new(store);
    let u = fx.user("u").await;
    let meta = BlobMeta {
        key: "k-0123456789abcdef".into(),
        owner_id: u.id,
        content_type: "image/png".into(),
        size: 12_345,
        width: Some(640),
        height: Some(480),
        purpose: BlobPurpose::Avatar,
        created_at: T0 + 1,
    };
    let other = BlobMeta {
        key: "k-other".into(),
        width: None,
        height: None,
        purpose: BlobPurpose::Media,
        content_type: "video/mp4".into(),
        ..meta.clone()
    };
    store.insert_blob(&meta).await.expect("insert");
    store.insert_blob(&other).await.expect("insert");
    assert_eq!(store.get_blob(&meta.key).await.expect("get"), Some(meta.clone()));
    assert_eq!(store.get_blob(&other.key).await.expect("get"), Some(other.clone()));
    assert_eq!(store.get_blob("missing").await.expect("get"), None);
    assert!(store.delete_blob(&meta.key).await.expect("delete"));
    assert!(!store.delete_blob(&meta.key).await.expect("delete again"));
    assert_eq!(store.get_blob(&meta.key).await.expect("get"), None);
    assert_eq!(store.get_blob(&other.key).await.expect("get"), Some(other));
}

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

// ---- avatars: only your own uploaded avatar blobs --------------------------------------

use chatico_core::model::{BlobMeta, BlobPurpose, ProfilePatch};

fn register(h: &Harness, owner: UserId, key: &str, purpose: BlobPurpose) {
    let meta = BlobMeta {
        key: key.into(),
        owner_id: owner,
        content_type: "image/png".into(),
        size: 10,
        width: Some(1),
        height: Some(1),
        purpose,
        created_at: T0,
    };
    block_on(h.engine.register_blob(owner, meta)).expect("register");
}

fn set_avatar(h: &Harness, who: UserId, url: &str) -> chatico_core::Result<Option<String>> {
    let patch = ProfilePatch {
        avatar_url: Some(Some(url.into())),
        ..Default::default()
    };
    block_on(h.engine.update_profile(who, patch)).map(|o| o.value.avatar_url)
}

#[test]
fn an_avatar_is_an_avatar_blob_of_your_own_on_this_server() {
    let h = Harness::new();
    let [a, b] = h.users(&["Ann", "Bob"])[..] else {
        unreachable!()
    };
    register(&h, a, "a-avatar", BlobPurpose::Avatar);
    register(&h, a, "a-media", BlobPurpose::Media);
    register(&h, b, "b-avatar", BlobPurpose::Avatar);
    register(&h, a, "a/b", BlobPurpose::Avatar);
    let refused = [
        "https://tracker.example/pixel.png",
        "http://10.0.0.1/x.png",
        "//evil.example/x.png",
        "/v1/blobs/",
        "/v1/blobs/missing",
        "/v1/blobs/b-avatar",
        "/v1/blobs/a-media",
        "/v1/blobs/a-avatar/../b-avatar",
        "/v1/blobs/a-avatar?x=1",
        "/v1/me",
        "a-avatar",
        "/v1/blobs/%ZZ",
    ];
    for url in refused {
        let r = set_avatar(&h, a, url);
        assert!(
            matches!(&r, Err(Error::InvalidInput { field, .. }) if field == "avatar_url"),
            "{url}: {r:?}"
        );
    }
    assert_eq!(
        block_on(h.engine.me(a)).expect("me").avatar_url,
        None,
        "nothing changed"
    );
    assert_eq!(
        set_avatar(&h, a, "/v1/blobs/a-avatar").expect("own avatar").as_deref(),
        Some("/v1/blobs/a-avatar")
    );
    // The form the clients store (`paths::blob(key)`, percent-encoded).
    assert_eq!(
        set_avatar(&h, a, "/v1/blobs/a%2Fb").expect("encoded key").as_deref(),
        Some("/v1/blobs/a%2Fb")
    );

    // Groups: the same rule, for whoever sets it.
    let g = h.group(a, "G", &[b]);
    let upd = |who, url: &str| block_on(h.engine.update_group(who, g, None, Some(Some(url.into()))));
    assert_eq!(
        invalid_field(upd(a, "https://tracker.example/p.png")).as_deref(),
        Some("avatar_url")
    );
    assert_eq!(
        invalid_field(upd(a, "/v1/blobs/b-avatar")).as_deref(),
        Some("avatar_url")
    );
    let c = upd(a, "/v1/blobs/a-avatar").expect("own avatar").value;
    assert_eq!(c.avatar_url.as_deref(), Some("/v1/blobs/a-avatar"));
}

// ---- phone numbers ------------------------------------------------------------------------

use chatico_core::model::UserProfile;

fn phone_of(h: &Harness, u: UserId) -> String {
    block_on(h.engine.me(u)).expect("me").phone.to_string()
}

fn seen_phone(list: &[UserProfile], u: UserId) -> Option<String> {
    list.iter()
        .find(|p| p.id == u)
        .expect("listed")
        .phone
        .as_ref()
        .map(|p| p.to_string())
}

#[test]
fn all_users_shows_names_and_pictures_and_phones_only_where_expected() {
    let h = Harness::new();
    let [viewer, stranger, added_me, i_added, peer, group_peer] =
        h.users(&["Viewer", "Stranger", "AddedMe", "IAdded", "Peer", "GroupPeer"])[..]
    else {
        unreachable!()
    };
    block_on(h.engine.add_contact(added_me, viewer)).expect("contact");
    block_on(h.engine.add_contact(viewer, i_added)).expect("contact");
    h.direct(peer, viewer);
    h.group(group_peer, "G", &[viewer]);
    let all = block_on(h.engine.list_users(viewer, None, None, 100)).expect("all users");
    assert_eq!(all.len(), 6, "everyone is listed, with names");
    assert!(all.iter().all(|p| !p.display_name.is_empty()));
    assert_eq!(seen_phone(&all, viewer), Some(phone_of(&h, viewer)), "your own");
    assert_eq!(
        seen_phone(&all, added_me),
        Some(phone_of(&h, added_me)),
        "they made you a contact"
    );
    assert_eq!(seen_phone(&all, peer), Some(phone_of(&h, peer)), "a direct chat");
    assert_eq!(seen_phone(&all, group_peer), Some(phone_of(&h, group_peer)), "a group");
    assert_eq!(seen_phone(&all, stranger), None, "a stranger's number is not listed");
    assert_eq!(seen_phone(&all, i_added), None, "adding someone takes only their id");
    // The same on every other read of a profile.
    let p = block_on(h.engine.get_profile(viewer, stranger)).expect("profile");
    assert_eq!(p.phone, None);
    let contacts = block_on(h.engine.list_contacts(viewer)).expect("contacts");
    assert_eq!(seen_phone(&contacts, i_added), None);
    // The JSON leaves the field out.
    let json = serde_json::to_value(&p).expect("json");
    assert!(json.get("phone").is_none(), "{json}");
    // No prefix search: a number is never read digit by digit.
    let sp = phone_of(&h, stranger);
    for prefix in [&sp[..2], &sp[..6], &sp[..sp.len() - 1]] {
        let r = block_on(h.engine.list_users(viewer, Some(prefix), None, 100)).expect("search");
        assert!(r.is_empty(), "{prefix}: {r:?}");
    }
}

#[test]
fn an_exact_number_finds_its_user_with_the_number() {
    let h = Harness::new();
    let [viewer, stranger] = h.users(&["Viewer", "Stranger"])[..] else {
        unreachable!()
    };
    let sp = phone_of(&h, stranger);
    let found = block_on(h.engine.list_users(viewer, Some(&sp), None, 100)).expect("lookup");
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].id, stranger);
    assert_eq!(found[0].phone.as_ref().map(|p| p.to_string()), Some(sp.clone()));
    // Written with spaces and dashes, as people type it.
    let spaced = format!("{} {}-{}", &sp[..2], &sp[2..6], &sp[6..]);
    let found = block_on(h.engine.list_users(viewer, Some(&spaced), None, 100)).expect("lookup");
    assert_eq!(found.len(), 1, "{spaced}");
    // A number nobody has.
    let r = block_on(h.engine.list_users(viewer, Some("+19998887777"), None, 100)).expect("lookup");
    assert!(r.is_empty());
    // Then a chat can start, and from then on the number shows in the list.
    h.direct(viewer, stranger);
    let all = block_on(h.engine.list_users(viewer, None, None, 100)).expect("all");
    assert_eq!(seen_phone(&all, stranger), Some(sp));
}

#[test]
fn a_profile_event_carries_the_number_only_to_those_who_may_see_it() {
    let h = Harness::new();
    let [owner, peer, fan] = h.users(&["Owner", "Peer", "Fan"])[..] else {
        unreachable!()
    };
    h.direct(owner, peer);
    // Fan added Owner as a contact: told about profile changes, but not given the number.
    block_on(h.engine.add_contact(fan, owner)).expect("contact");
    let o = block_on(h.engine.update_profile(
        owner,
        ProfilePatch {
            bio: Some("new bio".into()),
            ..Default::default()
        },
    ))
    .expect("update");
    let mut told = Vec::new();
    for d in &o.deliveries {
        let chatico_core::sync::Event::Profile(p) = &d.event else {
            continue;
        };
        for r in &d.recipients {
            told.push((*r, p.phone.is_some()));
        }
    }
    told.sort();
    let mut want = vec![(owner, true), (peer, true), (fan, false)];
    want.sort();
    assert_eq!(told, want);
}

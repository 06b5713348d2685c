//! Conformance: push devices, mutes and the unread badge.

use crate::ErrorCode;
use crate::ids::{SessionId, UserId};
use crate::model::Session;
use crate::ports::Store;
use crate::push::{Mute, Platform, PushDevice};
use crate::sync::ChangeKind;

use super::fixtures::{Fx, T0};

fn session(user: UserId, n: i64, expires_at: i64) -> Session {
    Session {
        id: SessionId::new(T0 + n),
        user_id: user,
        refresh_hash: format!("h{n}"),
        created_at: T0 + n,
        expires_at,
        device: None,
    }
}

fn device(s: &Session, platform: Platform, token: &str) -> PushDevice {
    PushDevice {
        session_id: s.id,
        user_id: s.user_id,
        platform,
        token: token.to_owned(),
        app_id: "com.example.chat".to_owned(),
        locale: Some("fr-CA".to_owned()),
        updated_at: T0 + 5,
    }
}

fn tokens(devices: &[PushDevice]) -> Vec<(SessionId, &str)> {
    devices.iter().map(|d| (d.session_id, d.token.as_str())).collect()
}

/// A session holds one device: registering again replaces it (token rotation); the same
/// token registered by another session moves there; unregistering removes it; an unknown
/// session is `NotFound` and writes nothing; only live sessions' devices are listed.
pub async fn push_devices_register_replace_and_move(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let far = T0 + 10_000_000;
    let (s1, s2, s3) = (session(a.id, 1, far), session(a.id, 2, far), session(b.id, 3, far));
    let expired = session(a.id, 4, T0 + 100);
    for s in [&s1, &s2, &s3, &expired] {
        store.create_session(s).await.expect("create_session");
    }
    let d1 = device(&s1, Platform::Apns, "aa01");
    store.register_push_device(&d1).await.expect("register");
    assert_eq!(store.push_devices(a.id, T0).await.expect("list"), vec![d1.clone()]);

    // Rotation: the session's token is replaced, not added.
    let d1b = PushDevice {
        token: "aa02".into(),
        locale: None,
        ..d1.clone()
    };
    store.register_push_device(&d1b).await.expect("replace");
    assert_eq!(store.push_devices(a.id, T0).await.expect("list"), vec![d1b.clone()]);

    store
        .register_push_device(&device(&s2, Platform::Fcm, "fcm:x"))
        .await
        .expect("second device");
    store
        .register_push_device(&device(&expired, Platform::Fcm, "fcm:old"))
        .await
        .expect("expired session's device");
    let mut want = vec![(s1.id, "aa02"), (s2.id, "fcm:x")];
    want.sort();
    assert_eq!(tokens(&store.push_devices(a.id, T0 + 1000).await.expect("list")), want);

    // The same token under another session (a new login on the install) moves there.
    store
        .register_push_device(&device(&s3, Platform::Fcm, "fcm:x"))
        .await
        .expect("move");
    assert_eq!(
        tokens(&store.push_devices(a.id, T0 + 1000).await.expect("list")),
        vec![(s1.id, "aa02")]
    );
    assert_eq!(
        tokens(&store.push_devices(b.id, T0 + 1000).await.expect("list")),
        vec![(s3.id, "fcm:x")]
    );
    // The same token on the other platform is another registration.
    store
        .register_push_device(&device(&s2, Platform::Apns, "fcm:x"))
        .await
        .expect("other platform");
    assert_eq!(store.push_devices(b.id, T0 + 1000).await.expect("list").len(), 1);

    let ghost = session(a.id, 9, far);
    let err = store
        .register_push_device(&device(&ghost, Platform::Apns, "aa09"))
        .await
        .expect_err("no such session");
    assert_eq!(err.code(), ErrorCode::NotFound);
    assert!(store.unregister_push_device(s2.id).await.expect("unregister"));
    assert!(
        !store.unregister_push_device(s2.id).await.expect("again"),
        "second time false"
    );
    assert!(!store.unregister_push_device(ghost.id).await.expect("ghost"));
    assert_eq!(
        tokens(&store.push_devices(a.id, T0 + 1000).await.expect("list")),
        vec![(s1.id, "aa02")]
    );
}

/// Devices go with their sessions (`delete_session`, `delete_user_sessions`), and a token the
/// provider refused is removed wherever it is registered.
pub async fn push_devices_go_with_sessions_and_invalid_tokens(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b) = (fx.user("a").await, fx.user("b").await);
    let far = T0 + 10_000_000;
    let (s1, s2, s3) = (session(a.id, 1, far), session(a.id, 2, far), session(b.id, 3, far));
    for s in [&s1, &s2, &s3] {
        store.create_session(s).await.expect("create_session");
        store
            .register_push_device(&device(s, Platform::Fcm, &format!("t{}", s.created_at)))
            .await
            .expect("register");
    }
    assert!(store.delete_session(s1.id).await.expect("delete"));
    assert_eq!(
        tokens(&store.push_devices(a.id, T0).await.expect("list")),
        vec![(s2.id, format!("t{}", T0 + 2).as_str())]
    );
    // A session id reused would not bring the device back.
    store.create_session(&s1).await.expect("recreate");
    assert_eq!(store.push_devices(a.id, T0).await.expect("list").len(), 1);

    assert_eq!(store.delete_user_sessions(a.id).await.expect("logout everywhere"), 2);
    assert!(store.push_devices(a.id, T0).await.expect("list").is_empty());
    assert_eq!(
        store.push_devices(b.id, T0).await.expect("list").len(),
        1,
        "others keep theirs"
    );

    let t3 = format!("t{}", T0 + 3);
    assert_eq!(
        store
            .remove_push_token(Platform::Apns, &t3)
            .await
            .expect("other platform"),
        0
    );
    assert_eq!(store.remove_push_token(Platform::Fcm, &t3).await.expect("remove"), 1);
    assert!(store.push_devices(b.id, T0).await.expect("list").is_empty());
    assert_eq!(store.remove_push_token(Platform::Fcm, &t3).await.expect("again"), 0);
}

/// `set_mute` records `Muted` (targeted at the user) when the state changes, nothing when it
/// does not; `mutes` lists current members' mutes (expired ones too); a non-member is
/// `NotFound`; a member who left drops out of the list.
pub async fn mutes_record_targeted_changes_and_list_members(store: &dyn Store) {
    let fx = Fx::new(store);
    let (owner, a, b, outsider) = (
        fx.user("o").await,
        fx.user("a").await,
        fx.user("b").await,
        fx.user("x").await,
    );
    let conv = fx.group(&owner, &[&a, &b]).await;
    let other = fx.group(&owner, &[&a]).await;
    let start = fx.latest_pos().await;
    let audience = [owner.id, a.id, b.id];

    let until = T0 + 3_600_000;
    let c = fx
        .checked(&audience, store.set_mute(conv.id, a.id, true, Some(until)))
        .await;
    assert!(c.is_some());
    let c = fx
        .checked(&audience, store.set_mute(conv.id, a.id, true, Some(until)))
        .await;
    assert_eq!(c, None, "unchanged state records nothing");
    let c = fx.checked(&audience, store.set_mute(conv.id, a.id, true, None)).await;
    assert!(c.is_some(), "a new end time is a change");
    fx.checked(&audience, store.set_mute(conv.id, b.id, true, Some(T0 + 1)))
        .await
        .expect("b muted");
    assert_eq!(store.mutes(conv.id).await.expect("mutes"), {
        let mut v = vec![
            Mute {
                user_id: a.id,
                until: None,
            },
            Mute {
                user_id: b.id,
                until: Some(T0 + 1),
            },
        ];
        v.sort_by_key(|m| m.user_id);
        v
    });
    fx.checked(&[owner.id, a.id], store.set_mute(other.id, a.id, true, Some(T0 + 7)))
        .await
        .expect("a mutes another");
    let mut want = vec![(conv.id, None), (other.id, Some(T0 + 7))];
    want.sort();
    assert_eq!(store.user_mutes(a.id).await.expect("user mutes"), want);
    assert!(store.user_mutes(owner.id).await.expect("user mutes").is_empty());
    store.set_mute(other.id, a.id, false, None).await.expect("unmute other");
    let c = fx.checked(&audience, store.set_mute(conv.id, a.id, false, None)).await;
    assert!(c.is_some());
    assert!(store.user_mutes(a.id).await.expect("user mutes").is_empty());
    assert_eq!(
        fx.checked(&audience, store.set_mute(conv.id, a.id, false, None)).await,
        None,
        "unmuting twice records nothing"
    );

    let seen: Vec<_> = fx
        .sync_all(a.id, start, 10)
        .await
        .into_iter()
        .filter(|c| c.conversation_id == Some(conv.id))
        .collect();
    let kinds: Vec<ChangeKind> = seen.iter().map(|c| c.kind.clone()).collect();
    assert_eq!(
        kinds,
        vec![
            ChangeKind::Muted {
                muted: true,
                until: Some(until)
            },
            ChangeKind::Muted {
                muted: true,
                until: None
            },
            ChangeKind::Muted {
                muted: false,
                until: None
            },
        ]
    );
    assert!(
        fx.sync_all(owner.id, start, 10).await.is_empty(),
        "targeted at the user only"
    );
    let err = store
        .set_mute(conv.id, outsider.id, true, None)
        .await
        .expect_err("not a member");
    assert_eq!(err.code(), ErrorCode::NotFound);

    store.remove_member(conv.id, b.id, b.id).await.expect("b leaves");
    assert!(
        store.mutes(conv.id).await.expect("mutes").is_empty(),
        "only current members"
    );
}

/// `total_unread` sums `last_seq - read_seq` over the user's conversations.
pub async fn total_unread_sums_over_conversations(store: &dyn Store) {
    let fx = Fx::new(store);
    let (a, b, c) = (fx.user("a").await, fx.user("b").await, fx.user("c").await);
    assert_eq!(store.total_unread(a.id).await.expect("unread"), 0);
    let d = fx.direct(&a, &b).await;
    let g = fx.group(&c, &[&a, &b]).await;
    fx.send_n(d.id, b.id, 3).await;
    fx.send_n(g.id, c.id, 4).await;
    fx.send_n(g.id, a.id, 1).await; // a's own message moves a's read watermark to 5
    assert_eq!(store.total_unread(a.id).await.expect("unread"), 3);
    assert_eq!(store.total_unread(b.id).await.expect("unread"), 5);
    assert_eq!(
        store.total_unread(c.id).await.expect("unread"),
        1,
        "a's message is unread for c"
    );
    store.update_receipts(d.id, a.id, None, Some(2)).await.expect("read 2");
    assert_eq!(store.total_unread(a.id).await.expect("unread"), 1);
    fx.send(g.id, c.id).await;
    assert_eq!(store.total_unread(a.id).await.expect("unread"), 2);
    assert_eq!(
        store.total_unread(c.id).await.expect("unread"),
        0,
        "c's own message reads up to it"
    );
}

//! The push rules in the engine: which delivery pushes whom (sender, presence, blocks,
//! mutes, replies, invitations), what a notification carries (no text by default, previews
//! when asked, the unread badge, the collapse id), and device registration.

mod common;

use chatico_core::engine::{AuthContext, Engine, SendMessage};
use chatico_core::ids::{ConversationId, SessionId, UserId};
use chatico_core::model::{Content, Mention, Session};
use chatico_core::ports::Store;
use chatico_core::protocol::RegisterPushRequest;
use chatico_core::push::{DEFAULT_TITLE, Platform, PushIntent, PushKind, intent_of};
use common::*;

/// Sends and returns the push intent of the send's delivery.
fn send(h: &Harness, from: UserId, conv: ConversationId, text: &str, reply_to: Option<i64>) -> PushIntent {
    let out = block_on(h.engine.send(
        from,
        SendMessage {
            conversation_id: conv,
            client_msg_id: uuid_ish(),
            content: Content::text(text),
            reply_to_seq: reply_to,
        },
    ))
    .expect("send");
    out.deliveries.iter().find_map(intent_of).expect("a message pushes")
}

fn device(h: &Harness, user: UserId, token: &str) -> AuthContext {
    let session = Session {
        id: SessionId::new(T0),
        user_id: user,
        refresh_hash: "h".into(),
        created_at: T0,
        expires_at: T0 + 86_400_000,
        device: None,
    };
    block_on(h.store.create_session(&session)).expect("session");
    let ctx = AuthContext {
        user_id: user,
        session_id: session.id,
    };
    block_on(h.engine.register_push(
        ctx,
        RegisterPushRequest {
            platform: Platform::Fcm,
            token: token.into(),
            app_id: "com.example.chat".into(),
            locale: None,
        },
    ))
    .expect("register");
    ctx
}

fn who(r: &[(UserId, PushKind)]) -> Vec<UserId> {
    sorted(r.iter().map(|(u, _)| *u).collect())
}

#[test]
fn offline_members_are_pushed_but_not_the_sender_the_connected_the_blocked_or_the_muted() {
    let h = Harness::new();
    let [a, b, c, d, e] = h.users(&["A", "B", "C", "D", "E"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c, d, e]);
    block_on(h.engine.connected(c, 1)).expect("c online");
    block_on(h.engine.block(d, a)).expect("d blocks a");
    block_on(h.engine.mute(e, g, None)).expect("e mutes");
    let intent = send(&h, a, g, "hi", None);
    assert_eq!(intent.candidates, sorted(vec![b, c, d, e]));
    let r = block_on(h.engine.push_recipients(&intent)).expect("recipients");
    assert_eq!(who(&r), vec![b], "not a (sender), c (online), d (blocked a), e (muted)");

    // A mute with an end stops silencing then; an unmute at once.
    block_on(h.engine.mute(e, g, Some(T0 + 1000))).expect("mute until");
    assert_eq!(who(&block_on(h.engine.push_recipients(&intent)).expect("r")), vec![b]);
    h.clock.advance(1000);
    assert_eq!(
        who(&block_on(h.engine.push_recipients(&intent)).expect("r")),
        sorted(vec![b, e])
    );
    // c goes offline: pushed too.
    block_on(h.engine.disconnected(c, 1)).expect("c offline");
    assert_eq!(
        who(&block_on(h.engine.push_recipients(&intent)).expect("r")),
        sorted(vec![b, c, e])
    );
    // Bad mutes change nothing.
    let past = block_on(h.engine.mute(b, g, Some(T0)));
    assert_eq!(invalid_field(past), Some("until".into()));
    let outsider = h.user("X");
    assert_eq!(
        block_on(h.engine.mute(outsider, g, None)).map(|_| ()).unwrap_err(),
        not_found_conversation()
    );
}

#[test]
fn a_reply_to_you_is_a_reply_and_invitations_go_to_the_invited_only() {
    let h = Harness::new();
    let [a, b, c, d] = h.users(&["A", "B", "C", "D"])[..] else {
        unreachable!()
    };
    let created = block_on(h.engine.create_group(a, "G".into(), vec![b, c])).expect("group");
    let g = created.value.id;
    let inv = created.deliveries.iter().find_map(intent_of).expect("invitation");
    assert_eq!(
        (inv.kind, sorted(inv.candidates.clone())),
        (PushKind::Invitation, sorted(vec![b, c]))
    );

    let seq_b = h.say(b, g, "question");
    let reply = send(&h, a, g, "answer", Some(seq_b));
    let r = block_on(h.engine.push_recipients(&reply)).expect("recipients");
    assert_eq!(r, {
        let mut v = vec![(b, PushKind::Reply), (c, PushKind::Message)];
        v.sort();
        v
    });

    let added = block_on(h.engine.add_members(a, g, vec![d])).expect("add");
    let inv = added.deliveries.iter().find_map(intent_of).expect("invitation");
    assert_eq!((inv.kind, inv.candidates.clone()), (PushKind::Invitation, vec![d]));
}

#[test]
fn notifications_carry_no_text_by_default_the_badge_and_the_conversation() {
    let h = Harness::new();
    let [a, b] = h.users(&["Alice", "B"])[..] else {
        unreachable!()
    };
    let conv = h.direct(a, b);
    let other = h.group(a, "Team", &[b]);
    device(&h, b, "tok-b");
    h.say(a, other, "elsewhere");
    h.say(a, conv, "one");
    let seq = h.say(a, conv, "secret");
    let ns = block_on(h.engine.push_notifications(b, conv, seq, PushKind::Message)).expect("notifications");
    assert_eq!(ns.len(), 1);
    let n = &ns[0];
    assert_eq!((n.title.as_str(), n.body.as_deref()), (DEFAULT_TITLE, None));
    // Unread over every conversation: the group's notice and message, and two here.
    assert_eq!(n.badge, 4);
    assert_eq!(
        (n.conversation_id, n.seq, n.collapse_id.clone()),
        (conv, seq, conv.to_string())
    );
    assert_eq!((n.token.as_str(), n.platform), ("tok-b", Platform::Fcm));

    // Connected since: nothing. Nobody without a device: nothing.
    block_on(h.engine.connected(b, 7)).expect("online");
    assert!(
        block_on(h.engine.push_notifications(b, conv, seq, PushKind::Message))
            .expect("n")
            .is_empty()
    );
    block_on(h.engine.disconnected(b, 7)).expect("offline");
    assert!(
        block_on(h.engine.push_notifications(a, conv, seq, PushKind::Message))
            .expect("n")
            .is_empty()
    );
    // Deleted for everyone meanwhile: nothing.
    block_on(h.engine.delete_for_everyone(a, conv, seq)).expect("delete");
    assert!(
        block_on(h.engine.push_notifications(b, conv, seq, PushKind::Message))
            .expect("n")
            .is_empty()
    );
}

#[test]
fn previews_show_the_sender_or_group_and_the_text_when_the_host_asks() {
    let h = Harness::new();
    // A second engine over the same store, with previews on.
    let previews = Engine::new(h.store.clone(), h.clock.clone(), test_config())
        .expect("engine")
        .with_push_previews(true);
    let [a, b] = h.users(&["Alice", "Bob"])[..] else {
        unreachable!()
    };
    let conv = h.direct(a, b);
    let g = h.group(a, "Team", &[b]);
    device(&h, b, "tok-b");
    let seq = h.say(a, conv, &"x".repeat(500));
    let n = &block_on(previews.push_notifications(b, conv, seq, PushKind::Message)).expect("n")[0];
    assert_eq!(n.title, "Alice");
    assert_eq!(n.body.as_ref().map(|b| b.chars().count()), Some(200), "cut");
    let seq = h.say(a, g, "lunch?");
    let n = &block_on(previews.push_notifications(b, g, seq, PushKind::Message)).expect("n")[0];
    assert_eq!((n.title.as_str(), n.body.as_deref()), ("Team", Some("Alice: lunch?")));
    let n = &block_on(h.engine.push_notifications(b, g, seq, PushKind::Message)).expect("n")[0];
    assert_eq!(
        (n.title.as_str(), n.body.as_deref()),
        (DEFAULT_TITLE, None),
        "off by default"
    );
}

#[test]
fn registration_is_per_session_and_invalid_tokens_are_dropped() {
    let h = Harness::new();
    let b = h.user("B");
    let ctx = device(&h, b, "first");
    let reg = |token: &str, platform: Platform| {
        block_on(h.engine.register_push(
            ctx,
            RegisterPushRequest {
                platform,
                token: token.into(),
                app_id: "com.example.chat".into(),
                locale: Some("fr-CA".into()),
            },
        ))
    };
    reg("rotated", Platform::Fcm).expect("rotate");
    let devices = block_on(h.store.push_devices(b, T0)).expect("devices");
    assert_eq!(
        devices.iter().map(|d| d.token.as_str()).collect::<Vec<_>>(),
        vec!["rotated"]
    );
    assert_eq!(invalid_field(reg("zz", Platform::Apns)), Some("token".into()));
    assert_eq!(
        invalid_field(reg(&"a".repeat(4097), Platform::Fcm)),
        Some("token".into())
    );
    assert_eq!(
        block_on(h.engine.drop_push_token(Platform::Fcm, "rotated")).expect("drop"),
        1
    );
    assert!(block_on(h.store.push_devices(b, T0)).expect("devices").is_empty());
    assert!(!block_on(h.engine.unregister_push(ctx)).expect("nothing left"));
}

#[test]
fn a_mention_pushes_through_a_mute_with_the_mention_kind() {
    let h = Harness::new();
    let [a, b, c, d] = h.users(&["A", "B", "C", "D"])[..] else {
        unreachable!()
    };
    let g = h.group(a, "G", &[b, c, d]);
    device(&h, b, "tok-b");
    block_on(h.engine.mute(b, g, None)).expect("b mutes");
    block_on(h.engine.mute(c, g, None)).expect("c mutes");
    block_on(h.engine.block(d, a)).expect("d blocks a");
    let out = block_on(h.engine.send(
        a,
        SendMessage {
            conversation_id: g,
            client_msg_id: uuid_ish(),
            content: Content::Text {
                text: "@B @D look".into(),
                mentions: vec![
                    Mention {
                        user_id: b,
                        start: 0,
                        end: 2,
                    },
                    Mention {
                        user_id: d,
                        start: 3,
                        end: 5,
                    },
                ],
            },
            reply_to_seq: None,
        },
    ))
    .expect("send");
    let intent = out.deliveries.iter().find_map(intent_of).expect("pushes");
    assert_eq!(sorted(intent.mentioned.clone()), sorted(vec![b, d]));
    let r = block_on(h.engine.push_recipients(&intent)).expect("recipients");
    assert_eq!(
        r,
        vec![(b, PushKind::Mention)],
        "b (muted, mentioned) is pushed; c (muted, not mentioned) is not; a block still wins for d"
    );
    let ns = block_on(h.engine.push_notifications(b, g, intent.seq, PushKind::Mention)).expect("notifications");
    assert_eq!(ns.len(), 1, "the mute does not stop a mention");
    assert_eq!(ns[0].kind, PushKind::Mention);
    assert!(
        block_on(h.engine.push_notifications(b, g, intent.seq, PushKind::Message))
            .expect("n")
            .is_empty(),
        "a plain message to a muted user stays silent"
    );
    // Online: no push, mention or not.
    block_on(h.engine.connected(b, 3)).expect("online");
    assert!(block_on(h.engine.push_recipients(&intent)).expect("r").is_empty());
}

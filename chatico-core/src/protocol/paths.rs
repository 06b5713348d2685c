//! The REST paths of protocol version 1, declared once.
//!
//! The constants are route templates (`{name}` marks a path parameter, the syntax of axum
//! and OpenAPI): the gateway routes and documents exactly these. The functions build the
//! concrete path a client calls by filling a template in. Paths are relative to where the
//! gateway is mounted (a client prepends its base URL).

use std::fmt::Display;

use crate::ids::{ConversationId, UserId};

/// `POST`: text a one-time code to a phone.
pub const AUTH_OTP: &str = "/v1/auth/otp";
/// `POST`: exchange phone and code for session tokens.
pub const AUTH_VERIFY: &str = "/v1/auth/verify";
/// `POST`: rotate a refresh token into a new token pair.
pub const AUTH_REFRESH: &str = "/v1/auth/refresh";
/// `POST`: end the caller's session.
pub const AUTH_LOGOUT: &str = "/v1/auth/logout";
/// `POST`: end every session of the caller.
pub const AUTH_LOGOUT_EVERYWHERE: &str = "/v1/auth/logout-everywhere";
/// `GET` the caller's own record, `PATCH` their profile.
pub const ME: &str = "/v1/me";
/// `GET`: search users by name or exact phone.
pub const USERS: &str = "/v1/users";
/// `GET` one user's profile.
pub const USER: &str = "/v1/users/{user_id}";
/// `GET` the presence of listed users.
pub const PRESENCE: &str = "/v1/presence";
/// `GET` the caller's contacts.
pub const CONTACTS: &str = "/v1/contacts";
/// `PUT` adds, `DELETE` removes a contact.
pub const CONTACT: &str = "/v1/contacts/{user_id}";
/// `GET` the users the caller blocked.
pub const BLOCKS: &str = "/v1/blocks";
/// `PUT` blocks, `DELETE` unblocks a user.
pub const BLOCK: &str = "/v1/blocks/{user_id}";
/// `GET` the caller's conversation list.
pub const CONVERSATIONS: &str = "/v1/conversations";
/// `POST`: open (or find) the direct conversation with a user.
pub const DIRECT: &str = "/v1/conversations/direct";
/// `POST`: create a group.
pub const GROUP: &str = "/v1/conversations/group";
/// `GET` a conversation with its members, `PATCH` a group's title or avatar.
pub const CONVERSATION: &str = "/v1/conversations/{conversation_id}";
/// `POST`: add members to a group.
pub const MEMBERS: &str = "/v1/conversations/{conversation_id}/members";
/// `DELETE`: remove a member from a group.
pub const MEMBER: &str = "/v1/conversations/{conversation_id}/members/{user_id}";
/// `PUT`: change a member's role (owner only).
pub const MEMBER_ROLE: &str = "/v1/conversations/{conversation_id}/members/{user_id}/role";
/// `POST`: leave a group.
pub const LEAVE: &str = "/v1/conversations/{conversation_id}/leave";
/// `PUT`: archive or restore a conversation for the caller.
pub const ARCHIVE: &str = "/v1/conversations/{conversation_id}/archive";
/// `PUT` mutes (pushes), `DELETE` unmutes a conversation for the caller.
pub const MUTE: &str = "/v1/conversations/{conversation_id}/mute";
/// `PUT` pins, `DELETE` unpins a conversation for the caller (pinned ones list first).
pub const PIN: &str = "/v1/conversations/{conversation_id}/pin";
/// `GET` a page of history, `POST` a message.
pub const MESSAGES: &str = "/v1/conversations/{conversation_id}/messages";
/// `DELETE` a message (`?scope=me` or `everyone`), `PATCH` edits it (the sender).
pub const MESSAGE: &str = "/v1/conversations/{conversation_id}/messages/{seq}";
/// `POST`: move the caller's receipt watermarks.
pub const RECEIPTS: &str = "/v1/conversations/{conversation_id}/receipts";
/// `POST`: start or stop the typing indicator.
pub const TYPING: &str = "/v1/conversations/{conversation_id}/typing";
/// `PUT` registers or replaces, `DELETE` removes the push token of the caller's session.
pub const PUSH_DEVICE: &str = "/v1/push/device";
/// `GET` a page of changes after a cursor.
pub const SYNC: &str = "/v1/sync";
/// `POST`: upload a blob (the body is the raw bytes).
pub const BLOBS: &str = "/v1/blobs";
/// `GET` a blob's bytes by key.
pub const BLOB: &str = "/v1/blobs/{key}";
/// `GET` the OpenAPI document of the REST API.
pub const OPENAPI: &str = "/v1/openapi.json";
/// `PUT` adds, `DELETE` removes the caller's reaction (the emoji percent-encoded).
pub const REACTION: &str = "/v1/conversations/{conversation_id}/messages/{seq}/reactions/{emoji}";
/// The WebSocket endpoint (docs/PROTOCOL.md).
pub const WS: &str = "/v1/ws";
/// `GET` this node's health: backplane link, silent stalls, repairs (no authentication).
pub const HEALTH: &str = "/v1/health";
/// `GET`: search the messages the caller can read (`?q=&conversation_id=&cursor=&limit=`).
pub const SEARCH: &str = "/v1/search";

/// Every REST route template with a request method, for checks that a router and a
/// document cover the same set (the WebSocket endpoint is `GET`).
pub const ALL: [&str; 37] = [
    AUTH_OTP,
    AUTH_VERIFY,
    AUTH_REFRESH,
    AUTH_LOGOUT,
    AUTH_LOGOUT_EVERYWHERE,
    ME,
    USERS,
    USER,
    PRESENCE,
    CONTACTS,
    CONTACT,
    BLOCKS,
    BLOCK,
    CONVERSATIONS,
    DIRECT,
    GROUP,
    CONVERSATION,
    MEMBERS,
    MEMBER,
    MEMBER_ROLE,
    LEAVE,
    ARCHIVE,
    MUTE,
    MESSAGES,
    MESSAGE,
    RECEIPTS,
    TYPING,
    PUSH_DEVICE,
    SYNC,
    BLOBS,
    BLOB,
    OPENAPI,
    WS,
    HEALTH,
    PIN,
    REACTION,
    SEARCH,
];

/// A template with its `{name}` parameters replaced, in order.
fn fill(template: &str, params: &[(&str, &dyn Display)]) -> String {
    let mut out = template.to_owned();
    for (name, value) in params {
        out = out.replace(&format!("{{{name}}}"), &value.to_string());
    }
    debug_assert!(!out.contains('{'), "{template}: a parameter was not filled");
    out
}

/// The path of [`USER`] for `id`.
pub fn user(id: UserId) -> String {
    fill(USER, &[("user_id", &id)])
}

/// The path of [`CONTACT`] for `id`.
pub fn contact(id: UserId) -> String {
    fill(CONTACT, &[("user_id", &id)])
}

/// The path of [`BLOCK`] for `id`.
pub fn block(id: UserId) -> String {
    fill(BLOCK, &[("user_id", &id)])
}

/// The path of [`CONVERSATION`] for `id`.
pub fn conversation(id: ConversationId) -> String {
    fill(CONVERSATION, &[("conversation_id", &id)])
}

/// The path of [`MEMBERS`] for `id`.
pub fn members(id: ConversationId) -> String {
    fill(MEMBERS, &[("conversation_id", &id)])
}

/// The path of [`MEMBER`] for a member of conversation `id`.
pub fn member(id: ConversationId, user: UserId) -> String {
    fill(MEMBER, &[("conversation_id", &id), ("user_id", &user)])
}

/// The path of [`MEMBER_ROLE`] for a member of conversation `id`.
pub fn member_role(id: ConversationId, user: UserId) -> String {
    fill(MEMBER_ROLE, &[("conversation_id", &id), ("user_id", &user)])
}

/// The path of [`LEAVE`] for `id`.
pub fn leave(id: ConversationId) -> String {
    fill(LEAVE, &[("conversation_id", &id)])
}

/// The path of [`ARCHIVE`] for `id`.
pub fn archive(id: ConversationId) -> String {
    fill(ARCHIVE, &[("conversation_id", &id)])
}

/// The path of [`MUTE`] for `id`.
pub fn mute(id: ConversationId) -> String {
    fill(MUTE, &[("conversation_id", &id)])
}

/// The path of [`PIN`] for `id`.
pub fn pin(id: ConversationId) -> String {
    fill(PIN, &[("conversation_id", &id)])
}

/// The path of [`MESSAGES`] for `id`.
pub fn messages(id: ConversationId) -> String {
    fill(MESSAGES, &[("conversation_id", &id)])
}

/// The path of [`MESSAGE`] for the message at `seq` in conversation `id`.
pub fn message(id: ConversationId, seq: i64) -> String {
    fill(MESSAGE, &[("conversation_id", &id), ("seq", &seq)])
}

/// The path of [`RECEIPTS`] for `id`.
pub fn receipts(id: ConversationId) -> String {
    fill(RECEIPTS, &[("conversation_id", &id)])
}

/// The path of [`TYPING`] for `id`.
pub fn typing(id: ConversationId) -> String {
    fill(TYPING, &[("conversation_id", &id)])
}

/// Percent-encodes every byte but ASCII letters, digits, `-`, `.`, `_` and `~`: the value
/// stays one path segment.
fn segment(value: &str) -> String {
    let mut encoded = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    encoded
}

/// The path of a blob. The key is percent-encoded (every byte but ASCII letters, digits,
/// `-`, `.`, `_` and `~`), so a key with `/` stays one path segment and a malformed key
/// cannot reach another route.
pub fn blob(key: &str) -> String {
    fill(BLOB, &[("key", &segment(key))])
}

/// The path of [`REACTION`]: `emoji` on the message at `seq` of conversation `id`
/// (percent-encoded, like a blob key).
pub fn reaction(id: ConversationId, seq: i64, emoji: &str) -> String {
    fill(
        REACTION,
        &[("conversation_id", &id), ("seq", &seq), ("emoji", &segment(emoji))],
    )
}

/// What every blob path starts with (`/v1/blobs/`): how a client recognises this server's
/// blob URLs among picture URLs.
pub fn blob_prefix() -> &'static str {
    BLOB.trim_end_matches("{key}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `path` matches `template`: the same segments, a parameter matching any one segment.
    fn matches(template: &str, path: &str) -> bool {
        let (t, p): (Vec<_>, Vec<_>) = (template.split('/').collect(), path.split('/').collect());
        t.len() == p.len()
            && t.iter()
                .zip(&p)
                .all(|(t, p)| (t.starts_with('{') && t.ends_with('}') && !p.is_empty()) || t == p)
    }

    #[test]
    fn builders_fill_their_templates() {
        let c = ConversationId::new(1);
        let u = UserId::new(2);
        let built = [
            (USER, user(u)),
            (CONTACT, contact(u)),
            (BLOCK, block(u)),
            (CONVERSATION, conversation(c)),
            (MEMBERS, members(c)),
            (MEMBER, member(c, u)),
            (MEMBER_ROLE, member_role(c, u)),
            (LEAVE, leave(c)),
            (ARCHIVE, archive(c)),
            (MUTE, mute(c)),
            (PIN, pin(c)),
            (MESSAGES, messages(c)),
            (MESSAGE, message(c, 7)),
            (RECEIPTS, receipts(c)),
            (TYPING, typing(c)),
            (BLOB, blob("k")),
        ];
        for (template, path) in built {
            assert!(matches(template, &path), "{path} does not fill {template}");
            assert!(!path.contains('{'), "{path}");
        }
        assert_eq!(member_role(c, u), format!("/v1/conversations/{c}/members/{u}/role"));
        assert_eq!(message(c, 7), format!("/v1/conversations/{c}/messages/7"));
    }

    #[test]
    fn blob_keys_stay_one_segment() {
        assert_eq!(blob("0f3c_a-b.png"), "/v1/blobs/0f3c_a-b.png");
        assert_eq!(blob("media/x"), "/v1/blobs/media%2Fx");
        assert_eq!(blob("../me?x#y"), "/v1/blobs/..%2Fme%3Fx%23y");
        assert_eq!(blob_prefix(), "/v1/blobs/");
        assert!(blob("k").starts_with(blob_prefix()));
    }

    #[test]
    fn templates_are_distinct_and_versioned() {
        let mut seen = std::collections::HashSet::new();
        for t in ALL {
            assert!(t.starts_with("/v1/"), "{t}");
            assert!(seen.insert(t), "{t} twice");
        }
    }
}

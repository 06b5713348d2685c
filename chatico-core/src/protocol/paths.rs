//! The REST paths of protocol version 1, declared once.
//!
//! The constants are route templates (`{name}` marks a path parameter, the syntax of axum
//! and OpenAPI): the gateway routes and documents exactly these. The functions build the
//! concrete path a client calls by filling a template in. Paths are relative to where the
//! gateway is mounted (a client prepends its base URL).

use std::fmt::Display;

use crate::ids::{ConversationId, UserId};

pub const AUTH_OTP: &str = "/v1/auth/otp";
pub const AUTH_VERIFY: &str = "/v1/auth/verify";
pub const AUTH_REFRESH: &str = "/v1/auth/refresh";
pub const AUTH_LOGOUT: &str = "/v1/auth/logout";
pub const AUTH_LOGOUT_EVERYWHERE: &str = "/v1/auth/logout-everywhere";
pub const ME: &str = "/v1/me";
pub const USERS: &str = "/v1/users";
pub const USER: &str = "/v1/users/{user_id}";
pub const PRESENCE: &str = "/v1/presence";
pub const CONTACTS: &str = "/v1/contacts";
pub const CONTACT: &str = "/v1/contacts/{user_id}";
pub const BLOCKS: &str = "/v1/blocks";
pub const BLOCK: &str = "/v1/blocks/{user_id}";
pub const CONVERSATIONS: &str = "/v1/conversations";
pub const DIRECT: &str = "/v1/conversations/direct";
pub const GROUP: &str = "/v1/conversations/group";
pub const CONVERSATION: &str = "/v1/conversations/{conversation_id}";
pub const MEMBERS: &str = "/v1/conversations/{conversation_id}/members";
pub const MEMBER: &str = "/v1/conversations/{conversation_id}/members/{user_id}";
pub const MEMBER_ROLE: &str = "/v1/conversations/{conversation_id}/members/{user_id}/role";
pub const LEAVE: &str = "/v1/conversations/{conversation_id}/leave";
pub const ARCHIVE: &str = "/v1/conversations/{conversation_id}/archive";
pub const MESSAGES: &str = "/v1/conversations/{conversation_id}/messages";
pub const MESSAGE: &str = "/v1/conversations/{conversation_id}/messages/{seq}";
pub const RECEIPTS: &str = "/v1/conversations/{conversation_id}/receipts";
pub const TYPING: &str = "/v1/conversations/{conversation_id}/typing";
pub const SYNC: &str = "/v1/sync";
pub const BLOBS: &str = "/v1/blobs";
pub const BLOB: &str = "/v1/blobs/{key}";
pub const OPENAPI: &str = "/v1/openapi.json";
/// The WebSocket endpoint (docs/PROTOCOL.md).
pub const WS: &str = "/v1/ws";

/// Every REST route template with a request method, for checks that a router and a
/// document cover the same set (the WebSocket endpoint is `GET`).
pub const ALL: [&str; 31] = [
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
    MESSAGES,
    MESSAGE,
    RECEIPTS,
    TYPING,
    SYNC,
    BLOBS,
    BLOB,
    OPENAPI,
    WS,
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

pub fn user(id: UserId) -> String {
    fill(USER, &[("user_id", &id)])
}

pub fn contact(id: UserId) -> String {
    fill(CONTACT, &[("user_id", &id)])
}

pub fn block(id: UserId) -> String {
    fill(BLOCK, &[("user_id", &id)])
}

pub fn conversation(id: ConversationId) -> String {
    fill(CONVERSATION, &[("conversation_id", &id)])
}

pub fn members(id: ConversationId) -> String {
    fill(MEMBERS, &[("conversation_id", &id)])
}

pub fn member(id: ConversationId, user: UserId) -> String {
    fill(MEMBER, &[("conversation_id", &id), ("user_id", &user)])
}

pub fn member_role(id: ConversationId, user: UserId) -> String {
    fill(MEMBER_ROLE, &[("conversation_id", &id), ("user_id", &user)])
}

pub fn leave(id: ConversationId) -> String {
    fill(LEAVE, &[("conversation_id", &id)])
}

pub fn archive(id: ConversationId) -> String {
    fill(ARCHIVE, &[("conversation_id", &id)])
}

pub fn messages(id: ConversationId) -> String {
    fill(MESSAGES, &[("conversation_id", &id)])
}

pub fn message(id: ConversationId, seq: i64) -> String {
    fill(MESSAGE, &[("conversation_id", &id), ("seq", &seq)])
}

pub fn receipts(id: ConversationId) -> String {
    fill(RECEIPTS, &[("conversation_id", &id)])
}

pub fn typing(id: ConversationId) -> String {
    fill(TYPING, &[("conversation_id", &id)])
}

/// The path of a blob. The key is percent-encoded (every byte but ASCII letters, digits,
/// `-`, `.`, `_` and `~`), so a key with `/` stays one path segment and a malformed key
/// cannot reach another route.
pub fn blob(key: &str) -> String {
    let mut encoded = String::with_capacity(key.len());
    for b in key.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    fill(BLOB, &[("key", &encoded)])
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

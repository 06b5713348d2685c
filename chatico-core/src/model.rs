//! The domain model: what is stored and what crosses the wire.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientMsgId, ConversationId, MessageId, Phone, SessionId, Timestamp, UserId};

/// A registered user (the full record; only the user themself sees all of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub id: UserId,
    pub phone: Phone,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub created_at: Timestamp,
    /// When the user's last connection closed; `None` if never seen.
    pub last_seen_at: Option<Timestamp>,
}

/// What another user sees of a user. `last_seen_at` is `None` when hidden (e.g. a block
/// between the two users in either direction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    pub id: UserId,
    /// The phone number, only for a viewer the owner would expect to have it: the owner, a
    /// user the owner has among their contacts, a user sharing a conversation with the
    /// owner, and the result of an exact-number lookup. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub last_seen_at: Option<Timestamp>,
    /// Online right now on at least one device (hidden as `false` across a block).
    #[serde(default)]
    pub online: bool,
}

impl UserProfile {
    /// The profile of `u` without the phone number (see [`UserProfile::phone`]).
    pub fn from_user(u: &User) -> Self {
        UserProfile {
            id: u.id,
            phone: None,
            display_name: u.display_name.clone(),
            bio: u.bio.clone(),
            avatar_url: u.avatar_url.clone(),
            last_seen_at: u.last_seen_at,
            online: false,
        }
    }
}

/// A partial profile update; `None` leaves a field unchanged. `avatar_url: Some(None)` clears it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProfilePatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub avatar_url: Option<Option<String>>,
}

/// Serde helper distinguishing a missing field (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer, T: Serialize>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<Option<T>>, D::Error> {
        Option::<T>::deserialize(d).map(Some)
    }
}

/// The two members of a direct conversation in one order (the lower id first): the key a
/// store finds a direct conversation by, whoever of the two asks.
pub fn direct_pair(a: UserId, b: UserId) -> (UserId, UserId) {
    if a <= b { (a, b) } else { (b, a) }
}

/// Direct (exactly two members, one per pair of users) or group.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ConversationKind {
    Direct,
    Group,
}

/// Role of a member. Direct conversations have two `Member`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub fn can_manage_members(self) -> bool {
        matches!(self, Role::Admin | Role::Owner)
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    pub id: ConversationId,
    pub kind: ConversationKind,
    /// Group title; `None` for direct conversations.
    pub title: Option<String>,
    pub avatar_url: Option<String>,
    pub created_by: UserId,
    pub created_at: Timestamp,
    /// The seq of the newest message (0 when empty).
    pub last_seq: i64,
}

/// A user's membership in a conversation, with their per-user state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub role: Role,
    /// Archived for this user only.
    pub archived: bool,
    /// Receipt watermarks: monotonic, never above the conversation's `last_seq`.
    pub delivered_seq: i64,
    pub read_seq: i64,
    pub joined_at: Timestamp,
    /// The conversation's `last_seq` when this member joined: history before it is not
    /// visible to them.
    pub joined_seq: i64,
}

impl Member {
    /// The receipt rule: each watermark becomes `max(old, min(given, last_seq))` (monotonic,
    /// clamped to the conversation's newest message), and delivered is at least read.
    /// Returns the new `(delivered_seq, read_seq)`.
    pub fn merged_receipts(&self, delivered: Option<i64>, read: Option<i64>, last_seq: i64) -> (i64, i64) {
        let clamp = |v: Option<i64>, old: i64| v.map_or(old, |v| old.max(v.min(last_seq)));
        let read = clamp(read, self.read_seq);
        let delivered = clamp(delivered, self.delivered_seq).max(read);
        (delivered, read)
    }
}

/// A message body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Content {
    Text { text: String },
    Media(MediaRef),
    System(SystemNotice),
}

/// A reference to an uploaded blob, owned by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaRef {
    pub blob_key: String,
    pub content_type: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// A notice the engine writes into a conversation's timeline (it takes a seq like any message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum SystemNotice {
    GroupCreated { title: String },
    MembersAdded { users: Vec<UserId> },
    MemberRemoved { user: UserId },
    MemberLeft { user: UserId },
    RoleChanged { user: UserId, role: Role },
    TitleChanged { title: String },
}

/// A message in a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// Gap-free per conversation, from 1, assigned by the store in the inserting transaction.
    pub seq: i64,
    pub sender_id: UserId,
    pub client_msg_id: ClientMsgId,
    /// `None` once deleted for everyone (the tombstone keeps seq, sender and times).
    pub content: Option<Content>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_seq: Option<i64>,
    pub created_at: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
}

/// What the engine hands the store to insert; the store assigns `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub sender_id: UserId,
    pub client_msg_id: ClientMsgId,
    pub content: Content,
    pub reply_to_seq: Option<i64>,
    pub created_at: Timestamp,
}

/// A member as shown in the conversation list (with enough profile to draw it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberInfo {
    pub user_id: UserId,
    pub role: Role,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub delivered_seq: i64,
    pub read_seq: i64,
}

/// One row of "my conversations": everything the list screen draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationSummary {
    pub conversation: Conversation,
    /// The caller's own membership (archived flag, watermarks).
    pub me: Member,
    /// The newest message visible to the caller (tombstoned if deleted), if any.
    pub last_message: Option<Message>,
    /// `last_seq - read_seq` (never negative).
    pub unread: i64,
    pub members: Vec<MemberInfo>,
}

/// Which way to page history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HistoryDirection {
    /// Messages with seq < anchor, newest first page (returned in ascending seq order).
    Before,
    /// Messages with seq > anchor (ascending).
    After,
}

/// A history page request. `anchor = None` with `Before` means "the newest messages".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryQuery {
    pub direction: HistoryDirection,
    pub anchor: Option<i64>,
    pub limit: u32,
}

/// A login session; owns one rotating refresh token, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    pub id: SessionId,
    pub user_id: UserId,
    /// Hex SHA-256 of the current refresh token's secret.
    pub refresh_hash: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub device: Option<String>,
}

/// Why a blob was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlobPurpose {
    Avatar,
    Media,
}

/// Metadata of an uploaded blob (the bytes live in a [`crate::ports::BlobStore`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobMeta {
    /// Random, unguessable object key.
    pub key: String,
    pub owner_id: UserId,
    /// Sniffed from the bytes, never taken from the client.
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub purpose: BlobPurpose,
    pub created_at: Timestamp,
}

/// Presence of a user as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Presence {
    pub user_id: UserId,
    pub online: bool,
    pub last_seen_at: Option<Timestamp>,
}

/// Someone typing in a conversation, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Typing {
    pub conversation_id: ConversationId,
    pub user_id: UserId,
    pub expires_at: Timestamp,
}

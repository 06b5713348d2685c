//! The domain model: what is stored and what crosses the wire.

use serde::{Deserialize, Serialize};

use crate::ids::{ClientMsgId, ConversationId, MessageId, Phone, SessionId, Timestamp, UserId};

/// A registered user (the full record; only the user themself sees all of it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// The user's id, fixed at registration.
    pub id: UserId,
    /// The verified phone number the user signs in with (E.164).
    pub phone: Phone,
    /// The name shown to others.
    pub display_name: String,
    /// Free text the user writes about themself; may be empty.
    pub bio: String,
    /// URL of the avatar image, if one is set.
    pub avatar_url: Option<String>,
    /// When the account was created (ms since the Unix epoch).
    pub created_at: Timestamp,
    /// When the user's last connection closed; `None` if never seen.
    pub last_seen_at: Option<Timestamp>,
}

/// What another user sees of a user. `last_seen_at` is `None` when hidden (e.g. a block
/// between the two users in either direction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserProfile {
    /// The user's id.
    pub id: UserId,
    /// The phone number, only for a viewer the owner would expect to have it: the owner, a
    /// user the owner has among their contacts, a user sharing a conversation with the
    /// owner, and the result of an exact-number lookup. Absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<Phone>,
    /// The name shown to others.
    pub display_name: String,
    /// Free text the user writes about themself; may be empty.
    pub bio: String,
    /// URL of the avatar image, if one is set.
    pub avatar_url: Option<String>,
    /// When the user was last online (ms since the Unix epoch); `None` if hidden or never seen.
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
    /// A new display name (validated against the length limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// A new bio (validated against the length limits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bio: Option<String>,
    /// `Some(Some(url))` sets the avatar, `Some(None)` clears it, `None` leaves it.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "double_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub avatar_url: Option<Option<String>>,
}

/// Serde helper distinguishing a missing field (`None`) from an explicit `null` (`Some(None)`).
pub mod double_option {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    /// Writes `None` and `Some(None)` as `null`, `Some(Some(v))` as `v` (pair with
    /// `skip_serializing_if`).
    pub fn serialize<S: Serializer, T: Serialize>(v: &Option<Option<T>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(inner) => inner.serialize(s),
            None => s.serialize_none(),
        }
    }

    /// Reads a present field (`null` included) as `Some(_)`; a missing field stays `None` via
    /// `#[serde(default)]`.
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
    /// Exactly two members, at most one per pair of users.
    Direct,
    /// Any number of members with a title and roles.
    Group,
}

/// Role of a member. Direct conversations have two `Member`s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A plain member: may send, read and leave.
    Member,
    /// May add and remove members and change the title.
    Admin,
    /// The creator of a group; manages members and admins.
    Owner,
}

impl Role {
    /// Whether this role may add or remove members (admins and the owner).
    pub fn can_manage_members(self) -> bool {
        matches!(self, Role::Admin | Role::Owner)
    }
    /// The role's wire and storage name: `member`, `admin` or `owner`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }
    /// The role named by `s` (as written by [`Role::as_str`]), `None` for any other string.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "member" => Some(Role::Member),
            "admin" => Some(Role::Admin),
            "owner" => Some(Role::Owner),
            _ => None,
        }
    }
}

/// A conversation, direct or group, as every member sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Conversation {
    /// The conversation's id.
    pub id: ConversationId,
    /// Direct or group.
    pub kind: ConversationKind,
    /// Group title; `None` for direct conversations.
    pub title: Option<String>,
    /// URL of the group's avatar image, if one is set.
    pub avatar_url: Option<String>,
    /// The user who created the conversation.
    pub created_by: UserId,
    /// When it was created (ms since the Unix epoch).
    pub created_at: Timestamp,
    /// The seq of the newest message (0 when empty).
    pub last_seq: i64,
}

/// A user's membership in a conversation, with their per-user state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Member {
    /// The conversation this membership belongs to.
    pub conversation_id: ConversationId,
    /// The member.
    pub user_id: UserId,
    /// The member's role, which decides what they may manage.
    pub role: Role,
    /// Archived for this user only.
    pub archived: bool,
    /// Receipt watermarks: monotonic, never above the conversation's `last_seq`.
    pub delivered_seq: i64,
    /// Highest seq this member has read (same rules as `delivered_seq`, and never above it).
    pub read_seq: i64,
    /// When the member joined (ms since the Unix epoch).
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
    /// Plain text, at most `Limits::max_text_chars` characters.
    Text {
        /// The text (not empty once trimmed).
        text: String,
        /// Users mentioned in the text (groups only), in ascending, non-overlapping ranges;
        /// absent when there are none. See [`Mention`].
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        mentions: Vec<Mention>,
    },
    /// An uploaded image or file (see [`MediaRef`]).
    Media(MediaRef),
    /// A notice written by the engine, never by a client.
    System(SystemNotice),
}

impl Content {
    /// A text message without mentions.
    pub fn text(text: impl Into<String>) -> Self {
        Content::Text {
            text: text.into(),
            mentions: Vec::new(),
        }
    }

    /// The users this content mentions (each once, in order of first mention); empty for
    /// anything but text.
    pub fn mentioned(&self) -> Vec<UserId> {
        let mut out: Vec<UserId> = Vec::new();
        if let Content::Text { mentions, .. } = self {
            for m in mentions {
                if !out.contains(&m.user_id) {
                    out.push(m.user_id);
                }
            }
        }
        out
    }
}

/// An @mention in a text message: the member `user_id` is named by the text between `start`
/// (inclusive) and `end` (exclusive), counted in **UTF-16 code units** (JavaScript's and
/// Kotlin's string indices; a range never splits a surrogate pair). The engine checks the
/// range against the text and the user against the conversation's current members.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Mention {
    /// The mentioned member.
    pub user_id: UserId,
    /// First UTF-16 code unit of the mention in the text.
    pub start: u32,
    /// One past the last UTF-16 code unit (`start < end <= text length`).
    pub end: u32,
}

/// A reference to an uploaded blob, owned by the sender.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MediaRef {
    /// Key of the blob in the blob store; must be a blob the sender uploaded.
    pub blob_key: String,
    /// MIME type, copied from the blob's sniffed type.
    pub content_type: String,
    /// Size of the blob in bytes.
    pub size: u64,
    /// Image width in pixels, when the blob is an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    /// Image height in pixels, when the blob is an image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    /// Optional text shown with the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// A notice the engine writes into a conversation's timeline (it takes a seq like any message).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "notice", rename_all = "snake_case")]
pub enum SystemNotice {
    /// A group was created with this title.
    GroupCreated {
        /// The title the group was created with.
        title: String,
    },
    /// These users were added to the group.
    MembersAdded {
        /// The users added.
        users: Vec<UserId>,
    },
    /// An admin removed this user.
    MemberRemoved {
        /// The user removed.
        user: UserId,
    },
    /// This user left the group.
    MemberLeft {
        /// The user who left.
        user: UserId,
    },
    /// This user's role changed to `role`.
    RoleChanged {
        /// The member whose role changed.
        user: UserId,
        /// The new role.
        role: Role,
    },
    /// The group's title changed to `title`.
    TitleChanged {
        /// The new title.
        title: String,
    },
}

/// A message in a conversation's timeline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Message {
    /// The message's id (time-ordered).
    pub id: MessageId,
    /// The conversation it belongs to.
    pub conversation_id: ConversationId,
    /// Gap-free per conversation, from 1, assigned by the store in the inserting transaction.
    pub seq: i64,
    /// The user who sent it (for a system notice, the user whose action it records).
    pub sender_id: UserId,
    /// The sender's idempotency key: resending the same id returns the stored message.
    pub client_msg_id: ClientMsgId,
    /// `None` once deleted for everyone (the tombstone keeps seq, sender and times).
    pub content: Option<Content>,
    /// Seq of the message this one replies to, in the same conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_seq: Option<i64>,
    /// When the server accepted it (ms since the Unix epoch).
    pub created_at: Timestamp,
    /// When it was deleted for everyone, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleted_at: Option<Timestamp>,
    /// When the sender last edited it, if they did (the content is the latest text).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited_at: Option<Timestamp>,
    /// The reactions, one entry per emoji, in the order each emoji was first added. Filled
    /// in history and in the answers of edits and reactions; a `message` change (live or in
    /// sync) carries none: the `reaction_added` / `reaction_removed` changes after it do.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reactions: Vec<Reaction>,
}

/// The reactions with one emoji on a message, as the reader sees them (users in a block
/// with the reader, either way, are left out).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Reaction {
    /// The emoji (one grapheme cluster).
    pub emoji: String,
    /// How many users reacted with it (the length of `users`).
    pub count: u32,
    /// Who reacted with it, in the order they did.
    pub users: Vec<UserId>,
}

/// What the engine hands the store to insert; the store assigns `seq`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewMessage {
    /// The message's id, chosen by the engine.
    pub id: MessageId,
    /// The conversation to append to.
    pub conversation_id: ConversationId,
    /// The sending user.
    pub sender_id: UserId,
    /// The sender's idempotency key (unique per sender and conversation).
    pub client_msg_id: ClientMsgId,
    /// The validated body.
    pub content: Content,
    /// Seq of the message replied to, already checked to exist.
    pub reply_to_seq: Option<i64>,
    /// Acceptance time (ms since the Unix epoch).
    pub created_at: Timestamp,
}

/// A member as shown in the conversation list (with enough profile to draw it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberInfo {
    /// The member.
    pub user_id: UserId,
    /// The member's role.
    pub role: Role,
    /// The member's display name.
    pub display_name: String,
    /// URL of the member's avatar, if set.
    pub avatar_url: Option<String>,
    /// The member's delivered watermark (see [`Member::delivered_seq`]).
    pub delivered_seq: i64,
    /// The member's read watermark (see [`Member::read_seq`]).
    pub read_seq: i64,
}

/// One row of "my conversations": everything the list screen draws.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationSummary {
    /// The conversation itself.
    pub conversation: Conversation,
    /// The caller's own membership (archived flag, watermarks).
    pub me: Member,
    /// The newest message visible to the caller (tombstoned if deleted), if any.
    pub last_message: Option<Message>,
    /// `last_seq - read_seq` (never negative).
    pub unread: i64,
    /// Pushes from this conversation muted by the caller (filled by the engine).
    #[serde(default)]
    pub muted: bool,
    /// End of the caller's mute (ms since the Unix epoch); absent = until unmuted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub muted_until: Option<Timestamp>,
    /// Every member, with enough profile to draw them.
    pub members: Vec<MemberInfo>,
    /// Messages above the caller's `read_seq` that mention them (not deleted for everyone,
    /// not hidden by them).
    #[serde(default)]
    pub unread_mentions: i64,
    /// Pinned by the caller: pinned conversations come first in the list.
    #[serde(default)]
    pub pinned: bool,
    /// When the caller pinned it (ms since the Unix epoch); absent when not pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pinned_at: Option<Timestamp>,
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
    /// Older (`Before`) or newer (`After`) than the anchor.
    pub direction: HistoryDirection,
    /// The seq to page from (exclusive); `None` starts at the newest end.
    pub anchor: Option<i64>,
    /// Most messages to return; the engine caps it at `Limits::max_history_page`.
    pub limit: u32,
}

/// A login session; owns one rotating refresh token, stored only as a hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Session {
    /// The session's id.
    pub id: SessionId,
    /// The user signed in.
    pub user_id: UserId,
    /// Hex SHA-256 of the current refresh token's secret.
    pub refresh_hash: String,
    /// When the session began (ms since the Unix epoch).
    pub created_at: Timestamp,
    /// When the refresh token stops working unless rotated (ms since the Unix epoch).
    pub expires_at: Timestamp,
    /// Free-form device label the client gave at sign-in.
    pub device: Option<String>,
}

/// Why a blob was uploaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum BlobPurpose {
    /// A profile or group picture.
    Avatar,
    /// An attachment of a message.
    Media,
}

/// Metadata of an uploaded blob (the bytes live in a [`crate::ports::BlobStore`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BlobMeta {
    /// Random, unguessable object key.
    pub key: String,
    /// The uploader; only they may reference the blob.
    pub owner_id: UserId,
    /// Sniffed from the bytes, never taken from the client.
    pub content_type: String,
    /// Size in bytes.
    pub size: u64,
    /// Width in pixels, for images.
    pub width: Option<u32>,
    /// Height in pixels, for images.
    pub height: Option<u32>,
    /// What it was uploaded for.
    pub purpose: BlobPurpose,
    /// Upload time (ms since the Unix epoch).
    pub created_at: Timestamp,
}

/// Presence of a user as others see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Presence {
    /// Whose presence this is.
    pub user_id: UserId,
    /// Connected on at least one device.
    pub online: bool,
    /// When the last connection closed (ms since the Unix epoch), if known and visible.
    pub last_seen_at: Option<Timestamp>,
}

/// Someone typing in a conversation, until `expires_at`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Typing {
    /// The conversation being typed in.
    pub conversation_id: ConversationId,
    /// Who is typing.
    pub user_id: UserId,
    /// When the indicator lapses unless renewed (ms since the Unix epoch).
    pub expires_at: Timestamp,
}

//! Records and enums crossing the FFI, and their conversions from the core types. Ids are
//! UUID strings; times are milliseconds since the Unix epoch.

use chatico_core::client as core_client;
use chatico_core::model as m;
use chatico_core::sync::{Change, ChangeKind, Event};
use chatico_transport::client as sdk;

use crate::error::{ChatError, ErrorCode, parse_id};

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ClientOptions {
    /// `http(s)://host:port[/prefix]` of the gateway.
    pub base_url: String,
    /// A label for the session ("iPhone 15").
    pub device: Option<String>,
    /// First reconnect delay (default 250 ms) and the cap (default 30 s).
    pub backoff_initial_ms: Option<u64>,
    pub backoff_max_ms: Option<u64>,
    /// Per-request timeout (default 15 s).
    pub request_timeout_ms: Option<u64>,
    /// Acknowledge delivery of received messages automatically (default true).
    pub auto_delivered: Option<bool>,
}

impl ClientOptions {
    pub(crate) fn to_config(&self) -> sdk::ClientConfig {
        use std::time::Duration;
        let mut c = sdk::ClientConfig::new(self.base_url.clone());
        c.device = self.device.clone();
        if let Some(v) = self.backoff_initial_ms {
            c.backoff.initial_backoff = Duration::from_millis(v);
        }
        if let Some(v) = self.backoff_max_ms {
            c.backoff.max_backoff = Duration::from_millis(v);
        }
        if let Some(v) = self.request_timeout_ms {
            c.request_timeout = Duration::from_millis(v);
        }
        if let Some(v) = self.auto_delivered {
            c.auto_delivered = v;
        }
        c
    }
}

/// The credentials to persist (securely) to stay logged in; see `ChatEvent::SessionRefreshed`.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Session {
    pub user_id: String,
    pub access_token: String,
    pub access_expires_at: i64,
    pub refresh_token: String,
    pub refresh_expires_at: i64,
}

impl From<sdk::Session> for Session {
    fn from(s: sdk::Session) -> Self {
        Session {
            user_id: s.user_id.to_string(),
            access_token: s.access_token,
            access_expires_at: s.access_expires_at,
            refresh_token: s.refresh_token,
            refresh_expires_at: s.refresh_expires_at,
        }
    }
}

impl Session {
    pub(crate) fn to_sdk(&self) -> Result<sdk::Session, ChatError> {
        Ok(sdk::Session {
            user_id: parse_id("user_id", &self.user_id)?,
            access_token: self.access_token.clone(),
            access_expires_at: self.access_expires_at,
            refresh_token: self.refresh_token.clone(),
            refresh_expires_at: self.refresh_expires_at,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct OtpInfo {
    pub resend_after_ms: u64,
    pub expires_in_ms: u64,
}

/// The logged-in user's own record.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct User {
    pub id: String,
    pub phone: String,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub created_at: i64,
    pub last_seen_at: Option<i64>,
}

impl From<m::User> for User {
    fn from(u: m::User) -> Self {
        User {
            id: u.id.to_string(),
            phone: u.phone.to_string(),
            display_name: u.display_name,
            bio: u.bio,
            avatar_url: u.avatar_url,
            created_at: u.created_at,
            last_seen_at: u.last_seen_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct LoginResult {
    pub session: Session,
    pub user: User,
    pub new_user: bool,
}

/// What another user sees of a user.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct UserProfile {
    pub id: String,
    /// Present only where the owner would expect the viewer to have it (the owner, their
    /// contacts, people sharing a conversation with them, an exact-number lookup).
    pub phone: Option<String>,
    pub display_name: String,
    pub bio: String,
    pub avatar_url: Option<String>,
    pub last_seen_at: Option<i64>,
    pub online: bool,
}

impl From<m::UserProfile> for UserProfile {
    fn from(p: m::UserProfile) -> Self {
        UserProfile {
            id: p.id.to_string(),
            phone: p.phone.map(|p| p.to_string()),
            display_name: p.display_name,
            bio: p.bio,
            avatar_url: p.avatar_url,
            last_seen_at: p.last_seen_at,
            online: p.online,
        }
    }
}

/// A profile change; `None` leaves a field as it is. `clear_avatar` removes the picture.
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct ProfileUpdate {
    pub display_name: Option<String>,
    pub bio: Option<String>,
    pub avatar_url: Option<String>,
    pub clear_avatar: bool,
}

impl From<ProfileUpdate> for m::ProfilePatch {
    fn from(p: ProfileUpdate) -> Self {
        m::ProfilePatch {
            display_name: p.display_name,
            bio: p.bio,
            avatar_url: if p.clear_avatar {
                Some(None)
            } else {
                p.avatar_url.map(Some)
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Presence {
    pub user_id: String,
    pub online: bool,
    pub last_seen_at: Option<i64>,
}

impl From<m::Presence> for Presence {
    fn from(p: m::Presence) -> Self {
        Presence {
            user_id: p.user_id.to_string(),
            online: p.online,
            last_seen_at: p.last_seen_at,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl From<m::Role> for Role {
    fn from(r: m::Role) -> Self {
        match r {
            m::Role::Member => Role::Member,
            m::Role::Admin => Role::Admin,
            m::Role::Owner => Role::Owner,
        }
    }
}

impl From<Role> for m::Role {
    fn from(r: Role) -> Self {
        match r {
            Role::Member => m::Role::Member,
            Role::Admin => m::Role::Admin,
            Role::Owner => m::Role::Owner,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum ConversationKind {
    Direct,
    Group,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Conversation {
    pub id: String,
    pub kind: ConversationKind,
    pub title: Option<String>,
    pub avatar_url: Option<String>,
    pub created_by: String,
    pub created_at: i64,
    pub last_seq: i64,
}

impl From<m::Conversation> for Conversation {
    fn from(c: m::Conversation) -> Self {
        Conversation {
            id: c.id.to_string(),
            kind: match c.kind {
                m::ConversationKind::Direct => ConversationKind::Direct,
                m::ConversationKind::Group => ConversationKind::Group,
            },
            title: c.title,
            avatar_url: c.avatar_url,
            created_by: c.created_by.to_string(),
            created_at: c.created_at,
            last_seq: c.last_seq,
        }
    }
}

/// A membership as stored (from `get_conversation`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Member {
    pub user_id: String,
    pub role: Role,
    pub archived: bool,
    pub delivered_seq: i64,
    pub read_seq: i64,
    pub joined_at: i64,
}

impl From<m::Member> for Member {
    fn from(x: m::Member) -> Self {
        Member {
            user_id: x.user_id.to_string(),
            role: x.role.into(),
            archived: x.archived,
            delivered_seq: x.delivered_seq,
            read_seq: x.read_seq,
            joined_at: x.joined_at,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConversationDetails {
    pub conversation: Conversation,
    pub members: Vec<Member>,
}

/// A member as the conversation list shows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MemberInfo {
    pub user_id: String,
    pub role: Role,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub delivered_seq: i64,
    pub read_seq: i64,
}

impl From<m::MemberInfo> for MemberInfo {
    fn from(x: m::MemberInfo) -> Self {
        MemberInfo {
            user_id: x.user_id.to_string(),
            role: x.role.into(),
            display_name: x.display_name,
            avatar_url: x.avatar_url,
            delivered_seq: x.delivered_seq,
            read_seq: x.read_seq,
        }
    }
}

/// An uploaded blob used as a message attachment.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct MediaRef {
    pub blob_key: String,
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub caption: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum SystemNotice {
    GroupCreated { title: String },
    MembersAdded { users: Vec<String> },
    MemberRemoved { user: String },
    MemberLeft { user: String },
    RoleChanged { user: String, role: Role },
    TitleChanged { title: String },
}

/// An @mention in a group text: the member `user_id` is shown by the text between `start`
/// (inclusive) and `end` (exclusive), in UTF-16 code units (Kotlin's `String` indices; in
/// Python, index `text.encode("utf-16-le")` and divide by 2).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Mention {
    pub user_id: String,
    pub start: u32,
    pub end: u32,
}

impl From<m::Mention> for Mention {
    fn from(x: m::Mention) -> Self {
        Mention {
            user_id: x.user_id.to_string(),
            start: x.start,
            end: x.end,
        }
    }
}

impl TryFrom<Mention> for m::Mention {
    type Error = ChatError;
    fn try_from(x: Mention) -> Result<Self, ChatError> {
        Ok(m::Mention {
            user_id: x
                .user_id
                .parse()
                .map_err(|_| ChatError::from(chatico_core::Error::invalid("mentions", "user_id is not a UUID")))?,
            start: x.start,
            end: x.end,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum MessageContent {
    /// A text; `mentions` (groups only) name members by ranges of it.
    Text {
        text: String,
        mentions: Vec<Mention>,
    },
    Media {
        media: MediaRef,
    },
    System {
        notice: SystemNotice,
    },
}

impl From<m::Content> for MessageContent {
    fn from(c: m::Content) -> Self {
        match c {
            m::Content::Text { text, mentions } => MessageContent::Text {
                text,
                mentions: mentions.into_iter().map(Into::into).collect(),
            },
            m::Content::Media(x) => MessageContent::Media {
                media: MediaRef {
                    blob_key: x.blob_key,
                    content_type: x.content_type,
                    size: x.size,
                    width: x.width,
                    height: x.height,
                    caption: x.caption,
                },
            },
            m::Content::System(n) => MessageContent::System {
                notice: match n {
                    m::SystemNotice::GroupCreated { title } => SystemNotice::GroupCreated { title },
                    m::SystemNotice::MembersAdded { users } => SystemNotice::MembersAdded {
                        users: users.iter().map(ToString::to_string).collect(),
                    },
                    m::SystemNotice::MemberRemoved { user } => SystemNotice::MemberRemoved { user: user.to_string() },
                    m::SystemNotice::MemberLeft { user } => SystemNotice::MemberLeft { user: user.to_string() },
                    m::SystemNotice::RoleChanged { user, role } => SystemNotice::RoleChanged {
                        user: user.to_string(),
                        role: role.into(),
                    },
                    m::SystemNotice::TitleChanged { title } => SystemNotice::TitleChanged { title },
                },
            },
        }
    }
}

impl From<MediaRef> for m::Content {
    fn from(x: MediaRef) -> Self {
        m::Content::Media(m::MediaRef {
            blob_key: x.blob_key,
            content_type: x.content_type,
            size: x.size,
            width: x.width,
            height: x.height,
            caption: x.caption,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Message {
    pub id: String,
    pub conversation_id: String,
    /// Gap-free per conversation, from 1: the order to show messages in.
    pub seq: i64,
    pub sender_id: String,
    pub client_msg_id: String,
    /// `None` once deleted for everyone.
    pub content: Option<MessageContent>,
    pub reply_to_seq: Option<i64>,
    pub created_at: i64,
    pub deleted_at: Option<i64>,
    /// When the sender last edited it (show an "edited" mark).
    pub edited_at: Option<i64>,
    /// One entry per emoji, in the order each was first added.
    pub reactions: Vec<Reaction>,
}

/// The reactions with one emoji on a message.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    /// Who reacted, in the order they did.
    pub user_ids: Vec<String>,
}

impl From<m::Reaction> for Reaction {
    fn from(r: m::Reaction) -> Self {
        Reaction {
            emoji: r.emoji,
            count: r.count,
            user_ids: r.users.iter().map(ToString::to_string).collect(),
        }
    }
}

impl From<m::Message> for Message {
    fn from(x: m::Message) -> Self {
        Message {
            id: x.id.to_string(),
            conversation_id: x.conversation_id.to_string(),
            seq: x.seq,
            sender_id: x.sender_id.to_string(),
            client_msg_id: x.client_msg_id,
            content: x.content.map(Into::into),
            reply_to_seq: x.reply_to_seq,
            created_at: x.created_at,
            deleted_at: x.deleted_at,
            edited_at: x.edited_at,
            reactions: x.reactions.into_iter().map(Into::into).collect(),
        }
    }
}

/// One page of a message search (`ChatClient::search`).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SearchPage {
    /// Best match first, then newest first.
    pub messages: Vec<Message>,
    /// Pass back (with the same query and conversation) for the next page; `None` on the
    /// last page.
    pub next_cursor: Option<String>,
}

impl From<chatico_core::protocol::SearchResults> for SearchPage {
    fn from(x: chatico_core::protocol::SearchResults) -> Self {
        SearchPage {
            messages: x.messages.into_iter().map(Into::into).collect(),
            next_cursor: x.next_cursor,
        }
    }
}

/// A message waiting for the server's acknowledgement.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PendingMessage {
    pub conversation_id: String,
    pub client_msg_id: String,
    pub content: MessageContent,
    pub reply_to_seq: Option<i64>,
    pub queued_at: i64,
    pub attempts: u32,
}

impl From<core_client::PendingMessage> for PendingMessage {
    fn from(p: core_client::PendingMessage) -> Self {
        PendingMessage {
            conversation_id: p.conversation_id.to_string(),
            client_msg_id: p.client_msg_id,
            content: p.content.into(),
            reply_to_seq: p.reply_to_seq,
            queued_at: p.queued_at,
            attempts: p.attempts,
        }
    }
}

/// The push service of a device token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushPlatform {
    /// Apple Push Notification service.
    Apns,
    /// Firebase Cloud Messaging.
    Fcm,
}

impl From<PushPlatform> for sdk::PushPlatform {
    fn from(p: PushPlatform) -> Self {
        match p {
            PushPlatform::Apns => sdk::PushPlatform::Apns,
            PushPlatform::Fcm => sdk::PushPlatform::Fcm,
        }
    }
}

/// Why a push was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum PushKind {
    Message,
    Reply,
    Invitation,
    /// A message mentioning the user (pushed even when they muted the conversation).
    Mention,
}

/// What to open for a received push ([`parse_push_payload`]).
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushTarget {
    pub conversation_id: String,
    pub seq: i64,
    pub kind: PushKind,
}

/// Reads a received push back: `payload_json` is the JSON of the APNs `userInfo` or of the
/// FCM `data` map. `InvalidInput` when it is not a ChatiCO push.
#[uniffi::export]
pub fn parse_push_payload(payload_json: String) -> Result<PushTarget, ChatError> {
    let t = sdk::parse_push_payload(&payload_json)?;
    Ok(PushTarget {
        conversation_id: t.conversation_id.to_string(),
        seq: t.seq,
        kind: match t.kind {
            sdk::PushKind::Message => PushKind::Message,
            sdk::PushKind::Reply => PushKind::Reply,
            sdk::PushKind::Invitation => PushKind::Invitation,
            sdk::PushKind::Mention => PushKind::Mention,
        },
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, uniffi::Enum)]
pub enum BlobPurpose {
    Avatar,
    Media,
}

impl From<BlobPurpose> for m::BlobPurpose {
    fn from(p: BlobPurpose) -> Self {
        match p {
            BlobPurpose::Avatar => m::BlobPurpose::Avatar,
            BlobPurpose::Media => m::BlobPurpose::Media,
        }
    }
}

/// An uploaded blob: use `key` in a `MediaRef`, or `/v1/blobs/{key}` as an avatar URL.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct BlobInfo {
    pub key: String,
    /// Sniffed from the bytes by the server.
    pub content_type: String,
    pub size: u64,
    pub width: Option<u32>,
    pub height: Option<u32>,
}

impl From<m::BlobMeta> for BlobInfo {
    fn from(b: m::BlobMeta) -> Self {
        BlobInfo {
            key: b.key,
            content_type: b.content_type,
            size: b.size,
            width: b.width,
            height: b.height,
        }
    }
}

/// One conversation of the local view.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ConversationView {
    pub conversation: Conversation,
    pub members: Vec<MemberInfo>,
    pub archived: bool,
    /// Pushes muted by the user (on any device), until `muted_until` or until unmuted.
    pub muted: bool,
    pub muted_until: Option<i64>,
    /// Pinned by the user (on any device): pinned conversations list first.
    pub pinned: bool,
    /// When it was pinned (ms since the Unix epoch).
    pub pinned_at: Option<i64>,
    /// Messages above `read_seq` that mention the user.
    pub unread_mentions: i64,
    /// The caller's own watermarks.
    pub delivered_seq: i64,
    pub read_seq: i64,
    pub unread: i64,
    pub last_message: Option<Message>,
    /// Users typing right now.
    pub typing: Vec<String>,
}

impl ConversationView {
    pub(crate) fn from_view(v: &core_client::ConversationView, now: i64) -> Self {
        ConversationView {
            conversation: v.conversation.clone().into(),
            members: v.members.iter().cloned().map(Into::into).collect(),
            archived: v.archived,
            muted: v.muted,
            muted_until: v.muted_until,
            pinned: v.pinned(),
            pinned_at: v.pinned_at,
            unread_mentions: v.unread_mentions(),
            delivered_seq: v.delivered_seq,
            read_seq: v.read_seq,
            unread: v.unread(),
            last_message: v.last_message.clone().map(Into::into),
            typing: v.typing_at(now).iter().map(ToString::to_string).collect(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Watermarks {
    pub delivered_seq: i64,
    pub read_seq: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ConnectionState {
    Disconnected,
    Connecting {
        attempt: u32,
    },
    /// Subscribed, catching up on what was missed.
    Syncing,
    /// Caught up; live.
    Connected,
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The session ended: log in again.
    LoggedOut,
}

impl From<sdk::ConnectionState> for ConnectionState {
    fn from(s: sdk::ConnectionState) -> Self {
        match s {
            sdk::ConnectionState::Disconnected => ConnectionState::Disconnected,
            sdk::ConnectionState::Connecting { attempt } => ConnectionState::Connecting { attempt },
            sdk::ConnectionState::Syncing => ConnectionState::Syncing,
            sdk::ConnectionState::Connected => ConnectionState::Connected,
            sdk::ConnectionState::Reconnecting {
                attempt,
                delay_ms,
                reason,
            } => ConnectionState::Reconnecting {
                attempt,
                delay_ms,
                reason,
            },
            sdk::ConnectionState::LoggedOut => ConnectionState::LoggedOut,
        }
    }
}

/// Everything the app is told. Persistent changes (messages, receipts, membership...) are
/// reported exactly once each, across reconnects.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Enum)]
pub enum ChatEvent {
    // -- persistent changes --
    MessageReceived {
        message: Message,
    },
    MessageDeleted {
        conversation_id: String,
        seq: i64,
        deleted_at: i64,
    },
    MessageHidden {
        conversation_id: String,
        seq: i64,
    },
    Receipt {
        conversation_id: String,
        user_id: String,
        delivered_seq: i64,
        read_seq: i64,
    },
    ConversationCreated {
        conversation: Conversation,
    },
    ConversationUpdated {
        conversation_id: String,
        title: Option<String>,
        avatar_url: Option<String>,
    },
    MemberJoined {
        conversation_id: String,
        user_id: String,
        role: Role,
    },
    MemberLeft {
        conversation_id: String,
        user_id: String,
        by: String,
    },
    RoleChanged {
        conversation_id: String,
        user_id: String,
        role: Role,
    },
    Archived {
        conversation_id: String,
        archived: bool,
    },
    /// Pushes from the conversation muted (until `until`, ms since the Unix epoch, or until
    /// unmuted) or unmuted, on any of the user's devices.
    Muted {
        conversation_id: String,
        muted: bool,
        until: Option<i64>,
    },
    /// Pinned (at `at`, ms since the Unix epoch) or unpinned, on any of the user's devices.
    Pinned {
        conversation_id: String,
        pinned: bool,
        at: Option<i64>,
    },
    ContactAdded {
        user_id: String,
    },
    ContactRemoved {
        user_id: String,
    },
    Blocked {
        user_id: String,
    },
    Unblocked {
        user_id: String,
    },
    /// A message was edited: `content` is its content now.
    MessageEdited {
        conversation_id: String,
        seq: i64,
        content: Option<MessageContent>,
        edited_at: i64,
    },
    /// A member reacted (`added`) or took a reaction back.
    ReactionChanged {
        conversation_id: String,
        seq: i64,
        user_id: String,
        emoji: String,
        added: bool,
    },
    // -- ephemeral --
    Typing {
        conversation_id: String,
        user_id: String,
        typing: bool,
        expires_at: Option<i64>,
    },
    PresenceChanged {
        presence: Presence,
    },
    ProfileChanged {
        profile: UserProfile,
    },
    // -- local view --
    /// Redraw this conversation (`conversation(id)`).
    ConversationChanged {
        conversation_id: String,
    },
    ConversationRemoved {
        conversation_id: String,
    },
    UserChanged {
        user_id: String,
    },
    ContactsChanged,
    // -- outbox --
    Queued {
        pending: PendingMessage,
    },
    Sent {
        client_msg_id: String,
        message: Message,
    },
    SendFailed {
        client_msg_id: String,
        code: ErrorCode,
        message: String,
    },
    // -- sync and session --
    Synced {
        cursor: i64,
        caught_up: bool,
    },
    ConnectionChanged {
        state: ConnectionState,
    },
    SessionRefreshed {
        session: Session,
    },
    SessionExpired,
    /// The listener fell behind and `missed` events were dropped: reread the view.
    Lagged {
        missed: u64,
    },
}

fn change_event(c: Change) -> ChatEvent {
    let conv = c.conversation_id.map(|c| c.to_string()).unwrap_or_default();
    match c.kind {
        ChangeKind::Message { message } => ChatEvent::MessageReceived {
            message: message.into(),
        },
        ChangeKind::MessageDeleted { seq, deleted_at } => ChatEvent::MessageDeleted {
            conversation_id: conv,
            seq,
            deleted_at,
        },
        ChangeKind::MessageHidden { seq } => ChatEvent::MessageHidden {
            conversation_id: conv,
            seq,
        },
        ChangeKind::Receipt {
            user_id,
            delivered_seq,
            read_seq,
        } => ChatEvent::Receipt {
            conversation_id: conv,
            user_id: user_id.to_string(),
            delivered_seq,
            read_seq,
        },
        ChangeKind::ConversationCreated { conversation } => ChatEvent::ConversationCreated {
            conversation: conversation.into(),
        },
        ChangeKind::ConversationUpdated { title, avatar_url } => ChatEvent::ConversationUpdated {
            conversation_id: conv,
            title,
            avatar_url,
        },
        ChangeKind::MemberJoined { user_id, role } => ChatEvent::MemberJoined {
            conversation_id: conv,
            user_id: user_id.to_string(),
            role: role.into(),
        },
        ChangeKind::MemberLeft { user_id, by } => ChatEvent::MemberLeft {
            conversation_id: conv,
            user_id: user_id.to_string(),
            by: by.to_string(),
        },
        ChangeKind::RoleChanged { user_id, role } => ChatEvent::RoleChanged {
            conversation_id: conv,
            user_id: user_id.to_string(),
            role: role.into(),
        },
        ChangeKind::Archived { archived } => ChatEvent::Archived {
            conversation_id: conv,
            archived,
        },
        ChangeKind::Muted { muted, until } => ChatEvent::Muted {
            conversation_id: conv,
            muted,
            until,
        },
        ChangeKind::ContactAdded { user_id } => ChatEvent::ContactAdded {
            user_id: user_id.to_string(),
        },
        ChangeKind::ContactRemoved { user_id } => ChatEvent::ContactRemoved {
            user_id: user_id.to_string(),
        },
        ChangeKind::Blocked { user_id } => ChatEvent::Blocked {
            user_id: user_id.to_string(),
        },
        ChangeKind::Unblocked { user_id } => ChatEvent::Unblocked {
            user_id: user_id.to_string(),
        },
        ChangeKind::Pinned { pinned, at } => ChatEvent::Pinned {
            conversation_id: conv,
            pinned,
            at,
        },
        ChangeKind::MessageEdited {
            seq,
            content,
            edited_at,
        } => ChatEvent::MessageEdited {
            conversation_id: conv,
            seq,
            content: content.map(Into::into),
            edited_at,
        },
        ChangeKind::ReactionAdded { seq, user_id, emoji } => ChatEvent::ReactionChanged {
            conversation_id: conv,
            seq,
            user_id: user_id.to_string(),
            emoji,
            added: true,
        },
        ChangeKind::ReactionRemoved { seq, user_id, emoji } => ChatEvent::ReactionChanged {
            conversation_id: conv,
            seq,
            user_id: user_id.to_string(),
            emoji,
            added: false,
        },
    }
}

/// The FFI form of a client event; `None` for internal ones the app need not see.
pub(crate) fn chat_event(e: sdk::ClientEvent) -> Option<ChatEvent> {
    use sdk::ClientEvent as E;
    Some(match e {
        E::Connection(s) => ChatEvent::ConnectionChanged { state: s.into() },
        E::Change(c) => change_event(c),
        E::Ephemeral(Event::Change(c)) => change_event(c),
        E::Ephemeral(Event::Typing {
            conversation_id,
            user_id,
            typing,
            expires_at,
        }) => ChatEvent::Typing {
            conversation_id: conversation_id.to_string(),
            user_id: user_id.to_string(),
            typing,
            expires_at,
        },
        E::Ephemeral(Event::Presence(p)) => ChatEvent::PresenceChanged { presence: p.into() },
        E::Ephemeral(Event::Profile(p)) => ChatEvent::ProfileChanged { profile: p.into() },
        E::View(u) => match u {
            core_client::ViewUpdate::Conversation { conversation_id } => ChatEvent::ConversationChanged {
                conversation_id: conversation_id.to_string(),
            },
            core_client::ViewUpdate::ConversationRemoved { conversation_id } => ChatEvent::ConversationRemoved {
                conversation_id: conversation_id.to_string(),
            },
            // The SDK fetches unknown conversations itself and reports them when loaded.
            core_client::ViewUpdate::ConversationUnknown { .. } => return None,
            core_client::ViewUpdate::User { user_id } => ChatEvent::UserChanged {
                user_id: user_id.to_string(),
            },
            core_client::ViewUpdate::Contacts => ChatEvent::ContactsChanged,
        },
        E::Queued(p) => ChatEvent::Queued { pending: p.into() },
        E::Sent { client_msg_id, message } => ChatEvent::Sent {
            client_msg_id,
            message: message.into(),
        },
        E::SendFailed { client_msg_id, error } => ChatEvent::SendFailed {
            client_msg_id,
            code: error.code().into(),
            message: error.to_string(),
        },
        E::Synced { cursor, caught_up } => ChatEvent::Synced { cursor, caught_up },
        E::SessionRefreshed(s) => ChatEvent::SessionRefreshed { session: s.into() },
        E::SessionExpired => ChatEvent::SessionExpired,
    })
}

//! The wire protocol (version 1): WebSocket frames and the REST request/response bodies.
//!
//! These are plain serde types shared by the gateway (`chatico-transport`) and every client
//! (native, browser, FFI). `docs/PROTOCOL.md` is the normative description; this module is
//! its executable form. JSON is the codec of subprotocol [`SUBPROTOCOL_JSON`]. The REST
//! paths are in [`paths`], shared by the gateway's routes and every client.
//!
//! A client frame is `{"id": "<client-chosen>", "type": "<request>", ...fields}` and is
//! answered by exactly one [`ServerFrame::Ack`] or [`ServerFrame::Error`] carrying the same
//! `id`. Server-initiated frames are [`ServerFrame::Ready`], [`ServerFrame::Event`] and
//! [`ServerFrame::Cursor`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::ids::{ClientMsgId, ConversationId, SessionId, Timestamp, UserId};
use crate::model::{Content, Conversation, Member, Mention, Message, ProfilePatch, Role, User};
use crate::sync::{Change, ChangeKind, EphemeralSnapshot, Event, SyncCursor, SyncPage};

pub mod paths;

/// The protocol version this module describes.
pub const PROTOCOL_VERSION: u32 = 1;

/// WebSocket subprotocol for protocol version 1 with the JSON codec. A client must offer it in
/// `Sec-WebSocket-Protocol`; the server refuses handshakes that offer no protocol it speaks.
pub const SUBPROTOCOL_JSON: &str = "chatico.v1.json";

/// Longest frame `id` a client may use, in bytes.
pub const MAX_FRAME_ID_LEN: usize = 64;

/// WebSocket close codes the server uses. 1xxx are RFC 6455 codes; 4xxx are ChatiCO's.
pub mod close_code {
    /// The client closed, or the server is done with a healthy connection.
    pub const NORMAL: u16 = 1000;
    /// The server is shutting down; reconnect (to another node) later.
    pub const GOING_AWAY: u16 = 1001;
    /// A frame exceeded the maximum frame size. Nothing from it was processed.
    pub const MESSAGE_TOO_BIG: u16 = 1009;
    /// An unexpected server error.
    pub const INTERNAL_ERROR: u16 = 1011;
    /// Authentication failed (missing, malformed, expired, tampered or revoked token), or the
    /// session was revoked while connected (logout everywhere). Refresh the token, then reconnect.
    pub const UNAUTHORIZED: u16 = 4001;
    /// No `auth` frame (and no `Authorization` header) within the handshake timeout.
    pub const AUTH_TIMEOUT: u16 = 4002;
    /// The client did not read its events fast enough and its outbound queue overflowed.
    /// Reconnect and resume from the last cursor.
    pub const SLOW_CONSUMER: u16 = 4008;
    /// No frame (not even a pong) arrived within the heartbeat timeout.
    pub const HEARTBEAT_TIMEOUT: u16 = 4009;
}

/// A frame from the client. The `id` is chosen by the client (at most [`MAX_FRAME_ID_LEN`]
/// bytes) and echoed in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClientFrame {
    /// The client's frame id (at most [`MAX_FRAME_ID_LEN`] bytes), echoed in the ack or error.
    pub id: String,
    /// What the frame asks for.
    #[serde(flatten)]
    pub request: ClientRequest,
}

/// What a client frame asks for; the `type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientRequest {
    /// Authenticates the connection with an access token. Only valid as the first frame, and
    /// only when the handshake carried no `Authorization` header.
    Auth {
        /// A JWT access token from a login or refresh.
        token: String,
    },
    /// Starts live events. `since`: the last cursor the client received in a `cursor` frame
    /// (it receives every change after it, then live events), or `null` to start from now.
    Subscribe {
        /// Resume point, or `None` for "from now".
        #[serde(default)]
        since: Option<SyncCursor>,
    },
    /// Sends a message (idempotent on `(sender, client_msg_id)`).
    Send {
        /// The conversation to post to; the caller must be a member.
        conversation_id: ConversationId,
        /// The idempotency key: a retry with the same key returns the original message.
        client_msg_id: ClientMsgId,
        /// `text` or `media` (system notices are written by the server only).
        content: Content,
        /// Seq of an existing message in the same conversation this one answers.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reply_to_seq: Option<i64>,
    },
    /// Moves the caller's receipt watermarks in a conversation (each optional; they only
    /// ever move forward, and `delivered_seq` is at least `read_seq`).
    Receipt {
        /// The conversation whose watermarks move; the caller must be a member.
        conversation_id: ConversationId,
        /// New delivered watermark (clamped to the newest seq).
        #[serde(default)]
        delivered_seq: Option<i64>,
        /// New read watermark (clamped to the newest seq).
        #[serde(default)]
        read_seq: Option<i64>,
    },
    /// Starts or stops the typing indicator in a conversation.
    Typing {
        /// The conversation; the caller must be a member.
        conversation_id: ConversationId,
        /// `true` to start (or renew) the indicator, `false` to stop it.
        typing: bool,
    },
    /// One page of changes after `since` (does not move the connection's cursor).
    Sync {
        /// The cursor to page from.
        since: SyncCursor,
        /// Most changes to return; capped at `Limits::max_sync_page`.
        #[serde(default)]
        limit: Option<u32>,
    },
    /// An application-level ping (for clients that cannot send WebSocket pings).
    Ping,
}

impl ClientRequest {
    /// The `type` tag of this request, as on the wire.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientRequest::Auth { .. } => "auth",
            ClientRequest::Subscribe { .. } => "subscribe",
            ClientRequest::Send { .. } => "send",
            ClientRequest::Receipt { .. } => "receipt",
            ClientRequest::Typing { .. } => "typing",
            ClientRequest::Sync { .. } => "sync",
            ClientRequest::Ping => "ping",
        }
    }
}

/// Every `type` a client frame may have.
pub const CLIENT_FRAME_TYPES: [&str; 7] = ["auth", "subscribe", "send", "receipt", "typing", "sync", "ping"];

/// A frame from the server; the `type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Sent once, right after the connection is authenticated.
    Ready(Ready),
    /// The successful answer to the client frame with this `id`.
    Ack {
        /// The id of the client frame this answers.
        id: String,
        /// What the request produced.
        result: AckResult,
    },
    /// The failed answer to the client frame with this `id` (`null` when the frame was too
    /// malformed to read its id). Nothing was changed.
    Error {
        /// The id of the client frame this answers, if it could be read.
        id: Option<String>,
        /// The typed error.
        error: ErrorBody,
    },
    /// A live event. Changes carry a `pos`; a client applies each `pos` at most once.
    Event {
        /// What happened.
        event: Event,
    },
    /// A checkpoint: every change with `pos <= pos` that concerns the user has been sent on
    /// this connection. The only value a client may store as its resume cursor.
    /// `caught_up` is false while a resume is still paging through missed changes.
    Cursor {
        /// Every change up to this position has been sent.
        pos: SyncCursor,
        /// `true` once a resume has sent every missed change.
        caught_up: bool,
    },
}

/// The first server frame of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ready {
    /// The protocol version the server speaks ([`PROTOCOL_VERSION`]).
    pub protocol: u32,
    /// The authenticated user.
    pub user_id: UserId,
    /// The session the access token belongs to.
    pub session_id: SessionId,
    /// The server pings every `heartbeat_ms`; a connection silent for longer than
    /// `heartbeat_ms + heartbeat_timeout_ms` is closed with 4009.
    pub heartbeat_ms: u64,
    /// Grace after a missed heartbeat before the server closes, in ms.
    pub heartbeat_timeout_ms: u64,
    /// Largest frame the server accepts, in bytes (larger frames close with 1009).
    pub max_frame_bytes: u64,
}

/// The result of a successful client frame; `type` matches the request's `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AckResult {
    /// The connection is authenticated.
    Auth {
        /// The user the token belongs to.
        user_id: UserId,
    },
    /// Subscribed. Missed changes, then a `cursor` frame with `caught_up: true`, follow.
    /// `snapshot` is who is online and typing among the people the user sees right now.
    Subscribe {
        /// Who is online and typing now, among the people the user sees.
        snapshot: EphemeralSnapshot,
    },
    /// The message was stored (or was already, for a retried `client_msg_id`).
    Send {
        /// The stored message with its seq.
        message: Message,
    },
    /// The watermarks moved (or stayed).
    Receipt {
        /// The caller's delivered watermark after the merge.
        delivered_seq: i64,
        /// The caller's read watermark after the merge.
        read_seq: i64,
    },
    /// The typing indicator was set or cleared.
    Typing {},
    /// One page of changes.
    Sync {
        /// The changes and the cursor to continue from.
        page: SyncPage,
        /// Who is online and typing now.
        ephemeral: EphemeralSnapshot,
    },
    /// Answers a `ping` frame.
    Ping {},
}

// ---- REST bodies -----------------------------------------------------------------------

/// The answer to an OTP request. Identical for known and unknown phones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpRequested {
    /// The earliest another code may be requested for this phone.
    pub resend_after_ms: u64,
    /// How long the code stays valid.
    pub expires_in_ms: u64,
}

/// Tokens of a session, after a login or a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuthTokens {
    /// Short-lived JWT for `Authorization: Bearer` and the WebSocket.
    pub access_token: String,
    /// Opaque, single-use token that buys a new pair at `/v1/auth/refresh`; rotated on each use.
    pub refresh_token: String,
    /// When the access token expires (ms since the Unix epoch).
    pub access_expires_at: Timestamp,
    /// When the refresh token expires unless used (ms since the Unix epoch).
    pub refresh_expires_at: Timestamp,
    /// The signed-in user's full record.
    pub user: User,
    /// True when this login created the user.
    pub new_user: bool,
}

/// A message to send. `(sender, client_msg_id)` makes it idempotent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendMessage {
    /// The conversation to post to; the caller must be a member.
    pub conversation_id: ConversationId,
    /// The idempotency key: a retry with the same key returns the original message.
    pub client_msg_id: ClientMsgId,
    /// `Text` or `Media` (a blob the sender registered); `System` is refused.
    pub content: Content,
    /// Seq of an existing message in the same conversation this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_seq: Option<i64>,
}

/// A conversation with its members.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationDetails {
    /// The conversation.
    pub conversation: Conversation,
    /// Its current members.
    pub members: Vec<Member>,
}

/// What a sync returns: the persistent changes since the cursor, and the ephemeral state now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    /// The persistent changes and the cursor to continue from.
    pub page: SyncPage,
    /// Who is online and typing now.
    pub ephemeral: EphemeralSnapshot,
}

/// `GET /v1/search` query parameters: a message search.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The words to find (all of them; punctuation separates words and is never syntax).
    pub q: String,
    /// Only this conversation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<ConversationId>,
    /// The `next_cursor` of the previous page of the same search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<String>,
    /// Page size (clamped to `Limits::max_search_page`). Default 20.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
}

/// `GET /v1/search`: one page of a message search.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResults {
    /// The matching messages, best match first (then newest first).
    pub messages: Vec<Message>,
    /// Pass as `cursor` (with the same `q` and `conversation_id`) for the next page;
    /// absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

/// `POST /v1/auth/otp`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OtpRequest {
    /// E.164 (spaces, dashes, dots and parentheses are ignored).
    pub phone: String,
}

/// `POST /v1/auth/verify`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VerifyRequest {
    /// The phone the code was sent to (E.164).
    pub phone: String,
    /// The code from the SMS.
    pub code: String,
    /// A label for the session ("Pixel 8", "Firefox"...), shown nowhere but kept with it.
    #[serde(default)]
    pub device: Option<String>,
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    /// The current refresh token; it stops working once used.
    pub refresh_token: String,
}

/// `PATCH /v1/me` takes a [`ProfilePatch`]; re-exported here for the protocol's readers.
pub type ProfileUpdate = ProfilePatch;

/// `POST /v1/conversations/direct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenDirectRequest {
    /// The other user; refused if either blocked the other.
    pub user_id: UserId,
}

/// `POST /v1/conversations/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGroupRequest {
    /// The group's title (non-empty, at most `Limits::max_group_title_chars` characters).
    pub title: String,
    /// Invitees (the caller becomes the owner and need not be listed).
    pub members: Vec<UserId>,
    /// URL of the group's avatar.
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// `PATCH /v1/conversations/{id}`: `null`/absent leaves a field unchanged; `avatar_url: null`
/// given explicitly clears the avatar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateGroupRequest {
    /// A new title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::model::double_option"
    )]
    /// `Some(Some(url))` sets the avatar, `Some(None)` clears it, `None` leaves it.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub avatar_url: Option<Option<String>>,
}

/// `POST /v1/conversations/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMembersRequest {
    /// Users to add; the caller must be an admin or the owner.
    pub user_ids: Vec<UserId>,
}

/// `PUT /v1/conversations/{id}/members/{user_id}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetRoleRequest {
    /// The new role (owner only; `owner` itself cannot be given).
    pub role: Role,
}

/// `PUT /v1/conversations/{id}/archive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArchiveRequest {
    /// `true` archives the conversation for the caller, `false` restores it.
    pub archived: bool,
}

/// `PUT /v1/conversations/{id}/mute`: no pushes from this conversation for the caller (all
/// their devices) until `until`, or until unmuted when it is absent.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MuteRequest {
    /// End of the mute (ms since the Unix epoch, in the future); absent = until unmuted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

/// `PUT /v1/conversations/{id}/pin` answers the caller's pin (`DELETE` answers 204).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PinState {
    /// The conversation.
    pub conversation_id: ConversationId,
    /// When the caller pinned it (ms since the Unix epoch; an earlier pin keeps its time).
    pub pinned_at: Timestamp,
}

/// `PUT /v1/push/device`: registers (or replaces) the push token of the caller's session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RegisterPushRequest {
    /// `apns` or `fcm`.
    pub platform: crate::push::Platform,
    /// The provider's device token (at most 4096 printable ASCII characters).
    pub token: String,
    /// The app's bundle id (APNs topic) or Android package (at most 255 characters).
    pub app_id: String,
    /// The device's locale (BCP 47, e.g. `fr-CA`), if the app gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

/// `POST /v1/conversations/{id}/typing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingRequest {
    /// `true` to start (or renew) the indicator, `false` to stop it.
    pub typing: bool,
}

/// Which deletion `DELETE /v1/conversations/{id}/messages/{seq}?scope=` performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeleteScope {
    /// Hide the message for the caller only.
    Me,
    /// Tombstone it for every member (the sender only).
    Everyone,
}

/// `POST /v1/conversations/{id}/messages` (the path names the conversation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PostMessage {
    /// The idempotency key: a retry with the same key returns the original message.
    pub client_msg_id: ClientMsgId,
    /// `text` or `media` (system notices are written by the server only).
    pub content: Content,
    /// Seq of an existing message in the same conversation this one answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_seq: Option<i64>,
}

/// `PATCH /v1/conversations/{id}/messages/{seq}`: the sender's new text (a media message's
/// caption; blank removes it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EditMessage {
    /// The new text of a text message, or the new caption of a media message.
    pub text: String,
    /// The edited text's mentions (a text message in a group only), checked as on send;
    /// absent = none (an edit replaces the mentions with these).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub mentions: Vec<Mention>,
}

impl From<&str> for EditMessage {
    fn from(text: &str) -> Self {
        EditMessage {
            text: text.to_owned(),
            mentions: Vec::new(),
        }
    }
}

impl From<String> for EditMessage {
    fn from(text: String) -> Self {
        EditMessage {
            text,
            mentions: Vec::new(),
        }
    }
}

/// `POST /v1/conversations/{id}/receipts`: new watermarks, each optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptBody {
    /// New delivered watermark (clamped to the newest seq).
    #[serde(default)]
    pub delivered_seq: Option<i64>,
    /// New read watermark (clamped to the newest seq).
    #[serde(default)]
    pub read_seq: Option<i64>,
}

/// The answer of contact and block changes: whether anything changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Changed {
    /// `false` when the request matched the state already (nothing written).
    pub changed: bool,
}

/// The answer of `POST /v1/auth/logout-everywhere`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    /// Sessions revoked.
    pub sessions: u64,
}

/// `GET /v1/health`: how this node's delivery is doing, as the node itself sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    /// `ok`; `degraded` while the backplane link is down or silently stalled (live events
    /// from other nodes then come from the store's tail, about a second late); or
    /// `shutting_down` (answered with 503).
    pub status: HealthStatus,
    /// This node's name on the backplane.
    pub node_id: String,
    /// Open WebSocket connections (and listeners) on this node.
    pub connections: u64,
    /// The backplane as this node sees it.
    pub backplane: BackplaneHealth,
}

/// The overall state in [`Health`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Everything works.
    Ok,
    /// Delivery from other nodes is not working live (link down or stalled); the store-tail
    /// repair still delivers, with about a second of delay.
    Degraded,
    /// The node is draining its connections.
    ShuttingDown,
}

/// The backplane part of [`Health`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BackplaneHealth {
    /// Whether the broker link is up (false between a reported loss and its return).
    pub link_up: bool,
    /// True when the subscription went silent without a reported loss (the node's own
    /// probes did not come back); the node resubscribes until one does.
    pub stalled: bool,
    /// Milliseconds since anything last arrived over the backplane (`None`: nothing yet).
    pub last_arrival_ms: Option<u64>,
    /// Every store position up to this one either arrived over the backplane or was
    /// repaired.
    pub watermark: SyncCursor,
    /// Repairs so far: ranges of committed positions that did not arrive in time, whose
    /// audience's connections on this node were re-synced from the store.
    pub repairs: u64,
    /// The latest repair, if any.
    pub last_repair: Option<Repair>,
    /// Gaps seen in other nodes' envelope sequences (lost envelopes).
    pub gaps: u64,
    /// Times the node dropped a silent subscription and subscribed again.
    pub resubscribes: u64,
}

/// One repair in [`BackplaneHealth`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Repair {
    /// When it ran (ms since the Unix epoch).
    pub at: Timestamp,
    /// The positions repaired: `from < pos <= to`.
    pub from: SyncCursor,
    /// See `from`.
    pub to: SyncCursor,
    /// Users those positions concern.
    pub users: u64,
    /// Connections on this node told to re-sync.
    pub connections: u64,
}

/// What identifies a change independently of its `pos`: two changes with the same key have
/// the same effect. Live changes may carry `pos: 0` (the position is not known when they are
/// fanned out), so the gateway and clients deduplicate by this key (see docs/PROTOCOL.md,
/// "Resume").
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ChangeKey {
    /// A message at this seq.
    Message(ConversationId, i64),
    /// The message at this seq was deleted for everyone.
    MessageDeleted(ConversationId, i64),
    /// The message at this seq was hidden for the user.
    MessageHidden(ConversationId, i64),
    /// A member's `(delivered_seq, read_seq)` became these.
    Receipt(ConversationId, UserId, i64, i64),
    /// The conversation appeared for the user.
    ConversationCreated(ConversationId),
    /// Title and avatar became these.
    ConversationUpdated(ConversationId, Option<String>, Option<String>),
    /// A user joined with this role.
    MemberJoined(ConversationId, UserId, Role),
    /// A user (first) left or was removed by a user (second).
    MemberLeft(ConversationId, UserId, UserId),
    /// A member's role became this.
    RoleChanged(ConversationId, UserId, Role),
    /// The archived flag became this.
    Archived(ConversationId, bool),
    /// Muted or unmuted, until when.
    Muted(ConversationId, bool, Option<Timestamp>),
    /// The user was added to the contacts.
    ContactAdded(UserId),
    /// The user was removed from the contacts.
    ContactRemoved(UserId),
    /// The user was blocked.
    Blocked(UserId),
    /// The user was unblocked.
    Unblocked(UserId),
    /// Pinned or unpinned, at when.
    Pinned(ConversationId, bool, Option<Timestamp>),
    /// The message at this seq was edited at this time.
    MessageEdited(ConversationId, i64, Timestamp),
    /// A user reacted to the message at this seq with this emoji.
    ReactionAdded(ConversationId, i64, UserId, String),
    /// A user took back this emoji from the message at this seq.
    ReactionRemoved(ConversationId, i64, UserId, String),
}

impl ChangeKey {
    /// The key of a change.
    pub fn of(change: &Change) -> ChangeKey {
        // Conversation changes always carry their conversation; a missing one (never sent by
        // a conforming server) maps to the nil id so the key stays total.
        let c = change.conversation_id.unwrap_or(ConversationId(uuid::Uuid::nil()));
        match &change.kind {
            ChangeKind::Message { message } => ChangeKey::Message(message.conversation_id, message.seq),
            ChangeKind::MessageDeleted { seq, .. } => ChangeKey::MessageDeleted(c, *seq),
            ChangeKind::MessageHidden { seq } => ChangeKey::MessageHidden(c, *seq),
            ChangeKind::Receipt {
                user_id,
                delivered_seq,
                read_seq,
            } => ChangeKey::Receipt(c, *user_id, *delivered_seq, *read_seq),
            ChangeKind::ConversationCreated { conversation } => ChangeKey::ConversationCreated(conversation.id),
            ChangeKind::ConversationUpdated { title, avatar_url } => {
                ChangeKey::ConversationUpdated(c, title.clone(), avatar_url.clone())
            }
            ChangeKind::MemberJoined { user_id, role } => ChangeKey::MemberJoined(c, *user_id, *role),
            ChangeKind::MemberLeft { user_id, by } => ChangeKey::MemberLeft(c, *user_id, *by),
            ChangeKind::RoleChanged { user_id, role } => ChangeKey::RoleChanged(c, *user_id, *role),
            ChangeKind::Archived { archived } => ChangeKey::Archived(c, *archived),
            ChangeKind::Muted { muted, until } => ChangeKey::Muted(c, *muted, *until),
            ChangeKind::ContactAdded { user_id } => ChangeKey::ContactAdded(*user_id),
            ChangeKind::ContactRemoved { user_id } => ChangeKey::ContactRemoved(*user_id),
            ChangeKind::Blocked { user_id } => ChangeKey::Blocked(*user_id),
            ChangeKind::Unblocked { user_id } => ChangeKey::Unblocked(*user_id),
            ChangeKind::Pinned { pinned, at } => ChangeKey::Pinned(c, *pinned, *at),
            ChangeKind::MessageEdited { seq, edited_at, .. } => ChangeKey::MessageEdited(c, *seq, *edited_at),
            ChangeKind::ReactionAdded { seq, user_id, emoji } => {
                ChangeKey::ReactionAdded(c, *seq, *user_id, emoji.clone())
            }
            ChangeKind::ReactionRemoved { seq, user_id, emoji } => {
                ChangeKey::ReactionRemoved(c, *seq, *user_id, emoji.clone())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Content;

    #[test]
    fn client_frames_round_trip_with_their_documented_shape() {
        let json = r#"{"id":"7","type":"send","conversation_id":"0190a0b0-0000-7000-8000-000000000001",
            "client_msg_id":"m1","content":{"type":"text","text":"hi"}}"#;
        let f: ClientFrame = serde_json::from_str(json).expect("parse");
        assert_eq!(f.id, "7");
        match &f.request {
            ClientRequest::Send {
                client_msg_id, content, ..
            } => {
                assert_eq!(client_msg_id, "m1");
                assert_eq!(content, &Content::text("hi"));
            }
            other => panic!("unexpected {other:?}"),
        }
        let back = serde_json::to_value(&f).expect("ser");
        assert_eq!(back["type"], "send");
        assert_eq!(back["id"], "7");

        let f: ClientFrame = serde_json::from_str(r#"{"id":"a","type":"ping"}"#).expect("ping");
        assert_eq!(f.request, ClientRequest::Ping);
        let f: ClientFrame = serde_json::from_str(r#"{"id":"b","type":"subscribe"}"#).expect("subscribe");
        assert_eq!(f.request, ClientRequest::Subscribe { since: None });
        assert!(serde_json::from_str::<ClientFrame>(r#"{"id":"c","type":"launch"}"#).is_err());
    }

    #[test]
    fn every_request_kind_is_listed() {
        for k in CLIENT_FRAME_TYPES {
            let json = match k {
                "auth" => r#"{"id":"1","type":"auth","token":"t"}"#.to_owned(),
                "typing" => format!(
                    r#"{{"id":"1","type":"typing","conversation_id":"{}","typing":true}}"#,
                    uuid::Uuid::nil()
                ),
                "receipt" => format!(
                    r#"{{"id":"1","type":"receipt","conversation_id":"{}","read_seq":3}}"#,
                    uuid::Uuid::nil()
                ),
                "send" => format!(
                    r#"{{"id":"1","type":"send","conversation_id":"{}","client_msg_id":"x","content":{{"type":"text","text":"a"}}}}"#,
                    uuid::Uuid::nil()
                ),
                "sync" => r#"{"id":"1","type":"sync","since":0}"#.to_owned(),
                other => format!(r#"{{"id":"1","type":"{other}"}}"#),
            };
            let f: ClientFrame = serde_json::from_str(&json).unwrap_or_else(|e| panic!("{k}: {e}"));
            assert_eq!(f.request.kind(), k);
        }
    }

    #[test]
    fn change_keys_ignore_pos_and_message_resolution() {
        use crate::ids::{MessageId, UserId};
        let conv = ConversationId(uuid::Uuid::from_u128(1));
        let user = UserId(uuid::Uuid::from_u128(2));
        let message = Message {
            id: MessageId(uuid::Uuid::from_u128(3)),
            conversation_id: conv,
            seq: 4,
            sender_id: user,
            client_msg_id: "c".into(),
            content: Some(Content::text("x")),
            reply_to_seq: None,
            created_at: 5,
            deleted_at: None,
            edited_at: None,
            reactions: Vec::new(),
        };
        let live = Change {
            pos: 0,
            conversation_id: Some(conv),
            kind: ChangeKind::Message {
                message: message.clone(),
            },
        };
        let stored = Change {
            pos: 17,
            conversation_id: Some(conv),
            kind: ChangeKind::Message {
                message: Message {
                    content: None,
                    deleted_at: Some(9),
                    ..message
                },
            },
        };
        assert_eq!(ChangeKey::of(&live), ChangeKey::of(&stored));
        let receipt = |read| Change {
            pos: 0,
            conversation_id: Some(conv),
            kind: ChangeKind::Receipt {
                user_id: user,
                delivered_seq: 4,
                read_seq: read,
            },
        };
        assert_ne!(ChangeKey::of(&receipt(3)), ChangeKey::of(&receipt(4)));
        assert_ne!(ChangeKey::of(&receipt(4)), ChangeKey::of(&live));
    }

    #[test]
    fn server_frames_are_tagged_by_type() {
        let f = ServerFrame::Cursor {
            pos: 42,
            caught_up: true,
        };
        let v = serde_json::to_value(&f).expect("ser");
        assert_eq!(v, serde_json::json!({"type":"cursor","pos":42,"caught_up":true}));
        let f = ServerFrame::Ack {
            id: "9".into(),
            result: AckResult::Ping {},
        };
        let v = serde_json::to_value(&f).expect("ser");
        assert_eq!(v, serde_json::json!({"type":"ack","id":"9","result":{"type":"ping"}}));
        let back: ServerFrame = serde_json::from_value(v).expect("de");
        assert_eq!(back, f);
    }
}

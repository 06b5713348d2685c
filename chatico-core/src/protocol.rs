//! The wire protocol (version 1): WebSocket frames and the REST request/response bodies.
//!
//! These are plain serde types shared by the gateway (`chatico-transport`) and every client
//! (native, browser, FFI). `docs/PROTOCOL.md` is the normative description; this module is
//! its executable form. JSON is the codec of subprotocol [`SUBPROTOCOL_JSON`].
//!
//! A client frame is `{"id": "<client-chosen>", "type": "<request>", ...fields}` and is
//! answered by exactly one [`ServerFrame::Ack`] or [`ServerFrame::Error`] carrying the same
//! `id`. Server-initiated frames are [`ServerFrame::Ready`], [`ServerFrame::Event`] and
//! [`ServerFrame::Cursor`].

use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::ids::{ClientMsgId, ConversationId, SessionId, Timestamp, UserId};
use crate::model::{Content, Member, Message, ProfilePatch, Role, User};
use crate::sync::{EphemeralSnapshot, Event, SyncCursor, SyncPage};

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
    pub id: String,
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
    Auth { token: String },
    /// Starts live events. `since`: the last cursor the client received in a `cursor` frame
    /// (it receives every change after it, then live events), or `null` to start from now.
    Subscribe {
        #[serde(default)]
        since: Option<SyncCursor>,
    },
    /// Sends a message (idempotent on `client_msg_id`).
    Send(SendMessage),
    /// Moves the caller's receipt watermarks in a conversation.
    Receipt(ReceiptUpdate),
    /// Starts or stops the typing indicator in a conversation.
    Typing {
        conversation_id: ConversationId,
        typing: bool,
    },
    /// One page of changes after `since` (does not move the connection's cursor).
    Sync {
        since: SyncCursor,
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
            ClientRequest::Send(_) => "send",
            ClientRequest::Receipt(_) => "receipt",
            ClientRequest::Typing { .. } => "typing",
            ClientRequest::Sync { .. } => "sync",
            ClientRequest::Ping => "ping",
        }
    }
}

/// Every `type` a client frame may have.
pub const CLIENT_FRAME_TYPES: [&str; 7] = ["auth", "subscribe", "send", "receipt", "typing", "sync", "ping"];

/// A message to send (WebSocket `send` frame, REST `POST /v1/conversations/{id}/messages`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SendMessage {
    /// Required on the WebSocket; on REST the path names the conversation and this field, if
    /// present, must match it.
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    /// The idempotency key: a retry with the same key returns the original message.
    pub client_msg_id: ClientMsgId,
    /// `text` or `media` (system notices are written by the server only).
    pub content: Content,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to_seq: Option<i64>,
}

/// New receipt watermarks (each optional; they only ever move forward).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReceiptUpdate {
    /// Required on the WebSocket; ignored on REST (the path names the conversation).
    #[serde(default)]
    pub conversation_id: Option<ConversationId>,
    #[serde(default)]
    pub delivered_seq: Option<i64>,
    #[serde(default)]
    pub read_seq: Option<i64>,
}

/// A frame from the server; the `type` field selects the variant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// Sent once, right after the connection is authenticated.
    Ready(Ready),
    /// The successful answer to the client frame with this `id`.
    Ack { id: String, result: AckResult },
    /// The failed answer to the client frame with this `id` (`null` when the frame was too
    /// malformed to read its id). Nothing was changed.
    Error { id: Option<String>, error: ErrorBody },
    /// A live event. Changes carry a `pos`; a client applies each `pos` at most once.
    Event { event: Event },
    /// A checkpoint: every change with `pos <= pos` that concerns the user has been sent on
    /// this connection. The only value a client may store as its resume cursor.
    /// `caught_up` is false while a resume is still paging through missed changes.
    Cursor { pos: SyncCursor, caught_up: bool },
}

/// The first server frame of an authenticated connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Ready {
    pub protocol: u32,
    pub user_id: UserId,
    pub session_id: SessionId,
    /// The server pings every `heartbeat_ms`; a connection silent for longer than
    /// `heartbeat_ms + heartbeat_timeout_ms` is closed with 4009.
    pub heartbeat_ms: u64,
    pub heartbeat_timeout_ms: u64,
    /// Largest frame the server accepts, in bytes (larger frames close with 1009).
    pub max_frame_bytes: u64,
}

/// The result of a successful client frame; `type` matches the request's `type`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AckResult {
    Auth {
        user_id: UserId,
    },
    /// Subscribed. Missed changes, then a `cursor` frame with `caught_up: true`, follow.
    /// `snapshot` is who is online and typing among the people the user sees right now.
    Subscribe {
        snapshot: EphemeralSnapshot,
    },
    Send {
        message: Message,
    },
    Receipt {
        delivered_seq: i64,
        read_seq: i64,
    },
    Typing {},
    Sync {
        page: SyncPage,
    },
    Ping {},
}

// ---- REST bodies -----------------------------------------------------------------------

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
    pub phone: String,
    pub code: String,
    /// A label for the session ("Pixel 8", "Firefox"...), shown nowhere but kept with it.
    #[serde(default)]
    pub device: Option<String>,
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    pub refresh_token: String,
}

/// Tokens issued by verify and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// A JWT for `Authorization: Bearer` and the WebSocket `auth` frame.
    pub access_token: String,
    pub access_expires_at: Timestamp,
    /// Single use: every refresh returns a new one and invalidates this one.
    pub refresh_token: String,
    pub refresh_expires_at: Timestamp,
    pub session_id: SessionId,
    pub user: User,
    /// True when this login created the account.
    pub new_user: bool,
}

/// `PATCH /v1/me` takes a [`ProfilePatch`]; re-exported here for the protocol's readers.
pub type ProfileUpdate = ProfilePatch;

/// `POST /v1/conversations/direct`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OpenDirectRequest {
    pub user_id: UserId,
}

/// `POST /v1/conversations/group`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateGroupRequest {
    pub title: String,
    /// Invitees (the caller becomes the owner and need not be listed).
    pub members: Vec<UserId>,
    #[serde(default)]
    pub avatar_url: Option<String>,
}

/// `PATCH /v1/conversations/{id}`: `null`/absent leaves a field unchanged; `avatar_url: null`
/// given explicitly clears the avatar.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UpdateGroupRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::model::double_option"
    )]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>))]
    pub avatar_url: Option<Option<String>>,
}

/// `POST /v1/conversations/{id}/members`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AddMembersRequest {
    pub user_ids: Vec<UserId>,
}

/// `PUT /v1/conversations/{id}/members/{user_id}/role`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SetRoleRequest {
    pub role: Role,
}

/// `PUT /v1/conversations/{id}/archive`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArchiveRequest {
    pub archived: bool,
}

/// `POST /v1/conversations/{id}/typing`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingRequest {
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

/// The answer of `GET /v1/sync`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SyncResponse {
    pub page: SyncPage,
    pub snapshot: EphemeralSnapshot,
}

/// The answer of receipt updates: the caller's membership after the move.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MemberResponse {
    pub member: Member,
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
            ClientRequest::Send(s) => {
                assert_eq!(s.client_msg_id, "m1");
                assert_eq!(s.content, Content::Text { text: "hi".into() });
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

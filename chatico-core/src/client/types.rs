//! The client's public value types, shared by every platform: session, connection state and
//! events.

use serde::{Deserialize, Serialize};

use super::{PendingMessage, ViewUpdate};
use crate::error::Error;
use crate::ids::{ClientMsgId, Timestamp, UserId};
use crate::model::Message;
use crate::protocol::AuthTokens;
use crate::sync::{Change, Event, SyncCursor};

/// The credentials of a logged-in client. Persist it (securely) to stay logged in across
/// restarts. Every refresh replaces the refresh token (single use), announced by
/// [`ClientEvent::SessionRefreshed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The logged-in user.
    pub user_id: UserId,
    /// The JWT sent with every call.
    pub access_token: String,
    /// When the access token expires (ms since the Unix epoch).
    pub access_expires_at: Timestamp,
    /// The single-use token that buys the next pair.
    pub refresh_token: String,
    /// When the refresh token expires (ms since the Unix epoch).
    pub refresh_expires_at: Timestamp,
}

impl From<&AuthTokens> for Session {
    fn from(t: &AuthTokens) -> Self {
        Session {
            user_id: t.user.id,
            access_token: t.access_token.clone(),
            access_expires_at: t.access_expires_at,
            refresh_token: t.refresh_token.clone(),
            refresh_expires_at: t.refresh_expires_at,
        }
    }
}

/// The state of the live connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Not connected and not trying (before `connect`, after `disconnect` or logout).
    Disconnected,
    /// Opening the WebSocket (attempt counts from 0 since the last healthy connection).
    Connecting {
        /// Failed attempts since the last healthy connection.
        attempt: u32,
    },
    /// Subscribed; catching up on missed changes.
    Syncing,
    /// Caught up; events are live.
    Connected,
    /// The link dropped; the next attempt starts after `delay_ms`.
    Reconnecting {
        /// Failed attempts since the last healthy connection.
        attempt: u32,
        /// Wait before the next attempt, in ms.
        delay_ms: u64,
        /// Why the link dropped.
        reason: String,
    },
    /// The session is gone (refresh refused): log in again.
    LoggedOut,
}

/// Something the app may want to react to. Every persistent change is reported exactly once
/// per client, even across reconnects, and a conversation's messages are reported in `seq`
/// order (see [`super::ClientMachine`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientEvent {
    /// The connection state changed.
    Connection(ConnectionState),
    /// A persistent change, applied to the local view.
    Change(Change),
    /// An ephemeral event (typing, presence, profile), applied to the local view.
    Ephemeral(Event),
    /// What the last change or event altered in the local view (for UI refresh).
    View(ViewUpdate),
    /// A message joined the outbox (it is sent when connected).
    Queued(PendingMessage),
    /// The server acknowledged an outbox message: it is stored with this seq.
    Sent {
        /// The key the app's send was queued under.
        client_msg_id: ClientMsgId,
        /// The stored message.
        message: Message,
    },
    /// The server refused an outbox message for good; it left the outbox.
    SendFailed {
        /// The key the app's send was queued under.
        client_msg_id: ClientMsgId,
        /// Why the server refused it.
        error: Error,
    },
    /// The server confirmed every change up to `cursor` (the durable resume point).
    Synced {
        /// The durable resume point.
        cursor: SyncCursor,
        /// `true` once every missed change has arrived.
        caught_up: bool,
    },
    /// New tokens after a refresh: persist this session.
    SessionRefreshed(Session),
    /// The session can no longer be refreshed; the client stopped. Log in again.
    SessionExpired,
}

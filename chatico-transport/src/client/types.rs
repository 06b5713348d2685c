//! The client's public value types: configuration, session, connection state and events.

use std::time::Duration;

use chatico_core::Error;
use chatico_core::client::{PendingMessage, ViewUpdate};
use chatico_core::ids::{ClientMsgId, Timestamp, UserId};
use chatico_core::model::Message;
use chatico_core::protocol::AuthTokens;
use chatico_core::sync::{Change, Event, SyncCursor};
use serde::{Deserialize, Serialize};

use super::backoff::Backoff;

/// How a [`super::Client`] talks to a server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port`, optionally with a path prefix where the
    /// gateway is nested (no trailing slash needed). The WebSocket URL is derived from it
    /// (`ws`/`wss` + `/v1/ws`).
    pub base_url: String,
    /// A label for sessions created by this client ("Pixel 8"); sent at login.
    pub device: Option<String>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// How long a request (REST call or WebSocket frame) may wait for its answer before it
    /// fails with `unavailable`. Default 15 s.
    pub request_timeout: Duration,
    /// The access token is refreshed this long before it expires. Default 60 s.
    pub refresh_margin: Duration,
    /// Most sends in flight (sent, not yet acknowledged) on a connection; the rest of the
    /// outbox follows as acknowledgements arrive. Default 64.
    pub max_inflight_sends: usize,
    /// Acknowledge delivery of received messages automatically (a `receipt` frame with
    /// `delivered_seq`, coalesced per conversation). Default true.
    pub auto_delivered: bool,
    /// How often the connection task flushes coalesced receipts and checks the link's
    /// liveness. Default 100 ms.
    pub tick: Duration,
    /// Capacity of the event broadcast channel; a subscriber that falls further behind
    /// misses events (and is told how many). Default 4096.
    pub event_capacity: usize,
}

impl ClientConfig {
    pub fn new(base_url: impl Into<String>) -> Self {
        ClientConfig {
            base_url: base_url.into(),
            device: None,
            backoff: Backoff::default(),
            request_timeout: Duration::from_secs(15),
            refresh_margin: Duration::from_secs(60),
            max_inflight_sends: 64,
            auto_delivered: true,
            tick: Duration::from_millis(100),
            event_capacity: 4096,
        }
    }
}

/// The credentials of a logged-in client. Persist it (securely) to stay logged in across
/// restarts; [`super::Client::restore_session`] takes it back. Every refresh replaces the
/// refresh token (single use), announced by [`ClientEvent::SessionRefreshed`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub user_id: UserId,
    pub access_token: String,
    pub access_expires_at: Timestamp,
    pub refresh_token: String,
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
    Connecting { attempt: u32 },
    /// Subscribed; catching up on missed changes.
    Syncing,
    /// Caught up; events are live.
    Connected,
    /// The link dropped; the next attempt starts after `delay_ms`.
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The session is gone (refresh refused): log in again.
    LoggedOut,
}

/// Something the app may want to react to. Every persistent change is reported exactly once
/// per client, even across reconnects (duplicates from a resume are filtered by
/// [`chatico_core::client::SyncState`]).
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
        client_msg_id: ClientMsgId,
        message: Message,
    },
    /// The server refused an outbox message for good; it left the outbox.
    SendFailed { client_msg_id: ClientMsgId, error: Error },
    /// The server confirmed every change up to `cursor` (the durable resume point).
    Synced { cursor: SyncCursor, caught_up: bool },
    /// New tokens after a refresh: persist this session.
    SessionRefreshed(Session),
    /// The session can no longer be refreshed; the client stopped. Log in again.
    SessionExpired,
}

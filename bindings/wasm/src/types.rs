//! The client's value types as JavaScript sees them: options, session, connection state and
//! events. They mirror the native client's (`chatico_transport::client`), which needs tokio
//! and cannot be built for the browser; the JSON shapes are the same.

use chatico_core::client::{PendingMessage, ViewUpdate};
use chatico_core::error::ErrorBody;
use chatico_core::ids::{ClientMsgId, Timestamp, UserId};
use chatico_core::model::Message;
use chatico_core::protocol::AuthTokens;
use chatico_core::sync::{Change, Event, SyncCursor};
use chatico_core::{Error, Result};
use serde::{Deserialize, Serialize};

/// The WebSocket URL derived from the base URL (`http` → `ws`, `https` → `wss`, plus `/v1/ws`).
pub fn ws_url(base: &str) -> Result<String> {
    let rest = if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else {
        return Err(Error::invalid("base_url", "must start with http:// or https://"));
    };
    Ok(format!("{rest}{}", chatico_core::protocol::paths::WS))
}

/// `new ChatClient(baseUrl, options)`: every field optional (camelCase, as JS options go).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct ClientOptions {
    /// A label for the sessions this client creates ("Firefox on Linux").
    pub device: Option<String>,
    /// How long a REST call or WebSocket request may wait for its answer. Default 15000.
    pub request_timeout_ms: u64,
    /// The access token is refreshed this long before it expires. Default 60000.
    pub refresh_margin_ms: u64,
    /// Most outbox sends in flight on a connection. Default 64.
    pub max_inflight_sends: usize,
    /// Acknowledge delivery of received messages automatically. Default true.
    pub auto_delivered: bool,
    /// First reconnect delay. Default 250.
    pub backoff_initial_ms: u64,
    /// Longest reconnect delay. Default 30000.
    pub backoff_max_ms: u64,
    /// How often the connection flushes coalesced receipts and checks liveness. Default 100.
    pub tick_ms: u64,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            device: None,
            request_timeout_ms: 15_000,
            refresh_margin_ms: 60_000,
            max_inflight_sends: 64,
            auto_delivered: true,
            backoff_initial_ms: 250,
            backoff_max_ms: 30_000,
            tick_ms: 100,
        }
    }
}

impl ClientOptions {
    /// Reconnect delay of attempt `attempt` (from 0): a uniform draw in `[d/2, d]` with
    /// `d = min(max, initial * 2^attempt)` ("equal jitter", as the native client).
    pub fn backoff_ms(&self, attempt: u32, unit_random: f64) -> u64 {
        let d = (self.backoff_initial_ms.max(1) as f64 * 2f64.powi(attempt.min(64) as i32))
            .min(self.backoff_max_ms.max(1) as f64) as u64;
        let half = d / 2;
        half + ((d - half) as f64 * unit_random.clamp(0.0, 1.0)) as u64
    }
}

/// The credentials of a logged-in client. Every refresh replaces the refresh token (single
/// use), announced by a `session_refreshed` event: persist the new one.
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

/// The state of the live connection (`state` tags the variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    Disconnected,
    Connecting {
        attempt: u32,
    },
    /// Subscribed; catching up on missed changes.
    Syncing,
    /// Caught up; events are live.
    Connected,
    Reconnecting {
        attempt: u32,
        delay_ms: u64,
        reason: String,
    },
    /// The session is gone (refresh refused): log in again.
    LoggedOut,
}

/// What listeners registered with `onEvent` receive (`type` tags the variant).
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientEvent {
    Connection {
        state: ConnectionState,
    },
    /// A persistent change, applied to the local view (once each, across reconnects).
    Change {
        change: Change,
    },
    /// Typing, presence or profile, applied to the local view.
    Ephemeral {
        event: Event,
    },
    /// What the last change or event altered in the local view.
    View {
        update: ViewUpdate,
    },
    Queued {
        pending: PendingMessage,
    },
    Sent {
        client_msg_id: ClientMsgId,
        message: Message,
    },
    SendFailed {
        client_msg_id: ClientMsgId,
        error: ErrorBody,
    },
    Synced {
        cursor: SyncCursor,
        caught_up: bool,
    },
    SessionRefreshed {
        session: Session,
    },
    SessionExpired,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_its_cap_with_jitter_in_the_upper_half() {
        let o = ClientOptions {
            backoff_initial_ms: 100,
            backoff_max_ms: 2000,
            ..ClientOptions::default()
        };
        let lows: Vec<u64> = (0..7).map(|a| o.backoff_ms(a, 0.0)).collect();
        let highs: Vec<u64> = (0..7).map(|a| o.backoff_ms(a, 1.0)).collect();
        assert_eq!(highs, vec![100, 200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(lows, vec![50, 100, 200, 400, 800, 1000, 1000]);
        assert_eq!(o.backoff_ms(u32::MAX, 0.5), 1500);
    }

    #[test]
    fn websocket_url_follows_the_base_url() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080").ok(),
            Some("ws://127.0.0.1:8080/v1/ws".into())
        );
        assert_eq!(
            ws_url("https://chat.test/api").ok(),
            Some("wss://chat.test/api/v1/ws".into())
        );
        assert!(ws_url("ftp://x").is_err());
    }

    #[test]
    fn options_take_camel_case_and_default_the_rest() {
        let o: ClientOptions = serde_json::from_str(r#"{"device":"Firefox","tickMs":50}"#).expect("options");
        assert_eq!(o.device.as_deref(), Some("Firefox"));
        assert_eq!(o.tick_ms, 50);
        assert_eq!(o.request_timeout_ms, 15_000);
    }

    #[test]
    fn events_and_states_are_tagged_for_javascript() {
        let v = serde_json::to_value(ClientEvent::Connection {
            state: ConnectionState::Reconnecting {
                attempt: 2,
                delay_ms: 400,
                reason: "x".into(),
            },
        })
        .expect("ser");
        assert_eq!(
            v,
            serde_json::json!({"type":"connection","state":{"state":"reconnecting","attempt":2,"delay_ms":400,"reason":"x"}})
        );
        let v = serde_json::to_value(ClientEvent::SessionExpired).expect("ser");
        assert_eq!(v, serde_json::json!({"type":"session_expired"}));
    }
}

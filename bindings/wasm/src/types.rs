//! The client's options and the JavaScript shape of its events. The value types themselves
//! — [`Session`], [`ConnectionState`], [`ClientEvent`] — are core's, the same on every
//! platform.

use chatico_core::client::{ClientEvent, ConnectionState, PendingMessage, Session, ViewUpdate};
use chatico_core::error::ErrorBody;
use chatico_core::ids::ClientMsgId;
use chatico_core::model::Message;
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
    /// How long delivery receipts are coalesced before they go out. Default 100.
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

/// What listeners registered with `onEvent` receive (`type` tags the variant): core's
/// [`ClientEvent`] in the shape JavaScript reads, e.g. `{"type":"connection","state":{...}}`.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum EventJs<'a> {
    Connection {
        state: &'a ConnectionState,
    },
    Change {
        change: &'a Change,
    },
    Ephemeral {
        event: &'a Event,
    },
    View {
        update: &'a ViewUpdate,
    },
    Queued {
        pending: &'a PendingMessage,
    },
    Sent {
        client_msg_id: &'a ClientMsgId,
        message: &'a Message,
    },
    SendFailed {
        client_msg_id: &'a ClientMsgId,
        error: ErrorBody,
    },
    Synced {
        cursor: SyncCursor,
        caught_up: bool,
    },
    SessionRefreshed {
        session: &'a Session,
    },
    SessionExpired,
}

impl<'a> EventJs<'a> {
    fn of(e: &'a ClientEvent) -> Self {
        match e {
            ClientEvent::Connection(state) => EventJs::Connection { state },
            ClientEvent::Change(change) => EventJs::Change { change },
            ClientEvent::Ephemeral(event) => EventJs::Ephemeral { event },
            ClientEvent::View(update) => EventJs::View { update },
            ClientEvent::Queued(pending) => EventJs::Queued { pending },
            ClientEvent::Sent { client_msg_id, message } => EventJs::Sent { client_msg_id, message },
            ClientEvent::SendFailed { client_msg_id, error } => EventJs::SendFailed {
                client_msg_id,
                error: error.body(),
            },
            ClientEvent::Synced { cursor, caught_up } => EventJs::Synced {
                cursor: *cursor,
                caught_up: *caught_up,
            },
            ClientEvent::SessionRefreshed(session) => EventJs::SessionRefreshed { session },
            ClientEvent::SessionExpired => EventJs::SessionExpired,
        }
    }
}

/// The JSON of an event as listeners receive it.
pub fn event_json(e: &ClientEvent) -> serde_json::Result<serde_json::Value> {
    serde_json::to_value(EventJs::of(e))
}

/// An event as listeners receive it.
#[cfg(target_family = "wasm")]
pub(crate) fn event_to_js(e: &ClientEvent) -> Result<wasm_bindgen::JsValue> {
    crate::js::to_js(&EventJs::of(e))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let v = event_json(&ClientEvent::Connection(ConnectionState::Reconnecting {
            attempt: 2,
            delay_ms: 400,
            reason: "x".into(),
        }))
        .expect("ser");
        assert_eq!(
            v,
            serde_json::json!({"type":"connection","state":{"state":"reconnecting","attempt":2,"delay_ms":400,"reason":"x"}})
        );
        let v = event_json(&ClientEvent::SessionExpired).expect("ser");
        assert_eq!(v, serde_json::json!({"type":"session_expired"}));
    }
}

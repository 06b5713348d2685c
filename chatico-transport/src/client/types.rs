//! The client's configuration. The value types it reports (session, connection state,
//! events) are core's ([`chatico_core::client`]), the same on every platform.

use std::time::Duration;

use chatico_core::client::MachineConfig;
use chatico_core::retry::RetryPolicy;

/// How a [`super::Client`] talks to a server.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// `http://host:port` or `https://host:port`, optionally with a path prefix where the
    /// gateway is nested (no trailing slash needed). The WebSocket URL is derived from it
    /// (`ws`/`wss` + `/v1/ws`).
    pub base_url: String,
    /// A label for sessions created by this client ("Pixel 8"); sent at login.
    pub device: Option<String>,
    /// Reconnect delays: attempt `n` waits `backoff.backoff(n + 1)` (exponential, capped,
    /// with jitter); `max_attempts` is ignored (the client retries until stopped). Default
    /// 250 ms doubling up to 30 s.
    pub backoff: RetryPolicy,
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
    /// How long delivery receipts are coalesced. Default 100 ms.
    pub tick: Duration,
    /// Capacity of the event broadcast channel; a subscriber that falls further behind
    /// misses events (and is told how many). Default 4096.
    pub event_capacity: usize,
}

impl ClientConfig {
    /// A configuration for the server at `base_url`, the rest at defaults.
    pub fn new(base_url: impl Into<String>) -> Self {
        let m = MachineConfig::default();
        ClientConfig {
            base_url: base_url.into(),
            device: None,
            backoff: m.reconnect,
            request_timeout: Duration::from_secs(15),
            refresh_margin: Duration::from_secs(60),
            max_inflight_sends: m.max_inflight_sends,
            auto_delivered: m.auto_delivered,
            tick: Duration::from_millis(100),
            event_capacity: 4096,
        }
    }

    /// The state machine's settings.
    pub(crate) fn machine(&self) -> MachineConfig {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1);
        MachineConfig {
            reconnect: self.backoff,
            max_inflight_sends: self.max_inflight_sends,
            auto_delivered: self.auto_delivered,
            receipt_delay_ms: ms(self.tick),
            request_timeout_ms: ms(self.request_timeout),
            ..MachineConfig::default()
        }
    }
}

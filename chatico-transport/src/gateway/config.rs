//! Gateway limits and timings. Every value is explicit and has a documented default.

use std::time::Duration;

/// Which browser origins may open WebSockets and call the REST API with credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPolicy {
    /// Any origin (only sensible behind another gateway that checks it).
    Any,
    /// Exactly these origins (`scheme://host[:port]`, compared case-insensitively). A request
    /// without an `Origin` header (a native client) is always allowed.
    List(Vec<String>),
}

impl OriginPolicy {
    /// Whether a request carrying `Origin: origin` is allowed.
    pub fn allows(&self, origin: &str) -> bool {
        match self {
            OriginPolicy::Any => true,
            OriginPolicy::List(list) => list
                .iter()
                .any(|o| o.eq_ignore_ascii_case(origin.trim_end_matches('/'))),
        }
    }
}

/// Per-user request budget: a token bucket refilled at `per_second`, holding at most `burst`.
/// Every authenticated REST request and every WebSocket frame takes one token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per second.
    pub per_second: u32,
    /// Most tokens held: the largest burst allowed.
    pub burst: u32,
}

/// Everything the gateway is configured with. See each field for its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Largest WebSocket frame (and message) accepted; larger ones close the connection with
    /// 1009 before anything is processed. Default 64 KiB.
    pub max_frame_bytes: usize,
    /// Largest REST JSON body; larger ones answer 413 `too_large`. Default 64 KiB.
    pub max_body_bytes: usize,
    /// Largest upload (`POST /v1/blobs`). Default 10 MiB.
    pub max_upload_bytes: usize,
    /// After answering 413 to an upload over `max_upload_bytes`, the gateway reads and
    /// discards up to this many more bytes of its body (nothing is kept), for at most
    /// `upload_drain_timeout`, before it lets the connection go: an ordinary HTTP client
    /// sends its whole body before it reads the answer, and would otherwise see a reset
    /// connection instead of the 413 (nginx's "lingering close"). A longer body, or a client
    /// that sent `Expect: 100-continue` (it sends no body after a final answer), gets the
    /// answer and a closed connection at once. 0 disables draining. Default 64 MiB.
    pub upload_drain_bytes: usize,
    /// See `upload_drain_bytes`. Default 10 s.
    pub upload_drain_timeout: Duration,
    /// Outbound frames queued per connection before it counts as a slow consumer and is
    /// closed with 4008. Default 256.
    pub outbound_queue: usize,
    /// Initial capacity of a connection's read buffer, in bytes. Default 1 KiB (it grows for
    /// a large frame, up to `max_frame_bytes`).
    pub read_buffer_bytes: usize,
    /// Most bytes a connection may have written but not yet accepted by the socket. Default
    /// 256 KiB.
    pub max_write_buffer_bytes: usize,
    /// Time allowed between the upgrade and a successful `auth` frame. Default 10 s.
    pub auth_timeout: Duration,
    /// The server pings a connection this often. Default 30 s.
    pub heartbeat_interval: Duration,
    /// A connection from which nothing (not even a pong) arrived for `heartbeat_interval +
    /// heartbeat_timeout` is closed with 4009. Default 10 s.
    pub heartbeat_timeout: Duration,
    /// After this long without new live changes, a connection that delivered some sends a
    /// `cursor` checkpoint. Default 250 ms.
    pub checkpoint_idle: Duration,
    /// A connection also checkpoints after this many live changes. Default 64.
    pub checkpoint_every: usize,
    /// Every subscribed connection re-syncs from its checkpoint this often even when idle, to
    /// recover changes a backplane lost. Default 60 s.
    pub resync_interval: Duration,
    /// Every open connection's session is re-validated against the store this often (one
    /// pass per node over its distinct sessions); a session that was revoked or has expired
    /// closes its connections with 4001. Revocations on this node close them at once, and a
    /// control message carries them to other nodes; this check bounds how long a socket can
    /// outlive its session when that message was lost. Default 60 s.
    pub session_check_interval: Duration,
    /// How often the gateway runs the engine's presence tick
    /// ([`Engine::maintain_presence`](chatico_core::Engine::maintain_presence)): renews this
    /// node's presence lease and reaps dead nodes. Keep it well under the shared tracker's
    /// lease (15 s by default). Default 5 s.
    pub presence_interval: Duration,
    /// How long a closing connection may take to write its close frame, and then to wait
    /// for the client's close reply. Default 5 s.
    pub close_timeout: Duration,
    /// How long a connection closed as a slow consumer (4008) may take to write its close
    /// frame. The frame queues behind the events already in its socket buffers, so the client
    /// reads it only after draining those: it gets this budget of its own, longer than
    /// `close_timeout`, during which the connection is no longer in the hub (no new events,
    /// its queue freed) and holds only its socket and unsent bytes (at most
    /// `max_write_buffer_bytes`). A client that resumes reading within it reads its last
    /// events, then the 4008 close frame; one that reads nothing for longer sees the TCP
    /// connection end without a close frame. Default 30 s.
    pub slow_consumer_close_timeout: Duration,
    /// Page size of the resume catch-up. Default 200.
    pub sync_page: u32,
    /// Which browser origins may connect. Default: none (only non-browser clients).
    pub origins: OriginPolicy,
    /// Per-user request budget. Default 50/s, burst 200.
    pub rate_limit: RateLimit,
    /// Loss and stall detection between nodes (see [`ClusterConfig`]).
    pub cluster: ClusterConfig,
}

/// How a node notices what the backplane lost or stopped delivering (docs/DEPLOYMENT.md).
///
/// - **Loss**: the node reads the store's newest position every `poll_interval`. A position
///   committed that long (`loss_after`) without its envelope arriving is lost: the node asks
///   the store who it concerns and checkpoints only those users' connections here.
/// - **Gaps**: every node publishes a heartbeat every `heartbeat_interval`; a jump in a
///   node's envelope sequence repairs at once and re-checks open sessions.
/// - **Silent stalls**: when nothing arrived (not even its own heartbeats) for
///   `probe_after`, the node publishes a probe to itself; when two probes in a row do not
///   come back within `probe_after` each, it reports `stalled` and resubscribes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClusterConfig {
    /// How often the node publishes a heartbeat. Default 500 ms.
    pub heartbeat_interval: Duration,
    /// How often the node reads the store's newest position. Default 250 ms.
    pub poll_interval: Duration,
    /// How long a committed position may take to arrive before it counts as lost. Default
    /// 1 s.
    pub loss_after: Duration,
    /// Silence before a self-probe, and the time each probe has to come back. Default 1 s.
    pub probe_after: Duration,
    /// Longest wait for the broker when resubscribing. Default 2 s.
    pub resubscribe_timeout: Duration,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        ClusterConfig {
            heartbeat_interval: Duration::from_millis(500),
            poll_interval: Duration::from_millis(250),
            loss_after: Duration::from_secs(1),
            probe_after: Duration::from_secs(1),
            resubscribe_timeout: Duration::from_secs(2),
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            max_frame_bytes: 64 * 1024,
            max_body_bytes: 64 * 1024,
            max_upload_bytes: 10 * 1024 * 1024,
            upload_drain_bytes: 64 * 1024 * 1024,
            upload_drain_timeout: Duration::from_secs(10),
            outbound_queue: 256,
            read_buffer_bytes: 1024,
            max_write_buffer_bytes: 256 * 1024,
            auth_timeout: Duration::from_secs(10),
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(10),
            checkpoint_idle: Duration::from_millis(250),
            checkpoint_every: 64,
            resync_interval: Duration::from_secs(60),
            session_check_interval: Duration::from_secs(60),
            presence_interval: Duration::from_secs(5),
            close_timeout: Duration::from_secs(5),
            slow_consumer_close_timeout: Duration::from_secs(30),
            sync_page: 200,
            origins: OriginPolicy::List(Vec::new()),
            rate_limit: RateLimit {
                per_second: 50,
                burst: 200,
            },
            cluster: ClusterConfig::default(),
        }
    }
}

//! The embeddable gateway: REST under `/v1`, the WebSocket at `/v1/ws`, and the OpenAPI
//! document at `/v1/openapi.json`, over one [`Engine`].
//!
//! ```no_run
//! # async fn run(engine: std::sync::Arc<chatico_core::Engine>) -> chatico_core::Result<()> {
//! use chatico_transport::gateway::{Gateway, GatewayConfig};
//! let gateway = Gateway::builder(engine).config(GatewayConfig::default()).start().await?;
//! let app = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .nest("/chat", gateway.router());
//! # let _ = app; Ok(()) }
//! ```
//!
//! Request flow: persist (the engine's store write), then acknowledge (the HTTP response or
//! the WebSocket `ack`), then fan out: each delivery's event is encoded once, queued at once
//! on this node's own connections through the [`hub::Hub`] (local first: never waiting for,
//! or depending on, a broker), and published as an [`Envelope`] on the [`Backplane`] for the
//! other nodes, whose dispatchers route the same bytes to their connections. A node ignores
//! its own envelopes (by origin).
//!
//! A host that has its own transport calls the [`Engine`] itself and hands each outcome's
//! deliveries to [`Gateway::publish`]; [`Gateway::listen`] gives it a user's live events.
//!
//! Uploads (`POST /v1/blobs`) go to the engine's blob store
//! ([`Engine::with_blob_store`](chatico_core::Engine::with_blob_store)); without one they
//! answer `unavailable`.

mod cluster;
pub mod config;
pub mod error;
pub mod hub;
pub mod limits;
mod openapi;
pub mod push;
mod rest;
mod serve;
mod ws;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use axum::Router;
use chatico_core::engine::Engine;
use chatico_core::ids::UserId;
use chatico_core::ports::{Backplane, EncodedDelivery, Envelope, NodeId, Payload};
use chatico_core::protocol::close_code;
use chatico_core::push::PushSender;
use chatico_core::sync::{Control, Delivery};
use chatico_core::{Error, Result};
use tokio::sync::{Notify, watch};
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::backplane::InProcessBackplane;

pub use config::{GatewayConfig, OriginPolicy, RateLimit};
pub use error::AppError;
pub use openapi::openapi;
pub use push::{PushConfig, PushStats};
pub use serve::ServeConfig;

/// State shared by every handler and connection of one gateway.
pub(crate) struct Shared {
    pub engine: Arc<Engine>,
    pub backplane: Arc<dyn Backplane>,
    /// This node's name on the backplane, its boot epoch and its last envelope's sequence
    /// (held while the envelope is queued, so envelopes leave in sequence order and a
    /// receiver can tell a gap from a race).
    pub node_id: NodeId,
    pub epoch: u64,
    pub seq: tokio::sync::Mutex<u64>,
    /// Loss watcher, stall detection and health.
    pub cluster: cluster::Cluster,
    /// False between a backplane `LinkDown` and the next `LinkUp`.
    pub link_up: AtomicBool,
    pub hub: hub::Hub,
    pub config: GatewayConfig,
    pub rate: limits::RateLimiter,
    pub shutting_down: AtomicBool,
    /// Turns true when shutdown begins (connections still authenticating watch it).
    pub shutdown: watch::Sender<bool>,
    /// WebSocket connection tasks alive, from the upgrade until their close frame was
    /// written (or given up on): shutdown waits for these, not only for the hub's count.
    pub tasks: AtomicUsize,
    /// Notified whenever a connection ends (shutdown waits on it).
    pub conn_ended: Notify,
    /// The push pipeline, when a sender is configured ([`GatewayBuilder::push`]).
    pub push: Option<push::Pusher>,
}

/// Counts one WebSocket connection task in [`Shared::tasks`] while it lives.
pub(crate) struct TaskGuard(Arc<Shared>);

impl TaskGuard {
    pub fn new(shared: Arc<Shared>) -> Self {
        shared.tasks.fetch_add(1, Ordering::SeqCst);
        TaskGuard(shared)
    }
}

impl Drop for TaskGuard {
    fn drop(&mut self) {
        self.0.tasks.fetch_sub(1, Ordering::SeqCst);
        self.0.conn_ended.notify_waiters();
    }
}

impl Shared {
    /// Publishes `payload` in this node's next envelope. A failure is logged, not returned:
    /// what the backplane loses, the other nodes' loss watchers repair.
    async fn send(&self, payload: Payload) {
        let mut seq = self.seq.lock().await;
        *seq += 1;
        let envelope = Envelope {
            origin: self.node_id.clone(),
            epoch: self.epoch,
            seq: *seq,
            payload,
        };
        if let Err(e) = self.backplane.publish(envelope).await {
            tracing::warn!(error = %e, "backplane publish failed; other nodes repair from the store");
        }
    }

    /// Fans deliveries out: each event is encoded once, queued on this node's connections
    /// directly, and published for the other nodes. A backplane failure is logged, not
    /// returned: the change is persisted and acknowledged, and clients recover it by sync.
    pub async fn publish(&self, deliveries: Vec<Delivery>) {
        for d in deliveries {
            if d.recipients.is_empty() {
                continue;
            }
            if let Some(p) = &self.push {
                p.offer(&d);
            }
            let frame = Arc::new(hub::event_frame(&d.event));
            self.hub.dispatch_frame(&d.recipients, &frame);
            if let Some((pos, _)) = &frame.change {
                self.cluster.arrived(*pos);
            }
            let payload = Payload::Delivery(EncodedDelivery {
                recipients: d.recipients,
                change: frame.change.clone(),
                frame: frame.text.clone().into(),
            });
            self.send(payload).await;
        }
    }

    /// Sends controls (a revoked session) to every node through the backplane, and applies
    /// them to this node's connections at once: the local effect never waits for, or
    /// depends on, the backplane. (Applying one twice is harmless: the first close wins.)
    pub async fn control(&self, controls: Vec<Control>) {
        for c in controls {
            self.hub.apply(&c);
            // Lost on the way, it shows as a gap at the other nodes (they re-check their
            // sessions at once), and the periodic session check covers it anyway.
            self.send(Payload::Control(c)).await;
        }
    }

    /// Routes what another node published to this node's connections.
    fn receive(&self, envelope: Envelope) {
        if envelope.origin == self.node_id {
            return; // already delivered locally
        }
        match envelope.payload {
            Payload::Delivery(d) => match Utf8Bytes::try_from(d.frame) {
                Ok(text) => {
                    if let Some((pos, _)) = &d.change {
                        self.cluster.arrived(*pos);
                    }
                    self.hub
                        .dispatch_frame(&d.recipients, &Arc::new(hub::OutFrame { change: d.change, text }));
                }
                Err(e) => {
                    tracing::warn!(error = %e, origin = %envelope.origin, "backplane frame is not UTF-8; ignored")
                }
            },
            Payload::Control(c) => self.hub.apply(&c),
            // Liveness only (the dispatcher tracked the sequence).
            Payload::Heartbeat | Payload::Probe(_) => {}
        }
    }
}

/// A running gateway. Cheap to clone.
#[derive(Clone)]
pub struct Gateway {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Gateway {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Gateway")
            .field("connections", &self.shared.hub.connection_count())
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Configures and starts a [`Gateway`].
pub struct GatewayBuilder {
    engine: Arc<Engine>,
    backplane: Option<Arc<dyn Backplane>>,
    node_id: Option<NodeId>,
    config: GatewayConfig,
    push: Option<(Arc<dyn PushSender>, push::PushConfig)>,
}

impl GatewayBuilder {
    /// Sends push notifications to devices without a live connection through `sender`
    /// (e.g. a [`chatico_core::push::PushRouter`] over the APNs and FCM senders), queued,
    /// collapsed and retried as `config` says. Without it nothing is pushed (devices still
    /// register).
    pub fn push(mut self, sender: Arc<dyn PushSender>, config: push::PushConfig) -> Self {
        self.push = Some((sender, config));
        self
    }

    /// The fan-out backplane (default: an [`InProcessBackplane`], for one node).
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// This node's name on the backplane: unique among the nodes sharing one (default: a
    /// random UUID, new at every start).
    pub fn node_id(mut self, node_id: NodeId) -> Self {
        self.node_id = Some(node_id);
        self
    }

    /// Replaces the gateway configuration (default: [`GatewayConfig::default`]).
    pub fn config(mut self, config: GatewayConfig) -> Self {
        self.config = config;
        self
    }

    /// Subscribes to the backplane and starts the dispatcher task. Needs a tokio runtime.
    pub async fn start(self) -> Result<Gateway> {
        let c = &self.config;
        if c.max_frame_bytes < 1024
            || c.outbound_queue == 0
            || c.checkpoint_every == 0
            || c.sync_page == 0
            || c.session_check_interval.is_zero()
            || c.presence_interval.is_zero()
        {
            return Err(Error::invalid(
                "gateway config",
                "max_frame_bytes >= 1024, outbound_queue, checkpoint_every, sync_page, session_check_interval and presence_interval > 0",
            ));
        }
        let backplane = self
            .backplane
            .unwrap_or_else(|| Arc::new(InProcessBackplane::default()) as Arc<dyn Backplane>);
        let stream = backplane.subscribe().await?;
        let push = self
            .push
            .map(|(sender, config)| push::Pusher::start(self.engine.clone(), sender, config));
        let shared = Arc::new(Shared {
            push,
            rate: limits::RateLimiter::new(self.config.rate_limit, self.engine.clock().clone()),
            hub: hub::Hub::new(self.config.outbound_queue),
            engine: self.engine,
            backplane,
            node_id: self
                .node_id
                .unwrap_or_else(|| NodeId(uuid::Uuid::from_u128(rand::random()).to_string())),
            epoch: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
            seq: tokio::sync::Mutex::new(0),
            cluster: cluster::Cluster::default(),
            link_up: AtomicBool::new(true),
            config: self.config,
            shutting_down: AtomicBool::new(false),
            shutdown: watch::channel(false).0,
            tasks: AtomicUsize::new(0),
            conn_ended: Notify::new(),
        });
        tokio::spawn(cluster::dispatch(Arc::downgrade(&shared), stream));
        tokio::spawn(cluster::watch(Arc::downgrade(&shared)));
        // Every `session_check_interval`: close the connections of sessions no longer live
        // (4001), whichever path revoked them, here or on another node.
        tokio::spawn(every(
            Arc::downgrade(&shared),
            |c| c.session_check_interval,
            |s| async move { close_dead_sessions(&s).await },
        ));
        // The first presence tick registers this node's lease before it serves anyone.
        maintain_presence(&shared).await;
        tokio::spawn(every(
            Arc::downgrade(&shared),
            |c| c.presence_interval,
            |s| async move { maintain_presence(&s).await },
        ));
        Ok(Gateway { shared })
    }
}

/// Closes (4001) this node's connections whose session is no longer live.
pub(crate) async fn close_dead_sessions(s: &Shared) {
    let sessions = s.hub.sessions();
    if sessions.is_empty() {
        return;
    }
    match s.engine.dead_sessions(&sessions).await {
        Ok(dead) => {
            for (user, sid) in sessions.iter().filter(|(_, sid)| dead.contains(sid)) {
                tracing::info!(user = %user, session = %sid, "session no longer live; closing its connections");
                s.hub.close_session(*user, *sid, close_code::UNAUTHORIZED);
            }
        }
        // Fail open until the next tick: a store outage must not drop every socket.
        Err(e) => tracing::warn!(error = %e, "session check failed; retrying at the next interval"),
    }
}

/// Runs `task` every `interval` (read from the config; the first run one interval after the
/// start), ending when the gateway is dropped. A run that overruns delays the next one.
async fn every<F, Fut>(shared: Weak<Shared>, interval: fn(&GatewayConfig) -> Duration, task: F)
where
    F: Fn(Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(interval) = shared.upgrade().map(|s| interval(&s.config)) else {
        return;
    };
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + interval, interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(s) = shared.upgrade() else { return };
        task(s).await;
    }
}

/// One presence tick: the engine renews this node's lease and reaps dead nodes; the
/// presence events that produced are fanned out like any other.
async fn maintain_presence(s: &Shared) {
    if s.shutting_down.load(Ordering::SeqCst) {
        return;
    }
    match s.engine.maintain_presence().await {
        Ok(out) => s.publish(out.deliveries).await,
        Err(e) => tracing::warn!(error = %e, "presence tick failed; presence is this node's own view until it works"),
    }
}

impl Gateway {
    /// A builder over `engine` with the default config and an in-process backplane.
    pub fn builder(engine: Arc<Engine>) -> GatewayBuilder {
        GatewayBuilder {
            engine,
            backplane: None,
            node_id: None,
            config: GatewayConfig::default(),
            push: None,
        }
    }

    /// The gateway's routes (`/v1/...`), ready to serve or to nest under any path. Serve
    /// with `into_make_service_with_connect_info::<SocketAddr>()` so OTP rate limits can
    /// key on the client address.
    pub fn router(&self) -> Router {
        rest::router(self.shared.clone())
    }

    /// The engine this gateway drives.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.shared.engine
    }

    /// The configuration the gateway runs with.
    pub fn config(&self) -> &GatewayConfig {
        &self.shared.config
    }

    /// Fans out deliveries from an engine call a host made itself (after acknowledging it
    /// on the host's own transport).
    pub async fn publish(&self, deliveries: Vec<Delivery>) {
        self.shared.publish(deliveries).await;
    }

    /// Acts on the controls of an engine call a host made itself (e.g. its own logout):
    /// applies them here and sends them to every node. See [`Control`].
    pub async fn control(&self, controls: Vec<Control>) {
        self.shared.control(controls).await;
    }

    /// Live events for `user` on this node, for a host's own transport (SSE, long polling...).
    /// Each item is the JSON text of an `event` server frame (docs/PROTOCOL.md). The
    /// listener counts as a connection for fan-out (a full queue ends it like a slow
    /// WebSocket) but not for presence. Dropping it unregisters it.
    pub fn listen(&self, user: UserId) -> Listener {
        let (reg, _) = self.shared.hub.register(user, None);
        Listener {
            shared: self.shared.clone(),
            user,
            reg,
        }
    }

    /// This node's name on the backplane.
    pub fn node_id(&self) -> &NodeId {
        &self.shared.node_id
    }

    /// Whether the backplane link is up (false between a reported loss and its recovery).
    pub fn backplane_link_up(&self) -> bool {
        self.shared.link_up.load(Ordering::SeqCst)
    }

    /// Counters of the push pipeline (all zero without [`GatewayBuilder::push`]).
    pub fn push_stats(&self) -> push::PushStats {
        self.shared.push.as_ref().map(push::Pusher::stats).unwrap_or_default()
    }

    /// This node's health: backplane link, silent stalls, repairs (what `GET /v1/health`
    /// answers).
    pub fn health(&self) -> chatico_core::protocol::Health {
        self.shared.cluster.health(&self.shared)
    }

    /// Open WebSocket connections and listeners on this node.
    pub fn connection_count(&self) -> usize {
        self.shared.hub.connection_count()
    }

    /// Graceful shutdown: retires this node's presence (no user goes offline because this
    /// node stops; see [`Engine::retire_presence`]), refuses new WebSocket handshakes, asks every connection (also
    /// those still authenticating) to close with 1001 "going away", and waits until each has
    /// written its close frame and ended — at most `close_timeout` plus a second (a close
    /// frame gets `close_timeout` to be written, and as long again for the client's reply).
    /// Returns how many connections were still open at the deadline. Call it before the
    /// runtime stops: a connection task dropped with its runtime sends no close frame.
    pub async fn shutdown(&self) -> usize {
        let s = &self.shared;
        s.shutting_down.store(true, Ordering::SeqCst);
        // Before any socket closes: with a shared presence tracker, the disconnects that
        // follow make no one offline (their clients reconnect to another node).
        if let Err(e) = s.engine.retire_presence().await {
            tracing::warn!(error = %e, "presence retirement failed");
        }
        s.shutdown.send_replace(true);
        s.hub.close_all(close_code::GOING_AWAY);
        let deadline = tokio::time::Instant::now() + 2 * s.config.close_timeout + Duration::from_secs(1);
        let open = || s.hub.connection_count().max(s.tasks.load(Ordering::SeqCst));
        loop {
            let ended = s.conn_ended.notified();
            if open() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                return open();
            }
        }
    }
}

/// A user's live events on this node; see [`Gateway::listen`].
pub struct Listener {
    shared: Arc<Shared>,
    user: UserId,
    reg: hub::Registration,
}

impl Listener {
    /// The next event frame (JSON text), or `None` once the listener was closed (its queue
    /// overflowed, or the gateway shut down).
    pub async fn next(&mut self) -> Option<String> {
        tokio::select! {
            biased;
            _ = self.reg.ctl.closed() => None,
            f = self.reg.rx.recv() => f.map(|f| f.text.as_str().to_owned()),
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shared.hub.unregister(self.user, self.reg.id);
        self.shared.conn_ended.notify_waiters();
    }
}

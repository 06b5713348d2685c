//! The connection task: one WebSocket at a time, reconnecting with backoff until stopped.
//!
//! Per connection: open the socket (bearer token + subprotocol), wait for `ready`, subscribe
//! from the durable cursor, apply what arrives (changes once each, through
//! [`chatico_core::client::SyncState`]), move the cursor on `cursor` checkpoints, and send
//! the outbox in order with the original `client_msg_id`s (a bounded number in flight). When
//! the socket dies, every request waiting on it fails with `unavailable`, the outbox keeps its
//! messages, and the next connection resends them.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chatico_core::client::Outbox;
use chatico_core::error::{Error, Result};
use chatico_core::ids::{ClientMsgId, ConversationId};
use chatico_core::model::Message;
use chatico_core::protocol::{AckResult, ClientFrame, ClientRequest, SUBPROTOCOL_JSON, ServerFrame, close_code};
use chatico_core::sync::{ChangeKind, EphemeralSnapshot, Event};
use futures::{SinkExt, StreamExt};
use rand::SeedableRng;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as WsMessage};

use super::rest::{access_token, paths, refresh_after};
use super::{ClientEvent, ConnectionState, Inner, clamp, lock};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Sends in flight right after a (re)connect; see `Connection::window`.
const INITIAL_SEND_WINDOW: usize = 4;

/// Changes per `sync` page of the client-driven catch-up before subscribing.
const CATCH_UP_PAGE: u32 = 50;

/// What the client API asks of the live connection.
pub(crate) enum Command {
    /// Send this request and hand its answer back.
    Request {
        request: ClientRequest,
        reply: oneshot::Sender<Result<AckResult>>,
    },
    /// The outbox changed: send what is not in flight yet.
    Flush,
}

/// How a connection ended.
enum Ended {
    /// `disconnect()` was called.
    Stopped,
    /// The link was lost; reconnect.
    Lost {
        reason: String,
        /// It subscribed successfully (so the backoff starts over).
        healthy: bool,
        /// The server refused the token: refresh before reconnecting.
        unauthorized: bool,
    },
}

/// Runs until `stop` turns true, or the session can no longer be refreshed.
pub(crate) async fn run(inner: Arc<Inner>, mut stop: watch::Receiver<bool>) {
    let mut rng = rand::rngs::StdRng::from_entropy();
    let mut attempt: u32 = 0;
    let mut force_refresh = false;
    loop {
        if *stop.borrow() {
            break;
        }
        inner.set_state(ConnectionState::Connecting { attempt });
        let token = if force_refresh {
            let stale = inner
                .session
                .lock()
                .await
                .as_ref()
                .map(|s| s.access_token.clone())
                .unwrap_or_default();
            refresh_after(&inner, &stale).await
        } else {
            access_token(&inner).await
        };
        let reason = match token {
            Err(Error::Unauthorized { .. }) => {
                inner.set_state(ConnectionState::LoggedOut);
                return;
            }
            Err(e) => format!("token: {e}"),
            Ok(token) => match open(&inner, &token).await {
                Err(e) => format!("connect: {e}"),
                Ok(ws) => match Connection::new(inner.clone()).run(ws, &mut stop).await {
                    Ended::Stopped => break,
                    Ended::Lost {
                        reason,
                        healthy,
                        unauthorized,
                    } => {
                        if healthy {
                            attempt = 0;
                        }
                        force_refresh = unauthorized;
                        reason
                    }
                },
            },
        };
        let delay = inner.config.backoff.delay(attempt, &mut rng);
        tracing::debug!(%reason, attempt, delay_ms = delay.as_millis() as u64, "reconnecting");
        inner.set_state(ConnectionState::Reconnecting {
            attempt,
            delay_ms: delay.as_millis() as u64,
            reason,
        });
        attempt = attempt.saturating_add(1);
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = inner.reconnect_now.notified() => {}
            _ = stop.changed() => {}
        }
    }
    *lock(&inner.link) = None;
    inner.set_state(ConnectionState::Disconnected);
}

/// The WebSocket URL derived from the base URL.
fn ws_url(base: &str) -> Result<String> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else {
        return Err(Error::invalid("base_url", "must start with http:// or https://"));
    };
    Ok(format!("{rest}{}", paths::WS))
}

async fn open(inner: &Inner, token: &str) -> Result<Ws> {
    let mut req = ws_url(&inner.config.base_url)?
        .into_client_request()
        .map_err(|e| Error::invalid("base_url", e.to_string()))?;
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL_JSON));
    h.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::internal("token is not a header value"))?,
    );
    let connect = tokio_tungstenite::connect_async(req);
    match tokio::time::timeout(inner.config.request_timeout, connect).await {
        Err(_) => Err(Error::unavailable("websocket handshake timed out")),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) if resp.status() == 401 => {
            Err(Error::unauthorized("websocket handshake refused the token"))
        }
        Ok(Err(e)) => Err(Error::unavailable(format!("websocket: {e}"))),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

/// What a frame id in flight is waiting for.
enum Pending {
    /// A page of the catch-up that precedes the subscription.
    CatchUp,
    Subscribe {
        first: bool,
    },
    Send {
        client_msg_id: ClientMsgId,
    },
    /// An automatic delivery receipt (its answer only matters for logging).
    AutoReceipt,
    Request(oneshot::Sender<Result<AckResult>>),
}

/// One WebSocket connection's state.
struct Connection {
    inner: Arc<Inner>,
    pending: HashMap<String, Pending>,
    /// Outbox messages sent on this connection and not answered yet.
    inflight: HashSet<ClientMsgId>,
    /// How many sends may be in flight now: starts small on every connection and doubles
    /// with each acknowledgement up to `max_inflight_sends` (slow start), so a link that
    /// keeps dying still moves the outbox forward instead of resending a full window each
    /// time.
    window: usize,
    /// After a transient send failure, the outbox waits until then.
    sends_paused_until: Option<Instant>,
    /// Highest seq per conversation to acknowledge as delivered.
    delivered: HashMap<ConversationId, i64>,

    subscribed: bool,
    last_rx: Instant,
    /// Silence longer than this means the link is dead (from `ready`).
    silence_limit: Duration,
    unauthorized: bool,
}

impl Connection {
    fn new(inner: Arc<Inner>) -> Self {
        Connection {
            inner,
            pending: HashMap::new(),
            inflight: HashSet::new(),
            window: INITIAL_SEND_WINDOW,
            sends_paused_until: None,
            delivered: HashMap::new(),
            subscribed: false,
            last_rx: Instant::now(),
            silence_limit: Duration::from_secs(60),
            unauthorized: false,
        }
    }

    async fn run(mut self, ws: Ws, stop: &mut watch::Receiver<bool>) -> Ended {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let (mut sink, mut stream) = ws.split();
        let mut tick = tokio::time::interval(clamp(self.inner.config.tick));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let reason = loop {
            let out: Vec<ClientFrame> = tokio::select! {
                msg = stream.next() => {
                    self.last_rx = Instant::now();
                    match msg {
                        None => break "the server closed the stream".to_owned(),
                        Some(Err(e)) => break format!("websocket: {e}"),
                        Some(Ok(WsMessage::Text(t))) => match serde_json::from_str::<ServerFrame>(t.as_str()) {
                            Ok(frame) => match self.on_frame(frame, &tx) {
                                Ok(out) => out,
                                Err(reason) => break reason,
                            },
                            Err(e) => {
                                tracing::warn!(error = %e, "unreadable server frame");
                                Vec::new()
                            }
                        },
                        Some(Ok(WsMessage::Close(frame))) => {
                            let code = frame.as_ref().map(|f| u16::from(f.code));
                            if code == Some(close_code::UNAUTHORIZED) {
                                self.unauthorized = true;
                            }
                            break format!("closed by the server ({code:?})");
                        }
                        Some(Ok(_)) => Vec::new(),
                    }
                }
                cmd = rx.recv() => match cmd {
                    Some(Command::Request { request, reply }) => {
                        let id = self.inner.next_frame_id();
                        self.pending.insert(id.clone(), Pending::Request(reply));
                        vec![ClientFrame { id, request }]
                    }
                    Some(Command::Flush) => self.flush_outbox(),
                    None => Vec::new(),
                },
                _ = tick.tick() => {
                    if self.last_rx.elapsed() > self.silence_limit {
                        break "the server went silent".to_owned();
                    }
                    self.pending.retain(|_, p| !matches!(p, Pending::Request(r) if r.is_closed()));
                    let mut out = self.delivery_receipts();
                    if self.sends_paused_until.is_some_and(|t| t <= Instant::now()) {
                        self.sends_paused_until = None;
                        out.extend(self.flush_outbox());
                    }
                    out
                }
                _ = stop.changed() => {
                    let _ = sink
                        .send(WsMessage::Close(Some(CloseFrame {
                            code: CloseCode::Normal,
                            reason: "client disconnect".into(),
                        })))
                        .await;
                    self.shutdown();
                    return Ended::Stopped;
                }
            };
            if out.is_empty() {
                continue;
            }
            if let Err(e) = send_frames(&mut sink, out).await {
                break format!("websocket write: {e}");
            }
        };
        self.shutdown();
        tracing::debug!(%reason, "connection lost");
        Ended::Lost {
            reason,
            healthy: self.subscribed,
            unauthorized: self.unauthorized,
        }
    }

    /// Drops the link: waiting requests fail (their senders are dropped), the outbox stays.
    fn shutdown(&mut self) {
        // Held messages stay held: the next connection's catch-up fills their gaps.
        *lock(&self.inner.link) = None;
        self.pending.clear();
        self.inflight.clear();
    }

    /// Handles one server frame; returns the frames to send in response, or why to drop the
    /// connection.
    fn on_frame(
        &mut self,
        frame: ServerFrame,
        tx: &mpsc::UnboundedSender<Command>,
    ) -> std::result::Result<Vec<ClientFrame>, String> {
        match frame {
            ServerFrame::Ready(r) => {
                self.silence_limit = Duration::from_millis(r.heartbeat_ms.saturating_add(r.heartbeat_timeout_ms))
                    .max(Duration::from_secs(1));
                let resume = {
                    let st = lock(&self.inner.state);
                    st.durable.subscribed_before.then(|| st.durable.sync.cursor())
                };
                Ok(vec![match resume {
                    // Catch up in small pages first, moving the durable cursor after each: a
                    // link that dies every few kilobytes still makes progress, where one
                    // server-sized catch-up could never get through.
                    Some(since) => self.catch_up_frame(since),
                    None => self.subscribe_frame(),
                }])
            }
            ServerFrame::Ack { id, result } => Ok(self.on_answer(&id, Ok(result), tx)),
            ServerFrame::Error { id: Some(id), error } => Ok(self.on_answer(&id, Err(error.into()), tx)),
            ServerFrame::Error { id: None, error } => {
                tracing::warn!(code = %error.code, message = %error.message, "the server rejected a frame");
                Ok(Vec::new())
            }
            ServerFrame::Event { event } => {
                self.on_event(event);
                Ok(Vec::new())
            }
            ServerFrame::Cursor { pos, caught_up } => {
                self.inner.release_held();
                lock(&self.inner.state).durable.sync.checkpoint(pos);
                if caught_up && self.subscribed {
                    self.inner.set_state(ConnectionState::Connected);
                }
                self.inner.emit(ClientEvent::Synced { cursor: pos, caught_up });
                Ok(Vec::new())
            }
        }
    }

    fn catch_up_frame(&mut self, since: chatico_core::sync::SyncCursor) -> ClientFrame {
        let id = self.inner.next_frame_id();
        self.pending.insert(id.clone(), Pending::CatchUp);
        ClientFrame {
            id,
            request: ClientRequest::Sync {
                since,
                limit: Some(CATCH_UP_PAGE),
            },
        }
    }

    fn subscribe_frame(&mut self) -> ClientFrame {
        let (since, first) = {
            let st = lock(&self.inner.state);
            let first = !st.durable.subscribed_before;
            (if first { None } else { Some(st.durable.sync.cursor()) }, first)
        };
        let id = self.inner.next_frame_id();
        self.pending.insert(id.clone(), Pending::Subscribe { first });
        ClientFrame {
            id,
            request: ClientRequest::Subscribe { since },
        }
    }

    fn on_answer(
        &mut self,
        id: &str,
        result: Result<AckResult>,
        tx: &mpsc::UnboundedSender<Command>,
    ) -> Vec<ClientFrame> {
        let Some(p) = self.pending.remove(id) else {
            tracing::debug!(id, "answer to an unknown frame");
            return Vec::new();
        };
        match (p, result) {
            (Pending::CatchUp, Ok(AckResult::Sync { page, .. })) => {
                for change in page.changes {
                    self.on_event(Event::Change(change));
                }
                // The page is applied in full: its `next` is a safe resume point.
                lock(&self.inner.state).durable.sync.checkpoint(page.next);
                if page.limited {
                    vec![self.catch_up_frame(page.next)]
                } else {
                    vec![self.subscribe_frame()]
                }
            }
            (Pending::CatchUp, other) => {
                tracing::warn!(?other, "catch-up refused; subscribing from the cursor");
                if let Err(Error::Unauthorized { .. }) = other {
                    self.unauthorized = true;
                }
                vec![self.subscribe_frame()]
            }
            (Pending::Subscribe { first }, Ok(AckResult::Subscribe { snapshot })) => {
                self.subscribed = true;
                self.apply_snapshot(&snapshot);
                lock(&self.inner.state).durable.subscribed_before = true;
                *lock(&self.inner.link) = Some(tx.clone());
                self.inner.set_state(ConnectionState::Syncing);
                if first {
                    // A first subscription starts from now: the list comes from REST.
                    self.inner.spawn_reload();
                }
                self.flush_outbox()
            }
            (Pending::Subscribe { .. }, other) => {
                tracing::warn!(?other, "subscribe refused");
                if let Err(Error::Unauthorized { .. }) = other {
                    self.unauthorized = true;
                }
                Vec::new()
            }
            (Pending::Send { client_msg_id }, r) => {
                self.inflight.remove(&client_msg_id);
                match r {
                    Ok(AckResult::Send { message }) => {
                        self.window = (self.window * 2).min(self.inner.config.max_inflight_sends.max(1));
                        self.on_sent(message)
                    }
                    Ok(other) => tracing::warn!(?other, "unexpected answer to send"),
                    Err(e) => self.on_send_error(&client_msg_id, e),
                }
                if self.sends_paused_until.is_none() {
                    self.flush_outbox()
                } else {
                    Vec::new()
                }
            }
            (Pending::AutoReceipt, r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "delivery receipt refused");
                }
                Vec::new()
            }
            (Pending::Request(reply), r) => {
                if let Err(Error::Unauthorized { .. }) = &r {
                    self.unauthorized = true;
                }
                let _ = reply.send(r);
                Vec::new()
            }
        }
    }

    fn on_sent(&mut self, message: Message) {
        let conv = message.conversation_id;
        let (acked, update) = {
            let mut st = lock(&self.inner.state);
            let acked = st.durable.outbox.acknowledge(&message);
            let update = st
                .view
                .as_mut()
                .and_then(|v| v.load_messages(conv, vec![message.clone()]));
            (acked, update)
        };
        if acked.is_some() {
            self.inner.emit(ClientEvent::Sent {
                client_msg_id: message.client_msg_id.clone(),
                message,
            });
            if let Some(u) = update {
                self.inner.emit(ClientEvent::View(u));
            }
        }
    }

    fn on_send_error(&mut self, client_msg_id: &str, error: Error) {
        let dropped = lock(&self.inner.state).durable.outbox.reject(client_msg_id, &error);
        if dropped.is_some() {
            tracing::info!(client_msg_id, error = %error, "send refused for good");
            self.inner.emit(ClientEvent::SendFailed {
                client_msg_id: client_msg_id.to_owned(),
                error,
            });
            return;
        }
        let wait = match &error {
            Error::RateLimited { retry_after_ms } => Duration::from_millis(*retry_after_ms),
            Error::Unauthorized { .. } => {
                // The token expired mid-connection: reconnect with a fresh one.
                self.unauthorized = true;
                Duration::from_secs(1)
            }
            _ => Duration::from_secs(1),
        };
        tracing::debug!(client_msg_id, error = %error, "send failed for now; retrying");
        let until = Instant::now() + clamp(wait);
        self.sends_paused_until = Some(self.sends_paused_until.map_or(until, |t| t.max(until)));
    }

    fn on_event(&mut self, event: Event) {
        let mut emitted = Vec::new();
        let mut reload = false;
        // For a new message: (conversation, seq, the view's last seq before it).
        let mut ordered = None;
        {
            let mut st = lock(&self.inner.state);
            let st = &mut *st;
            let me = st.view.as_ref().map(|v| v.me());
            if let Event::Change(c) = &event {
                if !st.durable.sync.accept_change(c) {
                    return;
                }
                if let ChangeKind::Message { message } = &c.kind {
                    let conv = message.conversation_id;
                    let before = st
                        .view
                        .as_ref()
                        .and_then(|v| v.conversation(conv))
                        .map(|v| v.conversation.last_seq);
                    ordered = Some((conv, message.seq, before));
                    if let Some(me) = me
                        && message.sender_id != me
                        && self.inner.config.auto_delivered
                    {
                        let e = self.delivered.entry(conv).or_insert(0);
                        *e = (*e).max(message.seq);
                    }
                }
            }
            let updates = st.view.as_mut().map(|v| v.apply_event(&event)).unwrap_or_default();
            for u in updates {
                if matches!(u, chatico_core::client::ViewUpdate::ConversationUnknown { .. }) {
                    reload = true;
                }
                emitted.push(ClientEvent::View(u));
            }
        }
        let head = match event {
            Event::Change(c) => ClientEvent::Change(c),
            other => ClientEvent::Ephemeral(other),
        };
        emitted.insert(0, head);
        match ordered {
            Some((conv, seq, Some(before))) => self.deliver_in_order(conv, seq, before, emitted),
            _ => {
                for e in emitted {
                    self.inner.emit(e);
                }
            }
        }
        if reload {
            self.inner.spawn_reload();
        }
    }

    /// Reports messages to the app in seq order per conversation. A message that arrives
    /// ahead of a gap (the missing one was committed first but is still on its way, e.g. its
    /// live fan-out died with its sender's connection and the next checkpoint brings it) is
    /// held until the gap fills, until the next `cursor` checkpoint (which covers every
    /// change committed before it), or until the connection ends — so a gap that will never
    /// fill (a message not visible to this user) delays, never loses, what follows.
    fn deliver_in_order(&mut self, conv: ConversationId, seq: i64, before: i64, events: Vec<ClientEvent>) {
        let ready = lock(&self.inner.reorder).offer(conv, seq, before, events);
        for e in ready {
            self.inner.emit(e);
        }
    }

    fn apply_snapshot(&self, snapshot: &EphemeralSnapshot) {
        let updates = self.inner.with_view(|v| v.apply_snapshot(snapshot)).unwrap_or_default();
        for u in updates {
            self.inner.emit(ClientEvent::View(u));
        }
    }

    /// The outbox messages to send now: oldest first, not already in flight, within the
    /// in-flight bound. Nothing before the subscription or while sends are paused.
    fn flush_outbox(&mut self) -> Vec<ClientFrame> {
        if !self.subscribed || self.sends_paused_until.is_some() {
            return Vec::new();
        }
        let room = self
            .window
            .min(self.inner.config.max_inflight_sends.max(1))
            .saturating_sub(self.inflight.len());
        if room == 0 {
            return Vec::new();
        }
        let batch: Vec<_> = {
            let mut st = lock(&self.inner.state);
            let outbox: &mut Outbox = &mut st.durable.outbox;
            let batch: Vec<_> = outbox
                .pending()
                .iter()
                .filter(|p| !self.inflight.contains(&p.client_msg_id))
                .take(room)
                .cloned()
                .collect();
            for p in &batch {
                outbox.mark_attempt(&p.client_msg_id);
            }
            batch
        };
        batch
            .into_iter()
            .map(|p| {
                let id = self.inner.next_frame_id();
                self.inflight.insert(p.client_msg_id.clone());
                self.pending.insert(
                    id.clone(),
                    Pending::Send {
                        client_msg_id: p.client_msg_id.clone(),
                    },
                );
                ClientFrame {
                    id,
                    request: ClientRequest::Send {
                        conversation_id: p.conversation_id,
                        client_msg_id: p.client_msg_id,
                        content: p.content,
                        reply_to_seq: p.reply_to_seq,
                    },
                }
            })
            .collect()
    }

    /// Coalesced automatic delivery receipts.
    fn delivery_receipts(&mut self) -> Vec<ClientFrame> {
        if !self.subscribed {
            return Vec::new();
        }
        self.delivered
            .drain()
            .map(|(conv, seq)| {
                let id = self.inner.next_frame_id();
                self.pending.insert(id.clone(), Pending::AutoReceipt);
                ClientFrame {
                    id,
                    request: ClientRequest::Receipt {
                        conversation_id: conv,
                        delivered_seq: Some(seq),
                        read_seq: None,
                    },
                }
            })
            .collect()
    }
}

async fn send_frames<S>(sink: &mut S, frames: Vec<ClientFrame>) -> std::result::Result<(), String>
where
    S: futures::Sink<WsMessage, Error = tokio_tungstenite::tungstenite::Error> + Unpin,
{
    for f in frames {
        let text = serde_json::to_string(&f).map_err(|e| e.to_string())?;
        sink.feed(WsMessage::text(text)).await.map_err(|e| e.to_string())?;
    }
    sink.flush().await.map_err(|e| e.to_string())
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
            ws_url("https://chat.test/api/").ok(),
            Some("wss://chat.test/api/v1/ws".into())
        );
        assert!(ws_url("ftp://x").is_err());
    }
}

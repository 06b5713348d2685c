//! The connection driver: one WebSocket at a time, reconnecting with backoff until stopped.
//!
//! The same behaviour as the native client's connection task, on the browser's event loop:
//! open the socket (subprotocol `chatico.v1.json`; a browser cannot set `Authorization` on a
//! WebSocket, so the first frame is `auth`), wait for `ready`, subscribe from the durable
//! cursor, apply what arrives (each change once, through [`SyncState`]), move the cursor on
//! `cursor` checkpoints, send the outbox in order with the original `client_msg_id`s (a
//! bounded number in flight), and acknowledge delivery automatically. When the socket dies,
//! waiting requests fail with `unavailable`, the outbox keeps its messages and the next
//! connection resends them.
//!
//! Everything reaches the driver through one queue of [`Input`]s: socket callbacks, timers,
//! API requests. Events of an older socket carry an older `conn` number and are ignored.
//!
//! [`SyncState`]: chatico_core::client::SyncState

use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use chatico_core::client::ViewUpdate;
use chatico_core::error::{Error, Result};
use chatico_core::ids::{ClientMsgId, ConversationId};
use chatico_core::model::Message;
use chatico_core::protocol::{AckResult, ClientFrame, ClientRequest, SUBPROTOCOL_JSON, ServerFrame, close_code};
use chatico_core::sync::{ChangeKind, EphemeralSnapshot, Event};
use futures::StreamExt;
use futures::channel::mpsc::{UnboundedReceiver, UnboundedSender};
use futures::channel::oneshot;

use crate::inner::Inner;
use crate::js::{self, Interval, now_ms};
use crate::rest;
use crate::socket::{Socket, SocketEvent};
use crate::types::ws_url;
use crate::types::{ClientEvent, ConnectionState};

/// Everything the driver reacts to.
pub(crate) enum Input {
    Socket {
        conn: u64,
        event: SocketEvent,
    },
    /// Send this request on the live connection and hand its answer back.
    Request {
        request: ClientRequest,
        reply: oneshot::Sender<Result<AckResult>>,
    },
    /// The outbox changed.
    Flush,
    /// The periodic tick of connection `conn`.
    Tick {
        conn: u64,
    },
    /// Timer `timer` fired.
    Wake {
        timer: u64,
    },
    /// Skip the backoff wait.
    ReconnectNow,
    /// Close and stop.
    Stop,
}

/// How a connection ended.
enum Ended {
    Stopped,
    Lost {
        reason: String,
        healthy: bool,
        unauthorized: bool,
    },
}

/// Runs until [`Input::Stop`] or until the session can no longer be refreshed.
pub(crate) async fn run(inner: Rc<Inner>, id: u64, tx: UnboundedSender<Input>, mut rx: UnboundedReceiver<Input>) {
    let mut attempt: u32 = 0;
    let mut force_refresh = false;
    let mut conn_seq: u64 = 0;
    let mut timer_seq: u64 = 0;
    let mut logged_out = false;
    'outer: loop {
        inner.set_state(ConnectionState::Connecting { attempt });
        let token = if force_refresh {
            let stale = inner
                .session
                .borrow()
                .as_ref()
                .map(|s| s.access_token.clone())
                .unwrap_or_default();
            rest::refresh_after(&inner, &stale).await
        } else {
            rest::access_token(&inner).await
        };
        let reason = match token {
            Err(Error::Unauthorized { .. }) => {
                logged_out = true;
                break;
            }
            Err(e) => format!("token: {e}"),
            Ok(token) => {
                conn_seq += 1;
                let conn = Connection::new(inner.clone(), conn_seq, tx.clone());
                match conn.run(&token, &mut rx).await {
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
                }
            }
        };
        let delay = inner.options.backoff_ms(attempt, js::random());
        tracing::debug!(%reason, attempt, delay, "reconnecting");
        inner.set_state(ConnectionState::Reconnecting {
            attempt,
            delay_ms: delay,
            reason,
        });
        attempt = attempt.saturating_add(1);
        timer_seq += 1;
        let timer = timer_seq;
        let t = tx.clone();
        js::after(delay, move || {
            let _ = t.unbounded_send(Input::Wake { timer });
        });
        loop {
            match rx.next().await {
                None | Some(Input::Stop) => break 'outer,
                Some(Input::Wake { timer: t }) if t == timer => break,
                Some(Input::ReconnectNow) => break,
                Some(Input::Request { reply, .. }) => {
                    let _ = reply.send(Err(Error::unavailable("not connected")));
                }
                Some(_) => {}
            }
        }
    }
    inner.link_up.set(false);
    {
        let mut d = inner.driver.borrow_mut();
        if d.as_ref().is_some_and(|(i, _)| *i == id) {
            *d = None;
        }
    }
    inner.set_state(if logged_out {
        ConnectionState::LoggedOut
    } else {
        ConnectionState::Disconnected
    });
}

/// What a frame id in flight is waiting for.
enum Pending {
    Auth,
    Subscribe { first: bool },
    Send { client_msg_id: ClientMsgId },
    AutoReceipt,
    Ping,
    Request(oneshot::Sender<Result<AckResult>>),
}

/// One WebSocket connection's state.
struct Connection {
    inner: Rc<Inner>,
    id: u64,
    tx: UnboundedSender<Input>,
    pending: HashMap<String, Pending>,
    inflight: HashSet<ClientMsgId>,
    /// After a transient send failure, the outbox waits until then (ms).
    sends_paused_until: Option<i64>,
    /// Highest seq per conversation to acknowledge as delivered.
    delivered: HashMap<ConversationId, i64>,
    opened: bool,
    subscribed: bool,
    started: i64,
    last_rx: i64,
    /// The server's heartbeat period and grace (from `ready`). The browser answers the
    /// server's WebSocket pings by itself without telling the page, so the client sends an
    /// application `ping` when the link has been quiet for a period.
    heartbeat_ms: i64,
    silence_limit_ms: i64,
    ping_out: bool,
    unauthorized: bool,
}

impl Connection {
    fn new(inner: Rc<Inner>, id: u64, tx: UnboundedSender<Input>) -> Self {
        let now = now_ms();
        Connection {
            inner,
            id,
            tx,
            pending: HashMap::new(),
            inflight: HashSet::new(),
            sends_paused_until: None,
            delivered: HashMap::new(),
            opened: false,
            subscribed: false,
            started: now,
            last_rx: now,
            heartbeat_ms: 30_000,
            silence_limit_ms: 60_000,
            ping_out: false,
            unauthorized: false,
        }
    }

    fn lost(&self, reason: String) -> Ended {
        Ended::Lost {
            reason,
            healthy: self.subscribed,
            unauthorized: self.unauthorized,
        }
    }

    async fn run(mut self, token: &str, rx: &mut UnboundedReceiver<Input>) -> Ended {
        let url = match ws_url(&self.inner.base_url) {
            Ok(u) => u,
            Err(e) => return self.lost(format!("connect: {e}")),
        };
        let socket = match Socket::open(&url, SUBPROTOCOL_JSON, self.id, &self.tx) {
            Ok(s) => s,
            Err(e) => return self.lost(format!("connect: {e}")),
        };
        let t = self.tx.clone();
        let conn = self.id;
        let _tick = Interval::new(self.inner.options.tick_ms, move || {
            let _ = t.unbounded_send(Input::Tick { conn });
        });
        let ended = loop {
            let Some(input) = rx.next().await else {
                break Ended::Stopped;
            };
            let out: Vec<ClientFrame> = match input {
                Input::Socket { conn, .. } if conn != self.id => continue,
                Input::Socket { event, .. } => {
                    self.last_rx = now_ms();
                    match event {
                        SocketEvent::Open => {
                            self.opened = true;
                            let id = self.inner.next_frame_id();
                            self.pending.insert(id.clone(), Pending::Auth);
                            vec![ClientFrame {
                                id,
                                request: ClientRequest::Auth {
                                    token: token.to_owned(),
                                },
                            }]
                        }
                        SocketEvent::Text(t) => match serde_json::from_str::<ServerFrame>(&t) {
                            Ok(frame) => self.on_frame(frame),
                            Err(e) => {
                                tracing::warn!(error = %e, "unreadable server frame");
                                Vec::new()
                            }
                        },
                        SocketEvent::Closed { code, reason } => {
                            if code == close_code::UNAUTHORIZED {
                                self.unauthorized = true;
                            }
                            break self.lost(format!("closed ({code} {reason})"));
                        }
                    }
                }
                Input::Request { request, reply } => {
                    if !self.subscribed {
                        let _ = reply.send(Err(Error::unavailable("not connected")));
                        continue;
                    }
                    let id = self.inner.next_frame_id();
                    self.pending.insert(id.clone(), Pending::Request(reply));
                    vec![ClientFrame { id, request }]
                }
                Input::Flush => self.flush_outbox(),
                Input::Tick { conn } if conn == self.id => {
                    let now = now_ms();
                    if !self.opened && now - self.started > self.inner.options.request_timeout_ms as i64 {
                        break self.lost("websocket handshake timed out".into());
                    }
                    if now - self.last_rx > self.silence_limit_ms {
                        break self.lost("the server went silent".into());
                    }
                    self.pending
                        .retain(|_, p| !matches!(p, Pending::Request(r) if r.is_canceled()));
                    let mut out = self.delivery_receipts();
                    if self.subscribed && !self.ping_out && now - self.last_rx > self.heartbeat_ms {
                        self.ping_out = true;
                        let id = self.inner.next_frame_id();
                        self.pending.insert(id.clone(), Pending::Ping);
                        out.push(ClientFrame {
                            id,
                            request: ClientRequest::Ping,
                        });
                    }
                    if self.sends_paused_until.is_some_and(|t| t <= now) {
                        self.sends_paused_until = None;
                        out.extend(self.flush_outbox());
                    }
                    out
                }
                Input::Tick { .. } | Input::Wake { .. } | Input::ReconnectNow => continue,
                Input::Stop => {
                    socket.close(close_code::NORMAL, "client disconnect");
                    break Ended::Stopped;
                }
            };
            if let Err(e) = send_frames(&socket, out) {
                break self.lost(format!("websocket write: {e}"));
            }
        };
        self.shutdown();
        ended
    }

    /// Drops the link: waiting requests fail (their senders are dropped), the outbox stays.
    fn shutdown(&mut self) {
        self.inner.link_up.set(false);
        self.pending.clear();
        self.inflight.clear();
    }

    fn on_frame(&mut self, frame: ServerFrame) -> Vec<ClientFrame> {
        match frame {
            ServerFrame::Ready(r) => {
                self.heartbeat_ms = r.heartbeat_ms.clamp(1000, 3_600_000) as i64;
                self.silence_limit_ms =
                    (r.heartbeat_ms.saturating_add(r.heartbeat_timeout_ms)).clamp(1000, 7_200_000) as i64;
                let (since, first) = {
                    let st = self.inner.state.borrow();
                    let first = !st.durable.subscribed_before;
                    (if first { None } else { Some(st.durable.sync.cursor()) }, first)
                };
                let id = self.inner.next_frame_id();
                self.pending.insert(id.clone(), Pending::Subscribe { first });
                vec![ClientFrame {
                    id,
                    request: ClientRequest::Subscribe { since },
                }]
            }
            ServerFrame::Ack { id, result } => self.on_answer(&id, Ok(result)),
            ServerFrame::Error { id: Some(id), error } => self.on_answer(&id, Err(error.into())),
            ServerFrame::Error { id: None, error } => {
                tracing::warn!(code = %error.code, message = %error.message, "the server rejected a frame");
                Vec::new()
            }
            ServerFrame::Event { event } => {
                self.on_event(event);
                Vec::new()
            }
            ServerFrame::Cursor { pos, caught_up } => {
                self.inner.state.borrow_mut().durable.sync.checkpoint(pos);
                if caught_up && self.subscribed {
                    self.inner.set_state(ConnectionState::Connected);
                }
                self.inner.emit(ClientEvent::Synced { cursor: pos, caught_up });
                Vec::new()
            }
        }
    }

    fn on_answer(&mut self, id: &str, result: Result<AckResult>) -> Vec<ClientFrame> {
        let Some(p) = self.pending.remove(id) else {
            tracing::debug!(id, "answer to an unknown frame");
            return Vec::new();
        };
        match (p, result) {
            (Pending::Auth, Ok(_)) => Vec::new(),
            (Pending::Auth, Err(e)) => {
                tracing::info!(error = %e, "websocket authentication refused");
                if matches!(e, Error::Unauthorized { .. }) {
                    self.unauthorized = true;
                }
                Vec::new()
            }
            (Pending::Subscribe { first }, Ok(AckResult::Subscribe { snapshot })) => {
                self.subscribed = true;
                self.apply_snapshot(&snapshot);
                self.inner.state.borrow_mut().durable.subscribed_before = true;
                self.inner.link_up.set(true);
                self.inner.set_state(ConnectionState::Syncing);
                if first || !self.inner.view_loaded.get() {
                    // A first subscription starts from now, and a view restored after a
                    // restart starts empty: the list comes from REST.
                    self.inner.spawn_reload();
                }
                self.flush_outbox()
            }
            (Pending::Subscribe { .. }, other) => {
                match &other {
                    Err(e) => tracing::warn!(error = %e, "subscribe refused"),
                    Ok(_) => tracing::warn!("unexpected answer to subscribe"),
                }
                if let Err(Error::Unauthorized { .. }) = other {
                    self.unauthorized = true;
                }
                Vec::new()
            }
            (Pending::Send { client_msg_id }, r) => {
                self.inflight.remove(&client_msg_id);
                match r {
                    Ok(AckResult::Send { message }) => self.on_sent(message),
                    Ok(_) => tracing::warn!("unexpected answer to send"),
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
            (Pending::Ping, _) => {
                self.ping_out = false;
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
            let mut st = self.inner.state.borrow_mut();
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
            if let Some(update) = update {
                self.inner.emit(ClientEvent::View { update });
            }
        }
    }

    fn on_send_error(&mut self, client_msg_id: &str, error: Error) {
        let dropped = self
            .inner
            .state
            .borrow_mut()
            .durable
            .outbox
            .reject(client_msg_id, &error);
        if dropped.is_some() {
            tracing::info!(client_msg_id, error = %error, "send refused for good");
            self.inner.emit(ClientEvent::SendFailed {
                client_msg_id: client_msg_id.to_owned(),
                error: error.body(),
            });
            return;
        }
        let wait = match &error {
            Error::RateLimited { retry_after_ms } => (*retry_after_ms).min(3_600_000) as i64,
            Error::Unauthorized { .. } => {
                // The token expired mid-connection: reconnect with a fresh one.
                self.unauthorized = true;
                1000
            }
            _ => 1000,
        };
        let until = now_ms() + wait.max(1);
        self.sends_paused_until = Some(self.sends_paused_until.map_or(until, |t| t.max(until)));
    }

    fn on_event(&mut self, event: Event) {
        let mut updates = Vec::new();
        let mut reload = false;
        {
            let mut st = self.inner.state.borrow_mut();
            let st = &mut *st;
            let me = st.view.as_ref().map(|v| v.me());
            if let Event::Change(c) = &event {
                if !st.durable.sync.accept_change(c) {
                    return;
                }
                if let (ChangeKind::Message { message }, Some(me)) = (&c.kind, me)
                    && message.sender_id != me
                    && self.inner.options.auto_delivered
                {
                    let e = self.delivered.entry(message.conversation_id).or_insert(0);
                    *e = (*e).max(message.seq);
                }
            }
            // A conversation built from live changes knows its members' ids but not their
            // names yet: load them.
            let membership = matches!(
                &event,
                Event::Change(c) if matches!(c.kind, ChangeKind::ConversationCreated { .. } | ChangeKind::MemberJoined { .. })
            );
            if let Some(v) = st.view.as_mut() {
                updates = v.apply_event(&event);
                for u in &updates {
                    match u {
                        ViewUpdate::ConversationUnknown { .. } => reload = true,
                        ViewUpdate::Conversation { conversation_id }
                            if membership
                                && v.conversation(*conversation_id)
                                    .is_some_and(|c| c.members.iter().any(|m| m.display_name.is_empty())) =>
                        {
                            reload = true;
                        }
                        _ => {}
                    }
                }
            }
        }
        let head = match event {
            Event::Change(change) => ClientEvent::Change { change },
            event => ClientEvent::Ephemeral { event },
        };
        self.inner.emit(head);
        self.inner.emit_updates(updates);
        if reload {
            self.inner.spawn_reload();
        }
    }

    fn apply_snapshot(&self, snapshot: &EphemeralSnapshot) {
        let updates = self.inner.with_view(|v| v.apply_snapshot(snapshot)).unwrap_or_default();
        self.inner.emit_updates(updates);
    }

    /// The outbox messages to send now: oldest first, not already in flight, within the
    /// in-flight bound. Nothing before the subscription or while sends are paused.
    fn flush_outbox(&mut self) -> Vec<ClientFrame> {
        if !self.subscribed || self.sends_paused_until.is_some() {
            return Vec::new();
        }
        let room = self
            .inner
            .options
            .max_inflight_sends
            .max(1)
            .saturating_sub(self.inflight.len());
        if room == 0 {
            return Vec::new();
        }
        let batch: Vec<_> = {
            let mut st = self.inner.state.borrow_mut();
            let outbox = &mut st.durable.outbox;
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
        let drained: Vec<_> = self.delivered.drain().collect();
        drained
            .into_iter()
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

fn send_frames(socket: &Socket, frames: Vec<ClientFrame>) -> std::result::Result<(), String> {
    for f in frames {
        let text = serde_json::to_string(&f).map_err(|e| e.to_string())?;
        socket.send(&text)?;
    }
    Ok(())
}

//! The WebSocket endpoint `/v1/ws`: handshake checks, authentication, the per-connection
//! task (requests, live events, checkpoints, heartbeats) and closing.
//!
//! The handshake is done here rather than by axum's `WebSocketUpgrade` so the connection
//! owns its raw stream: after a close (above all after an oversized frame, whose payload is
//! still unread) it drains what the client is still sending before dropping the socket, so
//! the client reads the close frame instead of a TCP reset.
//!
//! The connection task is generic over the byte stream ([`run_connection`]), so tests can
//! drive it over an in-memory pipe.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatico_core::engine::AuthContext;
use chatico_core::protocol::{
    AckResult, CLIENT_FRAME_TYPES, ChangeKey, ClientFrame, ClientRequest, MAX_FRAME_ID_LEN, PROTOCOL_VERSION, Ready,
    SUBPROTOCOL_JSON, SendMessage, ServerFrame, SyncResponse, close_code,
};
use chatico_core::sync::{Delivery, Event, SyncCursor, SyncPage};
use chatico_core::{Error, ErrorBody};
use futures::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::time::Instant;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::error::CapacityError;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};

use super::Shared;
use super::error::AppError;
use super::hub::{self, OutFrame};

/// Most bytes drained from a client after the server closed (oversized frame leftovers).
const LINGER_MAX_BYTES: usize = 1 << 20;
/// Frames taken from the outbound queue before one flush.
const WRITE_BATCH: usize = 64;
/// Bytes a connection buffers before writing to the socket; every path flushes after its
/// frames, so this only merges the frames of one batch into one write. Writing each frame
/// on its own (a buffer of 0) made one syscall per frame: under fan-out load that was two
/// thirds of the server's time, and buffering tripled deliveries/s (BENCHMARKS.md).
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// How long a change sent by a checkpoint is remembered to suppress a late live duplicate.
const DEDUPE_WINDOW: Duration = Duration::from_secs(120);
/// Retry delay of a checkpoint whose sync failed (store unavailable).
const CHECKPOINT_RETRY: Duration = Duration::from_secs(1);

/// The WebSocket endpoint (see docs/PROTOCOL.md): checks the handshake and upgrades.
/// Requires `Sec-WebSocket-Protocol: chatico.v1.json`; authenticate with an
/// `Authorization: Bearer` header or a first `auth` frame — never a query parameter.
#[utoipa::path(get, path = chatico_core::protocol::paths::WS, tag = "meta", operation_id = "websocket",
    responses(
        (status = 101, description = "Switching protocols"),
        (status = 400, description = "`invalid_input`: not a WebSocket handshake, or no supported subprotocol",
            body = ErrorBody),
        (status = 401, description = "`unauthorized`: a bad Authorization header", body = ErrorBody),
        (status = 403, description = "`forbidden`: an Origin not in the allowlist", body = ErrorBody),
        (status = 503, description = "`unavailable`: shutting down", body = ErrorBody)))]
pub(crate) async fn upgrade(State(gw): State<Arc<Shared>>, mut req: Request) -> Response {
    match check_handshake(&gw, req.headers()).await {
        Ok((key, pre_auth)) => {
            let on_upgrade = hyper::upgrade::on(&mut req);
            let gw2 = gw.clone();
            // Counted from now until its close frame is written: shutdown waits for it.
            let task = super::TaskGuard::new(gw.clone());
            tokio::spawn(async move {
                let _task = task;
                match on_upgrade.await {
                    Ok(upgraded) => {
                        let cfg = ws_config(&gw2.config);
                        let ws =
                            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), Role::Server, Some(cfg)).await;
                        run_connection(gw2, ws, pre_auth).await;
                    }
                    Err(e) => tracing::debug!(error = %e, "websocket upgrade failed"),
                }
            });
            let mut resp = Response::new(Body::empty());
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            let h = resp.headers_mut();
            h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
            if let Ok(v) = HeaderValue::from_str(&key) {
                h.insert(header::SEC_WEBSOCKET_ACCEPT, v);
            }
            h.insert(
                header::SEC_WEBSOCKET_PROTOCOL,
                HeaderValue::from_static(SUBPROTOCOL_JSON),
            );
            resp
        }
        Err(e) => e.into_response(),
    }
}

/// The tungstenite limits of a connection.
pub(crate) fn ws_config(c: &super::GatewayConfig) -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(c.read_buffer_bytes)
        .write_buffer_size(WRITE_BUFFER_BYTES.min(c.max_write_buffer_bytes / 2))
        .max_write_buffer_size(c.max_write_buffer_bytes)
        .max_message_size(Some(c.max_frame_bytes))
        .max_frame_size(Some(c.max_frame_bytes))
}

fn header_has_token(headers: &HeaderMap, name: header::HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Validates the upgrade request; returns the `Sec-WebSocket-Accept` value and the
/// connection's identity when the handshake carried an `Authorization` header.
async fn check_handshake(gw: &Shared, headers: &HeaderMap) -> Result<(String, Option<AuthContext>), AppError> {
    if gw.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
        return Err(Error::unavailable("shutting down").into());
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        if !gw.config.origins.allows(origin) {
            tracing::info!(origin, "websocket handshake from a foreign origin refused");
            return Err(Error::forbidden("origin not allowed").into());
        }
    }
    let is_ws = header_has_token(headers, header::CONNECTION, "upgrade")
        && header_has_token(headers, header::UPGRADE, "websocket")
        && headers.get(header::SEC_WEBSOCKET_VERSION).and_then(|v| v.to_str().ok()) == Some("13");
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .filter(|_| is_ws)
        .ok_or_else(|| AppError(Error::invalid("upgrade", "not a WebSocket (version 13) handshake")))?;
    if !header_has_token(headers, header::SEC_WEBSOCKET_PROTOCOL, SUBPROTOCOL_JSON) {
        return Err(Error::invalid(
            "sec-websocket-protocol",
            format!("offer the subprotocol {SUBPROTOCOL_JSON}"),
        )
        .into());
    }
    let accept = derive_accept_key(key.as_bytes());
    let pre_auth = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let token = super::rest::bearer(v)?;
            Some(gw.engine.authenticate(token).await?)
        }
    };
    Ok((accept, pre_auth))
}

/// Why a connection stops.
#[derive(Debug)]
enum Stop {
    /// Close with this code and reason, then drain.
    Close(u16, &'static str),
    /// An oversized frame: close with 1009, then drain the rest of it from the raw stream.
    TooBig,
    /// The peer closed or the stream failed: nothing more to send.
    Gone,
}

/// Parses a client frame. On failure returns the frame id if it could be read, and the
/// error to answer with.
pub(crate) fn parse_frame(text: &str) -> Result<ClientFrame, (Option<String>, Error)> {
    let check_id = |id: &str| -> Result<(), Error> {
        if id.is_empty() || id.len() > MAX_FRAME_ID_LEN {
            Err(Error::invalid("id", format!("must be 1 to {MAX_FRAME_ID_LEN} bytes")))
        } else {
            Ok(())
        }
    };
    match serde_json::from_str::<ClientFrame>(text) {
        Ok(f) => match check_id(&f.id) {
            Ok(()) => Ok(f),
            Err(e) => Err((None, e)),
        },
        Err(err) => {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
                return Err((None, Error::invalid("frame", "malformed JSON")));
            };
            let Some(obj) = v.as_object() else {
                return Err((None, Error::invalid("frame", "a frame is a JSON object")));
            };
            let id = match obj.get("id").and_then(|i| i.as_str()) {
                Some(id) if check_id(id).is_ok() => id.to_owned(),
                Some(id) => return Err((None, check_id(id).err().unwrap_or_else(|| Error::invalid("id", "bad")))),
                None => return Err((None, Error::invalid("id", "missing (a string)"))),
            };
            let e = match obj.get("type").and_then(|t| t.as_str()) {
                None => Error::invalid("type", "missing (a string)"),
                Some(t) if !CLIENT_FRAME_TYPES.contains(&t) => {
                    let shown: String = t.chars().take(32).collect();
                    Error::invalid("type", format!("unknown frame type `{shown}`"))
                }
                Some(_) => Error::invalid("frame", err.to_string()),
            };
            Err((Some(id), e))
        }
    }
}

fn frame_text(frame: &ServerFrame) -> Message {
    match serde_json::to_string(frame) {
        Ok(s) => Message::Text(Utf8Bytes::from(s)),
        Err(e) => {
            tracing::error!(error = %e, "server frame serialisation failed");
            Message::Text(Utf8Bytes::from_static(
                r#"{"type":"error","id":null,"error":{"code":"internal","message":"internal error"}}"#,
            ))
        }
    }
}

fn error_frame(id: Option<String>, e: &Error) -> Message {
    let body: ErrorBody = super::error::AppError(e.clone()).body();
    frame_text(&ServerFrame::Error { id, error: body })
}

/// A multiset of change keys.
#[derive(Default)]
struct KeyBag(HashMap<ChangeKey, u32>);

impl KeyBag {
    fn add(&mut self, k: ChangeKey) {
        *self.0.entry(k).or_default() += 1;
    }
    /// Removes one `k`; true if there was one.
    fn take(&mut self, k: &ChangeKey) -> bool {
        match self.0.get_mut(k) {
            Some(n) if *n > 1 => {
                *n -= 1;
                true
            }
            Some(_) => {
                self.0.remove(k);
                true
            }
            None => false,
        }
    }
}

/// One authenticated connection's state.
struct Conn<T> {
    gw: Arc<Shared>,
    ws: WebSocketStream<T>,
    ctx: AuthContext,
    reg: hub::Registration,
    subscribed: bool,
    /// Every change up to here has been sent on this connection (the last `cursor` sent).
    checkpoint: SyncCursor,
    /// Positions above the checkpoint already sent live.
    live_pos: BTreeSet<SyncCursor>,
    /// Changes without a position (`pos: 0`) sent live since the last checkpoint began.
    live_keys: KeyBag,
    live_count: usize,
    /// Changes a checkpoint sent, to suppress late live copies that carry no position:
    /// key -> (count, since).
    recent: HashMap<ChangeKey, (u32, Instant)>,
    checkpoint_due: Option<Instant>,
    next_resync: Instant,
    last_inbound: Instant,
    ping_sent: Option<Instant>,
}

/// Serves one upgraded connection until it ends. `pre_auth` is set when the handshake
/// carried a valid `Authorization` header.
pub(crate) async fn run_connection<T>(gw: Arc<Shared>, mut ws: WebSocketStream<T>, pre_auth: Option<AuthContext>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let ctx = match pre_auth {
        Some(c) => c,
        None => {
            let mut shutdown = gw.shutdown.subscribe();
            let auth = tokio::time::timeout(gw.config.auth_timeout, Box::pin(first_frame_auth(&gw, &mut ws)));
            let r = tokio::select! {
                r = auth => r,
                // Not registered in the hub yet: shutdown reaches it here.
                _ = async { shutdown.wait_for(|down| *down).await.map(|_| ()) } => {
                    let stop = Stop::Close(close_code::GOING_AWAY, "going away");
                    return Box::pin(finish(&gw, ws, stop)).await;
                }
            };
            match r {
                Ok(Ok(c)) => c,
                Ok(Err(stop)) => return Box::pin(finish(&gw, ws, stop)).await,
                Err(_) => {
                    let stop = Stop::Close(close_code::AUTH_TIMEOUT, "authentication timeout");
                    return Box::pin(finish(&gw, ws, stop)).await;
                }
            }
        }
    };
    let (reg, _) = gw.hub.register(ctx.user_id, Some(ctx.session_id));
    // A shutdown that began before this registration did not see it in the hub.
    if gw.shutting_down.load(std::sync::atomic::Ordering::SeqCst) {
        reg.ctl.close(close_code::GOING_AWAY);
    }
    let conn_id = reg.id;
    let now = Instant::now();
    let mut conn = Conn {
        gw: gw.clone(),
        ws,
        ctx,
        reg,
        subscribed: false,
        checkpoint: 0,
        live_pos: BTreeSet::new(),
        live_keys: KeyBag::default(),
        live_count: 0,
        recent: HashMap::new(),
        checkpoint_due: None,
        next_resync: now + gw.config.resync_interval,
        last_inbound: now,
        ping_sent: None,
    };
    tracing::debug!(user = %ctx.user_id, conn = conn_id, "websocket connected");
    let stop = Box::pin(conn.serve()).await;
    let Conn { ws, .. } = conn;
    gw.hub.unregister(ctx.user_id, conn_id);
    match Box::pin(gw.engine.disconnected(ctx.user_id, conn_id)).await {
        Ok(out) => gw.publish(out.deliveries).await,
        Err(e) => tracing::warn!(error = %e, "presence update on disconnect failed"),
    }
    tracing::debug!(user = %ctx.user_id, conn = conn_id, reason = ?stop, "websocket disconnected");
    Box::pin(finish(&gw, ws, stop)).await;
}

/// Writes the close frame (if any) within `close_timeout`, drains the peer, and signals the
/// end of the connection.
async fn finish<T>(gw: &Shared, mut ws: WebSocketStream<T>, stop: Stop)
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    let timeout = gw.config.close_timeout;
    let (code, reason, raw_drain) = match stop {
        Stop::Gone => {
            gw.conn_ended.notify_waiters();
            return;
        }
        Stop::Close(code, reason) => (code, reason, false),
        Stop::TooBig => (close_code::MESSAGE_TOO_BIG, "frame too large", true),
    };
    let frame = CloseFrame {
        code: CloseCode::from(code),
        reason: Utf8Bytes::from_static(reason),
    };
    // A slow consumer's close frame waits behind its full socket: it gets its own budget.
    let write_budget = if code == close_code::SLOW_CONSUMER {
        gw.config.slow_consumer_close_timeout.max(timeout)
    } else {
        timeout
    };
    let _ = tokio::time::timeout(write_budget, ws.send(Message::Close(Some(frame)))).await;
    if raw_drain {
        // The rest of the oversized frame is unread: read and discard raw bytes (never
        // through the WebSocket codec, which would try to buffer the frame).
        let mut buf = [0u8; 4096];
        let mut drained = 0usize;
        let _ = tokio::time::timeout(timeout, async {
            while drained < LINGER_MAX_BYTES {
                match ws.get_mut().read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => drained += n,
                }
            }
        })
        .await;
    } else {
        // Wait for the peer's close reply (or anything else) to end the stream.
        let _ = tokio::time::timeout(timeout, async { while let Some(Ok(_)) = ws.next().await {} }).await;
    }
    gw.conn_ended.notify_waiters();
}

/// Reads frames until a valid `auth` frame authenticates the connection.
async fn first_frame_auth<T>(gw: &Shared, ws: &mut WebSocketStream<T>) -> Result<AuthContext, Stop>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    loop {
        let text = match ws.next().await {
            None => return Err(Stop::Gone),
            Some(Err(WsError::Capacity(_))) => return Err(Stop::TooBig),
            Some(Err(_)) => return Err(Stop::Gone),
            Some(Ok(Message::Text(t))) => t,
            Some(Ok(Message::Binary(_))) => {
                let e = Error::unauthorized("authenticate first with an auth frame");
                let _ = ws.send(error_frame(None, &e)).await;
                return Err(Stop::Close(close_code::UNAUTHORIZED, "unauthorized"));
            }
            Some(Ok(Message::Close(_))) => return Err(Stop::Gone),
            Some(Ok(_)) => continue,
        };
        let (id, token) = match parse_frame(text.as_str()) {
            Ok(ClientFrame {
                id,
                request: ClientRequest::Auth { token },
            }) => (id, token),
            Ok(f) => {
                let e = Error::unauthorized("authenticate first with an auth frame");
                let _ = ws.send(error_frame(Some(f.id), &e)).await;
                return Err(Stop::Close(close_code::UNAUTHORIZED, "unauthorized"));
            }
            Err((id, e)) => {
                let _ = ws.send(error_frame(id, &e)).await;
                return Err(Stop::Close(close_code::UNAUTHORIZED, "unauthorized"));
            }
        };
        return match gw.engine.authenticate(&token).await {
            Ok(ctx) => {
                let ack = ServerFrame::Ack {
                    id,
                    result: AckResult::Auth { user_id: ctx.user_id },
                };
                ws.send(frame_text(&ack)).await.map_err(|_| Stop::Gone)?;
                Ok(ctx)
            }
            Err(e) => {
                let _ = ws.send(error_frame(Some(id), &e)).await;
                Err(Stop::Close(close_code::UNAUTHORIZED, "unauthorized"))
            }
        };
    }
}

/// What woke the connection task.
enum Wake {
    Closed(u16),
    Inbound(Option<Result<Message, WsError>>),
    Live(Option<Arc<OutFrame>>),
    Checkpoint,
    Timer,
}

impl<T> Conn<T>
where
    T: AsyncRead + AsyncWrite + Unpin + Send,
{
    async fn serve(&mut self) -> Stop {
        // Presence first: the user is online once this connection is registered.
        match Box::pin(self.gw.engine.connected(self.ctx.user_id, self.reg.id)).await {
            Ok(out) => self.gw.publish(out.deliveries).await,
            Err(e) => tracing::warn!(error = %e, "presence update on connect failed"),
        }
        let c = &self.gw.config;
        let ready = ServerFrame::Ready(Ready {
            protocol: PROTOCOL_VERSION,
            user_id: self.ctx.user_id,
            session_id: self.ctx.session_id,
            heartbeat_ms: c.heartbeat_interval.as_millis() as u64,
            heartbeat_timeout_ms: c.heartbeat_timeout.as_millis() as u64,
            max_frame_bytes: c.max_frame_bytes as u64,
        });
        if let Err(stop) = self.write(frame_text(&ready)).await {
            return stop;
        }
        let sleep = tokio::time::sleep_until(self.next_deadline());
        tokio::pin!(sleep);
        // Inbound frames and live frames take turns when both are ready: a client that keeps
        // sending must not starve its own outbound queue (which would then overflow and close
        // it as a slow consumer), and a busy queue must not starve the client's requests.
        let mut live_first = false;
        loop {
            sleep.as_mut().reset(self.next_deadline());
            let ctl = self.reg.ctl.clone();
            live_first = !live_first;
            let wake = if live_first {
                tokio::select! {
                    biased;
                    code = ctl.closed() => Wake::Closed(code),
                    f = self.reg.rx.recv() => Wake::Live(f),
                    m = self.ws.next() => Wake::Inbound(m),
                    _ = ctl.checkpoint_requested() => Wake::Checkpoint,
                    _ = &mut sleep => Wake::Timer,
                }
            } else {
                tokio::select! {
                    biased;
                    code = ctl.closed() => Wake::Closed(code),
                    m = self.ws.next() => Wake::Inbound(m),
                    f = self.reg.rx.recv() => Wake::Live(f),
                    _ = ctl.checkpoint_requested() => Wake::Checkpoint,
                    _ = &mut sleep => Wake::Timer,
                }
            };
            // Handlers are boxed: the task of an idle connection then only holds the select
            // above, not the (much larger) state of an engine call.
            let r = match wake {
                Wake::Closed(code) => return Stop::Close(code, close_reason(code)),
                Wake::Inbound(m) => Box::pin(self.on_inbound(m)).await,
                Wake::Live(None) => return Stop::Close(close_code::INTERNAL_ERROR, "internal error"),
                Wake::Live(Some(f)) => Box::pin(self.on_live(f)).await,
                // Asked by the node's loss watcher: a change for this user was committed but
                // its live copy never arrived. Before `subscribe`, the subscription's own
                // sync will cover it.
                Wake::Checkpoint if self.subscribed => Box::pin(self.run_checkpoint(None)).await,
                Wake::Checkpoint => Ok(()),
                Wake::Timer => Box::pin(self.on_timer()).await,
            };
            if let Err(stop) = r {
                return stop;
            }
        }
    }

    fn next_deadline(&self) -> Instant {
        let c = &self.gw.config;
        let mut d = match self.ping_sent {
            Some(at) => at + c.heartbeat_timeout,
            None => self.last_inbound + c.heartbeat_interval,
        };
        if self.subscribed {
            d = d.min(self.next_resync);
            if let Some(due) = self.checkpoint_due {
                d = d.min(due);
            }
        }
        d
    }

    /// Writes one frame and flushes, within the write timeout and unless a close is asked for.
    async fn write(&mut self, msg: Message) -> Result<(), Stop> {
        self.io(true, msg).await
    }

    /// Writes one frame, without flushing unless `flush`.
    async fn io(&mut self, flush: bool, msg: Message) -> Result<(), Stop> {
        let ws = &mut self.ws;
        let op = async { if flush { ws.send(msg).await } else { ws.feed(msg).await } };
        guarded(&self.reg.ctl, self.gw.config.heartbeat_timeout, op).await
    }

    /// Writes a batch of live frames and flushes, under one write timeout (a timer per
    /// batch, not per frame: this is the fan-out hot path).
    async fn write_batch(&mut self, batch: &[Arc<OutFrame>]) -> Result<(), Stop> {
        let ws = &mut self.ws;
        let op = async {
            for f in batch {
                ws.feed(Message::Text(f.text.clone())).await?;
            }
            ws.flush().await
        };
        guarded(&self.reg.ctl, self.gw.config.heartbeat_timeout, op).await
    }

    async fn flush(&mut self) -> Result<(), Stop> {
        guarded(&self.reg.ctl, self.gw.config.heartbeat_timeout, self.ws.flush()).await
    }

    async fn on_timer(&mut self) -> Result<(), Stop> {
        let now = Instant::now();
        let c = &self.gw.config;
        match self.ping_sent {
            Some(at) if now >= at + c.heartbeat_timeout => {
                return Err(Stop::Close(close_code::HEARTBEAT_TIMEOUT, "heartbeat timeout"));
            }
            None if now >= self.last_inbound + c.heartbeat_interval => {
                self.ping_sent = Some(now);
                self.write(Message::Ping(Default::default())).await?;
            }
            _ => {}
        }
        if self.subscribed && (self.checkpoint_due.is_some_and(|d| now >= d) || now >= self.next_resync) {
            self.run_checkpoint(None).await?;
        }
        Ok(())
    }

    async fn on_inbound(&mut self, m: Option<Result<Message, WsError>>) -> Result<(), Stop> {
        self.last_inbound = Instant::now();
        self.ping_sent = None;
        match m {
            None | Some(Ok(Message::Close(_))) => Err(Stop::Gone),
            Some(Err(WsError::Capacity(CapacityError::MessageTooLong { size, max_size }))) => {
                tracing::info!(user = %self.ctx.user_id, size, max_size, "oversized frame; closing with 1009");
                Err(Stop::TooBig)
            }
            Some(Err(WsError::Capacity(_))) => Err(Stop::TooBig),
            Some(Err(e)) => {
                tracing::debug!(error = %e, "websocket read failed");
                Err(Stop::Gone)
            }
            Some(Ok(Message::Text(t))) => match parse_frame(t.as_str()) {
                Ok(frame) => self.on_request(frame).await,
                Err((id, e)) => self.write(error_frame(id, &e)).await,
            },
            Some(Ok(Message::Binary(_))) => {
                let e = Error::invalid("frame", format!("binary frames are not used by {SUBPROTOCOL_JSON}"));
                self.write(error_frame(None, &e)).await
            }
            // Pings are answered by the codec; pongs only prove liveness.
            Some(Ok(_)) => Ok(()),
        }
    }

    async fn on_request(&mut self, frame: ClientFrame) -> Result<(), Stop> {
        let ClientFrame { id, request } = frame;
        if let Err(e) = self.gw.rate.check(self.ctx.user_id) {
            return self.write(error_frame(Some(id), &e)).await;
        }
        let user = self.ctx.user_id;
        let engine = self.gw.engine.clone();
        let result: Result<(AckResult, Vec<Delivery>), Error> = match request {
            ClientRequest::Auth { .. } => Err(Error::conflict("already authenticated")),
            ClientRequest::Subscribe { since } => return self.subscribe(id, since).await,
            ClientRequest::Ping => Ok((AckResult::Ping {}, Vec::new())),
            ClientRequest::Send {
                conversation_id,
                client_msg_id,
                content,
                reply_to_seq,
            } => engine
                .send(
                    user,
                    SendMessage {
                        conversation_id,
                        client_msg_id,
                        content,
                        reply_to_seq,
                    },
                )
                .await
                .map(|o| (AckResult::Send { message: o.value }, o.deliveries)),
            ClientRequest::Receipt {
                conversation_id,
                delivered_seq,
                read_seq,
            } => engine
                .mark_receipts(user, conversation_id, delivered_seq, read_seq)
                .await
                .map(|o| {
                    (
                        AckResult::Receipt {
                            delivered_seq: o.value.delivered_seq,
                            read_seq: o.value.read_seq,
                        },
                        o.deliveries,
                    )
                }),
            ClientRequest::Typing {
                conversation_id,
                typing,
            } => engine
                .typing(user, conversation_id, typing)
                .await
                .map(|o| (AckResult::Typing {}, o.deliveries)),
            ClientRequest::Sync { since, limit } => engine
                .sync(user, since, limit.unwrap_or(self.gw.config.sync_page))
                .await
                .map(|r| {
                    (
                        AckResult::Sync {
                            page: r.page,
                            ephemeral: r.ephemeral,
                        },
                        Vec::new(),
                    )
                }),
        };
        match result {
            Ok((ack, deliveries)) => {
                // Persisted; acknowledge; then fan out.
                self.write(frame_text(&ServerFrame::Ack { id, result: ack })).await?;
                self.gw.publish(deliveries).await;
                Ok(())
            }
            Err(e) => self.write(error_frame(Some(id), &e)).await,
        }
    }

    async fn subscribe(&mut self, id: String, since: Option<SyncCursor>) -> Result<(), Stop> {
        if self.subscribed {
            return self
                .write(error_frame(Some(id), &Error::conflict("already subscribed")))
                .await;
        }
        // Live events queued so far were committed before the sync below reads: the catch-up
        // covers them. (Events arriving during the sync are handled after it, deduplicated.)
        while self.reg.rx.try_recv().is_ok() {}
        let since = match since {
            Some(s) => s,
            None => match self.gw.engine.latest_position().await {
                Ok(p) => p,
                Err(e) => return self.write(error_frame(Some(id), &e)).await,
            },
        };
        let SyncResponse { page, ephemeral } = match self
            .gw
            .engine
            .sync(self.ctx.user_id, since, self.gw.config.sync_page)
            .await
        {
            Ok(r) => r,
            Err(e) => return self.write(error_frame(Some(id), &e)).await,
        };
        let ack = ServerFrame::Ack {
            id,
            result: AckResult::Subscribe { snapshot: ephemeral },
        };
        self.write(frame_text(&ack)).await?;
        self.subscribed = true;
        self.checkpoint = since;
        self.run_checkpoint(Some(page)).await
    }

    /// A live frame from the hub.
    async fn on_live(&mut self, first: Arc<OutFrame>) -> Result<(), Stop> {
        let mut batch = Vec::new();
        let mut next = Some(first);
        let mut n = 0;
        while let Some(f) = next.take() {
            if self.subscribed && self.accept_live(&f) {
                batch.push(f);
            }
            n += 1;
            if n < WRITE_BATCH {
                next = self.reg.rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            self.write_batch(&batch).await?;
        }
        if self.subscribed && self.live_count >= self.gw.config.checkpoint_every {
            self.run_checkpoint(None).await?;
        }
        Ok(())
    }

    /// Whether a live frame goes out (and accounts for it).
    ///
    /// A change with a position is sent unless a checkpoint already covers it (`pos <=
    /// checkpoint`: the checkpoint's sync sent it, or it is outside the user's audience) or
    /// it went out already. A change without one (`pos: 0`, from a producer that cannot
    /// know it) is matched by its [`ChangeKey`] against what recent checkpoints sent.
    fn accept_live(&mut self, f: &OutFrame) -> bool {
        let Some((pos, key)) = &f.change else { return true };
        if *pos > 0 {
            if *pos <= self.checkpoint || !self.live_pos.insert(*pos) {
                return false;
            }
        } else {
            if let Some((n, _)) = self.recent.get_mut(key) {
                *n -= 1;
                if *n == 0 {
                    self.recent.remove(key);
                }
                return false;
            }
            self.live_keys.add(key.clone());
        }
        self.live_count += 1;
        self.checkpoint_due = Some(Instant::now() + self.gw.config.checkpoint_idle);
        true
    }

    /// Sends every change after the checkpoint that was not sent live, then `cursor` frames.
    /// `first` is a first page already fetched (subscribe).
    async fn run_checkpoint(&mut self, first: Option<SyncPage>) -> Result<(), Stop> {
        let now = Instant::now();
        // Every live change sent so far was committed before the sync below reads, so a
        // position-less one the sync does not return is outside the user's audience.
        let mut sent_keys = std::mem::take(&mut self.live_keys);
        self.live_count = 0;
        self.checkpoint_due = None;
        self.next_resync = now + self.gw.config.resync_interval;
        self.recent.retain(|_, (_, at)| now.duration_since(*at) < DEDUPE_WINDOW);
        let announce = first.is_some();
        let mut page = first;
        loop {
            let resp = match page.take() {
                Some(r) => r,
                None => match self
                    .gw
                    .engine
                    // The page only: a checkpoint has no use for the ephemeral snapshot.
                    .sync_changes(self.ctx.user_id, self.checkpoint, self.gw.config.sync_page)
                    .await
                {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::warn!(error = %e, user = %self.ctx.user_id, "checkpoint sync failed; retrying");
                        // Keep what was sent live for the retry.
                        for (k, n) in sent_keys.0 {
                            for _ in 0..n {
                                self.live_keys.add(k.clone());
                            }
                        }
                        self.checkpoint_due = Some(Instant::now() + CHECKPOINT_RETRY);
                        return Ok(());
                    }
                },
            };
            let mut moved = false;
            for change in resp.changes {
                let key = ChangeKey::of(&change);
                if self.live_pos.remove(&change.pos) || sent_keys.take(&key) {
                    continue;
                }
                let f = hub::event_frame(&Event::Change(change));
                self.io(false, Message::Text(f.text)).await?;
                let e = self.recent.entry(key).or_insert((0, now));
                e.0 += 1;
                moved = true;
            }
            let advanced = resp.next > self.checkpoint;
            self.checkpoint = self.checkpoint.max(resp.next);
            // Positions at or below the checkpoint are settled (sent, or not for this user).
            self.live_pos = self.live_pos.split_off(&(self.checkpoint + 1));
            if announce || moved || advanced {
                let cursor = ServerFrame::Cursor {
                    pos: self.checkpoint,
                    caught_up: !resp.limited,
                };
                self.io(false, frame_text(&cursor)).await?;
                self.flush().await?;
            }
            if !resp.limited {
                return Ok(());
            }
        }
    }
}

/// A socket write, unless a close is asked for first, within `timeout`: a write (at most one
/// frame, or a batch of `WRITE_BATCH`) that the socket does not take within a heartbeat
/// timeout means the client is not reading, or far too slowly.
async fn guarded(
    ctl: &hub::ConnControl,
    timeout: Duration,
    op: impl std::future::Future<Output = Result<(), WsError>>,
) -> Result<(), Stop> {
    tokio::select! {
        biased;
        code = ctl.closed() => Err(Stop::Close(code, close_reason(code))),
        r = tokio::time::timeout(timeout, op) => match r {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_)) => Err(Stop::Gone),
            Err(_) => Err(Stop::Close(close_code::SLOW_CONSUMER, "slow consumer")),
        },
    }
}

fn close_reason(code: u16) -> &'static str {
    match code {
        close_code::GOING_AWAY => "going away",
        close_code::SLOW_CONSUMER => "slow consumer",
        close_code::UNAUTHORIZED => "unauthorized",
        close_code::HEARTBEAT_TIMEOUT => "heartbeat timeout",
        close_code::AUTH_TIMEOUT => "authentication timeout",
        close_code::MESSAGE_TOO_BIG => "frame too large",
        _ => "closing",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatico_core::ErrorCode;

    #[test]
    fn frames_parse_or_answer_the_documented_error() {
        let ok = parse_frame(r#"{"id":"1","type":"ping"}"#).expect("ping");
        assert_eq!(ok.request, ClientRequest::Ping);

        let (id, e) = parse_frame("{not json").expect_err("malformed");
        assert_eq!((id, e.code()), (None, ErrorCode::InvalidInput));
        assert_eq!(e, Error::invalid("frame", "malformed JSON"));

        let (id, e) = parse_frame(r#"{"id":"9","type":"launch_missiles"}"#).expect_err("unknown");
        assert_eq!(id.as_deref(), Some("9"));
        assert_eq!(e, Error::invalid("type", "unknown frame type `launch_missiles`"));

        let (id, e) = parse_frame(r#"{"id":"3","type":"send"}"#).expect_err("fields");
        assert_eq!(id.as_deref(), Some("3"));
        assert!(
            matches!(e, Error::InvalidInput { ref field, .. } if field == "frame"),
            "{e:?}"
        );

        let (id, e) = parse_frame(r#"{"type":"ping"}"#).expect_err("no id");
        assert_eq!(id, None);
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "id"));

        let long = "x".repeat(MAX_FRAME_ID_LEN + 1);
        let (_, e) = parse_frame(&format!(r#"{{"id":"{long}","type":"ping"}}"#)).expect_err("long id");
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "id"));

        let (_, e) = parse_frame("[1,2]").expect_err("not an object");
        assert!(matches!(e, Error::InvalidInput { ref field, .. } if field == "frame"));
    }

    #[test]
    fn key_bags_count() {
        let k = ChangeKey::ContactAdded(chatico_core::ids::UserId(uuid::Uuid::nil()));
        let mut b = KeyBag::default();
        b.add(k.clone());
        b.add(k.clone());
        assert!(b.take(&k));
        assert!(b.take(&k));
        assert!(!b.take(&k));
    }
}

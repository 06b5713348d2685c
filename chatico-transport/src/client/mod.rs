//! The native client SDK: what an app uses instead of speaking the protocol itself.
//!
//! A [`Client`] logs in with an OTP, keeps its tokens fresh, holds one WebSocket to the gateway
//! (reconnecting with exponential backoff and jitter), resumes from its sync cursor after every
//! reconnect, resends its outbox with the original `client_msg_id`s, and keeps a
//! [`LocalView`] current. Every server operation has a typed method; events arrive on a
//! broadcast stream ([`Client::events`]).
//!
//! Everything the connection does — outbox, send window, catch-up, exactly-once and in-order
//! reporting, receipts, the local view, backoff, the durable state — is
//! [`chatico_core::client::ClientMachine`], shared with the browser and FFI clients; this
//! module only moves bytes (tokio-tungstenite, reqwest) and keeps time.
//!
//! ```no_run
//! # async fn demo() -> chatico_core::Result<()> {
//! use chatico_transport::client::{Client, ClientConfig, ClientEvent};
//! let client = Client::new(ClientConfig::new("http://127.0.0.1:8080"))?;
//! client.request_otp("+14155550100").await?;
//! client.verify_otp("+14155550100", "123456").await?;
//! let mut events = client.events();
//! client.connect().await?;
//! while let Ok(ev) = events.recv().await {
//!     if let ClientEvent::Change(c) = ev { println!("change at {}", c.pos); }
//! }
//! # Ok(()) }
//! ```

mod connection;
mod rest;
mod types;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use chatico_core::client::{
    ClientMachine, ConversationView, DurableState, LocalView, Output, PendingMessage, RequestId, RestCall, RestResult,
};
use chatico_core::error::{Error, Result};
use chatico_core::ids::{ConversationId, Timestamp, UserId};
use chatico_core::model::{Content, Mention, Message, Presence};
use chatico_core::protocol::{AckResult, ClientRequest, ReceiptBody};
use chatico_core::sync::{EphemeralSnapshot, SyncCursor};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use chatico_core::client::{ClientEvent, ConnectionState, Session, ViewUpdate};
pub use chatico_core::push::{Platform as PushPlatform, PushKind, PushTarget, parse_payload as parse_push_payload};
pub use chatico_core::retry::RetryPolicy;
pub use types::ClientConfig;

use connection::Io;

/// Milliseconds since the Unix epoch, from the system clock.
pub(crate) fn now_ms() -> Timestamp {
    use chatico_core::ports::Clock;
    chatico_core::ports::SystemClock.now_ms()
}

/// The running connection task.
struct Driver {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

/// What the client API, the REST tasks and the connection task share. Every state change
/// goes through the machine ([`Inner::with_machine`]), which hands back what to do; this
/// module only performs it.
pub(crate) struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    /// Async so that one refresh at a time runs (refresh tokens are single use).
    session: tokio::sync::Mutex<Option<Session>>,
    /// The connection state machine of the logged-in user (None before login).
    machine: Mutex<Option<ClientMachine>>,
    /// A durable state imported before login, for the machine of the next login.
    staged: Mutex<Option<DurableState>>,
    events: broadcast::Sender<ClientEvent>,
    conn: watch::Sender<ConnectionState>,
    /// The connection task's queue (socket work the machine asks for).
    io: Mutex<Option<mpsc::UnboundedSender<Io>>>,
    driver: Mutex<Option<Driver>>,
    /// Requests waiting for their answer.
    answers: Mutex<HashMap<RequestId, oneshot::Sender<Result<AckResult>>>>,
    /// The machine's next deadline may have moved: the connection task looks again.
    wake: Notify,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn emit(&self, ev: ClientEvent) {
        if let ClientEvent::Connection(s) = &ev {
            self.conn.send_replace(s.clone());
        }
        // No receiver is fine: events are also reflected in the local view.
        let _ = self.events.send(ev);
    }

    /// Runs `f` on the machine (None before login), then performs what it asks for.
    fn with_machine<R>(self: &Arc<Self>, f: impl FnOnce(&mut ClientMachine) -> R) -> Option<R> {
        let mut guard = lock(&self.machine);
        let m = guard.as_mut()?;
        let r = f(m);
        while let Some(o) = m.poll() {
            self.perform(o);
        }
        drop(guard);
        self.wake.notify_one();
        Some(r)
    }

    /// Reads the machine (None before login).
    fn read<R>(&self, f: impl FnOnce(&ClientMachine) -> R) -> Option<R> {
        lock(&self.machine).as_ref().map(f)
    }

    fn perform(self: &Arc<Self>, o: Output) {
        match o {
            Output::Event(ev) => self.emit(ev),
            Output::Answer { request, result } => {
                if let Some(tx) = lock(&self.answers).remove(&request) {
                    let _ = tx.send(result);
                }
            }
            Output::Open { conn, refresh } => self.to_io(Io::Open { conn, refresh }),
            Output::Write { conn, frame } => self.to_io(Io::Write { conn, frame }),
            Output::Close { conn, code, reason } => self.to_io(Io::Close { conn, code, reason }),
            Output::Rest(call) => {
                let inner = self.clone();
                tokio::spawn(async move {
                    let result = inner.rest(call).await.unwrap_or_else(RestResult::Failed);
                    inner.with_machine(|m| m.rest_done(result));
                });
            }
        }
    }

    fn to_io(&self, io: Io) {
        if let Some(tx) = lock(&self.io).as_ref() {
            let _ = tx.send(io);
        }
    }

    /// Performs a REST call the machine asked for.
    async fn rest(&self, call: RestCall) -> Result<RestResult> {
        Ok(match call {
            RestCall::Reload => {
                let mut summaries = rest::list_conversations(self, false).await?;
                summaries.extend(rest::list_conversations(self, true).await?);
                RestResult::Reload {
                    summaries,
                    contacts: rest::list_contacts(self).await?,
                    blocked: rest::list_blocked(self).await?,
                }
            }
            RestCall::Presence(users) => {
                let mut all = Vec::new();
                for chunk in users.chunks(100) {
                    all.extend(rest::presence(self, chunk).await?);
                }
                RestResult::Presence(all)
            }
        })
    }

    /// Sends a request on the live connection and waits for its answer.
    async fn ws_request(self: &Arc<Self>, request: ClientRequest) -> Result<AckResult> {
        let (reply, rx) = oneshot::channel();
        // The answer slot is registered under the machine's lock, before any answer can come.
        let id = {
            let mut guard = lock(&self.machine);
            let m = guard.as_mut().ok_or_else(|| Error::unauthorized("not logged in"))?;
            let id = m.request(now_ms(), request)?;
            lock(&self.answers).insert(id, reply);
            while let Some(o) = m.poll() {
                self.perform(o);
            }
            id
        };
        self.wake.notify_one();
        let r = rx.await;
        lock(&self.answers).remove(&id);
        r.unwrap_or_else(|_| Err(Error::unavailable("connection closed before the answer")))
    }

    /// Reads or changes the local view (None before login). Changes made here are reported
    /// by the caller.
    fn with_view<R>(self: &Arc<Self>, f: impl FnOnce(&mut LocalView) -> R) -> Option<R> {
        self.with_machine(|m| f(m.view_mut()))
    }

    /// Reloads the conversation list into the view (one reload at a time).
    fn spawn_reload(self: &Arc<Self>) {
        self.with_machine(ClientMachine::request_reload);
    }
}

/// A ChatiCO client. Cheap to clone (all clones share one connection and one state).
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("base_url", &self.inner.config.base_url)
            .field("state", &*self.inner.conn.borrow())
            .finish()
    }
}

impl Client {
    /// A client for the server at `config.base_url`. Nothing is sent until a method is called.
    pub fn new(config: ClientConfig) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(config.request_timeout)
            .build()
            .map_err(|e| Error::internal(format!("http client: {e}")))?;
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let (conn, _) = watch::channel(ConnectionState::Disconnected);
        Ok(Client {
            inner: Arc::new(Inner {
                config,
                http,
                session: tokio::sync::Mutex::new(None),
                machine: Mutex::new(None),
                staged: Mutex::new(None),
                events,
                conn,
                io: Mutex::new(None),
                driver: Mutex::new(None),
                answers: Mutex::new(HashMap::new()),
                wake: Notify::new(),
            }),
        })
    }

    /// The configuration the client was built with.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A new subscription to the client's events (from now on).
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.events.subscribe()
    }

    /// The state of the live connection now.
    pub fn connection_state(&self) -> ConnectionState {
        self.inner.conn.borrow().clone()
    }

    /// Watches the connection state.
    pub fn watch_connection(&self) -> watch::Receiver<ConnectionState> {
        self.inner.conn.subscribe()
    }

    // ---- session ----------------------------------------------------------------------

    /// Asks the server to text a login code to `phone`.
    pub async fn request_otp(&self, phone: &str) -> Result<chatico_core::protocol::OtpRequested> {
        rest::request_otp(&self.inner, phone).await
    }

    /// Logs in with the code received by SMS. Starts a fresh local state for that user
    /// (unless it is the user already loaded).
    pub async fn verify_otp(&self, phone: &str, code: &str) -> Result<chatico_core::protocol::AuthTokens> {
        let tokens = rest::verify_otp(&self.inner, phone, code).await?;
        self.install_session(Session::from(&tokens)).await;
        Ok(tokens)
    }

    /// Logs in with a session saved earlier (see [`ClientEvent::SessionRefreshed`]).
    pub async fn restore_session(&self, session: Session) {
        self.install_session(session).await;
    }

    async fn install_session(&self, session: Session) {
        let me = session.user_id;
        *self.inner.session.lock().await = Some(session);
        let mut m = lock(&self.inner.machine);
        if m.as_ref().map(ClientMachine::me) != Some(me) {
            let durable = lock(&self.inner.staged).take().unwrap_or_default();
            *m = Some(ClientMachine::new(
                self.inner.config.machine(),
                me,
                durable,
                rand::random(),
            ));
        }
    }

    /// The current session (its tokens change on every refresh).
    pub async fn session(&self) -> Option<Session> {
        self.inner.session.lock().await.clone()
    }

    /// The logged-in user, if any.
    pub fn user_id(&self) -> Option<UserId> {
        lock(&self.inner.machine).as_ref().map(ClientMachine::me)
    }

    /// Ends this session on the server, disconnects and forgets the tokens and local state.
    pub async fn logout(&self) -> Result<()> {
        let r = rest::logout(&self.inner).await;
        self.forget().await;
        r
    }

    /// Ends every session of the user (all devices), then as [`Client::logout`].
    /// Returns how many sessions were revoked.
    pub async fn logout_everywhere(&self) -> Result<u64> {
        let r = rest::logout_everywhere(&self.inner).await;
        self.forget().await;
        r
    }

    async fn forget(&self) {
        self.disconnect().await;
        *self.inner.session.lock().await = None;
        *lock(&self.inner.machine) = None;
        self.inner.emit(ClientEvent::Connection(ConnectionState::LoggedOut));
    }

    // ---- durable state ----------------------------------------------------------------

    /// The sync cursor, the outbox and what was reported, as JSON (one format on every
    /// platform), for the app to persist and hand back to [`Client::import_state`].
    pub fn export_state(&self) -> Result<String> {
        match lock(&self.inner.machine).as_ref() {
            Some(m) => m.export_state(),
            None => serde_json::to_string(&lock(&self.inner.staged).clone().unwrap_or_default())
                .map_err(|e| Error::internal(format!("serializing client state: {e}"))),
        }
    }

    /// Restores what [`Client::export_state`] returned (before `connect`; before login, it
    /// is kept for the next login).
    pub fn import_state(&self, json: &str) -> Result<()> {
        let d = ClientMachine::parse_state(json)?;
        let mut m = lock(&self.inner.machine);
        match m.as_mut() {
            Some(m) => m.import_state(d),
            None => *lock(&self.inner.staged) = Some(d),
        }
        Ok(())
    }

    /// The durable resume cursor.
    pub fn sync_cursor(&self) -> SyncCursor {
        lock(&self.inner.machine).as_ref().map_or(0, ClientMachine::cursor)
    }

    // ---- connection -------------------------------------------------------------------

    /// Starts the connection task (connect, subscribe, resume, reconnect forever until
    /// [`Client::disconnect`]). Needs a session. Must be called inside a tokio runtime.
    pub async fn connect(&self) -> Result<()> {
        if self.inner.session.lock().await.is_none() {
            return Err(Error::unauthorized("not logged in"));
        }
        {
            let mut driver = lock(&self.inner.driver);
            if driver.as_ref().is_none_or(|d| d.task.is_finished()) {
                let (tx, rx) = mpsc::unbounded_channel();
                *lock(&self.inner.io) = Some(tx);
                let (stop, stop_rx) = watch::channel(false);
                let task = tokio::spawn(connection::run(self.inner.clone(), rx, stop_rx));
                *driver = Some(Driver { stop, task });
            }
        }
        self.inner.with_machine(|m| m.connect(now_ms()));
        Ok(())
    }

    /// Closes the connection and stops reconnecting. The outbox and cursor are kept; a later
    /// [`Client::connect`] resumes.
    pub async fn disconnect(&self) {
        self.inner.with_machine(|m| m.disconnect(now_ms()));
        let driver = lock(&self.inner.driver).take();
        if let Some(d) = driver {
            let _ = d.stop.send(true);
            if let Err(e) = d.task.await
                && e.is_panic()
            {
                tracing::error!("the connection task panicked");
            }
        }
        *lock(&self.inner.io) = None;
    }

    /// Skips the current backoff wait (e.g. the OS says the network is back).
    pub fn reconnect_now(&self) {
        self.inner.with_machine(|m| m.reconnect_now(now_ms()));
    }

    // ---- local view -------------------------------------------------------------------

    /// Reads the local view (None before login).
    pub fn with_view<R>(&self, f: impl FnOnce(&LocalView) -> R) -> Option<R> {
        lock(&self.inner.machine).as_ref().map(|m| f(m.view()))
    }

    /// Conversations, newest activity first.
    pub fn conversations(&self, archived: bool) -> Vec<ConversationView> {
        self.with_view(|v| v.conversations(archived).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// One conversation of the local view, if known.
    pub fn conversation(&self, id: ConversationId) -> Option<ConversationView> {
        self.with_view(|v| v.conversation(id).cloned()).flatten()
    }

    /// Known messages of a conversation (a window of the newest), ascending seq.
    pub fn messages(&self, id: ConversationId) -> Vec<Message> {
        self.with_view(|v| v.messages(id).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    /// A user's presence as last seen by the client, if known.
    pub fn presence(&self, user: UserId) -> Option<Presence> {
        self.with_view(|v| v.presence(user).cloned()).flatten()
    }

    /// Unread messages over non-archived conversations.
    pub fn total_unread(&self) -> i64 {
        self.with_view(LocalView::total_unread).unwrap_or(0)
    }

    /// Messages not yet acknowledged by the server, oldest first.
    pub fn pending(&self) -> Vec<PendingMessage> {
        lock(&self.inner.machine)
            .as_ref()
            .map(|m| m.pending().to_vec())
            .unwrap_or_default()
    }

    // ---- real-time operations ---------------------------------------------------------

    /// Queues a message in the outbox and sends it as soon as connected. Returns at once with
    /// the pending message (its `client_msg_id` identifies it in [`ClientEvent::Sent`] and
    /// [`ClientEvent::SendFailed`]). Resends after a reconnect reuse the same id, so the
    /// server stores it once.
    /// Before login the message waits in the outbox of the next login.
    pub fn send(&self, conversation_id: ConversationId, content: Content, reply_to_seq: Option<i64>) -> PendingMessage {
        let mut content = Some(content);
        let sent = self.inner.with_machine(|m| {
            content
                .take()
                .map(|c| m.send(now_ms(), conversation_id, c, reply_to_seq))
        });
        if let Some(Some(p)) = sent {
            return p;
        }
        let Some(c) = content else {
            unreachable!("the content is taken only with a machine")
        };
        let p = lock(&self.inner.staged)
            .get_or_insert_with(DurableState::default)
            .outbox
            .enqueue(conversation_id, c, reply_to_seq, now_ms());
        self.inner.emit(ClientEvent::Queued(p.clone()));
        p
    }

    /// [`Client::send`] of a text message.
    pub fn send_text(&self, conversation_id: ConversationId, text: impl Into<String>) -> PendingMessage {
        self.send(conversation_id, Content::text(text), None)
    }

    /// [`Client::send`] of a text message mentioning group members: each [`Mention`] names
    /// a member by a range of the text in UTF-16 code units (see docs/PROTOCOL.md,
    /// "Mentions"). The server refuses ranges outside the text and non-members.
    pub fn send_text_with_mentions(
        &self,
        conversation_id: ConversationId,
        text: impl Into<String>,
        mentions: Vec<Mention>,
    ) -> PendingMessage {
        let content = Content::Text {
            text: text.into(),
            mentions,
        };
        self.send(conversation_id, content, None)
    }

    /// Marks messages up to `seq` as read (and delivered) for the caller. Over the WebSocket
    /// when connected, over REST otherwise. Returns the resulting `(delivered_seq, read_seq)`.
    pub async fn mark_read(&self, conversation_id: ConversationId, seq: i64) -> Result<(i64, i64)> {
        self.receipt(
            conversation_id,
            ReceiptBody {
                delivered_seq: Some(seq),
                read_seq: Some(seq),
            },
        )
        .await
    }

    /// Marks messages up to `seq` as delivered to the caller.
    pub async fn mark_delivered(&self, conversation_id: ConversationId, seq: i64) -> Result<(i64, i64)> {
        self.receipt(
            conversation_id,
            ReceiptBody {
                delivered_seq: Some(seq),
                read_seq: None,
            },
        )
        .await
    }

    async fn receipt(&self, conversation_id: ConversationId, body: ReceiptBody) -> Result<(i64, i64)> {
        let req = ClientRequest::Receipt {
            conversation_id,
            delivered_seq: body.delivered_seq,
            read_seq: body.read_seq,
        };
        // Over the WebSocket the machine applies the answer to the view itself.
        match self.inner.ws_request(req).await {
            Ok(AckResult::Receipt {
                delivered_seq,
                read_seq,
            }) => Ok((delivered_seq, read_seq)),
            Ok(other) => Err(unexpected("receipt", &other)),
            Err(Error::Unavailable { .. }) => {
                let m = rest::receipts(&self.inner, conversation_id, &body).await?;
                self.inner
                    .with_machine(|mc| mc.own_receipt(conversation_id, m.delivered_seq, m.read_seq));
                Ok((m.delivered_seq, m.read_seq))
            }
            Err(e) => Err(e),
        }
    }

    /// Starts or stops the typing indicator (the server expires it by itself).
    pub async fn set_typing(&self, conversation_id: ConversationId, typing: bool) -> Result<()> {
        match self
            .inner
            .ws_request(ClientRequest::Typing {
                conversation_id,
                typing,
            })
            .await
        {
            Ok(AckResult::Typing {}) => Ok(()),
            Ok(other) => Err(unexpected("typing", &other)),
            Err(Error::Unavailable { .. }) => rest::typing(&self.inner, conversation_id, typing).await,
            Err(e) => Err(e),
        }
    }

    /// Who is online and typing now, among the people the caller sees (from the server).
    pub async fn snapshot(&self) -> Result<EphemeralSnapshot> {
        let r = rest::sync(&self.inner, self.sync_cursor(), Some(1)).await?;
        Ok(r.ephemeral)
    }
}

fn unexpected(what: &str, got: &AckResult) -> Error {
    Error::internal(format!("unexpected answer to {what}: {got:?}"))
}

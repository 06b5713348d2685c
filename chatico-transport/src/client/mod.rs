//! The native client SDK: what an app uses instead of speaking the protocol itself.
//!
//! A [`Client`] logs in with an OTP, keeps its tokens fresh, holds one WebSocket to the gateway
//! (reconnecting with exponential backoff and jitter), resumes from its sync cursor after every
//! reconnect, resends its outbox with the original `client_msg_id`s, and keeps a
//! [`LocalView`] current. Every server operation has a typed method; events arrive on a
//! broadcast stream ([`Client::events`]).
//!
//! The transport-free parts — [`Outbox`], [`SyncState`], [`LocalView`] — live in
//! `chatico_core::client` and are shared with the browser client; this module only moves bytes.
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

mod backoff;
mod connection;
mod rest;
mod types;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chatico_core::client::{ConversationView, LocalView, Outbox, PendingMessage, SyncState};
use chatico_core::error::{Error, Result};
use chatico_core::ids::{ConversationId, Timestamp, UserId};
use chatico_core::model::{Content, Message, Presence};
use chatico_core::protocol::{AckResult, ClientRequest, ReceiptBody};
use chatico_core::sync::{EphemeralSnapshot, SyncCursor};
use serde::{Deserialize, Serialize};
use tokio::sync::{Notify, broadcast, mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use backoff::Backoff;
pub use chatico_core::client::ViewUpdate;
pub use types::{ClientConfig, ClientEvent, ConnectionState, Session};

use connection::Command;

/// Milliseconds since the Unix epoch, from the system clock.
pub(crate) fn now_ms() -> Timestamp {
    use chatico_core::ports::Clock;
    chatico_core::ports::SystemClock.now_ms()
}

/// What the client keeps between connections. Serializable: [`Client::export_state`].
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Durable {
    sync: SyncState,
    outbox: Outbox,
    /// Whether a subscription ever succeeded: the first one starts "from now" and loads the
    /// conversation list over REST; every later one resumes from the cursor.
    subscribed_before: bool,
}

struct State {
    durable: Durable,
    view: Option<LocalView>,
}

/// Reports messages to the app in seq order per conversation.
///
/// A message that arrives ahead of a gap (the missing one was committed first but is still
/// on its way — e.g. its live fan-out died with its sender's connection and the next
/// checkpoint brings it) is held until the gap fills, or until the next `cursor` checkpoint
/// (which covers every change committed before it: whatever is still missing then is not
/// visible to this user), or until [`Client::disconnect`]. Held messages survive a
/// reconnect: the new connection's catch-up fills their gaps. Messages are applied to the
/// local view at once either way; only their events wait.
#[derive(Default)]
struct Reorder {
    next_seq: HashMap<ConversationId, i64>,
    held: HashMap<ConversationId, BTreeMap<i64, Vec<ClientEvent>>>,
}

impl Reorder {
    /// Offers the events of message `seq` (`before`: the view's last seq before it); returns
    /// what may be reported now, in order.
    fn offer(&mut self, conv: ConversationId, seq: i64, before: i64, events: Vec<ClientEvent>) -> Vec<ClientEvent> {
        let next = *self.next_seq.entry(conv).or_insert(before + 1);
        if seq > next {
            self.held.entry(conv).or_default().insert(seq, events);
            return Vec::new();
        }
        let mut out = events;
        let mut next = next.max(seq + 1);
        if let Some(h) = self.held.get_mut(&conv) {
            while let Some(events) = h.remove(&next) {
                out.extend(events);
                next += 1;
            }
            if h.is_empty() {
                self.held.remove(&conv);
            }
        }
        self.next_seq.insert(conv, next);
        out
    }

    /// Everything held, in seq order per conversation.
    fn release(&mut self) -> Vec<ClientEvent> {
        let mut out = Vec::new();
        for (conv, h) in std::mem::take(&mut self.held) {
            if let Some((&last, _)) = h.last_key_value() {
                let n = self.next_seq.entry(conv).or_insert(last + 1);
                *n = (*n).max(last + 1);
            }
            out.extend(h.into_values().flatten());
        }
        out
    }
}

/// The running connection task.
struct Driver {
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

pub(crate) struct Inner {
    config: ClientConfig,
    http: reqwest::Client,
    /// Async so that one refresh at a time runs (refresh tokens are single use).
    session: tokio::sync::Mutex<Option<Session>>,
    state: Mutex<State>,
    events: broadcast::Sender<ClientEvent>,
    conn: watch::Sender<ConnectionState>,
    /// The live connection's command queue, while one is subscribed.
    link: Mutex<Option<mpsc::UnboundedSender<Command>>>,
    driver: Mutex<Option<Driver>>,
    reconnect_now: Notify,
    reorder: Mutex<Reorder>,
    reloading: AtomicBool,
    frame_ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind; keep going with it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    fn emit(&self, ev: ClientEvent) {
        // No receiver is fine: events are also reflected in the local view.
        let _ = self.events.send(ev);
    }

    fn set_state(&self, s: ConnectionState) {
        let changed = self.conn.send_if_modified(|cur| {
            if *cur != s {
                *cur = s.clone();
                true
            } else {
                false
            }
        });
        if changed {
            self.emit(ClientEvent::Connection(s));
        }
    }

    fn next_frame_id(&self) -> String {
        self.frame_ids.fetch_add(1, Ordering::Relaxed).to_string()
    }

    fn release_held(&self) {
        let out = lock(&self.reorder).release();
        for e in out {
            self.emit(e);
        }
    }

    /// Wakes the connection task to send what the outbox holds.
    fn nudge(&self) {
        if let Some(tx) = lock(&self.link).as_ref() {
            let _ = tx.send(Command::Flush);
        }
    }

    /// Sends a request on the live connection and waits for its answer.
    async fn ws_request(&self, request: ClientRequest) -> Result<AckResult> {
        let (reply, rx) = oneshot::channel();
        {
            let link = lock(&self.link);
            let tx = link.as_ref().ok_or_else(|| Error::unavailable("not connected"))?;
            tx.send(Command::Request { request, reply })
                .map_err(|_| Error::unavailable("connection closed"))?;
        }
        match tokio::time::timeout(self.config.request_timeout, rx).await {
            Ok(Ok(r)) => r,
            Ok(Err(_)) => Err(Error::unavailable("connection closed before the answer")),
            Err(_) => Err(Error::unavailable("request timed out")),
        }
    }

    fn with_view<R>(&self, f: impl FnOnce(&mut LocalView) -> R) -> Option<R> {
        lock(&self.state).view.as_mut().map(f)
    }

    /// Reloads the conversation list into the view (after the first subscription, and when a
    /// change names a conversation the view does not know). One reload at a time.
    fn spawn_reload(self: &Arc<Self>) {
        if self.reloading.swap(true, Ordering::AcqRel) {
            return;
        }
        let inner = self.clone();
        tokio::spawn(async move {
            let r = inner.reload().await;
            inner.reloading.store(false, Ordering::Release);
            if let Err(e) = r {
                tracing::warn!(error = %e, "reloading the conversation list failed");
            }
        });
    }

    async fn reload(self: &Arc<Self>) -> Result<()> {
        let mut summaries = rest::list_conversations(self, false).await?;
        summaries.extend(rest::list_conversations(self, true).await?);
        let contacts = rest::list_contacts(self).await?;
        let blocked = rest::list_blocked(self).await?;
        let updates = self
            .with_view(|v| {
                let mut u = v.load_summaries(summaries);
                u.extend(v.load_contacts(
                    contacts.iter().map(|p| p.id).collect(),
                    blocked.iter().map(|p| p.id).collect(),
                ));
                for p in contacts.into_iter().chain(blocked) {
                    u.push(v.load_profile(p));
                }
                u
            })
            .unwrap_or_default();
        for u in updates {
            self.emit(ClientEvent::View(u));
        }
        // Presence of the people in these conversations (the subscription's snapshot only
        // covers those the caller shared a conversation or contact with at that moment).
        let people: Vec<UserId> = self
            .with_view(|v| {
                let me = v.me();
                let mut ids: Vec<UserId> = v
                    .conversations(false)
                    .into_iter()
                    .chain(v.conversations(true))
                    .flat_map(|c| c.members.iter().map(|m| m.user_id))
                    .chain(v.contacts().iter().copied())
                    .filter(|u| *u != me)
                    .collect();
                ids.sort();
                ids.dedup();
                ids
            })
            .unwrap_or_default();
        for chunk in people.chunks(100) {
            let ps = rest::presence(self, chunk).await?;
            let updates = self
                .with_view(|v| {
                    ps.into_iter()
                        .flat_map(|p| v.apply_event(&chatico_core::sync::Event::Presence(p)))
                        .collect::<Vec<_>>()
                })
                .unwrap_or_default();
            for u in updates {
                self.emit(ClientEvent::View(u));
            }
        }
        Ok(())
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
                state: Mutex::new(State {
                    durable: Durable::default(),
                    view: None,
                }),
                events,
                conn,
                link: Mutex::new(None),
                driver: Mutex::new(None),
                reconnect_now: Notify::new(),
                reorder: Mutex::new(Reorder::default()),
                reloading: AtomicBool::new(false),
                frame_ids: AtomicU64::new(1),
            }),
        })
    }

    pub fn config(&self) -> &ClientConfig {
        &self.inner.config
    }

    /// A new subscription to the client's events (from now on).
    pub fn events(&self) -> broadcast::Receiver<ClientEvent> {
        self.inner.events.subscribe()
    }

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
        let mut st = lock(&self.inner.state);
        if st.view.as_ref().map(LocalView::me) != Some(me) {
            st.view = Some(LocalView::new(me));
            st.durable = Durable::default();
        }
    }

    /// The current session (its tokens change on every refresh).
    pub async fn session(&self) -> Option<Session> {
        self.inner.session.lock().await.clone()
    }

    /// The logged-in user, if any.
    pub fn user_id(&self) -> Option<UserId> {
        lock(&self.inner.state).view.as_ref().map(LocalView::me)
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
        let mut st = lock(&self.inner.state);
        st.view = None;
        st.durable = Durable::default();
        drop(st);
        self.inner.set_state(ConnectionState::LoggedOut);
    }

    // ---- durable state ----------------------------------------------------------------

    /// The sync cursor and the outbox as JSON, for the app to persist and hand back to
    /// [`Client::import_state`] after a restart.
    pub fn export_state(&self) -> Result<String> {
        serde_json::to_string(&lock(&self.inner.state).durable)
            .map_err(|e| Error::internal(format!("serializing client state: {e}")))
    }

    /// Restores what [`Client::export_state`] returned (before `connect`).
    pub fn import_state(&self, json: &str) -> Result<()> {
        let d: Durable =
            serde_json::from_str(json).map_err(|e| Error::invalid("state", format!("not a client state: {e}")))?;
        lock(&self.inner.state).durable = d;
        Ok(())
    }

    /// The durable resume cursor.
    pub fn sync_cursor(&self) -> SyncCursor {
        lock(&self.inner.state).durable.sync.cursor()
    }

    // ---- connection -------------------------------------------------------------------

    /// Starts the connection task (connect, subscribe, resume, reconnect forever until
    /// [`Client::disconnect`]). Needs a session. Must be called inside a tokio runtime.
    pub async fn connect(&self) -> Result<()> {
        if self.inner.session.lock().await.is_none() {
            return Err(Error::unauthorized("not logged in"));
        }
        let mut driver = lock(&self.inner.driver);
        if driver.as_ref().is_some_and(|d| !d.task.is_finished()) {
            return Ok(());
        }
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(connection::run(self.inner.clone(), stop_rx));
        *driver = Some(Driver { stop, task });
        Ok(())
    }

    /// Closes the connection and stops reconnecting. The outbox and cursor are kept; a later
    /// [`Client::connect`] resumes.
    pub async fn disconnect(&self) {
        let driver = lock(&self.inner.driver).take();
        if let Some(d) = driver {
            let _ = d.stop.send(true);
            if let Err(e) = d.task.await
                && e.is_panic()
            {
                tracing::error!("the connection task panicked");
            }
        }
        *lock(&self.inner.link) = None;
        self.inner.release_held();
        if *self.inner.conn.borrow() != ConnectionState::LoggedOut {
            self.inner.set_state(ConnectionState::Disconnected);
        }
    }

    /// Skips the current backoff wait (e.g. the OS says the network is back).
    pub fn reconnect_now(&self) {
        self.inner.reconnect_now.notify_one();
    }

    // ---- local view -------------------------------------------------------------------

    /// Reads the local view (None before login).
    pub fn with_view<R>(&self, f: impl FnOnce(&LocalView) -> R) -> Option<R> {
        lock(&self.inner.state).view.as_ref().map(f)
    }

    /// Conversations, newest activity first.
    pub fn conversations(&self, archived: bool) -> Vec<ConversationView> {
        self.with_view(|v| v.conversations(archived).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn conversation(&self, id: ConversationId) -> Option<ConversationView> {
        self.with_view(|v| v.conversation(id).cloned()).flatten()
    }

    /// Known messages of a conversation (a window of the newest), ascending seq.
    pub fn messages(&self, id: ConversationId) -> Vec<Message> {
        self.with_view(|v| v.messages(id).into_iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn presence(&self, user: UserId) -> Option<Presence> {
        self.with_view(|v| v.presence(user).cloned()).flatten()
    }

    pub fn total_unread(&self) -> i64 {
        self.with_view(LocalView::total_unread).unwrap_or(0)
    }

    /// Messages not yet acknowledged by the server, oldest first.
    pub fn pending(&self) -> Vec<PendingMessage> {
        lock(&self.inner.state).durable.outbox.pending().to_vec()
    }

    // ---- real-time operations ---------------------------------------------------------

    /// Queues a message in the outbox and sends it as soon as connected. Returns at once with
    /// the pending message (its `client_msg_id` identifies it in [`ClientEvent::Sent`] and
    /// [`ClientEvent::SendFailed`]). Resends after a reconnect reuse the same id, so the
    /// server stores it once.
    pub fn send(&self, conversation_id: ConversationId, content: Content, reply_to_seq: Option<i64>) -> PendingMessage {
        let p = lock(&self.inner.state)
            .durable
            .outbox
            .enqueue(conversation_id, content, reply_to_seq, now_ms());
        self.inner.emit(ClientEvent::Queued(p.clone()));
        self.inner.nudge();
        p
    }

    /// [`Client::send`] of a text message.
    pub fn send_text(&self, conversation_id: ConversationId, text: impl Into<String>) -> PendingMessage {
        self.send(conversation_id, Content::Text { text: text.into() }, None)
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
        let marks = match self.inner.ws_request(req).await {
            Ok(AckResult::Receipt {
                delivered_seq,
                read_seq,
            }) => (delivered_seq, read_seq),
            Ok(other) => return Err(unexpected("receipt", &other)),
            Err(Error::Unavailable { .. }) => {
                let m = rest::receipts(&self.inner, conversation_id, &body).await?;
                (m.delivered_seq, m.read_seq)
            }
            Err(e) => return Err(e),
        };
        // The view reflects the new watermarks now (the change event follows; applying it
        // again is harmless, watermarks only move forward).
        let updates = self
            .inner
            .with_view(|v| {
                let me = v.me();
                v.apply_change(&chatico_core::sync::Change {
                    pos: 0,
                    conversation_id: Some(conversation_id),
                    kind: chatico_core::sync::ChangeKind::Receipt {
                        user_id: me,
                        delivered_seq: marks.0,
                        read_seq: marks.1,
                    },
                })
            })
            .unwrap_or_default();
        for u in updates {
            self.inner.emit(ClientEvent::View(u));
        }
        Ok(marks)
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

/// Keeps a duration positive and bounded for timers.
pub(crate) fn clamp(d: Duration) -> Duration {
    d.clamp(Duration::from_millis(1), Duration::from_secs(3600))
}

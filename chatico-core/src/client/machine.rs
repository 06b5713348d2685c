//! The client connection state machine: one implementation of the client protocol that
//! every platform drives (native tokio, browser, FFI), without I/O and without a clock.
//!
//! A driver feeds it what happened — the socket opened or closed, a server frame arrived,
//! time passed, the app asked for something, a REST call it asked for finished — each with
//! the current time, and performs what [`ClientMachine::poll`] hands back: open a socket,
//! write a frame, close it, report an event, answer a request, make a REST call. It calls
//! [`ClientMachine::tick`] at [`ClientMachine::poll_timeout`] at the latest.
//!
//! ```text
//!           connect()              opened()          frame(ready)       ack(subscribe)
//! Stopped ───────────► Opening ─────────────► Open ─────────────► catch-up ──────────► Subscribed
//!    ▲                    ▲                     │ closed() / silence                      │
//!    │ disconnect()       │ tick() at `until`   ▼                                          │
//!    └─────────────── Waiting { until } ◄───────┴──────────────────────────────────────────┘
//! ```
//!
//! What it owns:
//! - the outbox ([`Outbox`]) and the slow-start send window: sends go out oldest first with
//!   their original `client_msg_id`; a connection starts with [`MachineConfig::initial_send_window`]
//!   in flight and doubles it with each acknowledgement up to [`MachineConfig::max_inflight_sends`];
//! - the pending frames, by frame id (answers come in order, a dead socket fails them);
//! - the catch-up: a resumed connection pages through missed changes with `sync` before it
//!   subscribes, moving the durable cursor after each page (a link that dies every few
//!   kilobytes still makes progress);
//! - exactly-once application ([`SyncState`]) and in-order reporting per conversation
//!   ([`Reorder`]);
//! - coalesced automatic delivery receipts;
//! - the [`LocalView`];
//! - reconnect backoff (core's [`RetryPolicy`]) and the link's liveness;
//! - the durable state ([`DurableState`], one JSON format on every platform).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::{Deserialize, Serialize};

use super::reorder::Reorder;
use super::types::{ClientEvent, ConnectionState};
use super::{LocalView, Outbox, PendingMessage, SyncState, ViewUpdate};
use crate::error::{Error, Result};
use crate::ids::{ClientMsgId, ConversationId, Timestamp, UserId};
use crate::model::{Content, ConversationSummary, Message, Presence, UserProfile};
use crate::protocol::{AckResult, ClientFrame, ClientRequest, ServerFrame, close_code};
use crate::retry::RetryPolicy;
use crate::sync::{Change, ChangeKind, Event, SyncCursor, SyncPage};

/// Which socket an input or output concerns. Inputs naming an older socket are ignored.
pub type ConnId = u64;

/// Identifies a request made with [`ClientMachine::request`] in its [`Output::Answer`].
pub type RequestId = u64;

/// Tunables of the machine. Times in milliseconds.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    /// Reconnect delays: attempt `n` (from 0 since the last healthy connection) waits
    /// `reconnect.backoff(n + 1)`. `max_attempts` is ignored (a client retries forever).
    pub reconnect: RetryPolicy,
    /// Most sends in flight on a connection. Default 64.
    pub max_inflight_sends: usize,
    /// Sends in flight right after a (re)connect; doubles with each acknowledgement. Default 4.
    pub initial_send_window: usize,
    /// Changes per `sync` page of the catch-up before subscribing. Default 50.
    pub catch_up_page: u32,
    /// Acknowledge delivery of received messages automatically. Default true.
    pub auto_delivered: bool,
    /// How long delivery receipts are coalesced before they go out. Default 100.
    pub receipt_delay_ms: i64,
    /// How long a request waits for its answer. Default 15 000.
    pub request_timeout_ms: i64,
    /// Silence after which the link counts as dead, until `ready` says better. Default 60 000.
    pub silence_ms: i64,
    /// Pause of the outbox after a transient send failure without a `retry_after`. Default 1 000.
    pub send_retry_ms: i64,
    /// Send an application `ping` when nothing arrived for the server's heartbeat period,
    /// for platforms that never see the server's WebSocket pings (browsers). Default false.
    pub app_ping: bool,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            reconnect: RetryPolicy {
                max_attempts: u32::MAX,
                initial_backoff: std::time::Duration::from_millis(250),
                max_backoff: std::time::Duration::from_secs(30),
            },
            max_inflight_sends: 64,
            initial_send_window: 4,
            catch_up_page: 50,
            auto_delivered: true,
            receipt_delay_ms: 100,
            request_timeout_ms: 15_000,
            silence_ms: 60_000,
            send_retry_ms: 1_000,
            app_ping: false,
        }
    }
}

/// What the client keeps between runs; [`ClientMachine::export_state`] writes it as JSON.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    /// The resume cursor and the change keys applied since it.
    pub sync: SyncState,
    /// Sends not yet acknowledged, resent after a restart.
    pub outbox: Outbox,
    /// Whether a subscription was ever established (its first checkpoint arrived): until
    /// then subscriptions start "from now" (the app loads the conversation list over REST);
    /// every later one resumes from the cursor.
    pub subscribed_before: bool,
    /// Per conversation, the seq up to which messages were reported (see [`Reorder`]).
    #[serde(default)]
    pub reported: BTreeMap<ConversationId, i64>,
}

/// A REST call the machine needs; the driver performs it and hands the outcome to
/// [`ClientMachine::rest_done`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestCall {
    /// The conversation list (archived and not), contacts and blocks.
    Reload,
    /// The presence of these users.
    Presence(Vec<UserId>),
}

/// The outcome of a [`RestCall`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RestResult {
    /// The conversation list, contacts and blocks, fetched anew.
    Reload {
        /// Every conversation of the user, archived ones included.
        summaries: Vec<ConversationSummary>,
        /// The user's contacts.
        contacts: Vec<UserProfile>,
        /// The users the user blocked.
        blocked: Vec<UserProfile>,
    },
    /// The presence of the asked users.
    Presence(Vec<Presence>),
    /// The call failed; the machine retries later.
    Failed(Error),
}

/// What the driver must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Open a WebSocket (with a refreshed access token when `refresh`: the last one was
    /// refused), then report [`ClientMachine::opened`] or [`ClientMachine::closed`] with `conn`.
    Open {
        /// The id to report the socket's fate with.
        conn: ConnId,
        /// Refresh the access token first.
        refresh: bool,
    },
    /// Write this frame on socket `conn`.
    Write {
        /// The socket to write on.
        conn: ConnId,
        /// The frame, to send as JSON text.
        frame: ClientFrame,
    },
    /// Close socket `conn`; the machine already counts it as closed (do not report it).
    Close {
        /// The socket to close.
        conn: ConnId,
        /// The WebSocket close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Hand this to the app.
    Event(ClientEvent),
    /// The answer to [`ClientMachine::request`].
    Answer {
        /// The id [`ClientMachine::request`] returned.
        request: RequestId,
        /// The server's answer, or the error.
        result: Result<AckResult>,
    },
    /// Perform this REST call and report [`ClientMachine::rest_done`].
    Rest(RestCall),
}

/// What a frame id in flight waits for.
/// A message event the reorder buffer holds, with the deletes and hides of that message that
/// arrived while it waited (applied right after it).
#[derive(Debug, Clone)]
struct Held {
    event: Event,
    after: Vec<Event>,
}

#[derive(Debug)]
enum Pending {
    Auth,
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
    /// An application ping (its answer is proof of life).
    Ping,
    Request {
        id: RequestId,
        deadline: Timestamp,
        /// For a receipt: the conversation whose watermarks the answer carries.
        receipt: Option<ConversationId>,
    },
}

/// One socket's state.
#[derive(Debug)]
struct Conn {
    id: ConnId,
    /// `ready` arrived.
    ready: bool,
    subscribed: bool,
    pending: HashMap<String, Pending>,
    inflight: HashSet<ClientMsgId>,
    window: usize,
    sends_paused_until: Option<Timestamp>,
    last_rx: Timestamp,
    silence_ms: i64,
    /// The server's heartbeat period (from `ready`).
    heartbeat_ms: Option<i64>,
    unauthorized: bool,
}

impl Conn {
    /// When an application ping is due (None: one is out, or not known yet).
    fn ping_at(&self) -> Option<Timestamp> {
        let hb = self.heartbeat_ms?;
        if self.pending.values().any(|p| matches!(p, Pending::Ping)) {
            return None;
        }
        Some(self.last_rx.saturating_add(hb))
    }
}

#[derive(Debug)]
enum Phase {
    /// Not connected, not trying.
    Stopped,
    /// Waiting to reconnect.
    Waiting {
        until: Timestamp,
    },
    /// The driver is opening socket `conn`.
    Opening {
        conn: ConnId,
    },
    Open(Conn),
}

#[derive(Debug, Default)]
struct ReloadState {
    running: bool,
    again: bool,
    /// A reload succeeded since this machine was made (a restored durable state resumes
    /// changes, but its view starts empty).
    done: bool,
}

/// The client connection state machine. See the module docs.
pub struct ClientMachine {
    config: MachineConfig,
    me: UserId,
    durable: DurableState,
    view: LocalView,
    reorder: Reorder<Held>,
    rng: StdRng,
    phase: Phase,
    attempt: u32,
    force_refresh: bool,
    next_conn: ConnId,
    next_frame: u64,
    next_request: RequestId,
    /// Highest seq per conversation to acknowledge as delivered, and when.
    delivered: BTreeMap<ConversationId, i64>,
    receipts_due: Option<Timestamp>,
    reload: ReloadState,
    state: ConnectionState,
    out: VecDeque<Output>,
}

impl std::fmt::Debug for ClientMachine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientMachine")
            .field("me", &self.me)
            .field("state", &self.state)
            .field("phase", &self.phase)
            .finish_non_exhaustive()
    }
}

impl ClientMachine {
    /// A machine for user `me`, starting from `durable` (default for a fresh login). `seed`
    /// drives the backoff jitter (random in production, fixed in tests).
    pub fn new(config: MachineConfig, me: UserId, durable: DurableState, seed: u64) -> Self {
        let reorder = Reorder::with_floors(durable.reported.clone());
        ClientMachine {
            config,
            me,
            durable,
            view: LocalView::new(me),
            reorder,
            rng: StdRng::seed_from_u64(seed),
            phase: Phase::Stopped,
            attempt: 0,
            force_refresh: false,
            next_conn: 1,
            next_frame: 1,
            next_request: 1,
            delivered: BTreeMap::new(),
            receipts_due: None,
            reload: ReloadState::default(),
            state: ConnectionState::Disconnected,
            out: VecDeque::new(),
        }
    }

    /// The configuration the machine was built with.
    pub fn config(&self) -> &MachineConfig {
        &self.config
    }

    /// The logged-in user.
    pub fn me(&self) -> UserId {
        self.me
    }

    // ---- reading ------------------------------------------------------------------------

    /// The local view: conversations, messages, presence, contacts.
    pub fn view(&self) -> &LocalView {
        &self.view
    }

    /// The view, for loads the app makes over REST (history pages, a fetched conversation).
    /// Report the returned [`ViewUpdate`]s with [`ClientMachine::view_updated`].
    pub fn view_mut(&mut self) -> &mut LocalView {
        &mut self.view
    }

    /// Reports view updates the app caused through [`ClientMachine::view_mut`].
    pub fn view_updated(&mut self, updates: impl IntoIterator<Item = ViewUpdate>) {
        for u in updates {
            if let ViewUpdate::ConversationUnknown { .. } = u {
                self.request_reload();
            }
            self.emit(ClientEvent::View(u));
        }
    }

    /// The state of the live connection.
    pub fn connection_state(&self) -> &ConnectionState {
        &self.state
    }

    /// Messages not yet acknowledged by the server, oldest first.
    pub fn pending(&self) -> &[PendingMessage] {
        self.durable.outbox.pending()
    }

    /// The durable resume cursor.
    pub fn cursor(&self) -> SyncCursor {
        self.durable.sync.cursor()
    }

    /// The durable state (the outbox, the cursor and what was reported).
    pub fn durable(&self) -> DurableState {
        DurableState {
            reported: self.reorder.floors().clone(),
            ..self.durable.clone()
        }
    }

    /// The durable state as JSON, for the app to persist.
    pub fn export_state(&self) -> Result<String> {
        serde_json::to_string(&self.durable()).map_err(|e| Error::internal(format!("serializing client state: {e}")))
    }

    /// Parses what [`ClientMachine::export_state`] wrote.
    pub fn parse_state(json: &str) -> Result<DurableState> {
        serde_json::from_str(json).map_err(|e| Error::invalid("state", format!("not a client state: {e}")))
    }

    /// Replaces the durable state (before connecting).
    pub fn import_state(&mut self, durable: DurableState) {
        self.reorder = Reorder::with_floors(durable.reported.clone());
        self.durable = durable;
    }

    /// The next output for the driver.
    pub fn poll(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// When [`ClientMachine::tick`] must be called at the latest (None: nothing is timed).
    pub fn poll_timeout(&self) -> Option<Timestamp> {
        let mut t: Option<Timestamp> = None;
        let mut at = |x: Timestamp| t = Some(t.map_or(x, |t| t.min(x)));
        match &self.phase {
            Phase::Waiting { until } => at(*until),
            Phase::Open(c) => {
                at(c.last_rx.saturating_add(c.silence_ms));
                if let Some(p) = c.ping_at() {
                    at(p);
                }
                if let Some(p) = c.sends_paused_until {
                    at(p);
                }
                if c.subscribed
                    && let Some(r) = self.receipts_due
                {
                    at(r);
                }
                for p in c.pending.values() {
                    if let Pending::Request { deadline, .. } = p {
                        at(*deadline);
                    }
                }
            }
            Phase::Stopped | Phase::Opening { .. } => {}
        }
        t
    }

    // ---- connection inputs --------------------------------------------------------------

    /// Start connecting (and keep reconnecting until [`ClientMachine::disconnect`]).
    pub fn connect(&mut self, _now: Timestamp) {
        if matches!(self.phase, Phase::Stopped) {
            self.attempt = 0;
            self.open();
        }
    }

    /// Skip the current backoff wait.
    pub fn reconnect_now(&mut self, _now: Timestamp) {
        if matches!(self.phase, Phase::Waiting { .. }) {
            self.open();
        }
    }

    /// Close and stop reconnecting. Held messages are reported; the outbox and the cursor
    /// stay for the next [`ClientMachine::connect`].
    pub fn disconnect(&mut self, _now: Timestamp) {
        if let Phase::Open(c) = &self.phase {
            let conn = c.id;
            self.out.push_back(Output::Close {
                conn,
                code: close_code::NORMAL,
                reason: "client disconnect".into(),
            });
        }
        self.shutdown();
        self.phase = Phase::Stopped;
        let held = self.reorder.release_all();
        self.report_held(held);
        if self.state != ConnectionState::LoggedOut {
            self.set_state(ConnectionState::Disconnected);
        }
    }

    /// The session is over (a refresh was refused): stop.
    pub fn logged_out(&mut self, now: Timestamp) {
        self.disconnect(now);
        self.set_state(ConnectionState::LoggedOut);
    }

    /// Socket `conn` is open. `auth`: the access token to send as the first frame, for
    /// platforms that cannot set the handshake's `Authorization` header (browsers).
    ///
    /// Returns false when the machine no longer waits for that socket (it stopped, or gave
    /// up on it): close it.
    pub fn opened(&mut self, now: Timestamp, conn: ConnId, auth: Option<String>) -> bool {
        if !matches!(self.phase, Phase::Opening { conn: c } if c == conn) {
            return false;
        }
        let mut c = Conn {
            id: conn,
            ready: false,
            subscribed: false,
            pending: HashMap::new(),
            inflight: HashSet::new(),
            window: self.config.initial_send_window.max(1),
            sends_paused_until: None,
            last_rx: now,
            silence_ms: self.config.silence_ms,
            heartbeat_ms: None,
            unauthorized: false,
        };
        let frame = auth.map(|token| {
            let id = self.frame_id();
            c.pending.insert(id.clone(), Pending::Auth);
            ClientFrame {
                id,
                request: ClientRequest::Auth { token },
            }
        });
        self.phase = Phase::Open(c);
        if let Some(frame) = frame {
            self.write(frame);
        }
        true
    }

    /// Socket `conn` closed, or could not be opened. `unauthorized`: the server refused the
    /// token (handshake 401 or close code 4001).
    pub fn closed(&mut self, now: Timestamp, conn: ConnId, reason: impl Into<String>, unauthorized: bool) {
        let current = match &self.phase {
            Phase::Opening { conn: c } => *c == conn,
            Phase::Open(c) => c.id == conn,
            _ => false,
        };
        if current {
            self.lost(now, reason.into(), unauthorized);
        }
    }

    /// The socket received something that is not a text frame (a ping): the link lives.
    pub fn heard(&mut self, now: Timestamp, conn: ConnId) {
        if let Phase::Open(c) = &mut self.phase
            && c.id == conn
        {
            c.last_rx = now;
        }
    }

    /// A text frame that is not a server frame (logged, skipped; the link lives).
    pub fn unreadable(&mut self, now: Timestamp, conn: ConnId) {
        self.heard(now, conn);
    }

    /// A server frame arrived on socket `conn`.
    pub fn frame(&mut self, now: Timestamp, conn: ConnId, frame: ServerFrame) {
        match &mut self.phase {
            Phase::Open(c) if c.id == conn => c.last_rx = now,
            _ => return,
        }
        match frame {
            ServerFrame::Ready(r) => {
                let silence = r.heartbeat_ms.saturating_add(r.heartbeat_timeout_ms).max(1000);
                let resume = self.durable.subscribed_before.then(|| self.durable.sync.cursor());
                let app_ping = self.config.app_ping;
                if let Some(c) = self.conn_mut() {
                    c.ready = true;
                    c.silence_ms = i64::try_from(silence).unwrap_or(i64::MAX);
                    if app_ping {
                        c.heartbeat_ms = Some(i64::try_from(r.heartbeat_ms.max(1000)).unwrap_or(i64::MAX));
                    }
                }
                match resume {
                    Some(since) => self.catch_up(since),
                    None => self.subscribe(),
                }
            }
            ServerFrame::Ack { id, result } => self.answer(now, &id, Ok(result)),
            ServerFrame::Error { id: Some(id), error } => self.answer(now, &id, Err(error.into())),
            ServerFrame::Error { id: None, error } => {
                tracing::warn!(code = %error.code, message = %error.message, "the server rejected a frame");
            }
            ServerFrame::Event { event } => self.on_event(now, event),
            ServerFrame::Cursor { pos, caught_up } => {
                let held = self.reorder.release_up_to(pos);
                self.report_held(held);
                self.durable.sync.checkpoint(pos);
                let subscribed = self.conn_mut().is_some_and(|c| c.subscribed);
                // A subscription "from now" is established by its first checkpoint, which
                // says where "now" was: from then on the client resumes from its cursor. (Set
                // on the ack instead, a lost first checkpoint would leave the cursor at 0
                // and the next connection would replay the user's whole history.)
                if subscribed {
                    self.durable.subscribed_before = true;
                }
                if caught_up && subscribed {
                    self.set_state(ConnectionState::Connected);
                }
                self.emit(ClientEvent::Synced { cursor: pos, caught_up });
            }
        }
    }

    /// Time passed: timers fire (reconnect, silence, paused sends, receipts, request timeouts).
    pub fn tick(&mut self, now: Timestamp) {
        match &mut self.phase {
            Phase::Waiting { until } if *until <= now => self.open(),
            Phase::Open(c) => {
                if now.saturating_sub(c.last_rx) > c.silence_ms {
                    let conn = c.id;
                    self.out.push_back(Output::Close {
                        conn,
                        code: close_code::NORMAL,
                        reason: "the server went silent".into(),
                    });
                    self.lost(now, "the server went silent".into(), false);
                    return;
                }
                let expired: Vec<String> = c
                    .pending
                    .iter()
                    .filter(|(_, p)| matches!(p, Pending::Request { deadline, .. } if *deadline <= now))
                    .map(|(k, _)| k.clone())
                    .collect();
                let mut answers = Vec::new();
                for k in expired {
                    if let Some(Pending::Request { id, .. }) = c.pending.remove(&k) {
                        answers.push(id);
                    }
                }
                let resume = c.sends_paused_until.is_some_and(|t| t <= now);
                if resume {
                    c.sends_paused_until = None;
                }
                let ping = c.ping_at().is_some_and(|t| t <= now);
                for id in answers {
                    self.out.push_back(Output::Answer {
                        request: id,
                        result: Err(Error::unavailable("request timed out")),
                    });
                }
                if self.receipts_due.is_some_and(|t| t <= now) {
                    self.flush_receipts();
                }
                if resume {
                    self.flush_outbox();
                }
                if ping {
                    let id = self.frame_id();
                    if let Some(c) = self.conn_mut() {
                        c.pending.insert(id.clone(), Pending::Ping);
                    }
                    self.write(ClientFrame {
                        id,
                        request: ClientRequest::Ping,
                    });
                }
            }
            _ => {}
        }
    }

    // ---- app commands -------------------------------------------------------------------

    /// Queues a message; it goes out as soon as the connection allows. Resends reuse its
    /// `client_msg_id`, so the server stores it once.
    pub fn send(
        &mut self,
        now: Timestamp,
        conversation_id: ConversationId,
        content: Content,
        reply_to_seq: Option<i64>,
    ) -> PendingMessage {
        let p = self.durable.outbox.enqueue(conversation_id, content, reply_to_seq, now);
        self.emit(ClientEvent::Queued(p.clone()));
        self.flush_outbox();
        p
    }

    /// Sends a request (receipt, typing, sync, ping) on the live connection; its answer comes
    /// as [`Output::Answer`]. Fails at once with `unavailable` when not subscribed: the
    /// driver then uses REST. An answered receipt moves the view's own watermarks.
    pub fn request(&mut self, now: Timestamp, request: ClientRequest) -> Result<RequestId> {
        let id = self.next_request;
        let frame_id = self.frame_id();
        let deadline = now.saturating_add(self.config.request_timeout_ms);
        let receipt = match &request {
            ClientRequest::Receipt { conversation_id, .. } => Some(*conversation_id),
            _ => None,
        };
        self.next_request += 1;
        let Some(c) = self.conn_mut().filter(|c| c.subscribed) else {
            return Err(Error::unavailable("not connected"));
        };
        c.pending
            .insert(frame_id.clone(), Pending::Request { id, deadline, receipt });
        self.write(ClientFrame { id: frame_id, request });
        Ok(id)
    }

    /// The caller's own watermarks in a conversation moved (a receipt answered over REST).
    pub fn own_receipt(&mut self, conversation_id: ConversationId, delivered_seq: i64, read_seq: i64) {
        let updates = self.view.apply_change(&Change {
            pos: 0,
            conversation_id: Some(conversation_id),
            kind: ChangeKind::Receipt {
                user_id: self.me,
                delivered_seq,
                read_seq,
            },
        });
        self.view_updated(updates);
    }

    /// Asks for the conversation list to be loaded again (one reload at a time).
    pub fn request_reload(&mut self) {
        if self.reload.running {
            self.reload.again = true;
        } else {
            self.reload.running = true;
            self.view.list_requested();
            self.out.push_back(Output::Rest(RestCall::Reload));
        }
    }

    /// A REST call asked for by [`Output::Rest`] finished.
    pub fn rest_done(&mut self, result: RestResult) {
        match result {
            RestResult::Reload {
                summaries,
                contacts,
                blocked,
            } => {
                self.reload.done = true;
                let mut u = self.view.load_summaries(summaries);
                u.extend(self.view.load_contacts(
                    contacts.iter().map(|p| p.id).collect(),
                    blocked.iter().map(|p| p.id).collect(),
                ));
                for p in contacts.into_iter().chain(blocked) {
                    u.push(self.view.load_profile(p));
                }
                self.emit_all(u.into_iter().map(ClientEvent::View));
                // Presence of the people in these conversations (the subscription's snapshot
                // only covers those the caller shared a conversation or contact with then).
                let me = self.me;
                let mut ids: Vec<UserId> = self
                    .view
                    .conversations(false)
                    .into_iter()
                    .chain(self.view.conversations(true))
                    .flat_map(|c| c.members.iter().map(|m| m.user_id))
                    .chain(self.view.contacts().iter().copied())
                    .filter(|u| *u != me)
                    .collect();
                ids.sort();
                ids.dedup();
                if ids.is_empty() {
                    self.reload_finished();
                } else {
                    self.out.push_back(Output::Rest(RestCall::Presence(ids)));
                }
            }
            RestResult::Presence(ps) => {
                for p in ps {
                    let u = self.view.apply_event(&Event::Presence(p));
                    self.emit_all(u.into_iter().map(ClientEvent::View));
                }
                self.reload_finished();
            }
            RestResult::Failed(e) => {
                tracing::warn!(error = %e, "reloading the conversation list failed");
                self.reload_finished();
            }
        }
    }

    fn reload_finished(&mut self) {
        self.reload.running = false;
        if std::mem::take(&mut self.reload.again) {
            self.request_reload();
        }
    }

    // ---- internals ----------------------------------------------------------------------

    fn conn_mut(&mut self) -> Option<&mut Conn> {
        match &mut self.phase {
            Phase::Open(c) => Some(c),
            _ => None,
        }
    }

    fn frame_id(&mut self) -> String {
        let id = self.next_frame;
        self.next_frame += 1;
        id.to_string()
    }

    fn emit(&mut self, ev: ClientEvent) {
        if let ClientEvent::Connection(s) = &ev {
            self.state = s.clone();
        }
        self.out.push_back(Output::Event(ev));
    }

    fn emit_all(&mut self, evs: impl IntoIterator<Item = ClientEvent>) {
        for e in evs {
            self.emit(e);
        }
    }

    fn set_state(&mut self, s: ConnectionState) {
        if self.state != s {
            self.emit(ClientEvent::Connection(s));
        }
    }

    fn write(&mut self, frame: ClientFrame) {
        if let Phase::Open(c) = &self.phase {
            self.out.push_back(Output::Write { conn: c.id, frame });
        }
    }

    fn open(&mut self) {
        let conn = self.next_conn;
        self.next_conn += 1;
        self.phase = Phase::Opening { conn };
        let refresh = std::mem::take(&mut self.force_refresh);
        self.set_state(ConnectionState::Connecting { attempt: self.attempt });
        self.out.push_back(Output::Open { conn, refresh });
    }

    /// Fails what waits on the socket; the outbox keeps its messages, held events stay held
    /// (the next connection's catch-up fills their gaps).
    fn shutdown(&mut self) -> Option<Conn> {
        let Phase::Open(mut c) = std::mem::replace(&mut self.phase, Phase::Stopped) else {
            return None;
        };
        let mut pending: Vec<(String, Pending)> = c.pending.drain().collect();
        pending.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(&b.0)));
        for (_, p) in pending {
            if let Pending::Request { id, .. } = p {
                self.out.push_back(Output::Answer {
                    request: id,
                    result: Err(Error::unavailable("connection closed before the answer")),
                });
            }
        }
        Some(c)
    }

    /// The link is gone: schedule the next attempt.
    fn lost(&mut self, now: Timestamp, reason: String, unauthorized: bool) {
        let c = self.shutdown();
        let healthy = c.as_ref().is_some_and(|c| c.subscribed);
        self.force_refresh = unauthorized || c.as_ref().is_some_and(|c| c.unauthorized);
        if healthy {
            self.attempt = 0;
        }
        let delay = self
            .config
            .reconnect
            .backoff_with(self.attempt.saturating_add(1), &mut self.rng);
        let delay_ms = u64::try_from(delay.as_millis()).unwrap_or(u64::MAX);
        tracing::debug!(%reason, attempt = self.attempt, delay_ms, "reconnecting");
        self.set_state(ConnectionState::Reconnecting {
            attempt: self.attempt,
            delay_ms,
            reason,
        });
        self.attempt = self.attempt.saturating_add(1);
        self.phase = Phase::Waiting {
            until: now.saturating_add(i64::try_from(delay_ms).unwrap_or(i64::MAX)),
        };
    }

    fn catch_up(&mut self, since: SyncCursor) {
        let id = self.frame_id();
        let limit = Some(self.config.catch_up_page.max(1));
        if let Some(c) = self.conn_mut() {
            c.pending.insert(id.clone(), Pending::CatchUp);
        }
        self.write(ClientFrame {
            id,
            request: ClientRequest::Sync { since, limit },
        });
    }

    fn subscribe(&mut self) {
        let first = !self.durable.subscribed_before;
        let since = (!first).then(|| self.durable.sync.cursor());
        let id = self.frame_id();
        if let Some(c) = self.conn_mut() {
            c.pending.insert(id.clone(), Pending::Subscribe { first });
        }
        self.write(ClientFrame {
            id,
            request: ClientRequest::Subscribe { since },
        });
    }

    fn answer(&mut self, now: Timestamp, frame_id: &str, result: Result<AckResult>) {
        let Some(p) = self.conn_mut().and_then(|c| c.pending.remove(frame_id)) else {
            tracing::debug!(frame_id, "answer to an unknown frame");
            return;
        };
        if let Err(Error::Unauthorized { .. }) = &result
            && let Some(c) = self.conn_mut()
        {
            c.unauthorized = true;
        }
        match (p, result) {
            (Pending::Auth, Ok(_)) => {}
            (Pending::Auth, Err(e)) => tracing::warn!(error = %e, "authentication refused"),
            (Pending::CatchUp, Ok(AckResult::Sync { page, .. })) => self.on_page(now, page),
            (Pending::CatchUp, other) => {
                tracing::warn!(?other, "catch-up refused; subscribing from the cursor");
                self.subscribe();
            }
            (Pending::Subscribe { first }, Ok(AckResult::Subscribe { snapshot })) => {
                if let Some(c) = self.conn_mut() {
                    c.subscribed = true;
                }
                let u = self.view.apply_snapshot(&snapshot);
                self.emit_all(u.into_iter().map(ClientEvent::View));
                self.set_state(ConnectionState::Syncing);
                if first || !self.reload.done {
                    // A first subscription starts from now, and a restored state has an empty
                    // view: the list comes from REST.
                    self.request_reload();
                }
                self.flush_outbox();
                if !self.delivered.is_empty() {
                    self.receipts_due = Some(now.saturating_add(self.config.receipt_delay_ms));
                }
            }
            (Pending::Subscribe { .. }, other) => tracing::warn!(?other, "subscribe refused"),
            (Pending::Send { client_msg_id }, r) => {
                let max = self.config.max_inflight_sends.max(1);
                if let Some(c) = self.conn_mut() {
                    c.inflight.remove(&client_msg_id);
                }
                match r {
                    Ok(AckResult::Send { message }) => {
                        if let Some(c) = self.conn_mut() {
                            c.window = c.window.saturating_mul(2).min(max);
                        }
                        self.on_sent(message);
                    }
                    Ok(other) => tracing::warn!(?other, "unexpected answer to send"),
                    Err(e) => self.on_send_error(now, &client_msg_id, e),
                }
                self.flush_outbox();
            }
            (Pending::Ping, _) => {}
            (Pending::AutoReceipt, r) => {
                if let Err(e) = r {
                    tracing::debug!(error = %e, "delivery receipt refused");
                }
            }
            (Pending::Request { id, receipt, .. }, r) => {
                if let (
                    Some(conv),
                    Ok(AckResult::Receipt {
                        delivered_seq,
                        read_seq,
                    }),
                ) = (receipt, &r)
                {
                    self.own_receipt(conv, *delivered_seq, *read_seq);
                }
                self.out.push_back(Output::Answer { request: id, result: r });
            }
        }
    }

    /// A catch-up page: applied in full, its `next` is a safe resume point.
    fn on_page(&mut self, now: Timestamp, page: SyncPage) {
        for change in page.changes {
            self.on_event(now, Event::Change(change));
        }
        let held = self.reorder.release_up_to(page.next);
        self.report_held(held);
        self.durable.sync.checkpoint(page.next);
        if page.limited {
            self.catch_up(page.next);
        } else {
            self.subscribe();
        }
    }

    fn on_sent(&mut self, message: Message) {
        if self.durable.outbox.acknowledge(&message).is_none() {
            return;
        }
        let conv = message.conversation_id;
        let update = self.view.load_messages(conv, vec![message.clone()]);
        self.emit(ClientEvent::Sent {
            client_msg_id: message.client_msg_id.clone(),
            message,
        });
        if let Some(u) = update {
            self.emit(ClientEvent::View(u));
        }
    }

    fn on_send_error(&mut self, now: Timestamp, client_msg_id: &str, error: Error) {
        if self.durable.outbox.reject(client_msg_id, &error).is_some() {
            tracing::info!(client_msg_id, error = %error, "send refused for good");
            self.emit(ClientEvent::SendFailed {
                client_msg_id: client_msg_id.to_owned(),
                error,
            });
            return;
        }
        let wait = match &error {
            Error::RateLimited { retry_after_ms } => i64::try_from(*retry_after_ms).unwrap_or(i64::MAX),
            _ => self.config.send_retry_ms,
        };
        tracing::debug!(client_msg_id, error = %error, "send failed for now; retrying");
        let until = now.saturating_add(wait.clamp(1, 3_600_000));
        if let Some(c) = self.conn_mut() {
            c.sends_paused_until = Some(c.sends_paused_until.map_or(until, |t| t.max(until)));
        }
    }

    fn on_event(&mut self, now: Timestamp, event: Event) {
        let mut message = None;
        if let Event::Change(c) = &event {
            if !self.durable.sync.accept_change(c) {
                return;
            }
            match &c.kind {
                ChangeKind::Message { message: m } => {
                    message = Some((m.conversation_id, m.seq, c.pos));
                    if m.sender_id != self.me && self.config.auto_delivered {
                        let e = self.delivered.entry(m.conversation_id).or_insert(0);
                        *e = (*e).max(m.seq);
                        if self.receipts_due.is_none() {
                            self.receipts_due = Some(now.saturating_add(self.config.receipt_delay_ms));
                        }
                    }
                }
                ChangeKind::ConversationCreated { conversation } => self.reorder.created(conversation.id),
                // A change to a message that is still held waits with it: applied first, it
                // would find no message in the view, and the message would then appear as if
                // it had never been deleted or hidden.
                ChangeKind::MessageDeleted { seq, .. }
                | ChangeKind::MessageHidden { seq }
                | ChangeKind::MessageEdited { seq, .. }
                | ChangeKind::ReactionAdded { seq, .. }
                | ChangeKind::ReactionRemoved { seq, .. } => {
                    if let Some(held) = c.conversation_id.and_then(|conv| self.reorder.held_mut(conv, *seq)) {
                        held.after.push(event);
                        return;
                    }
                }
                _ => {}
            }
        }
        match message {
            Some((conv, seq, pos)) => {
                let ready = self.reorder.offer(
                    conv,
                    seq,
                    pos,
                    Held {
                        event,
                        after: Vec::new(),
                    },
                );
                self.report_held(ready);
            }
            None => {
                if self.report(event) {
                    self.request_reload();
                }
            }
        }
    }

    /// Reports messages the reorder buffer released, each followed by the changes to it that
    /// waited with it.
    fn report_held(&mut self, held: Vec<Held>) {
        let mut reload = false;
        for h in held {
            reload |= self.report(h.event);
            for e in h.after {
                reload |= self.report(e);
            }
        }
        if reload {
            self.request_reload();
        }
    }

    /// Applies an event to the view and reports it with the view updates it caused, so the
    /// app never sees in the view a message it has not been told of. True when the view met a
    /// conversation it does not know (the caller asks for a reload, once per batch).
    fn report(&mut self, event: Event) -> bool {
        let updates = self.view.apply_event(&event);
        self.emit(match event {
            Event::Change(c) => ClientEvent::Change(c),
            other => ClientEvent::Ephemeral(other),
        });
        let mut reload = false;
        for u in updates {
            reload |= matches!(u, ViewUpdate::ConversationUnknown { .. });
            self.emit(ClientEvent::View(u));
        }
        reload
    }

    /// Sends what the outbox holds: oldest first, not already in flight, within the window.
    /// Nothing before the subscription or while sends are paused.
    fn flush_outbox(&mut self) {
        let max = self.config.max_inflight_sends.max(1);
        let Phase::Open(c) = &mut self.phase else { return };
        if !c.subscribed || c.sends_paused_until.is_some() {
            return;
        }
        let room = c.window.min(max).saturating_sub(c.inflight.len());
        if room == 0 {
            return;
        }
        let batch: Vec<PendingMessage> = self
            .durable
            .outbox
            .pending()
            .iter()
            .filter(|p| !c.inflight.contains(&p.client_msg_id))
            .take(room)
            .cloned()
            .collect();
        for p in batch {
            self.durable.outbox.mark_attempt(&p.client_msg_id);
            let id = self.next_frame.to_string();
            self.next_frame += 1;
            let Phase::Open(c) = &mut self.phase else { return };
            c.inflight.insert(p.client_msg_id.clone());
            c.pending.insert(
                id.clone(),
                Pending::Send {
                    client_msg_id: p.client_msg_id.clone(),
                },
            );
            self.write(ClientFrame {
                id,
                request: ClientRequest::Send {
                    conversation_id: p.conversation_id,
                    client_msg_id: p.client_msg_id,
                    content: p.content,
                    reply_to_seq: p.reply_to_seq,
                },
            });
        }
    }

    /// Coalesced automatic delivery receipts.
    fn flush_receipts(&mut self) {
        if !self.conn_mut().is_some_and(|c| c.subscribed) {
            return;
        }
        self.receipts_due = None;
        for (conv, seq) in std::mem::take(&mut self.delivered) {
            let id = self.frame_id();
            if let Some(c) = self.conn_mut() {
                c.pending.insert(id.clone(), Pending::AutoReceipt);
            }
            self.write(ClientFrame {
                id,
                request: ClientRequest::Receipt {
                    conversation_id: conv,
                    delivered_seq: Some(seq),
                    read_seq: None,
                },
            });
        }
    }
}

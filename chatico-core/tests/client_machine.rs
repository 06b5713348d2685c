//! The client connection state machine (`chatico_core::client::ClientMachine`) against a
//! model server, in simulated time, with no sockets.
//!
//! The model server follows docs/PROTOCOL.md §5 the way the gateway does: it assigns `seq`
//! and `pos` in one step, acknowledges a send before fanning it out, stores each
//! `(sender, client_msg_id)` once, answers `subscribe` and `sync` from its change log, and
//! checkpoints (every change of the log not sent live, then a `cursor` frame) 250 ms after
//! the last live change. The network around it does what real ones do:
//!
//! - frames on one socket keep their order (WebSocket over TCP) but take a random time;
//! - live fan-out copies race each other (a later message's event overtakes an earlier
//!   one), get lost (a backplane may lose them) or arrive twice;
//! - sockets are cut at random moments, losing what is in flight both ways; opening one may
//!   fail.
//!
//! After the storm the network calms down and, at quiescence, every client must have: every
//! send acknowledged and stored exactly once (in its send order), every message after its
//! first subscription reported exactly once and in `seq` order, and a local view equal to
//! the server's.

use std::cmp::Reverse;
use std::collections::{BTreeSet, BinaryHeap, HashMap};

use chatico_core::client::{
    ClientEvent, ClientMachine, ConnId, DurableState, MachineConfig, Output, RestCall, RestResult,
};
use chatico_core::ids::{ConversationId, MessageId, SessionId, UserId};
use chatico_core::model::{
    Content, Conversation, ConversationKind, ConversationSummary, Member, MemberInfo, Message, Role,
};
use chatico_core::protocol::{AckResult, ClientFrame, ClientRequest, Ready, ServerFrame};
use chatico_core::sync::{Change, ChangeKind, EphemeralSnapshot, Event, SyncPage};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn user(n: u128) -> UserId {
    UserId(uuid::Uuid::from_u128(n))
}

const CONV: ConversationId = ConversationId(uuid::Uuid::from_u128(0xc0));

/// Changes per page of a `subscribe` resume (the gateway's default).
const SUBSCRIBE_PAGE: usize = 200;
/// The gateway's checkpoint delay after the last live change.
const CHECKPOINT_IDLE: i64 = 250;
const HEARTBEAT: i64 = 5_000;
/// The gateway checkpoints at least this often, even when idle.
const RESYNC: i64 = 60_000;

fn ready(me: UserId) -> ServerFrame {
    ServerFrame::Ready(Ready {
        protocol: 1,
        user_id: me,
        session_id: SessionId(uuid::Uuid::from_u128(1)),
        heartbeat_ms: 10_000,
        heartbeat_timeout_ms: 10_000,
        max_frame_bytes: 1 << 20,
    })
}

fn text(s: &str) -> Content {
    Content::text(s)
}

// ---- the model server --------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Faults {
    /// A live fan-out copy is lost (the next checkpoint brings the change).
    drop_live: f64,
    /// A live fan-out copy arrives twice.
    dup_live: f64,
    /// Extra fan-out delay, up to this (ms): events of different messages overtake each other.
    fanout_jitter: i64,
    /// Wire latency per frame, up to this (ms); FIFO per socket and direction.
    latency: i64,
    /// Mean time between cuts of a client's socket during the storm (ms).
    cut_every: i64,
    /// Opening a socket fails.
    open_fail: f64,
}

#[derive(Debug)]
struct SConn {
    subscribed: bool,
    /// The position a "from now" subscription on this socket started at.
    from_now: Option<i64>,
    checkpoint: i64,
    live: BTreeSet<i64>,
    due: Option<i64>,
    to_client: i64,
    to_server: i64,
}

struct Server {
    users: Vec<UserId>,
    conversation: Conversation,
    log: Vec<Change>,
    messages: Vec<Message>,
    stored: HashMap<(UserId, String), usize>,
    marks: HashMap<UserId, (i64, i64)>,
    conns: HashMap<(usize, ConnId), SConn>,
    /// Per client, where its established "from now" subscription started.
    from_now: HashMap<usize, i64>,
}

impl Server {
    fn new(users: Vec<UserId>) -> Self {
        let conversation = Conversation {
            id: CONV,
            kind: ConversationKind::Group,
            title: Some("sim".into()),
            avatar_url: None,
            created_by: users[0],
            created_at: 0,
            last_seq: 0,
        };
        let mut s = Server {
            users: users.clone(),
            conversation: conversation.clone(),
            log: Vec::new(),
            messages: Vec::new(),
            stored: HashMap::new(),
            marks: HashMap::new(),
            conns: HashMap::new(),
            from_now: HashMap::new(),
        };
        for u in &users {
            s.record(ChangeKind::MemberJoined {
                user_id: *u,
                role: if *u == users[0] { Role::Owner } else { Role::Member },
            });
        }
        s.record(ChangeKind::ConversationCreated { conversation });
        s
    }

    fn latest(&self) -> i64 {
        self.log.len() as i64
    }

    fn record(&mut self, kind: ChangeKind) -> Change {
        let c = Change {
            pos: self.latest() + 1,
            conversation_id: Some(CONV),
            kind,
        };
        self.log.push(c.clone());
        c
    }

    fn changes_after(&self, since: i64, limit: usize) -> SyncPage {
        let changes: Vec<Change> = self.log.iter().filter(|c| c.pos > since).take(limit).cloned().collect();
        let limited = changes.last().is_some_and(|c| c.pos < self.latest());
        let next = if limited {
            changes.last().map_or(since, |c| c.pos)
        } else {
            self.latest().max(since)
        };
        SyncPage { changes, next, limited }
    }

    fn summary(&self, me: UserId) -> ConversationSummary {
        let (d, r) = self.marks.get(&me).copied().unwrap_or((0, 0));
        ConversationSummary {
            conversation: self.conversation.clone(),
            me: Member {
                conversation_id: CONV,
                user_id: me,
                role: Role::Member,
                archived: false,
                delivered_seq: d,
                read_seq: r,
                joined_at: 0,
                joined_seq: 0,
            },
            last_message: self.messages.last().cloned(),
            unread: self.conversation.last_seq - r,
            muted: false,
            muted_until: None,
            members: self
                .users
                .iter()
                .map(|u| MemberInfo {
                    user_id: *u,
                    role: Role::Member,
                    display_name: String::new(),
                    avatar_url: None,
                    delivered_seq: 0,
                    read_seq: 0,
                })
                .collect(),
            unread_mentions: 0,
            pinned: false,
            pinned_at: None,
        }
    }
}

// ---- the simulation ----------------------------------------------------------------------

#[derive(Debug)]
enum Ev {
    Opened {
        c: usize,
        conn: ConnId,
    },
    OpenFailed {
        c: usize,
        conn: ConnId,
    },
    ToClient {
        c: usize,
        conn: ConnId,
        frame: ServerFrame,
    },
    ToServer {
        c: usize,
        conn: ConnId,
        frame: ClientFrame,
    },
    Closed {
        c: usize,
        conn: ConnId,
    },
    Fanout {
        c: usize,
        conn: ConnId,
        change: Change,
    },
    Checkpoint {
        c: usize,
        conn: ConnId,
    },
    /// The periodic checkpoint, even when nothing went out live.
    Resync {
        c: usize,
        conn: ConnId,
    },
    Heartbeat {
        c: usize,
        conn: ConnId,
    },
    AppSend {
        c: usize,
        n: usize,
    },
    Cut {
        c: usize,
    },
    Rest {
        c: usize,
        call: RestCall,
    },
}

struct Sim {
    now: i64,
    rng: StdRng,
    faults: Faults,
    storm_until: i64,
    queue: BinaryHeap<Reverse<(i64, u64)>>,
    events: HashMap<u64, Ev>,
    next_ev: u64,
    server: Server,
    clients: Vec<ClientMachine>,
    /// The socket the server side of each client last opened.
    current: HashMap<usize, ConnId>,
    /// Per client: (seq, client_msg_id) of every message change reported, in report order.
    reported: Vec<Vec<(i64, String)>>,
    sends: Vec<Vec<String>>,
}

impl Sim {
    fn new(seed: u64, faults: Faults, writers: usize, readers: usize, resume_from_zero: bool) -> Self {
        let n = writers + readers;
        let users: Vec<UserId> = (0..n as u128).map(|i| user(i + 1)).collect();
        let clients = users
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let durable = DurableState {
                    subscribed_before: resume_from_zero,
                    ..DurableState::default()
                };
                let config = MachineConfig {
                    reconnect: chatico_core::retry::RetryPolicy {
                        max_attempts: u32::MAX,
                        initial_backoff: std::time::Duration::from_millis(10),
                        max_backoff: std::time::Duration::from_millis(500),
                    },
                    ..MachineConfig::default()
                };
                ClientMachine::new(config, *u, durable, seed ^ (i as u64 + 1))
            })
            .collect();
        Sim {
            now: 0,
            rng: StdRng::seed_from_u64(seed),
            faults,
            storm_until: 0,
            queue: BinaryHeap::new(),
            events: HashMap::new(),
            next_ev: 0,
            server: Server::new(users),
            clients,
            current: HashMap::new(),
            reported: vec![Vec::new(); n],
            sends: vec![Vec::new(); n],
        }
    }

    fn at(&mut self, t: i64, ev: Ev) {
        let id = self.next_ev;
        self.next_ev += 1;
        self.queue.push(Reverse((t, id)));
        self.events.insert(id, ev);
    }

    fn latency(&mut self) -> i64 {
        self.rng.gen_range(1..=self.faults.latency.max(1))
    }

    fn chance(&mut self, p: f64) -> bool {
        p > 0.0 && self.rng.gen_bool(p.min(1.0))
    }

    /// Server → client, in order on the socket.
    fn send_to_client(&mut self, c: usize, conn: ConnId, frame: ServerFrame) {
        let lat = self.latency();
        let now = self.now;
        let Some(s) = self.server.conns.get_mut(&(c, conn)) else {
            return;
        };
        s.to_client = s.to_client.max(now + lat);
        let t = s.to_client;
        self.at(t, Ev::ToClient { c, conn, frame });
    }

    fn send_to_server(&mut self, c: usize, conn: ConnId, frame: ClientFrame) {
        let lat = self.latency();
        let now = self.now;
        let Some(s) = self.server.conns.get_mut(&(c, conn)) else {
            return;
        };
        s.to_server = s.to_server.max(now + lat);
        let t = s.to_server;
        self.at(t, Ev::ToServer { c, conn, frame });
    }

    /// Performs what client `c` asks for.
    fn drain(&mut self, c: usize) {
        while let Some(o) = self.clients[c].poll() {
            match o {
                Output::Open { conn, .. } => {
                    let t = self.now + self.latency();
                    if self.chance(self.faults.open_fail) {
                        self.at(t, Ev::OpenFailed { c, conn });
                    } else {
                        self.at(t, Ev::Opened { c, conn });
                    }
                }
                Output::Write { conn, frame } => self.send_to_server(c, conn, frame),
                Output::Close { conn, .. } => {
                    self.server.conns.remove(&(c, conn));
                }
                Output::Event(ClientEvent::Change(Change {
                    kind: ChangeKind::Message { message },
                    ..
                })) => self.reported[c].push((message.seq, message.client_msg_id)),
                Output::Event(_) | Output::Answer { .. } => {}
                Output::Rest(call) => {
                    let t = self.now + self.latency();
                    self.at(t, Ev::Rest { c, call });
                }
            }
        }
    }

    fn run(&mut self, until: i64) {
        let mut steps = 0u64;
        loop {
            steps += 1;
            assert!(steps < 5_000_000, "the simulation does not settle");
            let next_ev = self.queue.peek().map(|Reverse((t, _))| *t);
            let next_tick = self.clients.iter().filter_map(ClientMachine::poll_timeout).min();
            let t = match (next_ev, next_tick) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if t > until {
                break;
            }
            self.now = self.now.max(t);
            if next_tick.is_some_and(|d| d <= t) {
                for c in 0..self.clients.len() {
                    if self.clients[c].poll_timeout().is_some_and(|d| d <= self.now) {
                        self.clients[c].tick(self.now);
                        self.drain(c);
                    }
                }
                continue;
            }
            let Some(Reverse((_, id))) = self.queue.pop() else {
                break;
            };
            let Some(ev) = self.events.remove(&id) else { continue };
            self.handle(ev);
        }
        self.now = until;
    }

    fn handle(&mut self, ev: Ev) {
        let now = self.now;
        match ev {
            Ev::Opened { c, conn } => {
                self.server.conns.insert(
                    (c, conn),
                    SConn {
                        subscribed: false,
                        from_now: None,
                        checkpoint: 0,
                        live: BTreeSet::new(),
                        due: None,
                        to_client: now,
                        to_server: now,
                    },
                );
                if self.clients[c].opened(now, conn, None) {
                    self.current.insert(c, conn);
                    let me = self.clients[c].me();
                    self.send_to_client(c, conn, ready(me));
                    self.at(now + HEARTBEAT, Ev::Heartbeat { c, conn });
                } else {
                    self.server.conns.remove(&(c, conn));
                }
                self.drain(c);
            }
            Ev::OpenFailed { c, conn } => {
                self.clients[c].closed(now, conn, "refused", false);
                self.drain(c);
            }
            Ev::ToClient { c, conn, frame } => {
                if let Some(s) = self.server.conns.get(&(c, conn)) {
                    // A client's "from now" is where the first subscription whose checkpoint
                    // reached it started.
                    if let (ServerFrame::Cursor { .. }, Some(p)) = (&frame, s.from_now) {
                        self.server.from_now.entry(c).or_insert(p);
                    }
                    self.clients[c].frame(now, conn, frame);
                    self.drain(c);
                }
            }
            Ev::ToServer { c, conn, frame } => {
                if self.server.conns.contains_key(&(c, conn)) {
                    self.serve(c, conn, frame);
                }
            }
            Ev::Closed { c, conn } => {
                self.clients[c].closed(now, conn, "cut", false);
                self.drain(c);
            }
            Ev::Fanout { c, conn, change } => {
                let Some(s) = self.server.conns.get_mut(&(c, conn)) else {
                    return;
                };
                if !s.subscribed || change.pos <= s.checkpoint {
                    return;
                }
                s.live.insert(change.pos);
                s.due = Some(now + CHECKPOINT_IDLE);
                self.at(now + CHECKPOINT_IDLE, Ev::Checkpoint { c, conn });
                self.send_to_client(
                    c,
                    conn,
                    ServerFrame::Event {
                        event: Event::Change(change),
                    },
                );
            }
            Ev::Checkpoint { c, conn } => self.checkpoint(c, conn, false),
            Ev::Resync { c, conn } => {
                if self.server.conns.contains_key(&(c, conn)) {
                    self.checkpoint(c, conn, true);
                    self.at(now + RESYNC, Ev::Resync { c, conn });
                }
            }
            Ev::Heartbeat { c, conn } => {
                if self.server.conns.contains_key(&(c, conn)) {
                    self.clients[c].heard(now, conn);
                    self.drain(c);
                    self.at(now + HEARTBEAT, Ev::Heartbeat { c, conn });
                }
            }
            Ev::AppSend { c, n } => {
                self.clients[c].send(now, CONV, text(&format!("{c}:{n}")), None);
                let id = self.clients[c].pending().last().map(|p| p.client_msg_id.clone());
                self.sends[c].extend(id);
                self.drain(c);
            }
            Ev::Cut { c } => {
                if let Some(conn) = self.current.get(&c).copied()
                    && self.server.conns.remove(&(c, conn)).is_some()
                {
                    let t = now + self.latency();
                    self.at(t, Ev::Closed { c, conn });
                }
                if now < self.storm_until {
                    let gap = self.rng.gen_range(1..=2 * self.faults.cut_every.max(1));
                    self.at(now + gap, Ev::Cut { c });
                }
            }
            Ev::Rest { c, call } => {
                let me = self.clients[c].me();
                let result = match call {
                    RestCall::Reload => RestResult::Reload {
                        summaries: vec![self.server.summary(me)],
                        contacts: vec![],
                        blocked: vec![],
                    },
                    RestCall::Presence(_) => RestResult::Presence(vec![]),
                };
                self.clients[c].rest_done(result);
                self.drain(c);
            }
        }
    }

    /// Sends every change after the connection's checkpoint not sent live, then `cursor`.
    fn checkpoint(&mut self, c: usize, conn: ConnId, force: bool) {
        let now = self.now;
        let latest = self.server.latest();
        let Some(s) = self.server.conns.get_mut(&(c, conn)) else {
            return;
        };
        if !s.subscribed || !(force || s.due.is_some_and(|d| d <= now)) {
            return;
        }
        s.due = None;
        let since = s.checkpoint;
        let live = std::mem::take(&mut s.live);
        s.checkpoint = latest;
        let missed: Vec<Change> = self
            .server
            .log
            .iter()
            .filter(|ch| ch.pos > since && !live.contains(&ch.pos))
            .cloned()
            .collect();
        for ch in missed {
            self.send_to_client(
                c,
                conn,
                ServerFrame::Event {
                    event: Event::Change(ch),
                },
            );
        }
        self.send_to_client(
            c,
            conn,
            ServerFrame::Cursor {
                pos: latest,
                caught_up: true,
            },
        );
    }

    /// The server's answer to one client frame.
    fn serve(&mut self, c: usize, conn: ConnId, frame: ClientFrame) {
        let me = self.clients[c].me();
        let id = frame.id;
        match frame.request {
            ClientRequest::Subscribe { since } => {
                self.send_to_client(
                    c,
                    conn,
                    ServerFrame::Ack {
                        id,
                        result: AckResult::Subscribe {
                            snapshot: EphemeralSnapshot::default(),
                        },
                    },
                );
                let latest = self.server.latest();
                let start = match since {
                    None => {
                        if let Some(s) = self.server.conns.get_mut(&(c, conn)) {
                            s.from_now = Some(latest);
                        }
                        latest
                    }
                    Some(s) => s,
                };
                let mut pos = start;
                loop {
                    let page = self.server.changes_after(pos, SUBSCRIBE_PAGE);
                    for ch in page.changes {
                        self.send_to_client(
                            c,
                            conn,
                            ServerFrame::Event {
                                event: Event::Change(ch),
                            },
                        );
                    }
                    pos = page.next;
                    self.send_to_client(
                        c,
                        conn,
                        ServerFrame::Cursor {
                            pos,
                            caught_up: !page.limited,
                        },
                    );
                    if !page.limited {
                        break;
                    }
                }
                if let Some(s) = self.server.conns.get_mut(&(c, conn)) {
                    s.subscribed = true;
                    s.checkpoint = pos;
                }
                let t = self.now + RESYNC;
                self.at(t, Ev::Resync { c, conn });
            }
            ClientRequest::Sync { since, limit } => {
                let page = self.server.changes_after(since, limit.unwrap_or(200) as usize);
                self.send_to_client(
                    c,
                    conn,
                    ServerFrame::Ack {
                        id,
                        result: AckResult::Sync {
                            page,
                            ephemeral: EphemeralSnapshot::default(),
                        },
                    },
                );
            }
            ClientRequest::Send {
                conversation_id,
                client_msg_id,
                content,
                reply_to_seq,
            } => {
                assert_eq!(conversation_id, CONV);
                let key = (me, client_msg_id.clone());
                let (message, change) = match self.server.stored.get(&key) {
                    Some(i) => (self.server.messages[*i].clone(), None),
                    None => {
                        let seq = self.server.messages.len() as i64 + 1;
                        let m = Message {
                            id: MessageId(uuid::Uuid::from_u128(seq as u128)),
                            conversation_id,
                            seq,
                            sender_id: me,
                            client_msg_id,
                            content: Some(content),
                            reply_to_seq,
                            created_at: self.now,
                            deleted_at: None,
                            edited_at: None,
                            reactions: Vec::new(),
                        };
                        self.server.stored.insert(key, self.server.messages.len());
                        self.server.messages.push(m.clone());
                        self.server.conversation.last_seq = seq;
                        let ch = self.server.record(ChangeKind::Message { message: m.clone() });
                        (m, Some(ch))
                    }
                };
                // Persist, acknowledge, then fan out.
                self.send_to_client(
                    c,
                    conn,
                    ServerFrame::Ack {
                        id,
                        result: AckResult::Send { message },
                    },
                );
                if let Some(ch) = change {
                    self.fan_out(ch);
                }
            }
            ClientRequest::Receipt {
                delivered_seq,
                read_seq,
                ..
            } => {
                let last = self.server.conversation.last_seq;
                let m = self.server.marks.entry(me).or_insert((0, 0));
                m.0 = m.0.max(delivered_seq.unwrap_or(0).min(last));
                m.1 = m.1.max(read_seq.unwrap_or(0).min(last));
                let (d, r) = *m;
                self.send_to_client(
                    c,
                    conn,
                    ServerFrame::Ack {
                        id,
                        result: AckResult::Receipt {
                            delivered_seq: d.max(r),
                            read_seq: r,
                        },
                    },
                );
            }
            ClientRequest::Typing { .. } => self.send_to_client(
                c,
                conn,
                ServerFrame::Ack {
                    id,
                    result: AckResult::Typing {},
                },
            ),
            ClientRequest::Ping => self.send_to_client(
                c,
                conn,
                ServerFrame::Ack {
                    id,
                    result: AckResult::Ping {},
                },
            ),
            ClientRequest::Auth { .. } => panic!("the simulation authenticates in the handshake"),
        }
    }

    fn fan_out(&mut self, change: Change) {
        let targets: Vec<(usize, ConnId)> = self
            .server
            .conns
            .iter()
            .filter(|(_, s)| s.subscribed)
            .map(|(k, _)| *k)
            .collect();
        let mut targets = targets;
        targets.sort();
        for (c, conn) in targets {
            if self.chance(self.faults.drop_live) {
                continue;
            }
            let copies = if self.chance(self.faults.dup_live) { 2 } else { 1 };
            for _ in 0..copies {
                let t = self.now + self.rng.gen_range(0..=self.faults.fanout_jitter.max(0));
                self.at(
                    t,
                    Ev::Fanout {
                        c,
                        conn,
                        change: change.clone(),
                    },
                );
            }
        }
    }

    /// Every property of a quiescent run.
    fn check(&self, resume_from_zero: bool) -> Result<(), String> {
        let msgs = &self.server.messages;
        // Every send stored exactly once, each sender's in send order.
        for (c, sent) in self.sends.iter().enumerate() {
            let me = self.clients[c].me();
            let stored: Vec<&str> = msgs
                .iter()
                .filter(|m| m.sender_id == me)
                .map(|m| m.client_msg_id.as_str())
                .collect();
            let sent: Vec<&str> = sent.iter().map(String::as_str).collect();
            if stored != sent {
                return Err(format!("client {c}: stored {stored:?}, sent {sent:?}"));
            }
            if !self.clients[c].pending().is_empty() {
                return Err(format!("client {c}: outbox not empty: {:?}", self.clients[c].pending()));
            }
        }
        let pos_of_seq: HashMap<i64, i64> = self
            .server
            .log
            .iter()
            .filter_map(|ch| match &ch.kind {
                ChangeKind::Message { message } => Some((message.seq, ch.pos)),
                _ => None,
            })
            .collect();
        for (c, m) in self.clients.iter().enumerate() {
            let start = if resume_from_zero {
                0
            } else {
                match self.server.from_now.get(&c) {
                    Some(p) => *p,
                    None => return Err(format!("client {c} never subscribed")),
                }
            };
            // Every message after the client's start, exactly once; a message before it
            // (seen live on a subscription that was not established) at most once; all in
            // seq order.
            let expected: Vec<(i64, String)> = msgs
                .iter()
                .filter(|msg| pos_of_seq[&msg.seq] > start)
                .map(|msg| (msg.seq, msg.client_msg_id.clone()))
                .collect();
            let got: Vec<i64> = self.reported[c].iter().map(|r| r.0).collect();
            let later: Vec<(i64, String)> = self.reported[c]
                .iter()
                .filter(|(seq, _)| pos_of_seq[seq] > start)
                .cloned()
                .collect();
            if !got.windows(2).all(|w| w[0] < w[1]) || later != expected {
                let want: Vec<i64> = expected.iter().map(|r| r.0).collect();
                return Err(format!(
                    "client {c}: reported {got:?}, expected {want:?} (after pos {start})"
                ));
            }
            for (seq, cmid) in &self.reported[c] {
                if msgs[*seq as usize - 1].client_msg_id != *cmid {
                    return Err(format!("client {c}: reported seq {seq} with another message"));
                }
            }
            let view = m
                .view()
                .conversation(CONV)
                .ok_or_else(|| format!("client {c}: the conversation is not in the view"))?;
            if view.conversation.last_seq != self.server.conversation.last_seq {
                return Err(format!(
                    "client {c}: last_seq {} vs {}",
                    view.conversation.last_seq, self.server.conversation.last_seq
                ));
            }
            for (seq, vm) in &view.messages {
                if msgs.get(*seq as usize - 1) != Some(vm) {
                    return Err(format!("client {c}: view message {seq} differs from the server's"));
                }
            }
            for (seq, _) in &expected {
                if !view.messages.contains_key(seq) {
                    return Err(format!("client {c}: view lacks message {seq}"));
                }
            }
            let members: BTreeSet<UserId> = view.members.iter().map(|m| m.user_id).collect();
            if members != self.server.users.iter().copied().collect() {
                return Err(format!("client {c}: members {members:?}"));
            }
        }
        Ok(())
    }
}

/// One storm: `per_writer` messages from each writer at random moments of `storm_ms`, cuts
/// all along, then calm until everything settles.
fn storm(seed: u64, faults: Faults, per_writer: usize, resume_from_zero: bool) -> Result<Sim, String> {
    let writers = 2;
    let mut sim = Sim::new(seed, faults.clone(), writers, 1, resume_from_zero);
    let storm_ms = 3_000;
    sim.storm_until = storm_ms;
    for c in 0..sim.clients.len() {
        sim.clients[c].connect(0);
        sim.drain(c);
        if faults.cut_every > 0 {
            let t = sim.rng.gen_range(1..=2 * faults.cut_every);
            sim.at(t, Ev::Cut { c });
        }
    }
    for w in 0..writers {
        let mut times: Vec<i64> = (0..per_writer).map(|_| sim.rng.gen_range(0..storm_ms)).collect();
        times.sort();
        for (n, t) in times.into_iter().enumerate() {
            sim.at(t, Ev::AppSend { c: w, n });
        }
    }
    sim.run(storm_ms + 3 * RESYNC);
    sim.check(resume_from_zero)?;
    Ok(sim)
}

fn faults() -> impl Strategy<Value = Faults> {
    (
        0.0..0.5f64,
        0.0..0.3f64,
        0i64..40,
        1i64..30,
        prop_oneof![Just(0i64), 20i64..400],
        0.0..0.3f64,
    )
        .prop_map(
            |(drop_live, dup_live, fanout_jitter, latency, cut_every, open_fail)| Faults {
                drop_live,
                dup_live,
                fanout_jitter,
                latency,
                cut_every,
                open_fail,
            },
        )
}

/// Storms per property: 500 by default (a thousand runs in all, ~15 s in a debug build);
/// `CHATICO_SIM_CASES` raises it.
fn sim_cases() -> u32 {
    std::env::var("CHATICO_SIM_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(500)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: sim_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Thousands of storms (this and the resume variant): exactly once, in order, nothing
    /// stored twice, and the view equal to the server's, whatever the network does.
    #[test]
    fn client_machine_sim_storm_from_now(seed in any::<u64>(), faults in faults(), per_writer in 1usize..40) {
        if let Err(e) = storm(seed, faults.clone(), per_writer, false) {
            return Err(TestCaseError::fail(format!("seed {seed}, {faults:?}: {e}")));
        }
    }

    #[test]
    fn client_machine_sim_storm_resuming(seed in any::<u64>(), faults in faults(), per_writer in 1usize..40) {
        if let Err(e) = storm(seed, faults.clone(), per_writer, true) {
            return Err(TestCaseError::fail(format!("seed {seed}, {faults:?}: {e}")));
        }
    }
}

/// The storm must actually storm: cuts happen, live copies are lost and duplicated, and
/// clients resend after reconnecting (the server sees the same `client_msg_id` twice).
#[test]
fn client_machine_sim_storm_exercises_the_faults() {
    let f = Faults {
        drop_live: 0.3,
        dup_live: 0.2,
        fanout_jitter: 30,
        latency: 20,
        cut_every: 60,
        open_fail: 0.2,
    };
    let sim = match storm(7, f, 60, false) {
        Ok(s) => s,
        Err(e) => panic!("{e}"),
    };
    assert_eq!(sim.server.messages.len(), 120);
    let reconnects = sim.clients.iter().all(|m| m.cursor() > 0);
    assert!(reconnects);
}

// ---- scripted scenarios ------------------------------------------------------------------

/// A connected client that subscribed "from now" at pos 4 and loaded the conversation over
/// REST (last seq 1).
fn scripted() -> (ClientMachine, Vec<Output>) {
    let me = user(1);
    let mut m = ClientMachine::new(MachineConfig::default(), me, DurableState::default(), 1);
    let mut out = Vec::new();
    m.connect(0);
    m.opened(1, 1, None);
    m.frame(2, 1, ready(me));
    m.frame(
        3,
        1,
        ServerFrame::Ack {
            id: "1".into(),
            result: AckResult::Subscribe {
                snapshot: EphemeralSnapshot::default(),
            },
        },
    );
    m.frame(
        4,
        1,
        ServerFrame::Cursor {
            pos: 4,
            caught_up: true,
        },
    );
    let mut server = Server::new(vec![me, user(2)]);
    server.messages.push(msg(1, user(2), "notice"));
    server.conversation.last_seq = 1;
    m.rest_done(RestResult::Reload {
        summaries: vec![server.summary(me)],
        contacts: vec![],
        blocked: vec![],
    });
    m.rest_done(RestResult::Presence(vec![]));
    while let Some(o) = m.poll() {
        out.push(o);
    }
    (m, out)
}

fn msg(seq: i64, sender: UserId, cmid: &str) -> Message {
    Message {
        id: MessageId(uuid::Uuid::from_u128(seq as u128)),
        conversation_id: CONV,
        seq,
        sender_id: sender,
        client_msg_id: cmid.into(),
        content: Some(text(cmid)),
        reply_to_seq: None,
        created_at: seq,
        deleted_at: None,
        edited_at: None,
        reactions: Vec::new(),
    }
}

fn live(m: &Message, pos: i64) -> ServerFrame {
    ServerFrame::Event {
        event: Event::Change(Change {
            pos,
            conversation_id: Some(CONV),
            kind: ChangeKind::Message { message: m.clone() },
        }),
    }
}

fn reported_seqs(m: &mut ClientMachine) -> Vec<i64> {
    let mut v = Vec::new();
    while let Some(o) = m.poll() {
        if let Output::Event(ClientEvent::Change(Change {
            kind: ChangeKind::Message { message },
            ..
        })) = o
        {
            v.push(message.seq);
        }
    }
    v
}

/// Issue 14's storm failure, `[2, 3, 4, 6, 5, 7, ...]` on client 0 only: the writer's own
/// sends are acknowledged (seq 3 and 5, moving the view's `last_seq` to 5) before the live
/// events of the conversation arrive, and those race (3 before 2, 5 before 4). The old
/// client started its reorder buffer at the view's `last_seq` and so reported 3, 2, 5, 4
/// at once; the machine starts it from what it reported and from checkpoints.
#[test]
fn own_acks_ahead_of_racing_live_events_keep_seq_order() {
    let (mut m, _) = scripted();
    let me = m.me();
    let a = m.send(10, CONV, text("a"), None);
    let b = m.send(10, CONV, text("b"), None);
    let writes: Vec<ClientFrame> = std::iter::from_fn(|| m.poll())
        .filter_map(|o| match o {
            Output::Write { frame, .. } => Some(frame),
            _ => None,
        })
        .collect();
    assert_eq!(writes.len(), 2, "both sends go out at once");
    let mine3 = msg(3, me, &a.client_msg_id);
    let mine5 = msg(5, me, &b.client_msg_id);
    let theirs2 = msg(2, user(2), "x");
    let theirs4 = msg(4, user(2), "y");
    m.frame(
        11,
        1,
        ServerFrame::Ack {
            id: writes[0].id.clone(),
            result: AckResult::Send { message: mine3.clone() },
        },
    );
    m.frame(
        12,
        1,
        ServerFrame::Ack {
            id: writes[1].id.clone(),
            result: AckResult::Send { message: mine5.clone() },
        },
    );
    assert_eq!(m.view().conversation(CONV).map(|v| v.conversation.last_seq), Some(5));
    m.frame(13, 1, live(&mine3, 6));
    m.frame(14, 1, live(&theirs2, 5));
    m.frame(15, 1, live(&mine5, 8));
    m.frame(16, 1, live(&theirs4, 7));
    let mut got = reported_seqs(&mut m);
    m.frame(
        300,
        1,
        ServerFrame::Cursor {
            pos: 8,
            caught_up: true,
        },
    );
    got.extend(reported_seqs(&mut m));
    assert_eq!(got, vec![2, 3, 4, 5]);
    // From then on the floor is known: the next message is reported at once.
    m.frame(301, 1, live(&msg(6, user(2), "z"), 9));
    assert_eq!(reported_seqs(&mut m), vec![6]);
}

/// The second shape, `[3, 4, 5, 6, 7, 8, 9, 2, 10, ...]`: the live copy of seq 2 is lost
/// with the socket; the next connection's catch-up brings it, and 3..9 (held) follow it.
#[test]
fn a_message_lost_with_the_socket_is_reported_before_those_that_overtook_it() {
    let (mut m, _) = scripted();
    for seq in 3..=9 {
        m.frame(10 + seq, 1, live(&msg(seq, user(2), &format!("m{seq}")), seq + 3));
    }
    assert_eq!(reported_seqs(&mut m), Vec::<i64>::new(), "held: seq 2 is missing");
    m.closed(30, 1, "cut", false);
    let _ = reported_seqs(&mut m);
    // Reconnect after the backoff: catch-up from the cursor (4) brings 2..9.
    let until = m.poll_timeout().expect("a reconnect is scheduled");
    m.tick(until);
    let conn = std::iter::from_fn(|| m.poll())
        .find_map(|o| match o {
            Output::Open { conn, .. } => Some(conn),
            _ => None,
        })
        .expect("a socket is opened");
    m.opened(until + 1, conn, None);
    m.frame(until + 2, conn, ready(m.me()));
    let sync = std::iter::from_fn(|| m.poll())
        .find_map(|o| match o {
            Output::Write { frame, .. } => Some(frame),
            _ => None,
        })
        .expect("a catch-up page is asked for");
    assert!(matches!(sync.request, ClientRequest::Sync { since: 4, .. }));
    let changes: Vec<Change> = (2..=9)
        .map(|seq| Change {
            pos: seq + 3,
            conversation_id: Some(CONV),
            kind: ChangeKind::Message {
                message: msg(seq, user(2), &format!("m{seq}")),
            },
        })
        .collect();
    m.frame(
        until + 3,
        conn,
        ServerFrame::Ack {
            id: sync.id,
            result: AckResult::Sync {
                page: SyncPage {
                    changes,
                    next: 12,
                    limited: false,
                },
                ephemeral: EphemeralSnapshot::default(),
            },
        },
    );
    assert_eq!(reported_seqs(&mut m), (2..=9).collect::<Vec<_>>());
    assert_eq!(m.cursor(), 12);
}

/// A held message is not in the view until it is reported (the app, drawing from the view,
/// never shows seq 3 above a missing seq 2), and a delete of it that arrives while it waits
/// is applied after it, so it does not reappear as if never deleted.
#[test]
fn a_held_message_enters_the_view_when_reported_with_the_changes_that_waited() {
    let (mut m, _) = scripted();
    let seqs = |m: &ClientMachine| m.view().messages(CONV).iter().map(|x| x.seq).collect::<Vec<_>>();
    m.frame(10, 1, live(&msg(3, user(2), "m3"), 6));
    assert_eq!(reported_seqs(&mut m), Vec::<i64>::new(), "held: seq 2 is missing");
    assert_eq!(seqs(&m), vec![1], "a held message is not in the view");
    m.frame(
        11,
        1,
        ServerFrame::Event {
            event: Event::Change(Change {
                pos: 7,
                conversation_id: Some(CONV),
                kind: ChangeKind::MessageDeleted { seq: 3, deleted_at: 11 },
            }),
        },
    );
    let mut kinds = Vec::new();
    while let Some(o) = m.poll() {
        if let Output::Event(ClientEvent::Change(c)) = o {
            kinds.push(c.kind);
        }
    }
    assert!(
        kinds.is_empty(),
        "the delete of a held message waits with it: {kinds:?}"
    );
    m.frame(12, 1, live(&msg(2, user(2), "m2"), 5));
    // The conversation was learned over REST after a subscription "from now": its floor is
    // unknown, so even seq 2 waits for the server's checkpoint.
    m.frame(
        13,
        1,
        ServerFrame::Cursor {
            pos: 7,
            caught_up: true,
        },
    );
    let mut order = Vec::new();
    while let Some(o) = m.poll() {
        if let Output::Event(ClientEvent::Change(c)) = o {
            order.push(match c.kind {
                ChangeKind::Message { message } => format!("message {}", message.seq),
                ChangeKind::MessageDeleted { seq, .. } => format!("deleted {seq}"),
                other => format!("{other:?}"),
            });
        }
    }
    assert_eq!(order, vec!["message 2", "message 3", "deleted 3"]);
    assert_eq!(seqs(&m), vec![1, 2, 3]);
    let three = m.view().messages(CONV).into_iter().find(|x| x.seq == 3).cloned();
    assert_eq!(three.and_then(|x| x.deleted_at), Some(11), "seq 3 reads as deleted");
}

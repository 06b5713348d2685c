//! The connection hub: which WebSocket connections of which users live on this node, each
//! with its bounded outbound queue.
//!
//! Fan-out serialises an event once and pushes the same bytes to every connection of every
//! recipient with `try_send`: the hub never waits for a connection. A connection whose queue
//! is full is told to close with [`close_code::SLOW_CONSUMER`]; everyone else keeps full speed.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use chatico_core::ids::{SessionId, UserId};
use chatico_core::protocol::{ChangeKey, close_code};
use chatico_core::sync::{Control, Delivery, Event, SyncCursor};
use serde::Serialize;
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Utf8Bytes;

const SHARDS: usize = 64;

/// One serialised server frame, shared by every connection it goes to.
#[derive(Debug)]
pub struct OutFrame {
    /// For changes: the store position (0 when the producer did not know it) and what
    /// identifies the change (the connection delivers each change once).
    pub change: Option<(SyncCursor, ChangeKey)>,
    /// The JSON text of the whole `{"type":"event",...}` frame.
    pub text: Utf8Bytes,
}

/// Serialises an event as an `event` server frame.
pub fn event_frame(event: &Event) -> OutFrame {
    #[derive(Serialize)]
    struct EventFrame<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        event: &'a Event,
    }
    let text = serde_json::to_string(&EventFrame { kind: "event", event })
        // Serialising these plain data types cannot fail; keep a valid frame if it ever did.
        .unwrap_or_else(|e| {
            tracing::error!(error = %e, "event serialisation failed");
            String::from(r#"{"type":"event","event":null}"#)
        });
    OutFrame {
        change: match event {
            Event::Change(c) => Some((c.pos, ChangeKey::of(c))),
            _ => None,
        },
        text: Utf8Bytes::from(text),
    }
}

/// Tells one connection's task to close, and why.
#[derive(Debug, Default)]
pub struct ConnControl {
    notify: Notify,
    code: AtomicU16,
    checkpoint: Notify,
}

impl ConnControl {
    /// Asks the connection to close with `code`. The first reason wins.
    pub fn close(&self, code: u16) {
        if self
            .code
            .compare_exchange(0, code, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            self.notify.notify_one();
        }
    }

    /// The close code asked for, if any.
    pub fn close_code(&self) -> Option<u16> {
        match self.code.load(Ordering::Acquire) {
            0 => None,
            c => Some(c),
        }
    }

    /// Asks the connection to run a checkpoint now (a re-sync from its cursor): changes it
    /// should have received live may have been lost between nodes. Requests made before the
    /// connection looks are kept (one is enough).
    pub fn request_checkpoint(&self) {
        self.checkpoint.notify_one();
    }

    /// Resolves once a checkpoint was asked for (consumes the request).
    pub async fn checkpoint_requested(&self) {
        self.checkpoint.notified().await
    }

    /// Resolves once a close was asked for.
    pub async fn closed(&self) -> u16 {
        loop {
            if let Some(c) = self.close_code() {
                return c;
            }
            self.notify.notified().await;
        }
    }
}

struct ConnEntry {
    id: u64,
    session: Option<SessionId>,
    tx: mpsc::Sender<Arc<OutFrame>>,
    ctl: Arc<ConnControl>,
}

/// A registered connection: its id, its queue's receiving end and its control.
pub struct Registration {
    /// The connection's id, unique within this node.
    pub id: u64,
    /// The frames to write to the socket, in order.
    pub rx: mpsc::Receiver<Arc<OutFrame>>,
    /// The switch the hub closes the connection with.
    pub ctl: Arc<ConnControl>,
}

/// Counts from one [`Hub::dispatch`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct DispatchStats {
    /// Frames queued (one per connection reached).
    pub queued: usize,
    /// Connections told to close because their queue was full.
    pub overflowed: usize,
}

type Shard = RwLock<HashMap<UserId, Vec<ConnEntry>>>;

/// The registry of this node's live connections. See the module docs.
pub struct Hub {
    shards: Box<[Shard]>,
    hasher: std::collections::hash_map::RandomState,
    next_id: AtomicU64,
    connections: AtomicUsize,
    queue_capacity: usize,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub")
            .field("connections", &self.connection_count())
            .field("queue_capacity", &self.queue_capacity)
            .finish()
    }
}

impl Hub {
    /// A hub whose connections each queue at most `queue_capacity` outbound frames.
    pub fn new(queue_capacity: usize) -> Self {
        Hub {
            shards: (0..SHARDS).map(|_| RwLock::new(HashMap::new())).collect(),
            hasher: Default::default(),
            next_id: AtomicU64::new(1),
            connections: AtomicUsize::new(0),
            queue_capacity: queue_capacity.max(1),
        }
    }

    fn shard(&self, user: &UserId) -> &Shard {
        &self.shards[(self.hasher.hash_one(user) as usize) % SHARDS]
    }

    /// Registers a connection of `user` (logged in with `session`, if known); returns its
    /// queue and control, and how many connections the user now has on this node.
    pub fn register(&self, user: UserId, session: Option<SessionId>) -> (Registration, usize) {
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let ctl = Arc::new(ConnControl::default());
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut shard = self.shard(&user).write().unwrap_or_else(|e| e.into_inner());
        let conns = shard.entry(user).or_default();
        conns.push(ConnEntry {
            id,
            session,
            tx,
            ctl: ctl.clone(),
        });
        let n = conns.len();
        drop(shard);
        self.connections.fetch_add(1, Ordering::Relaxed);
        (Registration { id, rx, ctl }, n)
    }

    /// Removes a connection; returns how many connections the user still has on this node.
    pub fn unregister(&self, user: UserId, id: u64) -> usize {
        let mut shard = self.shard(&user).write().unwrap_or_else(|e| e.into_inner());
        let Some(conns) = shard.get_mut(&user) else {
            return 0;
        };
        let before = conns.len();
        conns.retain(|c| c.id != id);
        let removed = before - conns.len();
        let left = conns.len();
        if left == 0 {
            shard.remove(&user);
        }
        drop(shard);
        self.connections.fetch_sub(removed, Ordering::Relaxed);
        left
    }

    /// How many connections `user` has on this node.
    pub fn user_connections(&self, user: UserId) -> usize {
        let shard = self.shard(&user).read().unwrap_or_else(|e| e.into_inner());
        shard.get(&user).map_or(0, Vec::len)
    }

    /// How many connections this node holds.
    pub fn connection_count(&self) -> usize {
        self.connections.load(Ordering::Relaxed)
    }

    /// Queues the delivery's event on every local connection of its recipients. Never waits.
    /// The event is serialised only if a recipient has a connection here.
    pub fn dispatch(&self, delivery: &Delivery) -> DispatchStats {
        if !delivery.recipients.iter().any(|u| self.user_connections(*u) > 0) {
            return DispatchStats::default();
        }
        self.dispatch_frame(&delivery.recipients, &Arc::new(event_frame(&delivery.event)))
    }

    /// Queues an already serialised frame on every local connection of `recipients`. Never
    /// waits.
    pub fn dispatch_frame(&self, recipients: &[UserId], frame: &Arc<OutFrame>) -> DispatchStats {
        let mut stats = DispatchStats::default();
        for user in recipients {
            let shard = self.shard(user).read().unwrap_or_else(|e| e.into_inner());
            let Some(conns) = shard.get(user) else { continue };
            for c in conns {
                match c.tx.try_send(frame.clone()) {
                    Ok(()) => stats.queued += 1,
                    Err(mpsc::error::TrySendError::Full(_)) => {
                        if c.ctl.close_code().is_none() {
                            tracing::info!(user = %user, conn = c.id, "slow consumer: outbound queue full");
                            stats.overflowed += 1;
                        }
                        c.ctl.close(close_code::SLOW_CONSUMER);
                    }
                    // The connection is ending; it unregisters itself.
                    Err(mpsc::error::TrySendError::Closed(_)) => {}
                }
            }
        }
        stats
    }

    /// Asks every connection of these users on this node to run a checkpoint
    /// ([`ConnControl::request_checkpoint`]); returns how many connections were asked.
    pub fn checkpoint_users(&self, users: &[UserId]) -> usize {
        let mut n = 0;
        for user in users {
            let shard = self.shard(user).read().unwrap_or_else(|e| e.into_inner());
            for c in shard.get(user).into_iter().flatten() {
                c.ctl.request_checkpoint();
                n += 1;
            }
        }
        n
    }

    /// Asks every connection of `user` on this node to close with `code`.
    pub fn close_user(&self, user: UserId, code: u16) {
        let shard = self.shard(&user).read().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = shard.get(&user) {
            for c in conns {
                c.ctl.close(code);
            }
        }
    }

    /// Asks the connections of one session of `user` on this node to close with `code`.
    pub fn close_session(&self, user: UserId, session: SessionId, code: u16) {
        let shard = self.shard(&user).read().unwrap_or_else(|e| e.into_inner());
        if let Some(conns) = shard.get(&user) {
            for c in conns.iter().filter(|c| c.session == Some(session)) {
                c.ctl.close(code);
            }
        }
    }

    /// Acts on a control from the backplane: a revocation closes the matching connections
    /// with 4001 ([`close_code::UNAUTHORIZED`]).
    pub fn apply(&self, control: &Control) {
        match control {
            Control::SessionsRevoked { user_id, sessions } => {
                for s in sessions {
                    self.close_session(*user_id, *s, close_code::UNAUTHORIZED);
                }
            }
            Control::UserRevoked { user_id } => self.close_user(*user_id, close_code::UNAUTHORIZED),
        }
    }

    /// Every distinct (user, session) with an open connection on this node (connections
    /// without a session, such as host listeners, are not listed).
    pub fn sessions(&self) -> Vec<(UserId, SessionId)> {
        let mut out = Vec::new();
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for (user, conns) in shard.iter() {
                out.extend(conns.iter().filter_map(|c| c.session).map(|s| (*user, s)));
            }
        }
        out.sort_unstable();
        out.dedup();
        out
    }

    /// Asks every connection on this node to close with `code` (shutdown).
    pub fn close_all(&self, code: u16) {
        for shard in self.shards.iter() {
            let shard = shard.read().unwrap_or_else(|e| e.into_inner());
            for c in shard.values().flatten() {
                c.ctl.close(code);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatico_core::model::Presence;
    use chatico_core::sync::{Change, ChangeKind};

    fn user(n: u128) -> UserId {
        UserId(uuid::Uuid::from_u128(n))
    }

    fn change(pos: i64) -> Delivery {
        Delivery {
            recipients: vec![user(1), user(2)],
            event: Event::Change(Change {
                pos,
                conversation_id: None,
                kind: ChangeKind::ContactAdded { user_id: user(3) },
            }),
        }
    }

    #[tokio::test]
    async fn events_reach_every_connection_of_every_recipient_and_nobody_else() {
        let hub = Hub::new(8);
        let (mut a1, _) = hub.register(user(1), None);
        let (mut a2, n) = hub.register(user(1), None);
        assert_eq!(n, 2);
        let (mut b, _) = hub.register(user(2), None);
        let (mut c, _) = hub.register(user(3), None);
        let stats = hub.dispatch(&change(7));
        assert_eq!(stats.queued, 3);
        for r in [&mut a1, &mut a2, &mut b] {
            let f = r.rx.try_recv().expect("queued");
            assert_eq!(f.change, Some((7, ChangeKey::ContactAdded(user(3)))));
            let v: serde_json::Value = serde_json::from_str(f.text.as_str()).expect("json");
            assert_eq!(v["type"], "event");
            assert_eq!(v["event"]["event"], "change");
            assert_eq!(v["event"]["pos"], 7);
        }
        assert!(c.rx.try_recv().is_err());
        assert_eq!(hub.connection_count(), 4);
        assert_eq!(hub.unregister(user(1), a1.id), 1);
        assert_eq!(hub.unregister(user(1), a2.id), 0);
        assert_eq!(hub.connection_count(), 2);
    }

    #[tokio::test]
    async fn a_full_queue_closes_only_that_connection() {
        let hub = Hub::new(2);
        let (slow, _) = hub.register(user(1), None);
        let (mut fast, _) = hub.register(user(2), None);
        for pos in 1..=5 {
            hub.dispatch(&change(pos));
            // the fast one drains as it goes
            assert!(
                fast.rx
                    .try_recv()
                    .expect("fast gets it")
                    .text
                    .as_str()
                    .contains(&format!("\"pos\":{pos}"))
            );
        }
        assert_eq!(slow.ctl.close_code(), Some(close_code::SLOW_CONSUMER));
        assert_eq!(fast.ctl.close_code(), None);
        assert_eq!(slow.ctl.closed().await, close_code::SLOW_CONSUMER);
    }

    #[tokio::test]
    async fn close_user_and_close_all_reach_the_right_connections() {
        let hub = Hub::new(2);
        let (a, _) = hub.register(user(1), None);
        let (b, _) = hub.register(user(2), None);
        hub.close_user(user(1), close_code::UNAUTHORIZED);
        assert_eq!(a.ctl.close_code(), Some(close_code::UNAUTHORIZED));
        assert_eq!(b.ctl.close_code(), None);
        hub.close_all(close_code::GOING_AWAY);
        assert_eq!(b.ctl.close_code(), Some(close_code::GOING_AWAY));
        // the first reason wins
        assert_eq!(a.ctl.close_code(), Some(close_code::UNAUTHORIZED));
        let p = Delivery {
            recipients: vec![user(2)],
            event: Event::Presence(Presence {
                user_id: user(1),
                online: false,
                last_seen_at: Some(1),
            }),
        };
        assert_eq!(event_frame(&p.event).change, None);
    }
}

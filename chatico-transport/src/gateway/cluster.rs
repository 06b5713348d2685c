//! What a node does so that the backplane may lose anything without a user losing anything
//! (docs/DEPLOYMENT.md, "What each failure does to users").
//!
//! - **Loss watcher** ([`watch`]): the node reads the store's newest position every
//!   `poll_interval` and notes every position that arrives (its own deliveries at publish,
//!   other nodes' in their envelopes). A position committed `loss_after` ago that has not
//!   arrived is lost: the node asks the store who it concerns ([`Engine::position_audience`]) and
//!   asks only those users' connections here to checkpoint (re-sync from their cursor; a
//!   connection sends each position once, so a late live copy is dropped). This one
//!   mechanism covers a dropped pub/sub message, a node that died between commit and
//!   publish, and a whole broker outage (delivery then is the store's tail, ~1 s late).
//! - **Heartbeats and gaps**: every node publishes a heartbeat every `heartbeat_interval`;
//!   each envelope carries its origin's sequence, so a jump shows a lost envelope even when
//!   the origin has nothing else to say. A gap repairs at once (without waiting for
//!   `loss_after`) and re-checks the node's open sessions (a lost control).
//! - **Silent stalls** ([`dispatch`]): when nothing arrived for `probe_after` — not even the
//!   node's own heartbeats — the node probes itself; two probes that do not come back mark
//!   it `stalled` (health: `degraded`) and it drops the subscription and subscribes again,
//!   until something arrives.
//!
//! [`Engine::position_audience`]: chatico_core::Engine::position_audience

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Mutex, MutexGuard, Weak};
use std::time::Duration;

use chatico_core::engine::AUDIENCE_SPAN_MAX;
use chatico_core::ports::{BackplaneEvent, Envelope, EventStream, NodeId, Payload};
use chatico_core::protocol::{BackplaneHealth, Health, HealthStatus, Repair};
use chatico_core::sync::SyncCursor;
use futures::StreamExt;
use tokio::time::Instant;

use super::{Shared, close_dead_sessions};

/// How long an origin that sent nothing is remembered for gap detection.
const ORIGIN_TTL: Duration = Duration::from_secs(60);

/// The cluster state of one node: what arrived, what was repaired, how the link is.
#[derive(Debug, Default)]
pub(crate) struct Cluster {
    watch: Mutex<LossWatch>,
    health: Mutex<HealthState>,
    /// Set on a sequence gap: the next poll repairs what is missing without waiting.
    repair_now: std::sync::atomic::AtomicBool,
}

#[derive(Debug, Default)]
struct HealthState {
    stalled: bool,
    last_arrival: Option<Instant>,
    repairs: u64,
    last_repair: Option<Repair>,
    gaps: u64,
    resubscribes: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Cluster {
    /// A position arrived (over the backplane, or published by this node).
    pub fn arrived(&self, pos: SyncCursor) {
        if pos > 0 {
            lock(&self.watch).arrived(pos, Instant::now());
        }
    }

    /// The health document of `s`.
    pub fn health(&self, s: &Shared) -> Health {
        let h = lock(&self.health);
        let link_up = s.link_up.load(Ordering::SeqCst);
        let status = if s.shutting_down.load(Ordering::SeqCst) {
            HealthStatus::ShuttingDown
        } else if !link_up || h.stalled {
            HealthStatus::Degraded
        } else {
            HealthStatus::Ok
        };
        Health {
            status,
            node_id: s.node_id.0.clone(),
            connections: s.hub.connection_count() as u64,
            backplane: BackplaneHealth {
                link_up,
                stalled: h.stalled,
                last_arrival_ms: h.last_arrival.map(|t| t.elapsed().as_millis() as u64),
                watermark: lock(&self.watch).settled,
                repairs: h.repairs,
                last_repair: h.last_repair.clone(),
                gaps: h.gaps,
                resubscribes: h.resubscribes,
            },
        }
    }
}

/// Which committed positions arrived, and since when the others are known to exist.
///
/// Every position at or below `settled` arrived or was repaired. Above it, `arrived` holds
/// the positions that came, and `known` the store's newest position as it grew, each with
/// the time it was first seen. Both hold about `loss_after` worth of positions: everything
/// known for longer is settled at the next check.
#[derive(Debug, Default)]
pub(crate) struct LossWatch {
    started: bool,
    settled: SyncCursor,
    arrived: BTreeSet<SyncCursor>,
    known: VecDeque<(SyncCursor, Instant)>,
}

impl LossWatch {
    /// Starts watching from the store's newest position: what came before is a client's
    /// own catch-up's business.
    fn start(&mut self, latest: SyncCursor) {
        if !self.started {
            self.started = true;
            self.settled = latest;
            self.arrived.clear();
            self.known.clear();
        }
    }

    fn note(&mut self, pos: SyncCursor, now: Instant) {
        if pos > self.known.back().map_or(self.settled, |k| k.0) {
            self.known.push_back((pos, now));
        }
    }

    fn arrived(&mut self, pos: SyncCursor, now: Instant) {
        if self.started && pos == self.settled + 1 && self.arrived.is_empty() {
            // In order (the common case): settled at once, nothing kept.
            self.settled = pos;
        } else if self.started && pos > self.settled {
            self.arrived.insert(pos);
            // Positions are commit-ordered: everything below an arrived one is committed.
            self.note(pos, now);
        }
    }

    /// The store's newest position, read now.
    fn observe(&mut self, latest: SyncCursor, now: Instant) {
        self.start(latest);
        self.note(latest, now);
    }

    /// Nothing above `settled` is known or kept.
    fn is_idle(&self) -> bool {
        self.known.is_empty() && self.arrived.is_empty()
    }

    /// Settles every position known for at least `grace`; returns the range `(from, to]`
    /// spanning those among them that never arrived, if any.
    fn due(&mut self, now: Instant, grace: Duration) -> Option<(SyncCursor, SyncCursor)> {
        while self.arrived.first() == Some(&(self.settled + 1)) {
            self.arrived.pop_first();
            self.settled += 1;
        }
        let cutoff = now.checked_sub(grace)?;
        let upto = self.known.iter().take_while(|(_, t)| *t <= cutoff).last().map(|k| k.0);
        let upto = match upto {
            Some(x) if x > self.settled => x,
            _ => {
                let settled = self.settled;
                self.known.retain(|k| k.0 > settled);
                return None;
            }
        };
        let (mut lo, mut hi) = (None, 0);
        let mut next = self.settled + 1;
        for &a in self.arrived.range(next..=upto) {
            if a > next {
                lo.get_or_insert(next);
                hi = a - 1;
            }
            next = a + 1;
        }
        if next <= upto {
            lo.get_or_insert(next);
            hi = upto;
        }
        self.settled = upto;
        self.arrived = self.arrived.split_off(&(upto + 1));
        self.known.retain(|k| k.0 > upto);
        lo.map(|lo| (lo - 1, hi))
    }
}

/// The node's periodic work: reads the store's newest position and repairs what did not
/// arrive; publishes heartbeats. Ends when the gateway is dropped.
pub(crate) async fn watch(shared: Weak<Shared>) {
    let Some(cfg) = shared.upgrade().map(|s| s.config.cluster) else {
        return;
    };
    let mut poll = tokio::time::interval(cfg.poll_interval);
    poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beat = tokio::time::interval(cfg.heartbeat_interval);
    beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // A range found lost whose repair failed (store unavailable): retried at the next poll.
    let mut pending: Option<(SyncCursor, SyncCursor)> = None;
    loop {
        let is_poll = tokio::select! {
            _ = poll.tick() => true,
            _ = beat.tick() => false,
        };
        let Some(s) = shared.upgrade() else { return };
        if !is_poll {
            s.send(Payload::Heartbeat).await;
            continue;
        }
        match s.engine.latest_position().await {
            Ok(latest) => lock(&s.cluster.watch).observe(latest, Instant::now()),
            Err(e) => tracing::debug!(error = %e, "loss watcher: newest position unavailable"),
        }
        // After a gap, what is missing is judged after one poll interval instead of the
        // whole loss window, until a repair ran or nothing is left unsettled (a gap seen
        // before the store's newest position shows the lost one must not be forgotten).
        let forced = s.cluster.repair_now.load(Ordering::SeqCst);
        let grace = if forced { cfg.poll_interval } else { cfg.loss_after };
        let (due, idle) = {
            let mut w = lock(&s.cluster.watch);
            let due = w.due(Instant::now(), grace);
            (due, w.is_idle())
        };
        if forced && (due.is_some() || idle) {
            s.cluster.repair_now.store(false, Ordering::SeqCst);
        }
        if let Some((from, to)) = due {
            pending = Some(match pending {
                Some((f, t)) => (f.min(from), t.max(to)),
                None => (from, to),
            });
        }
        if let Some(range) = pending.take() {
            pending = repair(&s, range).await;
        }
    }
}

/// Checkpoints this node's connections of the users positions `(from, to]` concern. Returns
/// what is left to repair when the store failed.
async fn repair(s: &Shared, (from, to): (SyncCursor, SyncCursor)) -> Option<(SyncCursor, SyncCursor)> {
    let (mut users, mut conns) = (0u64, 0u64);
    let mut at = from;
    while at < to {
        let end = to.min(at + AUDIENCE_SPAN_MAX);
        match s.engine.position_audience(at, end).await {
            Ok(who) => {
                users += who.len() as u64;
                conns += s.hub.checkpoint_users(&who) as u64;
            }
            Err(e) => {
                tracing::warn!(error = %e, from = at, to, "loss repair: audience unavailable; retrying");
                return Some((at, to));
            }
        }
        at = end;
    }
    tracing::info!(
        node = %s.node_id, from, to, users, connections = conns,
        "backplane loss repaired: positions committed but not arrived; their audience's connections re-synced"
    );
    let mut h = lock(&s.cluster.health);
    h.repairs += 1;
    h.last_repair = Some(Repair {
        at: s.engine.clock().now_ms(),
        from,
        to,
        users,
        connections: conns,
    });
    None
}

/// What the dispatcher knows about one other node's envelopes.
struct Origin {
    epoch: u64,
    seq: u64,
    seen: Instant,
}

/// Routes what other nodes publish to this node's connections, acts on every control, tracks
/// each origin's sequence, follows the link (when it comes back after a loss, the node
/// re-checks its open sessions) and catches silent stalls (see the module docs). Ends when
/// the gateway is dropped.
pub(crate) async fn dispatch(shared: Weak<Shared>, stream: EventStream) {
    let Some(cfg) = shared.upgrade().map(|s| s.config.cluster) else {
        return;
    };
    let mut stream = Some(stream);
    let mut tick = tokio::time::interval((cfg.probe_after / 4).max(Duration::from_millis(10)));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last_arrival = Instant::now();
    let mut probe: Option<(u64, Instant)> = None;
    let mut missed = 0u32;
    let mut nonce = 0u64;
    let mut origins: HashMap<NodeId, Origin> = HashMap::new();
    // While the subscription is gone: when to try again, and how long to wait after that.
    let mut retry_at = Instant::now();
    let mut retry_delay = Duration::from_millis(100);
    let mut reconnect = false;
    loop {
        let event = match stream.as_mut() {
            Some(st) => tokio::select! {
                e = st.next() => Some(e),
                _ = tick.tick() => None,
            },
            None => {
                tick.tick().await;
                None
            }
        };
        let Some(s) = shared.upgrade() else { return };
        let now = Instant::now();
        match event {
            Some(Some(BackplaneEvent::Envelope(e))) => {
                // Anything arriving proves the subscription works.
                last_arrival = now;
                probe = None;
                missed = 0;
                {
                    let mut h = lock(&s.cluster.health);
                    h.last_arrival = Some(now);
                    if h.stalled {
                        h.stalled = false;
                        tracing::info!(node = %s.node_id, "backplane delivers again; no longer stalled");
                    }
                }
                if e.origin != s.node_id {
                    track_sequence(&s, &shared, &mut origins, &e, now);
                    s.receive(e);
                }
            }
            Some(Some(BackplaneEvent::LinkDown)) => {
                if s.link_up.swap(false, Ordering::SeqCst) {
                    tracing::warn!(node = %s.node_id, "backplane link down; other nodes' events come from the store's tail until it is back");
                }
            }
            Some(Some(BackplaneEvent::LinkUp)) => {
                last_arrival = now;
                probe = None;
                missed = 0;
                if !s.link_up.swap(true, Ordering::SeqCst) {
                    tracing::info!(node = %s.node_id, "backplane link up; re-checking open sessions");
                    let weak = shared.clone();
                    tokio::spawn(async move {
                        if let Some(s) = weak.upgrade() {
                            close_dead_sessions(&s).await;
                        }
                    });
                }
            }
            Some(None) => {
                tracing::error!(node = %s.node_id, "backplane stream ended; subscribing again");
                stream = None;
                retry_at = now;
            }
            None if stream.is_none() => {
                if now < retry_at {
                    continue;
                }
                if std::mem::take(&mut reconnect) {
                    match tokio::time::timeout(cfg.resubscribe_timeout, s.backplane.reconnect()).await {
                        Ok(Ok(())) => {}
                        Ok(Err(e)) => tracing::warn!(error = %e, "backplane reconnect failed"),
                        Err(_) => tracing::warn!("backplane reconnect timed out"),
                    }
                }
                match tokio::time::timeout(cfg.resubscribe_timeout, s.backplane.subscribe()).await {
                    Ok(Ok(st)) => {
                        tracing::info!(node = %s.node_id, "backplane: subscribed again");
                        lock(&s.cluster.health).resubscribes += 1;
                        stream = Some(st);
                        last_arrival = Instant::now();
                        probe = None;
                        missed = 0;
                        retry_delay = Duration::from_millis(100);
                    }
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "backplane: subscribing again failed; retrying");
                        retry_at = Instant::now() + retry_delay;
                        retry_delay = (retry_delay * 2).min(Duration::from_secs(1));
                    }
                    Err(_) => {
                        tracing::warn!("backplane: subscribing again timed out; retrying");
                        retry_at = Instant::now() + retry_delay;
                    }
                }
            }
            None => {
                origins.retain(|_, o| now.duration_since(o.seen) < ORIGIN_TTL);
                // A link reported down is the backplane's own to restore; a silent one is ours.
                if !s.link_up.load(Ordering::SeqCst) {
                    continue;
                }
                match probe {
                    Some((_, sent)) if now.duration_since(sent) >= cfg.probe_after => {
                        missed += 1;
                        if missed >= 2 {
                            tracing::warn!(
                                node = %s.node_id,
                                "backplane subscription silent (two self-probes lost); degraded, subscribing again"
                            );
                            lock(&s.cluster.health).stalled = true;
                            stream = None;
                            reconnect = true;
                            retry_at = now;
                            probe = None;
                            missed = 0;
                        } else {
                            nonce += 1;
                            probe = Some((nonce, now));
                            s.send(Payload::Probe(nonce)).await;
                        }
                    }
                    Some(_) => {}
                    None if now.duration_since(last_arrival) >= cfg.probe_after => {
                        tracing::debug!(node = %s.node_id, "nothing arrived over the backplane; probing");
                        nonce += 1;
                        probe = Some((nonce, now));
                        s.send(Payload::Probe(nonce)).await;
                    }
                    None => {}
                }
            }
        }
    }
}

/// Notes `e`'s place in its origin's sequence; a jump means envelopes were lost: repair at
/// the next poll and re-check open sessions (a control may have been among them).
fn track_sequence(
    s: &Shared,
    shared: &Weak<Shared>,
    origins: &mut HashMap<NodeId, Origin>,
    e: &Envelope,
    now: Instant,
) {
    let gap = match origins.get_mut(&e.origin) {
        Some(o) if o.epoch == e.epoch => {
            let gap = e.seq > o.seq + 1;
            o.seq = o.seq.max(e.seq);
            o.seen = now;
            gap
        }
        // An older epoch's late envelope: nothing to learn.
        Some(o) if o.epoch > e.epoch => false,
        // First sight of this origin, or it restarted.
        _ => {
            origins.insert(
                e.origin.clone(),
                Origin {
                    epoch: e.epoch,
                    seq: e.seq,
                    seen: now,
                },
            );
            false
        }
    };
    if gap {
        tracing::info!(node = %s.node_id, origin = %e.origin, seq = e.seq, "gap in a node's envelope sequence; repairing");
        lock(&s.cluster.health).gaps += 1;
        s.cluster.repair_now.store(true, Ordering::SeqCst);
        let weak = shared.clone();
        tokio::spawn(async move {
            if let Some(s) = weak.upgrade() {
                close_dead_sessions(&s).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(base: Instant, ms: u64) -> Instant {
        base + Duration::from_millis(ms)
    }

    #[test]
    fn positions_that_arrive_are_never_repaired() {
        let t0 = Instant::now();
        let mut w = LossWatch::default();
        w.observe(10, t0);
        for p in 11..=20 {
            w.arrived(p, at(t0, 10));
        }
        w.observe(20, at(t0, 20));
        assert_eq!(w.due(at(t0, 5_000), Duration::from_secs(1)), None);
        assert_eq!(w.settled, 20);
        assert!(w.arrived.is_empty() && w.known.is_empty());
    }

    #[test]
    fn a_position_known_long_enough_without_arriving_is_lost() {
        let t0 = Instant::now();
        let mut w = LossWatch::default();
        w.observe(0, t0);
        w.arrived(1, at(t0, 1));
        w.arrived(3, at(t0, 1));
        w.observe(5, at(t0, 2));
        // Not yet: known for less than the grace.
        assert_eq!(w.due(at(t0, 500), Duration::from_secs(1)), None);
        assert_eq!(w.settled, 1, "contiguous arrivals settle at once");
        w.arrived(6, at(t0, 600));
        // 2, 4 and 5 are lost: one span (1, 5]; 6 is too recent to judge.
        assert_eq!(w.due(at(t0, 1_100), Duration::from_secs(1)), Some((1, 5)));
        assert_eq!(w.settled, 5);
        assert_eq!(w.due(at(t0, 1_700), Duration::from_secs(1)), None);
        assert_eq!(w.settled, 6);
    }

    #[test]
    fn nothing_is_judged_before_the_first_reading() {
        let t0 = Instant::now();
        let mut w = LossWatch::default();
        w.arrived(5, t0);
        assert_eq!(w.due(at(t0, 5_000), Duration::from_secs(1)), None);
        w.observe(7, at(t0, 5_000));
        assert_eq!(w.settled, 7, "starts at the newest position");
        w.observe(9, at(t0, 5_001));
        assert_eq!(w.due(at(t0, 6_001), Duration::from_secs(1)), Some((7, 9)));
    }

    #[test]
    fn late_arrivals_of_settled_positions_are_ignored() {
        let t0 = Instant::now();
        let mut w = LossWatch::default();
        w.observe(0, t0);
        w.observe(3, t0);
        assert_eq!(w.due(at(t0, 1_000), Duration::from_secs(1)), Some((0, 3)));
        w.arrived(2, at(t0, 1_001));
        assert!(w.arrived.is_empty());
        assert_eq!(w.due(at(t0, 3_000), Duration::from_secs(1)), None);
    }
}

//! Fan-out: groups of `group_size` members, one connection each; one member per group (or
//! more) sends `payload_bytes` texts; every member's connection, the sender's included,
//! receives each message.
//!
//! Each run has two phases per server:
//! 1. **max rate** (closed loop): every sender keeps `window` messages in flight (a message
//!    leaves the window when the sender's own connection receives it back). Deliveries per
//!    second over the measured window are the highest rate the server sustains with these
//!    shapes (with no connection closed as a slow consumer; closures are reported).
//! 2. **latency at half load** (open loop): senders send on a fixed schedule at half of the
//!    send rate phase 1 reached; latency is receive time minus the *scheduled* send time
//!    (so a stalled sender cannot hide queueing), over every delivery.
//!
//! On a cluster (`--node-url`), member k of each group connects to node k mod N, so the
//! sender (member 0) is on node 0 and the other members spread over every node; the latency
//! of the deliveries to a member on another node than the sender is reported on its own
//! (`chatico_remote_latency_*`: across the backplane), beside that of the deliveries on the
//! sender's node (`chatico_local_latency_*`).
//!
//! The same code drives ChatiCO (a `send` frame per message, deliveries are `event` frames)
//! and the raw bound (the text itself, deliveries are any text frame).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};
use tokio_tungstenite::tungstenite::Message;

use super::chatico::{Server, send_frame};
use super::net::{Ws, instant_ns, now_ns, ws_connect};
use super::report::{Report, Run, latency_figures};
use super::{Common, LoadError, parse_marker, payload};

/// Parameters of the fan-out scenario.
#[derive(Debug, Clone)]
pub struct FanoutParams {
    pub group_size: usize,
    pub groups: usize,
    pub senders_per_group: usize,
    /// Messages each sender keeps in flight in the max-rate phase.
    pub window: u32,
    pub warmup: Duration,
    pub measure: Duration,
    /// The open-loop latency phase sends at this fraction of the closed-loop send rate
    /// (0.5: "half load"; the figures keep the `half_` names whatever the fraction).
    pub latency_load: f64,
    /// Which servers: ChatiCO, the raw bound, or both (alternating within each run).
    pub chatico: bool,
    pub raw: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Idle,
    Closed { window: u32 },
    Open { period_ns: u64, start: Instant },
    Collect(u64),
}

#[derive(Default)]
struct Control {
    win_start: AtomicU64,
    win_end: AtomicU64,
    delivered: AtomicU64,
    sent: AtomicU64,
    outstanding: AtomicI64,
    errors: AtomicU64,
    closed: AtomicU64,
    flushed: AtomicUsize,
    samples: std::sync::Mutex<Vec<u64>>,
    /// Latency samples of deliveries to a member on another node than the sender.
    remote_samples: std::sync::Mutex<Vec<u64>>,
    /// Latency samples of deliveries to a member on the sender's node (clusters only).
    local_samples: std::sync::Mutex<Vec<u64>>,
}

/// Where a member's connection is: which node, and how to tell a sender's node.
#[derive(Debug, Clone, Copy)]
struct Placement {
    group_size: usize,
    nodes: usize,
    node: usize,
}

impl Placement {
    /// The node of the member with this global index (member k of a group is on node k mod N).
    fn node_of(&self, index: u32) -> usize {
        (index as usize % self.group_size.max(1)) % self.nodes.max(1)
    }
}

impl Control {
    fn in_window(&self, t: u64) -> bool {
        t >= self.win_start.load(Ordering::Relaxed) && t < self.win_end.load(Ordering::Relaxed)
    }
    fn reset(&self, start: u64, end: u64) {
        self.win_start.store(start, Ordering::Relaxed);
        self.win_end.store(end, Ordering::Relaxed);
        self.delivered.store(0, Ordering::Relaxed);
        self.sent.store(0, Ordering::Relaxed);
        self.errors.store(0, Ordering::Relaxed);
        self.flushed.store(0, Ordering::Relaxed);
    }
}

/// How a member sends and what counts as a delivery.
#[derive(Clone)]
enum Kind {
    /// ChatiCO: send frames into `conversation`; deliveries are `event` frames.
    Chatico {
        conversation: Arc<str>,
        msg_prefix: Arc<str>,
    },
    Raw,
}

struct Sender {
    index: u32,
    /// Position among all senders (spreads the open-loop schedules).
    slot: u32,
    senders: u32,
}

/// One group of connections of one server, with the tasks that drive them.
struct Fleet {
    name: &'static str,
    control: Arc<Control>,
    cmd: watch::Sender<Mode>,
    tasks: usize,
    senders: usize,
    handles: Vec<tokio::task::JoinHandle<()>>,
    collect_gen: u64,
}

async fn member(
    mut ws: Ws,
    ctl: Arc<Control>,
    mut cmd: watch::Receiver<Mode>,
    kind: Kind,
    me: Option<Sender>,
    bytes: usize,
    place: Placement,
) {
    let mut inflight: u32 = 0;
    let mut samples: Vec<u64> = Vec::new();
    let mut remote: Vec<u64> = Vec::new();
    let mut local: Vec<u64> = Vec::new();
    let mut mode = Mode::Idle;
    let mut ticker: Option<tokio::time::Interval> = None;
    let mut seq: u64 = 0;
    loop {
        // Closed loop: fill the window.
        if let (Some(s), Mode::Closed { window }) = (&me, mode) {
            let mut fed = false;
            while inflight < window {
                if send_one(&mut ws, &kind, s.index, bytes, now_ns(), &mut seq, &ctl, false)
                    .await
                    .is_err()
                {
                    ctl.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                inflight += 1;
                fed = true;
            }
            if fed && ws.flush().await.is_err() {
                ctl.closed.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        let tick = async {
            match ticker.as_mut() {
                Some(t) => t.tick().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            changed = cmd.changed() => {
                if changed.is_err() {
                    return;
                }
                mode = *cmd.borrow_and_update();
                ticker = None;
                match mode {
                    Mode::Open { period_ns, start } => {
                        if let Some(s) = &me {
                            let offset = period_ns * u64::from(s.slot) / u64::from(s.senders.max(1));
                            let mut t = tokio::time::interval_at(
                                start + Duration::from_nanos(offset % period_ns.max(1)),
                                Duration::from_nanos(period_ns.max(1)),
                            );
                            t.set_missed_tick_behavior(MissedTickBehavior::Burst);
                            ticker = Some(t);
                        }
                    }
                    Mode::Collect(_) => {
                        ctl.samples.lock().unwrap_or_else(|e| e.into_inner()).append(&mut samples);
                        ctl.remote_samples.lock().unwrap_or_else(|e| e.into_inner()).append(&mut remote);
                        ctl.local_samples.lock().unwrap_or_else(|e| e.into_inner()).append(&mut local);
                        ctl.flushed.fetch_add(1, Ordering::Relaxed);
                    }
                    Mode::Idle | Mode::Closed { .. } => {}
                }
            }
            at = tick => {
                if let Some(s) = &me
                    && send_one(&mut ws, &kind, s.index, bytes, instant_ns(at.into_std()), &mut seq, &ctl, true).await.is_err()
                {
                    ctl.closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            m = ws.next() => {
                let now = now_ns();
                let text = match m {
                    Some(Ok(Message::Text(t))) => t,
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        ctl.closed.fetch_add(1, Ordering::Relaxed);
                        return;
                    }
                    Some(Ok(_)) => continue,
                };
                let s = text.as_str();
                if let Kind::Chatico { .. } = kind
                    && !s.starts_with(r#"{"type":"event""#)
                {
                    if s.starts_with(r#"{"type":"error""#) && me.is_some() {
                        inflight = inflight.saturating_sub(1);
                        ctl.outstanding.fetch_sub(1, Ordering::Relaxed);
                        ctl.errors.fetch_add(1, Ordering::Relaxed);
                    }
                    continue;
                }
                let Some((sent_ns, from)) = parse_marker(s) else { continue };
                if ctl.in_window(now) {
                    ctl.delivered.fetch_add(1, Ordering::Relaxed);
                }
                if matches!(mode, Mode::Open { .. }) && ctl.in_window(sent_ns) {
                    samples.push(now.saturating_sub(sent_ns));
                    if place.nodes > 1 {
                        if place.node_of(from) == place.node {
                            local.push(now.saturating_sub(sent_ns));
                        } else {
                            remote.push(now.saturating_sub(sent_ns));
                        }
                    }
                }
                if me.as_ref().is_some_and(|m| m.index == from) {
                    inflight = inflight.saturating_sub(1);
                    ctl.outstanding.fetch_sub(1, Ordering::Relaxed);
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn send_one(
    ws: &mut Ws,
    kind: &Kind,
    sender: u32,
    bytes: usize,
    stamp: u64,
    seq: &mut u64,
    ctl: &Control,
    flush: bool,
) -> Result<(), ()> {
    *seq += 1;
    let text = payload(stamp, sender, bytes);
    let frame = match kind {
        Kind::Chatico {
            conversation,
            msg_prefix,
        } => send_frame(*seq, conversation, &format!("{msg_prefix}-{sender}-{seq}"), &text),
        Kind::Raw => text,
    };
    ctl.outstanding.fetch_add(1, Ordering::Relaxed);
    if ctl.in_window(stamp) {
        ctl.sent.fetch_add(1, Ordering::Relaxed);
    }
    let r = if flush {
        ws.send(Message::text(frame)).await
    } else {
        ws.feed(Message::text(frame)).await
    };
    r.map_err(|_| ())
}

impl Fleet {
    fn new(name: &'static str) -> Fleet {
        let (cmd, _) = watch::channel(Mode::Idle);
        Fleet {
            name,
            control: Arc::new(Control::default()),
            cmd,
            tasks: 0,
            senders: 0,
            handles: Vec::new(),
            collect_gen: 0,
        }
    }

    fn spawn(&mut self, ws: Ws, kind: Kind, me: Option<Sender>, bytes: usize, place: Placement) {
        self.tasks += 1;
        if me.is_some() {
            self.senders += 1;
        }
        let rx = self.cmd.subscribe();
        self.handles.push(tokio::spawn(member(
            ws,
            self.control.clone(),
            rx,
            kind,
            me,
            bytes,
            place,
        )));
    }

    /// Waits until every sent message came back (or `limit` passed).
    async fn drain(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.control.outstanding.load(Ordering::Relaxed) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Phase 1; returns (deliveries/s, sends/s).
    async fn max_rate(&mut self, p: &FanoutParams, run: &mut Run) -> (f64, f64) {
        let c = &self.control;
        let start = now_ns() + p.warmup.as_nanos() as u64;
        c.reset(start, start + p.measure.as_nanos() as u64);
        let _ = self.cmd.send(Mode::Closed { window: p.window });
        tokio::time::sleep(p.warmup + p.measure).await;
        let _ = self.cmd.send(Mode::Idle);
        let secs = p.measure.as_secs_f64();
        let delivered = c.delivered.load(Ordering::Relaxed) as f64 / secs;
        let sent = c.sent.load(Ordering::Relaxed) as f64 / secs;
        self.drain(Duration::from_secs(10)).await;
        let n = self.name;
        run.set(format!("{n}_max_deliveries_per_s"), delivered);
        run.set(format!("{n}_max_sends_per_s"), sent);
        run.set(format!("{n}_max_errors"), c.errors.load(Ordering::Relaxed) as f64);
        (delivered, sent)
    }

    /// Phase 2 at `send_rate` sends/s in all.
    async fn latency(&mut self, p: &FanoutParams, send_rate: f64, run: &mut Run) {
        let c = &self.control;
        if send_rate <= 0.0 || self.senders == 0 {
            return;
        }
        let period_ns = (self.senders as f64 / send_rate * 1e9) as u64;
        let begin = Instant::now() + Duration::from_millis(20);
        let start = instant_ns(begin.into_std()) + p.warmup.as_nanos() as u64;
        c.reset(start, start + p.measure.as_nanos() as u64);
        c.samples.lock().unwrap_or_else(|e| e.into_inner()).clear();
        c.remote_samples.lock().unwrap_or_else(|e| e.into_inner()).clear();
        c.local_samples.lock().unwrap_or_else(|e| e.into_inner()).clear();
        let _ = self.cmd.send(Mode::Open {
            period_ns,
            start: begin,
        });
        tokio::time::sleep(Duration::from_millis(20) + p.warmup + p.measure).await;
        let _ = self.cmd.send(Mode::Idle);
        let secs = p.measure.as_secs_f64();
        let delivered = c.delivered.load(Ordering::Relaxed) as f64 / secs;
        self.drain(Duration::from_secs(10)).await;
        self.collect_gen += 1;
        let _ = self.cmd.send(Mode::Collect(self.collect_gen));
        let deadline = Instant::now() + Duration::from_secs(10);
        let alive = self.handles.iter().filter(|h| !h.is_finished()).count();
        while c.flushed.load(Ordering::Relaxed) < alive && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let mut samples = std::mem::take(&mut *c.samples.lock().unwrap_or_else(|e| e.into_inner()));
        let n = self.name;
        run.set(format!("{n}_half_send_rate"), send_rate);
        run.set(format!("{n}_half_deliveries_per_s"), delivered);
        latency_figures(run, &format!("{n}_latency"), &mut samples, true);
        let mut remote = std::mem::take(&mut *c.remote_samples.lock().unwrap_or_else(|e| e.into_inner()));
        if !remote.is_empty() {
            latency_figures(run, &format!("{n}_remote_latency"), &mut remote, true);
        }
        let mut local = std::mem::take(&mut *c.local_samples.lock().unwrap_or_else(|e| e.into_inner()));
        if !local.is_empty() {
            latency_figures(run, &format!("{n}_local_latency"), &mut local, true);
        }
        run.set(
            format!("{n}_lost_after_drain"),
            c.outstanding.load(Ordering::Relaxed).max(0) as f64,
        );
    }

    fn closed(&self) -> u64 {
        self.control.closed.load(Ordering::Relaxed)
    }
}

async fn chatico_fleet(common: &Common, server: &Arc<Server>, p: &FanoutParams) -> Result<Fleet, LoadError> {
    let mut fleet = Fleet::new("chatico");
    let n = p.group_size * p.groups;
    let users = server.login_many(0, n, common.concurrency).await?;
    let mut conversations = Vec::with_capacity(p.groups);
    for g in users.chunks(p.group_size) {
        let others: Vec<_> = g[1..].iter().collect();
        conversations.push(Arc::<str>::from(server.create_group(&g[0], &others).await?));
    }
    let nodes = server.nodes.len();
    let socks: Vec<Result<Ws, LoadError>> = futures::stream::iter(users.iter().enumerate())
        .map(|(i, u)| {
            let src = common.sources.pick();
            let node = (i % p.group_size) % nodes;
            async move {
                server
                    .connect_subscribed_on(u, src, None, node)
                    .await
                    .map(|(ws, _, _)| ws)
            }
        })
        .buffered(common.concurrency.max(1))
        .collect()
        .await;
    let prefix: Arc<str> = Arc::from(format!("L{}", server.tag));
    let total_senders = (p.groups * p.senders_per_group) as u32;
    for (i, ws) in socks.into_iter().enumerate() {
        let ws = ws?;
        let (g, m) = (i / p.group_size, i % p.group_size);
        let kind = Kind::Chatico {
            conversation: conversations[g].clone(),
            msg_prefix: prefix.clone(),
        };
        let me = (m < p.senders_per_group).then(|| Sender {
            index: i as u32,
            slot: (g * p.senders_per_group + m) as u32,
            senders: total_senders,
        });
        let place = Placement {
            group_size: p.group_size,
            nodes,
            node: m % nodes,
        };
        fleet.spawn(ws, kind, me, common.payload_bytes, place);
    }
    Ok(fleet)
}

async fn raw_fleet(common: &Common, url: &str, p: &FanoutParams) -> Result<Fleet, LoadError> {
    let mut fleet = Fleet::new("raw");
    let base = url.trim_end_matches('/');
    // Group numbers unique to this invocation, so two runs never share a group.
    let first_group = u64::from(rand::random::<u32>()) << 20;
    let total_senders = (p.groups * p.senders_per_group) as u32;
    let socks: Vec<Result<Ws, LoadError>> = futures::stream::iter(0..p.groups * p.group_size)
        .map(|i| {
            let src = common.sources.pick();
            let url = format!("{base}/?group={}", first_group + (i / p.group_size) as u64);
            async move { ws_connect(&url, src, &[]).await }
        })
        .buffered(common.concurrency.max(1))
        .collect()
        .await;
    for (i, ws) in socks.into_iter().enumerate() {
        let (g, m) = (i / p.group_size, i % p.group_size);
        let me = (m < p.senders_per_group).then(|| Sender {
            index: i as u32,
            slot: (g * p.senders_per_group + m) as u32,
            senders: total_senders,
        });
        let place = Placement {
            group_size: p.group_size,
            nodes: 1,
            node: 0,
        };
        fleet.spawn(ws?, Kind::Raw, me, common.payload_bytes, place);
    }
    // Let every connection join its group before anything is sent.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(fleet)
}

/// Runs the scenario: `common.runs` runs, each measuring ChatiCO then the raw bound.
pub async fn run(common: &Common, p: &FanoutParams) -> Result<Report, LoadError> {
    if p.group_size < 2 || p.groups == 0 || p.senders_per_group == 0 || p.senders_per_group > p.group_size {
        return Err(LoadError::Usage(
            "--group-size >= 2, --groups >= 1, 1 <= --senders-per-group <= --group-size".into(),
        ));
    }
    let mut rep = Report::new(&format!("fanout-{}", p.group_size));
    rep.param("group_size", p.group_size);
    rep.param("groups", p.groups);
    rep.param("senders_per_group", p.senders_per_group);
    rep.param("window", p.window);
    rep.param("payload_bytes", common.payload_bytes);
    rep.param("warmup_s", p.warmup.as_secs_f64());
    rep.param("latency_load", p.latency_load);
    rep.param("measure_s", p.measure.as_secs_f64());
    rep.param("runs", common.runs);
    if let Some(s) = &common.server {
        rep.param("nodes", s.nodes.len());
    }
    let mut chatico = match (p.chatico, &common.server) {
        (true, Some(s)) => Some(chatico_fleet(common, s, p).await?),
        (true, None) => return Err(LoadError::Usage("fanout on chatico needs --url and --otp-log".into())),
        _ => None,
    };
    let mut raw = match (p.raw, &common.raw_url) {
        (true, Some(u)) => Some(raw_fleet(common, u, p).await?),
        (true, None) => return Err(LoadError::Usage("fanout on the raw bound needs --raw-url".into())),
        _ => None,
    };
    for _ in 0..common.runs.max(1) {
        let mut run = Run::default();
        for fleet in [chatico.as_mut(), raw.as_mut()].into_iter().flatten() {
            let (_, sends) = fleet.max_rate(p, &mut run).await;
            fleet.latency(p, sends * p.latency_load, &mut run).await;
            run.set(format!("{}_closed_connections", fleet.name), fleet.closed() as f64);
        }
        if let (Some(c), Some(r)) = (
            run.get("chatico_max_deliveries_per_s"),
            run.get("raw_max_deliveries_per_s"),
        ) && r > 0.0
        {
            run.set("ratio_chatico_to_raw", c / r);
        }
        rep.runs.push(run);
    }
    if chatico.is_some() && raw.is_some() {
        rep.target("ratio_chatico_to_raw", ">=", 0.8);
    }
    if chatico.is_some() && (p.latency_load - 0.5).abs() < f64::EPSILON {
        rep.target("chatico_latency_p50_ms", "<=", 1.0);
        rep.target("chatico_latency_p99_ms", "<=", 5.0);
    }
    rep.notes.push(
        "deliveries = message frames received by members (the sender's own connection included); \
         max rate: closed loop with `window` in flight per sender; latency: open loop at `latency_load` (0.5 = half) \
         of the max send rate, measured from the scheduled send time"
            .into(),
    );
    for f in [chatico, raw].into_iter().flatten() {
        for h in f.handles {
            h.abort();
        }
    }
    rep.finish();
    Ok(rep)
}

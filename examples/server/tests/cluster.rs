//! The cluster fault suite (shared/SCALE-OUT.md, "How to prove it"): example-server
//! processes (nodes) on one PostgreSQL schema, each reaching a broker the test owns (its own
//! `redis-server` / `nats-server` on a free port) through its own TCP fault proxy.
//!
//! - Three nodes, no fault: a user with a socket on every node receives live a message sent
//!   through node 1 on all three, and a logout-everywhere sent to node 1 closes all three
//!   with 4001 (Redis and NATS).
//! - Three nodes under faults: six users (user i on node i mod 3) in one group write through
//!   the native client SDK (outbox, reconnects) while the test kills a node, kills or
//!   restarts the broker, kills the pub/sub connections, makes Redis drop them for its
//!   output-buffer limit, blackholes one node's link (Redis and NATS), cuts PostgreSQL or
//!   restarts every node in turn. A Jepsen-style checker then asserts, for every member:
//!   every message stored is reported exactly once and in `seq` order (the reported seqs are
//!   exactly 1..=last_seq, ascending), every acknowledged send is among them, and the
//!   client's cursor never went back. Then the presence checker: one member closes its
//!   client, and every other member, asking its own node, must see exactly the members with
//!   an open socket online.
//! - Where the backplane is broken, a message sent through one node must still reach a
//!   member on another node within [`REPAIR`] with nobody else writing: only the node's loss
//!   watcher (the store's tail) can deliver it that fast (an idle connection's own re-sync
//!   runs every 60 s).
//!
//! The scenarios run one at a time (a lock): each starts three server processes. PostgreSQL
//! is the machine's shared one and is never restarted here: the PostgreSQL scenario cuts it
//! with a fault proxy (the server's own restart test is chatico-store/tests/postgres_restart.rs).
//! Each test's schema is dropped when it ends (also on a panic); schemas older than an hour
//! left by killed runs are swept when the suite starts. Needs `CHATICO_TEST_POSTGRES_URL` and
//! the broker binaries; without them each test prints why it is skipped and checks nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatico_core::ids::ConversationId;
use chatico_core::ids::UserId;
use chatico_core::sync::ChangeKind;
use chatico_test_support::client::client_config;
use chatico_test_support::fault::{Fault, FaultProxy};
use chatico_test_support::pg::{SchemaGuard, sweep_stale_schemas};
use chatico_test_support::process::{BrokerKind, BrokerProcess, ServerProcess, unique_suffix};
use chatico_test_support::{Ws, is_change};
use chatico_transport::client::{Client, ClientEvent, ConnectionState};
use serde_json::Value;
use tokio::sync::broadcast;

/// How long a live event may take across nodes before the test calls it not live.
const LIVE: Duration = Duration::from_secs(5);
/// How long a change whose live copy the backplane lost may take to reach a member on
/// another node (the target is 1.5 s at p99; this bound leaves room for a loaded machine
/// and is far below the 60 s idle re-sync).
const REPAIR: Duration = Duration::from_secs(5);
/// How long the cluster has to settle after the faults heal: every member has everything.
const SETTLE: Duration = Duration::from_secs(30);
const JWT_SECRET: &str = "cluster-test-secret-cluster-test-secret-0123456789";
const NODES: usize = 3;
const USERS: usize = 6;

/// One scenario at a time: each runs three server processes and a broker.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn postgres_url(what: &str) -> Option<String> {
    let url = std::env::var("CHATICO_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty());
    if url.is_none() {
        eprintln!("SKIPPED {what}: CHATICO_TEST_POSTGRES_URL is not set (scripts/test-all.sh sets it)");
    }
    if let Some(url) = &url {
        // Once per test process: the schemas of runs killed before their guards ran.
        static SWEEP: std::sync::Once = std::sync::Once::new();
        SWEEP.call_once(|| sweep_stale_schemas(url, &["cluster", "state"], Duration::from_secs(3600)));
    }
    url
}

/// The socket address of the PostgreSQL a URL names.
fn pg_addr(url: &str) -> std::net::SocketAddr {
    use std::net::ToSocketAddrs;
    let u = reqwest::Url::parse(url).expect("postgres url");
    (u.host_str().unwrap_or("127.0.0.1"), u.port().unwrap_or(5432))
        .to_socket_addrs()
        .expect("resolve postgres")
        .next()
        .expect("postgres address")
}

fn server_bin() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_chatico-server"))
}

/// N example-server nodes on one fresh schema, node i on a fixed port (a restart comes back
/// on it) and reaching the broker through `proxies[i]`.
struct Cluster {
    pg: String,
    schema: String,
    broker: BrokerProcess,
    /// The Redis holding shared state (presence, OTP) when the backplane is NATS: the example
    /// server refuses several NATS nodes without one.
    state: Option<BrokerProcess>,
    proxies: Vec<FaultProxy>,
    /// Between every node and PostgreSQL, when the scenario cuts the database.
    pg_proxy: Option<FaultProxy>,
    ports: Vec<u16>,
    nodes: Vec<Option<ServerProcess>>,
    dirs: Vec<PathBuf>,
    /// Drops the schema when the test ends (after the nodes: fields drop after `Drop::drop`).
    _schema: SchemaGuard,
}

impl Cluster {
    async fn start(kind: BrokerKind, n: usize, what: &str) -> Option<Cluster> {
        Cluster::start_with(kind, n, what, false).await
    }

    /// [`Cluster::start`], the nodes reaching PostgreSQL through a fault proxy when `cut_pg`.
    async fn start_with(kind: BrokerKind, n: usize, what: &str, cut_pg: bool) -> Option<Cluster> {
        let pg = postgres_url(what)?;
        let broker = BrokerProcess::start(kind)?;
        let state = match kind {
            BrokerKind::Nats => Some(BrokerProcess::start(BrokerKind::Redis)?),
            _ => None,
        };
        let mut proxies = Vec::new();
        for _ in 0..n {
            proxies.push(FaultProxy::start(broker.addr()).await);
        }
        let suffix = unique_suffix();
        let schema = format!("cluster_{suffix}");
        let mut c = Cluster {
            _schema: SchemaGuard::new(&pg, &schema),
            pg,
            schema,
            broker,
            state,
            proxies,
            pg_proxy: None,
            ports: (0..n).map(|_| chatico_test_support::process::free_port()).collect(),
            nodes: (0..n).map(|_| None).collect(),
            dirs: (0..n)
                .map(|i| std::env::temp_dir().join(format!("chatico-cluster-{suffix}-n{i}")))
                .collect(),
        };
        if cut_pg {
            c.pg_proxy = Some(FaultProxy::start(pg_addr(&c.pg)).await);
        }
        // One after the other: the first creates the schema and runs the migrations.
        for i in 0..n {
            c.start_node(i);
        }
        Some(c)
    }

    /// The database URL the nodes use: through the proxy when there is one.
    fn node_pg(&self) -> String {
        match &self.pg_proxy {
            Some(p) => {
                let mut u = reqwest::Url::parse(&self.pg).expect("postgres url");
                u.set_host(Some("127.0.0.1")).expect("host");
                u.set_port(Some(p.addr.port())).expect("port");
                u.to_string()
            }
            None => self.pg.clone(),
        }
    }

    fn start_node(&mut self, i: usize) {
        let args: Vec<String> = [
            "--addr",
            &format!("127.0.0.1:{}", self.ports[i]),
            "--data-dir",
            &self.dirs[i].to_string_lossy(),
            "--database-url",
            &self.node_pg(),
            "--database-schema",
            &self.schema,
            "--backplane",
            &format!("{}://127.0.0.1:{}", self.broker.kind.scheme(), self.proxies[i].port()),
            "--node-id",
            &format!("n{i}"),
            "--jwt-secret",
            JWT_SECRET,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut args = args;
        if let Some(state) = &self.state {
            args.extend(["--redis-url".to_owned(), state.url()]);
        }
        self.nodes[i] = Some(ServerProcess::start(server_bin(), &args));
    }

    fn node(&self, i: usize) -> &ServerProcess {
        self.nodes[i].as_ref().expect("node running")
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    /// SIGKILL node `i` (no goodbye to anyone).
    fn kill_node(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            n.kill();
        }
    }

    /// SIGTERM node `i` and wait for its graceful exit.
    fn stop_node(&mut self, i: usize) {
        if let Some(mut n) = self.nodes[i].take() {
            n.signal("-TERM");
            let status = n.wait_exit(Duration::from_secs(20));
            assert!(status.success(), "node {i} exit: {status}");
        }
    }

    async fn health(&self, i: usize) -> Value {
        let r = reqwest::get(format!("{}/v1/health", self.url(i)))
            .await
            .expect("health");
        assert_eq!(r.status(), 200, "node {i} health status");
        r.json().await.expect("health json")
    }

    /// Waits (up to `within`) until node `i`'s health satisfies `pred`; returns it.
    async fn health_until(&self, i: usize, within: Duration, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let h = self.health(i).await;
            if pred(&h) {
                return h;
            }
            assert!(
                Instant::now() < deadline,
                "node {i}: {what} within {within:?}; health: {h}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for n in &mut self.nodes {
            n.take();
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// What one member's client reported.
#[derive(Debug, Default)]
struct Log {
    /// The seqs of the group's messages, in the order the client reported them.
    seqs: Vec<i64>,
    /// Seqs of this member's sends the server acknowledged.
    acked: Vec<i64>,
    /// Every durable cursor the client reported, in order.
    cursors: Vec<i64>,
    /// Anything that went wrong in the event stream (lag).
    broken: Option<String>,
}

struct Member {
    client: Client,
    node: usize,
    log: Arc<Mutex<Log>>,
}

impl Member {
    fn log(&self) -> std::sync::MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has(&self, seq: i64) -> bool {
        self.log().seqs.contains(&seq)
    }
}

/// Records `client`'s events for `conv` into a [`Log`] until the client is dropped.
fn record(mut rx: broadcast::Receiver<ClientEvent>, conv: Arc<Mutex<Option<ConversationId>>>) -> Arc<Mutex<Log>> {
    let log = Arc::new(Mutex::new(Log::default()));
    let out = log.clone();
    tokio::spawn(async move {
        loop {
            let e = match rx.recv().await {
                Ok(e) => e,
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    out.lock().unwrap_or_else(|e| e.into_inner()).broken = Some(format!("lagged by {n}"));
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => return,
            };
            let conv = *conv.lock().unwrap_or_else(|e| e.into_inner());
            let mut log = out.lock().unwrap_or_else(|e| e.into_inner());
            match e {
                ClientEvent::Change(c) => {
                    if let ChangeKind::Message { message } = c.kind
                        && Some(message.conversation_id) == conv
                    {
                        log.seqs.push(message.seq);
                    }
                }
                ClientEvent::Sent { message, .. } if Some(message.conversation_id) == conv => {
                    log.acked.push(message.seq)
                }
                ClientEvent::Synced { cursor, .. } => log.cursors.push(cursor),
                ClientEvent::SendFailed { client_msg_id, error } => {
                    log.broken = Some(format!("send {client_msg_id:?} refused: {error}"));
                }
                _ => {}
            }
        }
    });
    log
}

/// Six members, user i on node i mod 3, in one group; every client connected and holding
/// the group. Returns them, the group, and its last seq before anyone wrote (the group's
/// notices: what the checker does not count).
async fn members(c: &Cluster) -> (Vec<Member>, ConversationId, i64) {
    let conv_cell: Arc<Mutex<Option<ConversationId>>> = Arc::new(Mutex::new(None));
    let tag = &c.schema[c.schema.len() - 6..];
    let mut out = Vec::new();
    for u in 0..USERS {
        let node = u % NODES;
        let client = Client::new(client_config(c.url(node))).expect("client");
        let phone = format!("+1555{tag}{u:02}");
        let phone: String = phone.chars().take(14).collect();
        client.request_otp(&phone).await.expect("otp");
        let code = c.node(node).otp_code(&phone);
        client.verify_otp(&phone, &code).await.expect("verify");
        let log = record(client.events(), conv_cell.clone());
        out.push(Member { client, node, log });
    }
    let ids: Vec<_> = out.iter().map(|m| m.client.user_id().expect("id")).collect();
    let conv = out[0]
        .client
        .create_group("faults", ids[1..].to_vec(), None)
        .await
        .expect("group")
        .id;
    *conv_cell.lock().unwrap_or_else(|e| e.into_inner()) = Some(conv);
    for m in &out {
        m.client.connect().await.expect("connect");
    }
    for m in &out {
        eventually(LIVE * 4, "every client holds the group", || {
            m.client.conversation(conv).is_some()
        })
        .await;
    }
    let base = out
        .iter()
        .filter_map(|m| m.client.conversation(conv))
        .map(|v| v.conversation.last_seq)
        .max()
        .unwrap_or(0);
    (out, conv, base)
}

async fn eventually(within: Duration, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !f() {
        assert!(Instant::now() < deadline, "timed out ({within:?}) waiting until {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every member writes `per_member` messages, paced, through its own node; returns once
/// all are queued in the outboxes (not necessarily sent).
async fn storm(members: &[Member], conv: ConversationId, tag: &str, per_member: usize) {
    for k in 0..per_member {
        for (u, m) in members.iter().enumerate() {
            m.client.send_text(conv, format!("{tag}-{u}-{k}"));
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// How a probe message must travel in [`reaches_across`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Route {
    /// Live over the backplane (well under the loss window).
    Live,
    /// The backplane cannot carry it: only the receiving node's loss watcher can deliver it
    /// (not before one 250 ms poll interval, within [`REPAIR`]).
    Repaired,
}

/// `from` sends one message with nobody else writing; `to` (on another node) must report it
/// within [`REPAIR`], by `path`. Returns how long it took.
async fn reaches_across(
    members: &[Member],
    conv: ConversationId,
    from: usize,
    to: usize,
    path: Route,
    what: &str,
) -> Duration {
    assert_ne!(members[from].node, members[to].node);
    // Quiet first: every member's outbox empty, and the receipts the clients send for what
    // they received settled (they make the receiving node's connections checkpoint: a path
    // other than the one under test).
    for m in members {
        eventually(SETTLE, "outboxes drained", || m.client.pending().is_empty()).await;
    }
    // Quiet: no member's client reported anything for 2 s (with the backplane down, the
    // receipts for repaired messages are repaired in turn, a second later each).
    let activity = || -> Vec<(usize, usize)> {
        members
            .iter()
            .map(|m| {
                let log = m.log();
                (log.seqs.len(), log.cursors.len())
            })
            .collect()
    };
    let deadline = Instant::now() + SETTLE;
    let mut last = activity();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < Duration::from_secs(2) {
        assert!(Instant::now() < deadline, "{what}: the cluster never went quiet");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = activity();
        if now != last {
            last = now;
            quiet_since = Instant::now();
        }
    }
    let before = members[from].log().acked.len();
    let sent = Instant::now();
    members[from].client.send_text(conv, format!("probe {what}"));
    eventually(LIVE * 2, "the probe acknowledged", || {
        members[from].log().acked.len() > before
    })
    .await;
    // The commit is behind the acknowledgement: on a loaded machine (Postgres shared with the
    // rest of the suite) it alone can take seconds, which says nothing about the route.
    let acked = Instant::now();
    let seq = *members[from].log().acked.last().expect("acked");
    eventually(
        REPAIR,
        &format!("{what}: the probe (seq {seq}) reaches node {}", members[to].node),
        || members[to].has(seq),
    )
    .await;
    let took = sent.elapsed();
    match path {
        // Live: within a few hundred ms of the commit; a repair comes a loss window (1 s)
        // after it.
        Route::Live => {
            let after_ack = acked.elapsed();
            assert!(
                after_ack < Duration::from_millis(900),
                "{what}: not live: {after_ack:?} after the acknowledgement ({took:?} after the send)"
            );
        }
        // The watcher repairs one poll interval (250 ms) after it saw the position at the
        // earliest (the full 1 s loss window unless a sequence gap showed the loss first).
        Route::Repaired => assert!(
            took >= Duration::from_millis(250),
            "{what}: arrived in {took:?}, before the loss window: not through the loss watcher"
        ),
    }
    took
}

/// The checker: after the faults heal, every member reports every message stored after
/// `base` exactly once, in seq order (`base+1..=last_seq`, ascending), including every
/// acknowledged send, and its cursor never went back.
async fn check(members: &[Member], conv: ConversationId, base: i64, what: &str) {
    for m in members {
        eventually(SETTLE, &format!("{what}: outboxes drained"), || {
            m.client.pending().is_empty()
        })
        .await;
    }
    let acked: BTreeSet<i64> = members.iter().flat_map(|m| m.log().acked.clone()).collect();
    let last = members
        .iter()
        .map(|m| m.client.conversation(conv).map_or(0, |v| v.conversation.last_seq))
        .chain(acked.iter().copied())
        .max()
        .unwrap_or(0);
    for (u, m) in members.iter().enumerate() {
        eventually(
            SETTLE,
            &format!("{what}: member {u} has every message up to {last}"),
            || {
                let log = m.log();
                (base + 1..=last).all(|s| log.seqs.contains(&s))
            },
        )
        .await;
    }
    // A moment for any late duplicate to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for (u, m) in members.iter().enumerate() {
        let log = m.log();
        assert_eq!(log.broken, None, "{what}: member {u}'s event stream");
        let got: Vec<i64> = log.seqs.iter().copied().filter(|s| *s > base).collect();
        let expected: Vec<i64> = (base + 1..=got.last().copied().unwrap_or(0).max(last)).collect();
        assert_eq!(
            got, expected,
            "{what}: member {u} (node {}) must report every message once, in seq order",
            m.node
        );
        for s in &acked {
            assert!(
                log.seqs.contains(s),
                "{what}: acknowledged seq {s} missing at member {u}"
            );
        }
        assert!(
            log.cursors.windows(2).all(|w| w[0] <= w[1]),
            "{what}: member {u}'s cursor went back: {:?}",
            log.cursors
        );
    }
    assert!(acked.len() >= members.len(), "{what}: the storm was acknowledged");
    eprintln!(
        "{what}: {} acknowledged, last seq {last}, all {} members exact",
        acked.len(),
        members.len()
    );
}

/// The presence checker, at quiescence after the faults healed: member `away` closes its
/// client; then every other member (on every node) must see exactly the members whose
/// sockets are open as online — the others connected, `away` offline — and keep seeing it.
/// It may take up to a presence tick or two (5 s each) after a Redis restart or a reaped
/// node: within [`SETTLE`].
async fn check_presence(members: &[Member], away: usize, what: &str) {
    members[away].client.disconnect().await;
    for (u, m) in members.iter().enumerate().filter(|(u, _)| *u != away) {
        eventually(SETTLE, &format!("{what}: member {u} connected"), || {
            m.client.connection_state() == ConnectionState::Connected
        })
        .await;
    }
    let ids: Vec<UserId> = members.iter().map(|m| m.client.user_id().expect("id")).collect();
    let expected: Vec<(UserId, bool)> = ids.iter().enumerate().map(|(u, id)| (*id, u != away)).collect();
    // What observer `o` (through its own node) sees: (user, online) in member order.
    let seen_by = |o: usize| {
        let (client, ids) = (members[o].client.clone(), ids.clone());
        async move {
            let ps = client.presence_of(&ids).await.expect("presence");
            ids.iter()
                .map(|id| (*id, ps.iter().any(|p| p.user_id == *id && p.online)))
                .collect::<Vec<_>>()
        }
    };
    let observers: Vec<usize> = (0..members.len()).filter(|u| *u != away).collect();
    let deadline = Instant::now() + SETTLE;
    loop {
        let mut wrong = Vec::new();
        for &o in &observers {
            let got = seen_by(o).await;
            if got != expected {
                wrong.push((o, members[o].node, got));
            }
        }
        if wrong.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: presence is not the set of open sockets (expected {expected:?}); observer, node, seen: {wrong:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // And it stays so (no late flap from a reaper or a re-registration).
    tokio::time::sleep(Duration::from_secs(1)).await;
    for &o in &observers {
        assert_eq!(
            seen_by(o).await,
            expected,
            "{what}: presence seen by member {o} (node {}) changed after settling",
            members[o].node
        );
    }
    eprintln!(
        "{what}: presence equals the open sockets at all {} observers",
        observers.len()
    );
}

// ---- live delivery and logout everywhere across three nodes -----------------------------

async fn deliver_live_and_log_out_everywhere(kind: BrokerKind) {
    let _serial = SERIAL.lock().await;
    let what = format!("live and logout everywhere ({kind:?})");
    let Some(c) = Cluster::start(kind, NODES, &what).await else {
        return;
    };
    let n1 = c.node(0);
    let alice = n1.login("+15550002001").await;
    let bob = c.node(1).login("+15550002002").await;
    let conv = n1.api.open_direct(&alice, &bob).await;

    // Bob listens on every node (three devices); Alice sends through node 1.
    let mut sockets = Vec::new();
    for i in 0..NODES {
        let mut ws = Ws::open(&format!("ws://{}/v1/ws", c.node(i).addr), None, None)
            .await
            .expect("ws");
        ws.auth(&bob.token).await;
        ws.subscribe(None).await;
        sockets.push(ws);
    }
    let sent_at = Instant::now();
    n1.api.send_text(&conv, &alice, "cross-node", "hello from node 1").await;
    for (i, ws) in sockets.iter_mut().enumerate() {
        let got = tokio::time::timeout(LIVE, ws.event(|e| is_change(e, "message")))
            .await
            .unwrap_or_else(|_| panic!("{what}: the message did not arrive live on node {i}"));
        assert!(sent_at.elapsed() < LIVE);
        assert_eq!(got["kind"]["message"]["content"]["text"], "hello from node 1");
    }

    // Logout-everywhere through node 1 closes Bob's sockets on every node with 4001.
    let (status, _) = n1
        .api
        .call(
            reqwest::Method::POST,
            "/v1/auth/logout-everywhere",
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, 200);
    for (i, ws) in sockets.iter_mut().enumerate() {
        let (code, _) = tokio::time::timeout(LIVE, ws.close_code())
            .await
            .unwrap_or_else(|_| panic!("{what}: node {i} did not close the revoked session's socket in time"));
        assert_eq!(code, 4001, "{what}: node {i}");
    }
    // And the revoked token opens nothing anywhere.
    for i in 0..NODES {
        let (status, _) = c
            .node(i)
            .api
            .call(reqwest::Method::GET, "/v1/conversations", Some(&bob.token), None)
            .await;
        assert_eq!(status, 401, "{what}: node {i} still accepts the revoked token");
    }
    for i in 0..NODES {
        let h = c.health(i).await;
        assert_eq!(h["status"], "ok", "{what}: node {i}: {h}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_three_nodes_deliver_live_and_log_out_everywhere() {
    deliver_live_and_log_out_everywhere(BrokerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_three_nodes_deliver_live_and_log_out_everywhere() {
    deliver_live_and_log_out_everywhere(BrokerKind::Nats).await;
}

// ---- three nodes under faults ----------------------------------------------------------

/// Steady state: no fault; every node healthy, nothing lost, nothing repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn steady_state_across_three_nodes() {
    let _serial = SERIAL.lock().await;
    let what = "steady state";
    let Some(c) = Cluster::start(BrokerKind::Redis, NODES, what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "steady", 15).await;
    check(&ms, conv, base, what).await;
    let took = reaches_across(&ms, conv, 0, 1, Route::Live, what).await;
    eprintln!("{what}: cross-node probe {took:?}");
    check_presence(&ms, USERS - 1, what).await;
    for i in 0..NODES {
        let h = c.health(i).await;
        assert_eq!(h["status"], "ok", "{what}: node {i}: {h}");
        assert_eq!(h["backplane"]["gaps"], 0, "{what}: node {i}: {h}");
        assert_eq!(h["backplane"]["resubscribes"], 0, "{what}: node {i}: {h}");
        // Nothing was lost on the way, so nothing was repaired.
        assert_eq!(h["backplane"]["repairs"], 0, "{what}: node {i}: {h}");
    }
}

/// SIGKILL a node mid-storm (its clients' sends in flight), restart it on its port: its
/// clients reconnect and resend, the others lose nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_a_node_mid_storm() {
    let _serial = SERIAL.lock().await;
    let what = "SIGKILL a node mid-storm";
    let Some(mut c) = Cluster::start(BrokerKind::Redis, NODES, what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "before", 8).await;
    c.kill_node(1);
    storm(&ms, conv, "during", 8).await;
    // Node 1's members cannot send; the others still reach each other.
    reaches_across(
        &ms.iter()
            .filter(|m| m.node != 1)
            .map(|m| Member {
                client: m.client.clone(),
                node: m.node,
                log: m.log.clone(),
            })
            .collect::<Vec<_>>(),
        conv,
        0,
        1,
        Route::Live,
        what,
    )
    .await;
    c.start_node(1);
    storm(&ms, conv, "after", 8).await;
    check(&ms, conv, base, what).await;
    // Node 1's users came back to it; the one leaving now is on node 1 too.
    check_presence(&ms, 4, what).await;
}

/// Redis killed for 5 s and restarted empty: while it is down, messages still cross nodes
/// (the store's tail) and health says `degraded`; after, the links come back by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_for_5s_and_restarted_empty() {
    broker_killed_and_restarted(BrokerKind::Redis).await;
}

/// The same with NATS as the backplane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_killed_and_restarted() {
    broker_killed_and_restarted(BrokerKind::Nats).await;
}

async fn broker_killed_and_restarted(kind: BrokerKind) {
    let _serial = SERIAL.lock().await;
    let what = format!("{kind:?} killed for 5 s and restarted");
    let Some(mut c) = Cluster::start(kind, NODES, &what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "before", 8).await;
    let killed = Instant::now();
    c.broker.kill();
    for i in 0..NODES {
        c.health_until(i, LIVE * 2, "reports the link down", |h| {
            h["status"] == "degraded" && h["backplane"]["link_up"] == false
        })
        .await;
    }
    storm(&ms, conv, "during", 5).await;
    let took = reaches_across(&ms, conv, 0, 1, Route::Repaired, &what).await;
    eprintln!("{what}: cross-node probe with the broker down {took:?}");
    let left = Duration::from_secs(5).saturating_sub(killed.elapsed());
    tokio::time::sleep(left).await;
    c.broker.restart();
    for i in 0..NODES {
        c.health_until(i, LIVE * 2, "is back to ok", |h| h["status"] == "ok")
            .await;
    }
    storm(&ms, conv, "after", 8).await;
    check(&ms, conv, base, &what).await;
    let took = reaches_across(&ms, conv, 1, 2, Route::Live, &what).await;
    eprintln!("{what}: cross-node probe after the restart {took:?}");
    for i in 0..NODES {
        let h = c.health(i).await;
        assert!(
            h["backplane"]["repairs"].as_u64().unwrap_or(0) >= 1,
            "{what}: node {i}: {h}"
        );
    }
    // With Redis, the shared state came back empty: the nodes re-registered their sockets.
    check_presence(&ms, USERS - 1, &what).await;
}

/// `CLIENT KILL TYPE pubsub` mid-storm: every node's subscription is cut and comes back;
/// what was published meanwhile is repaired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_kill_type_pubsub() {
    let _serial = SERIAL.lock().await;
    let what = "CLIENT KILL TYPE pubsub";
    let Some(c) = Cluster::start(BrokerKind::Redis, NODES, what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "before", 5).await;
    for _ in 0..3 {
        let reply = c.broker.redis_command(&["CLIENT", "KILL", "TYPE", "pubsub"]);
        assert!(reply.starts_with(':'), "CLIENT KILL answered {reply:?}");
        storm(&ms, conv, "between", 3).await;
    }
    check(&ms, conv, base, what).await;
    reaches_across(&ms, conv, 2, 0, Route::Live, what).await;
    for i in 0..NODES {
        c.health_until(i, LIVE * 2, "is ok", |h| h["status"] == "ok").await;
    }
    check_presence(&ms, USERS - 1, what).await;
}

/// One node's broker link blackholed (a silent stall: no error, no close): the node notices
/// by its self-probes, reports `degraded` and resubscribes until the link works again; its
/// members keep receiving from the store's tail meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn blackholed_subscription_is_detected_and_repaired() {
    blackholed_link(BrokerKind::Redis).await;
}

/// The same over NATS (the shared state's Redis is reached directly, not blackholed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_blackholed_link_is_detected_and_repaired() {
    blackholed_link(BrokerKind::Nats).await;
}

async fn blackholed_link(kind: BrokerKind) {
    let _serial = SERIAL.lock().await;
    let what = format!("blackholed {kind:?} subscription");
    let what = what.as_str();
    let Some(c) = Cluster::start(kind, NODES, what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "before", 5).await;
    c.proxies[2].set(Fault::Blackhole);
    let h = c
        .health_until(2, Duration::from_secs(10), "reports the stall", |h| {
            h["status"] == "degraded" && h["backplane"]["stalled"] == true
        })
        .await;
    eprintln!("{what}: degraded: {h}");
    storm(&ms, conv, "during", 5).await;
    // Into the stalled node and out of it, with nobody else writing.
    let took = reaches_across(&ms, conv, 0, 2, Route::Repaired, what).await;
    eprintln!("{what}: into the stalled node {took:?}");
    let took = reaches_across(&ms, conv, 2, 1, Route::Repaired, what).await;
    eprintln!("{what}: out of the stalled node {took:?}");
    c.proxies[2].set(Fault::Pass);
    let h = c
        .health_until(2, Duration::from_secs(10), "recovers", |h| h["status"] == "ok")
        .await;
    assert!(h["backplane"]["resubscribes"].as_u64().unwrap_or(0) >= 1, "{what}: {h}");
    storm(&ms, conv, "after", 5).await;
    check(&ms, conv, base, what).await;
    for i in [0, 1] {
        let h = c.health(i).await;
        assert_eq!(h["backplane"]["stalled"], false, "{what}: node {i}: {h}");
    }
    check_presence(&ms, USERS - 1, what).await;
}

/// A rolling restart of every node (SIGTERM, restart on the same port) during a storm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_restart_of_every_node() {
    let _serial = SERIAL.lock().await;
    let what = "rolling restart";
    let Some(mut c) = Cluster::start(BrokerKind::Redis, NODES, what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    for i in 0..NODES {
        storm(&ms, conv, &format!("before-{i}"), 4).await;
        c.stop_node(i);
        storm(&ms, conv, &format!("down-{i}"), 3).await;
        c.start_node(i);
    }
    storm(&ms, conv, "after", 4).await;
    check(&ms, conv, base, what).await;
    for i in 0..NODES {
        c.health_until(i, LIVE * 2, "is ok", |h| h["status"] == "ok").await;
    }
    check_presence(&ms, USERS - 1, what).await;
}

/// Redis's pub/sub output-buffer limit forces a disconnect: with the limit lowered, one
/// publish larger than it makes Redis drop every subscriber at once (what it does to a
/// subscriber that falls behind); the nodes reconnect and resubscribe by themselves and what
/// was published meanwhile is repaired from the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_output_buffer_limit_forces_a_disconnect() {
    let _serial = SERIAL.lock().await;
    let what = "pub/sub output-buffer limit";
    let Some(c) = Cluster::start(BrokerKind::Redis, NODES, what).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "before", 5).await;
    let before = pubsub_clients(&c.broker);
    assert!(before.len() >= NODES, "{what}: every node subscribed: {before:?}");
    let reply = c
        .broker
        .redis_command(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 32kb 0 0"]);
    assert!(reply.starts_with("+OK"), "CONFIG SET answered {reply:?}");
    // A burst beyond the limit in one go (not an envelope: the nodes never see it, Redis
    // drops them before it writes).
    let junk = "x".repeat(64 * 1024);
    let reply = c.broker.redis_command(&["PUBLISH", "chatico.fanout", &junk]);
    assert!(reply.starts_with(':'), "PUBLISH answered {reply:?}");
    storm(&ms, conv, "during", 5).await;
    let reply = c
        .broker
        .redis_command(&["CONFIG", "SET", "client-output-buffer-limit", "pubsub 32mb 8mb 60"]);
    assert!(reply.starts_with("+OK"), "CONFIG SET answered {reply:?}");
    // Every subscription of before was dropped, and every node subscribed again by itself.
    eventually(LIVE * 2, "every node resubscribed on a new connection", || {
        let now = pubsub_clients(&c.broker);
        now.len() >= NODES && now.is_disjoint(&before)
    })
    .await;
    storm(&ms, conv, "after", 5).await;
    check(&ms, conv, base, what).await;
    reaches_across(&ms, conv, 1, 2, Route::Live, what).await;
    for i in 0..NODES {
        c.health_until(i, LIVE * 2, "is ok", |h| h["status"] == "ok").await;
    }
    check_presence(&ms, USERS - 1, what).await;
}

/// The ids of Redis's pub/sub connections (`CLIENT LIST TYPE pubsub`).
fn pubsub_clients(broker: &BrokerProcess) -> BTreeSet<u64> {
    let list = broker.redis_command(&["CLIENT", "LIST", "TYPE", "pubsub"]);
    list.lines()
        .filter_map(|l| l.split(' ').find_map(|f| f.strip_prefix("id=")))
        .filter_map(|id| id.parse().ok())
        .collect()
}

/// PostgreSQL unreachable for 5 s mid-storm, for every node at once (every connection reset
/// and new ones refused: what a restart looks like from the nodes): sends answer
/// `unavailable` meanwhile and the clients' outboxes retry them; live delivery of what was
/// committed goes on. After, every acknowledged message is there exactly once, in order.
/// (The machine's shared PostgreSQL itself is never restarted here: a proxy cuts it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_cut_for_5s_mid_storm() {
    let _serial = SERIAL.lock().await;
    let what = "PostgreSQL cut for 5 s";
    let Some(c) = Cluster::start_with(BrokerKind::Redis, NODES, what, true).await else {
        return;
    };
    let (ms, conv, base) = members(&c).await;
    storm(&ms, conv, "before", 5).await;
    let pg = c.pg_proxy.as_ref().expect("pg proxy");
    pg.set(Fault::Down);
    storm(&ms, conv, "during", 5).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    pg.set(Fault::Pass);
    storm(&ms, conv, "after", 5).await;
    check(&ms, conv, base, what).await;
    reaches_across(&ms, conv, 0, 2, Route::Live, what).await;
    for i in 0..NODES {
        c.health_until(i, LIVE * 2, "is ok", |h| h["status"] == "ok").await;
    }
    check_presence(&ms, USERS - 1, what).await;
}

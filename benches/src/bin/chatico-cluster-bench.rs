//! `chatico-cluster-bench`: the repair and recovery times of the scale-out targets
//! (shared/SCALE-OUT.md), measured on three `chatico-bench-server` nodes on one PostgreSQL
//! schema, each reaching a broker this tool owns (its own `redis-server` or `nats-server` on a
//! free port, never the machine's) through its own TCP fault proxy. The users are WebSocket
//! clients of the load tool (`chatico_benches::load`), logged in through the real OTP flow.
//!
//! Per run (`--runs`, figures reported as median, min and max over them):
//!
//! 1. **loss repair**: node 1's broker link is blackholed (nothing arrives, nothing closes:
//!    every live copy to it is lost); a sender on node 0 sends `--samples` messages one at a
//!    time; one sample is the time from the send until the receiver on node 1 has it (only
//!    node 1's loss watcher, the store's tail, can deliver it). Target p99 <= 1.5 s.
//! 2. **resubscribe**: the broker is SIGKILLed; once every node reports its link down, it is
//!    restarted (empty); one sample per node is the time from the broker listening again to
//!    the node's health answering `link_up` and not stalled. Target <= 1 s.
//! 3. **killed node**: node 2 holds `--movers` clients and one more user who does not come
//!    back, while the sender on node 0 writes 20 messages/s. Node 2 is SIGKILLed; each mover
//!    reconnects at once to node 0 or 1 and resumes from its cursor. One sample per mover:
//!    SIGKILL -> its resumed subscription caught up. Target p99 <= 5 s. The user who does not
//!    come back must be shown offline to the sender: SIGKILL -> the `offline` event. Target
//!    <= 20 s. Also counted: messages a mover never received (must be 0) and `offline` events
//!    about movers (a flap; must be 0).
//!
//! `chatico-cluster-bench --postgres postgres://postgres@127.0.0.1:5432/test --broker redis
//! --out DIR --json DIR/recovery-redis.json` (`benches/run.sh cluster` runs it). The schema
//! it makes is `chatico_bench_cluster_<millis>`, dropped at the end.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chatico_benches::load::LoadError;
use chatico_benches::load::chatico::{Server, User, send_frame};
use chatico_benches::load::net::Ws;
use chatico_benches::load::otp::OtpLog;
use chatico_benches::load::report::{Report, Run, latency_figures};
use chatico_test_support::fault::{Fault, FaultProxy};
use chatico_test_support::process::{BrokerKind, BrokerProcess, free_port};
use clap::Parser;
use futures::stream::SplitSink;
use futures::{SinkExt, StreamExt};
use serde_json::Value;
use tokio_tungstenite::tungstenite::Message;

/// Repair and recovery times of a three-node cluster under faults (see the module docs).
#[derive(Parser, Debug)]
#[command(name = "chatico-cluster-bench", version, about)]
struct Cli {
    /// The PostgreSQL the nodes share (a fresh schema is made and dropped).
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// The backplane: `redis` (Redis also holds the shared state) or `nats` (a second,
    /// Redis process holds the state).
    #[arg(long, default_value = "redis")]
    broker: String,
    /// Measured runs.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Loss-repair samples per run.
    #[arg(long, default_value_t = 20)]
    samples: usize,
    /// Clients on the node that is killed (they reconnect elsewhere).
    #[arg(long, default_value_t = 10)]
    movers: usize,
    /// Directory for the nodes' logs and the OTP log.
    #[arg(long, default_value = "target/bench-results")]
    out: PathBuf,
    /// Also write the report as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The `chatico-bench-server` binary (default: next to this one).
    #[arg(long)]
    bench_server: Option<PathBuf>,
}

type Fail = Box<dyn std::error::Error + Send + Sync>;

fn fail(s: impl Into<String>) -> Fail {
    s.into().into()
}

struct Cluster {
    kind: BrokerKind,
    broker: BrokerProcess,
    state: Option<BrokerProcess>,
    proxies: Vec<FaultProxy>,
    ports: Vec<u16>,
    children: Vec<Option<Child>>,
    bin: PathBuf,
    pg: String,
    schema: String,
    otp_log: PathBuf,
    out: PathBuf,
    http: reqwest::Client,
    /// One token secret for every node.
    jwt_secret: String,
}

impl Cluster {
    async fn start(cli: &Cli, bin: PathBuf) -> Result<Cluster, Fail> {
        let kind = match cli.broker.as_str() {
            "redis" => BrokerKind::Redis,
            "nats" => BrokerKind::Nats,
            other => return Err(fail(format!("--broker {other}: redis or nats"))),
        };
        let broker = BrokerProcess::start(kind).ok_or_else(|| fail("broker binary not installed"))?;
        let state = match kind {
            BrokerKind::Nats => Some(BrokerProcess::start(BrokerKind::Redis).ok_or_else(|| fail("redis-server"))?),
            BrokerKind::Redis => None,
        };
        let mut proxies = Vec::new();
        for _ in 0..3 {
            proxies.push(FaultProxy::start(broker.addr()).await);
        }
        std::fs::create_dir_all(&cli.out)?;
        let otp_log = cli.out.join(format!("cluster-{}-otp.log", cli.broker));
        std::fs::write(&otp_log, "")?;
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let mut c = Cluster {
            kind,
            broker,
            state,
            proxies,
            ports: (0..3).map(|_| free_port()).collect(),
            children: (0..3).map(|_| None).collect(),
            bin,
            pg: cli.postgres.clone(),
            schema: format!("chatico_bench_cluster_{millis}"),
            otp_log,
            out: cli.out.clone(),
            http: reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?,
            jwt_secret: format!("{:032x}{:032x}", rand::random::<u128>(), rand::random::<u128>()),
        };
        // One after the other: the first creates the schema.
        for i in 0..3 {
            c.start_node(i)?;
        }
        Ok(c)
    }

    fn start_node(&mut self, i: usize) -> Result<(), Fail> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.out.join(format!("cluster-{}-node{i}.log", self.kind.scheme())))?;
        let mut cmd = Command::new(&self.bin);
        cmd.args([
            "--addr",
            &format!("127.0.0.1:{}", self.ports[i]),
            "--store",
            &self.pg,
            "--schema",
            &self.schema,
            "--otp-log",
            &self.otp_log.to_string_lossy(),
            "--backplane",
            &format!("{}://127.0.0.1:{}", self.kind.scheme(), self.proxies[i].addr.port()),
            "--node-id",
            &format!("n{i}"),
        ]);
        // The shared state straight to Redis: the proxy cuts the backplane link only.
        let state = self.state.as_ref().unwrap_or(&self.broker);
        cmd.args(["--redis-url", &state.url()]);
        let mut child = cmd
            .env("CHATICO_JWT_SECRET", &self.jwt_secret)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.ports[i])).is_err() {
            if let Some(s) = child.try_wait()? {
                return Err(fail(format!("node {i} exited at start: {s}")));
            }
            if Instant::now() > deadline {
                return Err(fail(format!("node {i} did not listen within 30 s")));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        self.children[i] = Some(child);
        Ok(())
    }

    fn kill_node(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn url(&self, i: usize) -> String {
        format!("http://127.0.0.1:{}", self.ports[i])
    }

    async fn health(&self, i: usize) -> Option<Value> {
        let r = self.http.get(format!("{}/v1/health", self.url(i))).send().await.ok()?;
        r.json().await.ok()
    }

    /// Polls node `i`'s health every 10 ms until `pred` (at most `within`); returns when.
    async fn until(
        &self,
        i: usize,
        within: Duration,
        what: &str,
        pred: impl Fn(&Value) -> bool,
    ) -> Result<Instant, Fail> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(h) = self.health(i).await
                && pred(&h)
            {
                return Ok(Instant::now());
            }
            if Instant::now() > deadline {
                return Err(fail(format!("node {i}: {what} within {within:?}")));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    async fn drop_schema(&self) {
        use sqlx::Connection;
        if let Ok(mut conn) = sqlx::PgConnection::connect(&self.pg).await {
            let _ = sqlx::query(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.schema))
                .execute(&mut conn)
                .await;
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill_node(i);
        }
    }
}

/// What one client's connection(s) reported.
#[derive(Default)]
struct Seen {
    /// Seqs of the group's messages, as received (a resume may repeat some).
    seqs: Vec<i64>,
    /// Arrival of each probe text.
    probes: HashMap<String, Instant>,
    /// Seqs of this client's acknowledged sends.
    acked: Vec<i64>,
    /// (user id, online, when) of every presence event.
    presence: Vec<(String, bool, Instant)>,
    /// The last cursor.
    cursor: i64,
    /// When the server side of the current connection ended.
    closed: Option<Instant>,
}

/// A connected client: its socket's write half, and a task recording what it reads.
struct Live {
    sink: SplitSink<Ws, Message>,
    reader: tokio::task::JoinHandle<()>,
    frame: u64,
}

fn note(seen: &Mutex<Seen>, conv: &str, text: &str) {
    let Ok(v) = serde_json::from_str::<Value>(text) else {
        return;
    };
    let now = Instant::now();
    let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
    match v["type"].as_str() {
        Some("event") => {
            let e = &v["event"];
            if e["event"] == "change"
                && e["kind"]["type"] == "message"
                && e["kind"]["message"]["conversation_id"] == conv
            {
                if let Some(seq) = e["kind"]["message"]["seq"].as_i64() {
                    s.seqs.push(seq);
                }
                if let Some(t) = e["kind"]["message"]["content"]["text"].as_str() {
                    s.probes.entry(t.to_owned()).or_insert(now);
                }
            } else if e["event"] == "presence"
                && let (Some(u), Some(on)) = (e["user_id"].as_str(), e["online"].as_bool())
            {
                s.presence.push((u.to_owned(), on, now));
            }
        }
        Some("cursor") => {
            if let Some(p) = v["pos"].as_i64() {
                s.cursor = s.cursor.max(p);
            }
        }
        Some("ack") => {
            if let Some(seq) = v["result"]["message"]["seq"].as_i64() {
                s.acked.push(seq);
            }
        }
        _ => {}
    }
}

impl Live {
    /// Connects `user` to node `node`, subscribed from `since` (or now), recording into `seen`.
    async fn open(
        server: &Server,
        user: &User,
        node: usize,
        since: Option<i64>,
        conv: &Arc<str>,
        seen: Arc<Mutex<Seen>>,
    ) -> Result<Live, LoadError> {
        let src = IpAddr::from([127, 0, 0, 1]);
        let (ws, cursor, events) = server.connect_subscribed_on(user, src, since, node).await?;
        for e in &events {
            note(&seen, conv, e);
        }
        {
            let mut s = seen.lock().unwrap_or_else(|e| e.into_inner());
            s.cursor = s.cursor.max(cursor);
            s.closed = None;
        }
        let (sink, mut stream) = ws.split();
        let (rec, conv) = (seen.clone(), conv.clone());
        let reader = tokio::spawn(async move {
            loop {
                match stream.next().await {
                    Some(Ok(Message::Text(t))) => note(&rec, &conv, t.as_str()),
                    Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                        rec.lock().unwrap_or_else(|e| e.into_inner()).closed = Some(Instant::now());
                        return;
                    }
                    Some(Ok(_)) => {}
                }
            }
        });
        Ok(Live { sink, reader, frame: 0 })
    }

    async fn send(&mut self, conv: &str, id: &str, text: &str) -> Result<(), Fail> {
        self.frame += 1;
        let f = send_frame(self.frame, conv, id, text);
        self.sink.send(Message::text(f)).await?;
        Ok(())
    }

    async fn close(mut self) {
        let _ = self.sink.close().await;
        self.reader.abort();
    }
}

async fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while !f() {
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    true
}

fn ns(d: Duration) -> u64 {
    d.as_nanos() as u64
}

async fn run(cli: &Cli) -> Result<Report, Fail> {
    let bin = match &cli.bench_server {
        Some(b) => b.clone(),
        None => std::env::current_exe()?
            .parent()
            .map(|d| d.join("chatico-bench-server"))
            .ok_or_else(|| fail("no directory of this binary"))?,
    };
    let mut c = Cluster::start(cli, bin).await?;
    let r = measure(cli, &mut c).await;
    for i in 0..3 {
        c.kill_node(i);
    }
    c.drop_schema().await;
    r
}

async fn measure(cli: &Cli, c: &mut Cluster) -> Result<Report, Fail> {
    let otp = OtpLog::follow(c.otp_log.clone(), 6)?;
    let server = Server::new(&c.url(0), otp)?.with_nodes(&[c.url(1), c.url(2)])?;
    // Users: 0 the sender (node 0), 1 the receiver (node 1), 2 the one who does not come back
    // (node 2), then the movers (node 2).
    let n = 3 + cli.movers;
    let users = server.login_many(0, n, 16).await?;
    let others: Vec<&User> = users[1..].iter().collect();
    let conv: Arc<str> = Arc::from(server.create_group(&users[0], &others).await?);
    let seen: Vec<Arc<Mutex<Seen>>> = (0..n).map(|_| Arc::default()).collect();
    let home = |u: usize| match u {
        0 => 0,
        1 => 1,
        _ => 2,
    };
    let mut lives = Vec::new();
    for (u, user) in users.iter().enumerate() {
        lives.push(Some(
            Live::open(&server, user, home(u), None, &conv, seen[u].clone()).await?,
        ));
    }
    let mut rep = Report::new(&format!("cluster-recovery-{}", cli.broker));
    rep.param("nodes", 3);
    rep.param("broker", &cli.broker);
    rep.param("loss_samples_per_run", cli.samples);
    rep.param("movers", cli.movers);
    let tag = server.tag;
    let mut probe = 0u64;
    for r in 0..cli.runs.max(1) {
        let mut run = Run::default();
        // 1. Loss repair: node 1's link blackholed.
        c.proxies[1].set(Fault::Blackhole);
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut samples = Vec::new();
        let mut missing = 0u64;
        for _ in 0..cli.samples {
            probe += 1;
            let text = format!("@P{tag}-{probe}@");
            let sent = Instant::now();
            let sender = lives[0].as_mut().ok_or_else(|| fail("sender"))?;
            sender.send(&conv, &format!("P{tag}-{probe}"), &text).await?;
            let rx = &seen[1];
            if wait_for(Duration::from_secs(10), || {
                rx.lock().unwrap_or_else(|e| e.into_inner()).probes.contains_key(&text)
            })
            .await
            {
                let at = rx.lock().unwrap_or_else(|e| e.into_inner()).probes[&text];
                samples.push(ns(at - sent));
            } else {
                missing += 1;
            }
            // Spread the sends over the watcher's poll phase.
            tokio::time::sleep(Duration::from_millis(100 + u64::from(rand::random::<u8>()))).await;
        }
        c.proxies[1].set(Fault::Pass);
        latency_figures(&mut run, "loss_repair", &mut samples, false);
        run.set("loss_repair_missing", missing as f64);
        c.until(1, Duration::from_secs(20), "healthy after the blackhole", |h| {
            h["status"] == "ok"
        })
        .await?;

        // 2. Resubscribe after the broker is back.
        c.broker.kill();
        for i in 0..3 {
            c.until(i, Duration::from_secs(10), "link down", |h| {
                h["backplane"]["link_up"] == false
            })
            .await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        c.broker.restart();
        let back = Instant::now();
        let mut resub = Vec::new();
        for i in 0..3 {
            let at = c
                .until(i, Duration::from_secs(10), "link up", |h| {
                    h["backplane"]["link_up"] == true && h["backplane"]["stalled"] == false
                })
                .await?;
            resub.push(ns(at - back));
        }
        run.set("resubscribe_max_ms", *resub.iter().max().unwrap_or(&0) as f64 / 1e6);
        latency_figures(&mut run, "resubscribe", &mut resub, false);
        for i in 0..3 {
            c.until(i, Duration::from_secs(20), "ok after the broker restart", |h| {
                h["status"] == "ok"
            })
            .await?;
        }
        // A Redis restarted empty lost the presence state: each node re-registers its sockets
        // at its next presence tick (every 5 s). A node killed before that leaves no record of
        // its users, so nobody announces them offline (a gap of the product, see
        // docs/DEPLOYMENT.md): let every node re-register before the kill below.
        tokio::time::sleep(Duration::from_secs(6)).await;

        // 3. Node 2 SIGKILLed under a steady writer.
        let gone = users[2].id.clone();
        let movers: Vec<usize> = (3..n).collect();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut sender = lives[0].take().ok_or_else(|| fail("sender"))?;
        let writer = {
            let (stop, conv) = (stop.clone(), conv.clone());
            tokio::spawn(async move {
                let mut k = 0u64;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    k += 1;
                    let _ = sender
                        .send(&conv, &format!("W{tag}-{r}-{k}"), &format!("@W{tag}-{r}-{k}@"))
                        .await;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                sender
            })
        };
        tokio::time::sleep(Duration::from_secs(1)).await;
        let presence_before = seen[0].lock().unwrap_or_else(|e| e.into_inner()).presence.len();
        let killed = Instant::now();
        c.kill_node(2);
        let mut caught = Vec::new();
        let reconnects: Vec<_> = movers
            .iter()
            .map(|&u| {
                let (server, user, conv, s) = (server.clone(), users[u].clone(), conv.clone(), seen[u].clone());
                tokio::spawn(async move {
                    // The app notices its socket drop, then reconnects at once to a live node.
                    if !wait_for(Duration::from_secs(10), || {
                        s.lock().unwrap_or_else(|e| e.into_inner()).closed.is_some()
                    })
                    .await
                    {
                        return Err(fail("a mover's socket did not drop"));
                    }
                    loop {
                        let cursor = s.lock().unwrap_or_else(|e| e.into_inner()).cursor;
                        match Live::open(&server, &user, u % 2, Some(cursor), &conv, s.clone()).await {
                            Ok(l) => return Ok((l, Instant::now())),
                            Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                        }
                    }
                })
            })
            .collect();
        let mut moved = Vec::new();
        for (k, h) in reconnects.into_iter().enumerate() {
            let (l, at) = h.await.map_err(|e| fail(e.to_string()))??;
            caught.push(ns(at - killed));
            moved.push((movers[k], l));
        }
        // The one who does not come back is shown offline.
        let s0 = seen[0].clone();
        let offline = wait_for(Duration::from_secs(40), || {
            s0.lock().unwrap_or_else(|e| e.into_inner()).presence[presence_before..]
                .iter()
                .any(|(u, on, _)| *u == gone && !on)
        })
        .await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let sender = writer.await.map_err(|e| fail(e.to_string()))?;
        lives[0] = Some(sender);
        // Time for a late (wrong) offline event about a mover, and for the last messages.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let (off_at, flaps) = {
            let s = s0.lock().unwrap_or_else(|e| e.into_inner());
            let after = &s.presence[presence_before..];
            let off = after.iter().find(|(u, on, _)| *u == gone && !on).map(|(_, _, t)| *t);
            let mover_ids: Vec<&str> = movers.iter().map(|&u| users[u].id.as_str()).collect();
            let flaps = after
                .iter()
                .filter(|(u, on, _)| !on && mover_ids.contains(&u.as_str()))
                .count();
            (off, flaps)
        };
        if !offline {
            return Err(fail("the killed node's user was not shown offline within 40 s"));
        }
        run.set(
            "killed_node_offline_ms",
            off_at.map_or(0.0, |t| (t - killed).as_secs_f64() * 1e3),
        );
        run.set("killed_node_presence_flaps", flaps as f64);
        latency_figures(&mut run, "killed_node_caught_up", &mut caught, false);
        // Completeness: every message the sender had acknowledged reached every mover.
        let acked: Vec<i64> = seen[0].lock().unwrap_or_else(|e| e.into_inner()).acked.clone();
        let mut lost = 0u64;
        for &u in &movers {
            let s = seen[u].lock().unwrap_or_else(|e| e.into_inner());
            lost += acked.iter().filter(|a| !s.seqs.contains(a)).count() as u64;
        }
        run.set("killed_node_messages_lost", lost as f64);
        // Back to the starting layout: node 2 restarted, its users on it again.
        c.start_node(2)?;
        for (u, l) in moved {
            l.close().await;
            let cursor = seen[u].lock().unwrap_or_else(|e| e.into_inner()).cursor;
            lives[u] = Some(Live::open(&server, &users[u], 2, Some(cursor), &conv, seen[u].clone()).await?);
        }
        if let Some(l) = lives[2].take() {
            l.close().await;
        }
        let cursor = seen[2].lock().unwrap_or_else(|e| e.into_inner()).cursor;
        let before = seen[0].lock().unwrap_or_else(|e| e.into_inner()).presence.len();
        lives[2] = Some(Live::open(&server, &users[2], 2, Some(cursor), &conv, seen[2].clone()).await?);
        let s0 = seen[0].clone();
        wait_for(Duration::from_secs(10), || {
            s0.lock().unwrap_or_else(|e| e.into_inner()).presence[before..]
                .iter()
                .any(|(u, on, _)| *u == gone && *on)
        })
        .await;
        for i in 0..3 {
            c.until(i, Duration::from_secs(20), "ok before the next run", |h| {
                h["status"] == "ok"
            })
            .await?;
        }
        eprintln!("run {}: {:?}", r + 1, run.0);
        rep.runs.push(run);
    }
    for l in lives.into_iter().flatten() {
        l.close().await;
    }
    rep.target("loss_repair_p99_ms", "<=", 1500.0);
    rep.target("loss_repair_missing", "<=", 0.0);
    rep.target("resubscribe_max_ms", "<=", 1000.0);
    rep.target("killed_node_caught_up_p99_ms", "<=", 5000.0);
    rep.target("killed_node_offline_ms", "<=", 20000.0);
    rep.target("killed_node_messages_lost", "<=", 0.0);
    rep.target("killed_node_presence_flaps", "<=", 0.0);
    rep.notes.push(
        "loss_repair: send -> arrival on a node whose broker link is blackholed (store-tail repair); \
         resubscribe: broker listening again -> node health link_up; killed_node_caught_up: SIGKILL -> the \
         mover's resumed subscription caught up (the client reconnects without backoff); \
         killed_node_offline: SIGKILL -> the offline event at a user on another node"
            .into(),
    );
    rep.finish();
    Ok(rep)
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let rt = match chatico_benches::init(None) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatico-cluster-bench: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(&cli)) {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(path) = &cli.json
                && let Err(e) = std::fs::write(path, report.to_json())
            {
                eprintln!("chatico-cluster-bench: writing {}: {e}", path.display());
                return std::process::ExitCode::FAILURE;
            }
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("chatico-cluster-bench: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

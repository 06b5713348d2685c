//! The state nodes share through Redis, across real server processes: two example servers on
//! one PostgreSQL, with a Redis backplane and shared state on a `redis-server` this test owns
//! (its own free port, so it can be restarted empty).
//!
//! - an OTP code sent through node 1 is verified on node 2;
//! - 100 parallel wrong guesses spread over three nodes: the per-caller verification limit
//!   and the code's attempt limit hold cluster-wide;
//! - one user on both nodes (multi-device): offline only when both sockets closed, one
//!   online event;
//! - a SIGKILLed node's users are shown offline within ~20 s (lease 15 s + a 5 s tick);
//! - Redis restarted empty: the nodes re-register their connections without any event.
//!
//! Needs `CHATICO_TEST_POSTGRES_URL` and `redis-server`; without them each test prints why it
//! is skipped.

use std::time::{Duration, Instant};

use chatico_test_support::pg::{SchemaGuard, sweep_stale_schemas};
use chatico_test_support::process::{BrokerKind, BrokerProcess, ServerProcess, unique_suffix};
use chatico_test_support::{Api, User, Ws};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

const JWT_SECRET: &str = "cluster-state-test-secret-0123456789-0123456789";

/// A node: the shared harness's server process, and its data directory removed on drop.
struct Node {
    process: ServerProcess,
    addr: std::net::SocketAddr,
    data_dir: std::path::PathBuf,
}

impl Node {
    fn start(name: &str, pg: &str, schema: &str, redis: &str) -> Node {
        let data_dir = std::env::temp_dir().join(format!("chatico-state-{schema}-{name}"));
        let args: Vec<String> = [
            "--data-dir",
            &data_dir.to_string_lossy(),
            "--database-url",
            pg,
            "--database-schema",
            schema,
            "--backplane",
            redis,
            "--node-id",
            name,
            "--jwt-secret",
            JWT_SECRET,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let process = ServerProcess::start(std::path::Path::new(env!("CARGO_BIN_EXE_chatico-server")), &args);
        let addr = process.addr.parse().expect("socket addr");
        Node {
            process,
            addr,
            data_dir,
        }
    }

    fn api(&self) -> Api {
        self.process.api.clone()
    }

    /// The login code this node printed for `phone` (development mode).
    fn code_for(&mut self, phone: &str) -> String {
        self.process.otp_code(phone)
    }

    fn sigkill(&mut self) {
        self.process.kill();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.sigkill();
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

struct Cluster {
    redis: BrokerProcess,
    nodes: Vec<Node>,
    /// Drops the schema when the test ends (declared last: after the nodes are gone).
    _schema: SchemaGuard,
}

fn cluster(what: &str) -> Option<Cluster> {
    cluster_of(what, 2)
}

/// `n` nodes (named s1, s2, ...) on one fresh schema and one Redis.
fn cluster_of(what: &str, n: usize) -> Option<Cluster> {
    let Some(pg) = std::env::var("CHATICO_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!("SKIPPED {what}: CHATICO_TEST_POSTGRES_URL is not set (scripts/test-all.sh sets it)");
        return None;
    };
    // Once per test process: the schemas of runs killed before their guards ran.
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(|| sweep_stale_schemas(&pg, &["cluster", "state"], Duration::from_secs(3600)));
    let redis = BrokerProcess::start(BrokerKind::Redis)?;
    let schema = format!("state_{}", unique_suffix());
    let guard = SchemaGuard::new(&pg, &schema);
    // One after the other: node 1 creates the schema and runs the migrations.
    let nodes = (1..=n)
        .map(|i| Node::start(&format!("s{i}"), &pg, &schema, &redis.url()))
        .collect();
    Some(Cluster {
        redis,
        nodes,
        _schema: guard,
    })
}

/// Logs `phone` in: the code is requested through node `via` and verified on node `on`.
async fn login(c: &mut Cluster, phone: &str, via: usize, on: usize) -> User {
    let api = c.nodes[via].api();
    let (s, v) = api
        .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": phone })))
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    let code = c.nodes[via].code_for(phone);
    let (s, v) = c.nodes[on]
        .api()
        .call(
            Method::POST,
            "/v1/auth/verify",
            None,
            Some(json!({ "phone": phone, "code": code, "device": "test" })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "code from node {via} verified on node {on}: {v}");
    User {
        id: v["user"]["id"].as_str().expect("id").to_owned(),
        token: v["access_token"].as_str().expect("access").to_owned(),
        refresh: v["refresh_token"].as_str().expect("refresh").to_owned(),
    }
}

async fn socket(node: &Node, u: &User) -> Ws {
    let mut ws = Ws::connect(node.addr, None, None).await.expect("ws");
    ws.auth(&u.token).await;
    ws.subscribe(None).await;
    ws
}

/// Presence events about `about` that `ws` receives within `window`.
async fn presence_events(ws: &mut Ws, about: &str, window: Duration) -> Vec<Value> {
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + window;
    loop {
        let f = if let Some(f) = ws.backlog.pop_front() {
            f
        } else {
            match tokio::time::timeout_at(deadline, ws.next()).await {
                Ok(f) => f,
                Err(_) => return out,
            }
        };
        if f["type"] == "event" && f["event"]["event"] == "presence" && f["event"]["user_id"] == about {
            out.push(f["event"].clone());
        }
    }
}

/// Waits for the next presence event about `about`, at most `within`; returns it and when.
async fn next_presence(ws: &mut Ws, about: &str, within: Duration) -> (Value, Duration) {
    let start = Instant::now();
    loop {
        let left = within.checked_sub(start.elapsed()).expect("presence event in time");
        // In slices shorter than the harness's own frame timeout (PATIENCE).
        let Ok(f) = tokio::time::timeout(left.min(Duration::from_secs(10)), ws.next()).await else {
            continue;
        };
        if f["type"] == "event" && f["event"]["event"] == "presence" && f["event"]["user_id"] == about {
            return (f["event"].clone(), start.elapsed());
        }
    }
}

async fn online(api: &Api, asker: &User, about: &User) -> bool {
    let v = api.get(&format!("/v1/presence?users={}", about.id), asker).await;
    v[0]["online"].as_bool().expect("online flag")
}

fn from(ip: &str) -> Api {
    // A distinct loopback source address is a distinct caller for the rate limits.
    let http = reqwest::Client::builder()
        .local_address(ip.parse::<std::net::IpAddr>().expect("ip"))
        .build()
        .expect("client");
    Api {
        http,
        base: String::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn otp_sent_through_one_node_is_verified_on_the_other() {
    let Some(mut c) = cluster("otp across nodes") else {
        return;
    };
    login(&mut c, "+15550003001", 0, 1).await;
    login(&mut c, "+15550003002", 1, 0).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_wrong_guesses_over_three_nodes_hit_the_shared_limits() {
    let Some(mut c) = cluster_of("otp limits across nodes", 3) else {
        return;
    };
    let phone = "+15550003101";
    let api = c.nodes[0].api();
    let (s, _) = api
        .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": phone })))
        .await;
    assert_eq!(s, StatusCode::OK);
    let code = c.nodes[0].code_for(phone);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    // 100 guesses from one caller, spread over the three nodes in turn, all at once.
    let guesser = from("127.0.0.2");
    let bases: Vec<String> = c.nodes.iter().map(|n| format!("http://{}", n.addr)).collect();
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let http = guesser.http.clone();
            let url = format!("{}/v1/auth/verify", bases[i % 3]);
            tokio::spawn(async move {
                http.post(url)
                    .json(&json!({ "phone": phone, "code": wrong }))
                    .send()
                    .await
                    .expect("verify")
                    .status()
            })
        })
        .collect();
    let (mut unauthorized, mut limited) = (0, 0);
    for t in tasks {
        match t.await.expect("join") {
            StatusCode::UNAUTHORIZED => unauthorized += 1,
            StatusCode::TOO_MANY_REQUESTS => limited += 1,
            other => panic!("unexpected answer {other}"),
        }
    }
    // The per-caller limit (60 an hour) is one counter for the cluster, not one per node.
    assert_eq!(
        (unauthorized, limited),
        (60, 40),
        "exactly the verification limit got through"
    );
    // The code's attempt limit (5) was reached across nodes: the right code no longer works
    // on any of them.
    let late = from("127.0.0.3");
    for base in &bases {
        let (s, v) = late
            .call(
                Method::POST,
                &format!("{base}/v1/auth/verify"),
                None,
                Some(json!({ "phone": phone, "code": code })),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "exhausted code still worked: {v}");
    }
    // And 4 wrong guesses over the three nodes leave a fresh code usable: the limit is 5,
    // counted once for the cluster (not 5 per node, and no guess counted twice).
    let phone = "+15550003102";
    let (s, _) = api
        .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": phone })))
        .await;
    assert_eq!(s, StatusCode::OK);
    let code = c.nodes[0].code_for(phone);
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let g = from("127.0.0.4");
    for i in 0..4 {
        let (s, _) = g
            .call(
                Method::POST,
                &format!("{}/v1/auth/verify", bases[i % 3]),
                None,
                Some(json!({ "phone": phone, "code": wrong })),
            )
            .await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
    }
    let (s, v) = g
        .call(
            Method::POST,
            &format!("{}/v1/auth/verify", bases[2]),
            None,
            Some(json!({ "phone": phone, "code": code })),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_user_on_two_nodes_is_offline_only_when_both_close() {
    let Some(mut c) = cluster("multi-device presence across nodes") else {
        return;
    };
    let alice = login(&mut c, "+15550003201", 0, 0).await;
    let bob = login(&mut c, "+15550003202", 1, 1).await;
    c.nodes[0].api().open_direct(&bob, &alice).await;
    let mut watcher = socket(&c.nodes[0], &bob).await;
    let on_n1 = socket(&c.nodes[0], &alice).await;
    let (ev, _) = next_presence(&mut watcher, &alice.id, Duration::from_secs(5)).await;
    assert_eq!(ev["online"], true);
    let on_n2 = socket(&c.nodes[1], &alice).await;
    drop(on_n1);
    // The second device and the first one's end: no event at all.
    let none = presence_events(&mut watcher, &alice.id, Duration::from_secs(2)).await;
    assert!(none.is_empty(), "no transition while a device stays: {none:?}");
    assert!(
        online(&c.nodes[0].api(), &bob, &alice).await,
        "node 1 sees node 2's socket"
    );
    drop(on_n2);
    let (ev, _) = next_presence(&mut watcher, &alice.id, Duration::from_secs(5)).await;
    assert_eq!(ev["online"], false);
    assert!(ev["last_seen_at"].is_i64());
    let more = presence_events(&mut watcher, &alice.id, Duration::from_secs(1)).await;
    assert!(more.is_empty(), "exactly one offline event: {more:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_nodes_users_go_offline_within_twenty_seconds() {
    let Some(mut c) = cluster("SIGKILLed node presence") else {
        return;
    };
    let alice = login(&mut c, "+15550003301", 1, 1).await;
    let bob = login(&mut c, "+15550003302", 0, 0).await;
    c.nodes[0].api().open_direct(&bob, &alice).await;
    let mut watcher = socket(&c.nodes[0], &bob).await;
    let _alice_ws = socket(&c.nodes[1], &alice).await;
    let (ev, _) = next_presence(&mut watcher, &alice.id, Duration::from_secs(5)).await;
    assert_eq!(ev["online"], true);
    c.nodes[1].sigkill();
    let (ev, after) = next_presence(&mut watcher, &alice.id, Duration::from_secs(25)).await;
    eprintln!("offline after SIGKILL: {after:?}");
    assert_eq!(ev["online"], false);
    assert!(after <= Duration::from_secs(21), "took {after:?}");
    assert!(!online(&c.nodes[0].api(), &bob, &alice).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_empty_nodes_reregister_without_events() {
    let Some(mut c) = cluster("redis restarted empty") else {
        return;
    };
    let alice = login(&mut c, "+15550003401", 1, 1).await;
    let bob = login(&mut c, "+15550003402", 0, 0).await;
    c.nodes[0].api().open_direct(&bob, &alice).await;
    let mut watcher = socket(&c.nodes[0], &bob).await;
    let _alice_ws = socket(&c.nodes[1], &alice).await;
    let (ev, _) = next_presence(&mut watcher, &alice.id, Duration::from_secs(5)).await;
    assert_eq!(ev["online"], true);
    c.redis.restart();
    // Two presence ticks (5 s each) and some slack: the nodes notice and re-register.
    let events = presence_events(&mut watcher, &alice.id, Duration::from_secs(12)).await;
    assert!(events.is_empty(), "no presence event on re-registration: {events:?}");
    assert!(
        online(&c.nodes[0].api(), &bob, &alice).await,
        "alice re-registered by node 2"
    );
    // The state works again: alice leaving is one offline event.
    drop(_alice_ws);
    let (ev, _) = next_presence(&mut watcher, &alice.id, Duration::from_secs(5)).await;
    assert_eq!(ev["online"], false);
}

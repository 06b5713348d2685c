//! Two example-server processes (nodes) on one PostgreSQL, joined by a backplane the test
//! starts itself (its own `redis-server` / `nats-server` on a free port, killed at the end):
//! a user on node 2 receives live a message sent through node 1, and a logout-everywhere sent
//! to node 1 closes the user's socket on node 2 with 4001.
//!
//! "Live" is checked by time: the message must arrive within a few seconds, while the only
//! other path (an idle connection's periodic re-sync, `resync_interval`) runs every 60 s, and
//! the periodic session check (`session_check_interval`) every 60 s too.
//!
//! Needs `CHATICO_TEST_POSTGRES_URL` and the `redis-server` / `nats-server` binaries; without
//! them each test prints why it is skipped and passes without checking anything (scripts/
//! test-all.sh provides both).

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// How long a live event may take across nodes before the test calls it not live.
const LIVE: Duration = Duration::from_secs(5);
const JWT_SECRET: &str = "cluster-test-secret-cluster-test-secret-0123456789";

/// A child process killed (and reaped) on drop.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

fn which(bin: &str) -> Option<std::path::PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

/// The broker kinds under test.
#[derive(Clone, Copy, Debug)]
enum Broker {
    Redis,
    Nats,
}

/// Starts the broker on a free port; returns it and its URL. `None` (after saying why) when
/// the binary is missing.
fn start_broker(kind: Broker) -> Option<(Proc, String)> {
    let bin = match kind {
        Broker::Redis => "redis-server",
        Broker::Nats => "nats-server",
    };
    let Some(path) = which(bin) else {
        eprintln!("SKIPPED cluster test ({kind:?}): `{bin}` not found on PATH (install the Debian package `{bin}`)");
        return None;
    };
    let port = free_port();
    let mut cmd = Command::new(path);
    match kind {
        Broker::Redis => cmd.args([
            "--port",
            &port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]),
        Broker::Nats => cmd.args(["-a", "127.0.0.1", "-p", &port.to_string()]),
    };
    let child = cmd
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {bin}: {e}"));
    let proc = Proc(child);
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{bin} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let scheme = match kind {
        Broker::Redis => "redis",
        Broker::Nats => "nats",
    };
    Some((proc, format!("{scheme}://127.0.0.1:{port}")))
}

struct Node {
    proc: Proc,
    lines: mpsc::Receiver<String>,
    addr: String,
    data_dir: std::path::PathBuf,
}

impl Node {
    fn start(name: &str, pg: &str, schema: &str, backplane: &str) -> Node {
        let data_dir = std::env::temp_dir().join(format!("chatico-cluster-{schema}-{name}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatico-server"))
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(["--database-url", pg, "--database-schema", schema])
            .args(["--backplane", backplane, "--node-id", name, "--jwt-secret", JWT_SECRET])
            .env("CHATICO_LOG", "info")
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chatico-server");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut n = Node {
            proc: Proc(child),
            lines,
            addr: String::new(),
            data_dir,
        };
        let line = n.wait_line(|l| l.contains("listening on http://"));
        let start = line.find("http://").expect("url") + "http://".len();
        n.addr = line[start..]
            .split(|c: char| c.is_whitespace() || c == ')' || c == '"')
            .next()
            .expect("addr")
            .to_owned();
        n
    }

    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(30)) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(e) => {
                    let status = self.proc.0.try_wait();
                    panic!("no matching server line ({e}); process status {status:?}");
                }
            }
        }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

/// Logs in through `node` (the code is printed on that node's console).
async fn login(http: &reqwest::Client, node: &mut Node, phone: &str) -> Value {
    let r = http
        .post(format!("{}/v1/auth/otp", node.base()))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .expect("otp");
    assert_eq!(r.status(), 200);
    let line = node.wait_line(|l| l.contains("DEVELOPMENT MODE") && l.contains(phone) && l.contains("code is "));
    let after = line.split("code is ").nth(1).expect("code in the console line");
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    let r = http
        .post(format!("{}/v1/auth/verify", node.base()))
        .json(&json!({ "phone": phone, "code": code }))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 200);
    r.json().await.expect("tokens")
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn next_text(ws: &mut Socket, within: Duration) -> Value {
    loop {
        let m = tokio::time::timeout(within, ws.next())
            .await
            .expect("a frame in time")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            return serde_json::from_str(t.as_str()).expect("json");
        }
    }
}

/// A subscribed socket on `node`, returned once its subscription is in place.
async fn subscribed_socket(node: &Node, token: &str) -> Socket {
    let mut req = format!("ws://{}/v1/ws", node.addr).into_client_request().expect("req");
    req.headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("chatico.v1.json"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "id": "1", "type": "auth", "token": token })))
        .await
        .expect("auth");
    ws.send(send(json!({ "id": "2", "type": "subscribe" })))
        .await
        .expect("sub");
    loop {
        let v = next_text(&mut ws, Duration::from_secs(20)).await;
        if v["type"] == "cursor" && v["caught_up"] == true {
            return ws;
        }
    }
}

fn suffix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{n}", std::process::id())
}

async fn two_nodes_deliver_live_and_log_out_everywhere(kind: Broker) {
    let Some(pg) = std::env::var("CHATICO_TEST_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty())
    else {
        eprintln!(
            "SKIPPED cluster test ({kind:?}): CHATICO_TEST_POSTGRES_URL is not set (scripts/test-all.sh sets it)"
        );
        return;
    };
    let Some((_broker, url)) = start_broker(kind) else {
        return;
    };
    // A fresh schema per test: both nodes share it, nothing else does.
    let schema = format!("cluster_{}", suffix());
    // Node 1 first: it creates the schema and runs the migrations before node 2 starts.
    let mut n1 = Node::start("n1", &pg, &schema, &url);
    let mut n2 = Node::start("n2", &pg, &schema, &url);
    let http = reqwest::Client::new();

    let alice = login(&http, &mut n1, "+15550002001").await;
    let bob = login(&http, &mut n2, "+15550002002").await;
    let alice_token = alice["access_token"].as_str().expect("token");
    let bob_token = bob["access_token"].as_str().expect("token");
    let conv: Value = http
        .post(format!("{}/v1/conversations/direct", n1.base()))
        .bearer_auth(alice_token)
        .json(&json!({ "user_id": bob["user"]["id"] }))
        .send()
        .await
        .expect("direct")
        .json()
        .await
        .expect("json");
    let conv_id = conv["id"].as_str().expect("conversation id");

    // Bob listens on node 2; Alice sends through node 1.
    let mut ws = subscribed_socket(&n2, bob_token).await;
    let sent_at = Instant::now();
    let r = http
        .post(format!("{}/v1/conversations/{conv_id}/messages", n1.base()))
        .bearer_auth(alice_token)
        .json(&json!({ "client_msg_id": "cross-node", "content": { "type": "text", "text": "hello from node 1" } }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let got = loop {
        let left = LIVE.saturating_sub(sent_at.elapsed());
        assert!(!left.is_zero(), "{kind:?}: the message did not arrive live on node 2");
        let v = next_text(&mut ws, left).await;
        if v["type"] == "event" && v["event"]["event"] == "change" && v["event"]["kind"]["type"] == "message" {
            break v;
        }
    };
    assert_eq!(got["event"]["kind"]["message"]["content"]["text"], "hello from node 1");
    assert_eq!(got["event"]["conversation_id"], conv_id);

    // Logout-everywhere through node 1 closes Bob's socket on node 2 with 4001.
    let r = http
        .post(format!("{}/v1/auth/logout-everywhere", n1.base()))
        .bearer_auth(bob_token)
        .send()
        .await
        .expect("logout everywhere");
    assert_eq!(r.status(), 200);
    let revoked_at = Instant::now();
    let code = loop {
        let left = LIVE.saturating_sub(revoked_at.elapsed());
        assert!(
            !left.is_zero(),
            "{kind:?}: node 2 did not close the revoked session's socket"
        );
        match tokio::time::timeout(left, ws.next()).await {
            Ok(Some(Ok(Message::Close(Some(c))))) => break u16::from(c.code),
            Ok(Some(Ok(_))) => continue,
            Ok(other) => panic!("{kind:?}: no close frame: {other:?}"),
            Err(_) => panic!("{kind:?}: node 2 did not close the revoked session's socket in time"),
        }
    };
    assert_eq!(code, 4001, "{kind:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_two_nodes_deliver_live_and_log_out_everywhere() {
    two_nodes_deliver_live_and_log_out_everywhere(Broker::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_two_nodes_deliver_live_and_log_out_everywhere() {
    two_nodes_deliver_live_and_log_out_everywhere(Broker::Nats).await;
}

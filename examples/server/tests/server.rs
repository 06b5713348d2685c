//! The example server binary, started as a user would: a fresh data directory, console SMS.
//! Logs in by reading the code from its output, chats over the WebSocket, restarts with the
//! same JWT secret, and shuts down gracefully on SIGTERM (WebSockets closed with 1001).

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;

struct Running {
    child: Child,
    lines: mpsc::Receiver<String>,
    addr: String,
}

impl Running {
    fn start(data_dir: &std::path::Path) -> Running {
        let mut child = Command::new(env!("CARGO_BIN_EXE_chatico-server"))
            .args(["--addr", "127.0.0.1:0", "--data-dir"])
            .arg(data_dir)
            .env("CHATICO_LOG", "info")
            // Piped logs must be plain without help from NO_COLOR (see `piped_logs_...`).
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
        let mut r = Running {
            child,
            lines,
            addr: String::new(),
        };
        let line = r.wait_line(|l| l.contains("listening on http://"));
        let start = line.find("http://").expect("url") + "http://".len();
        r.addr = line[start..]
            .split(|c: char| c.is_whitespace() || c == ')' || c == '"')
            .next()
            .expect("addr")
            .to_owned();
        r
    }

    fn wait_line(&mut self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            let l = self
                .lines
                .recv_timeout(Duration::from_secs(30))
                .expect("server output line");
            if pred(&l) {
                return l;
            }
        }
    }

    fn sigterm(&self) {
        self.signal("-TERM");
    }

    fn signal(&self, sig: &str) {
        let status = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn login(http: &reqwest::Client, srv: &mut Running, phone: &str) -> Value {
    let base = format!("http://{}", srv.addr);
    let r = http
        .post(format!("{base}/v1/auth/otp"))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .expect("otp");
    assert_eq!(r.status(), 200);
    let line = srv.wait_line(|l| l.contains("DEVELOPMENT MODE") && l.contains(phone) && l.contains("code is "));
    let after = line.split("code is ").nth(1).expect("code in the console line");
    let code: String = after.chars().take_while(char::is_ascii_digit).collect();
    assert_eq!(code.len(), 6, "{line}");
    let r = http
        .post(format!("{base}/v1/auth/verify"))
        .json(&json!({ "phone": phone, "code": code }))
        .send()
        .await
        .expect("verify");
    assert_eq!(r.status(), 200);
    r.json().await.expect("tokens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_server_runs_from_nothing_and_shuts_down_gracefully() {
    let data_dir = std::env::temp_dir().join(format!("chatico-server-test-{}", rand_suffix()));
    let mut srv = Running::start(&data_dir);
    let secret_path = data_dir.join("jwt-secret");
    let secret = std::fs::read_to_string(&secret_path).expect("the secret was generated");
    assert_eq!(secret.trim().len(), 64);

    let http = reqwest::Client::new();
    let index = http.get(format!("http://{}/", srv.addr)).send().await.expect("index");
    assert!(index.text().await.expect("html").contains("ChatiCO"));
    let alice = login(&http, &mut srv, "+15550001001").await;
    let bob = login(&http, &mut srv, "+15550001002").await;
    let base = format!("http://{}", srv.addr);
    let conv: Value = http
        .post(format!("{base}/v1/conversations/direct"))
        .bearer_auth(alice["access_token"].as_str().expect("token"))
        .json(&json!({ "user_id": bob["user"]["id"] }))
        .send()
        .await
        .expect("direct")
        .json()
        .await
        .expect("json");

    // Bob on the WebSocket (browser-like: an allowed origin, the token in the first frame).
    let mut req = format!("ws://{}/v1/ws", srv.addr).into_client_request().expect("req");
    req.headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("chatico.v1.json"));
    let origin = format!("http://127.0.0.1:{}", srv.addr.rsplit(':').next().expect("port"));
    req.headers_mut()
        .insert("origin", HeaderValue::from_str(&origin).expect("origin"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    let send = |v: Value| Message::text(v.to_string());
    ws.send(send(json!({ "id": "1", "type": "auth", "token": bob["access_token"] })))
        .await
        .expect("auth");
    ws.send(send(json!({ "id": "2", "type": "subscribe" })))
        .await
        .expect("sub");
    // A subscription without `since` starts from now: wait until it is in place (the
    // caught-up checkpoint) before anything is sent, or the message may precede it.
    loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("frame")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "cursor" && v["caught_up"] == true {
                break;
            }
        }
    }
    let r = http
        .post(format!(
            "{base}/v1/conversations/{}/messages",
            conv["id"].as_str().expect("id")
        ))
        .bearer_auth(alice["access_token"].as_str().expect("token"))
        .json(&json!({ "client_msg_id": "hello", "content": { "type": "text", "text": "hello bob" } }))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200);
    let got = loop {
        let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("frame")
            .expect("open")
            .expect("ok");
        if let Message::Text(t) = m {
            let v: Value = serde_json::from_str(t.as_str()).expect("json");
            if v["type"] == "event" && v["event"]["kind"]["type"] == "message" {
                break v;
            }
        }
    };
    assert_eq!(got["event"]["kind"]["message"]["content"]["text"], "hello bob");

    // SIGTERM: the socket is closed with 1001 and the process exits cleanly.
    srv.sigterm();
    let code = loop {
        match tokio::time::timeout(Duration::from_secs(20), ws.next())
            .await
            .expect("close")
        {
            Some(Ok(Message::Close(Some(c)))) => break u16::from(c.code),
            Some(Ok(_)) => continue,
            other => panic!("no close frame: {other:?}"),
        }
    };
    assert_eq!(code, 1001);
    drop(ws);
    let status = srv.child.wait().expect("exit");
    assert!(status.success(), "{status}");

    // A restart keeps the secret.
    let srv2 = Running::start(&data_dir);
    assert_eq!(std::fs::read_to_string(&secret_path).expect("secret"), secret);
    drop(srv2);
    let _ = std::fs::remove_dir_all(&data_dir);
}

type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket to the server (no `Origin`: a native client), authenticated by the first
/// frame when `token` is given, and read up to its `ready` frame.
async fn open_socket(addr: &str, token: Option<&str>) -> Socket {
    let mut req = format!("ws://{addr}/v1/ws").into_client_request().expect("req");
    req.headers_mut()
        .insert("sec-websocket-protocol", HeaderValue::from_static("chatico.v1.json"));
    let (mut ws, _) = tokio_tungstenite::connect_async(req).await.expect("ws");
    if let Some(token) = token {
        let auth = json!({ "id": "1", "type": "auth", "token": token });
        ws.send(Message::text(auth.to_string())).await.expect("auth");
        loop {
            let m = tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("frame")
                .expect("open")
                .expect("ok");
            if let Message::Text(t) = m
                && t.as_str().contains("\"ready\"")
            {
                break;
            }
        }
    }
    ws
}

/// Ctrl-C (SIGINT) with several sockets open, signed-in and not yet signed-in: every one
/// gets a 1001 close frame before the process exits (none a bare TCP close).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_sends_every_open_websocket_its_1001() {
    let data_dir = std::env::temp_dir().join(format!("chatico-server-test-{}", rand_suffix()));
    let mut srv = Running::start(&data_dir);
    let http = reqwest::Client::new();
    let alice = login(&http, &mut srv, "+15550001003").await;
    let token = alice["access_token"].as_str().expect("token").to_owned();
    let mut sockets = Vec::new();
    for _ in 0..6 {
        sockets.push(open_socket(&srv.addr, Some(&token)).await);
    }
    for _ in 0..2 {
        sockets.push(open_socket(&srv.addr, None).await);
    }
    srv.signal("-INT");
    for (i, ws) in sockets.iter_mut().enumerate() {
        let code = loop {
            match tokio::time::timeout(Duration::from_secs(20), ws.next())
                .await
                .expect("close")
            {
                Some(Ok(Message::Close(Some(c)))) => break u16::from(c.code),
                Some(Ok(_)) => continue,
                other => panic!("socket {i}: no close frame: {other:?}"),
            }
        };
        assert_eq!(code, 1001, "socket {i}");
        // Reading on sends the client's close reply, so the server need not wait for it.
        let _ = tokio::time::timeout(Duration::from_secs(5), ws.next()).await;
    }
    drop(sockets);
    let status = srv.child.wait().expect("exit");
    assert!(status.success(), "{status}");
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// Logs written to a pipe carry no ANSI colour codes: the documented `DEVELOPMENT MODE`
/// line is found by grep as plain text.
#[tokio::test]
async fn piped_logs_have_no_colour_codes() {
    let data_dir = std::env::temp_dir().join(format!("chatico-server-test-{}", rand_suffix()));
    let mut srv = Running::start(&data_dir);
    let phone = "+15550001004";
    let r = reqwest::Client::new()
        .post(format!("http://{}/v1/auth/otp", srv.addr))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .expect("otp");
    assert_eq!(r.status(), 200);
    let line = srv.wait_line(|l| l.contains("DEVELOPMENT MODE") && l.contains(phone));
    assert!(!line.contains('\u{1b}'), "escape codes in a piped log line: {line:?}");
    assert!(line.contains(" WARN "), "{line:?}");
    assert!(line.contains("DEVELOPMENT MODE: SMS not sent"), "{line:?}");
    drop(srv);
    let _ = std::fs::remove_dir_all(&data_dir);
}

fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}-{n}", std::process::id())
}

//! A real gateway on 127.0.0.1:0 with the in-memory store, a manual clock and an SMS sender
//! that records what it sends; a REST client (reqwest) and a WebSocket client
//! (tokio-tungstenite) speaking the documented protocol.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use chatico_core::engine::Engine;
use chatico_core::memory::MemoryStore;
use chatico_core::ports::{Backplane, BlobStore, ManualClock};
use chatico_core::protocol::SUBPROTOCOL_JSON;
use chatico_core::{Config, MemoryOtpCache};
use chatico_store::blob::LocalDiskBlobStore;
use chatico_transport::gateway::{Gateway, GatewayConfig, OriginPolicy, RateLimit};
use futures::{SinkExt, StreamExt};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

/// How long a test waits for a frame that must come (a hang is a failure, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(20);

#[path = "../support/sms.rs"]
mod sms;
pub use sms::RecordingSms;

/// The gateway settings tests use unless they say otherwise: quick checkpoints, generous
/// rate limits, an allowlist with one origin.
pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        checkpoint_idle: Duration::from_millis(30),
        origins: OriginPolicy::List(vec!["http://app.example".to_owned()]),
        rate_limit: RateLimit {
            per_second: 10_000,
            burst: 10_000,
        },
        ..GatewayConfig::default()
    }
}

pub struct TestServer {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    pub sms: Arc<RecordingSms>,
    pub clock: Arc<ManualClock>,
    pub http: reqwest::Client,
    /// The engine's store (tests read what was stored, e.g. how many blobs).
    pub store: Arc<MemoryStore>,
    /// Where uploads go (a local-disk blob store), removed with the server.
    pub _blob_dir: tempfile::TempDir,
}

/// A logged-in user.
#[derive(Clone, Debug)]
pub struct User {
    pub id: String,
    pub token: String,
    pub refresh: String,
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(test_config(), None).await
    }

    pub async fn start_with(config: GatewayConfig, backplane: Option<Arc<dyn Backplane>>) -> TestServer {
        Self::start_with_blobs(config, backplane, |local| Arc::new(local)).await
    }

    /// Like `start_with`, with the blob store `wrap` makes of the local-disk one (whose
    /// directory `blob_files` counts).
    pub async fn start_with_blobs(
        config: GatewayConfig,
        backplane: Option<Arc<dyn Backplane>>,
        wrap: impl FnOnce(LocalDiskBlobStore) -> Arc<dyn BlobStore>,
    ) -> TestServer {
        let clock = Arc::new(ManualClock::new(1_750_000_000_000));
        let store = Arc::new(MemoryStore::new());
        let sms = Arc::new(RecordingSms::default());
        let mut cfg = Config::default();
        cfg.auth.otp_requests_per_caller = 1000;
        cfg.auth.otp_verifications_per_caller = 1000;
        cfg.auth.otp_resend_cooldown_ms = 0;
        let blob_dir = tempfile::tempdir().expect("blob dir");
        let blobs = LocalDiskBlobStore::open(blob_dir.path()).await.expect("blob store");
        let engine = Engine::new(store.clone(), clock.clone(), cfg)
            .expect("engine")
            .with_local_otp(Arc::new(MemoryOtpCache::new()), sms.clone())
            .with_blob_store(wrap(blobs));
        let mut b = Gateway::builder(Arc::new(engine)).config(config);
        if let Some(bp) = backplane {
            b = b.backplane(bp);
        }
        let gateway = b.start().await.expect("gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Small frames go out at once (no Nagle delay behind an unacknowledged one).
        let listener = axum::serve::ListenerExt::tap_io(listener, |s| {
            let _ = s.set_nodelay(true);
        });
        let app = gateway.router();
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .expect("serve");
        });
        TestServer {
            addr,
            gateway,
            sms,
            clock,
            http: reqwest::Client::new(),
            store,
            _blob_dir: blob_dir,
        }
    }

    /// Every file under the blob store's directory (bytes, metadata and temporary files), so
    /// a test can tell that a refused upload left nothing behind.
    pub fn blob_files(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| match e.file_type() {
                            Ok(t) if t.is_dir() => count(&e.path()),
                            Ok(_) => 1,
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(self._blob_dir.path())
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// A REST call; returns the status and the JSON body (`Null` when empty).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("http");
        let status = resp.status();
        let bytes = resp.bytes().await.expect("body");
        let v = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into()))
        };
        (status, v)
    }

    pub async fn get(&self, path: &str, u: &User) -> Value {
        let (s, v) = self.call(Method::GET, path, Some(&u.token), None).await;
        assert!(s.is_success(), "GET {path}: {s} {v}");
        v
    }

    pub async fn ok(&self, method: Method, path: &str, u: &User, body: Value) -> Value {
        let (s, v) = self.call(method.clone(), path, Some(&u.token), Some(body)).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// OTP login through the REST API, reading the code from the recorded SMS.
    pub async fn login(&self, phone: &str) -> User {
        let (s, v) = self
            .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": phone })))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let code = self.sms.code_for(phone);
        let (s, v) = self
            .call(
                Method::POST,
                "/v1/auth/verify",
                None,
                Some(json!({ "phone": phone, "code": code, "device": "test" })),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        User {
            id: v["user"]["id"].as_str().expect("user id").to_owned(),
            token: v["access_token"].as_str().expect("access").to_owned(),
            refresh: v["refresh_token"].as_str().expect("refresh").to_owned(),
        }
    }

    /// A WebSocket authenticated by the `Authorization` header and subscribed from now.
    pub async fn ws(&self, u: &User) -> Ws {
        let mut ws = Ws::connect(self.addr, Some(&u.token), None).await.expect("ws connect");
        ws.expect_ready().await;
        ws.subscribe(None).await;
        ws
    }
}

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol-speaking WebSocket client.
pub struct Ws {
    pub stream: Stream,
    next_id: u64,
    /// Frames read but not yet consumed.
    pub backlog: VecDeque<Value>,
}

impl Ws {
    /// Opens `/v1/ws` with the JSON subprotocol, an optional bearer header and origin.
    pub async fn connect(
        addr: SocketAddr,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        let mut req = format!("ws://{addr}/v1/ws").into_client_request()?;
        let h = req.headers_mut();
        h.insert("sec-websocket-protocol", HeaderValue::from_static(SUBPROTOCOL_JSON));
        if let Some(t) = token {
            h.insert(
                "authorization",
                HeaderValue::from_str(&format!("Bearer {t}")).expect("header"),
            );
        }
        if let Some(o) = origin {
            h.insert("origin", HeaderValue::from_str(o).expect("header"));
        }
        let (stream, resp) = tokio_tungstenite::connect_async_with_config(req, None, true).await?;
        assert_eq!(
            resp.headers().get("sec-websocket-protocol").map(|v| v.as_bytes()),
            Some(SUBPROTOCOL_JSON.as_bytes())
        );
        Ok(Ws {
            stream,
            next_id: 0,
            backlog: VecDeque::new(),
        })
    }

    pub async fn send_text(&mut self, text: impl Into<String>) {
        self.stream.send(Message::text(text.into())).await.expect("ws send");
    }

    /// The next frame from the socket (not the backlog). Panics on close or after PATIENCE.
    async fn read(&mut self) -> Value {
        loop {
            let m = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("timed out waiting for a frame")
                .expect("stream ended")
                .expect("ws error");
            match m {
                Message::Text(t) => return serde_json::from_str(t.as_str()).expect("server frames are JSON"),
                Message::Close(c) => panic!("unexpected close: {c:?}"),
                _ => continue,
            }
        }
    }

    /// The next frame (backlog first).
    pub async fn next(&mut self) -> Value {
        match self.backlog.pop_front() {
            Some(v) => v,
            None => self.read().await,
        }
    }

    /// Reads frames until one matches; returns every frame read, the match last.
    pub async fn until(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Vec<Value> {
        let mut out = Vec::new();
        loop {
            let f = self.next().await;
            let done = pred(&f);
            out.push(f);
            if done {
                return out;
            }
        }
    }

    pub async fn expect_ready(&mut self) -> Value {
        let f = self.next().await;
        assert_eq!(f["type"], "ready", "{f}");
        f
    }

    /// Sends a request frame and waits for its answer; frames read meanwhile stay in the
    /// backlog in order.
    pub async fn request(&mut self, kind: &str, fields: Value) -> Value {
        self.next_id += 1;
        let id = format!("r{}", self.next_id);
        let mut frame = fields;
        frame["id"] = json!(id);
        frame["type"] = json!(kind);
        self.send_text(frame.to_string()).await;
        let mut kept = Vec::new();
        loop {
            let f = self.next().await;
            if (f["type"] == "ack" || f["type"] == "error") && f["id"] == json!(id) {
                // Put back what arrived meanwhile, ahead of anything still queued.
                for k in kept.into_iter().rev() {
                    self.backlog.push_front(k);
                }
                return f;
            }
            kept.push(f);
        }
    }

    /// A request that must succeed; returns its `result`.
    pub async fn ok(&mut self, kind: &str, fields: Value) -> Value {
        let f = self.request(kind, fields).await;
        assert_eq!(f["type"], "ack", "{kind}: {f}");
        f["result"].clone()
    }

    /// Subscribes and reads up to the caught-up cursor; returns (events, cursor).
    pub async fn subscribe(&mut self, since: Option<i64>) -> (Vec<Value>, i64) {
        self.ok("subscribe", json!({ "since": since })).await;
        let frames = self.until(|f| f["type"] == "cursor" && f["caught_up"] == true).await;
        let cursor = frames.last().expect("cursor")["pos"].as_i64().expect("pos");
        let events = frames.into_iter().filter(|f| f["type"] == "event").collect();
        (events, cursor)
    }

    /// Reads until an event matching `pred`; returns it (other frames are dropped).
    pub async fn event(&mut self, mut pred: impl FnMut(&Value) -> bool) -> Value {
        let frames = self.until(|f| f["type"] == "event" && pred(&f["event"])).await;
        frames.last().expect("event")["event"].clone()
    }

    /// Reads frames until the server closes; returns the close code and every frame before.
    pub async fn close_code(&mut self) -> (u16, Vec<Value>) {
        let mut frames: Vec<Value> = self.backlog.drain(..).collect();
        loop {
            let m = tokio::time::timeout(PATIENCE, self.stream.next())
                .await
                .expect("timed out waiting for the close");
            match m {
                Some(Ok(Message::Close(Some(c)))) => return (u16::from(c.code), frames),
                Some(Ok(Message::Close(None))) => return (u16::from(CloseCode::Status), frames),
                Some(Ok(Message::Text(t))) => frames.push(serde_json::from_str(t.as_str()).expect("json")),
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("connection failed before a close frame: {e}"),
                None => panic!("stream ended without a close frame"),
            }
        }
    }
}

/// Whether a frame is a change event of this type (and, if given, conversation).
pub fn is_change(f: &Value, kind: &str) -> bool {
    f["event"] == "change" && f["kind"]["type"] == kind
}

/// The text of a message change event.
pub fn text_of(f: &Value) -> &str {
    f["kind"]["message"]["content"]["text"].as_str().unwrap_or("")
}

/// Small helper to tweak a config inline.
pub struct GatewayConfigExt;

impl GatewayConfigExt {
    pub fn with(mut c: GatewayConfig, f: impl FnOnce(&mut GatewayConfig)) -> GatewayConfig {
        f(&mut c);
        c
    }
}

//! A WebSocket client speaking ChatiCO's JSON protocol.

use std::collections::VecDeque;
use std::net::SocketAddr;

use chatico_core::protocol::SUBPROTOCOL_JSON;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::PATIENCE;

type Stream = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A protocol-speaking WebSocket client: numbered requests, frames read while waiting for an
/// answer kept in order in a backlog.
pub struct Ws {
    /// The socket, for tests that write raw frames.
    pub stream: Stream,
    next_id: u64,
    /// Frames read but not yet consumed.
    pub backlog: VecDeque<Value>,
}

impl Ws {
    /// Opens `ws://{addr}/v1/ws` with the JSON subprotocol, an optional bearer header and
    /// origin.
    pub async fn connect(
        addr: SocketAddr,
        token: Option<&str>,
        origin: Option<&str>,
    ) -> Result<Ws, tungstenite::Error> {
        Self::open(&format!("ws://{addr}/v1/ws"), token, origin).await
    }

    /// Opens the WebSocket at `url` (e.g. a gateway nested under a prefix) with the JSON
    /// subprotocol, an optional bearer header and origin.
    pub async fn open(url: &str, token: Option<&str>, origin: Option<&str>) -> Result<Ws, tungstenite::Error> {
        let mut req = url.into_client_request()?;
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

    /// Sends a text frame as it is.
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

    /// Reads the next frame, which must be `ready`; returns it.
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

    /// Authenticates with an `auth` frame (a connection without an `Authorization` header)
    /// and reads the `ready` frame that follows; returns it.
    pub async fn auth(&mut self, token: &str) -> Value {
        self.ok("auth", json!({ "token": token })).await;
        self.expect_ready().await
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

/// Whether an event is a change of this kind (`message`, `receipt`, `member_added`, ...).
pub fn is_change(f: &Value, kind: &str) -> bool {
    f["event"] == "change" && f["kind"]["type"] == kind
}

/// The text of a message change event (empty when it has none).
pub fn text_of(f: &Value) -> &str {
    f["kind"]["message"]["content"]["text"].as_str().unwrap_or("")
}

//! Talking to a ChatiCO server as real clients do: OTP login over REST, WebSockets with the
//! JSON subprotocol and a bearer header, `subscribe`, and reading frames.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use chatico_core::protocol::SUBPROTOCOL_JSON;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use super::LoadError;
use super::net::{Sources, Ws, ws_connect};
use super::otp::OtpLog;

/// How long one setup step (a login, a handshake, an answer) may take before the run fails.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub token: String,
    pub phone: String,
}

/// A ChatiCO server: its base URL (`http://127.0.0.1:8080`, or with the prefix the gateway is
/// nested under) and where its OTP codes can be read.
#[derive(Clone)]
pub struct Server {
    pub base: String,
    pub http: reqwest::Client,
    pub otp: OtpLog,
    /// A random tag that makes this tool invocation's phones and message ids unique.
    pub tag: u32,
    /// Every node's base URL when the server is a cluster (`base` first): scenarios that
    /// spread connections put connection k on node k mod N. One entry for one node.
    pub nodes: Vec<String>,
}

impl Server {
    pub fn new(base: &str, otp: OtpLog) -> Result<Server, LoadError> {
        super::net::loopback_addr(base)?;
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .timeout(PATIENCE)
            .build()
            .map_err(|e| LoadError::Setup(format!("http client: {e}")))?;
        let base = base.trim_end_matches('/').to_owned();
        Ok(Server {
            nodes: vec![base.clone()],
            base,
            http,
            otp,
            tag: rand::random::<u32>() % 1_000_000,
        })
    }

    /// Adds the other nodes of a cluster (loopback base URLs like `--url`'s). REST calls
    /// (logins, groups) stay on the first node; WebSockets spread over all of them.
    pub fn with_nodes(mut self, others: &[String]) -> Result<Server, LoadError> {
        for o in others {
            super::net::loopback_addr(o)?;
            self.nodes.push(o.trim_end_matches('/').to_owned());
        }
        Ok(self)
    }

    /// The WebSocket URL (`ws://.../v1/ws`) of the first node.
    pub fn ws_url(&self) -> String {
        self.ws_url_on(0)
    }

    /// The WebSocket URL of node `node` (mod the number of nodes).
    pub fn ws_url_on(&self, node: usize) -> String {
        let base = &self.nodes[node % self.nodes.len()];
        let rest = base.split_once("://").map(|(_, r)| r).unwrap_or(base);
        format!("ws://{rest}/v1/ws")
    }

    /// The unique phone number of user `n` of this invocation.
    pub fn phone(&self, n: usize) -> String {
        format!("+19{:06}{:06}", self.tag, n % 1_000_000)
    }

    /// A REST call that must succeed; returns the JSON body.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Result<Value, LoadError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| LoadError::Io(format!("{method} {path}: {e}")))?;
        let status = resp.status();
        let text = resp
            .text()
            .await
            .map_err(|e| LoadError::Io(format!("{method} {path}: {e}")))?;
        if !status.is_success() {
            return Err(LoadError::Setup(format!("{method} {path}: {status} {text}")));
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| LoadError::Setup(format!("{method} {path}: bad JSON: {e}")))
    }

    /// Logs user `n` in: `POST /v1/auth/otp`, the code from the OTP log, `POST /v1/auth/verify`.
    pub async fn login(&self, n: usize) -> Result<User, LoadError> {
        let phone = self.phone(n);
        self.call(reqwest::Method::POST, "/v1/auth/otp", None, json!({ "phone": phone }))
            .await?;
        let code = self.otp.code_for(&phone, PATIENCE).await?;
        let v = self
            .call(
                reqwest::Method::POST,
                "/v1/auth/verify",
                None,
                json!({ "phone": phone, "code": code, "device": "chatico-load" }),
            )
            .await?;
        let s = |p: &str| {
            v.pointer(p)
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| LoadError::Setup(format!("verify answer without {p}: {v}")))
        };
        Ok(User {
            id: s("/user/id")?,
            token: s("/access_token")?,
            phone,
        })
    }

    /// Logs users `first..first+count` in, `concurrency` at a time, in order.
    pub async fn login_many(&self, first: usize, count: usize, concurrency: usize) -> Result<Vec<User>, LoadError> {
        let results: Vec<Result<User, LoadError>> = futures::stream::iter(first..first + count)
            .map(|n| self.login(n))
            .buffered(concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Creates a group owned by `owner` with `members`; returns its id.
    pub async fn create_group(&self, owner: &User, members: &[&User]) -> Result<String, LoadError> {
        let ids: Vec<&str> = members.iter().map(|u| u.id.as_str()).collect();
        let v = self
            .call(
                reqwest::Method::POST,
                "/v1/conversations/group",
                Some(&owner.token),
                json!({ "title": "chatico-load", "members": ids }),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| LoadError::Setup(format!("group answer without id: {v}")))
    }

    /// Opens (or finds) the direct conversation of `a` and `b`; returns its id.
    pub async fn open_direct(&self, a: &User, b: &User) -> Result<String, LoadError> {
        let v = self
            .call(
                reqwest::Method::POST,
                "/v1/conversations/direct",
                Some(&a.token),
                json!({ "user_id": b.id }),
            )
            .await?;
        v["id"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| LoadError::Setup(format!("direct answer without id: {v}")))
    }

    /// An authenticated WebSocket (bearer header) that has read its `ready` frame.
    pub async fn connect(&self, user: &User, src: IpAddr) -> Result<Ws, LoadError> {
        self.connect_on(user, src, 0).await
    }

    /// [`Server::connect`] to node `node` (mod the number of nodes).
    pub async fn connect_on(&self, user: &User, src: IpAddr, node: usize) -> Result<Ws, LoadError> {
        let headers = [
            ("sec-websocket-protocol", SUBPROTOCOL_JSON.to_owned()),
            ("authorization", format!("Bearer {}", user.token)),
        ];
        let mut ws = tokio::time::timeout(PATIENCE, ws_connect(&self.ws_url_on(node), src, &headers))
            .await
            .map_err(|_| LoadError::Io("websocket handshake timed out".into()))??;
        let ready = next_text(&mut ws, PATIENCE).await?;
        if !ready.starts_with(r#"{"type":"ready""#) {
            return Err(LoadError::Setup(format!("expected ready, got {ready}")));
        }
        Ok(ws)
    }

    /// [`Server::connect`], then `subscribe` (from `since`, or from now) read up to the
    /// caught-up cursor; returns the socket, the cursor and the events read on the way.
    pub async fn connect_subscribed(
        &self,
        user: &User,
        src: IpAddr,
        since: Option<i64>,
    ) -> Result<(Ws, i64, Vec<String>), LoadError> {
        self.connect_subscribed_on(user, src, since, 0).await
    }

    /// [`Server::connect_subscribed`] on node `node` (mod the number of nodes).
    pub async fn connect_subscribed_on(
        &self,
        user: &User,
        src: IpAddr,
        since: Option<i64>,
        node: usize,
    ) -> Result<(Ws, i64, Vec<String>), LoadError> {
        let mut ws = self.connect_on(user, src, node).await?;
        let (cursor, events) = subscribe(&mut ws, since).await?;
        Ok((ws, cursor, events))
    }

    /// Logs in and connects `count` users at once (`concurrency` in flight).
    pub async fn users_connected(
        self: &Arc<Self>,
        first: usize,
        count: usize,
        concurrency: usize,
        sources: &Sources,
    ) -> Result<(Vec<User>, Vec<Ws>), LoadError> {
        let users = self.login_many(first, count, concurrency).await?;
        let conns: Vec<Result<Ws, LoadError>> = futures::stream::iter(users.iter())
            .map(|u| {
                let src = sources.pick();
                async move { self.connect_subscribed(u, src, None).await.map(|(ws, _, _)| ws) }
            })
            .buffered(concurrency.max(1))
            .collect()
            .await;
        let conns = conns.into_iter().collect::<Result<Vec<_>, _>>()?;
        Ok((users, conns))
    }
}

/// Sends `subscribe` and reads up to the caught-up `cursor`; returns it and the events read.
pub async fn subscribe(ws: &mut Ws, since: Option<i64>) -> Result<(i64, Vec<String>), LoadError> {
    let frame = json!({ "id": "sub", "type": "subscribe", "since": since }).to_string();
    ws.send(Message::text(frame))
        .await
        .map_err(|e| LoadError::Io(format!("send subscribe: {e}")))?;
    let mut events = Vec::new();
    loop {
        let t = next_text(ws, PATIENCE).await?;
        if t.starts_with(r#"{"type":"cursor""#) {
            let v: Value = serde_json::from_str(&t).map_err(|e| LoadError::Setup(format!("cursor: {e}")))?;
            if v["caught_up"] == true {
                return Ok((v["pos"].as_i64().unwrap_or(0), events));
            }
        } else if t.starts_with(r#"{"type":"event""#) {
            events.push(t);
        } else if t.starts_with(r#"{"type":"error""#) {
            return Err(LoadError::Setup(format!("subscribe refused: {t}")));
        }
    }
}

/// The next text frame (pings and pongs are skipped; the codec answers pings).
pub async fn next_text(ws: &mut Ws, patience: Duration) -> Result<String, LoadError> {
    loop {
        let m = tokio::time::timeout(patience, ws.next())
            .await
            .map_err(|_| LoadError::Io("timed out waiting for a frame".into()))?;
        match m {
            Some(Ok(Message::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(Message::Close(c))) => return Err(LoadError::Closed(c.map(|c| u16::from(c.code)))),
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(LoadError::Io(format!("websocket: {e}"))),
            None => return Err(LoadError::Closed(None)),
        }
    }
}

/// The JSON text of a `send` frame.
pub fn send_frame(frame_id: u64, conversation: &str, client_msg_id: &str, text: &str) -> String {
    json!({
        "id": frame_id.to_string(),
        "type": "send",
        "conversation_id": conversation,
        "client_msg_id": client_msg_id,
        "content": { "type": "text", "text": text },
    })
    .to_string()
}

//! REST calls against a ChatiCO gateway at any base URL.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

/// A logged-in user: the ids and tokens `POST /v1/auth/verify` answered.
#[derive(Clone, Debug)]
pub struct User {
    /// The user's id.
    pub id: String,
    /// The access token (a bearer JWT).
    pub token: String,
    /// The refresh token.
    pub refresh: String,
}

/// A REST client for the gateway whose `/v1` routes are under `base` (`http://host:port`, or
/// with the prefix a host nests the gateway under).
#[derive(Clone, Debug)]
pub struct Api {
    /// The HTTP client every call goes through.
    pub http: reqwest::Client,
    /// The URL the gateway's paths are appended to, without a trailing slash.
    pub base: String,
}

impl Api {
    /// A client for the gateway under `base`.
    pub fn new(base: impl Into<String>) -> Api {
        Api {
            http: reqwest::Client::new(),
            base: base.into(),
        }
    }

    /// The full URL of a gateway path such as `/v1/users`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// A REST call; returns the status and the JSON body (`Null` when empty, a string when it
    /// is not JSON).
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

    /// A `GET` as `u` that must succeed; returns the body.
    pub async fn get(&self, path: &str, u: &User) -> Value {
        let (s, v) = self.call(Method::GET, path, Some(&u.token), None).await;
        assert!(s.is_success(), "GET {path}: {s} {v}");
        v
    }

    /// A call with a JSON body as `u` that must succeed; returns the answer's body.
    pub async fn ok(&self, method: Method, path: &str, u: &User, body: Value) -> Value {
        let (s, v) = self.call(method.clone(), path, Some(&u.token), Some(body)).await;
        assert!(s.is_success(), "{method} {path}: {s} {v}");
        v
    }

    /// OTP login: requests a code for `phone`, asks `code` for it (it runs after the request,
    /// reading an SMS recorder or a server's log) and verifies it.
    pub async fn login_with(&self, phone: &str, code: impl FnOnce() -> String) -> User {
        let (s, v) = self
            .call(Method::POST, "/v1/auth/otp", None, Some(json!({ "phone": phone })))
            .await;
        assert_eq!(s, StatusCode::OK, "{v}");
        let code = code();
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

    /// Opens (or finds) the direct conversation of `a` with `b`; returns its id.
    pub async fn open_direct(&self, a: &User, b: &User) -> String {
        self.ok(Method::POST, "/v1/conversations/direct", a, json!({ "user_id": b.id }))
            .await["id"]
            .as_str()
            .expect("conversation id")
            .to_owned()
    }

    /// Sends a text message as `u` over REST; returns the stored message.
    pub async fn send_text(&self, conversation: &str, u: &User, client_msg_id: &str, text: &str) -> Value {
        self.ok(
            Method::POST,
            &format!("/v1/conversations/{conversation}/messages"),
            u,
            json!({ "client_msg_id": client_msg_id, "content": { "type": "text", "text": text } }),
        )
        .await
    }
}

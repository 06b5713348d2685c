//! The embedding example: host routes next to the nested gateway, and the engine driven from
//! the host's own endpoints (a send and a server-sent-events stream).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chatico_core::ids::Phone;
use chatico_core::ports::SmsSender;
use futures::StreamExt;
use serde_json::{Value, json};

#[derive(Default)]
struct Recorder(Mutex<Vec<String>>);

#[async_trait]
impl SmsSender for Recorder {
    async fn send(&self, _to: &Phone, body: &str) -> chatico_core::Result<()> {
        self.0.lock().expect("lock").push(body.to_owned());
        Ok(())
    }
}

async fn login(http: &reqwest::Client, base: &str, sms: &Recorder, phone: &str) -> Value {
    http.post(format!("{base}/chat/v1/auth/otp"))
        .json(&json!({ "phone": phone }))
        .send()
        .await
        .expect("otp");
    let body = sms.0.lock().expect("lock").last().cloned().expect("sms");
    let code: String = body
        .split("code is ")
        .nth(1)
        .expect("code")
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    http.post(format!("{base}/chat/v1/auth/verify"))
        .json(&json!({ "phone": phone, "code": code }))
        .send()
        .await
        .expect("verify")
        .json()
        .await
        .expect("tokens")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_routes_nested_gateway_and_host_transport() {
    let sms = Arc::new(Recorder::default());
    let (app, _gw) = chatico_embed_axum::host_app(sms.clone()).await.expect("app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let http = reqwest::Client::new();

    assert_eq!(
        http.get(format!("{base}/health"))
            .send()
            .await
            .expect("h")
            .text()
            .await
            .expect("t"),
        "ok"
    );
    let doc: Value = http
        .get(format!("{base}/chat/v1/openapi.json"))
        .send()
        .await
        .expect("doc")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["servers"][0]["url"], "/chat");

    let alice = login(&http, &base, &sms, "+15550002001").await;
    let bob = login(&http, &base, &sms, "+15550002002").await;
    let conv: Value = http
        .post(format!("{base}/chat/v1/conversations/direct"))
        .bearer_auth(alice["access_token"].as_str().expect("t"))
        .json(&json!({ "user_id": bob["user"]["id"] }))
        .send()
        .await
        .expect("direct")
        .json()
        .await
        .expect("json");

    // Bob listens through the host's SSE endpoint.
    let resp = http
        .get(format!("{base}/host/events"))
        .bearer_auth(bob["access_token"].as_str().expect("t"))
        .send()
        .await
        .expect("sse");
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();

    // Alice sends through the host's own endpoint.
    let r = http
        .post(format!("{base}/host/messages"))
        .bearer_auth(alice["access_token"].as_str().expect("t"))
        .json(&json!({ "conversation_id": conv["id"], "text": "via the host" }))
        .send()
        .await
        .expect("host send");
    assert_eq!(r.status(), 202);

    let mut text = String::new();
    while !text.contains("via the host") {
        let chunk = tokio::time::timeout(Duration::from_secs(20), body.next())
            .await
            .expect("sse data")
            .expect("open")
            .expect("chunk");
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let line = text.lines().find(|l| l.contains("via the host")).expect("line");
    let frame: Value = serde_json::from_str(line.trim_start_matches("data:").trim()).expect("event frame");
    assert_eq!(frame["type"], "event");
    assert_eq!(frame["event"]["kind"]["message"]["content"]["text"], "via the host");
}

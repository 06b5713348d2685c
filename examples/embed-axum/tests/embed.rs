//! The embedding example: host routes next to the nested gateway, and the engine driven from
//! the host's own endpoints (a send and a server-sent-events stream).

use std::sync::Arc;
use std::time::Duration;

use chatico_test_support::{Api, RecordingSms};
use futures::StreamExt;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_routes_nested_gateway_and_host_transport() {
    let sms = Arc::new(RecordingSms::default());
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

    // The gateway's API, nested under the host's `/chat`.
    let chat = Api::new(format!("{base}/chat"));
    let alice = chat.login_with("+15550002001", || sms.code_for("+15550002001")).await;
    let bob = chat.login_with("+15550002002", || sms.code_for("+15550002002")).await;
    let conv = chat.open_direct(&alice, &bob).await;

    // Bob listens through the host's SSE endpoint.
    let resp = http
        .get(format!("{base}/host/events"))
        .bearer_auth(&bob.token)
        .send()
        .await
        .expect("sse");
    assert_eq!(resp.status(), 200);
    let mut body = resp.bytes_stream();

    // Alice sends through the host's own endpoint.
    let r = http
        .post(format!("{base}/host/messages"))
        .bearer_auth(&alice.token)
        .json(&json!({ "conversation_id": conv, "text": "via the host" }))
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

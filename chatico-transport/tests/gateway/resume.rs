//! Exactly-once delivery when the backplane loses events: the connection's checkpoints
//! send what live fan-out lost, and never repeat what it delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use chatico_core::ports::{Backplane, EventStream};
use chatico_core::sync::Fanout;
use chatico_transport::backplane::InProcessBackplane;
use reqwest::Method;
use serde_json::{Value, json};

use crate::common::{TestServer, is_change, test_config, text_of};

/// Drops every second delivery (a broker that loses messages).
struct LossyBackplane {
    inner: InProcessBackplane,
    n: AtomicU64,
    dropped: AtomicU64,
}

#[async_trait]
impl Backplane for LossyBackplane {
    async fn publish(&self, delivery: Fanout) -> chatico_core::Result<()> {
        if self.n.fetch_add(1, Ordering::SeqCst) % 2 == 1 {
            self.dropped.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        self.inner.publish(delivery).await
    }
    async fn subscribe(&self) -> chatico_core::Result<EventStream> {
        self.inner.subscribe().await
    }
}

/// A stable identity of a change event for duplicate detection.
fn identity(e: &Value) -> String {
    let mut k = e["kind"].clone();
    if let Some(m) = k.get_mut("message") {
        // A message is identified by its conversation and seq.
        *m = json!({ "c": m["conversation_id"], "seq": m["seq"] });
    }
    format!("{}|{}", e["conversation_id"], k)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lost_live_events_arrive_through_checkpoints_exactly_once() {
    let bp = Arc::new(LossyBackplane {
        inner: InProcessBackplane::default(),
        n: AtomicU64::new(0),
        dropped: AtomicU64::new(0),
    });
    let srv = TestServer::start_with(test_config(), Some(bp.clone())).await;
    let a = srv.login("+15550000031").await;
    let b = srv.login("+15550000032").await;
    let mut wb = srv.ws(&b).await;
    let d = srv.open_direct(&a, &b).await;
    for i in 1..=20 {
        srv.send_text(&d, &a, &format!("m{i}"), &format!("m{i}")).await;
        if i % 5 == 0 {
            // Receipts and an archive interleave with the messages.
            srv.ok(
                Method::POST,
                &format!("/v1/conversations/{d}/receipts"),
                &b,
                json!({ "read_seq": i }),
            )
            .await;
        }
    }
    srv.ok(
        Method::PUT,
        &format!("/v1/conversations/{d}/archive"),
        &b,
        json!({ "archived": true }),
    )
    .await;
    assert!(
        bp.dropped.load(Ordering::SeqCst) > 0,
        "the backplane lost some deliveries"
    );

    // Read until every message arrived, then until the archive change and its checkpoint.
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut texts = Vec::new();
    let mut archived = false;
    while texts.len() < 20 || !archived {
        let f = wb.next().await;
        if f["type"] != "event" || f["event"]["event"] != "change" {
            continue;
        }
        let e = &f["event"];
        *seen.entry(identity(e)).or_default() += 1;
        if is_change(e, "message") {
            texts.push(text_of(e).to_owned());
        }
        if is_change(e, "archived") {
            archived = true;
        }
    }
    // Whatever else comes until the next quiet checkpoint must not repeat anything.
    for f in wb.until(|f| f["type"] == "cursor").await {
        if f["type"] == "event" && f["event"]["event"] == "change" {
            *seen.entry(identity(&f["event"])).or_default() += 1;
        }
    }
    let expected: Vec<String> = (1..=20).map(|i| format!("m{i}")).collect();
    let mut sorted = texts.clone();
    sorted.sort_by_key(|t| t[1..].parse::<u32>().expect("n"));
    assert_eq!(sorted, expected, "every message, once");
    let dups: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(dups.is_empty(), "duplicated changes: {dups:?}");
    // Exactly the changes the store has for B since the start.
    let page = srv.get("/v1/sync?since=0&limit=500", &b).await;
    let stored: Vec<String> = page["page"]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .map(identity)
        .collect();
    for s in &stored {
        assert_eq!(seen.get(s), Some(&1), "change {s} delivered once");
    }
}

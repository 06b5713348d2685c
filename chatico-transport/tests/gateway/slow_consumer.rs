//! A consumer that stops reading is disconnected with 4008 while two others receive everything.

use std::time::Duration;

use chatico_core::protocol::close_code;
use futures::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::common::{GatewayConfigExt, PATIENCE, TestServer, Ws, is_change, test_config};

const MESSAGES: usize = 3000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_is_cut_off_and_the_others_get_everything() {
    let cfg = GatewayConfigExt::with(test_config(), |c| {
        c.outbound_queue = 32;
        // Long enough that the slow client still reads its close frame at the end.
        c.close_timeout = Duration::from_secs(60);
        c.heartbeat_timeout = Duration::from_secs(60);
    });
    let srv = TestServer::start_with(cfg, None).await;
    let sender = srv.login("+15550000041").await;
    let r1 = srv.login("+15550000042").await;
    let r2 = srv.login("+15550000043").await;
    let slow = srv.login("+15550000044").await;
    let g = srv
        .ok(
            Method::POST,
            "/v1/conversations/group",
            &sender,
            json!({ "title": "load", "members": [r1.id, r2.id, slow.id] }),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // The slow client subscribes, then stops reading.
    let mut ws_slow = srv.ws(&slow).await;
    let readers: Vec<_> = [r1.clone(), r2.clone()]
        .into_iter()
        .map(|u| {
            let addr = srv.addr;
            let g = g.clone();
            tokio::spawn(async move {
                let mut w = Ws::connect(addr, Some(&u.token), None).await.expect("connect");
                w.expect_ready().await;
                w.subscribe(None).await;
                let mut seqs = Vec::new();
                while seqs.len() < MESSAGES {
                    let f = w.next().await;
                    let e = &f["event"];
                    if f["type"] == "event" && is_change(e, "message") && e["conversation_id"] == json!(g) {
                        let text = e["kind"]["message"]["content"]["text"].as_str().unwrap_or("");
                        if text.starts_with("load-") {
                            seqs.push(e["kind"]["message"]["seq"].as_i64().expect("seq"));
                        }
                    }
                }
                seqs
            })
        })
        .collect();
    // Let both readers subscribe before the flood (their subscribe is a round trip).
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while srv.gateway.connection_count() < 3 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let t0 = std::time::Instant::now();
    let mut ws_sender = srv.ws(&sender).await;
    let body = "z".repeat(3000);
    for i in 0..MESSAGES {
        ws_sender
            .ok(
                "send",
                json!({ "conversation_id": g, "client_msg_id": format!("load-{i}"),
                    "content": { "type": "text", "text": format!("load-{i} {body}") } }),
            )
            .await;
        ws_sender.backlog.clear();
    }

    // Both readers got every message, in order, once.
    for r in readers {
        let seqs = tokio::time::timeout(PATIENCE * 3, r)
            .await
            .expect("reader finished")
            .expect("reader");
        let first = seqs[0];
        let expected: Vec<i64> = (first..first + MESSAGES as i64).collect();
        assert_eq!(seqs, expected);
    }

    // The slow client now reads: some events, then its own close code.
    let mut got = 0usize;
    let code = loop {
        match tokio::time::timeout(PATIENCE, ws_slow.stream.next())
            .await
            .expect("slow client frame")
        {
            Some(Ok(Message::Text(t))) => {
                if t.as_str().contains("load-") {
                    got += 1;
                }
            }
            Some(Ok(Message::Close(Some(c)))) => break u16::from(c.code),
            Some(Ok(_)) => {}
            other => panic!("no close frame: {other:?}"),
        }
    };
    eprintln!(
        "slow client got {got} of {MESSAGES} before its close, after {:?}",
        t0.elapsed()
    );
    assert_eq!(code, close_code::SLOW_CONSUMER);
    assert!(got < MESSAGES, "the slow client was cut off (got {got})");
}

/// A client that pipelines many sends is not a slow consumer: while its requests keep
/// arriving, the live events of its own messages still go out (inbound frames and the
/// outbound queue take turns), so the outbound queue (256 frames) does not overflow during a
/// burst many times its size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_keeps_sending_still_receives_its_events() {
    const BURST: usize = 2000;
    let srv = TestServer::start_with(test_config(), None).await;
    let a = srv.login("+15550000045").await;
    let b = srv.login("+15550000046").await;
    let d = srv.open_direct(&a, &b).await;
    let w = srv.ws(&a).await;
    let (mut tx, mut rx) = w.stream.split();
    // The sends go out as fast as the socket takes them, without waiting for acks: the
    // server always has another request ready while it handles one.
    let writer = tokio::spawn(async move {
        for i in 0..BURST {
            let frame = json!({ "id": format!("p{i}"), "type": "send", "conversation_id": d,
                "client_msg_id": format!("burst-{i}"), "content": { "type": "text", "text": format!("burst-{i}") } });
            tx.feed(Message::text(frame.to_string())).await.expect("feed");
        }
        tx.flush().await.expect("flush");
        tx
    });
    let (mut acks, mut events) = (0, 0);
    while acks < BURST || events < BURST {
        let m = tokio::time::timeout(PATIENCE, rx.next())
            .await
            .expect("timed out waiting for a frame")
            .expect("stream ended")
            .expect("ws error");
        let f: serde_json::Value = match m {
            Message::Text(t) => serde_json::from_str(t.as_str()).expect("json"),
            Message::Close(c) => panic!("closed after {acks} acks and {events} events: {c:?}"),
            _ => continue,
        };
        if f["type"] == "ack" && f["result"]["type"] == "send" {
            acks += 1;
        } else if f["type"] == "event" && is_change(&f["event"], "message") {
            events += 1;
        } else if f["type"] == "error" {
            panic!("send refused: {f}");
        }
    }
    let _sink = writer.await.expect("writer");
    assert_eq!((acks, events), (BURST, BURST));
}

/// The close frame of a slow consumer waits behind its full socket: a client that stops
/// reading and resumes only after `close_timeout` still reads its 4008 (the close gets its
/// own budget, `slow_consumer_close_timeout`), not a bare TCP close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_consumer_that_reads_again_later_still_gets_its_4008() {
    let close_timeout = Duration::from_millis(300);
    let cfg = GatewayConfigExt::with(test_config(), |c| {
        c.outbound_queue = 16;
        c.close_timeout = close_timeout;
        c.slow_consumer_close_timeout = Duration::from_secs(30);
        c.heartbeat_timeout = Duration::from_secs(60);
    });
    let srv = TestServer::start_with(cfg, None).await;
    let sender = srv.login("+15550000047").await;
    let slow = srv.login("+15550000048").await;
    let d = srv
        .ok(
            Method::POST,
            "/v1/conversations/direct",
            &sender,
            json!({ "user_id": slow.id }),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // The slow client subscribes, then stops reading. The sender posts over REST, so the
    // slow client holds the only socket (and the only queue that can overflow).
    let mut ws_slow = srv.ws(&slow).await;
    assert_eq!(srv.gateway.connection_count(), 1);
    let body = "z".repeat(3000);
    let path = format!("/v1/conversations/{d}/messages");
    let mut sent = 0;
    // Flood until the server cuts the slow client off (it leaves the hub).
    while srv.gateway.connection_count() == 1 {
        assert!(sent < 50_000, "the slow client was never cut off");
        srv.ok(
            Method::POST,
            &path,
            &sender,
            json!({ "client_msg_id": format!("flood-{sent}"),
                "content": { "type": "text", "text": format!("flood-{sent} {body}") } }),
        )
        .await;
        sent += 1;
    }
    // Well past close_timeout: the old code had given up on the close frame and dropped
    // the socket by now.
    tokio::time::sleep(close_timeout * 8).await;
    let mut got = 0usize;
    let code = loop {
        match tokio::time::timeout(PATIENCE, ws_slow.stream.next())
            .await
            .expect("slow client frame")
        {
            Some(Ok(Message::Text(t))) => {
                if t.as_str().contains("flood-") {
                    got += 1;
                }
            }
            Some(Ok(Message::Close(Some(c)))) => break u16::from(c.code),
            Some(Ok(_)) => {}
            other => panic!("no close frame after {got} of {sent} events: {other:?}"),
        }
    };
    assert_eq!(code, close_code::SLOW_CONSUMER);
    assert!(got < sent, "the slow client was cut off (got {got} of {sent})");
}

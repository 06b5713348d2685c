//! The whole seed flow with three users, over REST and the WebSocket.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use chatico_core::ports::Clock;

use crate::common::{PATIENCE, TestServer, Ws, is_change, text_of};

async fn wait_connections(srv: &TestServer, n: usize) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while srv.gateway.connection_count() != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "connection count never reached {n}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
}

fn frames_mention(frames: &[Value], needle: &str) -> bool {
    frames.iter().any(|f| f.to_string().contains(needle))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_flow_with_three_users() {
    let srv = TestServer::start().await;

    // ---- OTP login --------------------------------------------------------------------
    let a = srv.login("+15550000001").await;
    let b = srv.login("+15550000002").await;
    let c = srv.login("+15550000003").await;

    // ---- profile edit -----------------------------------------------------------------
    for (u, name) in [(&a, "Alice"), (&b, "Bob"), (&c, "Carol")] {
        let me = srv
            .ok(
                Method::PATCH,
                "/v1/me",
                u,
                json!({ "display_name": name, "bio": "seed" }),
            )
            .await;
        assert_eq!(me["display_name"], name);
    }
    assert_eq!(srv.get("/v1/me", &a).await["bio"], "seed");
    let found = srv.get("/v1/users?q=Bo", &a).await;
    assert!(found.as_array().expect("list").iter().any(|p| p["id"] == json!(b.id)));

    // ---- WebSockets: A and C by header, B by an auth frame ----------------------------
    let mut wa = srv.ws(&a).await;
    let mut wb = Ws::connect(srv.addr, None, None).await.expect("connect");
    let r = wb.ok("auth", json!({ "token": b.token })).await;
    assert_eq!(r["user_id"], json!(b.id));
    wb.expect_ready().await;
    wb.subscribe(None).await;
    let mut wc = srv.ws(&c).await;

    // ---- contacts ---------------------------------------------------------------------
    let r = srv
        .ok(Method::PUT, &format!("/v1/contacts/{}", b.id), &a, json!({}))
        .await;
    assert_eq!(r["changed"], true);
    let r = srv
        .ok(Method::PUT, &format!("/v1/contacts/{}", b.id), &a, json!({}))
        .await;
    assert_eq!(r["changed"], false);
    let e = wa.event(|e| is_change(e, "contact_added")).await;
    assert_eq!(e["kind"]["user_id"], json!(b.id));
    let contacts = srv.get("/v1/contacts", &a).await;
    assert_eq!(contacts.as_array().expect("list").len(), 1);
    assert_eq!(contacts[0]["display_name"], "Bob");

    // ---- direct chat ------------------------------------------------------------------
    let d = srv.open_direct(&a, &b).await;
    let e = wb.event(|e| is_change(e, "conversation_created")).await;
    assert_eq!(e["kind"]["conversation"]["id"], json!(d));
    let sent = wa
        .ok(
            "send",
            json!({ "conversation_id": d, "client_msg_id": "a1", "content": { "type": "text", "text": "hi bob" } }),
        )
        .await;
    assert_eq!(sent["message"]["seq"], 1);
    // A retry with the same client_msg_id returns the original message.
    let again = wa
        .ok(
            "send",
            json!({ "conversation_id": d, "client_msg_id": "a1", "content": { "type": "text", "text": "hi bob" } }),
        )
        .await;
    assert_eq!(again["message"]["id"], sent["message"]["id"]);
    let e = wb.event(|e| is_change(e, "message")).await;
    assert_eq!((text_of(&e), e["kind"]["message"]["seq"].as_i64()), ("hi bob", Some(1)));

    // ---- group chat -------------------------------------------------------------------
    let (s, gv) = srv
        .call(
            Method::POST,
            "/v1/conversations/group",
            Some(&a.token),
            Some(json!({ "title": "Trio", "members": [b.id, c.id] })),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{gv}");
    let g = gv["id"].as_str().expect("id").to_owned();
    let e = wc.event(|e| is_change(e, "conversation_created")).await;
    assert_eq!(e["kind"]["conversation"]["id"], json!(g));
    let bm = srv
        .ok(
            Method::POST,
            &format!("/v1/conversations/{g}/messages"),
            &b,
            json!({ "client_msg_id": "b1", "content": { "type": "text", "text": "hello group" } }),
        )
        .await;
    let bseq = bm["seq"].as_i64().expect("seq");
    for w in [&mut wa, &mut wc] {
        let e = w
            .event(|e| is_change(e, "message") && text_of(e) == "hello group")
            .await;
        assert_eq!(e["conversation_id"], json!(g));
    }

    // ---- typing -----------------------------------------------------------------------
    wc.ok("typing", json!({ "conversation_id": g, "typing": true })).await;
    for w in [&mut wa, &mut wb] {
        let e = w.event(|e| e["event"] == "typing").await;
        assert_eq!((e["user_id"].clone(), e["typing"].clone()), (json!(c.id), json!(true)));
        assert!(e["expires_at"].as_i64().is_some());
    }

    // ---- delivered and read receipts --------------------------------------------------
    let r = wb
        .ok("receipt", json!({ "conversation_id": d, "delivered_seq": 1 }))
        .await;
    assert_eq!(
        (r["delivered_seq"].as_i64(), r["read_seq"].as_i64()),
        (Some(1), Some(0))
    );
    let e = wa.event(|e| is_change(e, "receipt")).await;
    assert_eq!(
        (e["kind"]["delivered_seq"].as_i64(), e["kind"]["read_seq"].as_i64()),
        (Some(1), Some(0))
    );
    let r = wb.ok("receipt", json!({ "conversation_id": d, "read_seq": 1 })).await;
    assert_eq!(r["read_seq"], 1);
    let e = wa.event(|e| is_change(e, "receipt")).await;
    assert_eq!(
        (e["kind"]["user_id"].clone(), e["kind"]["read_seq"].clone()),
        (json!(b.id), json!(1))
    );
    let list = srv.get("/v1/conversations", &b).await;
    let dsum = list
        .as_array()
        .expect("list")
        .iter()
        .find(|s| s["conversation"]["id"] == json!(d))
        .expect("direct listed");
    assert_eq!(dsum["unread"], 0);

    // ---- presence and last seen -------------------------------------------------------
    // B opens a second device, then closes it: still online.
    let mut wb2 = srv.ws(&b).await;
    wait_connections(&srv, 4).await;
    wb2.stream.close(None).await.expect("close");
    drop(wb2);
    wait_connections(&srv, 3).await;
    let p = srv.get(&format!("/v1/presence?users={}", b.id), &a).await;
    assert_eq!(p[0]["online"], true, "online while any device is connected");
    srv.send_text(&g, &c, "c-sentinel", "sentinel-0").await;
    let frames = wa
        .until(|f| f["type"] == "event" && text_of(&f["event"]) == "sentinel-0")
        .await;
    assert!(
        !frames
            .iter()
            .any(|f| f["event"]["event"] == "presence" && f["event"]["online"] == false),
        "no offline presence while B still has a device: {frames:?}"
    );
    // The last device closes: offline, with last seen.
    wb.stream.close(None).await.expect("close");
    drop(wb);
    let e = wa
        .event(|e| e["event"] == "presence" && e["user_id"] == json!(b.id))
        .await;
    assert_eq!(e["online"], false);
    assert_eq!(e["last_seen_at"].as_i64(), Some(srv.clock.now_ms()));
    let prof = srv.get(&format!("/v1/users/{}", b.id), &a).await;
    assert_eq!(
        (prof["online"].clone(), prof["last_seen_at"].as_i64()),
        (json!(false), Some(srv.clock.now_ms()))
    );
    let mut wb = srv.ws(&b).await;
    let e = wa
        .event(|e| e["event"] == "presence" && e["user_id"] == json!(b.id))
        .await;
    assert_eq!(e["online"], true);

    // ---- block, and what it hides -----------------------------------------------------
    let r = srv
        .ok(Method::PUT, &format!("/v1/blocks/{}", c.id), &b, json!({}))
        .await;
    assert_eq!(r["changed"], true);
    assert_eq!(srv.get("/v1/blocks", &b).await[0]["id"], json!(c.id));
    // C's typing reaches A, not B.
    wc.ok("typing", json!({ "conversation_id": g, "typing": true })).await;
    let e = wa.event(|e| e["event"] == "typing").await;
    assert_eq!(e["user_id"], json!(c.id));
    // C's profile update reaches A, not B.
    srv.ok(Method::PATCH, "/v1/me", &c, json!({ "bio": "new bio" })).await;
    let e = wa.event(|e| e["event"] == "profile").await;
    assert_eq!((e["id"].clone(), e["bio"].clone()), (json!(c.id), json!("new bio")));
    wa.ok(
        "send",
        json!({ "conversation_id": g, "client_msg_id": "a-s1", "content": { "type": "text", "text": "sentinel-1" } }),
    )
    .await;
    let frames = wb
        .until(|f| f["type"] == "event" && text_of(&f["event"]) == "sentinel-1")
        .await;
    assert!(
        !frames.iter().any(|f| f["event"]["event"] == "typing"),
        "typing hidden: {frames:?}"
    );
    assert!(
        !frames.iter().any(|f| f["event"]["event"] == "profile"),
        "profile hidden: {frames:?}"
    );
    // Presence and last seen are hidden both ways (both are online now).
    let p = srv.get(&format!("/v1/users/{}", b.id), &c).await;
    assert_eq!(
        (p["online"].clone(), p["last_seen_at"].clone()),
        (json!(false), Value::Null)
    );
    let p = srv.get(&format!("/v1/presence?users={}", c.id), &b).await;
    assert_eq!(p[0]["online"], false);
    // No direct chat across the block, either way.
    let (s, v) = srv
        .call(
            Method::POST,
            "/v1/conversations/direct",
            Some(&c.token),
            Some(json!({ "user_id": b.id })),
        )
        .await;
    assert_eq!((s, v["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")));
    // Group messages still reach every member.
    wc.ok(
        "send",
        json!({ "conversation_id": g, "client_msg_id": "c2", "content": { "type": "text", "text": "from carol" } }),
    )
    .await;
    wb.event(|e| is_change(e, "message") && text_of(e) == "from carol")
        .await;

    // ---- archive ----------------------------------------------------------------------
    let m = srv
        .ok(
            Method::PUT,
            &format!("/v1/conversations/{d}/archive"),
            &a,
            json!({ "archived": true }),
        )
        .await;
    assert_eq!(m["archived"], true);
    let e = wa.event(|e| is_change(e, "archived")).await;
    assert_eq!(
        (e["conversation_id"].clone(), e["kind"]["archived"].clone()),
        (json!(d), json!(true))
    );
    let active = srv.get("/v1/conversations", &a).await;
    assert!(!frames_mention(active.as_array().expect("list"), &d));
    let archived = srv.get("/v1/conversations?archived=true", &a).await;
    assert_eq!(archived[0]["conversation"]["id"], json!(d));
    // Only for A: B still lists it.
    assert!(frames_mention(
        srv.get("/v1/conversations", &b).await.as_array().expect("list"),
        &d
    ));

    // ---- delete for me and for everyone -----------------------------------------------
    let (s, _) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{d}/messages/1?scope=me"),
            Some(&b.token),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    let e = wb.event(|e| is_change(e, "message_hidden")).await;
    assert_eq!(e["kind"]["seq"], 1);
    assert_eq!(srv.get(&format!("/v1/conversations/{d}/messages"), &b).await, json!([]));
    let ah = srv.get(&format!("/v1/conversations/{d}/messages"), &a).await;
    assert_eq!(text_of(&json!({ "kind": { "message": ah[0] } })), "hi bob");
    // Only the sender (or a group admin) deletes for everyone.
    let (s, v) = srv
        .call(
            Method::DELETE,
            &format!("/v1/conversations/{g}/messages/{bseq}?scope=everyone"),
            Some(&c.token),
            None,
        )
        .await;
    assert_eq!((s, v["code"].clone()), (StatusCode::FORBIDDEN, json!("forbidden")));
    let tomb = srv
        .ok(
            Method::DELETE,
            &format!("/v1/conversations/{g}/messages/{bseq}?scope=everyone"),
            &b,
            json!({}),
        )
        .await;
    assert_eq!(tomb["content"], Value::Null);
    for w in [&mut wa, &mut wc] {
        let e = w.event(|e| is_change(e, "message_deleted")).await;
        assert_eq!(e["kind"]["seq"].as_i64(), Some(bseq));
    }
    let gh = srv.get(&format!("/v1/conversations/{g}/messages"), &c).await;
    let deleted = gh
        .as_array()
        .expect("history")
        .iter()
        .find(|m| m["seq"].as_i64() == Some(bseq))
        .expect("tombstone kept");
    assert_eq!(deleted["content"], Value::Null);

    // ---- drop the connection, keep sending, resume with the cursor --------------------
    // The checkpoint after C's last live event gives the cursor that covers it.
    let frames = wc.until(|f| f["type"] == "cursor").await;
    let cursor = frames.last().expect("cursor")["pos"].as_i64().expect("pos");
    assert!(wc.backlog.is_empty());
    wc.stream.close(None).await.expect("close");
    drop(wc);
    wait_connections(&srv, 2).await;
    for i in 1..=5 {
        srv.send_text(&g, &a, &format!("missed-{i}"), &format!("missed-{i}"))
            .await;
    }
    let mut wc = Ws::connect(srv.addr, Some(&c.token), None).await.expect("reconnect");
    wc.expect_ready().await;
    let (events, caught_up) = wc.subscribe(Some(cursor)).await;
    let texts: Vec<&str> = events.iter().map(|f| text_of(&f["event"])).collect();
    assert_eq!(
        texts,
        ["missed-1", "missed-2", "missed-3", "missed-4", "missed-5"],
        "{events:?}"
    );
    let mut positions: Vec<i64> = events
        .iter()
        .map(|f| f["event"]["pos"].as_i64().expect("pos"))
        .collect();
    assert!(positions.iter().all(|p| *p > cursor));
    positions.dedup();
    assert_eq!(positions.len(), 5);
    assert!(caught_up >= *positions.last().expect("pos"));

    // A live message after the resume arrives once, and the next checkpoint does not repeat it.
    srv.send_text(&g, &a, "after", "after-resume").await;
    let frames = wc
        .until(|f| f["type"] == "event" && text_of(&f["event"]) == "after-resume")
        .await;
    assert_eq!(frames.iter().filter(|f| f["type"] == "event").count(), 1, "{frames:?}");
    let frames = wc.until(|f| f["type"] == "cursor").await;
    assert!(frames.iter().all(|f| f["type"] == "cursor"), "{frames:?}");
}

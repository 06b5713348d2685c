//! The hot path of one send through the gateway.
//!
//! - `gateway_send/pipeline_group10`: what the gateway does for one `send` frame, without
//!   sockets: parse the frame, `Engine::send` (membership, validation, the store write),
//!   encode the ack, and dispatch the delivery to the hub's 10 member connections (encoding
//!   the event frame once and queueing it on each).
//! - `gateway_send/websocket_roundtrip`: a real gateway on loopback (bench server
//!   composition, in-memory store) and a logged-in WebSocket client: one send frame, until
//!   both its ack and its own echo event arrived.
//!
//! `cargo bench -p chatico-benches --bench gateway_send`

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use chatico_benches::load::chatico::{Server, next_text, send_frame};
use chatico_benches::load::net::Sources;
use chatico_benches::load::otp::OtpLog;
use chatico_benches::server::{self, ServerOptions, StoreChoice};
use chatico_core::engine::{Engine, SendMessage};
use chatico_core::ids::{Phone, UserId};
use chatico_core::memory::MemoryStore;
use chatico_core::ports::{SmsSender, SystemClock};
use chatico_core::protocol::{AckResult, ClientFrame, ClientRequest, ServerFrame};
use chatico_core::{Config, MemoryOtpCache};
use chatico_transport::gateway::hub::Hub;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::SinkExt;
use tokio_tungstenite::tungstenite::Message;

#[derive(Default)]
struct Codes(Mutex<Vec<(String, String)>>);

#[async_trait]
impl SmsSender for Codes {
    async fn send(&self, to: &Phone, body: &str) -> chatico_core::Result<()> {
        self.0
            .lock()
            .expect("lock")
            .push((to.as_str().to_owned(), body.to_owned()));
        Ok(())
    }
}

async fn login(engine: &Engine, codes: &Codes, n: usize) -> UserId {
    let phone = format!("+1555{n:07}");
    engine.request_otp(&phone, "bench").await.expect("otp");
    let body = codes.0.lock().expect("lock").last().expect("sms").1.clone();
    let (_, code) = chatico_benches::load::otp::parse_line(&format!("{phone} {body}"), 6).expect("code");
    engine
        .verify_otp(&phone, &code, "bench", None)
        .await
        .expect("verify")
        .value
        .user
        .id
}

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let codes = Arc::new(Codes::default());
    let mut cfg = Config::default();
    cfg.auth.otp_requests_per_caller = 10_000;
    cfg.auth.otp_verifications_per_caller = 10_000;
    let engine = Engine::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), cfg)
        .expect("engine")
        .with_local_otp(Arc::new(MemoryOtpCache::new()), codes.clone());
    let (users, conv) = rt.block_on(async {
        let mut users = Vec::new();
        for n in 0..10 {
            users.push(login(&engine, &codes, n).await);
        }
        let conv = engine
            .create_group(users[0], "bench".into(), users[1..].to_vec())
            .await
            .expect("group")
            .value
            .id;
        (users, conv)
    });
    let hub = Hub::new(1 << 16);
    let mut regs: Vec<_> = users.iter().map(|u| hub.register(*u, None).0).collect();
    let n = AtomicU64::new(0);
    let mut g = c.benchmark_group("gateway_send");
    g.throughput(Throughput::Elements(1));
    g.bench_function("pipeline_group10", |b| {
        b.iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let text = send_frame(i, &conv.to_string(), &format!("m{i}"), &"x".repeat(100));
            let frame: ClientFrame = serde_json::from_str(&text).expect("parse");
            let ClientRequest::Send {
                conversation_id,
                client_msg_id,
                content,
                reply_to_seq,
            } = frame.request
            else {
                unreachable!("a send frame")
            };
            let out = rt
                .block_on(engine.send(
                    users[0],
                    SendMessage {
                        conversation_id,
                        client_msg_id,
                        content,
                        reply_to_seq,
                    },
                ))
                .expect("send");
            let ack = serde_json::to_string(&ServerFrame::Ack {
                id: frame.id,
                result: AckResult::Send { message: out.value },
            })
            .expect("ack");
            std::hint::black_box(ack);
            for d in &out.deliveries {
                hub.dispatch(d);
            }
            for r in &mut regs {
                while r.rx.try_recv().is_ok() {}
            }
        })
    });
    g.finish();
}

fn websocket_roundtrip(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let otp_path = std::env::temp_dir().join(format!("chatico-bench-otp-{}.log", std::process::id()));
    std::fs::write(&otp_path, "").expect("otp log");
    let (ws, conv, server) = rt.block_on(async {
        let running = server::start(ServerOptions {
            addr: "127.0.0.1:0".parse().expect("addr"),
            store: StoreChoice::Memory,
            otp_log: otp_path.clone(),
            gateway: server::bench_gateway_config(),
            config: server::bench_config(),
            backplane: None,
            redis_url: None,
            node_id: None,
            schema: None,
        })
        .await
        .expect("server");
        let otp = OtpLog::follow(otp_path.clone(), 6).expect("follow");
        let server = Server::new(&format!("http://{}", running.addr), otp).expect("server");
        let users = server.login_many(0, 2, 2).await.expect("login");
        let conv = server.open_direct(&users[0], &users[1]).await.expect("direct");
        let sources = Sources::loopback(1);
        let (ws, _, _) = server
            .connect_subscribed(&users[0], sources.pick(), None)
            .await
            .expect("connect");
        (ws, conv, (running, server))
    });
    let n = AtomicU64::new(0);
    // Each iteration's future borrows the socket; a mutex hands it over (uncontended).
    let ws = std::sync::Arc::new(tokio::sync::Mutex::new(ws));
    let mut g = c.benchmark_group("gateway_send");
    g.throughput(Throughput::Elements(1));
    g.measurement_time(Duration::from_secs(5));
    g.bench_function("websocket_roundtrip", |b| {
        b.to_async(&rt).iter(|| {
            let i = n.fetch_add(1, Ordering::Relaxed);
            let ws = std::sync::Arc::clone(&ws);
            let conv = &conv;
            async move {
                let mut ws = ws.lock().await;
                let ws = &mut *ws;
                let f = send_frame(i, conv, &format!("w{i}"), &"x".repeat(100));
                ws.send(Message::text(f)).await.expect("send");
                let (mut ack, mut echo) = (false, false);
                while !(ack && echo) {
                    let t = next_text(ws, Duration::from_secs(10)).await.expect("frame");
                    ack |= t.starts_with(r#"{"type":"ack""#);
                    echo |= t.starts_with(r#"{"type":"event""#) && t.contains(&format!("\"w{i}\""));
                }
            }
        })
    });
    g.finish();
    drop(server);
    let _ = std::fs::remove_file(&otp_path);
}

criterion_group!(benches, pipeline, websocket_roundtrip);
criterion_main!(benches);

//! Persisted sends per second, end to end: `pairs` direct conversations, both members
//! connected and subscribed; one member of each pair keeps `window` sends in flight and a
//! send counts when its `ack` arrives (the gateway acknowledges after the store committed).
//! The server's store decides what this measures: start it on SQLite or Postgres.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::chatico::send_frame;
use super::net::{Ws, now_ns};
use super::report::{Report, Run, latency_figures};
use super::{Common, LoadError, payload};

#[derive(Debug, Clone)]
pub struct PersistParams {
    pub pairs: usize,
    pub window: u32,
    pub warmup: Duration,
    pub measure: Duration,
    /// What the server stores into (a label for the report: `sqlite`, `postgres`, `memory`).
    pub store: String,
}

struct Window {
    start: u64,
    end: u64,
    acked: AtomicU64,
    errors: AtomicU64,
    stop: AtomicBool,
}

/// Sends with `window` in flight until told to stop; returns ack latencies inside the window.
async fn sender(
    mut ws: Ws,
    conversation: String,
    prefix: String,
    w: Arc<Window>,
    window: u32,
    bytes: usize,
) -> (Ws, Vec<u64>, Option<String>) {
    let mut inflight = std::collections::HashMap::new();
    let mut samples = Vec::new();
    let mut seq = 0u64;
    loop {
        if !w.stop.load(Ordering::Relaxed) {
            while (inflight.len() as u32) < window {
                seq += 1;
                let t = now_ns();
                let f = send_frame(seq, &conversation, &format!("{prefix}-{seq}"), &payload(t, 0, bytes));
                if let Err(e) = ws.feed(Message::text(f)).await {
                    return (ws, samples, Some(format!("send: {e}")));
                }
                inflight.insert(seq.to_string(), t);
            }
            if let Err(e) = ws.flush().await {
                return (ws, samples, Some(format!("flush: {e}")));
            }
        } else if inflight.is_empty() {
            return (ws, samples, None);
        }
        let m = match tokio::time::timeout(Duration::from_secs(30), ws.next()).await {
            Ok(Some(Ok(m))) => m,
            Ok(other) => return (ws, samples, Some(format!("connection ended: {other:?}"))),
            Err(_) => return (ws, samples, Some("no answer for 30 s".into())),
        };
        let Message::Text(t) = m else { continue };
        let s = t.as_str();
        let ack = s.starts_with(r#"{"type":"ack""#);
        if !ack && !s.starts_with(r#"{"type":"error""#) {
            continue;
        }
        let now = now_ns();
        // `{"type":"ack","id":"17",...`: the id is the frame counter.
        let id = s
            .split("\"id\":\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or("");
        if let Some(sent) = inflight.remove(id) {
            if ack {
                if now >= w.start && now < w.end {
                    w.acked.fetch_add(1, Ordering::Relaxed);
                }
                if sent >= w.start && sent < w.end {
                    samples.push(now - sent);
                }
            } else {
                w.errors.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// Reads and drops everything (the receiving member).
async fn reader(mut ws: Ws, stop: Arc<AtomicBool>) -> Ws {
    while !stop.load(Ordering::Relaxed) {
        match tokio::time::timeout(Duration::from_millis(100), ws.next()).await {
            Ok(Some(Ok(_))) | Err(_) => {}
            Ok(_) => break,
        }
    }
    ws
}

pub async fn run(common: &Common, p: &PersistParams) -> Result<Report, LoadError> {
    let server = common.server()?;
    let mut rep = Report::new(&format!("persist-{}", p.store));
    rep.param("pairs", p.pairs);
    rep.param("window", p.window);
    rep.param("store", &p.store);
    rep.param("payload_bytes", common.payload_bytes);
    rep.param("warmup_s", p.warmup.as_secs_f64());
    rep.param("measure_s", p.measure.as_secs_f64());
    let users = server.login_many(0, p.pairs * 2, common.concurrency).await?;
    let mut convs = Vec::new();
    for pair in users.chunks(2) {
        convs.push(server.open_direct(&pair[0], &pair[1]).await?);
    }
    let mut senders = Vec::new();
    let mut receivers = Vec::new();
    for (i, u) in users.iter().enumerate() {
        let (ws, _, _) = server.connect_subscribed(u, common.sources.pick(), None).await?;
        if i % 2 == 0 {
            senders.push(ws);
        } else {
            receivers.push(ws);
        }
    }
    for r in 0..common.runs.max(1) {
        let start = now_ns() + p.warmup.as_nanos() as u64;
        let w = Arc::new(Window {
            start,
            end: start + p.measure.as_nanos() as u64,
            acked: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let stop_readers = Arc::new(AtomicBool::new(false));
        let rh: Vec<_> = receivers
            .drain(..)
            .map(|ws| tokio::spawn(reader(ws, stop_readers.clone())))
            .collect();
        let sh: Vec<_> = senders
            .drain(..)
            .enumerate()
            .map(|(i, ws)| {
                let prefix = format!("P{}-{r}-{i}", server.tag);
                tokio::spawn(sender(
                    ws,
                    convs[i].clone(),
                    prefix,
                    w.clone(),
                    p.window,
                    common.payload_bytes,
                ))
            })
            .collect();
        tokio::time::sleep(p.warmup + p.measure).await;
        w.stop.store(true, Ordering::Relaxed);
        let mut samples = Vec::new();
        let mut failures = Vec::new();
        for h in sh {
            let (ws, mut s, err) = h.await.map_err(|e| LoadError::Io(format!("sender task: {e}")))?;
            samples.append(&mut s);
            if let Some(e) = err {
                failures.push(e);
            }
            senders.push(ws);
        }
        stop_readers.store(true, Ordering::Relaxed);
        for h in rh {
            receivers.push(h.await.map_err(|e| LoadError::Io(format!("reader task: {e}")))?);
        }
        if let Some(f) = failures.first() {
            return Err(LoadError::Io(format!("{} sender(s) failed: {f}", failures.len())));
        }
        let mut run = Run::default();
        run.set(
            "persisted_sends_per_s",
            w.acked.load(Ordering::Relaxed) as f64 / p.measure.as_secs_f64(),
        );
        run.set("errors", w.errors.load(Ordering::Relaxed) as f64);
        latency_figures(&mut run, "ack_latency", &mut samples, false);
        rep.runs.push(run);
    }
    match p.store.as_str() {
        "sqlite" => rep.target("persisted_sends_per_s", ">=", 50_000.0),
        "postgres" => rep.target("persisted_sends_per_s", ">=", 30_000.0),
        _ => {}
    }
    rep.finish();
    Ok(rep)
}

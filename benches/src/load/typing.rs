//! Typing indicator latency: `pairs` direct conversations; in each, one member sends
//! `typing` frames (alternately true and false) and the other receives the `typing` event.
//! One sample: send → the peer's receipt of the event; the next frame goes after it, so a
//! pair has one indicator in flight at a time (pairs run side by side).

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

use super::chatico::PATIENCE;
use super::net::{Ws, now_ns};
use super::report::{Report, Run, latency_figures};
use super::{Common, LoadError};

#[derive(Debug, Clone)]
pub struct TypingParams {
    pub pairs: usize,
    pub iterations: usize,
}

const TYPING_EVENT: &str = r#"{"type":"event","event":{"event":"typing""#;

/// Forwards the receive time of every typing event until the socket ends or `stop`.
async fn watcher(mut ws: Ws, seen: mpsc::UnboundedSender<u64>, mut stop: tokio::sync::watch::Receiver<bool>) -> Ws {
    loop {
        tokio::select! {
            _ = stop.changed() => return ws,
            m = ws.next() => match m {
                Some(Ok(Message::Text(t))) => {
                    if t.as_str().starts_with(TYPING_EVENT) && seen.send(now_ns()).is_err() {
                        return ws;
                    }
                }
                Some(Ok(_)) => {}
                _ => return ws,
            }
        }
    }
}

async fn typist(
    mut ws: Ws,
    conversation: String,
    mut seen: mpsc::UnboundedReceiver<u64>,
    iterations: usize,
) -> Result<(Ws, Vec<u64>), LoadError> {
    let mut samples = Vec::with_capacity(iterations);
    for i in 0..iterations {
        let f = json!({ "id": i.to_string(), "type": "typing", "conversation_id": conversation, "typing": i % 2 == 0 });
        let t0 = now_ns();
        ws.send(Message::text(f.to_string()))
            .await
            .map_err(|e| LoadError::Io(format!("send typing: {e}")))?;
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            tokio::select! {
                t = seen.recv() => {
                    let t = t.ok_or_else(|| LoadError::Io("peer connection ended".into()))?;
                    samples.push(t.saturating_sub(t0));
                    break;
                }
                m = ws.next() => match m {
                    Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"type":"error""#) => {
                        return Err(LoadError::Setup(format!("typing refused: {t}")));
                    }
                    Some(Ok(_)) => {}
                    other => return Err(LoadError::Io(format!("typist connection ended: {other:?}"))),
                },
                _ = tokio::time::sleep_until(deadline) => {
                    return Err(LoadError::Io("typing event never arrived".into()));
                }
            }
        }
    }
    Ok((ws, samples))
}

pub async fn run(common: &Common, p: &TypingParams) -> Result<Report, LoadError> {
    let server = common.server()?;
    let mut rep = Report::new("typing");
    rep.param("pairs", p.pairs);
    rep.param("iterations_per_pair", p.iterations);
    let users = server.login_many(0, p.pairs * 2, common.concurrency).await?;
    let mut pairs = Vec::new();
    for pair in users.chunks(2) {
        let conv = server.open_direct(&pair[0], &pair[1]).await?;
        let (a, _, _) = server.connect_subscribed(&pair[0], common.sources.pick(), None).await?;
        let (b, _, _) = server.connect_subscribed(&pair[1], common.sources.pick(), None).await?;
        pairs.push((conv, a, b));
    }
    for _ in 0..common.runs.max(1) {
        let (stop, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        for (conv, a, b) in pairs.drain(..) {
            let (tx, rx) = mpsc::unbounded_channel();
            let w = tokio::spawn(watcher(b, tx, stop_rx.clone()));
            let t = tokio::spawn(typist(a, conv.clone(), rx, p.iterations));
            tasks.push((conv, t, w));
        }
        let mut samples = Vec::new();
        let mut results = Vec::new();
        for (conv, t, w) in tasks {
            let r = t.await.map_err(|e| LoadError::Io(format!("typist task: {e}")))?;
            results.push((conv, r, w));
        }
        let _ = stop.send(true);
        for (conv, r, w) in results {
            let (a, mut s) = r?;
            samples.append(&mut s);
            let b = w.await.map_err(|e| LoadError::Io(format!("watcher task: {e}")))?;
            pairs.push((conv, a, b));
        }
        let mut run = Run::default();
        latency_figures(&mut run, "typing", &mut samples, false);
        rep.runs.push(run);
        // Typing indicators from this run expire on their own; nothing to clean up.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    rep.target("typing_p50_ms", "<=", 1.0);
    rep.target("typing_p99_ms", "<=", 5.0);
    rep.finish();
    Ok(rep)
}

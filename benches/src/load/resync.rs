//! Reconnect + resync: a receiver subscribes, remembers its cursor and disconnects; its
//! peer sends `missed` messages (each acknowledged, so committed); then the clock starts and
//! the receiver reconnects (TCP + WebSocket handshake with its token), subscribes from the
//! cursor and reads up to the caught-up `cursor` frame. The time to that frame, with every
//! missed message received, is one sample.

use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

use super::chatico::{PATIENCE, send_frame};
use super::net::now_ns;
use super::report::{Report, Run, latency_figures};
use super::{Common, LoadError, payload};

#[derive(Debug, Clone)]
pub struct ResyncParams {
    pub missed: usize,
    pub iterations: usize,
}

pub async fn run(common: &Common, p: &ResyncParams) -> Result<Report, LoadError> {
    let server = common.server()?;
    let mut rep = Report::new("resync");
    rep.param("missed", p.missed);
    rep.param("iterations_per_run", p.iterations);
    rep.param("payload_bytes", common.payload_bytes);
    let users = server.login_many(0, 2, 2).await?;
    let (sender, receiver) = (&users[0], &users[1]);
    let conv = server.open_direct(sender, receiver).await?;
    let (mut tx, _, _) = server.connect_subscribed(sender, common.sources.pick(), None).await?;
    let mut frame_id = 0u64;
    for r in 0..common.runs.max(1) {
        let mut samples = Vec::with_capacity(p.iterations);
        let mut incomplete = 0u64;
        for it in 0..p.iterations {
            let (mut rx, cursor, _) = server.connect_subscribed(receiver, common.sources.pick(), None).await?;
            let _ = rx.close(None).await;
            drop(rx);
            // The peer sends `missed` messages and waits for every ack (all committed).
            let tag = format!("@R{}-{r}-{it}@", server.tag);
            for i in 0..p.missed {
                frame_id += 1;
                let text = format!("{tag}{}", payload(0, 0, common.payload_bytes.saturating_sub(tag.len())));
                let f = send_frame(frame_id, &conv, &format!("S{}-{r}-{it}-{i}", server.tag), &text);
                tx.feed(Message::text(f))
                    .await
                    .map_err(|e| LoadError::Io(format!("send: {e}")))?;
            }
            tx.flush().await.map_err(|e| LoadError::Io(format!("send: {e}")))?;
            let mut acks = 0;
            while acks < p.missed {
                let m = tokio::time::timeout(PATIENCE, tx.next())
                    .await
                    .map_err(|_| LoadError::Io("acks timed out".into()))?;
                match m {
                    Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"type":"ack""#) => acks += 1,
                    Some(Ok(Message::Text(t))) if t.as_str().starts_with(r#"{"type":"error""#) => {
                        return Err(LoadError::Setup(format!("send refused: {t}")));
                    }
                    Some(Ok(_)) => {}
                    other => return Err(LoadError::Io(format!("sender connection ended: {other:?}"))),
                }
            }
            let t0 = now_ns();
            let (mut rx, _, events) = server
                .connect_subscribed(receiver, common.sources.pick(), Some(cursor))
                .await?;
            let t1 = now_ns();
            let got = events.iter().filter(|e| e.contains(&tag)).count();
            if got != p.missed {
                incomplete += 1;
            }
            samples.push(t1 - t0);
            let _ = rx.close(None).await;
            // Keep the sender's connection read (its own echoes) between iterations.
            while let Ok(Some(Ok(_))) = tokio::time::timeout(Duration::from_millis(1), tx.next()).await {}
        }
        let mut run = Run::default();
        latency_figures(&mut run, "resync", &mut samples, false);
        run.set("incomplete_resyncs", incomplete as f64);
        rep.runs.push(run);
    }
    rep.target("resync_p99_ms", "<=", 20.0);
    rep.target("incomplete_resyncs", "<=", 0.0);
    rep.notes.push(
        "one sample: reconnect (TCP + WebSocket handshake with the bearer token, ready) + subscribe from the \
         cursor + every missed message + the caught-up cursor"
            .into(),
    );
    rep.finish();
    Ok(rep)
}

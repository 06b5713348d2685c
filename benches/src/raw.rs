//! The raw bound: a minimal tokio-tungstenite broadcast server. No auth, no storage, no
//! protocol: a client connects to `ws://ADDR/?group=N` and every text frame it sends is
//! written to every connection of group `N`, the sender included (as ChatiCO delivers a
//! message to every member's connections, the sender's own included).
//!
//! It is what a WebSocket fan-out costs on this machine with the same runtime and WebSocket
//! library and nothing else, so BENCHMARKS.md states ChatiCO's fan-out as a ratio of it.
//! Like the gateway, each connection has a bounded outbound queue (a `broadcast` channel
//! per group: a reader that falls behind by more than the capacity is closed, as ChatiCO
//! closes a slow consumer), and a writer flushes once per batch of queued frames.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use futures::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};

/// Frames queued per group before a lagging reader is dropped (the gateway's default
/// per-connection queue is 256).
pub const GROUP_QUEUE: usize = 256;
/// Frames written before one flush (as the gateway).
const WRITE_BATCH: usize = 64;

type Groups = Arc<Mutex<HashMap<u64, broadcast::Sender<Utf8Bytes>>>>;

/// Accepts and serves connections until the task is dropped.
pub async fn serve(listener: TcpListener) -> std::io::Result<()> {
    let groups: Groups = Arc::default();
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(connection(stream, groups.clone()));
    }
}

/// Binds `addr` and serves in a spawned task; returns the bound address.
pub async fn spawn(addr: SocketAddr) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<std::io::Result<()>>)> {
    let listener = TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    Ok((bound, tokio::spawn(serve(listener))))
}

fn group_of(uri: &str) -> u64 {
    uri.split_once('?')
        .map(|(_, q)| q)
        .unwrap_or("")
        .split('&')
        .find_map(|kv| kv.strip_prefix("group="))
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

async fn connection(stream: TcpStream, groups: Groups) {
    let mut group = 0u64;
    // The callback's signature (an `ErrorResponse` as the error) is tungstenite's, not ours.
    #[allow(clippy::result_large_err)]
    let callback = |req: &Request, resp: Response| {
        group = group_of(&req.uri().to_string());
        Ok(resp)
    };
    // The same buffers as the gateway's defaults: a 1 KiB read buffer, and writes buffered
    // up to 16 KiB until the flush that ends each batch (tungstenite's own defaults, 128 KiB
    // each, would cost a 100k-connection server gigabytes).
    let cfg = WebSocketConfig::default()
        .read_buffer_size(1024)
        .write_buffer_size(16 * 1024)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024));
    let ws = match tokio_tungstenite::accept_hdr_async_with_config(stream, callback, Some(cfg)).await {
        Ok(ws) => ws,
        Err(_) => return,
    };
    let tx = {
        let mut g = groups.lock().unwrap_or_else(|e| e.into_inner());
        g.entry(group)
            .or_insert_with(|| broadcast::channel(GROUP_QUEUE).0)
            .clone()
    };
    let mut rx = tx.subscribe();
    let (mut sink, mut source) = ws.split();
    let writer = async move {
        loop {
            let first = match rx.recv().await {
                Ok(f) => f,
                // Fell behind by more than the queue: a slow consumer, closed.
                Err(_) => return,
            };
            if sink.feed(Message::Text(first)).await.is_err() {
                return;
            }
            for _ in 1..WRITE_BATCH {
                match rx.try_recv() {
                    Ok(f) => {
                        if sink.feed(Message::Text(f)).await.is_err() {
                            return;
                        }
                    }
                    Err(broadcast::error::TryRecvError::Empty) => break,
                    Err(_) => return,
                }
            }
            if sink.flush().await.is_err() {
                return;
            }
        }
    };
    let reader = async {
        while let Some(Ok(m)) = source.next().await {
            match m {
                Message::Text(t) => {
                    let _ = tx.send(t);
                }
                Message::Close(_) => return,
                _ => {}
            }
        }
    };
    tokio::select! {
        _ = writer => {}
        _ = reader => {}
    }
}

#[cfg(test)]
mod tests {
    use super::group_of;

    #[test]
    fn the_group_comes_from_the_query() {
        assert_eq!(group_of("/?group=7"), 7);
        assert_eq!(group_of("/x?a=1&group=12"), 12);
        assert_eq!(group_of("/"), 0);
        assert_eq!(group_of("/?group=zz"), 0);
    }
}

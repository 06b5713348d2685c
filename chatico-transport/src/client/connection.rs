//! The connection task: the socket half of the native driver.
//!
//! It owns at most one WebSocket (tokio-tungstenite). It opens one when the machine says
//! [`Io::Open`] (getting a fresh access token first), writes the frames the machine hands it,
//! and feeds back what the socket does — opened, a frame, a ping, closed — and the passing of
//! time (it sleeps until the machine's next deadline). Every decision is the machine's
//! ([`chatico_core::client::ClientMachine`]).

use std::sync::Arc;
use std::time::Duration;

use chatico_core::client::ConnId;
use chatico_core::error::{Error, Result};
use chatico_core::protocol::{ClientFrame, SUBPROTOCOL_JSON, ServerFrame, close_code};
use futures::stream::{SplitSink, SplitStream};
use futures::{SinkExt, StreamExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream, tungstenite::Message as WsMessage};

use super::rest::{access_token, paths, refresh_after};
use super::{Inner, now_ms};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// Socket work the machine asks for.
pub(crate) enum Io {
    Open { conn: ConnId, refresh: bool },
    Write { conn: ConnId, frame: ClientFrame },
    Close { conn: ConnId, code: u16, reason: String },
}

/// The open socket.
struct Socket {
    conn: ConnId,
    sink: SplitSink<Ws, WsMessage>,
}

/// Runs until `stop` turns true (the machine was told first).
pub(crate) async fn run(inner: Arc<Inner>, mut rx: mpsc::UnboundedReceiver<Io>, mut stop: watch::Receiver<bool>) {
    let mut socket: Option<Socket> = None;
    let mut stream: Option<SplitStream<Ws>> = None;
    // Frames fed to the socket and not flushed yet (more were queued behind them).
    let mut unflushed = false;
    loop {
        if unflushed && rx.is_empty() {
            unflushed = false;
            if let Some(s) = socket.as_mut()
                && let Err(e) = s.sink.flush().await
            {
                let conn = s.conn;
                socket = None;
                stream = None;
                inner.with_machine(|m| m.closed(now_ms(), conn, format!("websocket write: {e}"), false));
            }
        }
        // A plain read: `with_machine` would wake this loop again.
        let deadline = inner.read(|m| m.poll_timeout()).flatten();
        let sleep = async {
            match deadline {
                Some(t) => tokio::time::sleep(Duration::from_millis(u64::try_from(t - now_ms()).unwrap_or(0))).await,
                None => std::future::pending().await,
            }
        };
        let read = async {
            match stream.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = stop.changed() => break,
            io = rx.recv() => match io {
                None => break,
                Some(Io::Open { conn, refresh }) => {
                    socket = None;
                    stream = None;
                    let opened = tokio::select! {
                        r = open(&inner, refresh) => r,
                        _ = stop.changed() => break,
                    };
                    match opened {
                        Ok(ws) => {
                            if inner.with_machine(|m| m.opened(now_ms(), conn, None)) == Some(true) {
                                let (sink, s) = ws.split();
                                socket = Some(Socket { conn, sink });
                                stream = Some(s);
                            }
                        }
                        Err(Failure::LoggedOut) => {
                            inner.with_machine(|m| m.logged_out(now_ms()));
                        }
                        Err(Failure::Retry { reason, unauthorized }) => {
                            inner.with_machine(|m| m.closed(now_ms(), conn, reason, unauthorized));
                        }
                    }
                }
                Some(Io::Write { conn, frame }) => {
                    let Some(s) = socket.as_mut().filter(|s| s.conn == conn) else { continue };
                    // Flush once the queue is drained: a burst of frames goes out together.
                    let flush = rx.is_empty();
                    unflushed = !flush;
                    if let Err(e) = write(&mut s.sink, frame, flush).await {
                        socket = None;
                        stream = None;
                        inner.with_machine(|m| m.closed(now_ms(), conn, format!("websocket write: {e}"), false));
                    }
                }
                Some(Io::Close { conn, code, reason }) => {
                    if let Some(mut s) = socket.take().filter(|s| s.conn == conn) {
                        stream = None;
                        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
                        let _ = tokio::time::timeout(Duration::from_secs(1), s.sink.send(WsMessage::Close(Some(frame)))).await;
                    }
                }
            },
            msg = read => {
                let Some(conn) = socket.as_ref().map(|s| s.conn) else { continue };
                let now = now_ms();
                let lost = match msg {
                    None => Some(("the server closed the stream".to_owned(), false)),
                    Some(Err(e)) => Some((format!("websocket: {e}"), false)),
                    Some(Ok(WsMessage::Text(t))) => {
                        match serde_json::from_str::<ServerFrame>(t.as_str()) {
                            Ok(frame) => { inner.with_machine(|m| m.frame(now, conn, frame)); }
                            Err(e) => {
                                tracing::warn!(error = %e, "unreadable server frame");
                                inner.with_machine(|m| m.unreadable(now, conn));
                            }
                        }
                        None
                    }
                    Some(Ok(WsMessage::Close(frame))) => {
                        let code = frame.as_ref().map(|f| u16::from(f.code));
                        Some((format!("closed by the server ({code:?})"), code == Some(close_code::UNAUTHORIZED)))
                    }
                    Some(Ok(_)) => {
                        inner.with_machine(|m| m.heard(now, conn));
                        None
                    }
                };
                if let Some((reason, unauthorized)) = lost {
                    tracing::debug!(%reason, "connection lost");
                    socket = None;
                    stream = None;
                    inner.with_machine(|m| m.closed(now, conn, reason, unauthorized));
                }
            }
            _ = sleep => { inner.with_machine(|m| m.tick(now_ms())); }
            _ = inner.wake.notified() => {}
        }
    }
    if let Some(mut s) = socket {
        let frame = CloseFrame {
            code: CloseCode::Normal,
            reason: "client disconnect".into(),
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), s.sink.send(WsMessage::Close(Some(frame)))).await;
    }
}

/// Why a socket could not be opened.
enum Failure {
    /// The session is over.
    LoggedOut,
    Retry {
        reason: String,
        unauthorized: bool,
    },
}

async fn open(inner: &Inner, refresh: bool) -> std::result::Result<Ws, Failure> {
    let token = if refresh {
        let stale = inner
            .session
            .lock()
            .await
            .as_ref()
            .map(|s| s.access_token.clone())
            .unwrap_or_default();
        refresh_after(inner, &stale).await
    } else {
        access_token(inner).await
    };
    let token = match token {
        Ok(t) => t,
        Err(Error::Unauthorized { .. }) => return Err(Failure::LoggedOut),
        Err(e) => {
            return Err(Failure::Retry {
                reason: format!("token: {e}"),
                unauthorized: false,
            });
        }
    };
    connect(inner, &token).await.map_err(|e| Failure::Retry {
        unauthorized: matches!(e, Error::Unauthorized { .. }),
        reason: format!("connect: {e}"),
    })
}

/// The WebSocket URL derived from the base URL.
fn ws_url(base: &str) -> Result<String> {
    let base = base.trim_end_matches('/');
    let rest = if let Some(r) = base.strip_prefix("https://") {
        format!("wss://{r}")
    } else if let Some(r) = base.strip_prefix("http://") {
        format!("ws://{r}")
    } else {
        return Err(Error::invalid("base_url", "must start with http:// or https://"));
    };
    Ok(format!("{rest}{}", paths::WS))
}

async fn connect(inner: &Inner, token: &str) -> Result<Ws> {
    let mut req = ws_url(&inner.config.base_url)?
        .into_client_request()
        .map_err(|e| Error::invalid("base_url", e.to_string()))?;
    let h = req.headers_mut();
    h.insert("Sec-WebSocket-Protocol", HeaderValue::from_static(SUBPROTOCOL_JSON));
    h.insert(
        "Authorization",
        HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| Error::internal("token is not a header value"))?,
    );
    let connect = tokio_tungstenite::connect_async(req);
    match tokio::time::timeout(inner.config.request_timeout, connect).await {
        Err(_) => Err(Error::unavailable("websocket handshake timed out")),
        Ok(Err(tokio_tungstenite::tungstenite::Error::Http(resp))) if resp.status() == 401 => {
            Err(Error::unauthorized("websocket handshake refused the token"))
        }
        Ok(Err(e)) => Err(Error::unavailable(format!("websocket: {e}"))),
        Ok(Ok((ws, _))) => Ok(ws),
    }
}

async fn write(
    sink: &mut SplitSink<Ws, WsMessage>,
    frame: ClientFrame,
    flush: bool,
) -> std::result::Result<(), String> {
    let text = serde_json::to_string(&frame).map_err(|e| e.to_string())?;
    sink.feed(WsMessage::text(text)).await.map_err(|e| e.to_string())?;
    if flush {
        sink.flush().await.map_err(|e| e.to_string())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_base_url() {
        assert_eq!(
            ws_url("http://127.0.0.1:8080").ok(),
            Some("ws://127.0.0.1:8080/v1/ws".into())
        );
        assert_eq!(
            ws_url("https://chat.test/api/").ok(),
            Some("wss://chat.test/api/v1/ws".into())
        );
        assert!(ws_url("ftp://x").is_err());
    }
}

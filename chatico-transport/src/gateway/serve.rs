//! Serving the gateway on a TCP listener with the protections a public server needs: a
//! header-read timeout and a cap on open connections (slowloris), and a shutdown that sends
//! every WebSocket its 1001 before it returns.
//!
//! [`Gateway::serve`] is what the example server and the embedding example use; a host with
//! its own server (TLS, HTTP/2, another framework) keeps its own and calls
//! [`Gateway::shutdown`] before its runtime stops.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, watch};
use tower::Layer;

use super::Gateway;

/// Connection-level limits of [`Gateway::serve`]. See each field for its default.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServeConfig {
    /// Time a client has to send a request's complete header, counted from when the server
    /// starts waiting for it (for the first request, and for each next request on a
    /// keep-alive connection, so it also ends idle keep-alive connections). A connection
    /// that misses it is closed. Default 10 s.
    pub header_read_timeout: Duration,
    /// Most connections open at once — HTTP connections and WebSockets (a WebSocket keeps
    /// its slot until its socket closes). At the cap the server stops accepting: new
    /// connections wait in the kernel's listen queue and are accepted, in order, as slots
    /// free up (a held slot frees within `header_read_timeout` unless its client really
    /// sends requests), instead of being refused or running the process out of file
    /// descriptors. `0` (the default) derives it from the open-file limit: the soft
    /// `RLIMIT_NOFILE` minus 128 descriptors kept for the database, logs and uploads (at
    /// least 64; 10 000 where the limit cannot be read).
    pub max_connections: usize,
    /// After the gateway's WebSockets are closed, how long in-flight HTTP requests may take
    /// to finish before `serve` returns anyway. Default 10 s.
    pub drain_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            max_connections: 0,
            drain_timeout: Duration::from_secs(10),
        }
    }
}

/// Descriptors kept free for everything that is not a client connection.
const RESERVED_FDS: u64 = 128;

impl ServeConfig {
    /// The connection cap in effect (see `max_connections`).
    pub fn connection_cap(&self) -> usize {
        if self.max_connections > 0 {
            return self.max_connections;
        }
        #[cfg(unix)]
        if let Ok((soft, _)) = rlimit::getrlimit(rlimit::Resource::NOFILE) {
            return usize::try_from(soft.saturating_sub(RESERVED_FDS).max(64)).unwrap_or(usize::MAX);
        }
        10_000
    }
}

/// A client socket holding one connection slot until it is dropped (for a WebSocket: when
/// its connection task ends, since the upgraded stream owns it).
struct Slot {
    io: TcpStream,
    _permit: OwnedSemaphorePermit,
}

impl AsyncRead for Slot {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Slot {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

impl Gateway {
    /// Serves `app` (this gateway's [`Gateway::router`], alone or nested in a host's router)
    /// on `listener` over HTTP/1.1 with WebSocket upgrades, until `signal` resolves; see
    /// [`ServeConfig`] for the limits. Requests see the client address as
    /// `ConnectInfo<SocketAddr>` (OTP rate limits key on it).
    ///
    /// On `signal`: stops accepting, runs [`Gateway::shutdown`] (every WebSocket gets its
    /// 1001 close frame and ends), lets in-flight HTTP requests finish (at most
    /// `drain_timeout`), then returns. The process may exit right after.
    pub async fn serve(
        &self,
        listener: TcpListener,
        app: Router,
        config: ServeConfig,
        signal: impl Future<Output = ()> + Send,
    ) -> io::Result<()> {
        let cap = config.connection_cap();
        let slots = Arc::new(Semaphore::new(cap));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(config.header_read_timeout);
        tracing::debug!(cap, header_read_timeout = ?config.header_read_timeout, "serving");
        tokio::pin!(signal);
        loop {
            let permit = tokio::select! {
                _ = &mut signal => break,
                p = slots.clone().acquire_owned() => match p {
                    Ok(p) => p,
                    Err(_) => break,
                },
            };
            if slots.available_permits() == 0 {
                tracing::debug!(cap, "connection cap reached; new connections wait in the listen queue");
            }
            let (stream, remote) = tokio::select! {
                _ = &mut signal => break,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors or a connection reset before accept: wait a
                        // little (a tight loop would spin) and go on.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            // Frames go out at once instead of waiting behind an unacknowledged one (Nagle).
            let _ = stream.set_nodelay(true);
            let io = TokioIo::new(Slot {
                io: stream,
                _permit: permit,
            });
            let svc = TowerToHyperService::new(axum::Extension(ConnectInfo::<SocketAddr>(remote)).layer(app.clone()));
            let conn = http.serve_connection(io, svc).with_upgrades();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                tokio::pin!(conn);
                let r = tokio::select! {
                    r = conn.as_mut() => r,
                    _ = async { stop.wait_for(|s| *s).await.map(|_| ()) } => {
                        conn.as_mut().graceful_shutdown();
                        conn.await
                    }
                };
                if let Err(e) = r {
                    tracing::debug!(error = %e, %remote, "http connection ended with an error");
                }
                drop(stop);
            });
        }
        drop(listener);
        tracing::info!("shutting down: closing WebSockets with 1001 going away, draining requests");
        let left = self.shutdown().await;
        if left > 0 {
            tracing::warn!(left, "WebSockets still open at the shutdown deadline");
        }
        stop_tx.send_replace(true);
        drop(stop_rx);
        if tokio::time::timeout(config.drain_timeout, stop_tx.closed())
            .await
            .is_err()
        {
            tracing::warn!("HTTP requests still running at the drain deadline");
        }
        Ok(())
    }
}

//! A TCP fault proxy: put it between a process and a service (a node and its broker) and
//! switch what the network does, for every connection through it at once.
//!
//! - [`Fault::Pass`]: bytes flow.
//! - [`Fault::Latency`]: each chunk is held this long before it is forwarded.
//! - [`Fault::Blackhole`]: nothing moves in either direction, nothing is closed (a silent
//!   stall: TCP stays up, bytes wait in the buffers); new connections are accepted and
//!   stall too. Back to `Pass`, the held bytes flow on.
//! - [`Fault::Reset`]: every connection is reset (RST) now; new ones are accepted.
//! - [`Fault::Down`]: every connection is reset and new ones are reset at once (the service
//!   looks gone), until the mode changes.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// What the proxy does to the traffic. See the module docs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward everything.
    Pass,
    /// Forward every chunk after this delay.
    Latency(Duration),
    /// Forward nothing, close nothing.
    Blackhole,
    /// Reset every open connection (a one-off; new connections pass).
    Reset,
    /// Reset every open and every new connection.
    Down,
}

/// A running fault proxy; stops (and resets its connections) when dropped.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    mode: watch::Sender<(Fault, u64)>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// A proxy on a free port of 127.0.0.1 forwarding to `upstream`, in [`Fault::Pass`].
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let (mode, rx) = watch::channel((Fault::Pass, 0));
        let task = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    continue;
                };
                let rx = rx.clone();
                let (fault, _) = *rx.borrow();
                if fault == Fault::Down {
                    reset(client);
                    continue;
                }
                tokio::spawn(serve(client, upstream, rx));
            }
        });
        FaultProxy { addr, mode, task }
    }

    /// The port clients connect to.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Switches every connection (open and new) to `fault`.
    pub fn set(&self, fault: Fault) {
        self.mode.send_modify(|(f, generation)| {
            *f = fault;
            *generation += 1;
        });
    }

    /// The current mode.
    pub fn fault(&self) -> Fault {
        self.mode.borrow().0
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.set(Fault::Down);
        self.task.abort();
    }
}

/// Closes with RST (linger 0) rather than FIN.
fn reset(stream: TcpStream) {
    let _ = stream.set_zero_linger();
    drop(stream);
}

async fn serve(client: TcpStream, upstream: SocketAddr, mut rx: watch::Receiver<(Fault, u64)>) {
    let start = rx.borrow_and_update().1;
    let server = match TcpStream::connect(upstream).await {
        Ok(s) => s,
        Err(_) => return reset(client),
    };
    // Every close of either socket is a reset: when the proxy gives a connection up, both
    // ends learn at once.
    for s in [&client, &server] {
        let _ = s.set_nodelay(true);
        let _ = s.set_zero_linger();
    }
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    // Whichever direction ends (EOF, error, reset asked) ends the connection: the other
    // direction is dropped with it.
    tokio::select! {
        _ = pump(cr, sw, rx.clone(), start) => {}
        _ = pump(sr, cw, rx, start) => {}
    }
}

/// Whether the connection must be reset now, waiting while blackholed.
async fn hold(rx: &mut watch::Receiver<(Fault, u64)>, start: u64) -> bool {
    loop {
        let (fault, generation) = *rx.borrow_and_update();
        match fault {
            Fault::Reset if generation > start => return true,
            Fault::Down => return true,
            Fault::Blackhole => {
                if rx.changed().await.is_err() {
                    return true;
                }
            }
            _ => return false,
        }
    }
}

/// Forwards one direction until EOF, an error or a reset.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut rx: watch::Receiver<(Fault, u64)>,
    start: u64,
) {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if hold(&mut rx, start).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => {
                    let _ = to.shutdown().await;
                    return;
                }
                Ok(n) => n,
            },
            // A mode change: look again before reading.
            r = rx.changed() => {
                if r.is_err() {
                    return;
                }
                continue;
            }
        };
        let fault = rx.borrow().0;
        if let Fault::Latency(d) = fault {
            tokio::time::sleep(d).await;
        }
        // A blackhole switched on while this chunk was read: hold it until it passes.
        if hold(&mut rx, start).await {
            return;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

//! Idle connections: `connections` authenticated (and subscribed) WebSockets held open for
//! `hold`, and the server's memory per connection: (RSS with them open − RSS before they
//! opened) / connections. ChatiCO users are logged in before the baseline is read, so what
//! a user costs in the store is not counted, only what a connection costs.
//!
//! Memory a server freed is usually kept by its allocator, so only a run against a freshly
//! started server measures cleanly: run this scenario with `--runs 1` and restart the server
//! between runs (`benches/run.sh` does).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use futures::StreamExt;
use tokio::sync::watch;
use tokio_tungstenite::tungstenite::Message;

use super::net::{Ws, rss_bytes, ws_connect};
use super::report::{Report, Run};
use super::{Common, LoadError};

#[derive(Debug, Clone)]
pub struct IdleParams {
    pub connections: usize,
    pub hold: Duration,
    /// Subscribe each ChatiCO connection to live events (as a real client does).
    pub subscribe: bool,
    pub chatico: bool,
    pub raw: bool,
}

/// Holds a connection open, reading (the codec answers the server's pings) until told to stop.
async fn hold(mut ws: Ws, mut stop: watch::Receiver<bool>, closed: Arc<AtomicU64>) {
    loop {
        tokio::select! {
            _ = stop.changed() => {
                let _ = ws.close(None).await;
                return;
            }
            m = ws.next() => match m {
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => {
                    closed.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some(Ok(_)) => {}
            }
        }
    }
}

async fn settle_rss(pid: u32) -> Option<u64> {
    // Let the server finish the work the handshakes queued before reading its memory.
    tokio::time::sleep(Duration::from_secs(2)).await;
    rss_bytes(pid)
}

async fn measure(
    name: &str,
    pid: Option<u32>,
    socks: impl std::future::Future<Output = Result<Vec<Ws>, LoadError>>,
    p: &IdleParams,
    run: &mut Run,
) -> Result<(), LoadError> {
    let before = match pid {
        Some(pid) => settle_rss(pid).await,
        None => None,
    };
    let started = tokio::time::Instant::now();
    let socks = socks.await?;
    run.set(
        format!("{name}_connect_per_s"),
        socks.len() as f64 / started.elapsed().as_secs_f64(),
    );
    let after = match pid {
        Some(pid) => settle_rss(pid).await,
        None => None,
    };
    let n = socks.len();
    let closed = Arc::new(AtomicU64::new(0));
    let (stop, rx) = watch::channel(false);
    let handles: Vec<_> = socks
        .into_iter()
        .map(|ws| tokio::spawn(hold(ws, rx.clone(), closed.clone())))
        .collect();
    tokio::time::sleep(p.hold).await;
    let held_rss = pid.and_then(rss_bytes);
    run.set(format!("{name}_connections"), n as f64);
    run.set(
        format!("{name}_still_open_after_hold"),
        (n as u64).saturating_sub(closed.load(Ordering::Relaxed)) as f64,
    );
    if let (Some(b), Some(a)) = (before, after) {
        run.set(format!("{name}_rss_before_mib"), b as f64 / 1048576.0);
        run.set(format!("{name}_rss_with_connections_mib"), a as f64 / 1048576.0);
        run.set(
            format!("{name}_bytes_per_connection"),
            a.saturating_sub(b) as f64 / n.max(1) as f64,
        );
    }
    if let (Some(b), Some(h)) = (before, held_rss) {
        run.set(
            format!("{name}_bytes_per_connection_after_hold"),
            h.saturating_sub(b) as f64 / n.max(1) as f64,
        );
    }
    let _ = stop.send(true);
    for h in handles {
        let _ = h.await;
    }
    Ok(())
}

pub async fn run(common: &Common, p: &IdleParams) -> Result<Report, LoadError> {
    let mut rep = Report::new("idle");
    rep.param("connections", p.connections);
    rep.param("hold_s", p.hold.as_secs_f64());
    rep.param("subscribe", p.subscribe);
    rep.param("source_addresses", common.sources.len());
    let fd_limit = super::net::raise_fd_limit();
    rep.param("client_fd_limit", fd_limit);
    let needed = (p.connections * (usize::from(p.chatico) + usize::from(p.raw))) as u64 + 256;
    if fd_limit < needed {
        return Err(LoadError::Usage(format!(
            "{} connections need about {needed} open files but this process may open {fd_limit} \
             (the hard limit, `ulimit -Hn`); raise it as root (e.g. `prlimit --nofile=1100000`) or use fewer",
            p.connections
        )));
    }
    let per_addr = 28_000;
    if p.connections > per_addr * common.sources.len() {
        rep.notes.push(format!(
            "{} connections from {} source address(es) may exhaust ephemeral ports (~28k each): use --source-addrs {}",
            p.connections,
            common.sources.len(),
            p.connections.div_ceil(per_addr)
        ));
    }
    let chatico_users = match (p.chatico, &common.server) {
        (true, Some(s)) => Some(s.login_many(0, p.connections, common.concurrency).await?),
        (true, None) => return Err(LoadError::Usage("idle on chatico needs --url and --otp-log".into())),
        _ => None,
    };
    let chatico_pid = common.chatico_pid();
    let raw_pid = common.raw_server_pid();
    for _ in 0..common.runs.max(1) {
        let mut run = Run::default();
        if let (Some(users), Some(server)) = (&chatico_users, &common.server) {
            if chatico_pid.is_none() {
                rep.notes
                    .push("ChatiCO server pid unknown (give --server-pid): memory not measured".into());
            }
            let socks = async {
                let r: Vec<Result<Ws, LoadError>> = futures::stream::iter(users.iter())
                    .map(|u| {
                        let src = common.sources.pick();
                        async move {
                            if p.subscribe {
                                server.connect_subscribed(u, src, None).await.map(|(ws, _, _)| ws)
                            } else {
                                server.connect(u, src).await
                            }
                        }
                    })
                    .buffer_unordered(common.concurrency.max(1))
                    .collect()
                    .await;
                r.into_iter().collect::<Result<Vec<_>, _>>()
            };
            measure("chatico", chatico_pid, socks, p, &mut run).await?;
        }
        if p.raw {
            let url = common
                .raw_url
                .as_deref()
                .ok_or_else(|| LoadError::Usage("idle on the raw bound needs --raw-url".into()))?;
            let base = url.trim_end_matches('/');
            let socks = async {
                let r: Vec<Result<Ws, LoadError>> = futures::stream::iter(0..p.connections)
                    .map(|i| {
                        let src = common.sources.pick();
                        let url = format!("{base}/?group={}", i / 100);
                        async move { ws_connect(&url, src, &[]).await }
                    })
                    .buffer_unordered(common.concurrency.max(1))
                    .collect()
                    .await;
                r.into_iter().collect::<Result<Vec<_>, _>>()
            };
            measure("raw", raw_pid, socks, p, &mut run).await?;
        }
        rep.runs.push(run);
    }
    if p.chatico {
        rep.target("chatico_bytes_per_connection", "<=", 4096.0);
        rep.target("chatico_connections", ">=", 100_000.0);
    }
    rep.finish();
    Ok(rep)
}

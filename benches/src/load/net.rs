//! Sockets of the load tool: loopback-only targets, several source addresses, the open-file
//! limit, a shared monotonic clock, and reading a server's memory from `/proc`.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::LoadError;

/// A client WebSocket over a plain TCP stream.
pub type Ws = WebSocketStream<TcpStream>;

static EPOCH: OnceLock<Instant> = OnceLock::new();

/// Nanoseconds on one monotonic clock shared by every task of the tool (send stamps and
/// receive times are compared on it).
pub fn now_ns() -> u64 {
    EPOCH.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// The same clock, for an `Instant` (a scheduled send time).
pub fn instant_ns(at: Instant) -> u64 {
    let epoch = *EPOCH.get_or_init(Instant::now);
    at.saturating_duration_since(epoch).as_nanos() as u64
}

/// Raises the soft open-file limit to the hard limit; returns the limit now in force.
pub fn raise_fd_limit() -> u64 {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(error = %e, "could not raise the open-file limit");
            rlimit::getrlimit(rlimit::Resource::NOFILE)
                .map(|(soft, _)| soft)
                .unwrap_or(1024)
        }
    }
}

/// Source addresses 127.0.0.1 ..= 127.0.0.N: each has its own ~28k ephemeral ports, so N of
/// them reach N × 28k connections to one server port.
#[derive(Debug)]
pub struct Sources {
    addrs: Vec<IpAddr>,
    next: AtomicUsize,
}

impl Sources {
    pub fn loopback(n: usize) -> Sources {
        let n = n.clamp(1, 250);
        Sources {
            addrs: (1..=n as u8).map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 0, i))).collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// The next source address, round robin.
    pub fn pick(&self) -> IpAddr {
        self.addrs[self.next.fetch_add(1, Ordering::Relaxed) % self.addrs.len()]
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }
}

/// Resolves the host and port of a `ws://` or `http://` URL; refuses anything that is not
/// a loopback address (this tool only ever loads a server on this machine).
pub fn loopback_addr(url: &str) -> Result<SocketAddr, LoadError> {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .ok_or_else(|| LoadError::Usage(format!("`{url}` is not a URL")))?;
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let (host, port) = match authority.rsplit_once(':') {
        Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
            h,
            p.parse::<u16>()
                .map_err(|_| LoadError::Usage(format!("bad port in `{url}`")))?,
        ),
        _ => (authority, 80),
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let ip: IpAddr = if host.eq_ignore_ascii_case("localhost") {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    } else {
        host.parse()
            .map_err(|_| LoadError::Usage(format!("`{host}` is not an IP address (use 127.0.0.1)")))?
    };
    if !ip.is_loopback() {
        return Err(LoadError::Usage(format!(
            "{ip} is not a loopback address: chatico-load only loads servers on this machine"
        )));
    }
    Ok(SocketAddr::new(ip, port))
}

/// Client WebSocket buffers kept small so 100k clients fit in one process.
pub fn client_ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_message_size(Some(16 << 20))
        .max_frame_size(Some(16 << 20))
}

/// Opens a WebSocket to `url` from source address `src` with extra request headers.
pub async fn ws_connect(url: &str, src: IpAddr, headers: &[(&'static str, String)]) -> Result<Ws, LoadError> {
    let addr = loopback_addr(url)?;
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| LoadError::Io(format!("socket: {e}")))?;
    if src.is_ipv4() == addr.is_ipv4() {
        socket
            .bind(SocketAddr::new(src, 0))
            .map_err(|e| LoadError::Io(format!("bind {src}: {e}")))?;
    }
    let stream = socket
        .connect(addr)
        .await
        .map_err(|e| LoadError::Io(format!("connect {addr} from {src}: {e}")))?;
    let _ = stream.set_nodelay(true);
    let mut req = url
        .into_client_request()
        .map_err(|e| LoadError::Usage(format!("bad URL `{url}`: {e}")))?;
    for (k, v) in headers {
        let v = HeaderValue::from_str(v).map_err(|e| LoadError::Usage(format!("header {k}: {e}")))?;
        req.headers_mut().insert(*k, v);
    }
    let (ws, _) = tokio_tungstenite::client_async_with_config(req, stream, Some(client_ws_config()))
        .await
        .map_err(|e| LoadError::Io(format!("websocket handshake with {url}: {e}")))?;
    Ok(ws)
}

/// Resident memory of a process, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The process listening on TCP `port` on this machine, found through `/proc/net/tcp*` and
/// the socket inodes in `/proc/*/fd` (needs permission to read the server's fds).
pub fn pid_listening_on(port: u16) -> Option<u32> {
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() < 10 || cols[3] != "0A" {
                continue;
            }
            let local_port = cols[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port) {
                inodes.push(format!("socket:[{}]", cols[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path())
                && inodes.iter().any(|i| target.as_os_str() == i.as_str())
            {
                return Some(pid);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets_are_accepted() {
        assert_eq!(
            loopback_addr("http://127.0.0.1:8080/chat").expect("ok"),
            "127.0.0.1:8080".parse().expect("addr")
        );
        assert_eq!(loopback_addr("ws://localhost:9/x?group=1").expect("ok").port(), 9);
        assert_eq!(
            loopback_addr("ws://[::1]:7/").expect("ok"),
            "[::1]:7".parse().expect("addr")
        );
        assert!(loopback_addr("http://10.0.0.1:80/").is_err());
        assert!(loopback_addr("http://example.invalid:80/").is_err());
        assert!(loopback_addr("nonsense").is_err());
    }

    #[test]
    fn sources_go_round_robin_over_loopback() {
        let s = Sources::loopback(3);
        let picked: Vec<String> = (0..4).map(|_| s.pick().to_string()).collect();
        assert_eq!(picked, ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.1"]);
    }

    #[test]
    fn this_process_has_a_resident_size() {
        assert!(rss_bytes(std::process::id()).unwrap_or(0) > 0);
    }
}

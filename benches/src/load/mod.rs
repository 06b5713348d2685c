//! `chatico-load`: drives a running ChatiCO server (and the raw broadcast bound) with real
//! WebSocket clients logged in through the real OTP flow, and reports figures as JSON and a
//! table. Each scenario is one module; `src/bin/chatico-load.rs` is the command line.

pub mod chatico;
pub mod fanout;
pub mod idle;
pub mod net;
pub mod otp;
pub mod persist;
pub mod report;
pub mod resync;
pub mod typing;

use std::sync::Arc;

pub use report::{Report, Run};

/// Why a load run failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoadError {
    #[error("usage: {0}")]
    Usage(String),
    #[error("setup failed: {0}")]
    Setup(String),
    #[error("i/o: {0}")]
    Io(String),
    #[error("connection closed by the server (code {0:?})")]
    Closed(Option<u16>),
}

/// What every scenario is given.
pub struct Common {
    /// The ChatiCO server (absent when only the raw bound is measured).
    pub server: Option<Arc<chatico::Server>>,
    /// The raw bound's URL (`ws://127.0.0.1:9100`).
    pub raw_url: Option<String>,
    pub sources: net::Sources,
    /// Logins and handshakes in flight at once during setup.
    pub concurrency: usize,
    /// Measured runs (each figure is reported as median, min and max over them).
    pub runs: usize,
    /// The ChatiCO server's process, for its memory (found from the port when not given).
    pub server_pid: Option<u32>,
    pub raw_pid: Option<u32>,
    /// Text size of every message, in bytes.
    pub payload_bytes: usize,
}

impl Common {
    pub fn server(&self) -> Result<&Arc<chatico::Server>, LoadError> {
        self.server
            .as_ref()
            .ok_or_else(|| LoadError::Usage("this scenario needs --url and --otp-log (a ChatiCO server)".into()))
    }

    /// The pid of the ChatiCO server (given, or found listening on its port).
    pub fn chatico_pid(&self) -> Option<u32> {
        self.server_pid.or_else(|| {
            let s = self.server.as_ref()?;
            net::pid_listening_on(net::loopback_addr(&s.base).ok()?.port())
        })
    }

    pub fn raw_server_pid(&self) -> Option<u32> {
        self.raw_pid
            .or_else(|| net::pid_listening_on(net::loopback_addr(self.raw_url.as_deref()?).ok()?.port()))
    }
}

/// The message text the tool sends: a marker with the send time (on [`net::now_ns`]'s clock)
/// and the sender's index, padded with `x` to `bytes` (at least the marker's 33 bytes).
pub fn payload(send_ns: u64, sender: u32, bytes: usize) -> String {
    let mut s = format!("@T{send_ns:020}@S{sender:08}@");
    while s.len() < bytes {
        s.push('x');
    }
    s
}

/// Finds the marker of [`payload`] in a frame's text: `(send_ns, sender)`.
pub fn parse_marker(frame: &str) -> Option<(u64, u32)> {
    let at = frame.find("@T")?;
    let m = frame.get(at + 2..at + 33)?;
    let send_ns = m.get(0..20)?.parse().ok()?;
    if m.get(20..22)? != "@S" {
        return None;
    }
    let sender = m.get(22..30)?.parse().ok()?;
    Some((send_ns, sender))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payloads_have_the_asked_size_and_their_marker_parses_back() {
        let p = payload(123_456_789, 42, 100);
        assert_eq!(p.len(), 100);
        assert_eq!(parse_marker(&p), Some((123_456_789, 42)));
        let framed = format!(r#"{{"type":"event","event":{{"kind":{{"text":"{p}"}}}}}}"#);
        assert_eq!(parse_marker(&framed), Some((123_456_789, 42)));
        assert_eq!(payload(1, 2, 10).len(), 33);
        assert_eq!(parse_marker(r#"{"type":"cursor","pos":3}"#), None);
        assert_eq!(parse_marker("@T12"), None);
    }
}

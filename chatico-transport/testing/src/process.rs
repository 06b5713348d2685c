//! Real processes for tests: the example server binary (its console read line by line),
//! and `redis-server` / `nats-server` on their own free ports, killed and restarted at will.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::{Api, User, code_in};

/// How long a test waits for a server's console line or a process to start.
const START_PATIENCE: Duration = Duration::from_secs(30);

/// A free TCP port on 127.0.0.1 (bound, then released: the caller binds it next).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// The path of `bin` on `PATH` (or in /usr/sbin, /usr/bin), if installed.
pub fn which(bin: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|p| {
        std::env::split_paths(&p)
            .chain(["/usr/sbin".into(), "/usr/bin".into()])
            .map(|d| d.join(bin))
            .find(|f| f.is_file())
    })
}

/// A unique suffix for names (schemas, directories): the process id and the time.
pub fn unique_suffix() -> String {
    let n = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}_{n}", std::process::id())
}

/// Sends `sig` (e.g. `-TERM`, `-KILL`) to process `pid` with kill(1).
pub fn signal(pid: u32, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill {sig} {pid}");
}

fn wait_listening(port: u16, what: &str) {
    let deadline = Instant::now() + START_PATIENCE;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A running example server (`chatico-server`), its console lines captured. Killed and
/// reaped on drop.
pub struct ServerProcess {
    /// The child process.
    pub child: Child,
    lines: mpsc::Receiver<String>,
    /// `host:port` it listens on.
    pub addr: String,
    /// REST calls to it.
    pub api: Api,
}

impl ServerProcess {
    /// Starts `bin` (the test's `env!("CARGO_BIN_EXE_chatico-server")`) with `args` (and
    /// `--addr 127.0.0.1:0` unless `args` names an address), `CHATICO_LOG=info`, and waits
    /// for its "listening on" line.
    pub fn start(bin: &Path, args: &[String]) -> ServerProcess {
        let mut cmd = Command::new(bin);
        if !args.iter().any(|a| a == "--addr") {
            cmd.args(["--addr", "127.0.0.1:0"]);
        }
        let mut child = cmd
            .args(args)
            .env("CHATICO_LOG", "info")
            // Piped logs must be plain without help from NO_COLOR.
            .env_remove("NO_COLOR")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn chatico-server");
        let out = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut s = ServerProcess {
            child,
            lines,
            addr: String::new(),
            api: Api::new(""),
        };
        let line = s.wait_line(|l| l.contains("listening on http://"));
        let start = line.find("http://").expect("url") + "http://".len();
        s.addr = line[start..]
            .split(|c: char| c.is_whitespace() || c == ')' || c == '"')
            .next()
            .expect("addr")
            .to_owned();
        s.api = Api::new(format!("http://{}", s.addr));
        s
    }

    /// The base URL, `http://host:port`.
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Reads console lines until one matches (at most 30 s between lines); returns it.
    pub fn wait_line(&self, pred: impl Fn(&str) -> bool) -> String {
        loop {
            match self.lines.recv_timeout(START_PATIENCE) {
                Ok(l) if pred(&l) => return l,
                Ok(_) => {}
                Err(e) => panic!("no matching server console line: {e}"),
            }
        }
    }

    /// The OTP code the server printed for `phone` (DEVELOPMENT MODE console SMS).
    pub fn otp_code(&self, phone: &str) -> String {
        let line = self.wait_line(|l| l.contains("DEVELOPMENT MODE") && l.contains(phone) && l.contains("code is "));
        code_in(line.split("code is ").nth(1).expect("code in the console line"))
    }

    /// OTP login through the REST API, the code read from the console.
    pub async fn login(&self, phone: &str) -> User {
        self.api.login_with(phone, || self.otp_code(phone)).await
    }

    /// Sends `sig` (`-TERM`, `-INT`, `-KILL`...) to the server.
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// SIGKILL, and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Waits for the process to exit (at most `within`).
    pub fn wait_exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(s) = self.child.try_wait().expect("try_wait") {
                return s;
            }
            assert!(Instant::now() < deadline, "the server did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Which broker a [`BrokerProcess`] runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerKind {
    /// `redis-server` (no persistence: a restart comes back empty).
    Redis,
    /// `nats-server` (core only).
    Nats,
}

impl BrokerKind {
    fn bin(self) -> &'static str {
        match self {
            BrokerKind::Redis => "redis-server",
            BrokerKind::Nats => "nats-server",
        }
    }

    /// The URL scheme (`redis`, `nats`).
    pub fn scheme(self) -> &'static str {
        match self {
            BrokerKind::Redis => "redis",
            BrokerKind::Nats => "nats",
        }
    }
}

/// A broker process owned by the test, on its own free port (never the machine's shared
/// one), killed on drop. It can be killed and started again on the same port.
pub struct BrokerProcess {
    /// Which broker.
    pub kind: BrokerKind,
    /// Its port on 127.0.0.1.
    pub port: u16,
    bin: PathBuf,
    child: Option<Child>,
}

impl BrokerProcess {
    /// Starts the broker on a free port. `None` (after printing why the caller skips) when
    /// its binary is not installed.
    pub fn start(kind: BrokerKind) -> Option<BrokerProcess> {
        let Some(bin) = which(kind.bin()) else {
            eprintln!(
                "SKIPPED: `{}` not found on PATH (install the Debian package `{}`)",
                kind.bin(),
                kind.bin()
            );
            return None;
        };
        let mut b = BrokerProcess {
            kind,
            port: free_port(),
            bin,
            child: None,
        };
        b.restart();
        Some(b)
    }

    /// `redis://127.0.0.1:PORT` or `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("{}://127.0.0.1:{}", self.kind.scheme(), self.port)
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// SIGKILL (no goodbye to its clients); waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it (again) on the same port, empty, and waits until it listens.
    pub fn restart(&mut self) {
        self.kill();
        let port = self.port.to_string();
        let mut cmd = Command::new(&self.bin);
        match self.kind {
            BrokerKind::Redis => cmd.args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ]),
            BrokerKind::Nats => cmd.args(["-a", "127.0.0.1", "-p", &port]),
        };
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.kind.bin()));
        self.child = Some(child);
        wait_listening(self.port, self.kind.bin());
    }

    /// Runs one Redis command (a RESP array of bulk strings) and returns the raw reply: a
    /// whole bulk string (`$N` and its N bytes) or one line (`+OK`, `:3`, `-ERR ...`).
    pub fn redis_command(&self, args: &[&str]) -> String {
        assert_eq!(self.kind, BrokerKind::Redis, "a Redis command to {:?}", self.kind);
        let mut req = format!("*{}\r\n", args.len());
        for a in args {
            req.push_str(&format!("${}\r\n{a}\r\n", a.len()));
        }
        let mut s = TcpStream::connect(self.addr()).expect("connect to redis");
        s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
        s.write_all(req.as_bytes()).expect("write");
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            let n = s.read(&mut buf).expect("redis reply");
            got.extend_from_slice(&buf[..n]);
            let Some(eol) = got.windows(2).position(|w| w == b"\r\n") else {
                assert!(n > 0, "redis closed before a whole reply line");
                continue;
            };
            let complete = match got.first() {
                Some(b'$') => {
                    let len: i64 = String::from_utf8_lossy(&got[1..eol]).parse().expect("bulk length");
                    len < 0 || got.len() >= eol + 2 + len as usize + 2
                }
                _ => true,
            };
            if complete {
                return String::from_utf8_lossy(&got).into_owned();
            }
            assert!(n > 0, "redis closed in the middle of a reply");
        }
    }
}

impl Drop for BrokerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

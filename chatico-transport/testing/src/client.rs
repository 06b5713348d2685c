//! Helpers for the native client SDK's tests: a gateway the clients reach, quick reconnects,
//! login through the real OTP flow, bounded waits for events, and a chaos TCP proxy.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use chatico_core::Config;
use chatico_transport::client::{Client, ClientConfig, ClientEvent, RetryPolicy};
use chatico_transport::gateway::{GatewayConfig, RateLimit};
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;

/// How long a client test waits for something that must happen (reconnects under chaos take
/// longer than a single frame; a hang is a failure, not a measurement).
pub const PATIENCE: Duration = Duration::from_secs(60);

/// The gateway as the client tests start it: the shared [`crate::TestServer`] (which it
/// derefs to) on the system clock (clients compare server time with their own), with quick
/// checkpoints, rate limits far above what a test sends and any origin.
pub struct TestServer(pub crate::TestServer);

impl TestServer {
    /// A server with the defaults above.
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    /// Like [`TestServer::start`], with the engine's settings changed by `tune`.
    pub async fn start_with(tune: impl FnOnce(&mut Config)) -> TestServer {
        let server = crate::TestServer::builder()
            .system_clock()
            .engine_config(tune)
            .config(GatewayConfig {
                checkpoint_idle: Duration::from_millis(30),
                rate_limit: RateLimit {
                    per_second: 100_000,
                    burst: 100_000,
                },
                ..GatewayConfig::default()
            })
            .start()
            .await;
        TestServer(server)
    }

    /// The base URL clients are given, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        self.0.base_url()
    }
}

impl Deref for TestServer {
    type Target = crate::TestServer;

    fn deref(&self) -> &crate::TestServer {
        &self.0
    }
}

/// Client settings for tests: quick reconnects.
pub fn client_config(base_url: String) -> ClientConfig {
    let mut c = ClientConfig::new(base_url);
    c.device = Some("test".into());
    c.backoff = RetryPolicy {
        max_attempts: u32::MAX,
        initial_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(200),
    };
    c.request_timeout = Duration::from_secs(10);
    c
}

/// A client logged in through the OTP flow (the code read from the recorded SMS).
pub async fn login(server: &TestServer, base_url: &str, phone: &str, name: &str) -> Client {
    let client = Client::new(client_config(base_url.to_owned())).expect("client");
    client.request_otp(phone).await.expect("otp");
    let code = server.sms.code_for(phone);
    client.verify_otp(phone, &code).await.expect("verify");
    client
        .update_profile(&chatico_core::model::ProfilePatch {
            display_name: Some(name.into()),
            ..Default::default()
        })
        .await
        .expect("profile");
    client
}

/// Waits (up to PATIENCE) for an event matching `f`; returns what `f` extracted.
pub async fn wait_for<T>(rx: &mut broadcast::Receiver<ClientEvent>, mut f: impl FnMut(&ClientEvent) -> Option<T>) -> T {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match rx.recv().await {
                Ok(e) => {
                    if let Some(t) = f(&e) {
                        return t;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => panic!("test receiver lagged by {n}"),
                Err(broadcast::error::RecvError::Closed) => panic!("event stream closed"),
            }
        }
    })
    .await
    .expect("timed out waiting for an event")
}

/// Polls `f` until it is true (up to PATIENCE), sleeping briefly between tries.
pub async fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let ok = tokio::time::timeout(PATIENCE, async {
        while !f() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(ok.is_ok(), "timed out waiting until {what}");
}

/// A TCP proxy in front of the server that, while chaos is on, cuts every connection after a
/// random number of bytes (both directions counted), as a flaky network or a crashing node
/// would: the client sees its socket die at an arbitrary point of the protocol.
pub struct ChaosProxy {
    pub addr: SocketAddr,
    chaos: Arc<AtomicBool>,
    pub cuts: Arc<AtomicU64>,
}

impl ChaosProxy {
    pub async fn start(upstream: SocketAddr, seed: u64, budget: std::ops::Range<u64>) -> ChaosProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("addr");
        let chaos = Arc::new(AtomicBool::new(false));
        let cuts = Arc::new(AtomicU64::new(0));
        let (c2, k2) = (chaos.clone(), cuts.clone());
        tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
            while let Ok((inbound, _)) = listener.accept().await {
                let budget = rng.gen_range(budget.clone());
                let (chaos, cuts) = (c2.clone(), k2.clone());
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(upstream).await else {
                        return;
                    };
                    let _ = inbound.set_nodelay(true);
                    let _ = outbound.set_nodelay(true);
                    pump(inbound, outbound, budget, chaos, cuts).await;
                });
            }
        });
        ChaosProxy { addr, chaos, cuts }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set_chaos(&self, on: bool) {
        self.chaos.store(on, Ordering::SeqCst);
    }
}

/// Copies bytes both ways; with chaos on, drops both sockets once `budget` bytes went through.
async fn pump(a: TcpStream, b: TcpStream, budget: u64, chaos: Arc<AtomicBool>, cuts: Arc<AtomicU64>) {
    let (mut ar, mut aw) = a.into_split();
    let (mut br, mut bw) = b.into_split();
    let used = Arc::new(AtomicU64::new(0));
    let over = |n: usize, used: &AtomicU64| {
        let total = used.fetch_add(n as u64, Ordering::SeqCst) + n as u64;
        chaos.load(Ordering::SeqCst) && total > budget
    };
    let up = async {
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match ar.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if over(n, &used) {
                // Forward a random prefix, then cut.
                let _ = bw.write_all(&buf[..n / 2]).await;
                return;
            }
            if bw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    let down = async {
        let mut buf = vec![0u8; 8192];
        loop {
            let n = match br.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            };
            if over(n, &used) {
                let _ = aw.write_all(&buf[..n / 2]).await;
                return;
            }
            if aw.write_all(&buf[..n]).await.is_err() {
                return;
            }
        }
    };
    tokio::select! {
        _ = up => {}
        _ = down => {}
    }
    if chaos.load(Ordering::SeqCst) && used.load(Ordering::SeqCst) > budget {
        cuts.fetch_add(1, Ordering::SeqCst);
    }
    // Dropping the halves closes both sockets.
}

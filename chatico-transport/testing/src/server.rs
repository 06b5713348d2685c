//! A real gateway on `127.0.0.1:0`, started in-process.

use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::Arc;
use std::time::Duration;

use chatico_core::engine::Engine;
use chatico_core::memory::MemoryStore;
use chatico_core::ports::{Backplane, BlobStore, Clock, ManualClock, SystemClock};
use chatico_core::push::PushSender;
use chatico_core::{Config, MemoryOtpCache};
use chatico_store::blob::LocalDiskBlobStore;
use chatico_transport::gateway::{Gateway, GatewayConfig, OriginPolicy, PushConfig, RateLimit};

use crate::rest::{Api, User};
use crate::sms::RecordingSms;
use crate::ws::Ws;

/// The gateway settings tests use unless they say otherwise: quick checkpoints, generous
/// rate limits, an allowlist with one origin (`http://app.example`).
pub fn test_config() -> GatewayConfig {
    GatewayConfig {
        checkpoint_idle: Duration::from_millis(30),
        origins: OriginPolicy::List(vec!["http://app.example".to_owned()]),
        rate_limit: RateLimit {
            per_second: 10_000,
            burst: 10_000,
        },
        ..GatewayConfig::default()
    }
}

/// Tweaks a config inline: `GatewayConfigExt::with(test_config(), |c| c.max_frame_bytes = 1024)`.
pub struct GatewayConfigExt;

impl GatewayConfigExt {
    /// `c` after `f` changed it.
    pub fn with(mut c: GatewayConfig, f: impl FnOnce(&mut GatewayConfig)) -> GatewayConfig {
        f(&mut c);
        c
    }
}

/// A gateway serving on `127.0.0.1:0` until the test's runtime ends. It derefs to its [`Api`],
/// so `srv.login(..)`, `srv.ok(..)` and `srv.call(..)` talk to it.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// The gateway (to publish deliveries or read its state).
    pub gateway: Gateway,
    /// The SMS sender: every OTP code sent is readable here.
    pub sms: Arc<RecordingSms>,
    /// The engine's clock, unless the server was started with [`TestServerBuilder::system_clock`].
    pub clock: Arc<ManualClock>,
    /// The engine's store (tests read what was stored, e.g. how many blobs).
    pub store: Arc<MemoryStore>,
    /// A REST client for this server.
    pub api: Api,
    /// Where uploads go (a local-disk blob store), removed with the server.
    pub _blob_dir: tempfile::TempDir,
}

/// How a [`TestServer`] is started: [`TestServer::builder`].
pub struct TestServerBuilder {
    config: GatewayConfig,
    engine_config: Config,
    backplane: Option<Arc<dyn Backplane>>,
    system_clock: bool,
    /// The store and clock of the node this one starts beside (see [`TestServer::start_beside`]).
    beside: Option<(Arc<MemoryStore>, Arc<ManualClock>)>,
    wrap_blobs: Box<dyn FnOnce(LocalDiskBlobStore) -> Arc<dyn BlobStore> + Send>,
    push: Option<(Arc<dyn PushSender>, PushConfig)>,
    push_previews: bool,
}

impl TestServerBuilder {
    /// The gateway's settings (default: [`test_config`]).
    pub fn config(mut self, config: GatewayConfig) -> Self {
        self.config = config;
        self
    }

    /// Changes the engine's settings (the default lifts the OTP rate limits and cooldown so
    /// tests can log in many users quickly).
    pub fn engine_config(mut self, tune: impl FnOnce(&mut Config)) -> Self {
        tune(&mut self.engine_config);
        self
    }

    /// The backplane the gateway publishes through (default: the in-process one).
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
    }

    /// Runs the engine on the system clock instead of the manual one (for clients that
    /// compare server time with their own).
    pub fn system_clock(mut self) -> Self {
        self.system_clock = true;
        self
    }

    /// The blob store `wrap` makes of the local-disk one (whose directory
    /// [`TestServer::blob_files`] counts), e.g. one that fails on purpose.
    pub fn blobs(mut self, wrap: impl FnOnce(LocalDiskBlobStore) -> Arc<dyn BlobStore> + Send + 'static) -> Self {
        self.wrap_blobs = Box::new(wrap);
        self
    }

    /// Pushes through `sender` with `config` (default: no pushes).
    pub fn push(mut self, sender: Arc<dyn PushSender>, config: PushConfig) -> Self {
        self.push = Some((sender, config));
        self
    }

    /// Message text in pushes (default off).
    pub fn push_previews(mut self, on: bool) -> Self {
        self.push_previews = on;
        self
    }

    /// Starts the engine and the gateway and serves it on `127.0.0.1:0`.
    pub async fn start(self) -> TestServer {
        let (store, manual) = self.beside.unwrap_or_else(|| {
            (
                Arc::new(MemoryStore::new()),
                Arc::new(ManualClock::new(1_750_000_000_000)),
            )
        });
        let clock: Arc<dyn Clock> = if self.system_clock {
            Arc::new(SystemClock)
        } else {
            manual.clone()
        };
        let sms = Arc::new(RecordingSms::default());
        let blob_dir = tempfile::tempdir().expect("blob dir");
        let blobs = LocalDiskBlobStore::open(blob_dir.path()).await.expect("blob store");
        let engine = Engine::new(store.clone(), clock, self.engine_config)
            .expect("engine")
            .with_local_otp(Arc::new(MemoryOtpCache::new()), sms.clone())
            .with_blob_store((self.wrap_blobs)(blobs))
            .with_push_previews(self.push_previews);
        let mut b = Gateway::builder(Arc::new(engine)).config(self.config);
        if let Some((sender, config)) = self.push {
            b = b.push(sender, config);
        }
        if let Some(bp) = self.backplane {
            b = b.backplane(bp);
        }
        let gateway = b.start().await.expect("gateway");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        // Small frames go out at once (no Nagle delay behind an unacknowledged one).
        let listener = axum::serve::ListenerExt::tap_io(listener, |s| {
            let _ = s.set_nodelay(true);
        });
        let app = gateway.router();
        tokio::spawn(async move {
            axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
                .await
                .expect("serve");
        });
        TestServer {
            addr,
            gateway,
            sms,
            clock: manual,
            store,
            api: Api::new(format!("http://{addr}")),
            _blob_dir: blob_dir,
        }
    }
}

impl TestServer {
    /// A builder with the defaults [`TestServer::start`] uses.
    pub fn builder() -> TestServerBuilder {
        let mut engine_config = Config::default();
        engine_config.auth.otp_requests_per_caller = 1000;
        engine_config.auth.otp_verifications_per_caller = 1000;
        engine_config.auth.otp_resend_cooldown_ms = 0;
        // One secret for every test node, so a node started beside another accepts its tokens.
        engine_config.auth.jwt_secret = "gateway-tests-jwt-secret-0123456789abcdef".into();
        TestServerBuilder {
            config: test_config(),
            engine_config,
            backplane: None,
            system_clock: false,
            beside: None,
            wrap_blobs: Box::new(|local| Arc::new(local)),
            push: None,
            push_previews: false,
        }
    }

    /// A server with [`test_config`], the manual clock and the in-process backplane.
    pub async fn start() -> TestServer {
        Self::builder().start().await
    }

    /// A server with these gateway settings and, if given, this backplane.
    pub async fn start_with(config: GatewayConfig, backplane: Option<Arc<dyn Backplane>>) -> TestServer {
        let mut b = Self::builder().config(config);
        if let Some(bp) = backplane {
            b = b.backplane(bp);
        }
        b.start().await
    }

    /// Like [`TestServer::start_with`], with the blob store `wrap` makes of the local-disk one.
    pub async fn start_with_blobs(
        config: GatewayConfig,
        backplane: Option<Arc<dyn Backplane>>,
        wrap: impl FnOnce(LocalDiskBlobStore) -> Arc<dyn BlobStore> + Send + 'static,
    ) -> TestServer {
        let mut b = Self::builder().config(config).blobs(wrap);
        if let Some(bp) = backplane {
            b = b.backplane(bp);
        }
        b.start().await
    }

    /// A second node beside `other`: its own gateway and engine on the same store and clock
    /// (tokens from one are valid on the other), joined to it by `backplane`.
    pub async fn start_beside(other: &TestServer, config: GatewayConfig, backplane: Arc<dyn Backplane>) -> TestServer {
        let mut b = Self::builder().config(config).backplane(backplane);
        b.beside = Some((other.store.clone(), other.clock.clone()));
        b.start().await
    }

    /// Every file under the blob store's directory (bytes, metadata and temporary files), so
    /// a test can tell that a refused upload left nothing behind.
    pub fn blob_files(&self) -> usize {
        fn count(dir: &std::path::Path) -> usize {
            std::fs::read_dir(dir)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| match e.file_type() {
                            Ok(t) if t.is_dir() => count(&e.path()),
                            Ok(_) => 1,
                            Err(_) => 0,
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        count(self._blob_dir.path())
    }

    /// The server's base URL, `http://127.0.0.1:PORT`.
    pub fn base_url(&self) -> String {
        self.api.base.clone()
    }

    /// OTP login through the REST API, reading the code from the recorded SMS.
    pub async fn login(&self, phone: &str) -> User {
        self.api.login_with(phone, || self.sms.code_for(phone)).await
    }

    /// A WebSocket authenticated by the `Authorization` header and subscribed from now.
    pub async fn ws(&self, u: &User) -> Ws {
        let mut ws = Ws::connect(self.addr, Some(&u.token), None).await.expect("ws connect");
        ws.expect_ready().await;
        ws.subscribe(None).await;
        ws
    }
}

impl Deref for TestServer {
    type Target = Api;

    fn deref(&self) -> &Api {
        &self.api
    }
}

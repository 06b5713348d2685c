//! The server the load tool measures until `examples/server` can be driven the same way: the
//! real [`Gateway`] over a real [`Engine`] and store, composed as a deployment would, with
//! benchmark settings (see [`bench_config`] and [`bench_gateway_config`]).
//!
//! **Development and benchmarks only.** OTP codes are written to a log file
//! ([`OtpLogSms`]) instead of being sent, so the load tool can log its users in through the
//! real `POST /v1/auth/otp` + `POST /v1/auth/verify` flow without changing any auth rule.
//! Anyone who can read that file can sign in as anyone.

use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use chatico_core::engine::Engine;
use chatico_core::ids::Phone;
use chatico_core::memory::MemoryStore;
use chatico_core::ports::{SmsSender, Store, SystemClock};
use chatico_core::{Config, Error, MemoryOtpCache};
use chatico_transport::gateway::{Gateway, GatewayConfig, RateLimit};

/// Which store the bench server runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreChoice {
    /// The in-memory reference store.
    Memory,
    /// SQLite at this path (`sqlite:PATH`), with the store's defaults (WAL,
    /// `synchronous=FULL`, group commit), as the example server opens it.
    Sqlite(std::path::PathBuf),
    /// Postgres at this URL (`postgres://...`), in a fresh schema named after the server's
    /// start time, so runs never see each other's rows (or in the schema
    /// [`ServerOptions::schema`] names, which several nodes share).
    Postgres(String),
}

impl std::str::FromStr for StoreChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if s == "memory" {
            Ok(StoreChoice::Memory)
        } else if let Some(path) = s.strip_prefix("sqlite:") {
            Ok(StoreChoice::Sqlite(path.into()))
        } else if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            Ok(StoreChoice::Postgres(s.to_owned()))
        } else {
            Err(format!(
                "unknown store `{s}` (expected memory, sqlite:PATH or postgres://URL)"
            ))
        }
    }
}

/// Opens the chosen store.
pub async fn open_store(choice: &StoreChoice, schema: Option<&str>) -> chatico_core::Result<Arc<dyn Store>> {
    use chatico_store::{PostgresConfig, PostgresStore, SqliteConfig, SqliteStore};
    match choice {
        StoreChoice::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreChoice::Sqlite(path) => Ok(Arc::new(SqliteStore::open(path, SqliteConfig::default()).await?)),
        StoreChoice::Postgres(url) => {
            let started = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0);
            let config = PostgresConfig {
                schema: Some(schema.map_or_else(|| format!("chatico_bench_server_{started}"), str::to_owned)),
                ..PostgresConfig::default()
            };
            Ok(Arc::new(PostgresStore::connect(url, config).await?))
        }
    }
}

/// Development SMS sender: appends `DEVELOPMENT MODE (bench) SMS to <phone>: <body>` lines to
/// a file, flushed per line, so a load tool can read the codes (`chatico-load --otp-log`).
/// Never for production: anyone who reads the file can sign in as anyone.
pub struct OtpLogSms {
    file: Mutex<std::fs::File>,
}

impl OtpLogSms {
    /// Creates (or appends to) `path`.
    pub fn open(path: &Path) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
        Ok(OtpLogSms { file: Mutex::new(file) })
    }
}

#[async_trait]
impl SmsSender for OtpLogSms {
    async fn send(&self, to: &Phone, body: &str) -> chatico_core::Result<()> {
        let line = format!("DEVELOPMENT MODE (bench) SMS to {}: {body}\n", to.as_str());
        let mut f = self
            .file
            .lock()
            .map_err(|_| Error::unavailable("otp log lock poisoned"))?;
        f.write_all(line.as_bytes())
            .map_err(|e| Error::unavailable(format!("otp log write: {e}")))?;
        Ok(())
    }
}

/// Engine settings for a load test: the OTP rate limits per phone and per caller (client
/// IP) would stop a tool that logs in 100k users from a few loopback addresses, so they are
/// raised; every other rule (code hashing, expiry, attempts, JWT sessions) is the default.
pub fn bench_config() -> Config {
    let mut c = Config::default();
    c.auth.otp_requests_per_caller = u32::MAX / 2;
    c.auth.otp_verifications_per_caller = u32::MAX / 2;
    c.auth.otp_requests_per_phone = 1_000;
    c.auth.otp_resend_cooldown_ms = 1;
    // Long enough for a long idle hold.
    c.auth.access_ttl_ms = 6 * 60 * 60 * 1000;
    c
}

/// Gateway settings for a load test: the per-user request budget (default 50/s) would cap a
/// fan-out sender, so it is raised; every other limit and timing is the default.
pub fn bench_gateway_config() -> GatewayConfig {
    GatewayConfig {
        rate_limit: RateLimit {
            per_second: 1_000_000,
            burst: 1_000_000,
        },
        ..GatewayConfig::default()
    }
}

/// Options of [`start`].
#[derive(Debug, Clone)]
pub struct ServerOptions {
    pub addr: SocketAddr,
    pub store: StoreChoice,
    pub otp_log: PathBuf,
    pub gateway: GatewayConfig,
    pub config: Config,
    /// Cluster mode: the backplane (`redis://...` or `nats://...`) joining this node to the
    /// others; `None` is the single-node in-process backplane.
    pub backplane: Option<String>,
    /// The Redis of the state nodes share (presence, typing, OTP): default the backplane's
    /// URL when that is Redis; required with NATS.
    pub redis_url: Option<String>,
    /// This node's id (generated when absent).
    pub node_id: Option<String>,
    /// The Postgres schema (several nodes must name the same one).
    pub schema: Option<String>,
}

/// A started bench server.
pub struct RunningServer {
    pub addr: SocketAddr,
    pub gateway: Gateway,
    pub serve: tokio::task::JoinHandle<()>,
}

/// Binds, builds the engine and gateway, and serves in a spawned task.
pub async fn start(opts: ServerOptions) -> chatico_core::Result<RunningServer> {
    if opts.backplane.is_some() && !matches!(opts.store, StoreChoice::Postgres(_)) {
        return Err(Error::invalid(
            "store",
            "a backplane joins nodes on one database: use a postgres:// store",
        ));
    }
    let store = open_store(&opts.store, opts.schema.as_deref()).await?;
    let sms = Arc::new(
        OtpLogSms::open(&opts.otp_log).map_err(|e| Error::unavailable(format!("otp log {:?}: {e}", opts.otp_log)))?,
    );
    let engine = Engine::new(store, Arc::new(SystemClock), opts.config)?;
    let node_id = opts
        .node_id
        .clone()
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let redis_url = opts
        .redis_url
        .clone()
        .or_else(|| opts.backplane.clone().filter(|b| b.starts_with("redis://")));
    let engine = match (&opts.backplane, redis_url) {
        (Some(_), Some(url)) => {
            use chatico_store::redis::{RedisOtpCache, RedisPresence, RedisState, RedisStateConfig};
            let state = RedisState::connect(&url, RedisStateConfig::default()).await?;
            let presence = Arc::new(RedisPresence::new(state.clone(), &node_id));
            engine
                .with_presence(presence)
                .with_local_otp(Arc::new(RedisOtpCache::new(state)), sms)
        }
        (Some(_), None) => {
            return Err(Error::invalid(
                "redis_url",
                "a nats:// backplane needs a Redis for the shared state",
            ));
        }
        (None, _) => engine.with_local_otp(Arc::new(MemoryOtpCache::new()), sms),
    };
    let mut builder = Gateway::builder(Arc::new(engine)).node_id(chatico_core::ports::NodeId(node_id));
    match opts.backplane.as_deref() {
        Some(url) if url.starts_with("redis://") => {
            use chatico_transport::backplane::{BrokerConfig, redis::RedisBackplane};
            builder = builder.backplane(Arc::new(RedisBackplane::connect(url, BrokerConfig::default()).await?));
        }
        Some(url) if url.starts_with("nats://") => {
            use chatico_transport::backplane::{BrokerConfig, nats::NatsBackplane};
            builder = builder.backplane(Arc::new(NatsBackplane::connect(url, BrokerConfig::default()).await?));
        }
        Some(other) => {
            return Err(Error::invalid(
                "backplane",
                format!("unknown backplane {other} (redis:// or nats://)"),
            ));
        }
        None => {}
    }
    let gateway = builder.config(opts.gateway).start().await?;
    let listener = tokio::net::TcpListener::bind(opts.addr)
        .await
        .map_err(|e| Error::unavailable(format!("bind {}: {e}", opts.addr)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Error::unavailable(format!("local addr: {e}")))?;
    // Small frames go out at once (no Nagle delay behind an unacknowledged one).
    let listener = axum::serve::ListenerExt::tap_io(listener, |s| {
        let _ = s.set_nodelay(true);
    });
    let app = gateway.router();
    let serve = tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await {
            tracing::error!(error = %e, "serve failed");
        }
    });
    Ok(RunningServer { addr, gateway, serve })
}

//! Flags, secrets, and the assembly of store, engine and gateway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::Router;
use chatico_core::engine::Engine;
use chatico_core::memory::MemoryStore;
use chatico_core::ports::{Backplane, BlobStore, NodeId, OtpCache, SmsSender, Store, SystemClock};
use chatico_core::push::{Platform, PushRouter};
use chatico_core::{Config, MemoryOtpCache};
use chatico_store::blob::{CloudinaryBlobStore, CloudinaryConfig, LocalDiskBlobStore, S3BlobStore, S3Config};
use chatico_store::redis::{RedisOtpCache, RedisPresence, RedisState, RedisStateConfig};
use chatico_store::{PostgresConfig, PostgresStore, SqliteConfig, SqliteStore};
use chatico_transport::backplane::BrokerConfig;
use chatico_transport::backplane::nats::NatsBackplane;
use chatico_transport::backplane::redis::RedisBackplane;
use chatico_transport::gateway::{Gateway, GatewayConfig, OriginPolicy, PushConfig, RateLimit, ServeConfig};
use chatico_transport::push::{APNS_SANDBOX, ApnsConfig, ApnsSender, FcmConfig, FcmSender, ServiceAccountKey};
use chatico_transport::sms::{
    ConsoleSmsSender, MessagesFrom, TwilioAuth, TwilioMessagesConfig, TwilioMessagesSender, TwilioVerify,
    TwilioVerifyConfig,
};
use clap::{Parser, ValueEnum};

/// The ChatiCO example server.
#[derive(Debug, Parser)]
#[command(name = "chatico-server", version, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "CHATICO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Where the server keeps its files: the generated JWT secret, local uploads (`blobs/`).
    #[arg(long, env = "CHATICO_DATA_DIR", default_value = "chatico-data")]
    pub data_dir: PathBuf,
    /// Where data is kept: `sqlite` (the file `<data-dir>/chatico.db`), `sqlite:PATH`,
    /// `postgres://user@host:port/db`, or `memory` (lost on restart).
    #[arg(long, env = "CHATICO_DATABASE_URL", default_value = "sqlite")]
    pub database_url: String,
    /// PostgreSQL only: keep the tables in this schema (created if missing) instead of the
    /// connection's default, so several deployments (or tests) can share one database.
    #[arg(long, env = "CHATICO_DATABASE_SCHEMA")]
    pub database_schema: Option<String>,
    /// Connects several server processes (nodes): `redis://HOST:PORT` (Redis pub/sub) or
    /// `nats://HOST:PORT` (core NATS). Every node needs the same `--database-url
    /// postgres://...`. Default: none (one node).
    #[arg(long, env = "CHATICO_BACKPLANE")]
    pub backplane: Option<String>,
    /// This node's name on the backplane, unique among the nodes. Default: generated at
    /// every start.
    #[arg(long, env = "CHATICO_NODE_ID")]
    pub node_id: Option<String>,
    /// The Redis holding the state nodes share: presence, typing, OTP codes and their
    /// counters (`redis://HOST:PORT[/DB]`). Default: the `--backplane` URL when that is
    /// `redis://`; required with a `nats://` backplane. Needs `--backplane`.
    #[arg(long, env = "CHATICO_REDIS_URL")]
    pub redis_url: Option<String>,
    /// The JWT signing secret (at least 32 bytes). Default: generated on first start and kept
    /// in `<data-dir>/jwt-secret`.
    #[arg(long, env = "CHATICO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// How login codes are delivered.
    #[arg(long, env = "CHATICO_SMS", value_enum, default_value_t = SmsKind::Console)]
    pub sms: SmsKind,
    /// Twilio account SID (`AC…`), for `--sms twilio` and `twilio-verify`.
    #[arg(long, env = "TWILIO_ACCOUNT_SID")]
    pub twilio_account_sid: Option<String>,
    /// Twilio auth token.
    #[arg(long, env = "TWILIO_AUTH_TOKEN", hide_env_values = true)]
    pub twilio_auth_token: Option<String>,
    /// The sending number (E.164) for `--sms twilio` (or use a messaging service).
    #[arg(long, env = "TWILIO_FROM")]
    pub twilio_from: Option<String>,
    /// A Messaging Service SID (`MG…`) for `--sms twilio`, instead of `--twilio-from`.
    #[arg(long, env = "TWILIO_MESSAGING_SERVICE_SID")]
    pub twilio_messaging_service_sid: Option<String>,
    /// The Verify service SID (`VA…`) for `--sms twilio-verify`.
    #[arg(long, env = "TWILIO_VERIFY_SERVICE_SID")]
    pub twilio_verify_service_sid: Option<String>,
    /// APNs signing key file (`AuthKey_XXXXXXXXXX.p8`): enables pushes to Apple devices.
    #[arg(long, env = "APNS_KEY_FILE")]
    pub apns_key_file: Option<PathBuf>,
    /// The APNs key's id (10 characters).
    #[arg(long, env = "APNS_KEY_ID")]
    pub apns_key_id: Option<String>,
    /// The Apple developer team id.
    #[arg(long, env = "APNS_TEAM_ID")]
    pub apns_team_id: Option<String>,
    /// Use the APNs development (sandbox) endpoint (apps built for development).
    #[arg(long, env = "APNS_SANDBOX")]
    pub apns_sandbox: bool,
    /// Firebase service-account key file (JSON): enables pushes through FCM.
    #[arg(long, env = "FCM_SERVICE_ACCOUNT_FILE")]
    pub fcm_service_account_file: Option<PathBuf>,
    /// Show message text in pushes (default: "New message" only; the app fetches the rest).
    #[arg(long, env = "CHATICO_PUSH_PREVIEWS")]
    pub push_previews: bool,
    /// Where uploads go.
    #[arg(long, env = "CHATICO_BLOBS", value_enum, default_value_t = BlobKind::Local)]
    pub blobs: BlobKind,
    /// The directory of `--blobs local`. Default: `<data-dir>/blobs`.
    #[arg(long, env = "CHATICO_BLOB_DIR")]
    pub blob_dir: Option<PathBuf>,
    /// S3 bucket (`--blobs s3`).
    #[arg(long, env = "CHATICO_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    #[arg(long, env = "CHATICO_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// An S3-compatible endpoint (MinIO, R2...); default: AWS.
    #[arg(long, env = "CHATICO_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Allow a plain `http://` S3 endpoint (development only).
    #[arg(long, env = "CHATICO_S3_ALLOW_HTTP")]
    pub s3_allow_http: bool,
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,
    /// Cloudinary cloud name (`--blobs cloudinary`).
    #[arg(long, env = "CLOUDINARY_CLOUD_NAME")]
    pub cloudinary_cloud_name: Option<String>,
    #[arg(long, env = "CLOUDINARY_API_KEY")]
    pub cloudinary_api_key: Option<String>,
    #[arg(long, env = "CLOUDINARY_API_SECRET", hide_env_values = true)]
    pub cloudinary_api_secret: Option<String>,
    /// Browser origins allowed to open WebSockets (comma-separated, e.g.
    /// `https://chat.example.com`). Default: `http://127.0.0.1:<port>` and
    /// `http://localhost:<port>`. Clients without an `Origin` header (apps) are always allowed.
    #[arg(long = "allowed-origins", env = "CHATICO_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// Requests and WebSocket frames each user may make per second (sustained).
    #[arg(long, env = "CHATICO_RATE_PER_SECOND", default_value_t = 50)]
    pub rate_per_second: u32,
    /// ... and in a burst.
    #[arg(long, env = "CHATICO_RATE_BURST", default_value_t = 200)]
    pub rate_burst: u32,
    /// The web demo to serve at `/` (what `scripts/build-web.sh` writes). Without an
    /// `index.html` there, `/` is a short text page.
    #[arg(long, env = "CHATICO_WEB_DIR", default_value = "examples/web/dist")]
    pub web_dir: PathBuf,
    /// Seconds a client has to send a request's complete header (also ends idle keep-alive
    /// connections); slower connections are closed.
    #[arg(long, env = "CHATICO_HEADER_READ_TIMEOUT_SECS", default_value_t = 10)]
    pub header_read_timeout_secs: u64,
    /// Most connections (HTTP and WebSocket) open at once; at the cap new connections wait
    /// in the listen queue. 0: the open-file limit (`ulimit -n`) minus 128.
    #[arg(long, env = "CHATICO_MAX_CONNECTIONS", default_value_t = 0)]
    pub max_connections: usize,
    /// Log filter (`tracing` env-filter syntax).
    #[arg(long, env = "CHATICO_LOG", default_value = "info,chatico=info")]
    pub log: String,
    /// Log as JSON lines instead of text.
    #[arg(long, env = "CHATICO_LOG_JSON")]
    pub log_json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SmsKind {
    /// DEVELOPMENT MODE: codes are printed to the console, nothing is sent.
    Console,
    /// Twilio Programmable Messaging (ChatiCO generates and checks the codes).
    Twilio,
    /// Twilio Verify (Twilio generates and checks the codes).
    TwilioVerify,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BlobKind {
    /// A directory on this machine.
    Local,
    /// An S3-compatible bucket.
    S3,
    /// Cloudinary (images).
    Cloudinary,
}

fn required(v: &Option<String>, flag: &str) -> Result<String, String> {
    v.clone()
        .filter(|s| !s.trim().is_empty())
        .ok_or_else(|| format!("{flag} is required for this configuration"))
}

pub fn init_tracing(args: &Args) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let colour = use_colour(
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
        std::env::var_os("NO_COLOR").as_deref(),
    );
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stdout);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Whether console logs are coloured: only on a terminal, and never when `NO_COLOR` is set
/// to a non-empty value (<https://no-color.org>). Piped or redirected logs stay plain text,
/// so lines such as `DEVELOPMENT MODE` can be found with grep.
pub fn use_colour(stdout_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stdout_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

fn twilio_auth(args: &Args) -> Result<TwilioAuth, String> {
    Ok(TwilioAuth::AuthToken {
        account_sid: required(&args.twilio_account_sid, "--twilio-account-sid / TWILIO_ACCOUNT_SID")?,
        auth_token: required(&args.twilio_auth_token, "--twilio-auth-token / TWILIO_AUTH_TOKEN")?,
    })
}

async fn blob_store(args: &Args) -> Result<Arc<dyn BlobStore>, String> {
    Ok(match args.blobs {
        BlobKind::Local => {
            let dir = args.blob_dir.clone().unwrap_or_else(|| args.data_dir.join("blobs"));
            tracing::info!(dir = %dir.display(), "uploads go to a local directory");
            Arc::new(
                LocalDiskBlobStore::open(dir)
                    .await
                    .map_err(|e| format!("blob dir: {e}"))?,
            )
        }
        BlobKind::S3 => {
            let mut c = S3Config::new(
                required(&args.s3_bucket, "--s3-bucket / CHATICO_S3_BUCKET")?,
                args.s3_region.clone(),
                required(&args.s3_access_key_id, "--s3-access-key-id / AWS_ACCESS_KEY_ID")?,
                required(
                    &args.s3_secret_access_key,
                    "--s3-secret-access-key / AWS_SECRET_ACCESS_KEY",
                )?,
            );
            c.endpoint = args.s3_endpoint.clone();
            c.allow_http = args.s3_allow_http;
            Arc::new(S3BlobStore::new(c).map_err(|e| format!("s3: {e}"))?)
        }
        BlobKind::Cloudinary => {
            let c = CloudinaryConfig::new(
                required(
                    &args.cloudinary_cloud_name,
                    "--cloudinary-cloud-name / CLOUDINARY_CLOUD_NAME",
                )?,
                required(&args.cloudinary_api_key, "--cloudinary-api-key / CLOUDINARY_API_KEY")?,
                required(
                    &args.cloudinary_api_secret,
                    "--cloudinary-api-secret / CLOUDINARY_API_SECRET",
                )?,
            );
            Arc::new(CloudinaryBlobStore::new(c).map_err(|e| format!("cloudinary: {e}"))?)
        }
    })
}

/// The JWT secret: given, or read from `<data-dir>/jwt-secret`, or generated and written
/// there (owner-only permissions) on first start.
pub fn jwt_secret(args: &Args) -> Result<String, String> {
    if let Some(s) = &args.jwt_secret {
        return Ok(s.clone());
    }
    let path = args.data_dir.join("jwt-secret");
    match std::fs::read_to_string(&path) {
        Ok(s) if !s.trim().is_empty() => return Ok(s.trim().to_owned()),
        Ok(_) => {
            return Err(format!(
                "{} is empty; delete it to generate a new secret",
                path.display()
            ));
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    }
    let secret = hex::encode(rand::random::<[u8; 32]>());
    write_private(&path, &secret)?;
    tracing::info!(path = %path.display(), "generated a JWT secret (kept for the next starts)");
    Ok(secret)
}

fn write_private(path: &Path, contents: &str) -> Result<(), String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| format!("cannot create {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// What `run` serves.
pub struct Server {
    pub gateway: Gateway,
    pub app: Router,
    pub serve: ServeConfig,
}

fn is_postgres(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Checks that `--backplane` can work before anything is opened: several nodes share one
/// PostgreSQL; SQLite and the memory store belong to one process.
pub fn check_cluster_args(args: &Args) -> Result<(), String> {
    let Some(bp) = &args.backplane else {
        if args.redis_url.is_some() {
            return Err("--redis-url holds the state several nodes share: give --backplane too".into());
        }
        return Ok(());
    };
    if !(bp.starts_with("redis://") || bp.starts_with("nats://")) {
        return Err(format!(
            "unsupported --backplane {bp:?}: use redis://HOST:PORT or nats://HOST:PORT"
        ));
    }
    if !is_postgres(&args.database_url) {
        return Err(format!(
            "--backplane connects several nodes, which must share one database: use --database-url \
             postgres://... (got {:?}; SQLite and the memory store belong to a single process)",
            args.database_url
        ));
    }
    if args.node_id.as_deref().is_some_and(|n| n.trim().is_empty()) {
        return Err("--node-id must not be empty".into());
    }
    match &args.redis_url {
        Some(url) if !url.starts_with("redis://") => {
            Err(format!("unsupported --redis-url {url:?}: use redis://HOST:PORT[/DB]"))
        }
        None if bp.starts_with("nats://") => Err(
            "a nats:// --backplane needs --redis-url redis://HOST:PORT: several nodes share presence, \
             typing and OTP codes and their attempt limits through Redis"
                .into(),
        ),
        _ => Ok(()),
    }
}

/// The Redis of the shared state: `--redis-url`, else a `redis://` backplane's URL; none
/// for one node. (Checked by [`check_cluster_args`].)
pub fn redis_url(args: &Args) -> Option<String> {
    args.backplane.as_ref()?;
    args.redis_url
        .clone()
        .or_else(|| args.backplane.clone().filter(|bp| bp.starts_with("redis://")))
}

/// Connects the backplane `--backplane` names (checked by [`check_cluster_args`]).
async fn backplane(url: &str) -> Result<Arc<dyn Backplane>, String> {
    let config = BrokerConfig::default();
    if url.starts_with("redis://") {
        let bp = RedisBackplane::connect(url, config)
            .await
            .map_err(|e| format!("backplane {url}: {e}"))?;
        tracing::info!(url, "backplane: Redis pub/sub");
        Ok(Arc::new(bp))
    } else {
        let bp = NatsBackplane::connect(url, config)
            .await
            .map_err(|e| format!("backplane {url}: {e}"))?;
        tracing::info!(url, "backplane: NATS");
        Ok(Arc::new(bp))
    }
}

/// Opens the store `--database-url` names.
async fn open_store(args: &Args) -> Result<Arc<dyn Store>, String> {
    let url = args.database_url.as_str();
    if url == "memory" {
        tracing::warn!("in-memory store: data is lost when the server stops");
        return Ok(Arc::new(MemoryStore::new()));
    }
    if is_postgres(url) {
        let config = PostgresConfig {
            schema: args.database_schema.clone(),
            ..PostgresConfig::default()
        };
        let store = PostgresStore::connect(url, config)
            .await
            .map_err(|e| format!("postgres: {e}"))?;
        tracing::info!("store: PostgreSQL");
        return Ok(Arc::new(store));
    }
    if args.database_schema.is_some() {
        return Err("--database-schema applies to a postgres:// --database-url only".into());
    }
    let path = match url {
        "sqlite" => args.data_dir.join("chatico.db"),
        other => match other.strip_prefix("sqlite:") {
            Some(p) => PathBuf::from(p.trim_start_matches("//")),
            None => {
                return Err(format!(
                    "unsupported --database-url {other:?} (sqlite, sqlite:PATH, postgres://..., memory)"
                ));
            }
        },
    };
    let store = SqliteStore::open(&path, SqliteConfig::default())
        .await
        .map_err(|e| format!("sqlite: {e}"))?;
    tracing::info!(path = %path.display(), "store: SQLite");
    Ok(Arc::new(store))
}

/// The push senders the flags configure (`None` when neither APNs nor FCM is).
fn push_router(args: &Args) -> Result<Option<PushRouter>, String> {
    let mut router = PushRouter::new();
    if let Some(file) = &args.apns_key_file {
        let key = std::fs::read_to_string(file).map_err(|e| format!("--apns-key-file {}: {e}", file.display()))?;
        let mut config = ApnsConfig::new(
            key,
            required(&args.apns_key_id, "--apns-key-id / APNS_KEY_ID")?,
            required(&args.apns_team_id, "--apns-team-id / APNS_TEAM_ID")?,
        );
        if args.apns_sandbox {
            config.base_url = APNS_SANDBOX.to_owned();
        }
        let sender = ApnsSender::new(config).map_err(|e| format!("apns: {e}"))?;
        router = router.with(Platform::Apns, Arc::new(sender));
        tracing::info!(sandbox = args.apns_sandbox, "push: APNs");
    }
    if let Some(file) = &args.fcm_service_account_file {
        let json =
            std::fs::read_to_string(file).map_err(|e| format!("--fcm-service-account-file {}: {e}", file.display()))?;
        let key = ServiceAccountKey::from_json(&json).map_err(|e| format!("fcm: {e}"))?;
        let sender = FcmSender::new(FcmConfig::new(key)).map_err(|e| format!("fcm: {e}"))?;
        router = router.with(Platform::Fcm, Arc::new(sender));
        tracing::info!("push: FCM");
    }
    Ok((!router.is_empty()).then_some(router))
}

/// Assembles the server for the address it is bound to.
pub async fn build(args: &Args, bound: SocketAddr) -> Result<Server, String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", args.data_dir.display()))?;
    check_cluster_args(args)?;
    let store = open_store(args).await?;
    let mut config = Config::default();
    config.auth.jwt_secret = jwt_secret(args)?;
    config.validate().map_err(|e| format!("configuration: {e}"))?;
    let engine = Engine::new(store, Arc::new(SystemClock), config).map_err(|e| format!("engine: {e}"))?;
    let node_id = args
        .node_id
        .clone()
        .unwrap_or_else(|| format!("{:032x}", rand::random::<u128>()));
    let (engine, otp_cache): (Engine, Arc<dyn OtpCache>) = match redis_url(args) {
        Some(url) => {
            let state = RedisState::connect(&url, RedisStateConfig::default())
                .await
                .map_err(|e| format!("shared state {url}: {e}"))?;
            tracing::info!(url, "shared state (presence, typing, OTP): Redis");
            let presence = Arc::new(RedisPresence::new(state.clone(), &node_id));
            (engine.with_presence(presence), Arc::new(RedisOtpCache::new(state)))
        }
        None => (engine, Arc::new(MemoryOtpCache::new())),
    };
    let engine = match args.sms {
        SmsKind::Console => {
            tracing::warn!("DEVELOPMENT MODE: login codes are printed to this console, no SMS is sent");
            engine.with_local_otp(otp_cache, Arc::new(ConsoleSmsSender::new()))
        }
        SmsKind::Twilio => {
            let from = match (&args.twilio_messaging_service_sid, &args.twilio_from) {
                (Some(sid), _) => MessagesFrom::MessagingService(sid.clone()),
                (None, Some(n)) => MessagesFrom::Number(n.clone()),
                (None, None) => return Err("--twilio-from or --twilio-messaging-service-sid is required".into()),
            };
            let sender = TwilioMessagesSender::new(TwilioMessagesConfig::new(twilio_auth(args)?, from))
                .map_err(|e| format!("twilio: {e}"))?;
            let sms: Arc<dyn SmsSender> = Arc::new(sender);
            engine.with_local_otp(otp_cache, sms)
        }
        SmsKind::TwilioVerify => {
            let sid = required(&args.twilio_verify_service_sid, "--twilio-verify-service-sid")?;
            let verify = TwilioVerify::new(TwilioVerifyConfig::new(twilio_auth(args)?, sid))
                .map_err(|e| format!("twilio verify: {e}"))?;
            engine.with_otp(Arc::new(verify), otp_cache)
        }
    };
    let engine = engine
        .with_blob_store(blob_store(args).await?)
        .with_push_previews(args.push_previews);
    let push = push_router(args)?;
    let origins = if args.allowed_origins.is_empty() {
        let port = bound.port();
        vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")]
    } else {
        args.allowed_origins.clone()
    };
    let mut builder = Gateway::builder(Arc::new(engine));
    if let Some(url) = &args.backplane {
        builder = builder.backplane(backplane(url).await?);
    }
    builder = builder.node_id(NodeId(node_id));
    if let Some(push) = push {
        builder = builder.push(Arc::new(push), PushConfig::default());
    }
    let gateway = builder
        .config(GatewayConfig {
            origins: OriginPolicy::List(origins),
            rate_limit: RateLimit {
                per_second: args.rate_per_second,
                burst: args.rate_burst,
            },
            ..GatewayConfig::default()
        })
        .start()
        .await
        .map_err(|e| format!("gateway: {e}"))?;
    tracing::info!(node = %gateway.node_id(), "node id");
    let app = crate::web::routes(&args.web_dir)
        .merge(gateway.router())
        // One `tracing` span per request (method, path, status, latency at debug level). The
        // span names the path only: a query string may hold a credential
        // (`GET /v1/blobs/{key}?access_token=...`, for `<img src>`).
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                tracing::debug_span!("request", method = %req.method(), path = %req.uri().path())
            }),
        );
    let serve = ServeConfig {
        header_read_timeout: std::time::Duration::from_secs(args.header_read_timeout_secs.max(1)),
        max_connections: args.max_connections,
        ..ServeConfig::default()
    };
    Ok(Server { gateway, app, serve })
}

#[cfg(test)]
mod tests {
    use super::{Args, check_cluster_args, redis_url, use_colour};
    use clap::Parser;
    use std::ffi::OsStr;

    fn check(args: &[&str]) -> Result<(), String> {
        check_cluster_args(
            &Args::try_parse_from(std::iter::once("chatico-server").chain(args.iter().copied())).expect("parse"),
        )
    }

    #[test]
    fn a_backplane_needs_postgres_and_a_known_scheme() {
        assert_eq!(check(&[]), Ok(()));
        assert_eq!(check(&["--database-url", "memory"]), Ok(()));
        for db in ["sqlite", "sqlite:/tmp/x.db", "memory"] {
            let e = check(&["--backplane", "redis://127.0.0.1:6379", "--database-url", db]).expect_err(db);
            assert!(e.contains("postgres://"), "{e}");
        }
        let e = check(&["--backplane", "amqp://x", "--database-url", "postgres://p@h/db"]).expect_err("scheme");
        assert!(e.contains("redis://HOST:PORT or nats://HOST:PORT"), "{e}");
        let pg = ["--database-url", "postgres://p@h/db"];
        assert_eq!(
            check(&[&["--backplane", "redis://127.0.0.1:6379"][..], &pg].concat()),
            Ok(())
        );
        let e = check(&[&["--backplane", "nats://127.0.0.1:4222"][..], &pg].concat()).expect_err("nats alone");
        assert!(e.contains("--redis-url"), "{e}");
        assert_eq!(
            check(
                &[
                    &["--backplane", "nats://127.0.0.1:4222", "--redis-url", "redis://r:6379"][..],
                    &pg
                ]
                .concat()
            ),
            Ok(())
        );
        let e = check(&[&["--backplane", "nats://h:1", "--redis-url", "nats://h:2"][..], &pg].concat())
            .expect_err("scheme");
        assert!(e.contains("--redis-url"), "{e}");
        let parse = |a: &[&str]| {
            Args::try_parse_from(std::iter::once("chatico-server").chain(a.iter().copied())).expect("parse")
        };
        assert_eq!(
            redis_url(&parse(&["--backplane", "redis://b:1"])).as_deref(),
            Some("redis://b:1")
        );
        assert_eq!(
            redis_url(&parse(&["--backplane", "redis://b:1", "--redis-url", "redis://s:2"])).as_deref(),
            Some("redis://s:2")
        );
        assert_eq!(redis_url(&parse(&[])), None);
        let e = check(&["--redis-url", "redis://r:6379"]).expect_err("state without a backplane");
        assert!(e.contains("--backplane"), "{e}");
        let e = check(&[&["--backplane", "nats://h:1", "--node-id", " "][..], &pg].concat()).expect_err("empty id");
        assert!(e.contains("--node-id"), "{e}");
    }

    #[test]
    fn colour_only_on_a_terminal_and_never_with_no_color() {
        assert!(use_colour(true, None));
        assert!(use_colour(true, Some(OsStr::new(""))), "an empty NO_COLOR is unset");
        assert!(!use_colour(true, Some(OsStr::new("1"))));
        assert!(!use_colour(false, None));
        assert!(!use_colour(false, Some(OsStr::new("1"))));
    }
}

//! Flags, secrets, and the assembly of store, engine and gateway.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use axum::Router;
use chatico_core::engine::Engine;
use chatico_core::ids::Phone;
use chatico_core::memory::MemoryStore;
use chatico_core::ports::{SmsSender, Store, SystemClock};
use chatico_core::{Config, MemoryOtpCache};
use chatico_store::blob::LocalDiskBlobStore;
use chatico_transport::gateway::{Gateway, GatewayConfig, OriginPolicy};
use clap::{Parser, ValueEnum};

/// The ChatiCO example server.
#[derive(Debug, Parser)]
#[command(name = "chatico-server", version, about)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "CHATICO_ADDR", default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,
    /// Where the server keeps its files: the generated JWT secret, uploads (`blobs/`).
    #[arg(long, env = "CHATICO_DATA_DIR", default_value = "chatico-data")]
    pub data_dir: PathBuf,
    /// Where data is kept. `memory` (lost on restart) is the only store in this build.
    #[arg(long, env = "CHATICO_DATABASE_URL", default_value = "memory")]
    pub database_url: String,
    /// The JWT signing secret (at least 32 bytes). Default: generated on first start and kept
    /// in `<data-dir>/jwt-secret`.
    #[arg(long, env = "CHATICO_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,
    /// How login codes are delivered.
    #[arg(long, env = "CHATICO_SMS", value_enum, default_value_t = SmsKind::Console)]
    pub sms: SmsKind,
    /// Browser origins allowed to open WebSockets (comma-separated, e.g.
    /// `https://chat.example.com`). Default: `http://127.0.0.1:<port>` and
    /// `http://localhost:<port>`. Clients without an `Origin` header (apps) are always allowed.
    #[arg(long = "allowed-origins", env = "CHATICO_ALLOWED_ORIGINS", value_delimiter = ',')]
    pub allowed_origins: Vec<String>,
    /// The web demo to serve at `/` (what `scripts/build-web.sh` writes). Without an
    /// `index.html` there, `/` is a short text page.
    #[arg(long, env = "CHATICO_WEB_DIR", default_value = "examples/web/dist")]
    pub web_dir: PathBuf,
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
}

pub fn init_tracing(args: &Args) {
    let filter = tracing_subscriber::EnvFilter::try_new(&args.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    if args.log_json {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// A development SMS sender: prints the message (and so the code) to the console.
struct DevConsoleSms;

#[async_trait]
impl SmsSender for DevConsoleSms {
    async fn send(&self, to: &Phone, body: &str) -> chatico_core::Result<()> {
        tracing::warn!(target: "chatico::dev_sms", to = %to, "DEVELOPMENT MODE SMS (not sent): {body}");
        Ok(())
    }
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
}

/// Assembles the server for the address it is bound to.
pub async fn build(args: &Args, bound: SocketAddr) -> Result<Server, String> {
    std::fs::create_dir_all(&args.data_dir)
        .map_err(|e| format!("cannot create data dir {}: {e}", args.data_dir.display()))?;
    let store: Arc<dyn Store> = match args.database_url.as_str() {
        "memory" => {
            tracing::warn!("in-memory store: data is lost when the server stops");
            Arc::new(MemoryStore::new())
        }
        other => return Err(format!("unsupported --database-url {other:?} (this build has: memory)")),
    };
    let mut config = Config::default();
    config.auth.jwt_secret = jwt_secret(args)?;
    config.validate().map_err(|e| format!("configuration: {e}"))?;
    let sms: Arc<dyn SmsSender> = match args.sms {
        SmsKind::Console => {
            tracing::warn!("DEVELOPMENT MODE: login codes are printed to this console, no SMS is sent");
            Arc::new(DevConsoleSms)
        }
    };
    let engine = Engine::new(store, Arc::new(SystemClock), config)
        .map_err(|e| format!("engine: {e}"))?
        .with_local_otp(Arc::new(MemoryOtpCache::new()), sms);
    let origins = if args.allowed_origins.is_empty() {
        let port = bound.port();
        vec![format!("http://127.0.0.1:{port}"), format!("http://localhost:{port}")]
    } else {
        args.allowed_origins.clone()
    };
    let blobs = LocalDiskBlobStore::open(args.data_dir.join("blobs"))
        .await
        .map_err(|e| format!("blob store in {}: {e}", args.data_dir.display()))?;
    let gateway = Gateway::builder(Arc::new(engine))
        .blob_store(Arc::new(blobs))
        .config(GatewayConfig {
            origins: OriginPolicy::List(origins),
            ..GatewayConfig::default()
        })
        .start()
        .await
        .map_err(|e| format!("gateway: {e}"))?;
    let app = crate::web::routes(&args.web_dir)
        .merge(gateway.router())
        // One `tracing` span per request (method, path, status, latency at debug level).
        .layer(tower_http::trace::TraceLayer::new_for_http());
    Ok(Server { gateway, app })
}

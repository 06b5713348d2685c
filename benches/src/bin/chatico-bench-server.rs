//! `chatico-bench-server`: the real ChatiCO gateway, engine and store with load-test
//! settings, for `chatico-load`. DEVELOPMENT AND BENCHMARKS ONLY: OTP codes are written to
//! `--otp-log` instead of being sent. See `chatico_benches::server`.
//!
//! `chatico-bench-server --addr 127.0.0.1:8080 --otp-log /tmp/chatico-otp.log`

use std::net::SocketAddr;
use std::path::PathBuf;

use chatico_benches::server::{self, ServerOptions, StoreChoice};
use clap::Parser;

/// The ChatiCO gateway over a real engine and store, with the OTP and per-user request rate
/// limits raised for a load test, and OTP codes written to a file (development only).
#[derive(Parser, Debug)]
#[command(name = "chatico-bench-server", version, about)]
struct Cli {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// Store: `memory`, `sqlite:PATH` (a fresh file for a clean run) or `postgres://URL` (a
    /// fresh schema is made per start).
    #[arg(long, default_value = "memory")]
    store: StoreChoice,
    /// File the development SMS sender appends OTP codes to (read by `chatico-load --otp-log`).
    #[arg(long)]
    otp_log: PathBuf,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// Gateway `checkpoint_every` (default: the gateway's, 64 live changes).
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Gateway `checkpoint_idle` in milliseconds (default: the gateway's, 250 ms).
    #[arg(long)]
    checkpoint_idle_ms: Option<u64>,
    /// Cluster mode: the backplane joining the nodes (`redis://HOST:PORT` or
    /// `nats://HOST:PORT`), as the example server's `--backplane`. Needs a `postgres://` store
    /// and `--schema` (the same for every node).
    #[arg(long)]
    backplane: Option<String>,
    /// The Redis of the shared state (presence, typing, OTP): default the backplane's URL when
    /// that is Redis; required with NATS.
    #[arg(long)]
    redis_url: Option<String>,
    /// This node's id on the backplane (generated when absent).
    #[arg(long)]
    node_id: Option<String>,
    /// The Postgres schema (default: a fresh one per start). Several nodes name the same one.
    #[arg(long)]
    schema: Option<String>,
    /// The secret access tokens are signed with (at least 32 bytes). Several nodes need the
    /// same one: a token from one node is checked by the others. Default: random per start.
    #[arg(long, env = "CHATICO_JWT_SECRET", hide_env_values = true)]
    jwt_secret: Option<String>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !cli.addr.ip().is_loopback() {
        eprintln!("chatico-bench-server: listens on loopback only (it logs OTP codes to a file)");
        return std::process::ExitCode::FAILURE;
    }
    let fds = chatico_benches::load::net::raise_fd_limit();
    let rt = match chatico_benches::init(cli.workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatico-bench-server: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async {
        let running = server::start(ServerOptions {
            addr: cli.addr,
            store: cli.store.clone(),
            otp_log: cli.otp_log.clone(),
            gateway: {
                let mut g = server::bench_gateway_config();
                if let Some(n) = cli.checkpoint_every {
                    g.checkpoint_every = n.max(1);
                }
                if let Some(ms) = cli.checkpoint_idle_ms {
                    g.checkpoint_idle = std::time::Duration::from_millis(ms);
                }
                g
            },
            config: {
                let mut c = server::bench_config();
                if let Some(s) = &cli.jwt_secret {
                    c.auth.jwt_secret = s.clone();
                }
                c
            },
            backplane: cli.backplane.clone(),
            redis_url: cli.redis_url.clone(),
            node_id: cli.node_id.clone(),
            schema: cli.schema.clone(),
        })
        .await?;
        eprintln!(
            "chatico-bench-server listening on {} (store {:?}, backplane {:?}, open-file limit {fds}); DEVELOPMENT MODE: OTP codes go to {}",
            running.addr,
            cli.store,
            cli.backplane.as_deref().unwrap_or("in-process"),
            cli.otp_log.display()
        );
        let _ = running.serve.await;
        Ok::<(), chatico_core::Error>(())
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatico-bench-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

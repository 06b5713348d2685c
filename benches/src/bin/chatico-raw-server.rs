//! `chatico-raw-server`: the raw bound, a minimal tokio-tungstenite broadcast server (no
//! auth, no storage). `chatico-raw-server --addr 127.0.0.1:9100`; clients connect to
//! `ws://127.0.0.1:9100/?group=N`. See `chatico_benches::raw`.

use std::net::SocketAddr;

use clap::Parser;

/// The raw WebSocket broadcast bound: every text frame a client sends is written to every
/// connection of its group (`?group=N`), the sender's included. No auth, no storage.
#[derive(Parser, Debug)]
#[command(name = "chatico-raw-server", version, about)]
struct Cli {
    /// Address to listen on (loopback only).
    #[arg(long, default_value = "127.0.0.1:9100")]
    addr: SocketAddr,
    /// Tokio worker threads (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if !cli.addr.ip().is_loopback() {
        eprintln!("chatico-raw-server: listens on loopback only");
        return std::process::ExitCode::FAILURE;
    }
    let fds = chatico_benches::load::net::raise_fd_limit();
    let rt = match chatico_benches::init(cli.workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("chatico-raw-server: runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let r = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(cli.addr).await?;
        eprintln!(
            "chatico-raw-server listening on {} (open-file limit {fds})",
            listener.local_addr()?
        );
        chatico_benches::raw::serve(listener).await
    });
    match r {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("chatico-raw-server: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

//! Run it: `cargo run -p chatico-server` — the ChatiCO gateway on http://127.0.0.1:8080,
//! with no other set-up (development mode: login codes are printed to the console).
//!
//! Everything is chosen by flags or environment variables (`--help` lists them): the listen
//! address, the data directory (the generated JWT secret and uploaded files live there), the
//! SMS sender, the allowed browser origins, the log format, the connection limits. Ctrl-C or
//! SIGTERM shuts down gracefully: no new connections, every open WebSocket closed with 1001
//! "going away" before the process exits, in-flight requests drained.

mod setup;
mod web;

use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    let args = setup::Args::parse();
    setup::init_tracing(&args);
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "chatico-server failed");
            eprintln!("chatico-server: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: setup::Args) -> Result<(), String> {
    let listener = tokio::net::TcpListener::bind(args.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.addr))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    let server = setup::build(&args, addr).await?;
    tracing::info!(%addr, "listening on http://{addr} (REST under /v1, WebSocket at /v1/ws)");
    server
        .gateway
        .serve(listener, server.app, server.serve, shutdown_signal())
        .await
        .map_err(|e| format!("server error: {e}"))?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

//! Run it: `cargo run -p chatico-embed-axum` — a host application on 127.0.0.1:3000 with its
//! own routes, ChatiCO nested under `/chat`, and two host endpoints that use the engine
//! through the host's own transport. See `src/lib.rs`. Development mode: login codes are
//! logged, not sent.

use std::sync::Arc;

use chatico_transport::gateway::ServeConfig;
use chatico_transport::sms::ConsoleSmsSender;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let (app, gateway) = chatico_embed_axum::host_app(Arc::new(ConsoleSmsSender::new())).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("host app on http://127.0.0.1:3000 — /health, /chat/v1/..., /host/...");
    // The gateway's server: header-read timeout and connection cap, and on Ctrl-C every
    // WebSocket closed with 1001 before the process exits.
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    gateway.serve(listener, app, ServeConfig::default(), ctrl_c).await?;
    Ok(())
}

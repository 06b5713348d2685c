//! Run it: `cargo run -p chatico-embed-axum` — a host application on 127.0.0.1:3000 with its
//! own routes, ChatiCO nested under `/chat`, and two host endpoints that use the engine
//! through the host's own transport. See `src/lib.rs`. Development mode: login codes are
//! logged, not sent.

use std::net::SocketAddr;
use std::sync::Arc;

use chatico_transport::sms::ConsoleSmsSender;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let (app, _gateway) = chatico_embed_axum::host_app(Arc::new(ConsoleSmsSender::new())).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("host app on http://127.0.0.1:3000 — /health, /chat/v1/..., /host/...");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

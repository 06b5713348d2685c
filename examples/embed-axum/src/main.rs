//! Run it: `cargo run -p chatico-embed-axum` — a host application on 127.0.0.1:3000 with its
//! own routes, ChatiCO nested under `/chat`, and two host endpoints that use the engine
//! through the host's own transport. See `src/lib.rs`.

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use chatico_core::ids::Phone;
use chatico_core::ports::SmsSender;

/// Development only: login codes go to the log.
struct LogSms;

#[async_trait]
impl SmsSender for LogSms {
    async fn send(&self, to: &Phone, body: &str) -> chatico_core::Result<()> {
        tracing::warn!(%to, "DEVELOPMENT MODE SMS (not sent): {body}");
        Ok(())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt().with_env_filter("info").init();
    let (app, _gateway) = chatico_embed_axum::host_app(Arc::new(LogSms)).await?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    tracing::info!("host app on http://127.0.0.1:3000 — /health, /chat/v1/..., /host/...");
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}

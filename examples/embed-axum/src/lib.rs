//! Embedding ChatiCO in an existing axum application.
//!
//! 1. **Nesting the router**: the host keeps its own routes (`/health`) and mounts the whole
//!    ChatiCO API under `/chat` (`/chat/v1/...`, the WebSocket at `/chat/v1/ws`, the OpenAPI
//!    document at `/chat/v1/openapi.json` with `servers: [{url: "/chat"}]`).
//! 2. **Driving the engine from the host's own transport**: `POST /host/messages` sends a
//!    message through [`Engine::send`](chatico_core::engine::Engine::send), acknowledges it
//!    in the host's own response format, and then hands the outcome's deliveries to
//!    [`Gateway::publish`] so WebSocket clients see it live (persist → acknowledge → fan out).
//!    `GET /host/events` streams a user's live events as server-sent events through
//!    [`Gateway::listen`]. Both authenticate with a ChatiCO access token here; a host would
//!    use its own sessions and map them to ChatiCO users.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use chatico_core::engine::{AuthContext, Engine, SendMessage};
use chatico_core::ids::ConversationId;
use chatico_core::memory::MemoryStore;
use chatico_core::model::Content;
use chatico_core::ports::{SmsSender, SystemClock};
use chatico_core::{Config, MemoryOtpCache};
use chatico_transport::gateway::{AppError, Gateway};
use futures::Stream;
use serde::Deserialize;
use serde_json::json;

/// The host application: its own routes plus ChatiCO.
pub async fn host_app(sms: Arc<dyn SmsSender>) -> chatico_core::Result<(Router, Gateway)> {
    let engine = Engine::new(Arc::new(MemoryStore::new()), Arc::new(SystemClock), Config::default())?
        .with_local_otp(Arc::new(MemoryOtpCache::new()), sms);
    let gateway = Gateway::builder(Arc::new(engine)).start().await?;
    let host_routes = Router::new()
        .route("/host/messages", post(host_send))
        .route("/host/events", get(host_events))
        .with_state(gateway.clone());
    let app = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(host_routes)
        .nest("/chat", gateway.router());
    Ok((app, gateway))
}

/// The host's own authentication; here, a ChatiCO bearer token checked by the engine.
async fn caller(gw: &Gateway, headers: &HeaderMap) -> Result<AuthContext, AppError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| AppError(chatico_core::Error::unauthorized("missing bearer token")))?;
    Ok(gw.engine().authenticate(token).await?)
}

#[derive(Deserialize)]
struct HostSend {
    conversation_id: ConversationId,
    text: String,
}

/// The host's own "send" endpoint, with its own answer format.
async fn host_send(
    State(gw): State<Gateway>,
    headers: HeaderMap,
    Json(req): Json<HostSend>,
) -> Result<Response, AppError> {
    let ctx = caller(&gw, &headers).await?;
    let client_msg_id = format!("host-{}", gw.engine().clock().now_ms());
    let outcome = gw
        .engine()
        .send(
            ctx.user_id,
            SendMessage {
                conversation_id: req.conversation_id,
                client_msg_id,
                content: Content::text(req.text),
                reply_to_seq: None,
            },
        )
        .await?;
    // Persisted; build the acknowledgement, then fan out.
    let ack = (
        StatusCode::ACCEPTED,
        Json(json!({ "ok": true, "seq": outcome.value.seq })),
    )
        .into_response();
    gw.publish(outcome.deliveries).await;
    Ok(ack)
}

/// The caller's live events as server-sent events (each `data:` is an `event` frame of
/// docs/PROTOCOL.md).
async fn host_events(
    State(gw): State<Gateway>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let ctx = caller(&gw, &headers).await?;
    let listener = gw.listen(ctx.user_id);
    let stream = futures::stream::unfold(listener, |mut l| async move {
        let frame = l.next().await?;
        Some((Ok(Event::default().data(frame)), l))
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

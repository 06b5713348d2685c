//! Pinned conversations: per user, bounded, listed first.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chatico_core::ErrorBody;
use chatico_core::ids::ConversationId;
use chatico_core::protocol::{PinState, paths};

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::ApiPath;

/// Pins a conversation for the caller (every device gets a `pinned` change); pinned
/// conversations list first, newest pin first. Pinning a pinned conversation changes
/// nothing and answers its pin time.
#[utoipa::path(put, path = paths::PIN, tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "Pinned", body = PinState),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 413, description = "`too_large` (`what`: pins; `limit`: the most pins a user may have)", body = ErrorBody)))]
pub(super) async fn pin(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
) -> ApiResult<Json<PinState>> {
    let o = gw.engine.pin(ctx.user_id, c).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Unpins a conversation for the caller (not pinned is not an error).
#[utoipa::path(delete, path = paths::PIN, tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Unpinned"),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn unpin(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.unpin(ctx.user_id, c).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

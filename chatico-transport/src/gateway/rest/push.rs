//! Push notifications: the caller's device token and per-conversation mutes.

use axum::extract::State;
use axum::http::StatusCode;
use chatico_core::ErrorBody;
use chatico_core::ids::ConversationId;
use chatico_core::protocol::{MuteRequest, RegisterPushRequest, paths};

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::{ApiJson, ApiPath};

/// Registers (or replaces, after the OS rotated it) the push token of the caller's session.
/// It is removed at logout or revocation of the session, and when the provider reports it
/// invalid.
#[utoipa::path(put, path = paths::PUSH_DEVICE, tag = "push", security(("bearer" = [])),
    request_body = RegisterPushRequest,
    responses((status = 204, description = "Registered"),
        (status = 400, description = "`invalid_input` (token, app_id, locale, platform)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn register_device(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<RegisterPushRequest>,
) -> ApiResult<StatusCode> {
    gw.engine.register_push(ctx, req).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Removes the push token of the caller's session (nothing to remove is not an error).
#[utoipa::path(delete, path = paths::PUSH_DEVICE, tag = "push", security(("bearer" = [])),
    responses((status = 204, description = "Removed"),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn unregister_device(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<StatusCode> {
    gw.engine.unregister_push(ctx).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mutes a conversation's pushes for the caller (every device) until `until`, or until
/// unmuted. The caller's devices get a `muted` change.
#[utoipa::path(put, path = paths::MUTE, tag = "push", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    request_body = MuteRequest,
    responses((status = 204, description = "Muted"),
        (status = 400, description = "`invalid_input` (until in the past)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn mute(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<MuteRequest>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.mute(ctx.user_id, c, req.until).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Unmutes a conversation for the caller.
#[utoipa::path(delete, path = paths::MUTE, tag = "push", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Unmuted"),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn unmute(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.unmute(ctx.user_id, c).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

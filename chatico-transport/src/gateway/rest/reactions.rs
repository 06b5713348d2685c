//! Editing a message and reacting to one.

use axum::Json;
use axum::extract::State;
use chatico_core::ErrorBody;
use chatico_core::ids::ConversationId;
use chatico_core::model::Message;
use chatico_core::protocol::{EditMessage, paths};

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::{ApiJson, ApiPath};

/// Edits a message the caller sent, within the edit window: the new text of a text
/// message, the new caption of a media message (blank removes it). The members get a
/// `message_edited` change.
#[utoipa::path(patch, path = paths::MESSAGE, tag = "messages",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("seq" = i64, Path)),
    request_body = EditMessage,
    responses((status = 200, description = "The message as edited", body = Message),
        (status = 400, description = "`invalid_input` (text, seq)", body = ErrorBody),
        (status = 403, description = "`forbidden` (not the sender, a system notice, the edit window passed, a block)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict` (deleted for everyone)", body = ErrorBody)))]
pub(super) async fn edit_message(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, seq)): ApiPath<(ConversationId, i64)>,
    ApiJson(req): ApiJson<EditMessage>,
) -> ApiResult<Json<Message>> {
    let o = gw.engine.edit_message(ctx.user_id, c, seq, req).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Adds the caller's reaction (idempotent). The members get a `reaction_added` change,
/// except across a block.
#[utoipa::path(put, path = paths::REACTION, tag = "messages",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("seq" = i64, Path),
        ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    responses((status = 200, description = "The message with its reactions", body = Message),
        (status = 400, description = "`invalid_input` (emoji, seq)", body = ErrorBody),
        (status = 403, description = "`forbidden` (a block in a direct conversation)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 409, description = "`conflict` (deleted for everyone)", body = ErrorBody),
        (status = 413, description = "`too_large` (distinct emoji on the message)", body = ErrorBody)))]
pub(super) async fn react(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, seq, emoji)): ApiPath<(ConversationId, i64, String)>,
) -> ApiResult<Json<Message>> {
    let o = gw.engine.react(ctx.user_id, c, seq, &emoji).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Takes the caller's reaction back (idempotent).
#[utoipa::path(delete, path = paths::REACTION, tag = "messages",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("seq" = i64, Path),
        ("emoji" = String, Path, description = "One emoji, percent-encoded")),
    responses((status = 200, description = "The message with its reactions", body = Message),
        (status = 400, description = "`invalid_input` (emoji, seq)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn unreact(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, seq, emoji)): ApiPath<(ConversationId, i64, String)>,
) -> ApiResult<Json<Message>> {
    let o = gw.engine.unreact(ctx.user_id, c, seq, &emoji).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

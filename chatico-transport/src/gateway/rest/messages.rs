//! History, send, delete, receipts and typing.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use chatico_core::ErrorBody;
use chatico_core::ids::ConversationId;
use chatico_core::model::{HistoryDirection, HistoryQuery, Member, Message};
use chatico_core::protocol::{DeleteScope, PostMessage, ReceiptBody, SendMessage, TypingRequest, paths};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HistoryParams {
    /// `before` (older than `anchor`; the newest page without an anchor) or `after`.
    /// Default `before`.
    #[param(value_type = Option<String>)]
    direction: Option<HistoryDirection>,
    /// A seq; absent means "the newest" with `before`, 0 with `after`.
    anchor: Option<i64>,
    /// Page size (clamped). Default 50.
    limit: Option<u32>,
}

/// A page of history, ascending by seq, as the caller sees it.
#[utoipa::path(get, path = paths::MESSAGES, tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid), HistoryParams),
    responses((status = 200, description = "Messages, ascending seq", body = Vec<Message>),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn history(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiQuery(q): ApiQuery<HistoryParams>,
) -> ApiResult<Json<Vec<Message>>> {
    let query = HistoryQuery {
        direction: q.direction.unwrap_or(HistoryDirection::Before),
        anchor: q.anchor,
        limit: q.limit.unwrap_or(50),
    };
    Ok(Json(gw.engine.history(ctx.user_id, c, query).await?))
}

/// Sends a message (idempotent on `client_msg_id`: a retry returns the original).
#[utoipa::path(post, path = paths::MESSAGES, tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = PostMessage,
    responses((status = 200, description = "The stored message", body = Message),
        (status = 400, description = "`invalid_input` (client_msg_id, content, reply_to_seq)", body = ErrorBody),
        (status = 403, description = "`forbidden` (a block in a direct conversation)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub(super) async fn send(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<PostMessage>,
) -> ApiResult<Json<Message>> {
    let o = gw
        .engine
        .send(
            ctx.user_id,
            SendMessage {
                conversation_id: c,
                client_msg_id: req.client_msg_id,
                content: req.content,
                reply_to_seq: req.reply_to_seq,
            },
        )
        .await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeleteParams {
    /// `me` (hide for the caller) or `everyone` (tombstone for all; the sender, or a group
    /// admin).
    #[param(value_type = String)]
    scope: DeleteScope,
}

/// Deletes a message for the caller or for everyone.
#[utoipa::path(delete, path = paths::MESSAGE, tag = "messages",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("seq" = i64, Path), DeleteParams),
    responses((status = 200, description = "`scope=everyone`: the tombstone", body = Message),
        (status = 204, description = "`scope=me`: hidden"),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn delete_message(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, seq)): ApiPath<(ConversationId, i64)>,
    ApiQuery(q): ApiQuery<DeleteParams>,
) -> ApiResult<Response> {
    match q.scope {
        DeleteScope::Me => {
            let o = gw.engine.delete_for_me(ctx.user_id, c, seq).await?;
            gw.publish(o.deliveries).await;
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        DeleteScope::Everyone => {
            let o = gw.engine.delete_for_everyone(ctx.user_id, c, seq).await?;
            gw.publish(o.deliveries).await;
            Ok(Json(o.value).into_response())
        }
    }
}

/// Moves the caller's delivered and/or read watermark.
#[utoipa::path(post, path = paths::RECEIPTS, tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = ReceiptBody,
    responses((status = 200, description = "The caller's membership with its watermarks", body = Member),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn receipts_handler(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<ReceiptBody>,
) -> ApiResult<Json<Member>> {
    let o = gw
        .engine
        .mark_receipts(ctx.user_id, c, req.delivered_seq, req.read_seq)
        .await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Starts or stops the caller's typing indicator.
#[utoipa::path(post, path = paths::TYPING, tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = TypingRequest,
    responses((status = 204, description = "Told"),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn typing(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<TypingRequest>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.typing(ctx.user_id, c, req.typing).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

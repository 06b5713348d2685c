//! Conversations and their members.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chatico_core::ErrorBody;
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::model::{Conversation, ConversationSummary, Member};
use chatico_core::protocol::{
    AddMembersRequest, ArchiveRequest, ConversationDetails, CreateGroupRequest, OpenDirectRequest, SetRoleRequest,
    UpdateGroupRequest, paths,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::{ApiJson, ApiPath, ApiQuery};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ConversationQuery {
    /// List archived conversations instead. Default false.
    archived: Option<bool>,
    /// Most conversations returned (clamped). Default 100.
    limit: Option<u32>,
}

/// The caller's conversations, newest activity first, with last message, unread count and
/// members.
#[utoipa::path(get, path = paths::CONVERSATIONS, tag = "conversations", security(("bearer" = [])),
    params(ConversationQuery),
    responses((status = 200, description = "Conversation list", body = Vec<ConversationSummary>),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn list_conversations(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(q): ApiQuery<ConversationQuery>,
) -> ApiResult<Json<Vec<ConversationSummary>>> {
    let list = gw
        .engine
        .list_conversations(ctx.user_id, q.archived.unwrap_or(false), q.limit.unwrap_or(100))
        .await?;
    Ok(Json(list))
}

/// Opens (or returns the existing) direct conversation with a user.
#[utoipa::path(post, path = paths::DIRECT, tag = "conversations", security(("bearer" = [])),
    request_body = OpenDirectRequest,
    responses((status = 200, description = "The direct conversation", body = Conversation),
        (status = 403, description = "`forbidden` (a block between the two)", body = ErrorBody),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
pub(super) async fn open_direct(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<OpenDirectRequest>,
) -> ApiResult<Json<Conversation>> {
    let o = gw.engine.open_direct(ctx.user_id, req.user_id).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Creates a group owned by the caller.
#[utoipa::path(post, path = paths::GROUP, tag = "conversations", security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses((status = 201, description = "The group", body = Conversation),
        (status = 400, description = "`invalid_input` (title, members)", body = ErrorBody),
        (status = 403, description = "`forbidden` (inviting across a block)", body = ErrorBody),
        (status = 404, description = "`not_found` (a member)", body = ErrorBody)))]
pub(super) async fn create_group(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<CreateGroupRequest>,
) -> ApiResult<(StatusCode, Json<Conversation>)> {
    let mut o = gw.engine.create_group(ctx.user_id, req.title, req.members).await?;
    if let Some(url) = req.avatar_url {
        let u = gw
            .engine
            .update_group(ctx.user_id, o.value.id, None, Some(Some(url)))
            .await?;
        o.deliveries.extend(u.deliveries);
        o.value = u.value;
    }
    gw.publish(o.deliveries).await;
    Ok((StatusCode::CREATED, Json(o.value)))
}

/// A conversation and its members.
#[utoipa::path(get, path = paths::CONVERSATION, tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "Conversation", body = ConversationDetails),
        (status = 404, description = "`not_found` (also when the caller is not a member)", body = ErrorBody)))]
pub(super) async fn get_conversation(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
) -> ApiResult<Json<ConversationDetails>> {
    Ok(Json(gw.engine.get_conversation(ctx.user_id, c).await?))
}

/// Changes a group's title and/or avatar (owner and admins).
#[utoipa::path(patch, path = paths::CONVERSATION, tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)), request_body = UpdateGroupRequest,
    responses((status = 200, description = "The group", body = Conversation),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 403, description = "`forbidden` (not an admin, or a direct conversation)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn update_group(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<UpdateGroupRequest>,
) -> ApiResult<Json<Conversation>> {
    let o = gw
        .engine
        .update_group(ctx.user_id, c, req.title, req.avatar_url)
        .await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Adds members to a group (owner and admins).
#[utoipa::path(post, path = paths::MEMBERS, tag = "conversations",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = AddMembersRequest,
    responses((status = 200, description = "The members added (existing members skipped)", body = Vec<Member>),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn add_members(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<AddMembersRequest>,
) -> ApiResult<Json<Vec<Member>>> {
    let o = gw.engine.add_members(ctx.user_id, c, req.user_ids).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Removes a member from a group.
#[utoipa::path(delete, path = paths::MEMBER, tag = "conversations",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn remove_member(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, u)): ApiPath<(ConversationId, UserId)>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.remove_member(ctx.user_id, c, u).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a member's role (the owner only; `admin` or `member`).
#[utoipa::path(put, path = paths::MEMBER_ROLE, tag = "conversations",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    request_body = SetRoleRequest,
    responses((status = 200, description = "The member", body = Member),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn set_role(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, u)): ApiPath<(ConversationId, UserId)>,
    ApiJson(req): ApiJson<SetRoleRequest>,
) -> ApiResult<Json<Member>> {
    let o = gw.engine.set_role(ctx.user_id, c, u, req.role).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Leaves a group (ownership passes on when the owner leaves).
#[utoipa::path(post, path = paths::LEAVE, tag = "conversations",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Left"),
        (status = 403, description = "`forbidden` (direct conversations cannot be left)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn leave(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.leave(ctx.user_id, c).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Archives or unarchives a conversation for the caller only.
#[utoipa::path(put, path = paths::ARCHIVE, tag = "conversations",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = ArchiveRequest,
    responses((status = 200, description = "The caller's membership", body = Member),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
pub(super) async fn archive(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<ArchiveRequest>,
) -> ApiResult<Json<Member>> {
    let o = gw.engine.archive(ctx.user_id, c, req.archived).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

//! The caller, users, presence, contacts and blocks.

use axum::Json;
use axum::extract::State;
use chatico_core::ids::UserId;
use chatico_core::model::{Presence, ProfilePatch, User, UserProfile};
use chatico_core::protocol::{Changed, paths};
use chatico_core::{Error, ErrorBody};
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::Caller;
use super::{ApiResult, S};
use crate::gateway::error::{ApiJson, ApiPath, ApiQuery};

/// The caller's own full record.
#[utoipa::path(get, path = paths::ME, tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = User),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn me(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<User>> {
    Ok(Json(gw.engine.me(ctx.user_id).await?))
}

/// Edits the caller's profile (absent fields unchanged; `avatar_url: null` clears it).
#[utoipa::path(patch, path = paths::ME, tag = "users", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, description = "The updated caller", body = User),
        (status = 400, description = "`invalid_input` (display_name, bio, avatar_url)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn update_me(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiJson(patch): ApiJson<ProfilePatch>,
) -> ApiResult<Json<User>> {
    let o = gw.engine.update_profile(ctx.user_id, patch).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UserQuery {
    /// Part of a display name; or, starting with `+`, a whole E.164 phone number, looked up
    /// exactly (never by prefix).
    q: Option<String>,
    /// The last user id of the previous page.
    #[param(value_type = Option<String>, format = Uuid)]
    after: Option<UserId>,
    /// Page size (clamped to the server maximum). Default 50.
    limit: Option<u32>,
}

/// Lists or searches users (ordered by id; page with `after`). A profile carries `phone` only
/// for the caller themself, users who have the caller as a contact, users sharing a
/// conversation with the caller, and the result of an exact-number lookup (`q=+<E.164>`).
#[utoipa::path(get, path = paths::USERS, tag = "users", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, description = "Profiles (`phone` only where the caller may see it)", body = Vec<UserProfile>),
        (status = 400, description = "`invalid_input` (q, after, limit)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn list_users(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(q): ApiQuery<UserQuery>,
) -> ApiResult<Json<Vec<UserProfile>>> {
    let users = gw
        .engine
        .list_users(ctx.user_id, q.q.as_deref(), q.after, q.limit.unwrap_or(50))
        .await?;
    Ok(Json(users))
}

/// One user's profile as the caller sees it (last seen and online hidden across a block).
#[utoipa::path(get, path = paths::USER, tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "Profile", body = UserProfile),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn get_user(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(user): ApiPath<UserId>,
) -> ApiResult<Json<UserProfile>> {
    Ok(Json(gw.engine.get_profile(ctx.user_id, user).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PresenceQuery {
    /// Comma-separated user ids.
    users: String,
}

/// Presence of some users (offline and no last seen across a block).
#[utoipa::path(get, path = paths::PRESENCE, tag = "users", security(("bearer" = [])), params(PresenceQuery),
    responses((status = 200, description = "Presence, in the order asked, unknown users left out", body = Vec<Presence>),
        (status = 400, description = "`invalid_input` (users)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn presence(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(q): ApiQuery<PresenceQuery>,
) -> ApiResult<Json<Vec<Presence>>> {
    let users = q
        .users
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|s| {
            s.trim()
                .parse::<UserId>()
                .map_err(|_| Error::invalid("users", "not a list of user ids"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Json(gw.engine.presence_of(ctx.user_id, &users).await?))
}

/// The caller's contacts.
#[utoipa::path(get, path = paths::CONTACTS, tag = "contacts", security(("bearer" = [])),
    responses((status = 200, description = "Contacts", body = Vec<UserProfile>),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn list_contacts(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<Vec<UserProfile>>> {
    Ok(Json(gw.engine.list_contacts(ctx.user_id).await?))
}

/// Adds a contact.
#[utoipa::path(put, path = paths::CONTACT, tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if already a contact", body = Changed),
        (status = 400, description = "`invalid_input` (yourself)", body = ErrorBody),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
pub(super) async fn add_contact(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(u): ApiPath<UserId>,
) -> ApiResult<Json<Changed>> {
    let o = gw.engine.add_contact(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

/// Removes a contact.
#[utoipa::path(delete, path = paths::CONTACT, tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if not a contact", body = Changed),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
pub(super) async fn remove_contact(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(u): ApiPath<UserId>,
) -> ApiResult<Json<Changed>> {
    let o = gw.engine.remove_contact(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

/// Users the caller blocked.
#[utoipa::path(get, path = paths::BLOCKS, tag = "contacts", security(("bearer" = [])),
    responses((status = 200, description = "Blocked users", body = Vec<UserProfile>),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn list_blocked(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<Vec<UserProfile>>> {
    Ok(Json(gw.engine.list_blocked(ctx.user_id).await?))
}

/// Blocks a user: presence, typing, last seen and profile updates are hidden both ways;
/// direct messages and group invitations between the two are refused.
#[utoipa::path(put, path = paths::BLOCK, tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if already blocked", body = Changed),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
pub(super) async fn block(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(u): ApiPath<UserId>,
) -> ApiResult<Json<Changed>> {
    let o = gw.engine.block(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

/// Unblocks a user.
#[utoipa::path(delete, path = paths::BLOCK, tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if not blocked", body = Changed),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
pub(super) async fn unblock(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(u): ApiPath<UserId>,
) -> ApiResult<Json<Changed>> {
    let o = gw.engine.unblock(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

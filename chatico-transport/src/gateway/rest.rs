//! REST handlers under `/v1`, the route table, and the authentication extractor.
//!
//! Every route is one row of [`routes`]; the router is built from that table and a test
//! checks each row against the OpenAPI document.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::BodyDataStream;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, patch, post, put};
use chatico_core::engine::{AuthContext, BlobContent};
use chatico_core::ids::{ConversationId, UserId};
use chatico_core::media::{ImageFormat, OCTET_STREAM};
use chatico_core::model::{
    BlobMeta, BlobPurpose, Conversation, ConversationSummary, HistoryDirection, HistoryQuery, Member, Message,
    Presence, ProfilePatch, User, UserProfile,
};
use chatico_core::protocol::{
    AddMembersRequest, ArchiveRequest, AuthTokens, Changed, ConversationDetails, CreateGroupRequest, DeleteScope,
    OpenDirectRequest, OtpRequest, OtpRequested, PostMessage, ReceiptBody, RefreshRequest, Revoked, SendMessage,
    SetRoleRequest, SyncResponse, TypingRequest, UpdateGroupRequest, VerifyRequest,
};
use chatico_core::{Error, ErrorBody};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::Shared;
use super::error::{ApiJson, ApiPath, ApiQuery, AppError};

type S = Arc<Shared>;
type ApiResult<T> = Result<T, AppError>;

/// Every route of the gateway: method, path (relative to where the router is mounted) and
/// handler. The router is built from this table only.
pub(crate) fn routes() -> Vec<(Method, &'static str, MethodRouter<S>)> {
    vec![
        (Method::POST, "/v1/auth/otp", post(request_otp)),
        (Method::POST, "/v1/auth/verify", post(verify_otp)),
        (Method::POST, "/v1/auth/refresh", post(refresh)),
        (Method::POST, "/v1/auth/logout", post(logout)),
        (Method::POST, "/v1/auth/logout-everywhere", post(logout_everywhere)),
        (Method::GET, "/v1/me", get(me)),
        (Method::PATCH, "/v1/me", patch(update_me)),
        (Method::GET, "/v1/users", get(list_users)),
        (Method::GET, "/v1/users/{user_id}", get(get_user)),
        (Method::GET, "/v1/presence", get(presence)),
        (Method::GET, "/v1/contacts", get(list_contacts)),
        (Method::PUT, "/v1/contacts/{user_id}", put(add_contact)),
        (Method::DELETE, "/v1/contacts/{user_id}", delete(remove_contact)),
        (Method::GET, "/v1/blocks", get(list_blocked)),
        (Method::PUT, "/v1/blocks/{user_id}", put(block)),
        (Method::DELETE, "/v1/blocks/{user_id}", delete(unblock)),
        (Method::GET, "/v1/conversations", get(list_conversations)),
        (Method::POST, "/v1/conversations/direct", post(open_direct)),
        (Method::POST, "/v1/conversations/group", post(create_group)),
        (
            Method::GET,
            "/v1/conversations/{conversation_id}",
            get(get_conversation),
        ),
        (
            Method::PATCH,
            "/v1/conversations/{conversation_id}",
            patch(update_group),
        ),
        (
            Method::POST,
            "/v1/conversations/{conversation_id}/members",
            post(add_members),
        ),
        (
            Method::DELETE,
            "/v1/conversations/{conversation_id}/members/{user_id}",
            delete(remove_member),
        ),
        (
            Method::PUT,
            "/v1/conversations/{conversation_id}/members/{user_id}/role",
            put(set_role),
        ),
        (Method::POST, "/v1/conversations/{conversation_id}/leave", post(leave)),
        (Method::PUT, "/v1/conversations/{conversation_id}/archive", put(archive)),
        (
            Method::GET,
            "/v1/conversations/{conversation_id}/messages",
            get(history),
        ),
        (Method::POST, "/v1/conversations/{conversation_id}/messages", post(send)),
        (
            Method::DELETE,
            "/v1/conversations/{conversation_id}/messages/{seq}",
            delete(delete_message),
        ),
        (
            Method::POST,
            "/v1/conversations/{conversation_id}/receipts",
            post(receipts_handler),
        ),
        (Method::POST, "/v1/conversations/{conversation_id}/typing", post(typing)),
        (Method::GET, "/v1/sync", get(sync)),
        (Method::POST, "/v1/blobs", post(upload)),
        (Method::GET, "/v1/blobs/{key}", get(download)),
        (Method::GET, "/v1/openapi.json", get(super::openapi::openapi_json)),
        (Method::GET, "/v1/ws", get(super::ws::upgrade)),
    ]
}

/// The gateway router over `shared`.
pub(crate) fn router(shared: S) -> Router {
    // JSON bodies. The upload handler reads its body itself, under `max_upload_bytes`
    // (axum applies `DefaultBodyLimit` only to its body extractors).
    let max_body = shared.config.max_body_bytes;
    let mut r: Router<S> = Router::new();
    for (_, path, handler) in routes() {
        r = r.route(path, handler.layer(DefaultBodyLimit::max(max_body)));
    }
    r.fallback(no_route)
        .layer(axum::middleware::map_response(method_not_allowed_body))
        .with_state(shared)
}

async fn no_route() -> AppError {
    AppError(Error::not_found("route"))
}

/// axum answers a known path with an unrouted method by 405 and an empty body; give it the
/// documented error body (`invalid_input`, field `method`), keeping the status and `Allow`.
async fn method_not_allowed_body(resp: Response) -> Response {
    if resp.status() != StatusCode::METHOD_NOT_ALLOWED {
        return resp;
    }
    let (mut parts, _) = resp.into_parts();
    let allow = parts
        .headers
        .get(header::ALLOW)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = AppError(Error::invalid(
        "method",
        format!("not allowed on this path (allowed: {allow})"),
    ))
    .body();
    let bytes = serde_json::to_vec(&body).unwrap_or_default();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts
        .headers
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Response::from_parts(parts, axum::body::Body::from(bytes))
}

/// The token of an `Authorization: Bearer <token>` header.
pub(crate) fn bearer(v: &HeaderValue) -> Result<&str, AppError> {
    let s = v
        .to_str()
        .map_err(|_| AppError(Error::unauthorized("malformed Authorization header")))?;
    match s.split_once(' ') {
        Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() => Ok(token.trim()),
        _ => Err(AppError(Error::unauthorized("expected Authorization: Bearer <token>"))),
    }
}

/// An authenticated caller (from `Authorization: Bearer`), within their rate limit.
pub(crate) struct Caller(pub AuthContext);

impl FromRequestParts<S> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, gw: &S) -> Result<Self, Self::Rejection> {
        let v = parts
            .headers
            .get(header::AUTHORIZATION)
            .ok_or_else(|| AppError(Error::unauthorized("missing bearer token")))?;
        let ctx = gw.engine.authenticate(bearer(v)?).await?;
        gw.rate.check(ctx.user_id)?;
        Ok(Caller(ctx))
    }
}

/// A signed-in reader of `GET /v1/blobs/{key}`, within their rate limit: the access token
/// comes from `Authorization: Bearer`, or — because `<img src>` cannot carry a header — from
/// the `access_token` query parameter. The query form is accepted on this route only: a
/// token in a URL can end up in browser history, proxy and server access logs, so it is
/// limited to reads of images by a token that lives minutes (the answers carry
/// `Referrer-Policy: no-referrer`; hosts should keep query strings of this route out of
/// their logs).
pub(crate) struct BlobReader(pub AuthContext);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct BlobReadParams {
    /// The access token, for clients that cannot send `Authorization` (`<img src>`).
    /// Ignored when the header is present.
    access_token: Option<String>,
}

impl FromRequestParts<S> for BlobReader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, gw: &S) -> Result<Self, Self::Rejection> {
        let token = match parts.headers.get(header::AUTHORIZATION) {
            Some(v) => bearer(v)?.to_owned(),
            None => axum::extract::Query::<BlobReadParams>::try_from_uri(&parts.uri)
                .ok()
                .and_then(|q| q.0.access_token)
                .filter(|t| !t.trim().is_empty())
                .ok_or_else(|| AppError(Error::unauthorized("missing bearer token or access_token")))?,
        };
        let ctx = gw.engine.authenticate(token.trim()).await?;
        gw.rate.check(ctx.user_id)?;
        Ok(BlobReader(ctx))
    }
}

/// The client address for OTP rate limits (`"unknown"` when the server was not started
/// with connect info).
pub(crate) struct CallerKey(String);

impl FromRequestParts<S> for CallerKey {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let key = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(a)| a.ip().to_string())
            .unwrap_or_else(|| "unknown".to_owned());
        Ok(CallerKey(key))
    }
}

// ---- auth ------------------------------------------------------------------------------

/// Sends a login code by SMS.
#[utoipa::path(post, path = "/v1/auth/otp", tag = "auth", request_body = OtpRequest,
    responses(
        (status = 200, description = "A code was sent (the same answer for unknown phones)", body = OtpRequested),
        (status = 400, description = "`invalid_input` (phone)", body = ErrorBody),
        (status = 429, description = "`rate_limited` (per phone, per client address, resend cooldown)", body = ErrorBody),
        (status = 503, description = "`unavailable` (SMS provider)", body = ErrorBody)))]
async fn request_otp(
    State(gw): State<S>,
    CallerKey(key): CallerKey,
    ApiJson(req): ApiJson<OtpRequest>,
) -> ApiResult<Json<OtpRequested>> {
    Ok(Json(gw.engine.request_otp(&req.phone, &key).await?))
}

/// Checks a login code; creates the account on first login; returns tokens.
#[utoipa::path(post, path = "/v1/auth/verify", tag = "auth", request_body = VerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthTokens),
        (status = 400, description = "`invalid_input` (phone, code, device)", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong, expired, used or exhausted code", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
async fn verify_otp(
    State(gw): State<S>,
    CallerKey(key): CallerKey,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<Json<AuthTokens>> {
    let o = gw.engine.verify_otp(&req.phone, &req.code, &key, req.device).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Exchanges a refresh token for new tokens (the old refresh token stops working).
#[utoipa::path(post, path = "/v1/auth/refresh", tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = AuthTokens),
        (status = 401, description = "`unauthorized`: invalid, expired, reused (session revoked)", body = ErrorBody)))]
async fn refresh(State(gw): State<S>, ApiJson(req): ApiJson<RefreshRequest>) -> ApiResult<Json<AuthTokens>> {
    let o = gw.engine.refresh(&req.refresh_token).await;
    // A reused token revoked the session: its sockets close on every node, error or not.
    gw.control(o.controls).await;
    Ok(Json(o.value?))
}

/// Revokes the caller's session; its WebSockets close with 4001 on every node.
#[utoipa::path(post, path = "/v1/auth/logout", tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out"),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn logout(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<StatusCode> {
    let o = gw.engine.logout(&ctx).await?;
    gw.control(o.controls).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every session of the caller; their WebSockets close with 4001 on every node.
#[utoipa::path(post, path = "/v1/auth/logout-everywhere", tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Sessions revoked", body = Revoked),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn logout_everywhere(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<Revoked>> {
    let o = gw.engine.logout_everywhere(&ctx).await?;
    gw.control(o.controls).await;
    Ok(Json(Revoked { sessions: o.value }))
}

// ---- users -----------------------------------------------------------------------------

/// The caller's own full record.
#[utoipa::path(get, path = "/v1/me", tag = "users", security(("bearer" = [])),
    responses((status = 200, description = "The caller", body = User),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn me(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<User>> {
    Ok(Json(gw.engine.me(ctx.user_id).await?))
}

/// Edits the caller's profile (absent fields unchanged; `avatar_url: null` clears it).
#[utoipa::path(patch, path = "/v1/me", tag = "users", security(("bearer" = [])), request_body = ProfilePatch,
    responses((status = 200, description = "The updated caller", body = User),
        (status = 400, description = "`invalid_input` (display_name, bio, avatar_url)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn update_me(
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
#[utoipa::path(get, path = "/v1/users", tag = "users", security(("bearer" = [])), params(UserQuery),
    responses((status = 200, description = "Profiles (`phone` only where the caller may see it)", body = Vec<UserProfile>),
        (status = 400, description = "`invalid_input` (q, after, limit)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn list_users(
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
#[utoipa::path(get, path = "/v1/users/{user_id}", tag = "users", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "Profile", body = UserProfile),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn get_user(
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
#[utoipa::path(get, path = "/v1/presence", tag = "users", security(("bearer" = [])), params(PresenceQuery),
    responses((status = 200, description = "Presence, in the order asked, unknown users left out", body = Vec<Presence>),
        (status = 400, description = "`invalid_input` (users)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn presence(
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

// ---- contacts and blocks ---------------------------------------------------------------

/// The caller's contacts.
#[utoipa::path(get, path = "/v1/contacts", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, description = "Contacts", body = Vec<UserProfile>),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn list_contacts(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<Vec<UserProfile>>> {
    Ok(Json(gw.engine.list_contacts(ctx.user_id).await?))
}

/// Adds a contact.
#[utoipa::path(put, path = "/v1/contacts/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if already a contact", body = Changed),
        (status = 400, description = "`invalid_input` (yourself)", body = ErrorBody),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
async fn add_contact(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(u): ApiPath<UserId>,
) -> ApiResult<Json<Changed>> {
    let o = gw.engine.add_contact(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

/// Removes a contact.
#[utoipa::path(delete, path = "/v1/contacts/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if not a contact", body = Changed),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
async fn remove_contact(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(u): ApiPath<UserId>,
) -> ApiResult<Json<Changed>> {
    let o = gw.engine.remove_contact(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

/// Users the caller blocked.
#[utoipa::path(get, path = "/v1/blocks", tag = "contacts", security(("bearer" = [])),
    responses((status = 200, description = "Blocked users", body = Vec<UserProfile>),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn list_blocked(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<Vec<UserProfile>>> {
    Ok(Json(gw.engine.list_blocked(ctx.user_id).await?))
}

/// Blocks a user: presence, typing, last seen and profile updates are hidden both ways;
/// direct messages and group invitations between the two are refused.
#[utoipa::path(put, path = "/v1/blocks/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if already blocked", body = Changed),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
async fn block(State(gw): State<S>, Caller(ctx): Caller, ApiPath(u): ApiPath<UserId>) -> ApiResult<Json<Changed>> {
    let o = gw.engine.block(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

/// Unblocks a user.
#[utoipa::path(delete, path = "/v1/blocks/{user_id}", tag = "contacts", security(("bearer" = [])),
    params(("user_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "`changed`: false if not blocked", body = Changed),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
async fn unblock(State(gw): State<S>, Caller(ctx): Caller, ApiPath(u): ApiPath<UserId>) -> ApiResult<Json<Changed>> {
    let o = gw.engine.unblock(ctx.user_id, u).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(Changed { changed: o.value }))
}

// ---- conversations ---------------------------------------------------------------------

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
#[utoipa::path(get, path = "/v1/conversations", tag = "conversations", security(("bearer" = [])),
    params(ConversationQuery),
    responses((status = 200, description = "Conversation list", body = Vec<ConversationSummary>),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
async fn list_conversations(
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
#[utoipa::path(post, path = "/v1/conversations/direct", tag = "conversations", security(("bearer" = [])),
    request_body = OpenDirectRequest,
    responses((status = 200, description = "The direct conversation", body = Conversation),
        (status = 403, description = "`forbidden` (a block between the two)", body = ErrorBody),
        (status = 404, description = "`not_found` (user)", body = ErrorBody)))]
async fn open_direct(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiJson(req): ApiJson<OpenDirectRequest>,
) -> ApiResult<Json<Conversation>> {
    let o = gw.engine.open_direct(ctx.user_id, req.user_id).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Creates a group owned by the caller.
#[utoipa::path(post, path = "/v1/conversations/group", tag = "conversations", security(("bearer" = [])),
    request_body = CreateGroupRequest,
    responses((status = 201, description = "The group", body = Conversation),
        (status = 400, description = "`invalid_input` (title, members)", body = ErrorBody),
        (status = 403, description = "`forbidden` (inviting across a block)", body = ErrorBody),
        (status = 404, description = "`not_found` (a member)", body = ErrorBody)))]
async fn create_group(
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
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}", tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 200, description = "Conversation", body = ConversationDetails),
        (status = 404, description = "`not_found` (also when the caller is not a member)", body = ErrorBody)))]
async fn get_conversation(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
) -> ApiResult<Json<ConversationDetails>> {
    Ok(Json(gw.engine.get_conversation(ctx.user_id, c).await?))
}

/// Changes a group's title and/or avatar (owner and admins).
#[utoipa::path(patch, path = "/v1/conversations/{conversation_id}", tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid)), request_body = UpdateGroupRequest,
    responses((status = 200, description = "The group", body = Conversation),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 403, description = "`forbidden` (not an admin, or a direct conversation)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn update_group(
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
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/members", tag = "conversations",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = AddMembersRequest,
    responses((status = 200, description = "The members added (existing members skipped)", body = Vec<Member>),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn add_members(
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
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}/members/{user_id}", tag = "conversations",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Removed"),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn remove_member(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath((c, u)): ApiPath<(ConversationId, UserId)>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.remove_member(ctx.user_id, c, u).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Changes a member's role (the owner only; `admin` or `member`).
#[utoipa::path(put, path = "/v1/conversations/{conversation_id}/members/{user_id}/role", tag = "conversations",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("user_id" = String, Path, format = Uuid)),
    request_body = SetRoleRequest,
    responses((status = 200, description = "The member", body = Member),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn set_role(
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
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/leave", tag = "conversations",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    responses((status = 204, description = "Left"),
        (status = 403, description = "`forbidden` (direct conversations cannot be left)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn leave(State(gw): State<S>, Caller(ctx): Caller, ApiPath(c): ApiPath<ConversationId>) -> ApiResult<StatusCode> {
    let o = gw.engine.leave(ctx.user_id, c).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Archives or unarchives a conversation for the caller only.
#[utoipa::path(put, path = "/v1/conversations/{conversation_id}/archive", tag = "conversations",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = ArchiveRequest,
    responses((status = 200, description = "The caller's membership", body = Member),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn archive(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<ArchiveRequest>,
) -> ApiResult<Json<Member>> {
    let o = gw.engine.archive(ctx.user_id, c, req.archived).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

// ---- messages --------------------------------------------------------------------------

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
#[utoipa::path(get, path = "/v1/conversations/{conversation_id}/messages", tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid), HistoryParams),
    responses((status = 200, description = "Messages, ascending seq", body = Vec<Message>),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn history(
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
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/messages", tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = PostMessage,
    responses((status = 200, description = "The stored message", body = Message),
        (status = 400, description = "`invalid_input` (client_msg_id, content, reply_to_seq)", body = ErrorBody),
        (status = 403, description = "`forbidden` (a block in a direct conversation)", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
async fn send(
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
#[utoipa::path(delete, path = "/v1/conversations/{conversation_id}/messages/{seq}", tag = "messages",
    security(("bearer" = [])),
    params(("conversation_id" = String, Path, format = Uuid), ("seq" = i64, Path), DeleteParams),
    responses((status = 200, description = "`scope=everyone`: the tombstone", body = Message),
        (status = 204, description = "`scope=me`: hidden"),
        (status = 403, description = "`forbidden`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn delete_message(
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
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/receipts", tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = ReceiptBody,
    responses((status = 200, description = "The caller's membership with its watermarks", body = Member),
        (status = 400, description = "`invalid_input`", body = ErrorBody),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn receipts_handler(
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
#[utoipa::path(post, path = "/v1/conversations/{conversation_id}/typing", tag = "messages",
    security(("bearer" = [])), params(("conversation_id" = String, Path, format = Uuid)),
    request_body = TypingRequest,
    responses((status = 204, description = "Told"),
        (status = 404, description = "`not_found`", body = ErrorBody)))]
async fn typing(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiPath(c): ApiPath<ConversationId>,
    ApiJson(req): ApiJson<TypingRequest>,
) -> ApiResult<StatusCode> {
    let o = gw.engine.typing(ctx.user_id, c, req.typing).await?;
    gw.publish(o.deliveries).await;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SyncParams {
    /// The cursor to read after (0 for everything).
    since: i64,
    /// Page size (clamped). Default 200.
    limit: Option<u32>,
}

/// Changes after a cursor (one page) and the ephemeral state now.
#[utoipa::path(get, path = "/v1/sync", tag = "sync", security(("bearer" = [])), params(SyncParams),
    responses((status = 200, description = "A page of changes; `limited` when more remain", body = SyncResponse),
        (status = 400, description = "`invalid_input` (since)", body = ErrorBody)))]
async fn sync(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(q): ApiQuery<SyncParams>,
) -> ApiResult<Json<SyncResponse>> {
    let limit = q.limit.unwrap_or(gw.config.sync_page);
    Ok(Json(gw.engine.sync(ctx.user_id, q.since, limit).await?))
}

// ---- blobs -----------------------------------------------------------------------------

/// An upload body in the OpenAPI document: raw bytes, not JSON.
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, format = Binary)]
#[allow(dead_code)]
pub(crate) struct ImageBytes(Vec<u8>);

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UploadParams {
    /// `avatar` or `media`.
    #[param(value_type = String)]
    purpose: BlobPurpose,
}

/// Uploads an image (PNG, JPEG, GIF or WebP; the type is sniffed from the bytes and the file
/// checked complete, never trusted from the client). Use the returned key in a media
/// message, or `/v1/blobs/{key}` as an avatar URL.
///
/// The size limit holds while the body streams in: a `Content-Length` over it is refused
/// before any of the body is read, a body without one (chunked) as soon as the bytes read
/// pass it; nothing is stored before the whole file has passed every check.
#[utoipa::path(post, path = "/v1/blobs", tag = "blobs", security(("bearer" = [])), params(UploadParams),
    request_body(description = "The file's raw bytes (any `Content-Type`: the type is sniffed)",
        content((ImageBytes = "application/octet-stream"), (ImageBytes = "image/png"), (ImageBytes = "image/jpeg"),
            (ImageBytes = "image/gif"), (ImageBytes = "image/webp"))),
    responses((status = 201, description = "Stored", body = BlobMeta),
        (status = 400, description = "`invalid_input` (field `file`: not a complete PNG, JPEG, GIF or WebP, \
            whatever the `Content-Type` or file name; field `body`: the body could not be read)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 413, description = "`too_large`: more bytes than the upload limit, or image dimensions \
            (from the header, before any decoding) over the pixel limit", body = ErrorBody),
        (status = 503, description = "`unavailable` (no blob store, or it is down)", body = ErrorBody)))]
async fn upload(
    State(gw): State<S>,
    Caller(ctx): Caller,
    ApiQuery(q): ApiQuery<UploadParams>,
    request: axum::extract::Request,
) -> Response {
    let max = gw.config.max_upload_bytes;
    let headers = request.headers();
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let expects_continue = headers
        .get(header::EXPECT)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    let mut body = request.into_body().into_data_stream();
    // A declared length over the limit: refused before a byte of the body is read. A
    // client waiting for `100 Continue` never sends it; others have it drained.
    if let Some(n) = declared
        && n > max as u64
    {
        let drain = (!expects_continue && n <= gw.config.upload_drain_bytes as u64).then_some(body);
        return upload_too_large(&gw, drain);
    }
    // Otherwise the body is read as it streams in and refused as soon as the bytes read
    // pass the limit: at most `max` bytes are ever held.
    // Grown as bytes arrive: a declared length is not trusted with an allocation up front.
    let mut buf = Vec::with_capacity(declared.map_or(64 * 1024, |n| n as usize).min(256 * 1024));
    while let Some(piece) = body.next().await {
        let Ok(piece) = piece else {
            return AppError(Error::invalid("body", "the upload could not be read to its end")).into_response();
        };
        if buf.len() + piece.len() > max {
            return upload_too_large(&gw, Some(body));
        }
        buf.extend_from_slice(&piece);
    }
    match gw.engine.upload(ctx.user_id, q.purpose, Bytes::from(buf)).await {
        Ok(meta) => (StatusCode::CREATED, Json(meta)).into_response(),
        Err(e) => AppError(e).into_response(),
    }
}

/// 413 for an upload over the limit. With the rest of the body (`drain`), a task reads and
/// discards it — up to `upload_drain_bytes` more, within `upload_drain_timeout` — while the
/// answer goes out, so that a client still sending sees the answer rather than a reset
/// connection. Without it, the answer says `Connection: close` and the unread body is
/// dropped with the connection.
fn upload_too_large(gw: &S, drain: Option<BodyDataStream>) -> Response {
    let mut resp = AppError(Error::too_large("upload", gw.config.max_upload_bytes as u64)).into_response();
    match drain {
        Some(mut body) if gw.config.upload_drain_bytes > 0 => {
            let (cap, deadline) = (gw.config.upload_drain_bytes, gw.config.upload_drain_timeout);
            tokio::spawn(async move {
                let mut drained = 0usize;
                let _ = tokio::time::timeout(deadline, async {
                    while let Some(Ok(piece)) = body.next().await {
                        drained += piece.len();
                        if drained > cap {
                            break;
                        }
                    }
                })
                .await;
            });
        }
        _ => {
            resp.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
    }
    resp
}

/// Serves a blob to a signed-in user who may see it: an avatar to anyone signed in; a media
/// blob to its owner and to the members of a conversation where a message references it.
/// Anything else answers `not_found`, exactly like a missing key. Authenticate with
/// `Authorization: Bearer`, or with the access token in `access_token` (for `<img src>`;
/// this route only). Allowlisted images are served `inline`, anything else as an
/// `attachment`, always with `X-Content-Type-Options: nosniff`. External stores redirect
/// (after the same authorization) to a short-lived signed URL.
#[utoipa::path(get, path = "/v1/blobs/{key}", tag = "blobs",
    security(("bearer" = []), ("access_token" = [])),
    params(("key" = String, Path), BlobReadParams),
    responses((status = 200, description = "The bytes, with their sniffed type, `X-Content-Type-Options: nosniff`, \
            `Content-Disposition: inline` for PNG/JPEG/GIF/WebP (`attachment` otherwise), \
            `Cache-Control: private`, `Referrer-Policy: no-referrer`", content_type = "application/octet-stream"),
        (status = 307, description = "Redirect to a short-lived signed URL of the blob store"),
        (status = 401, description = "`unauthorized`: no token, or a bad one", body = ErrorBody),
        (status = 404, description = "`not_found`: no such blob, or not one the caller may see", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
async fn download(
    State(gw): State<S>,
    BlobReader(ctx): BlobReader,
    ApiPath(key): ApiPath<String>,
) -> ApiResult<Response> {
    let (meta, blob) = match gw.engine.open_blob(ctx.user_id, &key).await? {
        BlobContent::Redirect { url } => {
            let location =
                HeaderValue::from_str(&url).map_err(|_| Error::internal("the blob store signed an invalid URL"))?;
            let mut resp = StatusCode::TEMPORARY_REDIRECT.into_response();
            let h = resp.headers_mut();
            h.insert(header::LOCATION, location);
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
            h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
            return Ok(resp);
        }
        BlobContent::Bytes { meta, blob } => (meta, blob),
    };
    let mut resp = blob.bytes.into_response();
    let h = resp.headers_mut();
    for (name, value) in blob_headers(&meta.content_type) {
        h.insert(name, value);
    }
    Ok(resp)
}

/// The headers a served blob carries: its sniffed type, `nosniff`, `inline` only for an
/// allowlisted image type (anything else — which uploads never store, but a store filled
/// some other way might hold — is an `attachment` of type `application/octet-stream` when
/// its type is not even a valid header), a sandboxing CSP for a blob opened as a page,
/// private caching, and no referrer.
fn blob_headers(content_type: &str) -> Vec<(header::HeaderName, HeaderValue)> {
    let image = ImageFormat::from_content_type(content_type).is_some();
    let ty = HeaderValue::from_str(content_type).unwrap_or(HeaderValue::from_static(OCTET_STREAM));
    vec![
        (header::CONTENT_TYPE, ty),
        (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
        (
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static(if image { "inline" } else { "attachment" }),
        ),
        (
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static("default-src 'none'; sandbox"),
        ),
        (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=300")),
        (header::REFERRER_POLICY, HeaderValue::from_static("no-referrer")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(bearer(&HeaderValue::from_static("Bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer(&HeaderValue::from_static("bearer  abc ")).ok(), Some("abc"));
        assert!(bearer(&HeaderValue::from_static("Basic abc")).is_err());
        assert!(bearer(&HeaderValue::from_static("Bearer ")).is_err());
        assert!(bearer(&HeaderValue::from_static("abc")).is_err());
    }

    #[test]
    fn every_route_is_in_the_openapi_document_and_nothing_else_is() {
        let doc = super::super::openapi();
        let mut documented = std::collections::HashSet::new();
        for (path, item) in &doc.paths.paths {
            let ops = [
                (Method::GET, item.get.is_some()),
                (Method::POST, item.post.is_some()),
                (Method::PUT, item.put.is_some()),
                (Method::PATCH, item.patch.is_some()),
                (Method::DELETE, item.delete.is_some()),
            ];
            for (m, present) in ops {
                if present {
                    documented.insert((m, path.clone()));
                }
            }
        }
        let routed: std::collections::HashSet<(Method, String)> =
            routes().into_iter().map(|(m, p, _)| (m, p.to_owned())).collect();
        for r in &routed {
            assert!(
                documented.contains(r),
                "route {} {} is not in the OpenAPI document",
                r.0,
                r.1
            );
        }
        for d in &documented {
            assert!(routed.contains(d), "{} {} is documented but not routed", d.0, d.1);
        }
        assert!(
            doc.components
                .as_ref()
                .is_some_and(|c| c.security_schemes.contains_key("bearer"))
        );
    }

    #[test]
    fn the_route_table_has_no_duplicates() {
        let mut seen = std::collections::HashSet::new();
        for (m, p, _) in routes() {
            assert!(seen.insert((m.clone(), p)), "{m} {p} twice");
        }
    }
}

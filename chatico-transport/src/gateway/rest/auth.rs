//! `/v1/auth/*`: OTP login, refresh, logout.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chatico_core::ErrorBody;
use chatico_core::protocol::{AuthTokens, OtpRequest, OtpRequested, RefreshRequest, Revoked, VerifyRequest, paths};

use super::extract::{Caller, CallerKey};
use super::{ApiResult, S};
use crate::gateway::error::ApiJson;

/// Sends a login code by SMS.
#[utoipa::path(post, path = paths::AUTH_OTP, tag = "auth", request_body = OtpRequest,
    responses(
        (status = 200, description = "A code was sent (the same answer for unknown phones)", body = OtpRequested),
        (status = 400, description = "`invalid_input` (phone)", body = ErrorBody),
        (status = 429, description = "`rate_limited` (per phone, per client address, resend cooldown)", body = ErrorBody),
        (status = 503, description = "`unavailable` (SMS provider)", body = ErrorBody)))]
pub(super) async fn request_otp(
    State(gw): State<S>,
    CallerKey(key): CallerKey,
    ApiJson(req): ApiJson<OtpRequest>,
) -> ApiResult<Json<OtpRequested>> {
    Ok(Json(gw.engine.request_otp(&req.phone, &key).await?))
}

/// Checks a login code; creates the account on first login; returns tokens.
#[utoipa::path(post, path = paths::AUTH_VERIFY, tag = "auth", request_body = VerifyRequest,
    responses(
        (status = 200, description = "Logged in", body = AuthTokens),
        (status = 400, description = "`invalid_input` (phone, code, device)", body = ErrorBody),
        (status = 401, description = "`unauthorized`: wrong, expired, used or exhausted code", body = ErrorBody),
        (status = 429, description = "`rate_limited`", body = ErrorBody)))]
pub(super) async fn verify_otp(
    State(gw): State<S>,
    CallerKey(key): CallerKey,
    ApiJson(req): ApiJson<VerifyRequest>,
) -> ApiResult<Json<AuthTokens>> {
    let o = gw.engine.verify_otp(&req.phone, &req.code, &key, req.device).await?;
    gw.publish(o.deliveries).await;
    Ok(Json(o.value))
}

/// Exchanges a refresh token for new tokens (the old refresh token stops working).
#[utoipa::path(post, path = paths::AUTH_REFRESH, tag = "auth", request_body = RefreshRequest,
    responses(
        (status = 200, description = "New tokens", body = AuthTokens),
        (status = 401, description = "`unauthorized`: invalid, expired, reused (session revoked)", body = ErrorBody)))]
pub(super) async fn refresh(State(gw): State<S>, ApiJson(req): ApiJson<RefreshRequest>) -> ApiResult<Json<AuthTokens>> {
    let o = gw.engine.refresh(&req.refresh_token).await;
    // A reused token revoked the session: its sockets close on every node, error or not.
    gw.control(o.controls).await;
    Ok(Json(o.value?))
}

/// Revokes the caller's session; its WebSockets close with 4001 on every node.
#[utoipa::path(post, path = paths::AUTH_LOGOUT, tag = "auth", security(("bearer" = [])),
    responses((status = 204, description = "Logged out"),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn logout(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<StatusCode> {
    let o = gw.engine.logout(&ctx).await?;
    gw.control(o.controls).await;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes every session of the caller; their WebSockets close with 4001 on every node.
#[utoipa::path(post, path = paths::AUTH_LOGOUT_EVERYWHERE, tag = "auth", security(("bearer" = [])),
    responses((status = 200, description = "Sessions revoked", body = Revoked),
        (status = 401, description = "`unauthorized`", body = ErrorBody)))]
pub(super) async fn logout_everywhere(State(gw): State<S>, Caller(ctx): Caller) -> ApiResult<Json<Revoked>> {
    let o = gw.engine.logout_everywhere(&ctx).await?;
    gw.control(o.controls).await;
    Ok(Json(Revoked { sessions: o.value }))
}

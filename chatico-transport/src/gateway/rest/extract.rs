//! The extractors every REST handler shares: the authenticated caller (bearer token, then
//! the per-user rate limit), the blob reader (bearer or `access_token`), and the client
//! address for OTP rate limits.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, header};
use chatico_core::Error;
use chatico_core::engine::AuthContext;
use serde::Deserialize;
use utoipa::IntoParams;

use super::S;
use crate::gateway::error::AppError;

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
pub(crate) struct CallerKey(pub String);

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

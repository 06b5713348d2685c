//! Uploads and downloads of blobs.

use axum::Json;
use axum::body::{BodyDataStream, Bytes};
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chatico_core::engine::BlobContent;
use chatico_core::media::{ImageFormat, OCTET_STREAM};
use chatico_core::model::{BlobMeta, BlobPurpose};
use chatico_core::protocol::paths;
use chatico_core::{Error, ErrorBody};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::extract::{BlobReadParams, BlobReader, Caller};
use super::{ApiResult, S};
use crate::gateway::error::{ApiPath, ApiQuery, AppError};

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
#[utoipa::path(post, path = paths::BLOBS, tag = "blobs", security(("bearer" = [])), params(UploadParams),
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
pub(super) async fn upload(
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
#[utoipa::path(get, path = paths::BLOB, tag = "blobs",
    security(("bearer" = []), ("access_token" = [])),
    params(("key" = String, Path), BlobReadParams),
    responses((status = 200, description = "The bytes, with their sniffed type, `X-Content-Type-Options: nosniff`, \
            `Content-Disposition: inline` for PNG/JPEG/GIF/WebP (`attachment` otherwise), \
            `Cache-Control: private`, `Referrer-Policy: no-referrer`", content_type = "application/octet-stream"),
        (status = 307, description = "Redirect to a short-lived signed URL of the blob store"),
        (status = 401, description = "`unauthorized`: no token, or a bad one", body = ErrorBody),
        (status = 404, description = "`not_found`: no such blob, or not one the caller may see", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody)))]
pub(super) async fn download(
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

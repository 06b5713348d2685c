//! REST handlers under `/v1`, by area, and the one declaration of the routes.
//!
//! [`api`] lists every handler once (`routes!`); each handler's `#[utoipa::path]` names its
//! method and its path (a [`chatico_core::protocol::paths`] template), so the axum router and
//! the OpenAPI document are two views of the same declaration and cannot drift apart.
//! Handlers only translate HTTP to an engine call and back (then publish the outcome's
//! deliveries: persist → acknowledge → fan out); the shared extractors are in [`extract`].

mod auth;
mod blobs;
mod conversations;
mod extract;
mod health;
mod messages;
mod pins;
mod push;
mod reactions;
mod search;
mod sync;
mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use chatico_core::Error;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::Shared;
use super::error::AppError;

pub(crate) use extract::bearer;

type S = Arc<Shared>;
type ApiResult<T> = Result<T, AppError>;

/// Every route of the gateway, with its documentation: the router and the OpenAPI document
/// are both split from this (paths relative to where the router is mounted).
pub(crate) fn api() -> OpenApiRouter<S> {
    OpenApiRouter::with_openapi(super::openapi::base())
        .routes(routes!(auth::request_otp))
        .routes(routes!(auth::verify_otp))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(auth::logout_everywhere))
        .routes(routes!(users::me, users::update_me))
        .routes(routes!(users::list_users))
        .routes(routes!(users::get_user))
        .routes(routes!(users::presence))
        .routes(routes!(users::list_contacts))
        .routes(routes!(users::add_contact, users::remove_contact))
        .routes(routes!(users::list_blocked))
        .routes(routes!(users::block, users::unblock))
        .routes(routes!(conversations::list_conversations))
        .routes(routes!(conversations::open_direct))
        .routes(routes!(conversations::create_group))
        .routes(routes!(conversations::get_conversation, conversations::update_group))
        .routes(routes!(conversations::add_members))
        .routes(routes!(conversations::remove_member))
        .routes(routes!(conversations::set_role))
        .routes(routes!(conversations::leave))
        .routes(routes!(conversations::archive))
        .routes(routes!(push::mute, push::unmute))
        .routes(routes!(pins::pin, pins::unpin))
        .routes(routes!(push::register_device, push::unregister_device))
        .routes(routes!(messages::history, messages::send))
        .routes(routes!(messages::delete_message, reactions::edit_message))
        .routes(routes!(messages::receipts_handler))
        .routes(routes!(messages::typing))
        .routes(routes!(sync::sync))
        .routes(routes!(blobs::upload))
        .routes(routes!(blobs::download))
        .routes(routes!(super::openapi::openapi_json))
        .routes(routes!(super::ws::upgrade))
        .routes(routes!(reactions::react, reactions::unreact))
        .routes(routes!(health::health))
        .routes(routes!(search::search))
}

/// The gateway router over `shared`.
pub(crate) fn router(shared: S) -> Router {
    // JSON bodies. The upload handler reads its body itself, under `max_upload_bytes`
    // (axum applies `DefaultBodyLimit` only to its body extractors).
    let max_body = shared.config.max_body_bytes;
    let (router, _) = api().split_for_parts();
    router
        .layer(DefaultBodyLimit::max(max_body))
        .fallback(no_route)
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

#[cfg(test)]
mod tests {
    use chatico_core::protocol::paths;

    use super::*;

    #[test]
    fn bearer_tokens_are_read_strictly() {
        assert_eq!(bearer(&HeaderValue::from_static("Bearer abc")).ok(), Some("abc"));
        assert_eq!(bearer(&HeaderValue::from_static("bearer  abc ")).ok(), Some("abc"));
        assert!(bearer(&HeaderValue::from_static("Basic abc")).is_err());
        assert!(bearer(&HeaderValue::from_static("Bearer ")).is_err());
        assert!(bearer(&HeaderValue::from_static("abc")).is_err());
    }

    /// The router and the document come from one declaration; this checks that it covers
    /// exactly the protocol's paths, the ones the clients call.
    #[test]
    fn the_routes_are_exactly_the_protocol_paths() {
        let doc = super::super::openapi();
        let mut documented: Vec<&str> = doc.paths.paths.keys().map(String::as_str).collect();
        let mut protocol = paths::ALL.to_vec();
        documented.sort_unstable();
        protocol.sort_unstable();
        assert_eq!(documented, protocol);
        assert!(
            doc.components
                .as_ref()
                .is_some_and(|c| c.security_schemes.contains_key("bearer"))
        );
    }
}

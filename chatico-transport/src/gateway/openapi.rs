//! The OpenAPI 3.1 document of the REST API, served at `/v1/openapi.json`.
//!
//! Its operations come from the route declaration ([`rest::api`]); this module adds what is
//! not per route: the title, tags and security schemes ([`base`]), and the answers every
//! authenticated operation can give ([`AuthenticatedResponses`]).

use axum::Json;
use std::sync::OnceLock;

use axum::extract::{NestedPath, Request};
use chatico_core::protocol::paths;
use utoipa::openapi::path::{Operation, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::server::Server;
use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
use utoipa::{Modify, OpenApi};

use super::rest;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "ChatiCO gateway",
        description = "REST API of the ChatiCO gateway. Real-time events, sends, receipts, typing and \
            resume also work over the WebSocket at /v1/ws (subprotocol chatico.v1.json), described in \
            docs/PROTOCOL.md. Errors are always `{code, message, field?, retry_after_ms?}`."
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "auth", description = "OTP login, tokens, logout"),
        (name = "users", description = "Profiles, search, presence"),
        (name = "contacts", description = "Contacts and blocks"),
        (name = "conversations", description = "Direct and group conversations, members, archive"),
        (name = "messages", description = "History, send, delete, receipts, typing"),
        (name = "sync", description = "Changes since a cursor"),
        (name = "blobs", description = "Image uploads"),
        (name = "push", description = "Push device tokens and conversation mutes"),
        (name = "meta", description = "This document and the WebSocket endpoint"),
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("An access token from /v1/auth/verify or /v1/auth/refresh"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "access_token",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                "access_token",
                "The same access token in the query string: GET /v1/blobs/{key} only, for <img src>",
            ))),
        );
    }
}

/// Adds the answers every authenticated operation can give — 401 (no, a bad, an expired
/// or a revoked token) and 429 (over the per-user rate limit, with `Retry-After`) — to
/// every operation with a security requirement that does not describe them itself.
struct AuthenticatedResponses;

impl Modify for AuthenticatedResponses {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let error = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ErrorBody")))
                        .build(),
                )
                .build()
        };
        const UNAUTHORIZED: &str = "`unauthorized`: no access token, or a malformed, expired or revoked one";
        const RATE_LIMITED: &str =
            "`rate_limited`: over the per-user request rate; retry after `retry_after_ms` (also `Retry-After`)";
        for item in doc.paths.paths.values_mut() {
            for op in operations_mut(item) {
                if op.security.as_ref().is_none_or(|s| s.is_empty()) {
                    continue;
                }
                let r = &mut op.responses.responses;
                r.entry("401".into()).or_insert_with(|| error(UNAUTHORIZED).into());
                r.entry("429".into()).or_insert_with(|| error(RATE_LIMITED).into());
            }
        }
    }
}

/// Every operation of a path item.
pub(crate) fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = &mut Operation> {
    [
        item.get.as_mut(),
        item.put.as_mut(),
        item.post.as_mut(),
        item.delete.as_mut(),
        item.options.as_mut(),
        item.head.as_mut(),
        item.patch.as_mut(),
        item.trace.as_mut(),
    ]
    .into_iter()
    .flatten()
}

/// What the document holds besides the operations: title, description, tags and the
/// security schemes.
pub(crate) fn base() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The OpenAPI document, with paths relative to where the router is mounted.
pub fn openapi() -> utoipa::openapi::OpenApi {
    static DOC: OnceLock<utoipa::openapi::OpenApi> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = rest::api().into_openapi();
        AuthenticatedResponses.modify(&mut doc);
        doc
    })
    .clone()
}

/// This document (OpenAPI 3.1). When the router is nested, `servers` names the mount path.
#[utoipa::path(get, path = paths::OPENAPI, tag = "meta",
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json")))]
pub(crate) async fn openapi_json(req: Request) -> Json<utoipa::openapi::OpenApi> {
    let mut doc = openapi();
    if let Some(nested) = req.extensions().get::<NestedPath>() {
        doc.servers = Some(vec![Server::new(nested.as_str())]);
    }
    Json(doc)
}

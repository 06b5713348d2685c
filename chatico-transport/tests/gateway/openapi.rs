//! The served OpenAPI document. The router and the document are split from one route
//! declaration (`gateway::rest::api`), so every documented operation is routed by
//! construction; these tests check what the document says.

use axum::routing::get;
use chatico_core::protocol::paths;
use serde_json::Value;

use crate::common::TestServer;

/// The served document, from a running server.
async fn served_doc() -> Value {
    let srv = TestServer::start().await;
    let resp = srv.http.get(srv.url(paths::OPENAPI)).send().await.expect("http");
    assert_eq!(resp.status(), 200);
    resp.json().await.expect("json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_covers_exactly_the_protocol_paths() {
    let doc = served_doc().await;
    assert!(
        doc["openapi"].as_str().expect("version").starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented: Vec<&str> = paths.keys().map(String::as_str).collect();
    let mut protocol = paths::ALL.to_vec();
    documented.sort_unstable();
    protocol.sort_unstable();
    assert_eq!(documented, protocol);
    let mut operations = 0;
    for (path, item) in paths {
        for (method, op) in item.as_object().expect("item") {
            operations += 1;
            // Every operation documents the responses it gives.
            assert!(
                op["responses"].as_object().is_some_and(|r| !r.is_empty()),
                "{method} {path}"
            );
        }
    }
    assert_eq!(operations, 47);
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    // The health document is described, not just named.
    assert!(doc["components"]["schemas"]["Health"].is_object());
    assert!(
        doc["paths"][paths::HEALTH]["get"]["security"].is_null(),
        "health needs no token"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_nests_next_to_host_routes() {
    let srv = TestServer::start().await;
    let app = axum::Router::new()
        .route("/health", get(|| async { "ok" }))
        .nest("/chat", srv.gateway.router());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    let http = reqwest::Client::new();
    let health = http.get(format!("http://{addr}/health")).send().await.expect("http");
    assert_eq!(health.text().await.expect("text"), "ok");
    let doc: Value = http
        .get(format!("http://{addr}/chat/v1/openapi.json"))
        .send()
        .await
        .expect("http")
        .json()
        .await
        .expect("json");
    assert_eq!(doc["servers"][0]["url"], "/chat");
    let me = http
        .get(format!("http://{addr}/chat/v1/me"))
        .send()
        .await
        .expect("http");
    assert_eq!(me.status(), 401);
    let _ = &srv;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_authenticated_operation_lists_401_and_429() {
    let doc = served_doc().await;
    let mut authenticated = 0;
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("item") {
            let secured = op["security"].as_array().is_some_and(|s| !s.is_empty());
            if !secured {
                continue;
            }
            authenticated += 1;
            for status in ["401", "429"] {
                let r = &op["responses"][status];
                assert!(r.is_object(), "{method} {path} does not list {status}");
                assert_eq!(
                    r["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    assert!(authenticated >= 31, "{authenticated} authenticated operations");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upload_body_is_raw_bytes() {
    let doc = served_doc().await;
    let content = doc["paths"]["/v1/blobs"]["post"]["requestBody"]["content"]
        .as_object()
        .expect("upload body content");
    for ty in [
        "application/octet-stream",
        "image/png",
        "image/jpeg",
        "image/gif",
        "image/webp",
    ] {
        let schema = &content.get(ty).unwrap_or_else(|| panic!("{ty} missing"))["schema"];
        let schema = match schema["$ref"].as_str() {
            Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().expect("name")],
            None => schema,
        };
        assert_eq!(schema["type"], "string", "{ty}: {schema}");
        assert_eq!(schema["format"], "binary", "{ty}: {schema}");
    }
    assert!(!content.contains_key("application/json"));
}

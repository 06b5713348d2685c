//! Uploads: an image goes to the blob store, becomes an avatar and a media message, and is
//! served back; anything that is not an image is refused and stores nothing.

use base64::Engine as _;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::common::{TestServer, is_change};

/// A complete 1×1 PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_upload_and_serve_and_other_bytes_are_refused() {
    let srv = TestServer::start().await;
    let a = srv.login("+15550000051").await;
    let b = srv.login("+15550000052").await;
    let png = base64::engine::general_purpose::STANDARD.decode(PNG_1X1).expect("png");

    let up = |purpose: &str, bytes: Vec<u8>, token: Option<String>| {
        let mut req = srv
            .http
            .post(srv.url(&format!("/v1/blobs?purpose={purpose}")))
            .header("content-type", "application/octet-stream")
            .body(bytes);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    // Not an image (an SVG that claims to be a PNG by name is still text): refused.
    let r = up("avatar", b"<svg onload=alert(1)>".to_vec(), Some(a.token.clone()))
        .await
        .expect("http");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let v: Value = r.json().await.expect("json");
    assert_eq!(
        (v["code"].clone(), v["field"].clone()),
        (json!("invalid_input"), json!("file"))
    );
    // No token: refused.
    let r = up("avatar", png.clone(), None).await.expect("http");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    let r = up("avatar", png.clone(), Some(a.token.clone())).await.expect("http");
    assert_eq!(r.status(), StatusCode::CREATED);
    let meta: Value = r.json().await.expect("json");
    assert_eq!(
        (
            meta["content_type"].clone(),
            meta["width"].clone(),
            meta["height"].clone()
        ),
        (json!("image/png"), json!(1), json!(1))
    );
    let key = meta["key"].as_str().expect("key").to_owned();
    let got = srv
        .http
        .get(srv.url(&format!("/v1/blobs/{key}")))
        .send()
        .await
        .expect("http");
    assert_eq!(got.status(), StatusCode::OK);
    assert_eq!(got.headers()["content-type"], "image/png");
    assert_eq!(got.bytes().await.expect("bytes").to_vec(), png);
    let (s, v) = srv
        .call(Method::GET, "/v1/blobs/0123456789abcdef0123456789abcdef", None, None)
        .await;
    assert_eq!((s, v["code"].clone()), (StatusCode::NOT_FOUND, json!("not_found")));

    // The blob as an avatar, and as a media message B receives live.
    let me = srv
        .ok(
            Method::PATCH,
            "/v1/me",
            &a,
            json!({ "avatar_url": format!("/v1/blobs/{key}") }),
        )
        .await;
    assert_eq!(me["avatar_url"], json!(format!("/v1/blobs/{key}")));
    let d = srv
        .ok(Method::POST, "/v1/conversations/direct", &a, json!({ "user_id": b.id }))
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut wb = srv.ws(&b).await;
    let r = up("media", png.clone(), Some(a.token.clone())).await.expect("http");
    let media_key = r.json::<Value>().await.expect("json")["key"]
        .as_str()
        .expect("key")
        .to_owned();
    let m = srv
        .ok(
            Method::POST,
            &format!("/v1/conversations/{d}/messages"),
            &a,
            json!({ "client_msg_id": "pic", "content": { "type": "media", "blob_key": media_key,
                "content_type": "image/png", "size": png.len(), "caption": "a dot" } }),
        )
        .await;
    assert_eq!(m["content"]["type"], "media");
    let e = wb.event(|e| is_change(e, "message")).await;
    assert_eq!(e["kind"]["message"]["content"]["blob_key"], json!(media_key));
    assert_eq!(e["kind"]["message"]["content"]["caption"], "a dot");
}

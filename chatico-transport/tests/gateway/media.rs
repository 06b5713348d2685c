//! Uploads and serving, end to end through the real gateway (upload limit 5 MB): an avatar
//! that reaches contacts but never crosses a block, an image message a member can fetch and
//! nobody else can, and every bad input of issue 5 refused with its documented error and
//! nothing left behind — no file in the blob directory, no blob row, no message.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine as _;
use chatico_core::ids::BlobKey;
use chatico_core::ports::{Blob, BlobStore};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::{GatewayConfigExt, PATIENCE, TestServer, User, is_change, test_config, text_of};

/// A complete 1×1 PNG.
const PNG_1X1: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAQAAAC1HAwCAAAAC0lEQVR42mNkYAAAAAYAAjCB0C8AAAAASUVORK5CYII=";
/// Real files written by Pillow (chatico-core/testdata/media/README.md).
const PNG_7X5: &[u8] = include_bytes!("../../../chatico-core/testdata/media/rgb-7x5.png");
const JPEG_33X17: &[u8] = include_bytes!("../../../chatico-core/testdata/media/baseline-33x17.jpg");

const MB: usize = 1024 * 1024;
const LIMIT: usize = 5 * MB;

fn png_1x1() -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(PNG_1X1).expect("png")
}

/// A PNG signature and an `IHDR` declaring `w`×`h`, followed by nothing that could be
/// decoded: the dimensions alone must get it refused.
fn png_declaring(w: u32, h: u32) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.extend_from_slice(&13u32.to_be_bytes());
    v.extend_from_slice(b"IHDR");
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 2, 0, 0, 0]);
    v.extend_from_slice(&[0; 4]);
    v
}

async fn media_server() -> TestServer {
    TestServer::start_with(
        GatewayConfigExt::with(test_config(), |c| c.max_upload_bytes = LIMIT),
        None,
    )
    .await
}

/// `POST /v1/blobs?purpose=...` with the bytes as the body, claiming to be a PNG called
/// `name` (the server must not care).
async fn upload(srv: &TestServer, u: Option<&User>, purpose: &str, name: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let mut req = srv
        .http
        .post(srv.url(&format!("/v1/blobs?purpose={purpose}")))
        .header("content-type", "image/png")
        .header("content-disposition", format!("attachment; filename=\"{name}\""))
        .body(bytes);
    if let Some(u) = u {
        req = req.bearer_auth(&u.token);
    }
    let resp = req.send().await.expect("http");
    let status = resp.status();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// An upload that must succeed; returns its key.
async fn upload_ok(srv: &TestServer, u: &User, purpose: &str, bytes: Vec<u8>) -> String {
    let (s, v) = upload(srv, Some(u), purpose, "ok.png", bytes).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    v["key"].as_str().expect("key").to_owned()
}

/// `GET /v1/blobs/{key}`: with a bearer header, with `?access_token=`, or with nothing.
async fn fetch(srv: &TestServer, key: &str, bearer: Option<&str>, query: Option<&str>) -> reqwest::Response {
    let mut url = srv.url(&format!("/v1/blobs/{key}"));
    if let Some(t) = query {
        url.push_str(&format!("?access_token={t}"));
    }
    let mut req = srv.http.get(url);
    if let Some(t) = bearer {
        req = req.bearer_auth(t);
    }
    req.send().await.expect("http")
}

async fn error_of(resp: reqwest::Response) -> (StatusCode, Value) {
    let s = resp.status();
    (s, resp.json().await.expect("error body is JSON"))
}

/// The documented headers of a served blob, and its bytes.
async fn assert_served_inline(resp: reqwest::Response, content_type: &str, bytes: &[u8]) {
    assert_eq!(resp.status(), StatusCode::OK);
    let h = resp.headers();
    assert_eq!(h["content-type"], content_type);
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-disposition"], "inline");
    assert_eq!(h["referrer-policy"], "no-referrer");
    assert!(
        h["cache-control"].to_str().expect("ascii").starts_with("private"),
        "{:?}",
        h["cache-control"]
    );
    assert_eq!(resp.bytes().await.expect("bytes").as_ref(), bytes);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_avatar_reaches_contacts_and_no_one_across_a_block() {
    let srv = media_server().await;
    let a = srv.login("+15550000051").await;
    let b = srv.login("+15550000052").await;
    let c1 = srv.login("+15550000053").await;
    let c2 = srv.login("+15550000054").await;
    let d = srv.login("+15550000055").await;
    // B, C1 and C2 keep A as a contact; C1 blocked A, A blocked C2.
    for u in [&b, &c1, &c2] {
        srv.ok(Method::PUT, &format!("/v1/contacts/{}", a.id), u, json!({}))
            .await;
    }
    srv.ok(Method::PUT, &format!("/v1/blocks/{}", a.id), &c1, json!({}))
        .await;
    srv.ok(Method::PUT, &format!("/v1/blocks/{}", c2.id), &a, json!({}))
        .await;
    // A sentinel path to C1 and C2 that does not involve A.
    let g = srv
        .ok(
            Method::POST,
            "/v1/conversations/group",
            &d,
            json!({ "title": "sentinel", "members": [c1.id, c2.id] }),
        )
        .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let mut wb = srv.ws(&b).await;
    let mut wc1 = srv.ws(&c1).await;
    let mut wc2 = srv.ws(&c2).await;

    let png = png_1x1();
    let (files, rows) = (srv.blob_files(), srv.store.blob_count());
    let key = upload_ok(&srv, &a, "avatar", png.clone()).await;
    assert!(srv.blob_files() > files, "the bytes are on disk");
    assert_eq!(srv.store.blob_count(), rows + 1);
    let url = format!("/v1/blobs/{key}");
    let me = srv.ok(Method::PATCH, "/v1/me", &a, json!({ "avatar_url": url })).await;
    assert_eq!(me["avatar_url"], json!(url));

    // B, a contact, is told.
    let e = wb.event(|e| e["event"] == "profile").await;
    assert_eq!((e["id"].clone(), e["avatar_url"].clone()), (json!(a.id), json!(url)));
    // C1 (who blocked A) and C2 (whom A blocked) are not: the sentinel comes first.
    srv.send_text(&g, &d, "sentinel", "sentinel").await;
    for ws in [&mut wc1, &mut wc2] {
        let frames = ws
            .until(|f| f["type"] == "event" && text_of(&f["event"]) == "sentinel")
            .await;
        assert!(
            !frames.iter().any(|f| f["event"]["event"] == "profile"),
            "a profile update crossed a block: {frames:?}"
        );
    }

    // An avatar is for any signed-in user: B, C1 across the block, D who knows nobody.
    for u in [&a, &b, &c1, &d] {
        assert_served_inline(fetch(&srv, &key, Some(&u.token), None).await, "image/png", &png).await;
    }
    // The way an <img src> fetches it.
    assert_served_inline(fetch(&srv, &key, None, Some(&d.token)).await, "image/png", &png).await;
    // Not signed in: 401, with the bearer challenge.
    let resp = fetch(&srv, &key, None, None).await;
    assert_eq!(
        resp.headers().get("www-authenticate").map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let (s, v) = error_of(resp).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let (s, v) = error_of(fetch(&srv, &key, None, Some("not-a-jwt")).await).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );
    let (s, _) = error_of(fetch(&srv, &key, Some("not-a-jwt"), Some(&d.token)).await).await;
    assert_eq!(
        s,
        StatusCode::UNAUTHORIZED,
        "the header, when present, is the credential"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_message_is_served_to_members_only() {
    let srv = media_server().await;
    let a = srv.login("+15550000061").await;
    let b = srv.login("+15550000062").await;
    let outsider = srv.login("+15550000063").await;
    let d = srv.open_direct(&a, &b).await;
    let messages = format!("/v1/conversations/{d}/messages");
    let mut wb = srv.ws(&b).await;

    // A real JPEG, sent with a PNG's Content-Type and name: the type comes from the bytes.
    let (s, meta) = upload(&srv, Some(&a), "media", "photo.png", JPEG_33X17.to_vec()).await;
    assert_eq!(s, StatusCode::CREATED, "{meta}");
    assert_eq!(
        (
            meta["content_type"].clone(),
            meta["width"].clone(),
            meta["height"].clone(),
            meta["size"].clone(),
            meta["owner_id"].clone()
        ),
        (
            json!("image/jpeg"),
            json!(33),
            json!(17),
            json!(JPEG_33X17.len()),
            json!(a.id)
        )
    );
    let key = meta["key"].as_str().expect("key").to_owned();
    assert!(
        key.len() == 32 && key.bytes().all(|c| c.is_ascii_hexdigit()),
        "a random key: {key}"
    );

    // Not sent yet: the owner may read it, nobody else — and to them it does not exist.
    assert_served_inline(fetch(&srv, &key, Some(&a.token), None).await, "image/jpeg", JPEG_33X17).await;
    let (s, missing) = error_of(fetch(&srv, "0123456789abcdef0123456789abcdef", Some(&b.token), None).await).await;
    assert_eq!(
        (s, missing["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found"))
    );
    let (s, v) = error_of(fetch(&srv, &key, Some(&b.token), None).await).await;
    assert_eq!((s, &v), (StatusCode::NOT_FOUND, &missing), "exactly like a missing key");

    // B may not send A's upload (nor may anyone reference someone else's blob): refused,
    // and nothing is stored.
    let media = |k: &str, cmid: &str| {
        json!({ "client_msg_id": cmid, "content": { "type": "media", "blob_key": k,
            "content_type": "image/png", "size": 1, "caption": "a photo" } })
    };
    let (s, v) = srv
        .call(Method::POST, &messages, Some(&b.token), Some(media(&key, "steal")))
        .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::FORBIDDEN, json!("forbidden")),
        "{v}"
    );
    let (s, v) = srv
        .call(
            Method::POST,
            &messages,
            Some(&b.token),
            Some(media("0123456789abcdef0123456789abcdef", "ghost")),
        )
        .await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!("not_found")),
        "{v}"
    );
    assert_eq!(srv.get(&messages, &a).await, json!([]), "no message was stored");
    assert_eq!(
        srv.get(&format!("/v1/conversations/{d}"), &a).await["conversation"]["last_seq"],
        0
    );
    let (s, _) = error_of(fetch(&srv, &key, Some(&b.token), None).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND, "a refused reference shares nothing");

    // A sends it: B gets the message live, with the type, size and dimensions sniffed at
    // upload (not what the sender claimed), and may now fetch it.
    let m = srv.ok(Method::POST, &messages, &a, media(&key, "pic")).await;
    let e = wb
        .event(|e| is_change(e, "message") && e["kind"]["message"]["seq"] == m["seq"])
        .await;
    let content = &e["kind"]["message"]["content"];
    assert_eq!(
        (
            content["blob_key"].clone(),
            content["content_type"].clone(),
            content["size"].clone(),
            content["width"].clone(),
            content["caption"].clone()
        ),
        (
            json!(key),
            json!("image/jpeg"),
            json!(JPEG_33X17.len()),
            json!(33),
            json!("a photo")
        )
    );
    assert_served_inline(fetch(&srv, &key, Some(&b.token), None).await, "image/jpeg", JPEG_33X17).await;
    assert_served_inline(fetch(&srv, &key, None, Some(&b.token)).await, "image/jpeg", JPEG_33X17).await;
    // Still nothing for a signed-in outsider, nor without a token.
    let (s, v) = error_of(fetch(&srv, &key, Some(&outsider.token), None).await).await;
    assert_eq!((s, &v), (StatusCode::NOT_FOUND, &missing));
    let (s, v) = error_of(fetch(&srv, &key, None, Some(&outsider.token)).await).await;
    assert_eq!((s, &v), (StatusCode::NOT_FOUND, &missing));
    let (s, v) = error_of(fetch(&srv, &key, None, None).await).await;
    assert_eq!(
        (s, v["code"].clone()),
        (StatusCode::UNAUTHORIZED, json!("unauthorized"))
    );

    // Deleted for everyone: B loses access, the owner keeps it.
    srv.ok(
        Method::DELETE,
        &format!("{messages}/{}?scope=everyone", m["seq"]),
        &a,
        json!({}),
    )
    .await;
    let (s, _) = error_of(fetch(&srv, &key, Some(&b.token), None).await).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(fetch(&srv, &key, Some(&a.token), None).await.status(), StatusCode::OK);
}

/// Sends a request head and then `body` on a raw socket, and never finishes the request:
/// the answer read back therefore came before the whole body was sent. Returns the status,
/// the JSON body, the `Connection` header and how many body bytes the writer got out.
async fn answer_before_the_body_ends(
    srv: &TestServer,
    head: String,
    body: Vec<Vec<u8>>,
) -> (u16, Value, String, usize) {
    let stream = tokio::net::TcpStream::connect(srv.addr).await.expect("connect");
    let (mut rd, mut wr) = stream.into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for piece in body {
            if wr.write_all(&piece).await.is_err() {
                return; // the server closed the connection: expected once it answered
            }
            counter.fetch_add(piece.len(), Ordering::SeqCst);
        }
        // Hold the connection open without ending the body.
        tokio::time::sleep(PATIENCE * 2).await;
        drop(wr);
    });
    let mut buf = Vec::new();
    let answer = tokio::time::timeout(PATIENCE, async {
        let mut chunk = [0u8; 8192];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().expect("length"))
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    return (head, buf[end + 4..end + 4 + len].to_vec());
                }
            }
            match rd.read(&mut chunk).await {
                Ok(0) | Err(_) => panic!(
                    "connection ended before a whole answer: {:?}",
                    String::from_utf8_lossy(&buf)
                ),
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await
    .expect("the answer must come while the body is still unfinished");
    writer.abort();
    let (head, body) = answer;
    let status: u16 = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let connection = head
        .lines()
        .find_map(|l| l.strip_prefix("connection:"))
        .unwrap_or("")
        .trim()
        .to_owned();
    let json = serde_json::from_slice(&body).expect("JSON error body");
    (status, json, connection, written.load(Ordering::SeqCst))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_uploads_get_their_documented_errors_and_leave_nothing_behind() {
    let srv = media_server().await;
    let a = srv.login("+15550000071").await;
    let nothing_left = |what: &str| {
        assert_eq!(srv.blob_files(), 0, "{what}: a file was left in the blob directory");
        assert_eq!(srv.store.blob_count(), 0, "{what}: a blob row was left");
    };
    let assert_refused = |(s, v): (StatusCode, Value), status: StatusCode, code: &str, what: &str| {
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{what}: {v}");
        v
    };

    // 20 MB with Content-Length, limit 5 MB: refused on the declared length, before any of
    // the body was read — here the body is never sent at all.
    let head = format!(
        "POST /v1/blobs?purpose=media HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: image/png\r\ncontent-length: {}\r\n\r\n",
        a.token,
        20 * MB
    );
    let (s, v, _, sent) = answer_before_the_body_ends(&srv, head, vec![]).await;
    assert_eq!((s, v["code"].as_str()), (413, Some("too_large")), "{v}");
    assert_eq!(sent, 0);
    nothing_left("20 MB declared");
    // A client waiting for `100 Continue` is told at once, and the connection closes.
    let head = format!(
        "POST /v1/blobs?purpose=media HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: image/png\r\ncontent-length: {}\r\nexpect: 100-continue\r\n\r\n",
        a.token,
        20 * MB
    );
    let (s, v, connection, _) = answer_before_the_body_ends(&srv, head, vec![]).await;
    assert_eq!(
        (s, v["code"].as_str(), connection.as_str()),
        (413, Some("too_large"), "close"),
        "{v}"
    );
    // The same from an ordinary client that sends the whole 20 MB.
    let mut big = png_1x1();
    big.resize(20 * MB, 0);
    assert_refused(
        upload(&srv, Some(&a), "media", "big.png", big).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "20 MB sent",
    );
    nothing_left("20 MB sent");

    // 20 MB chunked, without a length: refused while streaming. The client sends 6 MB of a
    // PNG-looking body and then stalls without ending it; the answer comes anyway, so the
    // server stopped reading once it had more than 5 MB.
    let head = format!(
        "POST /v1/blobs?purpose=media HTTP/1.1\r\nhost: test\r\nauthorization: Bearer {}\r\n\
         content-type: image/png\r\ntransfer-encoding: chunked\r\n\r\n",
        a.token
    );
    let mut chunks = Vec::new();
    let mut first = png_declaring(1000, 1000);
    first.resize(64 * 1024, 0);
    for i in 0..(6 * MB / (64 * 1024)) {
        let data = if i == 0 { first.clone() } else { vec![0u8; 64 * 1024] };
        let mut piece = format!("{:x}\r\n", data.len()).into_bytes();
        piece.extend_from_slice(&data);
        piece.extend_from_slice(b"\r\n");
        chunks.push(piece);
    }
    let (s, v, _, sent) = answer_before_the_body_ends(&srv, head, chunks).await;
    assert_eq!((s, v["code"].as_str()), (413, Some("too_large")), "{v}");
    assert!(sent < 7 * MB, "{sent} bytes sent (6 MB and chunk framing at most)");
    nothing_left("20 MB chunked");
    // The same from an ordinary client streaming 20 MB without a length: it gets the 413
    // (the rest of its body is drained, not kept), not a reset connection.
    let pieces = (0..20).map(|i| {
        let mut piece = if i == 0 { png_declaring(1000, 1000) } else { Vec::new() };
        piece.resize(MB, 0);
        Ok::<_, std::io::Error>(piece)
    });
    let resp = srv
        .http
        .post(srv.url("/v1/blobs?purpose=media"))
        .bearer_auth(&a.token)
        .body(reqwest::Body::wrap_stream(futures::stream::iter(pieces)))
        .send()
        .await
        .expect("http");
    assert_refused(
        (resp.status(), resp.json().await.expect("json")),
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "20 MB streamed",
    );
    nothing_left("20 MB streamed");

    // An HTML file and an SVG file named .png, sent as image/png: not images.
    for (name, bytes) in [
        (
            "page.png",
            b"<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>".to_vec(),
        ),
        (
            "drawing.png",
            br#"<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"><script>alert(2)</script></svg>"#
                .to_vec(),
        ),
    ] {
        let v = assert_refused(
            upload(&srv, Some(&a), "avatar", name, bytes).await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            name,
        );
        assert_eq!(v["field"], "file", "{name}");
        nothing_left(name);
    }

    // A PNG whose header declares 60000×60000 pixels: refused on the header alone.
    let v = assert_refused(
        upload(&srv, Some(&a), "media", "bomb.png", png_declaring(60_000, 60_000)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "too_large",
        "60000×60000",
    );
    assert!(v["message"].as_str().is_some_and(|m| m.contains("image")), "{v}");
    nothing_left("60000×60000");

    // Truncated images: a real PNG and a real JPEG cut in the middle, and a header only.
    for (name, bytes) in [
        ("half.png", PNG_7X5[..PNG_7X5.len() / 2].to_vec()),
        ("half.jpg", JPEG_33X17[..JPEG_33X17.len() / 2].to_vec()),
        ("cut-before-eoi.jpg", JPEG_33X17[..JPEG_33X17.len() - 2].to_vec()),
        ("header-only.png", png_declaring(100, 100)),
        ("empty.png", Vec::new()),
    ] {
        let v = assert_refused(
            upload(&srv, Some(&a), "media", name, bytes).await,
            StatusCode::BAD_REQUEST,
            "invalid_input",
            name,
        );
        assert_eq!(v["field"], "file", "{name}");
        nothing_left(name);
    }

    // Not signed in: refused before the body is looked at.
    assert_refused(
        upload(&srv, None, "avatar", "ok.png", png_1x1()).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
        "no token",
    );
    nothing_left("no token");

    // A stored upload does show in the counters: a file of exactly the limit is accepted.
    let at_limit = png_with_padding_chunk(LIMIT - PNG_7X5.len());
    assert_eq!(at_limit.len(), LIMIT);
    let key = upload_ok(&srv, &a, "media", at_limit).await;
    assert!(srv.blob_files() > 0);
    assert_eq!(srv.store.blob_count(), 1);
    assert_eq!(fetch(&srv, &key, Some(&a.token), None).await.status(), StatusCode::OK);
}

/// The 7×5 PNG with a private ancillary chunk (`prVt`) inserted after `IHDR`, sized so the
/// whole file is `PNG_7X5.len() + pad` bytes (`pad` ≥ 12: length, type and CRC).
fn png_with_padding_chunk(pad: usize) -> Vec<u8> {
    let ihdr_end = 8 + 4 + 4 + 13 + 4;
    let data = pad - 12;
    let mut v = PNG_7X5[..ihdr_end].to_vec();
    v.extend_from_slice(&u32::try_from(data).expect("small").to_be_bytes());
    v.extend_from_slice(b"prVt");
    v.resize(v.len() + data, 0);
    v.extend_from_slice(&[0; 4]);
    v.extend_from_slice(&PNG_7X5[ihdr_end..]);
    v
}

/// A blob store that hands out signed URLs (as S3 and Cloudinary do), over the local one.
struct SigningStore(chatico_store::blob::LocalDiskBlobStore);

#[async_trait::async_trait]
impl BlobStore for SigningStore {
    async fn put(&self, key: &BlobKey, bytes: axum::body::Bytes, content_type: &str) -> chatico_core::Result<()> {
        self.0.put(key, bytes, content_type).await
    }
    async fn get(&self, key: &BlobKey) -> chatico_core::Result<Blob> {
        self.0.get(key).await
    }
    async fn delete(&self, key: &BlobKey) -> chatico_core::Result<()> {
        self.0.delete(key).await
    }
    async fn signed_url(&self, key: &BlobKey, ttl_secs: u64) -> chatico_core::Result<Option<String>> {
        Ok(Some(format!(
            "https://blobs.example/{key}?expires-in={ttl_secs}&signature=s"
        )))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn external_stores_redirect_only_after_authorization() {
    let srv = TestServer::start_with_blobs(test_config(), None, |local| Arc::new(SigningStore(local))).await;
    let a = srv.login("+15550000081").await;
    let b = srv.login("+15550000082").await;
    let outsider = srv.login("+15550000083").await;
    let d = srv.open_direct(&a, &b).await;
    let key = upload_ok(&srv, &a, "media", png_1x1()).await;
    srv.ok(
        Method::POST,
        &format!("/v1/conversations/{d}/messages"),
        &a,
        json!({ "client_msg_id": "pic", "content": { "type": "media", "blob_key": key,
            "content_type": "image/png", "size": 1 } }),
    )
    .await;
    let no_redirects = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let get = |token: Option<&str>, query: bool| {
        let mut url = srv.url(&format!("/v1/blobs/{key}"));
        let req = match (token, query) {
            (Some(t), true) => {
                url.push_str(&format!("?access_token={t}"));
                no_redirects.get(url)
            }
            (Some(t), false) => no_redirects.get(url).bearer_auth(t),
            (None, _) => no_redirects.get(url),
        };
        req.send()
    };
    for (token, query) in [(&b.token, false), (&b.token, true), (&a.token, false)] {
        let resp = get(Some(token), query).await.expect("http");
        assert_eq!(resp.status(), StatusCode::TEMPORARY_REDIRECT);
        let h = resp.headers();
        assert_eq!(
            h["location"],
            format!("https://blobs.example/{key}?expires-in=300&signature=s").as_str()
        );
        assert_eq!(h["referrer-policy"], "no-referrer");
        assert!(h["cache-control"].to_str().expect("ascii").contains("no-store"));
    }
    // No signed URL for an outsider or an anonymous caller.
    let resp = get(Some(&outsider.token), false).await.expect("http");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert!(resp.headers().get("location").is_none());
    let resp = get(None, false).await.expect("http");
    assert_eq!(resp.status(), StatusCode::UNAUTHORIZED);
    assert!(resp.headers().get("location").is_none());
}

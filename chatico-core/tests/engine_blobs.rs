//! The engine's blob use cases, without any transport: upload (check, key, store, register,
//! clean up), reads by who may see them, and the one blob key rule.

mod common;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use chatico_core::engine::{BlobContent, Engine};
use chatico_core::ids::BlobKey;
use chatico_core::model::{BlobPurpose, Content, MediaRef};
use chatico_core::ports::{Blob, BlobStore};
use chatico_core::{Error, ErrorCode, Result};
use common::*;

const PNG_7X5: &[u8] = include_bytes!("../testdata/media/rgb-7x5.png");

/// Blobs in memory; signs URLs when `signing`.
#[derive(Default)]
struct MemoryBlobs {
    blobs: Mutex<BTreeMap<String, Blob>>,
    signing: bool,
}

impl MemoryBlobs {
    fn keys(&self) -> Vec<String> {
        self.blobs.lock().expect("lock").keys().cloned().collect()
    }
}

#[async_trait]
impl BlobStore for MemoryBlobs {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<()> {
        let blob = Blob {
            bytes,
            content_type: content_type.to_owned(),
        };
        self.blobs.lock().expect("lock").insert(key.to_string(), blob);
        Ok(())
    }
    async fn get(&self, key: &BlobKey) -> Result<Blob> {
        self.blobs
            .lock()
            .expect("lock")
            .get(key.as_str())
            .cloned()
            .ok_or(Error::not_found("blob"))
    }
    async fn delete(&self, key: &BlobKey) -> Result<()> {
        self.blobs.lock().expect("lock").remove(key.as_str());
        Ok(())
    }
    async fn signed_url(&self, key: &BlobKey, ttl_secs: u64) -> Result<Option<String>> {
        Ok(self.signing.then(|| format!("https://blobs.test/{key}?ttl={ttl_secs}")))
    }
}

fn harness_with(blobs: Arc<MemoryBlobs>, config: chatico_core::Config) -> (Harness, Engine) {
    let h = Harness::with_config(config.clone());
    let engine = Engine::new(h.store.clone(), h.clock.clone(), config)
        .expect("engine")
        .with_blob_store(blobs);
    (h, engine)
}

#[test]
fn an_upload_is_checked_stored_and_registered_under_a_random_key() {
    let blobs = Arc::new(MemoryBlobs::default());
    let (h, engine) = harness_with(blobs.clone(), test_config());
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let meta = block_on(engine.upload(a, BlobPurpose::Media, Bytes::from_static(PNG_7X5))).expect("upload");
    assert_eq!(BlobKey::parse(&meta.key).expect("valid key").as_str().len(), 32);
    assert_eq!(
        (
            meta.owner_id,
            meta.content_type.as_str(),
            meta.size,
            meta.width,
            meta.height
        ),
        (a, "image/png", PNG_7X5.len() as u64, Some(7), Some(5))
    );
    assert_eq!(blobs.keys(), vec![meta.key.clone()]);
    // The owner reads it; a stranger does not, until a message in a shared conversation
    // references it.
    match block_on(engine.open_blob(a, &meta.key)).expect("owner") {
        BlobContent::Bytes { meta: m, blob } => {
            assert_eq!(m, meta);
            assert_eq!(&blob.bytes[..], PNG_7X5);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(block_on(engine.open_blob(b, &meta.key)), Err(Error::not_found("blob")));
    let d = h.direct(a, b);
    let mut msg = text_msg(d, "pic", "");
    msg.content = Content::Media(MediaRef {
        blob_key: meta.key.clone(),
        content_type: "text/html".into(),
        size: 1,
        width: None,
        height: None,
        caption: None,
    });
    block_on(engine.send(a, msg)).expect("send");
    assert!(block_on(engine.open_blob(b, &meta.key)).is_ok());
    assert_eq!(block_on(engine.open_blob(c, &meta.key)), Err(Error::not_found("blob")));
    // Two uploads never share a key.
    let again = block_on(engine.upload(a, BlobPurpose::Avatar, Bytes::from_static(PNG_7X5))).expect("upload");
    assert_ne!(again.key, meta.key);
    assert!(block_on(engine.open_blob(c, &again.key)).is_ok(), "avatars are public");
}

#[test]
fn a_refused_upload_leaves_nothing_behind() {
    let blobs = Arc::new(MemoryBlobs::default());
    let mut config = test_config();
    config.limits.max_blob_bytes = 16;
    let (h, engine) = harness_with(blobs.clone(), config);
    let a = h.user("A");
    // Not an image: refused before anything is stored.
    let e = block_on(engine.upload(a, BlobPurpose::Media, Bytes::from_static(b"<html>"))).expect_err("html");
    assert_eq!(
        (e.code(), e.body().field.as_deref()),
        (ErrorCode::InvalidInput, Some("file"))
    );
    // An image the registration refuses (over `max_blob_bytes`): the stored bytes go again.
    let e = block_on(engine.upload(a, BlobPurpose::Media, Bytes::from_static(PNG_7X5))).expect_err("too big");
    assert_eq!(e.code(), ErrorCode::TooLarge);
    assert!(blobs.keys().is_empty(), "{:?}", blobs.keys());
}

#[test]
fn images_over_the_pixel_limit_are_refused() {
    let blobs = Arc::new(MemoryBlobs::default());
    let mut config = test_config();
    config.limits.max_image_pixels = 34;
    let (h, engine) = harness_with(blobs.clone(), config);
    let a = h.user("A");
    let e = block_on(engine.upload(a, BlobPurpose::Media, Bytes::from_static(PNG_7X5))).expect_err("7x5 > 34");
    assert_eq!(e.code(), ErrorCode::TooLarge);
    assert!(blobs.keys().is_empty());
}

#[test]
fn without_a_blob_store_uploads_and_reads_are_unavailable() {
    let h = Harness::new();
    let a = h.user("A");
    let e = block_on(h.engine.upload(a, BlobPurpose::Media, Bytes::from_static(PNG_7X5))).expect_err("no store");
    assert_eq!(e.code(), ErrorCode::Unavailable);
    // A read checks who may see the blob first: a missing one is `not_found` either way.
    assert_eq!(block_on(h.engine.open_blob(a, "k")), Err(Error::not_found("blob")));
}

#[test]
fn a_signing_store_hands_out_a_redirect() {
    let blobs = Arc::new(MemoryBlobs {
        signing: true,
        ..MemoryBlobs::default()
    });
    let (h, engine) = harness_with(blobs, test_config());
    let a = h.user("A");
    let meta = block_on(engine.upload(a, BlobPurpose::Avatar, Bytes::from_static(PNG_7X5))).expect("upload");
    assert_eq!(
        block_on(engine.open_blob(a, &meta.key)).expect("open"),
        BlobContent::Redirect {
            url: format!("https://blobs.test/{}?ttl=300", meta.key)
        }
    );
}

#[test]
fn blob_keys_follow_one_rule_everywhere() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    for bad in ["../etc", "a b", "/abs", ".hidden", ""] {
        let mut msg = text_msg(d, &format!("m{bad}"), "");
        msg.content = Content::Media(MediaRef {
            blob_key: bad.into(),
            content_type: "image/png".into(),
            size: 1,
            width: None,
            height: None,
            caption: None,
        });
        assert_eq!(
            invalid_field(block_on(h.engine.send(a, msg))).as_deref(),
            Some("blob_key"),
            "{bad:?}"
        );
        assert_eq!(
            block_on(h.engine.blob_for_reading(a, bad)),
            Err(Error::not_found("blob")),
            "{bad:?}"
        );
        assert!(BlobKey::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn receipts_need_a_watermark_and_move_read_then_delivered() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    for text in ["1", "2", "3"] {
        h.say(a, d, text);
    }
    assert_eq!(
        invalid_field(block_on(h.engine.mark_receipts(b, d, None, None))).as_deref(),
        Some("delivered_seq")
    );
    let o = block_on(h.engine.mark_receipts(b, d, Some(3), Some(1))).expect("receipt");
    assert_eq!((o.value.delivered_seq, o.value.read_seq), (3, 1));
    assert_eq!(o.deliveries.len(), 2, "read, then delivered further");
    let o = block_on(h.engine.mark_receipts(b, d, Some(1), Some(2))).expect("receipt");
    assert_eq!((o.value.delivered_seq, o.value.read_seq), (3, 2));
    assert_eq!(o.deliveries.len(), 1, "delivered not beyond read: read only");
}

#[test]
fn the_latest_position_is_the_store_log_end() {
    let h = Harness::new();
    let [a, b] = h.users(&["A", "B"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let before = block_on(h.engine.latest_position()).expect("pos");
    h.say(a, d, "hi");
    let after = block_on(h.engine.latest_position()).expect("pos");
    assert!(after > before);
    let page = block_on(h.engine.sync(b, after, 10)).expect("sync").page;
    assert!(page.changes.is_empty(), "nothing after the log end");
}

#[test]
fn the_audience_of_a_position_range_is_its_users_and_bad_ranges_are_refused() {
    let h = Harness::new();
    let [a, b, c] = h.users(&["A", "B", "C"])[..] else {
        unreachable!()
    };
    let d = h.direct(a, b);
    let before = block_on(h.engine.latest_position()).expect("pos");
    h.say(a, d, "hi");
    let after = block_on(h.engine.latest_position()).expect("pos");
    let who = block_on(h.engine.position_audience(before, after)).expect("audience");
    assert_eq!(who, sorted(vec![a, b]), "the direct conversation's members, not {c}");
    assert!(
        block_on(h.engine.position_audience(after, after))
            .expect("empty")
            .is_empty()
    );
    for (from, to) in [(-1, 5), (0, chatico_core::engine::AUDIENCE_SPAN_MAX + 1)] {
        assert_eq!(
            invalid_field(block_on(h.engine.position_audience(from, to))).as_deref(),
            Some("range"),
            "({from}, {to})"
        );
    }
}

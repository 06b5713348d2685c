//! Blobs: upload (check, store, register), registration, and reads by who may see them.
//!
//! The engine holds the [`BlobStore`] port ([`Engine::with_blob_store`]), so a host that
//! embeds the engine without the gateway uploads and serves blobs with the same rules.

use std::sync::Arc;

use bytes::Bytes;

use crate::error::{Error, Result};
use crate::ids::{BlobKey, UserId};
use crate::media::{ImageLimits, inspect_image};
use crate::model::{BlobMeta, BlobPurpose};
use crate::ports::{Blob, BlobStore};

use super::{Engine, validate};

/// Longest content type a registered blob may carry (it ends up in a response header).
const MAX_CONTENT_TYPE_LEN: usize = 255;

/// How long a signed URL of an external blob store lives, in seconds.
pub const SIGNED_URL_TTL_SECS: u64 = 300;

/// How to hand a blob's bytes to a reader: [`Engine::open_blob`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BlobContent {
    /// An external store signed a short-lived URL ([`SIGNED_URL_TTL_SECS`]): redirect to it.
    Redirect {
        /// The signed URL.
        url: String,
    },
    /// The bytes, served by the transport with `meta.content_type` (sniffed at upload).
    Bytes {
        /// The blob's registered metadata.
        meta: BlobMeta,
        /// The bytes.
        blob: Blob,
    },
}

impl Engine {
    /// Uses `blobs` for uploads and blob reads. Without one, both answer `unavailable`.
    pub fn with_blob_store(mut self, blobs: Arc<dyn BlobStore>) -> Self {
        self.blobs = Some(blobs);
        self
    }

    fn blob_store(&self) -> Result<&Arc<dyn BlobStore>> {
        self.blobs
            .as_ref()
            .ok_or_else(|| Error::unavailable("no blob store configured"))
    }

    /// Checks a whole upload and stores it for the caller: an image (PNG, JPEG, GIF or WebP,
    /// sniffed from the bytes and checked complete, never trusted from the client) within
    /// `limits.max_image_pixels`, under a fresh random key; the bytes go to the blob store,
    /// then the metadata is registered (the bytes are deleted again if that fails), so a
    /// refused upload leaves nothing behind. Use the key in a media message, or its path as
    /// an avatar URL.
    pub async fn upload(&self, actor: UserId, purpose: BlobPurpose, bytes: Bytes) -> Result<BlobMeta> {
        let blobs = self.blob_store()?.clone();
        let limits = ImageLimits {
            max_pixels: self.config.limits.max_image_pixels,
            ..ImageLimits::default()
        };
        let info = inspect_image(&bytes, &limits)?;
        let content_type = info.content_type();
        let key = BlobKey::random();
        let meta = BlobMeta {
            key: key.to_string(),
            owner_id: actor,
            content_type: content_type.to_owned(),
            size: bytes.len() as u64,
            width: Some(info.width),
            height: Some(info.height),
            purpose,
            created_at: self.now(),
        };
        blobs.put(&key, bytes, content_type).await?;
        match self.register_blob(actor, meta).await {
            Ok(meta) => Ok(meta),
            Err(e) => {
                if let Err(d) = blobs.delete(&key).await {
                    tracing::warn!(target: "chatico::engine", error = %d, %key, "orphan blob not deleted");
                }
                Err(e)
            }
        }
    }

    /// Records a blob owned by the caller whose bytes are already in the blob store (what
    /// [`Engine::upload`] does after storing them; a host that stores bytes its own way
    /// calls it directly). A media message may then reference it.
    pub async fn register_blob(&self, actor: UserId, meta: BlobMeta) -> Result<BlobMeta> {
        let l = &self.config.limits;
        if meta.owner_id != actor {
            return Err(Error::forbidden("a blob is registered by its owner"));
        }
        BlobKey::parse(&meta.key)?;
        validate::token("content_type", &meta.content_type, MAX_CONTENT_TYPE_LEN)?;
        if meta.size == 0 {
            return Err(Error::invalid("size", "must not be empty"));
        }
        if meta.size > l.max_blob_bytes {
            return Err(Error::too_large("blob", l.max_blob_bytes));
        }
        if self.store.get_blob(&meta.key).await?.is_some() {
            return Err(Error::conflict("blob key already registered"));
        }
        self.store.insert_blob(&meta).await?;
        Ok(meta)
    }

    /// The metadata of a blob the caller may read (for serving its bytes): an `avatar`
    /// blob to any signed-in user; a `media` blob to its owner, and to the current members
    /// of a conversation holding a message that references it (not deleted for everyone,
    /// above their `joined_seq`). Anything else, a missing or malformed key included, is
    /// `not_found`: the answer never tells whether someone else's blob exists.
    pub async fn blob_for_reading(&self, actor: UserId, key: &str) -> Result<BlobMeta> {
        self.readable_blob(actor, key).await.map(|(_, meta)| meta)
    }

    /// [`Engine::blob_for_reading`], with the parsed key.
    async fn readable_blob(&self, actor: UserId, key: &str) -> Result<(BlobKey, BlobMeta)> {
        let hidden = || Error::not_found("blob");
        let key = BlobKey::parse(key).map_err(|_| hidden())?;
        let meta = self.store.get_blob(key.as_str()).await?.ok_or_else(hidden)?;
        let readable = match meta.purpose {
            BlobPurpose::Avatar => true,
            BlobPurpose::Media => meta.owner_id == actor || self.store.blob_shared_with(key.as_str(), actor).await?,
        };
        if readable { Ok((key, meta)) } else { Err(hidden()) }
    }

    /// A blob for the caller to read, if they may ([`Engine::blob_for_reading`]): a signed
    /// URL when the blob store makes them, otherwise the bytes.
    pub async fn open_blob(&self, actor: UserId, key: &str) -> Result<BlobContent> {
        let (key, meta) = self.readable_blob(actor, key).await?;
        let blobs = self.blob_store()?;
        if let Some(url) = blobs.signed_url(&key, SIGNED_URL_TTL_SECS).await? {
            return Ok(BlobContent::Redirect { url });
        }
        let blob = blobs.get(&key).await?;
        Ok(BlobContent::Bytes { meta, blob })
    }
}

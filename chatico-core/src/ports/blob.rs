use async_trait::async_trait;
use bytes::Bytes;

use crate::SendSyncOutsideWasm;
use crate::error::Result;
use crate::ids::BlobKey;

/// Bytes and their (sniffed) type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    /// The bytes.
    pub bytes: Bytes,
    /// The MIME type, sniffed at upload.
    pub content_type: String,
}

/// Where uploaded files live: local disk, S3-compatible storage, Cloudinary...
/// Metadata and ownership live in the [`crate::ports::Store`] (`BlobMeta`); this port only
/// moves bytes. Keys are [`BlobKey`]s, so an adapter never sees a key outside the one
/// validity rule (no `..`, no absolute path, nothing a filesystem or bucket reads specially).
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait BlobStore: SendSyncOutsideWasm {
    /// Stores `bytes` under `key`, replacing nothing (keys are random and fresh).
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<()>;
    /// Reads a blob; `NotFound` if absent.
    async fn get(&self, key: &BlobKey) -> Result<Blob>;
    /// Deletes a blob; deleting a missing key is not an error.
    async fn delete(&self, key: &BlobKey) -> Result<()>;
    /// A short-lived URL a client may fetch directly (external stores), or `None` when the
    /// gateway must serve the bytes itself.
    async fn signed_url(&self, key: &BlobKey, ttl_secs: u64) -> Result<Option<String>>;
}

use async_trait::async_trait;
use bytes::Bytes;

use crate::SendSyncOutsideWasm;
use crate::error::Result;

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
/// moves bytes.
#[cfg_attr(target_family = "wasm", async_trait(?Send))]
#[cfg_attr(not(target_family = "wasm"), async_trait)]
pub trait BlobStore: SendSyncOutsideWasm {
    /// Stores `bytes` under `key`, replacing nothing (keys are random and fresh).
    async fn put(&self, key: &str, bytes: Bytes, content_type: &str) -> Result<()>;
    /// Reads a blob; `NotFound` if absent.
    async fn get(&self, key: &str) -> Result<Blob>;
    /// Deletes a blob; deleting a missing key is not an error.
    async fn delete(&self, key: &str) -> Result<()>;
    /// A short-lived URL a client may fetch directly (external stores), or `None` when the
    /// gateway must serve the bytes itself.
    async fn signed_url(&self, key: &str, ttl_secs: u64) -> Result<Option<String>>;
}

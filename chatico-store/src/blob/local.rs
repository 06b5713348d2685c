use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use bytes::Bytes;
use chatico_core::error::{Error, Result};
use chatico_core::ids::BlobKey;
use chatico_core::media::OCTET_STREAM;
use chatico_core::ports::{Blob, BlobStore};
use tokio::io::AsyncWriteExt;

use super::validate_content_type;

/// Temporary files, renamed into place once complete (same filesystem, so `rename` is atomic).
const TMP_DIR: &str = ".tmp";
/// One small file per blob holding its content type, mirroring the key's path.
const META_DIR: &str = ".meta";

/// Blobs as files under a root directory: the bytes at `root/<key>`, the content type at
/// `root/.meta/<key>`. Keys are validated (as [`chatico_core::ids::BlobKey`]s) so they can never leave
/// the root, and cannot collide with the `.tmp`/`.meta` directories (no segment starts with
/// a dot). A write goes to `root/.tmp/` first and is renamed into place after `fsync`, so a
/// reader sees the whole blob or nothing, and a crash leaves at most a stray temp file.
#[derive(Debug, Clone)]
pub struct LocalDiskBlobStore {
    root: PathBuf,
}

impl LocalDiskBlobStore {
    /// Opens (creating if needed) a store rooted at `root`.
    pub async fn open(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        for dir in [root.clone(), root.join(TMP_DIR), root.join(META_DIR)] {
            tokio::fs::create_dir_all(&dir)
                .await
                .map_err(|e| io_error("creating the blob directory", &dir, e))?;
        }
        Ok(LocalDiskBlobStore { root })
    }

    /// The directory blobs are kept under.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn data_path(&self, key: &str) -> PathBuf {
        self.root.join(key)
    }

    fn meta_path(&self, key: &str) -> PathBuf {
        self.root.join(META_DIR).join(key)
    }

    /// Writes `bytes` to a fresh temp file, syncs it, and renames it to `dest`.
    async fn write_atomic(&self, dest: &Path, bytes: &[u8]) -> Result<()> {
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|e| io_error("creating a blob directory", parent, e))?;
        }
        let tmp = self.root.join(TMP_DIR).join(hex::encode(rand::random::<[u8; 16]>()));
        let written = async {
            let mut file = tokio::fs::File::create_new(&tmp).await?;
            file.write_all(bytes).await?;
            file.sync_all().await?;
            drop(file);
            tokio::fs::rename(&tmp, dest).await
        }
        .await;
        if let Err(e) = written {
            // Best effort: never leave a half-written temp file behind.
            let _ = tokio::fs::remove_file(&tmp).await;
            return Err(io_error("writing a blob", dest, e));
        }
        Ok(())
    }
}

fn io_error(what: &str, path: &Path, e: std::io::Error) -> Error {
    tracing::error!(path = %path.display(), error = %e, "local blob store: {what} failed");
    Error::unavailable(format!("local blob store: {what}: {e}"))
}

async fn remove_if_present(path: &Path) -> Result<()> {
    match tokio::fs::remove_file(path).await {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_error("deleting a blob", path, e)),
    }
}

#[async_trait]
impl BlobStore for LocalDiskBlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<()> {
        let key = key.as_str();
        validate_content_type(content_type)?;
        // Type first, then bytes: once the blob is visible its type is there too.
        self.write_atomic(&self.meta_path(key), content_type.as_bytes()).await?;
        self.write_atomic(&self.data_path(key), &bytes).await?;
        tracing::debug!(key, size = bytes.len(), content_type, "local blob stored");
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Blob> {
        let key = key.as_str();
        let path = self.data_path(key);
        let bytes = match tokio::fs::read(&path).await {
            Ok(b) => Bytes::from(b),
            // A directory (a key that is a prefix of others) is not a blob either.
            Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::IsADirectory) => {
                return Err(Error::not_found("blob"));
            }
            Err(e) => return Err(io_error("reading a blob", &path, e)),
        };
        let content_type = match tokio::fs::read_to_string(self.meta_path(key)).await {
            Ok(ct) if validate_content_type(&ct).is_ok() => ct,
            Ok(_) | Err(_) => {
                tracing::warn!(key, "local blob without a readable content type; serving octet-stream");
                OCTET_STREAM.to_owned()
            }
        };
        Ok(Blob { bytes, content_type })
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let key = key.as_str();
        remove_if_present(&self.data_path(key)).await?;
        remove_if_present(&self.meta_path(key)).await
    }

    async fn signed_url(&self, _key: &BlobKey, _ttl_secs: u64) -> Result<Option<String>> {
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chatico_core::ErrorCode;

    fn k(key: &str) -> BlobKey {
        BlobKey::parse(key).expect(key)
    }

    async fn store() -> (tempfile::TempDir, LocalDiskBlobStore) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalDiskBlobStore::open(dir.path().join("blobs")).await.expect("open");
        (dir, store)
    }

    #[tokio::test]
    async fn put_get_delete_round_trip() {
        let (_dir, s) = store().await;
        s.put(&k("avatars/u1/abc.png"), Bytes::from_static(b"\x89PNG..."), "image/png")
            .await
            .expect("put");
        let blob = s.get(&k("avatars/u1/abc.png")).await.expect("get");
        assert_eq!(blob.bytes, Bytes::from_static(b"\x89PNG..."));
        assert_eq!(blob.content_type, "image/png");
        assert_eq!(s.signed_url(&k("avatars/u1/abc.png"), 60).await, Ok(None));
        s.delete(&k("avatars/u1/abc.png")).await.expect("delete");
        assert_eq!(s.get(&k("avatars/u1/abc.png")).await, Err(Error::not_found("blob")));
        // Deleting a missing key is not an error.
        s.delete(&k("avatars/u1/abc.png")).await.expect("delete again");
        s.delete(&k("never/existed")).await.expect("delete missing");
    }

    #[tokio::test]
    async fn missing_keys_and_directories_are_not_found() {
        let (_dir, s) = store().await;
        assert_eq!(s.get(&k("nope")).await, Err(Error::not_found("blob")));
        s.put(&k("a/b"), Bytes::from_static(b"x"), "text/plain")
            .await
            .expect("put");
        assert_eq!(s.get(&k("a")).await, Err(Error::not_found("blob")));
    }

    #[tokio::test]
    async fn traversal_keys_are_refused_and_nothing_is_written_outside_the_root() {
        let (dir, s) = store().await;
        for key in [
            "../escape",
            "/etc/passwd",
            "a/../../escape",
            ".meta/x",
            ".tmp/x",
            "a\\..\\b",
        ] {
            // The store takes only `BlobKey`s: such a key cannot be built, so never reaches it.
            let err = BlobKey::parse(key).expect_err(key);
            assert_eq!(err.code(), ErrorCode::InvalidInput, "{key}");
        }
        s.put(&k("a/b"), Bytes::from_static(b"x"), "text/plain")
            .await
            .expect("put");
        // Only the store's own directory exists beside the root.
        let entries: Vec<_> = std::fs::read_dir(dir.path())
            .expect("read")
            .map(|e| e.expect("entry").file_name())
            .collect();
        assert_eq!(entries, vec![std::ffi::OsString::from("blobs")]);
        let err = s
            .put(&k("ok"), Bytes::from_static(b"x"), "text/html\r\nSet-Cookie: a=b")
            .await
            .expect_err("header injection");
        assert_eq!(err.code(), ErrorCode::InvalidInput);
    }

    #[tokio::test]
    async fn writes_leave_no_temp_files_and_replace_atomically() {
        let (_dir, s) = store().await;
        for i in 0..20u8 {
            s.put(&k("k"), Bytes::from(vec![i; 1000]), "application/octet-stream")
                .await
                .expect("put");
        }
        assert_eq!(s.get(&k("k")).await.expect("get").bytes, Bytes::from(vec![19u8; 1000]));
        let tmp: Vec<_> = std::fs::read_dir(s.root().join(TMP_DIR)).expect("tmp").collect();
        assert!(tmp.is_empty(), "temp files left: {tmp:?}");
    }

    #[tokio::test]
    async fn concurrent_writers_and_readers_never_see_a_partial_blob() {
        let (_dir, s) = store().await;
        let big = 256 * 1024;
        s.put(&k("shared"), Bytes::from(vec![0u8; big]), "application/octet-stream")
            .await
            .expect("seed");
        let writer = {
            let s = s.clone();
            tokio::spawn(async move {
                for i in 1..=30u8 {
                    s.put(&k("shared"), Bytes::from(vec![i; big]), "application/octet-stream")
                        .await
                        .expect("put");
                }
            })
        };
        let reader = {
            let s = s.clone();
            tokio::spawn(async move {
                for _ in 0..100 {
                    let b = s.get(&k("shared")).await.expect("get").bytes;
                    assert_eq!(b.len(), big);
                    assert!(b.iter().all(|&x| x == b[0]), "torn read");
                }
            })
        };
        writer.await.expect("writer");
        reader.await.expect("reader");
    }
}

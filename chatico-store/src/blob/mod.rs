//! Blob stores behind the core [`BlobStore`](chatico_core::ports::BlobStore) port: they move
//! bytes only; ownership and metadata live in the `Store` (`BlobMeta`).
//!
//! - [`LocalDiskBlobStore`] (always built): files under a root directory, atomic writes.
//!   The example server's default. `signed_url` is `None`: the gateway serves the bytes.
//! - [`S3BlobStore`] (feature `blob-s3`): S3-compatible storage through `object_store`;
//!   `signed_url` is a presigned GET (SigV4 query auth).
//! - [`CloudinaryBlobStore`] (feature `blob-cloudinary`): signed uploads to Cloudinary;
//!   `signed_url` is the delivery URL.
//!
//! Every store takes its keys as [`chatico_core::ids::BlobKey`]s, so each key already holds
//! the one rule: `/`-separated segments of ASCII letters, digits, `-`, `_` and `.`, none empty, none
//! starting with `.` (so no `..`, no hidden files, no absolute paths), at most 256 bytes.

mod local;
pub use local::LocalDiskBlobStore;

#[cfg(feature = "blob-s3")]
mod s3;
#[cfg(feature = "blob-s3")]
pub use s3::{S3BlobStore, S3Config};

#[cfg(feature = "blob-cloudinary")]
mod cloudinary;
#[cfg(feature = "blob-cloudinary")]
pub use cloudinary::{
    CLOUDINARY_API_BASE, CLOUDINARY_DELIVERY_BASE, CloudinaryBlobStore, CloudinaryConfig, SignatureAlgorithm,
    sign_params,
};

use chatico_core::error::{Error, Result};

/// A content type must look like `type/subtype[; params]` in printable ASCII (it ends up in
/// a response header).
pub fn validate_content_type(content_type: &str) -> Result<()> {
    let ok = !content_type.is_empty()
        && content_type.len() <= 255
        && content_type.bytes().all(|b| (0x20..0x7F).contains(&b))
        && content_type.split(';').next().is_some_and(|essence| {
            essence
                .trim()
                .split_once('/')
                .is_some_and(|(t, s)| !t.is_empty() && !s.is_empty())
        });
    if ok {
        Ok(())
    } else {
        Err(Error::invalid("content_type", "not a MIME type"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_types_must_be_mime_types() {
        for good in ["image/png", "application/octet-stream", "text/plain; charset=utf-8"] {
            assert!(validate_content_type(good).is_ok(), "{good}");
        }
        for bad in ["", "png", "/png", "image/", "image/png\r\nX-Evil: 1", "image/pngé"] {
            assert!(validate_content_type(bad).is_err(), "{bad:?}");
        }
    }
}

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use chatico_core::error::{Error, Result};
use chatico_core::ids::BlobKey;
use chatico_core::media::OCTET_STREAM;
use chatico_core::ports::{Blob, BlobStore};
use chatico_core::retry::RetryPolicy;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::signer::Signer;
use object_store::{
    Attribute, AttributeValue, Attributes, BackoffConfig, ClientOptions, ObjectStore, PutOptions, PutPayload,
    RetryConfig,
};

use super::validate_content_type;

/// The longest validity S3 accepts for a presigned URL (7 days).
pub const MAX_SIGNED_URL_TTL_SECS: u64 = 7 * 24 * 3600;

/// Where and how to reach an S3-compatible bucket. `new` fills the defaults.
#[derive(Clone)]
pub struct S3Config {
    /// The bucket every blob goes to.
    pub bucket: String,
    /// e.g. `us-east-1`; S3-compatible servers usually accept any region.
    pub region: String,
    /// `None` for AWS itself; `http://127.0.0.1:9000` for a local server, an `https://` URL
    /// for MinIO, Ceph, R2...
    pub endpoint: Option<String>,
    /// The access key id requests are signed with.
    pub access_key_id: String,
    /// The secret half of the access key; never sent.
    pub secret_access_key: String,
    /// A session token, for temporary credentials.
    pub session_token: Option<String>,
    /// Plain `http://` endpoints are refused unless this is set (loopback and development).
    pub allow_http: bool,
    /// `bucket.host/key` instead of `host/bucket/key`.
    pub virtual_hosted_style: bool,
    /// Prepended to every key (`prefix/key`), to share a bucket.
    pub prefix: Option<String>,
    /// Limit for a whole request, body included.
    pub timeout: Duration,
    /// Limit for opening the connection.
    pub connect_timeout: Duration,
    /// Retries of transient failures (5xx, timeouts), done by `object_store`.
    pub retry: RetryPolicy,
}

impl S3Config {
    /// A bucket and its credentials with the defaults: AWS itself (no endpoint), https only,
    /// path-style URLs, no prefix, the default timeouts and retries.
    pub fn new(
        bucket: impl Into<String>,
        region: impl Into<String>,
        access_key_id: impl Into<String>,
        secret_access_key: impl Into<String>,
    ) -> Self {
        S3Config {
            bucket: bucket.into(),
            region: region.into(),
            endpoint: None,
            access_key_id: access_key_id.into(),
            secret_access_key: secret_access_key.into(),
            session_token: None,
            allow_http: false,
            virtual_hosted_style: false,
            prefix: None,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(5),
            retry: RetryPolicy::default(),
        }
    }
}

impl fmt::Debug for S3Config {
    /// Secrets are never printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Config")
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("endpoint", &self.endpoint)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .field("allow_http", &self.allow_http)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// [`BlobStore`] on an S3-compatible bucket through `object_store` (SigV4 signing, retries
/// with backoff). The content type is stored as the object's `Content-Type`; `signed_url`
/// is a presigned GET valid for the requested time (at most 7 days).
#[derive(Debug, Clone)]
pub struct S3BlobStore {
    store: AmazonS3,
    prefix: Option<String>,
}

impl S3BlobStore {
    /// A store on this bucket; an empty bucket name or an invalid prefix is refused here
    /// (`invalid_input`), before any request.
    pub fn new(config: S3Config) -> Result<Self> {
        if config.bucket.is_empty() {
            return Err(Error::invalid("s3.bucket", "empty"));
        }
        if let Some(prefix) = &config.prefix {
            BlobKey::parse(prefix).map_err(|_| Error::invalid("s3.prefix", "not a valid key prefix"))?;
        }
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: config.retry.initial_backoff,
                max_backoff: config.retry.max_backoff,
                base: 2.0,
            },
            max_retries: config.retry.max_attempts.saturating_sub(1) as usize,
            retry_timeout: Duration::from_secs(60),
        };
        let client = ClientOptions::new()
            .with_allow_http(config.allow_http)
            .with_timeout(config.timeout)
            .with_connect_timeout(config.connect_timeout);
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(&config.secret_access_key)
            .with_virtual_hosted_style_request(config.virtual_hosted_style)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(token) = &config.session_token {
            builder = builder.with_token(token);
        }
        let store = builder
            .build()
            .map_err(|e| Error::invalid("s3", format!("bad S3 configuration: {e}")))?;
        Ok(S3BlobStore {
            store,
            prefix: config.prefix,
        })
    }

    fn path(&self, key: &BlobKey) -> Result<Path> {
        let full = match &self.prefix {
            Some(p) => format!("{p}/{key}"),
            None => key.to_string(),
        };
        Path::parse(full).map_err(|e| Error::invalid("key", e.to_string()))
    }
}

fn map_error(op: &'static str, key: &BlobKey, e: object_store::Error) -> Error {
    match e {
        // On a read, the object is missing. On a write, only the bucket can be: that is a
        // configuration problem, not something the caller asked for.
        object_store::Error::NotFound { .. } if op != "put" => Error::not_found("blob"),
        other => {
            tracing::error!(op, %key, error = %other, "s3 blob store call failed");
            Error::unavailable(format!("s3 {op}: {other}"))
        }
    }
}

#[async_trait]
impl BlobStore for S3BlobStore {
    async fn put(&self, key: &BlobKey, bytes: Bytes, content_type: &str) -> Result<()> {
        let path = self.path(key)?;
        validate_content_type(content_type)?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, AttributeValue::from(content_type.to_owned()));
        let options = PutOptions {
            attributes,
            ..PutOptions::default()
        };
        let size = bytes.len();
        self.store
            .put_opts(&path, PutPayload::from(bytes), options)
            .await
            .map_err(|e| map_error("put", key, e))?;
        tracing::debug!(%key, size, content_type, "s3 blob stored");
        Ok(())
    }

    async fn get(&self, key: &BlobKey) -> Result<Blob> {
        let path = self.path(key)?;
        let result = self.store.get(&path).await.map_err(|e| map_error("get", key, e))?;
        let content_type = result
            .attributes
            .get(&Attribute::ContentType)
            .map(|v| v.as_ref().to_owned())
            .filter(|ct| validate_content_type(ct).is_ok())
            .unwrap_or_else(|| OCTET_STREAM.to_owned());
        let bytes = result.bytes().await.map_err(|e| map_error("get", key, e))?;
        Ok(Blob { bytes, content_type })
    }

    async fn delete(&self, key: &BlobKey) -> Result<()> {
        let path = self.path(key)?;
        match self.store.delete(&path).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(map_error("delete", key, e)),
        }
    }

    async fn signed_url(&self, key: &BlobKey, ttl_secs: u64) -> Result<Option<String>> {
        let path = self.path(key)?;
        if ttl_secs == 0 || ttl_secs > MAX_SIGNED_URL_TTL_SECS {
            return Err(Error::invalid(
                "ttl_secs",
                format!("must be 1 to {MAX_SIGNED_URL_TTL_SECS} seconds"),
            ));
        }
        let url = self
            .store
            .signed_url(http::Method::GET, &path, Duration::from_secs(ttl_secs))
            .await
            .map_err(|e| map_error("sign", key, e))?;
        Ok(Some(url.to_string()))
    }
}

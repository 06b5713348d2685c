//! Identifiers and time.
//!
//! Ids are UUIDs. Message ids are time-ordered (UUIDv7 layout: 48-bit millisecond timestamp,
//! then random bits) so they sort by creation time; order *within a conversation* is always
//! by `seq`, never by id or clock.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, Result};

/// Milliseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

macro_rules! uuid_id {
    ($(#[$m:meta])* $name:ident) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[cfg_attr(feature = "openapi", schema(value_type = String, format = Uuid))]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new time-ordered id for `now_ms`.
            pub fn new(now_ms: Timestamp) -> Self {
                Self(time_ordered_uuid(now_ms))
            }
            /// The underlying UUID.
            pub fn as_uuid(&self) -> &Uuid {
                &self.0
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl std::str::FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self> {
                Uuid::parse_str(s)
                    .map($name)
                    .map_err(|_| Error::invalid(stringify!($name), "not a UUID"))
            }
        }
    };
}

uuid_id!(
    /// A user.
    UserId
);
uuid_id!(
    /// A conversation (direct or group).
    ConversationId
);
uuid_id!(
    /// A message; time-ordered.
    MessageId
);
uuid_id!(
    /// A login session (one per device login; owns one rotating refresh token).
    SessionId
);

/// Builds a UUIDv7-layout id: 48-bit big-endian millisecond timestamp, version 7, variant
/// RFC 4122, 74 random bits.
pub fn time_ordered_uuid(now_ms: Timestamp) -> Uuid {
    let mut bytes: [u8; 16] = rand::random();
    let ms = (now_ms.max(0) as u64) & 0xFFFF_FFFF_FFFF;
    bytes[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    bytes[6] = (bytes[6] & 0x0F) | 0x70;
    bytes[8] = (bytes[8] & 0x3F) | 0x80;
    Uuid::from_bytes(bytes)
}

/// A client-chosen idempotency key for a send (Matrix calls it a transaction id).
/// `(sender, client_msg_id)` is unique: a retry returns the original message.
pub type ClientMsgId = String;

/// A phone number in E.164 form: `+` then 8 to 15 digits, the first not zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String, example = "+14155550100"))]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses a phone number. Spaces, dashes, dots and parentheses are ignored; the result
    /// must be E.164.
    pub fn parse(input: &str) -> Result<Self> {
        let cleaned: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')'))
            .collect();
        let digits = cleaned
            .strip_prefix('+')
            .ok_or_else(|| Error::invalid("phone", "must start with + and a country code (E.164)"))?;
        let ok =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if !ok {
            return Err(Error::invalid("phone", "not an E.164 phone number"));
        }
        Ok(Phone(cleaned))
    }

    /// The normalised number, `+` and digits only.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Phone {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The key of an uploaded blob, in the blob store and in the metadata (`BlobMeta::key`,
/// `MediaRef::blob_key`, `GET /v1/blobs/{key}`).
///
/// The one rule every key is held to, wherever it is parsed (engine, blob stores, gateway):
/// 1 to [`BlobKey::MAX_LEN`] bytes of `/`-separated segments, each non-empty, made of ASCII
/// letters, digits, `-`, `_` and `.`, none starting with `.` — so no `..`, no hidden files,
/// no absolute paths, nothing a filesystem or an object store reads specially. Keys the
/// engine makes ([`BlobKey::random`]) are 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(value_type = String))]
#[serde(try_from = "String", into = "String")]
pub struct BlobKey(String);

impl BlobKey {
    /// The longest key, in bytes.
    pub const MAX_LEN: usize = 256;

    /// Checks `key` against the rule above; `invalid_input` (field `key`) otherwise.
    pub fn parse(key: &str) -> Result<Self> {
        Self::parse_field("key", key)
    }

    /// [`BlobKey::parse`], naming `field` in the error (`blob_key` in a media message).
    pub fn parse_field(field: &str, key: &str) -> Result<Self> {
        if key.is_empty() || key.len() > Self::MAX_LEN {
            return Err(Error::invalid(field, format!("must be 1 to {} bytes", Self::MAX_LEN)));
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return Err(Error::invalid(
                    field,
                    "empty path segment (leading, trailing or double '/')",
                ));
            }
            if segment.starts_with('.') {
                return Err(Error::invalid(field, "a segment may not start with '.'"));
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(Error::invalid(
                    field,
                    "only ASCII letters, digits, '-', '_', '.' and '/'",
                ));
            }
        }
        Ok(BlobKey(key.to_owned()))
    }

    /// A fresh key: 128 random bits as 32 lowercase hex digits (unguessable, and plain
    /// enough for every blob store).
    pub fn random() -> Self {
        BlobKey(format!("{:032x}", rand::random::<u128>()))
    }

    /// The key as text (32 lowercase hex digits for generated keys).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for BlobKey {
    type Error = Error;
    fn try_from(s: String) -> Result<Self> {
        BlobKey::parse(&s)
    }
}

impl From<BlobKey> for String {
    fn from(k: BlobKey) -> String {
        k.0
    }
}

impl std::str::FromStr for BlobKey {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        BlobKey::parse(s)
    }
}

impl std::fmt::Display for BlobKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for BlobKey {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_accepts_e164_and_rejects_the_rest() {
        assert_eq!(
            Phone::parse("+44 20 7946-0958").expect("valid").as_str(),
            "+442079460958"
        );
        for bad in [
            "",
            "+",
            "0044123456",
            "+0123456789",
            "+12ab4567890",
            "+1234567",
            "+1234567890123456",
        ] {
            assert!(Phone::parse(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn message_ids_sort_by_time() {
        let a = MessageId::new(1_700_000_000_000);
        let b = MessageId::new(1_700_000_000_001);
        assert!(a < b);
        assert_eq!(a.0.get_version_num(), 7);
    }

    #[test]
    fn blob_keys_that_could_escape_are_refused() {
        for bad in [
            "", "/abs", "a//b", "a/", "..", "../x", "a/../b", "a/./b", ".hidden", "a\\b", "a b", "a%2e%2e", "é",
            "a\0b", "C:x", "a?b", "a#b",
        ] {
            let e = BlobKey::parse(bad).expect_err(bad);
            assert_eq!(e.body().field.as_deref(), Some("key"), "{bad:?}");
        }
        assert!(BlobKey::parse(&"a".repeat(BlobKey::MAX_LEN + 1)).is_err());
        for good in [
            "a",
            "avatars/0f3c-11_x.png",
            "media/2024/abc.def",
            &"b".repeat(BlobKey::MAX_LEN),
        ] {
            assert_eq!(BlobKey::parse(good).expect(good).as_str(), good);
        }
    }

    #[test]
    fn random_blob_keys_follow_the_rule() {
        let (a, b) = (BlobKey::random(), BlobKey::random());
        assert_ne!(a, b);
        assert_eq!(a.as_str().len(), 32);
        assert!(
            a.as_str()
                .bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert_eq!(BlobKey::parse(a.as_str()).expect("valid"), a);
        let json = serde_json::to_string(&a).expect("json");
        assert_eq!(serde_json::from_str::<BlobKey>(&json).expect("back"), a);
        assert!(serde_json::from_str::<BlobKey>("\"../x\"").is_err());
    }
}

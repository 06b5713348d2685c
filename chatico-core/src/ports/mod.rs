//! Ports: the traits through which the core reaches the outside world. Adapters live in
//! `chatico-store` and `chatico-transport`; in-memory implementations live in this crate.
//!
//! Async traits use `async_trait`; their futures are `Send` except on wasm, where browser
//! futures are not (matrix-rust-sdk's `SendOutsideWasm` pattern, see [`crate::SendOutsideWasm`]).

mod backplane;
mod blob;
mod clock;
mod otp;
mod presence;
mod store;

pub use backplane::{
    Backplane, BackplaneEvent, ENVELOPE_VERSION, EncodedDelivery, Envelope, EventStream, NodeId, Payload,
};
pub use blob::{Blob, BlobStore};
#[cfg(not(target_family = "wasm"))]
pub use clock::SystemClock;
pub use clock::{Clock, ManualClock};
pub use otp::{OtpCache, OtpCheck, OtpEntry, OtpVerifier, SmsSender, VerifyOutcome};
pub use presence::{PresenceChanges, PresenceTracker};
pub use store::{NewConversation, Store, StoredReaction};

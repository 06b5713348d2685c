//! # chatico-core
//!
//! The sans-I/O heart of ChatiCO: the domain model, the rules, the services, the wire
//! protocol types, the ports (traits) adapters implement, an in-memory store and the store
//! conformance suite (feature `testing`).
//!
//! This crate knows nothing of sockets, HTTP, SQL or an async runtime. It compiles for
//! `wasm32-unknown-unknown` (without the `server` feature) so the browser client reuses it.

#![warn(missing_docs)]

#[cfg(feature = "server")]
pub mod auth;
pub mod client;
pub mod config;
pub mod engine;
pub mod error;
pub mod ids;
pub mod media;
pub mod memory;
pub mod model;
pub mod otp_cache;
pub mod ports;
pub mod presence;
pub mod protocol;
pub mod push;
pub mod retry;
pub mod search;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{AuthConfig, Config, Limits};
pub use engine::Engine;
pub use error::{Error, ErrorBody, ErrorCode, Result};
pub use otp_cache::MemoryOtpCache;
pub use presence::MemoryPresence;

/// `Send + Sync` outside wasm, nothing on wasm (browser futures and JS handles are not
/// `Send`). Port traits use it as their supertrait.
#[cfg(not(target_family = "wasm"))]
pub trait SendSyncOutsideWasm: Send + Sync {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send + Sync + ?Sized> SendSyncOutsideWasm for T {}
/// On wasm: no bound (see the native definition).
#[cfg(target_family = "wasm")]
pub trait SendSyncOutsideWasm {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> SendSyncOutsideWasm for T {}

/// `Send` outside wasm, nothing on wasm.
#[cfg(not(target_family = "wasm"))]
pub trait SendOutsideWasm: Send {}
#[cfg(not(target_family = "wasm"))]
impl<T: Send + ?Sized> SendOutsideWasm for T {}
/// On wasm: no bound (see the native definition).
#[cfg(target_family = "wasm")]
pub trait SendOutsideWasm {}
#[cfg(target_family = "wasm")]
impl<T: ?Sized> SendOutsideWasm for T {}

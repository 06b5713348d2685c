//! UniFFI bindings of the ChatiCO client SDK, for Swift (iOS), Kotlin (Android) and Python
//! (the tests).
//!
//! This crate adapts types and nothing else: every behaviour — login, token refresh,
//! reconnect with backoff, resume from the sync cursor, the outbox, the local view — is
//! `chatico_transport::client::Client`'s. The shape follows matrix-rust-sdk's FFI crate:
//!
//! - [`ChatClient`], an object with async methods (the foreign side awaits them with its own
//!   executor; the work runs on the SDK's tokio runtime, see [`runtime`]);
//! - listener traits the app implements ([`ChatEventListener`], [`ConnectionListener`]),
//!   registered with `subscribe_*`, which return a [`TaskHandle`] that cancels the
//!   subscription when cancelled or dropped;
//! - one flat error enum, [`ChatError`], one variant per stable core error code.
//!
//! Bindings are generated in library mode by the `uniffi-bindgen` binary of this crate
//! (`bindings/ffi/generate.sh`).

mod client;
mod error;
mod types;

pub use client::{ChatClient, ChatEventListener, ConnectionListener, TaskHandle};
pub use error::{ChatError, ErrorCode};
pub use types::*;

uniffi::setup_scaffolding!();

/// The SDK's tokio runtime: every connection task, HTTP request and listener runs on it, so
/// the foreign side only ever polls a finished-or-not `JoinHandle`.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("chatico-sdk")
            .enable_all()
            .build()
            // Without a runtime the SDK cannot do anything; this happens only when the OS
            // refuses to start threads.
            .unwrap_or_else(|e| panic!("chatico: cannot start the tokio runtime: {e}"))
    })
}

//! # chatico-wasm
//!
//! The ChatiCO client SDK for browsers, through `wasm-bindgen`: the browser's `WebSocket`
//! and `fetch` underneath, a JavaScript class on top (`api::ChatClient`, built for wasm32
//! only) with Promises, event callbacks and TypeScript types in the generated `.d.ts`.
//!
//! It behaves as the native client (`chatico_transport::client`): it logs in with an OTP,
//! refreshes its tokens (one refresh at a time), keeps one WebSocket open, reconnecting with
//! exponential backoff and jitter, resumes from its sync cursor after every reconnect,
//! resends its outbox with the original `client_msg_id`s, and keeps a local view current.
//! The transport-free parts are `chatico_core::client` — [`Outbox`], [`SyncState`],
//! [`LocalView`] — shared with the native client and the FFI bindings; the wire types are
//! `chatico_core::protocol`. This crate only moves bytes and adapts values to JavaScript.
//!
//! Build the npm package with `bash scripts/build-wasm.sh` (it writes `bindings/wasm/pkg/`).
//!
//! ```js
//! import init, { ChatClient } from "chatico-wasm";
//! await init();
//! const client = new ChatClient(location.origin, { device: navigator.userAgent });
//! await client.requestOtp("+14155550100");
//! await client.verifyOtp("+14155550100", "123456");
//! client.onEvent((ev) => { if (ev.type === "view") render(); });
//! client.connect();
//! ```
//!
//! [`Outbox`]: chatico_core::client::Outbox
//! [`SyncState`]: chatico_core::client::SyncState
//! [`LocalView`]: chatico_core::client::LocalView

#[cfg(target_family = "wasm")]
pub mod api;
#[cfg(target_family = "wasm")]
mod connection;
#[cfg(target_family = "wasm")]
mod http;
#[cfg(target_family = "wasm")]
mod inner;
#[cfg(target_family = "wasm")]
mod js;
#[cfg(target_family = "wasm")]
mod rest;
#[cfg(target_family = "wasm")]
mod socket;
#[cfg(target_family = "wasm")]
mod ts;
pub mod types;

#[cfg(target_family = "wasm")]
pub use api::ChatClient;

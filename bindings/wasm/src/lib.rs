//! # chatico-wasm
//!
//! The ChatiCO client SDK for browsers, through `wasm-bindgen`: the browser's `WebSocket`
//! and `fetch` underneath, a JavaScript class on top (`api::ChatClient`, built for wasm32
//! only) with Promises, event callbacks and TypeScript types in the generated `.d.ts`.
//!
//! It behaves as the native client (`chatico_transport::client`) because it drives the same
//! state machine, `chatico_core::client::ClientMachine`: login with an OTP, tokens refreshed
//! (one refresh at a time), one WebSocket reconnecting with backoff, resume from the sync
//! cursor, the outbox resent with its original `client_msg_id`s, every change reported once
//! and each conversation's messages in `seq` order, and a local view kept current. This crate
//! only moves bytes (the browser's `WebSocket` and `fetch`), keeps time, and adapts values
//! to JavaScript; the wire types are `chatico_core::protocol`.
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

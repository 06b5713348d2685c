//! # chatico-transport
//!
//! How bytes move in ChatiCO:
//!
//! - [`gateway`] (feature `gateway`, default): the embeddable axum gateway — REST and the
//!   WebSocket at `/v1/ws` — over the core [`chatico_core::engine::Engine`]. A host nests
//!   [`gateway::Gateway::router`] under any path next to its own routes, or drives the engine
//!   from its own transport and hands the resulting deliveries to [`gateway::Gateway::publish`].
//! - [`backplane`] (feature `gateway`): fan-out between gateway nodes through the core
//!   [`chatico_core::ports::Backplane`] port; [`backplane::InProcessBackplane`] for one node.
//! - [`client`] (feature `client`): the native client SDK — REST over reqwest, the WebSocket
//!   over tokio-tungstenite — with the transport-free state of `chatico_core::client`.
//! - [`sms`] (feature `sms`; `twilio` adds the Twilio adapters): SMS senders (console for
//!   development, Twilio Messages) and Twilio Verify.
//! - [`push`] (feature `push`; `fcm` and `apns` add the providers): push senders for devices
//!   without a live connection (Firebase Cloud Messaging HTTP v1, APNs over HTTP/2).
//!
//! The trees import nothing of each other, and each feature builds alone (CI checks
//! every feature alone with `cargo hack check --each-feature`). Which one you need:
//!
//! | who | features |
//! |---|---|
//! | a host server that serves chat (REST + WebSocket) | `gateway` |
//! | an app (or binding) that talks to a ChatiCO server | `client` (no default features) |
//! | an operator sending real login codes | `twilio` (beside `gateway`); `sms` alone gives the console sender for development |
//! | an operator pushing to phones | `fcm` and/or `apns` (beside `gateway`) |
//!
//! The defaults (`gateway`, `twilio`) are what a server needs; an app depends on this crate
//! with `default-features = false, features = ["client"]`.
//!
//! The wire protocol types live in [`chatico_core::protocol`]; `docs/PROTOCOL.md` describes it.

#![warn(missing_docs)]

#[cfg(feature = "gateway")]
pub mod backplane;
#[cfg(feature = "client")]
pub mod client;
#[cfg(feature = "gateway")]
pub mod gateway;
#[cfg(feature = "push")]
pub mod push;
#[cfg(feature = "sms")]
pub mod sms;

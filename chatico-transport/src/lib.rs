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
//! - [`sms`]: SMS senders (console for development, Twilio Messages) and Twilio Verify.
//!
//! The wire protocol types live in [`chatico_core::protocol`]; `docs/PROTOCOL.md` describes it.

#[cfg(feature = "gateway")]
pub mod backplane;
#[cfg(feature = "gateway")]
pub mod gateway;
pub mod sms;

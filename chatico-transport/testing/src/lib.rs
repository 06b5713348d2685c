//! The harness ChatiCO's integration tests share (not published).
//!
//! - [`TestServer`]: a real gateway on `127.0.0.1:0` over the in-memory store, with a manual
//!   clock (or the system clock), a local-disk blob store in a temporary directory and a
//!   [`RecordingSms`] sender, so tests log in through the real OTP flow.
//! - [`Api`]: REST calls against any base URL (the in-process gateway, a spawned example
//!   server, a gateway nested under a prefix), including OTP login and the common set-up
//!   steps ([`Api::open_direct`], [`Api::send_text`]).
//! - [`RecordingPush`]: a push sender recording every notification, failing on request.
//! - [`Ws`]: a WebSocket client speaking the JSON protocol (requests with ids, a backlog of
//!   frames read meanwhile, subscribe up to the caught-up cursor, close codes).
//! - [`client`] (feature `client`): settings and helpers for the native client SDK's tests.
//! - [`process`]: the example server as a real process (console read line by line, OTP
//!   codes from it), and `redis-server` / `nats-server` on their own ports, killed and
//!   restarted at will.
//! - [`fault`]: a TCP fault proxy (pass, latency, blackhole, reset, down) to put between a
//!   node and its broker.
//! - [`pg`]: test schemas in the shared PostgreSQL dropped when a test ends, and a sweep of
//!   the stale ones killed runs left.
//!
//! Every wait is bounded by [`PATIENCE`]: a hang fails the test instead of stalling the suite.

#[cfg(feature = "client")]
pub mod client;
pub mod fault;
pub mod pg;
pub mod process;
mod push;
mod rest;
mod server;
mod sms;
mod ws;

use std::time::Duration;

pub use process::which;
pub use push::{PushAttempt, RecordingPush};
pub use rest::{Api, User};
pub use server::{GatewayConfigExt, TestServer, TestServerBuilder, test_config};
pub use sms::{RecordingSms, code_in};
pub use ws::{Ws, is_change, text_of};

/// How long a test waits for a frame or answer that must come (a hang is a failure, not a
/// measurement).
pub const PATIENCE: Duration = Duration::from_secs(20);

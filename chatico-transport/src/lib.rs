//! Transports for ChatiCO (axum gateway, clients, backplanes, SMS senders).
//!
//! - [`client`] (feature `client`): the native client SDK (reqwest + tokio-tungstenite).

#[cfg(feature = "client")]
pub mod client;

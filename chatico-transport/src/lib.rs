//! Transports for ChatiCO (axum gateway, clients, backplanes, SMS senders). Filled by the server issue.

pub mod sms;

//! The embeddable gateway. See the crate docs.

pub mod config;
pub mod error;
pub mod hub;
pub mod limits;

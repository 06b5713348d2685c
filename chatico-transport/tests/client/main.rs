//! The native client SDK against a real gateway started in-process on 127.0.0.1:0.
//!
//! `cargo test -p chatico-transport --features client --test client`

mod common;
mod edits;
mod flows;
mod mentions_pins;
mod push;
mod revocation;
mod search;
mod storm;

//! Integration tests of the gateway: a real server on 127.0.0.1:0, real sockets (reqwest
//! and tokio-tungstenite), the in-memory store.

mod bad_input;
mod cluster;
mod common;
mod defects;
mod edits;
mod media;
mod mentions_pins;
mod method_errors;
mod openapi;
mod push;
mod resume;
mod revocation;
mod search;
mod seed_flow;
mod slow_consumer;
mod slowloris;
mod two_nodes;

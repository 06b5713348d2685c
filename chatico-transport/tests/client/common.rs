//! The client tests' harness lives in the `chatico-test-support` crate (feature `client`):
//! a real gateway on 127.0.0.1:0, clients logged in through the real OTP flow, a chaos TCP
//! proxy.

pub use chatico_test_support::client::*;

//! The gateway tests' harness lives in the `chatico-test-support` crate (shared with the
//! client and example tests); its names stay importable from here.

pub use chatico_test_support::*;

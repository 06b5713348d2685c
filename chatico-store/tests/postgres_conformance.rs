//! The core store conformance suite (and its property tests) on Postgres: each test gets a
//! fresh schema in the database of `CHATICO_TEST_POSTGRES_URL`, so tests run in parallel.
//! Compiled only when that variable is set at build time (see build.rs); otherwise one test
//! reports the suite as skipped.
#![cfg(feature = "postgres")]

#[cfg(chatico_postgres_tests)]
mod common;

#[cfg(chatico_postgres_tests)]
async fn get_store() -> chatico_store::PostgresStore {
    assert!(
        common::pg::url().is_some(),
        "CHATICO_TEST_POSTGRES_URL was set at build time but is not set now"
    );
    common::pg::store().await.expect("Postgres store")
}

#[cfg(chatico_postgres_tests)]
chatico_core::store_conformance_tests!(get_store);
#[cfg(chatico_postgres_tests)]
chatico_core::store_conformance_proptests!(get_store, cases = 8);

#[cfg(not(chatico_postgres_tests))]
#[test]
fn postgres_conformance_suite_skipped() {
    eprintln!("SKIPPED: CHATICO_TEST_POSTGRES_URL not set; the Postgres conformance suite was not compiled or run");
}

//! Compiles the Postgres conformance suite (tests/postgres_conformance.rs) only when
//! `CHATICO_TEST_POSTGRES_URL` is set; without it that test binary holds one test that says
//! loudly that the suite was skipped.
fn main() {
    println!("cargo::rustc-check-cfg=cfg(chatico_postgres_tests)");
    println!("cargo::rerun-if-env-changed=CHATICO_TEST_POSTGRES_URL");
    if std::env::var("CHATICO_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=chatico_postgres_tests");
    }
}

#!/usr/bin/env bash
# The whole ChatiCO test suite, from a fresh clone: README.md's test command, and what
# .ci/run calls. It starts the loopback services the tests need (PostgreSQL and an
# S3-compatible server) when they are down, fails if it still cannot reach them, then runs
# every check.
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chatico-target}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
export CHATICO_TEST_POSTGRES_URL="${CHATICO_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
export CHATICO_TEST_S3_URL="${CHATICO_TEST_S3_URL:-http://127.0.0.1:${CHATICO_S3_PORT:-9000}}"

step() { printf '\n==> %s\n' "$*"; }

bash scripts/services.sh

step "toolchain targets"
rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets --all-features -- -D warnings

# Each feature of each library crate alone, and none (all together: the clippy step above).
# Only the libraries are built, so dev-dependencies add no features (resolver 3).
step "each feature of each library crate alone, and none (cargo hack clippy -D warnings)"
tools="${CHATICO_TOOLS:-$HOME/.cache/chatico-tools}"
export PATH="$tools/bin:$PATH"
command -v cargo-hack >/dev/null || cargo install cargo-hack --version 0.6.46 --locked --root "$tools"
cargo hack clippy --each-feature --exclude-all-features -p chatico-core -p chatico-store -p chatico-transport -- -D warnings

step "every workspace dependency is used by a member"
unused=""
for dep in $(sed -n '/^\[workspace.dependencies\]/,/^\[/s/^\([A-Za-z0-9_-]*\) *=.*/\1/p' Cargo.toml); do
  grep -Eq "^$dep(\.workspace *= *true| *= *\{.*workspace *= *true)" $(git ls-files '*/Cargo.toml') || unused="$unused $dep"
done
if [ -n "$unused" ]; then echo "unused workspace dependencies:$unused" >&2; exit 1; fi

step "cargo doc -D warnings"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --all-features --no-deps

step "chatico-core for wasm32 (client features)"
cargo check -p chatico-core --target wasm32-unknown-unknown --no-default-features

step "chatico-wasm for wasm32 (clippy)"
cargo clippy -p chatico-wasm --target wasm32-unknown-unknown --all-targets -- -D warnings

step "chatico-core keeps I/O out"
if cargo tree -p chatico-core -e normal --prefix none | grep -E '^(sqlx|axum|hyper|reqwest|tokio) ' ; then
  echo "chatico-core depends on an I/O crate" >&2; exit 1
fi

step "tests"
cargo test --workspace --all-features

step "FFI bindings: generate Swift, Kotlin, Python; Python tests against chatico-server"
bash bindings/ffi/test-python.sh

step "FFI bindings: generated Kotlin compiled (kotlinc) and run on the JVM against chatico-server"
bash bindings/ffi/test-kotlin.sh

step "browser end-to-end: the web demo on the WASM SDK in headless Chromium"
bash scripts/e2e-web.sh

#!/usr/bin/env bash
# Generates the bindings (generate.sh), builds the example server, and runs the Python FFI
# tests against it. Prints "N passed, N failed" and fails when a test fails.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$root"
target_dir="${CARGO_TARGET_DIR:-$root/target}"
out="$target_dir/bindings"

bash bindings/ffi/generate.sh "$out"
cargo build -p chatico-server
python3 --version
CHATICO_PY_BINDINGS="$out/python" CHATICO_SERVER_BIN="$target_dir/debug/chatico-server" \
  python3 bindings/ffi/tests/test_ffi.py

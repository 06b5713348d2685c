#!/usr/bin/env bash
# README's main command: builds the browser demo (the WASM SDK package and the app) and runs
# the example server with it on http://127.0.0.1:8080. Arguments go to the server
# (`bash scripts/serve.sh --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chatico-target}"
bash scripts/build-web.sh
exec cargo run -p chatico-server -- --web-dir examples/web/dist "$@"

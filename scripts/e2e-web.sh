#!/usr/bin/env bash
# The browser end-to-end test: builds the web demo (WASM SDK + app) and the example server,
# then drives two users through the demo in Debian's Chromium, headless, with
# playwright-core (examples/web/e2e/). Installs Chromium with apt when it is missing.
# Screenshots: examples/web/test-results/ (or $CHATICO_E2E_OUT).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chatico-target}"
export CHROMIUM_PATH="${CHROMIUM_PATH:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM_PATH" ]; then
  echo "installing Debian's chromium"
  if [ "$(id -u)" = 0 ]; then sudo=""; else sudo="sudo"; fi
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi

bash scripts/build-web.sh
cargo build -p chatico-server
export CHATICO_SERVER_BIN="$CARGO_TARGET_DIR/debug/chatico-server"

cd examples/web
node --test --test-concurrency=1 e2e/

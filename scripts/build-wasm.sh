#!/usr/bin/env bash
# Builds the npm-ready browser package of the client SDK into bindings/wasm/pkg/
# (package.json, chatico_wasm_bg.wasm, the JS glue chatico_wasm.js and its .d.ts).
#
# Installs what it needs when missing: the wasm32-unknown-unknown target (rustup) and
# wasm-bindgen-cli at exactly the version of the wasm-bindgen crate in Cargo.lock
# (`cargo install --locked`, into $CHATICO_TOOLS, default ~/.cache/chatico-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chatico-target}"
tools="${CHATICO_TOOLS:-$HOME/.cache/chatico-tools}"
out="bindings/wasm/pkg"

rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$' \
  || rustup target add wasm32-unknown-unknown

version="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock)"
if [ -z "$version" ]; then
  echo "error: no wasm-bindgen in Cargo.lock" >&2; exit 1
fi
bindgen="$tools/bin/wasm-bindgen"
if [ ! -x "$bindgen" ] || [ "$("$bindgen" --version | awk '{print $2}')" != "$version" ]; then
  echo "installing wasm-bindgen-cli $version into $tools"
  cargo install wasm-bindgen-cli --version "$version" --locked --root "$tools" --force
fi

cargo build -p chatico-wasm --target wasm32-unknown-unknown --profile wasm-release
wasm="$CARGO_TARGET_DIR/wasm32-unknown-unknown/wasm-release/chatico_wasm.wasm"

rm -rf "$out"
"$bindgen" --target web --out-dir "$out" --out-name chatico_wasm "$wasm"

crate_version="$(awk -F'"' '/^version = / { print $2; exit }' Cargo.toml)"
cat > "$out/package.json" <<JSON
{
  "name": "chatico-wasm",
  "version": "$crate_version",
  "description": "ChatiCO chat client SDK for browsers (WebAssembly)",
  "license": "MIT OR Apache-2.0",
  "type": "module",
  "main": "chatico_wasm.js",
  "module": "chatico_wasm.js",
  "types": "chatico_wasm.d.ts",
  "files": ["chatico_wasm_bg.wasm", "chatico_wasm.js", "chatico_wasm.d.ts", "chatico_wasm_bg.wasm.d.ts"],
  "sideEffects": ["./snippets/*"]
}
JSON

raw=$(($(wc -c < "$out/chatico_wasm_bg.wasm") + $(wc -c < "$out/chatico_wasm.js")))
gz=$(($(gzip -9 -c "$out/chatico_wasm_bg.wasm" | wc -c) + $(gzip -9 -c "$out/chatico_wasm.js" | wc -c)))
echo "built $out (wasm-bindgen $version): .wasm + JS glue = $raw bytes, $gz bytes gzipped (-9)"

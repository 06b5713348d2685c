#!/usr/bin/env bash
# Builds the browser demo into examples/web/dist/ (served by the example server at /):
# the SDK's npm package first (scripts/build-wasm.sh), then the app's npm dependencies
# (`npm ci`, from package-lock.json), a type check (tsc) and the bundle (esbuild).
# Needs Node.js >= 18 with npm.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v npm >/dev/null || { echo "error: Node.js with npm is needed to build the web demo" >&2; exit 1; }

bash scripts/build-wasm.sh

cd examples/web
# Reinstall only when the lockfile changed since the last install.
if [ ! -f node_modules/.package-lock.json ] || ! cmp -s package-lock.json node_modules/.chatico-lock; then
  npm ci --no-audit --no-fund
  cp package-lock.json node_modules/.chatico-lock
fi
npx tsc --noEmit -p .
node build.mjs

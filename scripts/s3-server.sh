#!/usr/bin/env bash
# Starts the S3-compatible server the blob-store tests use, on loopback, if nothing listens
# on its port yet: moto's standalone server (PyPI package `moto[server]`, installed with pip
# when `moto_server` is missing). It keeps everything in memory; tests create their bucket.
# Port: CHATICO_S3_PORT (default 9000). Called by scripts/services.sh.
set -uo pipefail

port="${CHATICO_S3_PORT:-9000}"
reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if reachable "$port"; then
  exit 0
fi
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server] (S3-compatible test server) with pip"
  python3 -m pip install --quiet --disable-pip-version-check "moto[server]>=5,<6" || {
    echo "error: could not install moto[server]" >&2; exit 1; }
  hash -r
fi
echo "starting moto_server (S3) on 127.0.0.1:$port"
log="${TMPDIR:-/tmp}/chatico-moto-server.log"
setsid nohup moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 < /dev/null &
disown || true
for _ in $(seq 1 30); do
  reachable "$port" && exit 0
  sleep 1
done
echo "error: moto_server did not come up on 127.0.0.1:$port (log: $log)" >&2
tail -20 "$log" >&2 || true
exit 1

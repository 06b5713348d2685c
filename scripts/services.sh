#!/usr/bin/env bash
# Starts the loopback services ChatiCO's tests use (PostgreSQL and an S3-compatible server
# through scripts/s3-server.sh) if they are down, and fails loudly if one still cannot be
# reached. Redis and NATS are not started: no test uses them yet.
set -uo pipefail

reachable() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_for() { # name port
  for _ in $(seq 1 30); do reachable "$2" && return 0; sleep 1; done
  echo "error: $1 is not reachable on 127.0.0.1:$2" >&2
  return 1
}

if ! reachable 5432; then
  echo "starting PostgreSQL"
  pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start || true
fi
bash "$(dirname "$0")/s3-server.sh" || exit 1
wait_for PostgreSQL 5432 && wait_for S3 "${CHATICO_S3_PORT:-9000}" || exit 1
echo "services: PostgreSQL and S3 (moto) reachable on loopback"

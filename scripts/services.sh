#!/usr/bin/env bash
# Starts the loopback services ChatiCO's tests use (PostgreSQL, Redis, NATS, and an
# S3-compatible server through scripts/s3-server.sh) if they are down, and fails loudly if one
# still cannot be reached.
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
if ! reachable 6379; then
  echo "starting Redis"
  redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no \
    --dir /var/lib/redis --logfile /var/log/redis/ci.log || true
fi
if ! reachable 4222; then
  echo "starting NATS"
  start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log || true
fi
bash "$(dirname "$0")/s3-server.sh" || exit 1
wait_for PostgreSQL 5432 && wait_for Redis 6379 && wait_for NATS 4222 && wait_for S3 "${CHATICO_S3_PORT:-9000}" || exit 1
echo "services: PostgreSQL, Redis, NATS and S3 (moto) reachable on loopback"

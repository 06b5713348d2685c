#!/usr/bin/env bash
# Runs chatico-load scenarios against a freshly started chatico-bench-server (the real
# gateway, engine and store) and chatico-raw-server (the raw bound), on loopback only, and
# writes each report as JSON and a table into $OUT.
#
#   benches/run.sh [all|idle|fanout|persist|resync|typing|cluster]...
#
# `cluster` (not part of `all`) measures the scale-out of shared/SCALE-OUT.md with the same
# load tool on four configurations, all on PostgreSQL ($POSTGRES_URL): 1 node with the
# in-process backplane, 1 node on Redis, 3 nodes on Redis, 3 nodes on NATS (state on Redis);
# the Redis and NATS are this script's own processes on their own ports. Then
# chatico-cluster-bench measures the repair and recovery times (loss repair, resubscribe,
# a killed node's clients caught up and its users offline) on 3 nodes, per broker.
#   CLUSTER_SHAPES ["10:100 100:10"]  fanout group-size:groups pairs
#   CLUSTER_IDLE [5000]     idle connections on node 0 (memory per connection)
#   CLUSTER_LATENCY_LOAD [0.1]  the fanout latency phase's fraction of the max send rate
#   CLUSTER_PARTS ["fanout idle recovery"]  which parts of `cluster` to run
#
# Environment (defaults in brackets):
#   RUNS [5]               measured runs per scenario (idle: servers restarted per run)
#   IDLE_CONNECTIONS [10000]  connections of the idle scenario, per target (100000 needs
#                          a hard open-file limit above 100k for both processes: `ulimit -Hn`)
#   SOURCE_ADDRS [4]       client source addresses 127.0.0.1..N
#   STORE [memory]         the bench server's --store for idle, fanout, resync, typing
#   PERSIST_STORES [memory sqlite postgres]  stores of the persist scenario: `sqlite` is a
#                          fresh file $OUT/persist.db, `postgres` is $POSTGRES_URL in a fresh
#                          schema; any --store value (sqlite:PATH, postgres://URL) works too
#   POSTGRES_URL [postgres://postgres@127.0.0.1:5432/test]
#   PERSIST_PAIRS [50] PERSIST_WINDOW [16]  persist: sending connections, sends in flight each
#   MEASURE [5] WARMUP [2] seconds per measured phase
#   OUT [target/bench-results]
#   CARGO_TARGET_DIR       where the release binaries are built
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS="${RUNS:-5}"
IDLE_CONNECTIONS="${IDLE_CONNECTIONS:-10000}"
SOURCE_ADDRS="${SOURCE_ADDRS:-4}"
STORE="${STORE:-memory}"
PERSIST_STORES="${PERSIST_STORES:-memory sqlite postgres}"
POSTGRES_URL="${POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}"
PERSIST_PAIRS="${PERSIST_PAIRS:-50}"
PERSIST_WINDOW="${PERSIST_WINDOW:-16}"
MEASURE="${MEASURE:-5}"
WARMUP="${WARMUP:-2}"
OUT="${OUT:-target/bench-results}"
PORT=18080
RAW_PORT=19100
CLUSTER_SHAPES="${CLUSTER_SHAPES:-10:100 100:10}"
CLUSTER_IDLE="${CLUSTER_IDLE:-5000}"
CLUSTER_LATENCY_LOAD="${CLUSTER_LATENCY_LOAD:-0.1}"
CLUSTER_PARTS="${CLUSTER_PARTS:-fanout idle recovery}"
REDIS_PORT=16379
NATS_PORT=14222
mkdir -p "$OUT"

cargo build --release -p chatico-benches --bins >&2
BIN="${CARGO_TARGET_DIR:-target}/release"
LOAD=("$BIN/chatico-load" --url "http://127.0.0.1:$PORT" --raw-url "ws://127.0.0.1:$RAW_PORT"
  --source-addrs "$SOURCE_ADDRS")

SERVER_PID=""
RAW_PID=""
NODE_PIDS=()
BROKER_PIDS=()

wait_port() {
  for _ in $(seq 1 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

start_servers() { # $1: store
  : >"$OUT/otp.log"
  "$BIN/chatico-bench-server" --addr "127.0.0.1:$PORT" --store "$1" --otp-log "$OUT/otp.log" \
    2>>"$OUT/server.log" &
  SERVER_PID=$!
  "$BIN/chatico-raw-server" --addr "127.0.0.1:$RAW_PORT" 2>>"$OUT/raw-server.log" &
  RAW_PID=$!
  wait_port "$PORT"
  wait_port "$RAW_PORT"
}

stop_servers() {
  for p in $SERVER_PID $RAW_PID; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  SERVER_PID=""
  RAW_PID=""
}
stop_cluster() {
  for p in "${NODE_PIDS[@]}" "${BROKER_PIDS[@]}"; do
    kill "$p" 2>/dev/null || true
    wait "$p" 2>/dev/null || true
  done
  NODE_PIDS=()
  BROKER_PIDS=()
}
trap 'stop_servers; stop_cluster' EXIT

load() { # $1: report name, rest: chatico-load arguments
  local name="$1"
  shift
  echo "==> chatico-load $*" >&2
  "${LOAD[@]}" --otp-log "$OUT/otp.log" --server-pid "$SERVER_PID" --raw-pid "$RAW_PID" \
    --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

run_idle() { # each target on its own, so each can use the whole open-file limit
  local files_c=() files_r=()
  for i in $(seq 1 "$RUNS"); do
    start_servers "$STORE"
    load "idle-chatico-run$i" --runs 1 --target chatico idle --connections "$IDLE_CONNECTIONS" --hold 10
    load "idle-raw-run$i" --runs 1 --target raw idle --connections "$IDLE_CONNECTIONS" --hold 10
    files_c+=("$OUT/idle-chatico-run$i.json")
    files_r+=("$OUT/idle-raw-run$i.json")
    stop_servers
  done
  "$BIN/chatico-load" merge "${files_c[@]}" --json "$OUT/idle-chatico.json" | tee "$OUT/idle-chatico.txt"
  "$BIN/chatico-load" merge "${files_r[@]}" --json "$OUT/idle-raw.json" | tee "$OUT/idle-raw.txt"
}

run_fanout() {
  start_servers "$STORE"
  load fanout-10 --runs "$RUNS" fanout --group-size 10 --groups 100 --warmup "$WARMUP" --measure "$MEASURE"
  load fanout-100 --runs "$RUNS" fanout --group-size 100 --groups 10 --warmup "$WARMUP" --measure "$MEASURE"
  stop_servers
}

run_persist() {
  for s in $PERSIST_STORES; do
    local label="${s%%:*}"
    case "$s" in
      sqlite) rm -f "$OUT"/persist.db*; s="sqlite:$OUT/persist.db" ;;
      postgres) s="$POSTGRES_URL" ;;
    esac
    start_servers "$s"
    load "persist-$label" --runs "$RUNS" persist --store "$label" --pairs "$PERSIST_PAIRS" --window "$PERSIST_WINDOW" \
      --warmup "$WARMUP" --measure "$MEASURE"
    stop_servers
    if [ "$label" = postgres ] && command -v psql >/dev/null; then # drop the run's schema
      psql "$s" -Atc "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace
        WHERE nspname LIKE 'chatico\_bench\_server\_%'" | psql "$s" -q
    fi
  done
}

run_resync() {
  start_servers "$STORE"
  load resync --runs "$RUNS" resync --missed 100 --iterations 50
  stop_servers
}

run_typing() {
  start_servers "$STORE"
  load typing --runs "$RUNS" typing --pairs 20 --iterations 100
  stop_servers
}

start_brokers() { # $1: redis|nats
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
    >"$OUT/cluster-redis.log" 2>&1 &
  BROKER_PIDS+=($!)
  wait_port "$REDIS_PORT"
  if [ "$1" = nats ]; then
    nats-server -a 127.0.0.1 -p "$NATS_PORT" >"$OUT/cluster-nats.log" 2>&1 &
    BROKER_PIDS+=($!)
    wait_port "$NATS_PORT"
  fi
}

# $1: label, $2: nodes, $3: backplane (none|redis|nats). Node i listens on PORT+i.
start_cluster() {
  local label="$1" n="$2" bp="$3" schema i
  schema="chatico_bench_server_cluster_$(date +%s%N)"
  : >"$OUT/otp.log"
  local extra=()
  # One token secret for every node (a token from one is checked by the others).
  CHATICO_JWT_SECRET="$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n')"
  export CHATICO_JWT_SECRET
  case "$bp" in
    redis) start_brokers redis
      extra=(--backplane "redis://127.0.0.1:$REDIS_PORT") ;;
    nats) start_brokers nats
      extra=(--backplane "nats://127.0.0.1:$NATS_PORT" --redis-url "redis://127.0.0.1:$REDIS_PORT") ;;
  esac
  for i in $(seq 0 $((n - 1))); do
    "$BIN/chatico-bench-server" --addr "127.0.0.1:$((PORT + i))" --store "$POSTGRES_URL" \
      --schema "$schema" --otp-log "$OUT/otp.log" --node-id "n$i" "${extra[@]}" \
      2>>"$OUT/cluster-$label-node$i.log" &
    NODE_PIDS+=($!)
    wait_port $((PORT + i)) # one after the other: the first runs the migrations
  done
  NODE_URLS=()
  for i in $(seq 1 $((n - 1))); do NODE_URLS+=(--node-url "http://127.0.0.1:$((PORT + i))"); done
}

drop_bench_schemas() {
  command -v psql >/dev/null || return 0
  PGOPTIONS='--client-min-messages=warning' psql "$POSTGRES_URL" -Atc "SELECT 'DROP SCHEMA ' || nspname || ' CASCADE;' FROM pg_namespace
    WHERE nspname LIKE 'chatico\_bench\_server\_cluster\_%' OR nspname LIKE 'chatico\_bench\_cluster\_%'" \
    | PGOPTIONS='--client-min-messages=warning' psql "$POSTGRES_URL" -q
}

cluster_load() { # $1: report name, rest: chatico-load arguments (node 0 is the measured pid)
  local name="$1"
  shift
  echo "==> chatico-load $* (${NODE_URLS[*]})" >&2
  "$BIN/chatico-load" --url "http://127.0.0.1:$PORT" "${NODE_URLS[@]}" --source-addrs "$SOURCE_ADDRS" \
    --otp-log "$OUT/otp.log" --server-pid "${NODE_PIDS[0]}" --target chatico \
    --json "$OUT/$name.json" "$@" | tee "$OUT/$name.txt"
}

run_cluster() {
  local configs=("inproc:1:none" "redis1:1:redis" "redis3:3:redis" "nats3:3:nats")
  [[ " $CLUSTER_PARTS " == *" fanout "* ]] || configs=()
  for cfg in "${configs[@]}"; do
    IFS=: read -r label n bp <<<"$cfg"
    for shape in $CLUSTER_SHAPES; do
      IFS=: read -r gs groups <<<"$shape"
      start_cluster "$label" "$n" "$bp"
      cluster_load "cluster-$label-fanout-$gs" --runs "$RUNS" fanout --group-size "$gs" --groups "$groups" \
        --warmup "$WARMUP" --measure "$MEASURE" --latency-load "$CLUSTER_LATENCY_LOAD"
      stop_cluster
      drop_bench_schemas
    done
  done
  # Memory per idle connection on node 0: one node in-process against three on Redis, a fresh
  # cluster per run.
  local idle=("inproc:1:none" "redis3:3:redis")
  [[ " $CLUSTER_PARTS " == *" idle "* ]] || idle=()
  for cfg in "${idle[@]}"; do
    IFS=: read -r label n bp <<<"$cfg"
    local files=()
    for i in $(seq 1 "$RUNS"); do
      start_cluster "$label" "$n" "$bp"
      cluster_load "cluster-$label-idle-run$i" --runs 1 idle --connections "$CLUSTER_IDLE" --hold 10
      files+=("$OUT/cluster-$label-idle-run$i.json")
      stop_cluster
      drop_bench_schemas
    done
    "$BIN/chatico-load" merge "${files[@]}" --json "$OUT/cluster-$label-idle.json" | tee "$OUT/cluster-$label-idle.txt"
  done
  local brokers=(redis nats)
  [[ " $CLUSTER_PARTS " == *" recovery "* ]] || brokers=()
  for b in "${brokers[@]}"; do
    "$BIN/chatico-cluster-bench" --postgres "$POSTGRES_URL" --broker "$b" --runs "$RUNS" --out "$OUT" \
      --json "$OUT/cluster-recovery-$b.json" | tee "$OUT/cluster-recovery-$b.txt"
  done
  drop_bench_schemas
}

scenarios=("$@")
[ ${#scenarios[@]} -eq 0 ] && scenarios=(all)
for s in "${scenarios[@]}"; do
  case "$s" in
    all) run_idle; run_fanout; run_persist; run_resync; run_typing ;;
    idle) run_idle ;;
    fanout) run_fanout ;;
    persist) run_persist ;;
    resync) run_resync ;;
    typing) run_typing ;;
    cluster) run_cluster ;;
    *) echo "unknown scenario $s (all, idle, fanout, persist, resync, typing, cluster)" >&2; exit 2 ;;
  esac
done
echo "reports in $OUT" >&2

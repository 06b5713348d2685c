#!/usr/bin/env bash
# Runs chatico-load scenarios against a freshly started chatico-bench-server (the real
# gateway, engine and store) and chatico-raw-server (the raw bound), on loopback only, and
# writes each report as JSON and a table into $OUT.
#
#   benches/run.sh [all|idle|fanout|persist|resync|typing]...
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
mkdir -p "$OUT"

cargo build --release -p chatico-benches --bins >&2
BIN="${CARGO_TARGET_DIR:-target}/release"
LOAD=("$BIN/chatico-load" --url "http://127.0.0.1:$PORT" --raw-url "ws://127.0.0.1:$RAW_PORT"
  --source-addrs "$SOURCE_ADDRS")

SERVER_PID=""
RAW_PID=""

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
trap stop_servers EXIT

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
    *) echo "unknown scenario $s (all, idle, fanout, persist, resync, typing)" >&2; exit 2 ;;
  esac
done
echo "reports in $OUT" >&2

#!/usr/bin/env bash
# The store figures of BENCHMARKS.md: persisted sends/s (acknowledged after commit) for each
# backend with 1, 64 and 1024 concurrent senders, with group commit and with one commit per
# message (the baseline); then conversation-list and history-page latency on ~10k
# conversations / ~1M messages; then message-search latency on 10k conversations / 1M
# bulk-inserted messages of varied text (SEARCH_MESSAGES to change the size). Postgres: CHATICO_BENCH_POSTGRES_URL or the loopback test
# database. Output: one RESULT line per figure (medians of RUNS runs).
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/chatico-target}"
RUNS="${RUNS:-3}"
DIR="${BENCH_DIR:-$HOME/.cache}"
cargo build --release -q -p chatico-benches --bin store-bench
B="$CARGO_TARGET_DIR/release/store-bench"
echo "# $(date -u +%FT%TZ) $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

sends() { "$B" sends --runs "$RUNS" --dir "$DIR" "$@" | grep RESULT; }

for backend in sqlite postgres; do
  sends --backend "$backend" --senders 1 --messages 1000
  sends --backend "$backend" --senders 1 --messages 1000 --no-group-commit
  sends --backend "$backend" --senders 64 --messages 20000
  sends --backend "$backend" --senders 64 --messages 4000 --no-group-commit
  sends --backend "$backend" --senders 1024 --messages 50000
done
sends --backend sqlite --durability normal --senders 64 --messages 20000
sends --backend sqlite --durability normal --senders 1024 --messages 50000
echo "# load after sends: $(cut -d' ' -f1-3 /proc/loadavg)"

"$B" reads --backend sqlite --durability normal --dir "$DIR" | grep -E "seeded|RESULT"
"$B" reads --backend postgres | grep -E "seeded|RESULT"
SEARCH_MESSAGES="${SEARCH_MESSAGES:-1000000}"
"$B" search --backend sqlite --durability normal --dir "$DIR" --messages "$SEARCH_MESSAGES" | grep -E "seeded|RESULT"
"$B" search --backend postgres --messages "$SEARCH_MESSAGES" | grep -E "seeded|RESULT"
echo "# load at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

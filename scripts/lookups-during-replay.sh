#!/usr/bin/env bash
# Lookup latency while the main job runs: starts `ecomflow replay` on the
# default shop (in a temporary data dir), and 12 s in, once publishing,
# ingest and the aggregator are all busy, runs wrk from this second process
# for 30 s with scripts/lookups.lua. Prints wrk's latency distribution and
# the replay's wall time; the data dir is removed at the end.
#
# Usage: scripts/lookups-during-replay.sh [path/to/ecomflow] [RUNS]
# Needs wrk (Debian: apt install wrk). wrk and the replay share the cores,
# as a load generator on the same machine does.
set -euo pipefail
bin="${1:-target/release/ecomflow}"
runs="${2:-1}"
here="$(cd "$(dirname "$0")" && pwd)"
for i in $(seq 1 "$runs"); do
  work=$(mktemp -d -t ecomflow-lookups.XXXXXX)
  port=$((20000 + RANDOM % 20000))
  started=$(date +%s.%N)
  "$bin" replay --data-dir "$work/data" --http "127.0.0.1:$port" >"$work/replay.out" 2>&1 &
  replay=$!
  sleep 12
  echo "run $i:"
  wrk -t1 -c8 -d30s --latency -s "$here/lookups.lua" "http://127.0.0.1:$port" |
    grep -E 'Requests/sec|^ +(50|90|99)%|Latency  '
  wait "$replay"
  printf '  replay: %.1f s wall\n' "$(echo "$(date +%s.%N) - $started" | bc)"
  rm -rf "$work"
done

#!/usr/bin/env bash
# Runs two ecomflow binaries (e.g. main's and a branch's release builds) on
# the same shop, one after the other, and checks that their answers are the
# same: every Parquet file of the snapshot and the report, byte for byte,
# and the printed summary, but for its timings, rates and the API's port.
# Prints each run's wall time and peak RSS (/usr/bin/time -v).
#
# Usage: scripts/compare-replay.sh BEFORE_BIN AFTER_BIN [RUNS] [-- SHOP FLAGS]
# Default shop: 2,000 users, 1,000 products, 200,000 sessions, 50,000
# transactions over 90 days.
set -euo pipefail
before="$1"
after="$2"
runs="${3:-1}"
shift $(($# >= 3 ? 3 : 2))
[ "${1:-}" = "--" ] && shift
shop=("$@")
if [ ${#shop[@]} -eq 0 ]; then
  shop=(--users 2000 --products 1000 --sessions 200000 --transactions 50000)
fi
work=$(mktemp -d -t ecomflow-compare.XXXXXX)
trap 'rm -rf "$work"' EXIT

run() { # name bin run
  local dir="$work/$1-$3"
  /usr/bin/time -v "$2" replay --data-dir "$dir" --http 127.0.0.1:0 "${shop[@]}" \
    >"$dir.out" 2>"$dir.err" || { tail -20 "$dir.err"; return 1; }
  local wall rss
  wall=$(sed -n 's/.*Elapsed (wall clock) time (h:mm:ss or m:ss): //p' "$dir.err")
  rss=$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$dir.err")
  printf '%-7s run %d: wall %s, peak RSS %d MB\n' "$1" "$3" "$wall" $((rss / 1024))
}

digest() { # dir: sha256 of every Parquet file and the report, by path
  (cd "$1" && find snapshot report -type f \( -name '*.parquet' -o -name '*.md' -o -name '*.svg' \) \
    -print0 | sort -z | xargs -0 sha256sum)
}

summary() { # the printed summary without what differs run to run
  grep -v -E 'Lookup API on|Steps:|Freshness, from publish|^Stages|^  (stage|publish|ingest|aggregator) |final batch' "$1" |
    sed -E 's/ in [0-9.]+ s, [0-9]+ events\/s\)/)/; s/(before|after)-1/RUN/g; s/[0-9]+ day partitions written \([0-9]+ rows\)/N day partitions written (nightly timing)/'
}

for i in $(seq 1 "$runs"); do
  run before "$before" "$i"
  run after "$after" "$i"
done
if diff <(digest "$work/before-1") <(digest "$work/after-1") >"$work/diff"; then
  echo "same answers: $(digest "$work/after-1" | wc -l) Parquet, report and chart files identical"
else
  echo "DIFFERENT answers:"
  cat "$work/diff"
  exit 1
fi
if diff <(summary "$work/before-1.out") <(summary "$work/after-1.out"); then
  echo "same summary: $(summary "$work/after-1.out" | wc -l) lines identical (timings aside)"
else
  echo "DIFFERENT summaries (above)"
  exit 1
fi

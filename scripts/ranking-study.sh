#!/usr/bin/env bash
# Which ranking of "bought together" predicts held-out baskets best:
# `ecomflow evaluate` (train on days 1-80, test on 81-90, hit rate @10 and
# planted complements in the top 10) for every ranking, over three seeds
# and two shop sizes. Prints one markdown table; takes about a minute.
#
#   scripts/ranking-study.sh [path/to/ecomflow]
set -euo pipefail
bin=${1:-target/release/ecomflow}
sizes=(
  "small:--users 2000 --products 1000 --sessions 200000 --transactions 50000"
  "default:"
)
echo "| shop | seed | ranking | hit rate @10 | planted in top 10 |"
echo "|---|---|---|---|---|"
for size in "${sizes[@]}"; do
  name=${size%%:*}
  flags=${size#*:}
  for seed in 42 7 1234; do
    # shellcheck disable=SC2086
    "$bin" evaluate --seed "$seed" $flags 2>/dev/null |
      awk -v shop="$name" -v seed="$seed" '
        /^ranking/ { on = 1; next }
        on && NF == 3 { printf "| %s | %s | %s | %s | %s |\n", shop, seed, $1, $2, $3 }'
  done
done

#!/usr/bin/env bash
# The project's test command (README.md; CI's .ci/run calls exactly this).
#
# Checks formatting and lints, runs every test in the workspace, validates
# docker-compose.yml and runs the end-to-end tests (tests/e2e.py). When
# ECOMFLOW_KAFKA_BROKERS is unset and the `tansu` broker is installed, it
# starts one on 127.0.0.1 for the Kafka tests and stops it afterwards;
# without a broker those tests print "skipped: no Kafka" and pass. The
# end-to-end test starts its own brokers, and a Prometheus when Debian's
# `prometheus` is installed (otherwise it says "skipped: no Prometheus").
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# The Arroyo UDF plugin is a workspace of its own (arrow 51 needs an older
# chrono than DataFusion); it shares the target directory.
target_dir="${CARGO_TARGET_DIR:-target}"
udf=(--manifest-path crates/aggregator-udf/Cargo.toml --target-dir "$target_dir")

echo "== cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path crates/aggregator-udf/Cargo.toml -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo clippy "${udf[@]}" --all-targets --locked -- -D warnings
# Each Arroyo export is a feature of its own (one UDF per plugin).
for feature in $(sed -n 's/^\(udf-[a-z-]*\) = \[\]$/\1/p' crates/aggregator-udf/Cargo.toml); do
  cargo clippy "${udf[@]}" --locked --features "$feature" -- -D warnings
done

if [ -z "${ECOMFLOW_KAFKA_BROKERS:-}" ]; then
  if command -v tansu >/dev/null 2>&1; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    state=$(mktemp -d -t ecomflow-tansu.XXXXXX)
    eval "$(scripts/kafka-broker.sh "$port" "$state")"
    trap 'kill "${TANSU_PID:-}" "${SECANTUS_PID:-}" 2>/dev/null || true' EXIT
    export ECOMFLOW_KAFKA_BROKERS
    echo "== Kafka tests against tansu at $ECOMFLOW_KAFKA_BROKERS (log: $state/tansu.log)"
  else
    echo "== NOTE: no Kafka broker: Kafka tests will say 'skipped: no Kafka'."
    echo "   Install one with: cargo install tansu --version 0.6.0 --locked --no-default-features --features libsql"
  fi
fi

if [ -z "${ECOMFLOW_MONGODB_URI:-}" ]; then
  if command -v secantusd-py >/dev/null 2>&1; then
    mport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    mlog=$(mktemp -t ecomflow-secantus.XXXXXX.log)
    secantusd-py --host 127.0.0.1 --port "$mport" --storage-path :memory: >"$mlog" 2>&1 &
    SECANTUS_PID=$!
    trap 'kill "${TANSU_PID:-}" "${SECANTUS_PID:-}" 2>/dev/null || true' EXIT
    for _ in $(seq 1 100); do
      (echo >"/dev/tcp/127.0.0.1/${mport}") 2>/dev/null && break
      sleep 0.1
    done
    export ECOMFLOW_MONGODB_URI="mongodb://127.0.0.1:${mport}"
    echo "== MongoDB tests against secantusdb at $ECOMFLOW_MONGODB_URI (log: $mlog)"
  else
    echo "== NOTE: no MongoDB: MongoDB tests will say 'skipped: no MongoDB' (pip install secantusdb to run them)."
  fi
fi

echo "== cargo test"
# --nocapture so that tests which skip (no broker) say so on the terminal.
cargo test --workspace --locked -- --nocapture
echo "== cargo test (Arroyo UDF plugin)"
cargo test "${udf[@]}" --locked -- --nocapture
# One plugin links as Arroyo loads it (a cdylib exporting one UDF).
cargo build "${udf[@]}" --locked --features udf-pair-llr

# Built by `cargo test` above (the ecomflow crate's integration tests need it).
bin="$target_dir/debug/ecomflow"
echo "== docker-compose.yml: Compose schema, flags, Prometheus targets, Grafana provisioning"
python3 tests/check_compose.py "$bin"
echo "== end-to-end: one-command replay + Prometheus + dashboards, SIGKILL restart, Kafka, compose services"
python3 tests/e2e.py "$bin"

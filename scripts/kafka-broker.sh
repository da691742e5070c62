#!/usr/bin/env bash
# Starts a Kafka-protocol broker (tansu, sqlite storage) on 127.0.0.1 for
# tests and local runs, waits until it accepts connections, and prints
#   ECOMFLOW_KAFKA_BROKERS=127.0.0.1:PORT
#   TANSU_PID=PID
# on stdout. Usage: scripts/kafka-broker.sh [PORT] [STATE_DIR] [ADVERTISED_PORT]
# ADVERTISED_PORT (default PORT) is the port the broker tells clients to
# use: a TLS terminator's, when one stands in front of it.
# Stop it with: kill $TANSU_PID
set -euo pipefail
port="${1:-19092}"
state="${2:-$(mktemp -d -t ecomflow-tansu.XXXXXX)}"
advertised="${3:-$port}"
if ! command -v tansu >/dev/null 2>&1; then
  echo "tansu is not installed: cargo install tansu --version 0.6.0 --locked --no-default-features --features libsql" >&2
  exit 1
fi
mkdir -p "$state"
# tansu reads the sqlite URL's path as relative: run it inside its state dir.
(cd "$state" && exec tansu broker \
  --listener-url "tcp://127.0.0.1:${port}" \
  --advertised-listener-url "tcp://127.0.0.1:${advertised}" \
  --storage-engine "sqlite://tansu.db" \
  >tansu.log 2>&1) &
pid=$!
for _ in $(seq 1 100); do
  if (echo >"/dev/tcp/127.0.0.1/${port}") 2>/dev/null; then
    echo "ECOMFLOW_KAFKA_BROKERS=127.0.0.1:${port}"
    echo "TANSU_PID=${pid}"
    exit 0
  fi
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "tansu exited; its log:" >&2
    cat "${state}/tansu.log" >&2
    exit 1
  fi
  sleep 0.1
done
echo "tansu did not listen on 127.0.0.1:${port} within 10 s; its log is ${state}/tansu.log" >&2
kill "$pid" 2>/dev/null || true
exit 1

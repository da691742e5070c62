#!/usr/bin/env bash
# The project's test command (README.md; CI's .ci/run calls exactly this).
#
# Checks formatting and lints, runs every test in the workspace, validates
# docker-compose.yml, runs the end-to-end tests (tests/e2e.py) and the fault
# script (scripts/faults.py, which prints a table of what it broke), and the
# Spark check (tests/spark.py: the batch's SQL on PySpark, when installed). When
# ECOMFLOW_KAFKA_BROKERS is unset and the `tansu` broker is installed, it
# starts one on 127.0.0.1 for the Kafka tests and stops it afterwards;
# without a broker those tests print "skipped: no Kafka" and pass. The
# end-to-end test starts its own brokers, and a Prometheus when Debian's
# `prometheus` is installed (otherwise it says "skipped: no Prometheus").
#
# Each phase prints how long it took, and a table of all of them at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"

# --- phase timing -----------------------------------------------------------
phase_names=()
phase_secs=()
phase_name=""
phase_started=$SECONDS
script_started=$SECONDS
end_phase() {
  if [ -n "$phase_name" ]; then
    phase_names+=("$phase_name")
    phase_secs+=($((SECONDS - phase_started)))
    echo "   ($phase_name: $((SECONDS - phase_started)) s)"
  fi
  phase_name=""
}
phase() {
  end_phase
  phase_name="$1"
  phase_started=$SECONDS
  echo "== $1"
}
report_phases() {
  local status=$?
  end_phase
  echo "== time per phase (exit status $status)"
  local i
  for i in "${!phase_names[@]}"; do
    printf '   %5d s  %s\n' "${phase_secs[$i]}" "${phase_names[$i]}"
  done
  printf '   %5d s  total\n' $((SECONDS - script_started))
}
cleanup_pids=()
on_exit() {
  report_phases
  local pid
  for pid in "${cleanup_pids[@]}"; do
    kill "$pid" 2>/dev/null || true
  done
}
trap on_exit EXIT

# The Arroyo UDF plugin is a workspace of its own (arrow 51 needs an older
# chrono than DataFusion); it shares the target directory.
target_dir="${CARGO_TARGET_DIR:-target}"
udf=(--manifest-path aggregator-udf/Cargo.toml --target-dir "$target_dir")

# Clippy is the compiler of our own crates for the whole run: clippy-driver
# as RUSTC_WORKSPACE_WRAPPER with CLIPPY_ARGS is exactly what `cargo clippy`
# sets up, but here it wraps the test build rather than a separate `cargo
# check`, so every dependency (DataFusion, arrow, ...) is compiled once
# instead of twice. Every target `clippy --all-targets` lints (libraries,
# binaries, unit and integration tests, examples; there are no benches) is
# a target `cargo test` builds, and -D warnings makes any lint fail the
# build. Cargo keys its fingerprints on the wrapper and the arguments, so a
# build made without them is never taken for a linted one.
phase "toolchain"
sysroot=$(rustc --print sysroot)
clippy_driver="$sysroot/bin/clippy-driver"
if [ ! -x "$clippy_driver" ]; then
  echo "no clippy-driver in $sysroot/bin: rustup component add clippy" >&2
  exit 1
fi
export RUSTC_WORKSPACE_WRAPPER="$clippy_driver"
export CLIPPY_ARGS="-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__"
"$clippy_driver" --version

phase "docs: README at most 400 lines, no history, links resolve"
python3 scripts/check-docs.py

phase "cargo fmt --check"
cargo fmt --all -- --check
cargo fmt --manifest-path aggregator-udf/Cargo.toml -- --check

phase "test servers: Kafka (tansu), MongoDB (secantusdb)"
if [ -z "${ECOMFLOW_KAFKA_BROKERS:-}" ]; then
  if command -v tansu >/dev/null 2>&1; then
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    state=$(mktemp -d -t ecomflow-tansu.XXXXXX)
    eval "$(scripts/kafka-broker.sh "$port" "$state")"
    cleanup_pids+=("$TANSU_PID")
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
    cleanup_pids+=("$!")
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

# The default build (what `cargo build --release` gives: embedded engines
# only, no Kafka, MongoDB or HBase client) is linted too, and its refusal
# of server flags tested; the dependencies are shared with the build below,
# so this recompiles only our own crates.
phase "dependency features: default build = all-features build"
python3 scripts/check-features.py
phase "build + clippy -D warnings: default features (embedded only)"
cargo test --workspace --locked --no-run
phase "cargo test: default features refuse server flags"
cargo test -p ecomflow --bin ecomflow --locked features:: -- --nocapture

# Everything else runs with every backend built in (`--all-features`, as
# the Dockerfile builds with `--features distributed`).
phase "build + clippy -D warnings: workspace, all targets, all features"
cargo test --workspace --all-features --locked --no-run
phase "cargo test (workspace, all features)"
# --nocapture so that tests which skip (no broker) say so on the terminal.
cargo test --workspace --all-features --locked -- --nocapture

phase "build + clippy -D warnings: Arroyo UDF plugin, all targets"
cargo test "${udf[@]}" --locked --no-run
phase "cargo test (Arroyo UDF plugin)"
cargo test "${udf[@]}" --locked -- --nocapture
# Each Arroyo export is a feature of its own (one UDF per plugin): each is
# linted and linked as the cdylib Arroyo loads (dependencies already built).
phase "build + clippy -D warnings: each Arroyo UDF export as a plugin"
for feature in $(sed -n 's/^\(udf-[a-z-]*\) = \[\]$/\1/p' aggregator-udf/Cargo.toml); do
  cargo build "${udf[@]}" --locked --lib --features "$feature"
done

# Built by `cargo test` above (the ecomflow crate's integration tests need it).
bin="$target_dir/debug/ecomflow"
phase "alert rules: promtool check rules, promtool test rules"
promtool check rules prometheus/alerts.yml
promtool check config prometheus/prometheus.yml
promtool test rules prometheus/alerts_test.yml
phase "docker-compose.yml: Compose schema, flags, Prometheus targets, Grafana provisioning"
python3 tests/check_compose.py "$bin"
phase "end-to-end: one-command replay + Prometheus + dashboards, SIGKILL restart, Kafka, compose services"
python3 tests/e2e.py "$bin"
phase "faults: kills, power losses, lost and old checkpoints, tampered snapshot, SQL writes, symlink, bad flags, flood, broken dataset"
python3 scripts/faults.py "$bin"
phase "Spark: the batch's SQL files on PySpark give DataFusion's findings"
python3 tests/spark.py "$bin"
end_phase

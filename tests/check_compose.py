#!/usr/bin/env python3
"""Validates docker-compose.yml without a Docker engine.

1. The file, after Compose's variable interpolation and YAML merges, is
   valid against the Compose Specification's JSON schema
   (tests/fixtures/compose_spec.json, from the docker-compose 1.29.2 wheel).
2. Every service it depends on exists and has a health check; every
   ecomflow service runs a real subcommand, and each ECOMFLOW_* variable in
   its environment is one that subcommand reads (asked of the binary's own
   --help, so a renamed flag fails here).
3. Prometheus scrapes every ecomflow service on the port it serves metrics
   on, and Grafana's provisioning points at the files that exist.
4. The Dockerfile's Rust image is at least the highest `rust-version` in the
   resolved dependency graph (`cargo metadata --locked`), and Cargo.toml's
   `rust-version` is that minimum.
5. Each named volume is mounted where its image writes its data (Kafka's
   KAFKA_LOG_DIRS, MongoDB's dbpath, HBase's root dir, ECOMFLOW_DATA_DIR).
6. Every ecomflow service's command and environment, exactly as compose
   passes them (unset variables as compose interpolates them, and each
   `${VAR...}` set to the empty string), is accepted by the binary
   (`--check-config`).
7. The runtime image runs as a non-root user, and a .dockerignore keeps the
   build context small.

Usage: tests/check_compose.py path/to/ecomflow-binary
"""
import json
import os
import re
import subprocess
import sys

import jsonschema
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
failures = []


def fail(msg):
    failures.append(msg)
    print(f"FAIL: {msg}")


def interpolate(value, env):
    """Compose's ${VAR}, ${VAR-default} and ${VAR:-default}."""
    if isinstance(value, dict):
        return {k: interpolate(v, env) for k, v in value.items()}
    if isinstance(value, list):
        return [interpolate(v, env) for v in value]
    if not isinstance(value, str):
        return value

    def sub(m):
        name, op, default = m.group(1), m.group(2), m.group(3) or ""
        if op == ":-":
            return env.get(name) or default
        if op == "-":
            return env.get(name, default)
        return env.get(name, "")

    return re.sub(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?-)([^}]*))?\}", sub, value)


def load_compose(env=None):
    """docker-compose.yml as Compose sees it: merged and interpolated."""
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        raw = yaml.safe_load(f)
    return interpolate(raw, env if env is not None else {})


def ecomflow_services(compose):
    """Services built from this repository's Dockerfile."""
    return {
        name: svc
        for name, svc in compose["services"].items()
        if "build" in svc
    }


def dashboard_targets():
    """(file, panel, target) for every query of every Grafana dashboard."""
    dash_dir = os.path.join(ROOT, "grafana", "dashboards")
    for fname in sorted(os.listdir(dash_dir)):
        with open(os.path.join(dash_dir, fname)) as f:
            dash = json.load(f)
        for panel in dash["panels"]:
            for target in panel.get("targets", []):
                yield fname, panel, target


def help_of(binary, command):
    return subprocess.run(
        [binary, command, "--help"], capture_output=True, text=True, check=True
    ).stdout


def version_tuple(v):
    return tuple(int(x) for x in re.findall(r"\d+", v)[:3])


def check_rust_version():
    """The Rust image against the dependency graph's highest rust-version."""
    meta = json.loads(
        subprocess.run(
            ["cargo", "metadata", "--format-version", "1", "--locked", "--all-features"],
            cwd=ROOT, capture_output=True, text=True, check=True,
        ).stdout
    )
    resolved = {n["id"] for n in meta["resolve"]["nodes"]}
    ours = set(meta["workspace_members"])
    needed = max(
        (version_tuple(p["rust_version"]), p["name"])
        for p in meta["packages"]
        if p.get("rust_version") and p["id"] in resolved and p["id"] not in ours
    )
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        m = re.search(r"^FROM rust:(\d+\.\d+(?:\.\d+)?)", f.read(), re.M)
    if not m:
        fail("Dockerfile: no `FROM rust:X.Y` build stage")
    elif version_tuple(m.group(1)) < needed[0]:
        fail(f"Dockerfile builds on rust:{m.group(1)}, but {needed[1]} needs Rust {'.'.join(map(str, needed[0]))}")
    else:
        print(f"ok: rust:{m.group(1)} >= {'.'.join(map(str, needed[0]))} (highest rust-version, {needed[1]})")
    # The build stage copies every workspace member: a crate left out
    # makes `docker compose up --build` fail at the build step.
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        copied = set(re.findall(r"^COPY (\S+) \./\1\s*$", f.read(), re.M))
    member_dirs = {
        os.path.relpath(os.path.dirname(p["manifest_path"]), ROOT)
        for p in meta["packages"] if p["id"] in ours
    }
    missing = sorted(member_dirs - copied)
    if missing:
        fail(f"Dockerfile: the build stage does not copy the workspace members {missing}")
    else:
        print(f"ok: the Dockerfile copies every workspace member ({len(member_dirs)})")
    with open(os.path.join(ROOT, "Cargo.toml")) as f:
        declared = re.search(r'^rust-version = "([^"]+)"', f.read(), re.M)
    if not declared or version_tuple(declared.group(1)) != needed[0][: len(version_tuple(declared.group(1)))]:
        fail(f"Cargo.toml rust-version {declared and declared.group(1)} is not the real minimum {'.'.join(map(str, needed[0]))}")


# Where each image keeps its data: (image prefix, environment variable that
# moves it, default).
DATA_DIRS = [
    ("apache/kafka", "KAFKA_LOG_DIRS", "/tmp/kraft-combined-logs"),
    ("mongo", None, "/data/db"),
    ("harisekhon/hbase", None, "/hbase-data"),
]


def check_volumes(compose):
    """Each named volume is mounted at the directory its image writes to."""
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        m = re.search(r"^ENV ECOMFLOW_DATA_DIR=(\S+)", f.read(), re.M)
    ecomflow_dir = m.group(1) if m else None
    named = set((compose.get("volumes") or {}).keys())
    for name, svc in compose["services"].items():
        env = svc.get("environment", {}) or {}
        if "build" in svc:
            want = env.get("ECOMFLOW_DATA_DIR", ecomflow_dir)
        else:
            want = None
            for prefix, var, default in DATA_DIRS:
                if svc.get("image", "").startswith(prefix + ":"):
                    want = env.get(var, default) if var else default
        mounts = [v.split(":") for v in svc.get("volumes", []) if isinstance(v, str)]
        data_mounts = [(src, dst) for src, dst, *_ in mounts if src in named]
        if want is None:
            continue
        if not data_mounts:
            fail(f"{name}: its data ({want}) is in no named volume")
        elif not any(want == dst or want.startswith(dst.rstrip("/") + "/") for _, dst in data_mounts):
            fail(f"{name}: writes to {want}, but its volume is mounted at {[d for _, d in data_mounts]}")
    print("ok: every service's data directory is in its named volume")


def compose_variables():
    with open(os.path.join(ROOT, "docker-compose.yml")) as f:
        return sorted(set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", f.read())))


def check_environment(binary):
    """Each ecomflow service's command, with its environment as compose
    passes it, is accepted by the binary."""
    variants = [("unset", {})] + [(f"{v}=''", {v: ""}) for v in compose_variables()]
    for label, env in variants:
        compose = load_compose(env)
        for name, svc in ecomflow_services(compose).items():
            service_env = {k: str(v) for k, v in (svc.get("environment") or {}).items()}
            run_env = {"PATH": os.environ.get("PATH", ""), "ECOMFLOW_DATA_DIR": "/data"}
            run_env.update(service_env)
            cmd = [binary] + list(svc.get("command") or []) + ["--check-config"]
            r = subprocess.run(cmd, env=run_env, capture_output=True, text=True)
            if r.returncode != 0:
                fail(f"{name} with {label}: `{' '.join(cmd[1:])}` refused its environment: {r.stderr.strip()}")
    print(f"ok: every ecomflow service accepts its environment ({len(variants)} variants)")


def check_image():
    with open(os.path.join(ROOT, "Dockerfile")) as f:
        text = f.read()
    stages = text.split("\nFROM ")
    if not re.search(r"^USER (?!root\b|0\b)\S+", stages[-1], re.M):
        fail("Dockerfile: the runtime stage runs as root (no USER)")
    build_stages = "\nFROM ".join(stages[:-1])
    if "--profile profiling" in build_stages:
        fail("Dockerfile: the image is built with debug info")
    # The services talk to Kafka, MongoDB and HBase: the default build has
    # none of those clients.
    build = re.search(r"cargo build[^\n]*(?:\\\n[^\n]*)*", build_stages)
    if not build or "--features distributed" not in build.group(0):
        fail("Dockerfile: `cargo build` without `--features distributed` (the services need the Kafka, MongoDB and HBase clients)")
    path = os.path.join(ROOT, ".dockerignore")
    if not os.path.exists(path):
        fail("no .dockerignore: the build context holds target/ and .git")
    else:
        with open(path) as f:
            ignored = {line.strip() for line in f}
        for must in ("target", ".git"):
            if must not in ignored:
                fail(f".dockerignore does not leave out {must}")
    print("ok: the image is built with every backend, runs as a non-root user; .dockerignore leaves out target/ and .git")


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        sys.exit(2)
    binary = sys.argv[1]
    compose = load_compose()
    with open(os.path.join(ROOT, "tests", "fixtures", "compose_spec.json")) as f:
        schema = json.load(f)
    validator = jsonschema.Draft201909Validator(schema)
    errors = sorted(validator.iter_errors(compose), key=lambda e: list(e.path))
    for e in errors:
        fail(f"schema: {'/'.join(map(str, e.path))}: {e.message}")
    if not errors:
        print("ok: docker-compose.yml is valid against the Compose schema")

    services = compose["services"]
    for name, svc in services.items():
        deps = svc.get("depends_on", {})
        for dep, cond in (deps.items() if isinstance(deps, dict) else []):
            if dep not in services:
                fail(f"{name} depends on unknown service {dep}")
            elif cond.get("condition") == "service_healthy" and "healthcheck" not in services[dep]:
                fail(f"{name} waits for {dep} to be healthy, but {dep} has no healthcheck")

    ours = ecomflow_services(compose)
    expected = {"producer", "ingest-1", "ingest-2", "aggregator", "batch"}
    if set(ours) != expected:
        fail(f"ecomflow services are {sorted(ours)}, expected {sorted(expected)}")
    for name, svc in ours.items():
        command = svc.get("command") or []
        if not command:
            fail(f"{name}: no command")
            continue
        try:
            help_text = help_of(binary, command[0])
        except subprocess.CalledProcessError as e:
            fail(f"{name}: `ecomflow {command[0]} --help` failed: {e.stderr}")
            continue
        accepted = set(re.findall(r"\[env: (ECOMFLOW_[A-Z_]+)", help_text)) | {"ECOMFLOW_LOG"}
        for key in svc.get("environment", {}):
            if key.startswith("ECOMFLOW_") and key not in accepted:
                fail(f"{name}: ecomflow {command[0]} does not read {key}")
        for flag in command[1:]:
            if flag.startswith("--") and flag not in help_text:
                fail(f"{name}: ecomflow {command[0]} has no flag {flag}")
    ingest_envs = [ours[n].get("environment") for n in ("ingest-1", "ingest-2") if n in ours]
    if len(ingest_envs) == 2 and ingest_envs[0] != ingest_envs[1]:
        fail("ingest-1 and ingest-2 must run with the same environment (one consumer group)")
    for n in ("ingest-1", "ingest-2"):
        if n in ours and ours[n].get("restart") != "on-failure":
            fail(f"{n}: `restart: on-failure` starts it again after a crash")
    groups = {e.get("ECOMFLOW_INGEST_GROUP") for e in ingest_envs}
    if len(groups) != 1:
        fail(f"ingest services are in different consumer groups: {groups}")

    # Prometheus scrapes each ecomflow service where it serves /metrics.
    with open(os.path.join(ROOT, "prometheus", "prometheus.yml")) as f:
        prom = yaml.safe_load(f)
    targets = {
        t
        for job in prom["scrape_configs"]
        for sc in job.get("static_configs", [])
        for t in sc["targets"]
    }
    for name, svc in ours.items():
        env = svc.get("environment", {})
        addr = env.get("ECOMFLOW_METRICS") or env.get("ECOMFLOW_HTTP")
        if not addr:
            fail(f"{name} serves no metrics (ECOMFLOW_METRICS or ECOMFLOW_HTTP)")
            continue
        port = addr.rsplit(":", 1)[1]
        if f"{name}:{port}" not in targets:
            fail(f"prometheus.yml does not scrape {name}:{port}")
    for t in targets:
        if t.split(":")[0] not in services:
            fail(f"prometheus.yml scrapes {t}, which is no service")

    # Grafana: the mounted directories exist, dashboards use provisioned uids.
    graf = services.get("grafana", {})
    for vol in graf.get("volumes", []):
        src = vol.split(":")[0]
        if not os.path.exists(os.path.join(ROOT, src)):
            fail(f"grafana mounts {src}, which does not exist")
    with open(os.path.join(ROOT, "grafana", "provisioning", "datasources", "datasources.yml")) as f:
        uids = {d["uid"] for d in yaml.safe_load(f)["datasources"]}
    for fname, panel, t in dashboard_targets():
        uid = t.get("datasource", panel.get("datasource", {})).get("uid")
        if uid not in uids:
            fail(f"{fname}: panel {panel['title']!r} uses datasource {uid!r}, not provisioned")

    check_rust_version()
    check_volumes(compose)
    check_environment(binary)
    check_image()

    if failures:
        print(f"{len(failures)} problem(s) in docker-compose.yml and its files")
        sys.exit(1)
    print("ok: docker-compose.yml, prometheus.yml and Grafana provisioning agree with the binary")


if __name__ == "__main__":
    main()

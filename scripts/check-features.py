#!/usr/bin/env python3
"""The default build and the all-features build give every dependency the
same features.

The server clients (`--features distributed`) switch on features of
dependencies that the default build shares (tokio, serde_json, ...). When
they differ, every crate above them (DataFusion, arrow, axum) is compiled
once per build, and the test script's two builds take twice as long.
ecomflow/Cargo.toml pins them; this fails, naming each crate, when a
dependency update makes them drift apart.

Usage: scripts/check-features.py
"""
import subprocess
import sys
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def features(extra):
    out = subprocess.run(
        ["cargo", "tree", "--workspace", "--locked", "-e", "normal,build",
         "--prefix", "none", "-f", "{p}|{f}"] + extra,
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout
    seen = {}
    for line in out.splitlines():
        line = line.removesuffix(" (*)").strip()
        if "|" not in line or "(/" in line.split("|")[0]:
            continue  # our own crates: their features are meant to differ
        package, feats = line.split("|", 1)
        seen.setdefault(package, set()).add(feats)
    return seen


def main():
    default = features([])
    every = features(["--all-features"])
    drift = [
        f"{p}: default build {sorted(default[p])}, all features {sorted(every[p])}"
        for p in sorted(default)
        if p in every and default[p] != every[p]
    ]
    for d in drift:
        print(f"features differ: {d}")
    if drift:
        print(f"{len(drift)} dependencies are built with other features under --all-features: "
              "pin them in ecomflow/Cargo.toml so both builds share them")
        sys.exit(1)
    print(f"ok: the {len(default)} dependencies of the default build have the same features with --all-features")


if __name__ == "__main__":
    main()

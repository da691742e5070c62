#!/usr/bin/env python3
"""Fault injection on a small shop, through the binary: kills, power losses,
lost and old checkpoints, a tampered snapshot, write attempts through the
query tool, a planted symlink, bad flags, a flood of connections and a
broken dataset. Each fault is tried (several times where it has a random
point) and must end in one of two outcomes:

- "identical state": the final snapshot (every Parquet file), the report
  (Markdown and charts) and the live window equal an untouched run's, byte
  for byte;
- "clear error": a non-zero exit with a message that says what to do, and
  nothing changed.

Anything else (a silent difference, a panic, a hang, a 5xx) is a failure.
It prints a table (fault, tries, outcome) and exits non-zero on a failure.

Usage: scripts/faults.py path/to/ecomflow [--seed N] [--tries N]
"""
import argparse
import hashlib
import os
import random
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

SHOP = [
    "--users", "150", "--products", "120", "--categories", "8",
    "--sessions", "12000", "--transactions", "3000", "--days", "12",
]
RUN = SHOP + ["--publish-chunk", "300", "--ingest-chunk", "300", "--http", "127.0.0.1:0"]
BIN = None
rows = []  # (fault, tries, outcome, ok)


def env():
    e = {k: v for k, v in os.environ.items() if not k.startswith("ECOMFLOW_")}
    e["ECOMFLOW_LOG"] = "warn"
    return e


def ecomflow(*args, timeout=300, **kw):
    return subprocess.run([BIN, *args], env=env(), capture_output=True,
                          text=True, errors="replace", timeout=timeout, **kw)


def replay(data, *extra):
    return ecomflow("replay", "--data-dir", data, *RUN, *extra)


def digest(data):
    """SHA-256 of every snapshot Parquet file and report file, by path."""
    out = {}
    for sub, exts in (("snapshot", (".parquet",)), ("report", (".md", ".svg"))):
        base = os.path.join(data, sub)
        for root, _, files in os.walk(base):
            for f in files:
                if f.endswith(exts):
                    p = os.path.join(root, f)
                    with open(p, "rb") as fh:
                        out[os.path.relpath(p, data)] = hashlib.sha256(fh.read()).hexdigest()
    return out


def window(stdout):
    """The live window of the summary: '... pairs in the window.'"""
    m = re.search(r"^Aggregator: .*?; (.*pairs in the window\.)$", stdout, re.M)
    return m.group(1) if m else None


def newest_journal(db):
    js = [f for f in os.listdir(db) if re.fullmatch(r"\d+\.jnl", f)]
    return os.path.join(db, max(js, key=lambda f: int(f[:-4])))


def differs(label, data, ref, out=None):
    """[] when the state under `data` equals the reference, else [why]."""
    got = digest(data)
    if got != ref["digest"]:
        diff = sorted(set(got.items()) ^ set(ref["digest"].items()))
        return [f"{label}: {len(diff)} file(s) differ, e.g. {diff[:2]}"]
    if out is not None and window(out) != ref["window"]:
        return [f"{label}: window {window(out)!r} != {ref['window']!r}"]
    return []


def record(fault, tries, outcome, problems):
    ok = not problems
    rows.append((fault, tries, outcome if ok else "FAILED: " + "; ".join(problems)[:300], ok))
    print(("ok: " if ok else "FAIL: ") + fault + (f" ({problems})" if problems else ""), flush=True)


def finished(p, label):
    if p.returncode != 0:
        return [f"{label}: exit {p.returncode}: {p.stderr.strip()[-400:]}"]
    return []


def clear_error(p, says, label):
    problems = []
    if p.returncode in (0, 101) or p.returncode < 0:
        problems.append(f"{label}: exit {p.returncode}")
    if "panicked" in p.stderr:
        problems.append(f"{label}: panicked")
    if says and says not in p.stderr:
        problems.append(f"{label}: stderr lacks {says!r}: {p.stderr.strip()[-300:]}")
    return problems


# --- faults -------------------------------------------------------------------

def kill(p, i, data, problems):
    """SIGKILLs replay `p` (try `i`, data dir `data`). A try counts only if
    the kill found the replay still running: one that had already ended (a
    fast machine) would test nothing, so its data dir is removed and False
    returned. What went wrong is added to `problems`."""
    if p.poll() is not None:
        problems.append(f"try {i}: the replay had already ended (exit {p.returncode}) "
                        "before the kill: nothing was tested")
        shutil.rmtree(data, ignore_errors=True)
        return False
    p.send_signal(signal.SIGKILL)
    p.wait()
    if p.returncode != -signal.SIGKILL:
        problems.append(f"try {i}: ended with {p.returncode}, not by the SIGKILL")
    return True


def sigkill(work, ref, rng, tries):
    """SIGKILL at a random moment of a paced replay, then run it again."""
    problems = []
    for i in range(tries):
        data = os.path.join(work, f"kill{i}")
        p = subprocess.Popen([BIN, "replay", "--data-dir", data, *RUN, "--speed", "3d/s"],
                             env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.3, 3.5))
        if not kill(p, i, data, problems):
            continue
        r = replay(data)
        problems += finished(r, f"try {i}") or differs(f"try {i}", data, ref, r.stdout)
        shutil.rmtree(data, ignore_errors=True)
    record("SIGKILL mid-replay, then replay again", tries, "identical state", problems)


# A shop whose ingest chunks (the default 32,000 records, no pacing) are large
# enough for the embedded stores to write their sessions straight into tables
# (fjall's ingestion, `stores::put_rows`) rather than through the journal.
FULL_CHUNKS = [
    "--users", "400", "--products", "200", "--categories", "8",
    "--sessions", "60000", "--transactions", "15000", "--days", "12",
    "--http", "127.0.0.1:0",
]
STRAIGHT_INTO_A_TABLE = "Rows written straight into a table."


def sigkill_full_chunks(work, rng, tries):
    """SIGKILL while ingest writes full chunks straight into tables, then run
    it again: the same state as a run left alone."""
    ref_dir = os.path.join(work, "full-chunks-reference")
    e = dict(env(), ECOMFLOW_LOG="warn,stores=debug")
    started = time.time()
    r = subprocess.run([BIN, "replay", "--data-dir", ref_dir, *FULL_CHUNKS], env=e,
                       capture_output=True, text=True, errors="replace", timeout=600)
    took = time.time() - started
    if r.returncode != 0:
        sys.exit(f"the untouched full-chunk run failed: {r.stderr[-400:]}")
    if STRAIGHT_INTO_A_TABLE not in r.stderr:
        sys.exit("the untouched full-chunk run wrote no chunk straight into a table: "
                 "the shop is too small to test that path")
    ref = {"dir": ref_dir, "digest": digest(ref_dir), "window": window(r.stdout)}
    problems = []
    for i in range(tries):
        data = os.path.join(work, f"full-chunks-kill{i}")
        p = subprocess.Popen([BIN, "replay", "--data-dir", data, *FULL_CHUNKS], env=e,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                             errors="replace")
        # Kill once the first chunk went straight into a table, a random
        # moment later (within the rest of the untouched run's length).
        for line in p.stderr:
            if STRAIGHT_INTO_A_TABLE in line:
                break
        threading.Thread(target=p.stderr.read, daemon=True).start()
        time.sleep(rng.uniform(0.0, took / 2))
        if not kill(p, i, data, problems):
            continue
        r = subprocess.run([BIN, "replay", "--data-dir", data, *FULL_CHUNKS], env=env(),
                           capture_output=True, text=True, errors="replace", timeout=600)
        problems += finished(r, f"try {i}") or differs(f"try {i}", data, ref, r.stdout)
        shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(ref_dir, ignore_errors=True)
    record("SIGKILL while full chunks go straight into tables, then replay again", tries,
           "identical state", problems)


def lose_power_at_the_end(data):
    """A complete replay that the machine loses while its stores are still
    open (SIGKILL once it serves, `--keep-serving`): a store that closes
    writes its memtables to tables, and a journal cut after that loses
    nothing."""
    p = subprocess.Popen([BIN, "replay", "--data-dir", data, *RUN, "--keep-serving"],
                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         text=True)
    serving = any(line.startswith("Serving lookups on") for line in p.stdout)
    alive = p.poll() is None
    p.send_signal(signal.SIGKILL)
    p.wait()
    if not alive:
        sys.exit("the replay for the power-loss faults ended by itself: the SIGKILL found nothing to kill")
    if not serving:
        sys.exit("the replay for the power-loss faults ended before serving")


def power_loss(work, ref, rng, tries):
    """Each store's and the log's newest journal loses a random tail, and
    each of the log's partition files gets a torn tail of frames written
    but never committed (what a machine crash leaves of unsynced writes),
    then replay again."""
    problems = []
    crashed = os.path.join(work, "power-base")
    lose_power_at_the_end(crashed)
    for i in range(tries):
        data = os.path.join(work, f"power{i}")
        shutil.copytree(crashed, data)
        for db in ("log", "docs", "wide"):
            j = newest_journal(os.path.join(data, db))
            size = os.path.getsize(j)
            os.truncate(j, int(size * rng.uniform(0.02, 0.98)))
        parts = os.path.join(data, "log", "partitions")
        torn = 0
        for root, _, files in os.walk(parts):
            for name in files:
                with open(os.path.join(root, name), "ab") as f:
                    f.write(rng.randbytes(rng.randrange(1, 5000)))
                torn += 1
        if torn == 0:
            sys.exit(f"no log partition files under {parts}")
        r = replay(data)
        problems += finished(r, f"try {i}") or differs(f"try {i}", data, ref, r.stdout)
        shutil.rmtree(data, ignore_errors=True)
    shutil.rmtree(crashed, ignore_errors=True)
    record("power loss: journals cut, log partitions with torn tails",
           tries, "identical state", problems)


def old_checkpoint(work, ref, rng, tries):
    """The aggregator checkpoint goes back to an older one (a rename a
    machine crash lost) while the group's commit stays: replay again."""
    problems = []
    for i in range(tries):
        data = os.path.join(work, f"oldckpt{i}")
        p = subprocess.Popen([BIN, "replay", "--data-dir", data, *RUN, "--speed", "3d/s",
                              "--checkpoint-every", "1"],
                             env=env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        ckpt = os.path.join(data, "aggregator", "checkpoint.bin")
        deadline = time.time() + 30
        while not os.path.exists(ckpt) and time.time() < deadline:
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        saved = open(ckpt, "rb").read() if os.path.exists(ckpt) else None
        p.wait()
        if saved is None:
            problems.append(f"try {i}: no checkpoint was written")
            continue
        with open(ckpt, "wb") as f:
            f.write(saved)
        r = replay(data)
        problems += finished(r, f"try {i}") or differs(f"try {i}", data, ref, r.stdout)
        shutil.rmtree(data, ignore_errors=True)
    record("aggregator checkpoint older than the group's commit", tries, "identical state", problems)


def lost_checkpoint(work, ref):
    data = os.path.join(work, "lostckpt")
    shutil.copytree(ref["dir"], data)
    os.remove(os.path.join(data, "aggregator", "checkpoint.bin"))
    before = digest(data)
    problems = clear_error(replay(data), "--rebuild-aggregator", "without the checkpoint")
    if digest(data) != before:
        problems.append("the failed run changed the state")
    r = replay(data, "--rebuild-aggregator")
    problems += finished(r, "rebuild") or differs("rebuild", data, ref, r.stdout)
    record("aggregator checkpoint deleted", 1,
           "clear error, then --rebuild-aggregator: identical state", problems)
    shutil.rmtree(data, ignore_errors=True)


def log_byte_flipped(work, ref, rng, tries, *extra):
    """One byte of a stored record in the embedded log changed (not its
    length: a bit rot the file system did not notice), then the log is
    read again from the start (`--rebuild-aggregator`): the checksum names
    the record, and nothing of the snapshot or report changes. Frames and
    the blocks of a compressed log both start with the length of what
    follows them, so one walk finds either. Returns the problems."""
    import struct
    problems = []
    for i in range(tries):
        data = os.path.join(work, f"logflip{i}")
        shutil.copytree(ref["dir"], data)
        parts = os.path.join(data, "log", "partitions", "sessions")
        path = os.path.join(parts, rng.choice(sorted(os.listdir(parts))))
        b = bytearray(open(path, "rb").read())
        frames, pos = [], 0
        while pos + 4 <= len(b):
            (n,) = struct.unpack_from("<I", b, pos)
            frames.append((pos + 4, n))
            pos += 4 + n
        start, n = rng.choice(frames)
        b[start + rng.randrange(n)] ^= 1 << rng.randrange(8)
        open(path, "wb").write(bytes(b))
        r = replay(data, "--rebuild-aggregator", *extra)
        problems += clear_error(r, "fails its checksum", f"try {i}: a byte of {path}")
        if digest(data) != ref["digest"]:
            problems.append(f"try {i}: the failed run changed the snapshot or report")
        shutil.rmtree(data, ignore_errors=True)
    return problems


def compressed(work, ref, rng, tries):
    """The shop replayed with `--compress` (the log in zstd blocks, the
    stores lz4'd): its snapshot, report and window equal the uncompressed
    reference's. Then, on copies, each partition file gets a torn tail
    past its committed end and the replay runs again (identical state),
    and a flipped byte in a block is an error naming the checksum."""
    problems = []
    data = os.path.join(work, "compressed")
    r = replay(data, "--compress")
    problems += finished(r, "compressed run") or differs("compressed run", data, ref, r.stdout)
    log = os.path.join(data, "log", "partitions", "sessions", "0.log")
    head = open(log, "rb").read(24) if os.path.exists(log) else b""
    if len(head) < 24 or int.from_bytes(head[8:16], "little") != 0:
        problems.append(f"{log} does not start with a block of the log's first records")
    for i in range(tries):
        copy = os.path.join(work, f"compressed-torn{i}")
        shutil.copytree(data, copy)
        for root, _, files in os.walk(os.path.join(copy, "log", "partitions")):
            for name in files:
                with open(os.path.join(root, name), "ab") as f:
                    f.write(rng.randbytes(rng.randrange(1, 5000)))
        r = replay(copy, "--compress")
        problems += finished(r, f"torn try {i}") or differs(f"torn try {i}", copy, ref, r.stdout)
        shutil.rmtree(copy, ignore_errors=True)
    problems += log_byte_flipped(work, dict(ref, dir=data), rng, tries, "--compress")
    shutil.rmtree(data, ignore_errors=True)
    record("--compress: same state; torn block tails cut off; a flipped bit in a block",
           tries, "identical state; clear error", problems)


def snapshot_tampered(work, ref, rng, tries):
    """A day's Parquet file deleted or emptied, then the batch runs."""
    problems, outcomes = [], set()
    for i in range(tries):
        data = os.path.join(work, f"snap{i}")
        shutil.copytree(ref["dir"], data)
        days = sorted(p for p in ref["digest"] if p.startswith("snapshot/") and "date=" in p)
        victim = os.path.join(data, rng.choice(days))
        if i % 2 == 0:
            os.remove(victim)
            how = "deleted"
        else:
            open(victim, "wb").close()
            how = "emptied"
        r = ecomflow("batch", "--data-dir", data)
        if r.returncode == 0:
            outcomes.add("rewritten: identical state")
            problems += differs(f"{how} {victim}", data, ref)
        else:
            outcomes.add("clear error")
            problems += clear_error(r, "snapshot", f"{how} {victim}")
        shutil.rmtree(data, ignore_errors=True)
    record("snapshot Parquet file deleted or emptied, then batch", tries,
           " / ".join(sorted(outcomes)), problems)


def disk_full(work, ref):
    """The data dir's disk fills up (a 12 MiB filesystem, mounted here):
    the replay stops within a minute with an error that says the disk is
    full, then, with space freed, the same command resumes to the
    reference state."""
    mnt = os.path.join(work, "small-disk")
    os.makedirs(mnt)
    root = [] if os.geteuid() == 0 else ["sudo", "-n"]
    m = subprocess.run(root + ["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", mnt],
                       capture_output=True, text=True)
    if m.returncode != 0:
        if os.environ.get("CI") == "true":
            record("disk full mid-replay", 1, "", [f"cannot mount a small filesystem (needs root or sudo -n): {m.stderr.strip()}"])
        else:
            print(f"skipped: disk full (cannot mount a small filesystem: {m.stderr.strip()})", flush=True)
        return
    problems = []
    try:
        data = os.path.join(mnt, "d")
        started = time.time()
        try:
            r = replay(data)
            took = time.time() - started
            problems += clear_error(r, "is full: free space there", "disk full")
            if took > 90:
                problems.append(f"disk full: the replay took {took:.0f} s to stop")
        except subprocess.TimeoutExpired:
            problems.append("disk full: the replay hung (killed after 300 s)")
            took = 0
        subprocess.run(root + ["mount", "-o", "remount,size=1g", mnt], check=True)
        r = replay(data)
        problems += finished(r, "after freeing space") or differs("after freeing space", data, ref, r.stdout)
    finally:
        subprocess.run(root + ["umount", "-l", mnt], capture_output=True)
    record("disk full mid-replay, then space freed and replay again", 1,
           f"clear error in {took:.0f} s, then identical state", problems)


def sql_on_a_changed_snapshot(work, ref, rng):
    """`ecomflow sql` on a snapshot changed since the batch wrote it (a byte
    of a day's file, a byte of the users' file, same sizes) or left
    unfinished by a batch that stopped midway: it refuses, naming what is
    wrong, rather than answer from it."""
    import json
    problems = []
    days = sorted(p for p in ref["digest"] if p.startswith("snapshot/") and "date=" in p)
    cases = [("a byte of " + (day := rng.choice(days)), day, "does not match its manifest"),
             ("a byte of snapshot/users/part-0.parquet", "snapshot/users/part-0.parquet",
              "checksum differs"),
             ("a batch that stopped midway", None, "partial")]
    for label, victim, says in cases:
        data = os.path.join(work, "sqlsnap")
        shutil.copytree(ref["dir"], data)
        if victim:
            path = os.path.join(data, victim)
            b = bytearray(open(path, "rb").read())
            b[8] ^= 0xFF  # inside the first data page: size and footer unchanged
            open(path, "wb").write(bytes(b))
        else:
            manifest = os.path.join(data, "snapshot", "_snapshot.json")
            m = json.load(open(manifest))
            m["partial"] = True
            json.dump(m, open(manifest, "w"))
        problems += clear_error(ecomflow("sql", "--data-dir", data, "SELECT COUNT(*) FROM users"),
                                says, label)
        shutil.rmtree(data, ignore_errors=True)
    record("`ecomflow sql` on a changed or unfinished snapshot", len(cases),
           "clear error naming the file or the unfinished run", problems)


def sql_writes(work, ref):
    data = os.path.join(work, "sql")
    shutil.copytree(ref["dir"], data)
    target = os.path.join(work, "escaped.csv")
    problems = []
    for q in ["INSERT INTO transactions SELECT * FROM transactions LIMIT 1",
              f"COPY (SELECT 1) TO '{target}'",
              "CREATE TABLE x AS SELECT 1",
              "DROP TABLE transactions"]:
        problems += clear_error(ecomflow("sql", "--data-dir", data, q), "", q)
    if os.path.exists(target):
        problems.append("COPY wrote outside the snapshot")
    problems += differs("after the writes", data, ref)
    record("writes through `ecomflow sql` (INSERT, COPY TO, CREATE, DROP)", 4,
           "clear error, nothing changed", problems)
    shutil.rmtree(data, ignore_errors=True)


def planted_symlink(work, ref):
    data = os.path.join(work, "symlink")
    shutil.copytree(ref["dir"], data)
    victim = os.path.join(work, "victim.txt")
    with open(victim, "w") as f:
        f.write("keep me")
    svg = os.path.join(data, "report", "segments.svg")
    os.remove(svg)
    os.symlink(victim, svg)
    r = ecomflow("batch", "--data-dir", data)
    problems = finished(r, "batch")
    if open(victim).read() != "keep me":
        problems.append("the batch wrote through the symlink")
    if os.path.islink(svg):
        problems.append("the symlink is still there")
    problems += differs("after the batch", data, ref)
    record("symlink planted at report/segments.svg", 1,
           "replaced, its target untouched; identical state", problems)
    shutil.rmtree(data, ignore_errors=True)


# (arguments, what the message names); `--data-dir` is added where taken.
BAD_FLAGS = [
    (["replay", "--speed", "1é/s"], "--speed"),
    (["replay", "--speed=-3d/s"], "--speed"),
    (["batch", "--holdout-days", "1000000000"], "--holdout-days"),
    (["generate", "--start-date=+262142-12-01"], "--start-date"),
    (["generate", "--users", "0"], "--users"),
    (["replay", "--dataset", "/nonexistent/dataset"], "/nonexistent/dataset"),
    (["replay", "--users", "5", "--dataset", "/tmp"], "--dataset"),
    (["serve", "--ranking", "best"], "--ranking"),
    (["sql", "SELECT * FROM nowhere"], "no snapshot"),
]


def bad_flags(work):
    problems = []
    for args, says in BAD_FLAGS:
        if args[0] != "generate":
            args = args + ["--data-dir", os.path.join(work, "flags")]
        else:
            args = args + ["--out", os.path.join(work, "flags-out")]
        r = ecomflow(*args, timeout=60)
        problems += clear_error(r, says, " ".join(args))
    record("bad flags and arguments", len(BAD_FLAGS), "clear error naming the flag (exit 1 or 2, no panic)",
           problems)


def flood(work, ref):
    """1,100 idle connections (the cap is 1,024), half-sent and malformed
    requests, then a lookup: answered, no 5xx, JSON errors."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 8192), hard))
    data = os.path.join(work, "flood")
    shutil.copytree(ref["dir"], data)
    p = subprocess.Popen([BIN, "serve", "--data-dir", data, "--http", "127.0.0.1:0"],
                         env=env(), stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    problems = []
    try:
        line = p.stdout.readline()
        m = re.search(r"http://([\d.]+:\d+)", line)
        if not m:
            raise RuntimeError(f"no address in {line!r}")
        host, port = m.group(1).split(":")
        addr = (host, int(port))
        idle = []
        for _ in range(1100):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(addr)
                idle.append(s)
            except OSError:
                s.close()
                break
        # HTTP requests the API refuses (a JSON error body each).
        bad = [b"GET /v1/products/prod_" + b"0" * 10_000 + b"/bought-together HTTP/1.1\r\nHost: x\r\n\r\n",
               b"GET /v1/products/%FF%FE/bought-together HTTP/1.1\r\nHost: x\r\n\r\n",
               b"DELETE /v1/products/prod_00001/bought-together HTTP/1.1\r\nHost: x\r\n\r\n",
               b"GET / HTTP/1.1\r\n" + b"X-Long: " + b"a" * 100_000 + b"\r\n\r\n",
               b"GET /v1/products/prod_00001/bought-together?k=-1 HTTP/1.1\r\nHost: x\r\n\r\n",
               b"GET /v1/users/user_000001/engagement?nope=1 HTTP/1.1\r\nHost: x\r\n\r\n"]
        # Not HTTP at all: the protocol layer (hyper) answers 400 with no
        # body and closes; the README says so.
        not_http = [b"GET /v1/products/\xff\xfe/bought-together HTTP/1.1\r\nHost: x\r\n\r\n",
                    b"\x00\x01\x02 garbage\r\n\r\n"]
        # Half a request, then the client's end closed: closed, no answer.
        half = [b"GET /v1/products/prod_00001/bought-tog"]
        held = time.time()
        for req in bad + not_http + half:
            s = socket.create_connection(addr, timeout=30)
            try:
                s.sendall(req)
                if not req.endswith(b"\r\n\r\n"):
                    s.shutdown(socket.SHUT_WR)
                resp = s.recv(65536)
            except OSError:
                resp = b""
            finally:
                s.close()
            status = resp.split(b" ", 2)[1] if resp.startswith(b"HTTP/1.1 ") else b""
            if status.startswith(b"5"):
                problems.append(f"5xx for {req[:40]!r}")
            if req in half and resp:
                problems.append(f"an answer to half a request: {resp[:60]!r}")
            if req in not_http and status != b"400":
                problems.append(f"{status!r} for a request that is not HTTP: {req[:40]!r}")
            if req in bad and not (status.startswith(b"4") and b"application/json" in resp.lower()):
                problems.append(f"non-JSON error for {req[:40]!r}: {resp[:120]!r}")
        try:
            with urllib.request.urlopen(
                    f"http://{host}:{port}/v1/products/prod_00005/bought-together", timeout=40) as r:
                if r.status != 200:
                    problems.append(f"lookup under load: {r.status}")
        except (urllib.error.URLError, OSError) as e:
            problems.append(f"lookup under load failed: {e}")
        waited = time.time() - held
        for s in idle:
            s.close()
        p.send_signal(signal.SIGINT)
        if p.wait(timeout=60) != 0:
            problems.append(f"serve exited {p.returncode} after Ctrl-C")
        outcome = (f"{len(idle)} idle held; bad requests and a lookup answered within {waited:.1f} s; "
                   f"{len(bad)} bad requests: 4xx with JSON, {len(not_http)} non-HTTP: 400, "
                   f"{len(half)} half-sent: closed; no 5xx")
    except Exception as e:  # noqa: BLE001 - reported as the fault's outcome
        problems.append(repr(e))
        outcome = ""
        p.kill()
    record("connection flood and malformed requests against `serve`", 1, outcome, problems)
    shutil.rmtree(data, ignore_errors=True)


def broken_dataset(work):
    src = os.path.join(work, "export")
    os.makedirs(src)
    good = ('{"transaction_id":"txn_%012d","session_id":"sess_1","user_id":"user_%06d",'
            '"timestamp":"2025-01-01T1%d:00:00","items":[{"product_id":"prod_00001",'
            '"quantity":2,"unit_price":10.0,"subtotal":20.0}],"discount":0.0,"total":20.0,'
            '"payment_method":"paypal"}')
    lines = [(good % (i, i, i % 10)).encode() for i in range(1, 21)]
    lines += [lines[0][:50], b"\xff\xfe{", b"[" * 100_000, b"{}", lines[3].replace(b"2025", b"2999"),
              lines[4].replace(b'"quantity":2', b'"quantity":NaN'),
              b"{" + b" " * (2 << 20) + b"}"]
    with open(os.path.join(src, "transactions.jsonl"), "wb") as f:
        f.write(b"\n".join(lines) + b"\n\n")
    data = os.path.join(work, "dataset")
    r = ecomflow("replay", "--data-dir", data, "--dataset", src, "--http", "127.0.0.1:0",
                 "--no-batch")
    problems = finished(r, "replay --dataset")
    m = re.search(r"Ingested by this run: (\d+) records: .*?(\d+) transactions .*?; (\d+) dead letters",
                  r.stdout)
    if not m:
        problems.append(f"no ingest summary: {r.stdout[-400:]}")
    else:
        records, stored, dead = map(int, m.groups())
        if (records, stored, dead) != (len(lines), 20, len(lines) - 20):
            problems.append(f"records {records}, stored {stored}, dead {dead}; "
                            f"want {len(lines)}, 20, {len(lines) - 20}")
    record("broken export through `replay --dataset` (cut, non-UTF-8, nested, empty, future, "
           "NaN, 2 MiB)", len(lines) - 20, "each line stored or dead-lettered with its reason",
           problems)
    shutil.rmtree(data, ignore_errors=True)


def main():
    global BIN
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("binary")
    ap.add_argument("--seed", type=int, default=20261126)
    ap.add_argument("--tries", type=int, default=3)
    ap.add_argument("--only", action="append", metavar="KIND",
                    help="run only this kind (repeatable), e.g. --only disk_full")
    args = ap.parse_args()
    BIN = os.path.abspath(args.binary)
    rng = random.Random(args.seed)
    work = tempfile.mkdtemp(prefix="ecomflow-faults-")
    started = time.time()
    try:
        ref_dir = os.path.join(work, "reference")
        r = replay(ref_dir)
        if r.returncode != 0:
            sys.exit(f"the untouched run failed: {r.stderr}")
        ref = {"dir": ref_dir, "digest": digest(ref_dir), "window": window(r.stdout)}
        if len(ref["digest"]) < 20 or not ref["window"]:
            sys.exit(f"the untouched run left too little to compare: {ref}")
        print(f"reference: {len(ref['digest'])} files, {ref['window']}", flush=True)
        kinds = {
            "sigkill": lambda: sigkill(work, ref, rng, args.tries),
            "sigkill_full_chunks": lambda: sigkill_full_chunks(work, rng, args.tries),
            "power_loss": lambda: power_loss(work, ref, rng, args.tries),
            "old_checkpoint": lambda: old_checkpoint(work, ref, rng, args.tries),
            "lost_checkpoint": lambda: lost_checkpoint(work, ref),
            "log_byte_flipped": lambda: record(
                "a flipped bit in a stored log record, then the log read again", args.tries,
                "clear error naming the record", log_byte_flipped(work, ref, rng, args.tries)),
            "compressed": lambda: compressed(work, ref, rng, args.tries),
            "snapshot_tampered": lambda: snapshot_tampered(work, ref, rng, 2 * args.tries),
            "disk_full": lambda: disk_full(work, ref),
            "sql_on_a_changed_snapshot": lambda: sql_on_a_changed_snapshot(work, ref, rng),
            "sql_writes": lambda: sql_writes(work, ref),
            "planted_symlink": lambda: planted_symlink(work, ref),
            "bad_flags": lambda: bad_flags(work),
            "flood": lambda: flood(work, ref),
            "broken_dataset": lambda: broken_dataset(work),
        }
        unknown = set(args.only or []) - set(kinds)
        if unknown:
            sys.exit(f"--only: no fault kind {sorted(unknown)}; the kinds are {', '.join(kinds)}")
        for name, run in kinds.items():
            if not args.only or name in args.only:
                run()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    w = max(len(f) for f, *_ in rows)
    print(f"\n{'fault':<{w}}  tries  outcome")
    for fault, tries, outcome, _ in rows:
        print(f"{fault:<{w}}  {tries:>5}  {outcome}")
    failed = sum(1 for *_, ok in rows if not ok)
    print(f"\nfaults: {len(rows)} kinds, {failed} failed, seed {args.seed}, "
          f"{time.time() - started:.0f} s")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Ingest alone, sampled every second: runs `BIN ingest` on DATA_DIR's log
into new stores (DATA_DIR/docs and DATA_DIR/wide are deleted first!) with a
new consumer group, reads `ecomflow_ingest_events_consumed_total` from its
metrics every second, and prints the events of each second, then the run's
own summary (events/s, first and last tenth, peak RSS).

Usage: scripts/ingest-rates.py BIN DATA_DIR
(DATA_DIR holds a log, e.g. from `BIN replay --publish-only --data-dir DATA_DIR`.)
"""
import random
import re
import shutil
import subprocess
import sys
import time
import urllib.request

if len(sys.argv) != 3:
    sys.exit(__doc__)
binary, data = sys.argv[1], sys.argv[2]
for store in ("docs", "wide"):
    shutil.rmtree(f"{data}/{store}", ignore_errors=True)
group = "rates-%d" % random.randrange(10**9)
metrics = "127.0.0.1:9977"
run = subprocess.Popen(
    [binary, "ingest", "--data-dir", data, "--ingest-group", group,
     "--until-idle", "1", "--metrics", metrics],
    stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
last, rates = 0.0, []
while run.poll() is None:
    time.sleep(1)
    try:
        page = urllib.request.urlopen(f"http://{metrics}/metrics", timeout=1).read().decode()
    except OSError:
        continue
    total = sum(float(v) for v in re.findall(
        r"^ecomflow_ingest_events_consumed_total(?:\{[^}]*\})? (\S+)", page, re.M))
    rates.append(int(total - last))
    last = total
out = run.stdout.read()
print("events per second:", " ".join(f"{r // 1000}k" for r in rates))
print("\n".join(out.strip().splitlines()[-2:]))
sys.exit(run.returncode)

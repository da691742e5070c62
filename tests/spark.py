#!/usr/bin/env python3
"""The batch's SQL files on Spark give DataFusion's findings, figure by figure.

Replays a small shop with the binary (which writes the snapshot and
report/findings.json), runs scripts/spark_batch.py on the same snapshot with
the same parameters, and compares the two with scripts/compare_findings.py.
The thresholds are lowered (--min-views 10, other segment shares) so that
every table has rows and the parameters are passed through, not defaulted.

Needs PySpark and Java (CI installs PySpark from PyPI; Java 17 is present).
Without them it prints "skipped: no PySpark" and passes.

Usage: tests/spark.py path/to/ecomflow
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHOP = [
    "--users", "600", "--products", "300", "--categories", "10",
    "--sessions", "40000", "--transactions", "10000", "--days", "30",
]
PARAMS = {"--min-views": "10", "--vip-share": "0.05", "--high-share": "0.15", "--medium-share": "0.4"}


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = sys.argv[1]
    if importlib.util.find_spec("pyspark") is None or shutil.which("java") is None:
        if os.environ.get("CI") == "true":
            sys.exit("spark: FAIL: CI=true but no PySpark (pip install pyspark) or no java")
        print("spark: skipped: no PySpark (pip install pyspark) or no java")
        return
    with tempfile.TemporaryDirectory(prefix="ecomflow-spark.") as tmp:
        data = os.path.join(tmp, "data")
        flags = [x for kv in PARAMS.items() for x in kv]
        # The embedded engines: the test script's ECOMFLOW_KAFKA_BROKERS and
        # ECOMFLOW_MONGODB_URI are for the tests that want those servers.
        env = {k: v for k, v in os.environ.items() if not k.startswith("ECOMFLOW_")}
        env["ECOMFLOW_LOG"] = "warn"
        subprocess.run(
            [binary, "replay", "--data-dir", data, "--http", "127.0.0.1:0", *SHOP, *flags],
            check=True,
            stdout=subprocess.DEVNULL,
            env=env,
        )
        ours = os.path.join(data, "report", "findings.json")
        with open(ours) as f:
            findings = json.load(f)
        for table in ("top_converting", "conversion_gaps", "niche", "cleaning_reasons"):
            assert findings[table]["rows"], f"{table} has no rows: the test would compare nothing"
        spark = os.path.join(tmp, "spark.json")
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "spark_batch.py"),
             os.path.join(data, "snapshot"), spark, *flags],
            check=True,
        )
        subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "compare_findings.py"), ours, spark],
            check=True,
        )
        # The comparison must be able to fail: one customer moved from VIP
        # to High in Spark's figures is a difference.
        with open(spark) as f:
            moved = json.load(f)
        moved["segments"][0]["customers"] -= 1
        moved["segments"][1]["customers"] += 1
        changed = os.path.join(tmp, "changed.json")
        with open(changed, "w") as f:
            json.dump(moved, f)
        out = subprocess.run(
            [sys.executable, os.path.join(ROOT, "scripts", "compare_findings.py"), ours, changed],
            capture_output=True,
            text=True,
        )
        assert out.returncode == 1 and "2 differences" in out.stdout, out.stdout
    print("spark: ok: Spark's findings equal DataFusion's")


if __name__ == "__main__":
    main()

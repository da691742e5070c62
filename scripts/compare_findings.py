#!/usr/bin/env python3
"""Compares two findings files figure by figure: `ecomflow batch`'s
report/findings.json and scripts/spark_batch.py's.

    scripts/compare_findings.py ecomflow.json spark.json

Integers and text must be equal; floats equal to 1e-9 (relative): the
engines add the same doubles in different orders. The step timings are
not compared. Prints every difference with its path and exits 1 if there is
one; prints what it compared and exits 0 if not.
"""
import json
import math
import sys

REL = 1e-9


def compare(a, b, path, out, counts):
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            if key == "timings":
                continue
            if key not in a or key not in b:
                out.append(f"{path}.{key}: only in {'the first' if key in a else 'the second'}")
                continue
            compare(a[key], b[key], f"{path}.{key}", out, counts)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} items against {len(b)}")
        for i, (x, y) in enumerate(zip(a, b)):
            compare(x, y, f"{path}[{i}]", out, counts)
    elif isinstance(a, bool) or isinstance(b, bool) or a is None or b is None or isinstance(a, str):
        counts["exact"] += 1
        if a != b:
            out.append(f"{path}: {a!r} against {b!r}")
    elif isinstance(a, int) and isinstance(b, int):
        counts["exact"] += 1
        if a != b:
            out.append(f"{path}: {a} against {b}")
    elif isinstance(a, (int, float)) and isinstance(b, (int, float)):
        counts["float"] += 1
        if not math.isclose(a, b, rel_tol=REL, abs_tol=REL):
            out.append(f"{path}: {a!r} against {b!r}")
    else:
        out.append(f"{path}: {a!r} against {b!r}")


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1]) as f:
        a = json.load(f)
    with open(sys.argv[2]) as f:
        b = json.load(f)
    out, counts = [], {"exact": 0, "float": 0}
    compare(a, b, "findings", out, counts)
    for line in out[:50]:
        print(line)
    if out:
        print(f"compare_findings: {len(out)} differences")
        sys.exit(1)
    print(
        f"compare_findings: equal ({counts['exact']} integers and texts exactly, "
        f"{counts['float']} floats to {REL:g} relative)"
    )


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Time command A against command B, alternated: A B A B ...

    scripts/ab.py -n 5 'A-COMMAND ...' 'B-COMMAND ...'

Each command is run through `sh -c`, so it may hold a redirection or
`rm -rf D && exec ...`. Every run's wall seconds, CPU seconds (user +
system of the processes it waited for) and peak RSS (the largest single
process) come from the operating system's accounting of the finished
child (`os.wait4`); the peak cannot read below this script's own (about
15 MiB), which the child holds for a moment before its exec. The report
gives min / median / max of each, and the median of the pair-by-pair
ratios A/B: pairing keeps the ratio meaningful when the machine's speed
drifts during the call. Nothing is judged: the
exit status is 1 only when a run failed.

Standard library only; Linux (ru_maxrss in KiB).
"""

import argparse
import os
import statistics
import subprocess
import sys
import time


def run(command: str) -> tuple[float, float, float, int]:
    """Runs one command; returns (wall s, cpu s, peak MiB, exit code)."""
    start = time.monotonic()
    child = subprocess.Popen(["sh", "-c", command], stdin=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.monotonic() - start
    cpu = usage.ru_utime + usage.ru_stime
    return wall, cpu, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status)


def spread(values: list[float], unit: str) -> str:
    return (f"{statistics.median(values):.2f}{unit} "
            f"({min(values):.2f}-{max(values):.2f})")


def main() -> int:
    parser = argparse.ArgumentParser(
        description="Time command A against command B, alternated.",
        epilog="example: scripts/ab.py -n 5 'new/ecomflow batch --data-dir D' "
        "'old/ecomflow batch --data-dir D'")
    parser.add_argument("-n", "--runs", type=int, default=5, help="pairs to run (default 5)")
    parser.add_argument("a", help="command A (the candidate)")
    parser.add_argument("b", help="command B (the baseline)")
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    runs: dict[str, list[tuple[float, float, float, int]]] = {"A": [], "B": []}
    for i in range(args.runs):
        for name, command in (("A", args.a), ("B", args.b)):
            result = run(command)
            runs[name].append(result)
            print(f"pair {i + 1} {name}: wall {result[0]:.2f} s, cpu {result[1]:.2f} s, "
                  f"peak {result[2]:.0f} MiB, exit {result[3]}", file=sys.stderr, flush=True)
    for name in ("A", "B"):
        r = runs[name]
        print(f"{name}: wall {spread([x[0] for x in r], ' s')}, cpu {spread([x[1] for x in r], ' s')}, "
              f"peak {spread([x[2] for x in r], ' MiB')}")
    for i, what in ((0, "wall"), (1, "cpu")):
        ratios = [a[i] / b[i] for a, b in zip(runs["A"], runs["B"]) if b[i] > 0]
        if ratios:
            print(f"A/B {what}: {spread(ratios, '')}")
    failed = [x for r in runs.values() for x in r if x[3] != 0]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

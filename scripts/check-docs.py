#!/usr/bin/env python3
"""The user documentation stays documentation: README.md at most 400
lines; no history in README.md, docs/ or code comments (no "sitting", no
dated entries, no word that names a commit of this repository); every
docs/ page is linked from the README; every relative link resolves.

Usage: scripts/check-docs.py   (from anywhere; exit 1 on a problem)
"""
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []


def files():
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for f in out.split():
        if f.startswith("tests/fixtures/") or f.endswith((".json", ".lock", ".svg", ".csv")):
            continue
        if f == "README.md" or f.startswith("docs/") or f.endswith((".rs", ".py", ".sh", ".toml", ".yml", ".yaml")):
            yield f


def is_commit(word):
    return subprocess.run(["git", "cat-file", "-e", f"{word}^{{commit}}"], cwd=ROOT,
                          capture_output=True).returncode == 0


def main():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    n = readme.count("\n")
    if n > 400:
        problems.append(f"README.md has {n} lines (at most 400)")
    checked = {}
    for path in files():
        with open(os.path.join(ROOT, path), errors="replace") as f:
            for i, line in enumerate(f, 1):
                prose = path.endswith(".md") or re.search(r"(//|#)", line)
                if not prose:
                    continue
                if re.search(r"\bsittings?\b", line, re.I):
                    problems.append(f"{path}:{i}: mentions a sitting")
                if re.search(r"\b20\d\d-(0[1-9]|1[0-2])-\d\d\b", line) and re.search(r"\b(since|until|before|after|measured|on) 20\d\d-", line):
                    problems.append(f"{path}:{i}: a dated entry")
                for word in re.findall(r"\b[0-9a-f]{7,40}\b", line):
                    if not re.search(r"[a-f]", word) or not re.search(r"\d", word):
                        continue
                    if word not in checked:
                        checked[word] = is_commit(word)
                    if checked[word]:
                        problems.append(f"{path}:{i}: names commit {word}")
    for page in sorted(os.listdir(os.path.join(ROOT, "docs"))):
        if page.endswith(".md") and f"docs/{page}" not in readme:
            problems.append(f"docs/{page} is not linked from README.md")
    for path in ["README.md"] + [f"docs/{p}" for p in os.listdir(os.path.join(ROOT, "docs")) if p.endswith(".md")]:
        with open(os.path.join(ROOT, path)) as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", text):
            full = os.path.normpath(os.path.join(ROOT, os.path.dirname(path), target))
            if not os.path.exists(full):
                problems.append(f"{path}: link to {target}, which does not exist")
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        sys.exit(1)
    print(f"ok: README.md {n} lines; no history in the docs or comments; docs/ linked and links resolve")


if __name__ == "__main__":
    main()

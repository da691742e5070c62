#!/usr/bin/env python3
"""The nightly batch against DuckDB on the same Parquet snapshot, side by side.

Usage (after a replay has written DATA_DIR/snapshot):

    pip install duckdb            # for this benchmark only, not a dependency
    scripts/batch-vs-duckdb.py DATA_DIR [path/to/ecomflow] [runs]

DuckDB (2 threads, one process) runs the seed's four analytics with the
batch's own SQL definitions (batch/sql/): co-purchase
pairs, co-view pairs (each a self-join, then the totals and top 10),
conversion (the funnel and conversion by device) and CLV with its segments.
ecomflow runs the whole `ecomflow batch` (the same four, plus product
performance, the daily revenue, BG/NBD + Gamma-Gamma predictions, the
write-back of every user's segment and the report): a superset, so the
comparison leans against ecomflow. Each is a separate process under
`/usr/bin/time`; the table gives the median of `runs` (default 3) runs of
each, alternated, with wall time, CPU (user + system) and peak RSS.
"""
import importlib.util
import statistics
import subprocess
import sys
import time

CUTS = (0.025, 0.117, 0.43)  # VIP, High, Medium shares (SegmentCuts::default)


def duckdb_only(snapshot):
    """The four analytics in this process; prints each step's seconds."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET threads = 2")
    for table in ("transactions", "sessions"):
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
            f"'{snapshot}/{table}/*/*.parquet', hive_partitioning = true)"
        )
    for table in ("users", "products"):
        con.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{snapshot}/{table}/*.parquet')"
        )
    con.execute(
        "CREATE VIEW transaction_items AS SELECT transaction_id, user_id, item.product_id AS product_id "
        "FROM (SELECT transaction_id, user_id, unnest(items) AS item FROM transactions)"
    )
    con.execute(
        "CREATE VIEW session_views AS SELECT session_id, user_id, product_id "
        "FROM (SELECT session_id, user_id, unnest(viewed_products) AS product_id FROM sessions)"
    )
    steps = []

    def step(name, *sqls):
        t = time.perf_counter()
        out = [con.execute(s).fetchall() for s in sqls]
        steps.append((name, time.perf_counter() - t))
        return out

    def pairs(table, basket, source):
        return (
            f"CREATE OR REPLACE TABLE {table} AS "
            f"WITH x AS (SELECT DISTINCT {basket}, product_id FROM {source}) "
            f"SELECT a.product_id AS product_a, b.product_id AS product_b, COUNT(*) AS together "
            f"FROM x a JOIN x b ON a.{basket} = b.{basket} AND a.product_id < b.product_id "
            f"GROUP BY a.product_id, b.product_id",
            f"SELECT COUNT(*), SUM(together), AVG(together) FROM {table}",
            f"SELECT * FROM {table} ORDER BY together DESC, product_a, product_b LIMIT 10",
        )

    co_purchase = step("co-purchase pairs", *pairs("co_purchase", "transaction_id", "transaction_items"))
    co_view = step("co-view pairs", *pairs("co_view", "session_id", "session_views"))
    step(
        "conversion",
        "SELECT COUNT(*), SUM(CASE WHEN len(viewed_products) > 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN len(cart_contents) > 0 THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END), "
        "SUM(CASE WHEN conversion_status = 'abandoned' THEN 1 ELSE 0 END) FROM sessions",
        "SELECT device_type, COUNT(*), SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) "
        "FROM sessions GROUP BY device_type ORDER BY device_type",
    )
    clv = """CREATE OR REPLACE TABLE clv AS
WITH transaction_metrics AS (
    SELECT user_id, COUNT(transaction_id) AS total_transactions,
           SUM(total) AS total_spent, AVG(total) AS avg_order_value
    FROM transactions GROUP BY user_id
), session_metrics AS (
    SELECT user_id, COUNT(session_id) AS total_sessions,
           SUM(CASE WHEN conversion_status = 'converted' THEN 1 ELSE 0 END) AS converted_sessions,
           SUM(len(viewed_products)) AS total_products_viewed
    FROM sessions GROUP BY user_id
), integrated AS (
    SELECT u.user_id, COALESCE(t.total_transactions, 0) AS total_transactions,
           COALESCE(t.total_spent, 0.0) AS total_spent,
           COALESCE(t.avg_order_value, 0.0) AS avg_order_value,
           COALESCE(s.total_sessions, 0) AS total_sessions,
           COALESCE(s.converted_sessions, 0) AS converted_sessions,
           COALESCE(s.total_products_viewed, 0) AS total_products_viewed
    FROM users u
    LEFT JOIN transaction_metrics t ON u.user_id = t.user_id
    LEFT JOIN session_metrics s ON u.user_id = s.user_id
), scored AS (
    SELECT *, total_sessions * 0.3 + converted_sessions * 0.5
              + total_products_viewed / 100.0 * 0.2 AS engagement_score FROM integrated
)
SELECT *, total_spent + avg_order_value * engagement_score * 0.5 AS total_clv FROM scored"""
    t = time.perf_counter()
    con.execute(clv)
    n = con.execute("SELECT COUNT(*) FROM clv").fetchone()[0]
    vip = int(CUTS[0] * n + 1e-9)
    high = int((CUTS[0] + CUTS[1]) * n + 1e-9)
    medium = int(sum(CUTS) * n + 1e-9)
    segments = con.execute(
        f"""SELECT segment, COUNT(*), SUM(total_spent) FROM (
  SELECT *, CASE WHEN clv_rank <= {vip} THEN 'VIP' WHEN clv_rank <= {high} THEN 'High'
                 WHEN clv_rank <= {medium} THEN 'Medium' ELSE 'Low' END AS segment
  FROM (SELECT *, RANK() OVER (ORDER BY total_clv DESC) AS clv_rank FROM clv))
GROUP BY segment ORDER BY segment"""
    ).fetchall()
    steps.append(("CLV and segments", time.perf_counter() - t))
    for name, secs in steps:
        print(f"{name}: {secs:.2f} s")
    print(f"co-purchase pairs {co_purchase[1][0]}, co-view pairs {co_view[1][0]}, segments {segments}")


def timed(cmd):
    """(wall s, cpu s, peak RSS MB, stdout) of one process under /usr/bin/time."""
    p = subprocess.run(
        ["/usr/bin/time", "-f", "TIME %e %U %S %M"] + cmd,
        capture_output=True, text=True,
    )
    if p.returncode != 0:
        tail = "\n".join(p.stderr.strip().splitlines()[-5:])
        sys.exit(f"{' '.join(cmd)} failed (exit {p.returncode}):\n{tail}")
    line = next(l for l in p.stderr.splitlines() if l.startswith("TIME "))
    wall, user, sys_, rss = line.split()[1:]
    return float(wall), float(user) + float(sys_), int(rss) / 1024, p.stdout


def main():
    if len(sys.argv) >= 3 and sys.argv[1] == "--duckdb-only":
        duckdb_only(sys.argv[2])
        return
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(__doc__)
        return
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    if importlib.util.find_spec("duckdb") is None:
        sys.exit(f"DuckDB's Python package is not installed for {sys.executable}: "
                 "pip install duckdb")
    data = sys.argv[1]
    ecomflow = sys.argv[2] if len(sys.argv) > 2 else "target/release/ecomflow"
    runs = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    results = {"duckdb": [], "ecomflow": []}
    for _ in range(runs):
        results["duckdb"].append(
            timed([sys.executable, __file__, "--duckdb-only", f"{data}/snapshot"])
        )
        results["ecomflow"].append(timed([ecomflow, "batch", "--data-dir", data]))
    print(results["duckdb"][-1][3].strip())
    steps = [l for l in results["ecomflow"][-1][3].splitlines() if "Steps:" in l]
    print("ecomflow batch" + (steps[0] if steps else ""))
    print()
    print(f"| engine ({runs} runs, median) | wall | CPU | peak RSS |")
    print("|---|---|---|---|")
    # (wall, cpu, rss) medians of each engine.
    med = {name: [statistics.median(x[i] for x in r) for i in range(3)]
           for name, r in results.items()}
    for name, label in (
        ("duckdb", "DuckDB: the four analytics"),
        ("ecomflow", "`ecomflow batch`: the four and the rest of the nightly"),
    ):
        wall, cpu, rss = med[name]
        print(f"| {label} | {wall:.1f} s | {cpu:.1f} s | {rss:.0f} MB |")
    e, d = med["ecomflow"], med["duckdb"]
    print(f"\necomflow / DuckDB: {e[0] / d[0]:.2f} wall, {e[1] / d[1]:.2f} CPU")


if __name__ == "__main__":
    main()

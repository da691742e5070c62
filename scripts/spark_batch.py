#!/usr/bin/env python3
"""The nightly batch's analytics on Apache Spark, for shops that outgrow one machine.

Runs the same SQL files as `ecomflow batch` (batch/sql/*.sql), on the
same Parquet snapshot, and writes the findings in the shape `ecomflow batch`
writes them (report/findings.json), so the two can be compared figure by
figure (scripts/compare_findings.py; CI does it on a small shop).

    pip install pyspark                     # Spark 4 runs on Java 17
    ecomflow replay --data-dir DATA         # or `ecomflow batch`: writes DATA/snapshot
    scripts/spark_batch.py DATA/snapshot spark-findings.json
    scripts/compare_findings.py DATA/report/findings.json spark-findings.json

On a cluster, submit it with the snapshot on shared storage:

    spark-submit --master yarn scripts/spark_batch.py hdfs:///shop/snapshot out.json

(the master is spark-submit's when it gives one, else local[2]). Only the
engine-specific part is here: reading the snapshot and the two "exploded"
views (`explode` where DataFusion has `unnest`). The pairs are counted the
seed's way, by the self-joins of co_purchase.sql and co_view.sql, where
ecomflow's own batch uses its pair operator (tested equal to those files).
"""
import argparse
import datetime
import decimal
import json
import math
import os
import re
import sys
import time

SQL_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "batch", "sql")
DAILY_TABLES = ("transactions", "sessions")
WHOLE_TABLES = ("users", "products", "categories", "dead_letters")
GAP_RULE = "views_rank >= 0.9 AND conversion_rank < 0.25"  # analytics.rs GAP_RULE
NICHE_RULE = "views_rank < 0.5 AND conversion_rank >= 0.9"  # analytics.rs NICHE_RULE
NO_LIMIT = 2**31 - 1  # analytics.rs NO_LIMIT

VIEWS = {
    "transaction_items": """
        SELECT transaction_id, user_id, date, timestamp,
               item.product_id AS product_id, item.quantity AS quantity,
               item.unit_price AS unit_price, item.subtotal AS revenue
        FROM (SELECT transaction_id, user_id, date, timestamp, explode(items) AS item
              FROM transactions)""",
    "session_views": """
        SELECT session_id, user_id, date, device_type, product_id
        FROM (SELECT session_id, user_id, date, device_type,
                     explode(viewed_products) AS product_id FROM sessions)""",
}


def render(name, **params):
    """A SQL file with its {placeholders} filled (as analytics::render does)."""
    with open(os.path.join(SQL_DIR, name + ".sql")) as f:
        sql = f.read()
    for key, value in params.items():
        if "{" + key + "}" not in sql:
            sys.exit(f"{name}.sql has no placeholder {{{key}}}")
        sql = sql.replace("{" + key + "}", str(value))
    left = re.search(r"\{\w+\}", sql)
    if left:
        sys.exit(f"{name}.sql: placeholder {left.group(0)} has no value")
    return sql


def plain(value):
    """A Spark value as analytics' Table holds it: int, float, text or None."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value


class Batch:
    def __init__(self, spark, snapshot):
        self.spark = spark
        self.timings = []
        for table in DAILY_TABLES:
            path = os.path.join(snapshot, table)
            if not os.path.isdir(path) and "://" not in snapshot:
                sys.exit(f"no {path}: run `ecomflow batch` (or a replay) to write the snapshot")
            spark.read.option("basePath", path).parquet(path).createOrReplaceTempView(table)
        for table in WHOLE_TABLES:
            spark.read.parquet(os.path.join(snapshot, table)).createOrReplaceTempView(table)
        for name, sql in VIEWS.items():
            spark.sql(sql).createOrReplaceTempView(name)

    def rows(self, sql):
        return [[plain(v) for v in row] for row in self.spark.sql(sql).collect()]

    def table(self, sql):
        df = self.spark.sql(sql)
        return {"columns": df.columns, "rows": [[plain(v) for v in r] for r in df.collect()]}

    def create(self, name, sql):
        """The file's result as the table `name` (CREATE OR REPLACE TABLE in DataFusion)."""
        df = self.spark.sql(sql).cache()
        df.count()
        df.createOrReplaceTempView(name)

    def step(self, name, started):
        self.timings.append([name, time.perf_counter() - started])

    def pairs(self, table):
        (unique, total, avg), = self.rows(render("pair_stats", table=table))
        top = self.rows(render("top_pairs", table=table, n=10))
        return {
            "unique_pairs": unique,
            "total": total,
            # As ecomflow computes it: the sum is exact in f64 below 2^53.
            "avg_per_pair": total / unique if unique else 0.0,
            "top": top,
        }

    def run(self, cuts, min_views):
        f = {}
        t = time.perf_counter()
        f["cleaning"] = self.table(render("cleaning_totals"))
        f["cleaning_reasons"] = self.table(render("cleaning_reasons"))
        self.step("cleaning statistics", t)

        t = time.perf_counter()
        self.create("co_purchase", render("co_purchase"))
        self.create("co_view", render("co_view"))
        f["co_purchase"] = self.pairs("co_purchase")
        f["co_view"] = self.pairs("co_view")
        (viewed, never), = self.rows(render("viewed_not_bought"))
        f["viewed_never_bought_pct"] = never * 100.0 / viewed if viewed else 0.0
        f["basket_cap"] = None
        self.create("product_views", render("product_views"))
        self.step("co-purchase and co-view pairs", t)

        t = time.perf_counter()
        self.create("product_sales", render("product_sales"))
        perf = lambda order, views, limit: render(
            "product_performance", min_views=views, order_by=order, limit=limit
        )
        f["top_converting"] = self.table(perf("conversion_rate DESC", min_views, 20))
        f["top_selling"] = self.table(perf("units_sold DESC", min(min_views, 1), 20))
        (lo, hi), = self.rows(
            render("conversion_range", ranked=perf("conversion_rate", min_views, NO_LIMIT))
        )
        f["conversion_range"] = [lo, hi]
        f["min_views"] = min_views
        self.create("product_rank", render("product_rank", min_views=min_views))
        picked = lambda rule, order: self.table(render("picked_products", rule=rule, order=order))
        f["conversion_gaps"] = picked(GAP_RULE, "sessions_viewed DESC")
        f["niche"] = picked(NICHE_RULE, "conversion_rate DESC")
        self.step("product performance", t)

        t = time.perf_counter()
        self.create("clv", render("clv", filter="TRUE"))
        (n,), = self.rows("SELECT COUNT(*) AS n FROM clv")
        # Cumulative cut-offs as customer counts, as analytics::run has them.
        cum = lambda share: math.floor(share * n + 1e-9)
        vip, high, medium = cuts
        self.create(
            "segments",
            render(
                "segments",
                n_vip=cum(vip),
                n_high=cum(vip + high),
                n_medium=cum(vip + high + medium),
            ),
        )
        summary = self.table(render("segment_summary"))
        f["segment_engagement"] = self.table(render("segment_engagement"))
        f["segments"] = [dict(zip(summary["columns"], row)) for row in summary["rows"]]
        f["spending"] = [v for (v,) in self.rows(render("spending"))]
        self.step("CLV and segments", t)

        t = time.perf_counter()
        funnel = self.table(render("funnel"))
        f["funnel"] = dict(zip(funnel["columns"], funnel["rows"][0]))
        f["by_device"] = self.table(render("by_device"))
        f["daily_revenue"] = self.table(render("daily_revenue"))
        self.step("funnel, devices, daily revenue", t)
        f["timings"] = self.timings
        return f


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("snapshot", help="the snapshot directory (DATA_DIR/snapshot)")
    ap.add_argument("out", help="where to write the findings (JSON)")
    ap.add_argument("--vip-share", type=float, default=0.025)
    ap.add_argument("--high-share", type=float, default=0.117)
    ap.add_argument("--medium-share", type=float, default=0.43)
    ap.add_argument("--min-views", type=int, default=30)
    args = ap.parse_args()
    if "://" not in args.snapshot and not os.path.exists(os.path.join(args.snapshot, "_snapshot.json")):
        sys.exit(f"no snapshot in {args.snapshot}: run `ecomflow batch` first")

    from pyspark import SparkConf
    from pyspark.sql import SparkSession

    conf = SparkConf()
    if not conf.contains("spark.master"):
        conf.setMaster("local[2]")
    conf.setAppName("ecomflow-batch")
    conf.set("spark.ui.enabled", "false")
    conf.set("spark.ui.showConsoleProgress", "false")
    conf.set("spark.sql.shuffle.partitions", conf.get("spark.sql.shuffle.partitions", "8"))
    # The partition column `date` stays text ('YYYY-MM-DD'), as in DataFusion.
    conf.set("spark.sql.sources.partitionColumnTypeInference.enabled", "false")
    conf.set("spark.sql.session.timeZone", "UTC")
    started = time.perf_counter()
    spark = SparkSession.builder.config(conf=conf).getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    findings = Batch(spark, args.snapshot).run(
        (args.vip_share, args.high_share, args.medium_share), args.min_views
    )
    spark.stop()
    tmp = args.out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(findings, f, indent=1, allow_nan=False)
    os.replace(tmp, args.out)
    steps = ", ".join(f"{name} {secs:.1f} s" for name, secs in findings["timings"])
    print(f"spark_batch: wrote {args.out} in {time.perf_counter() - started:.1f} s ({steps})")


if __name__ == "__main__":
    main()

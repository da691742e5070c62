#!/usr/bin/env python3
"""Writes a synthetic event-level clickstream export (the layout `ecomflow
import` reads) of about ROWS rows, gzip, in time order:

    python3 scripts/clickstream.py 10000000 /tmp/clicks.csv.gz

Deterministic (a fixed seed): the same ROWS give the same bytes. Sessions
of 1 to 8 product views over 30 days, a quarter adding to the cart (some
removing one again), about one in eight buying; products drawn with a
long tail; ids like the public multi-category-store exports (numbers for
products, categories and users, UUIDs for sessions), prices as text,
about 1 in 2,000 rows broken in one of the ways real exports are.
"""
import gzip
import heapq
import random
import sys
import uuid
from datetime import datetime, timedelta

HEADER = "event_time,event_type,product_id,category_id,category_code,brand,price,user_id,user_session\n"
CODES = ["electronics.smartphone", "appliances.kitchen.kettle", "computers.notebook",
         "apparel.shoes", "furniture.living_room.sofa", ""]
BRANDS = ["samsung", "apple", "xiaomi", "huawei", "lg", "bosch", ""]


def main():
    rows_wanted = int(sys.argv[1])
    out = sys.argv[2]
    rng = random.Random(42)
    users = max(rows_wanted // 40, 10)
    products = max(rows_wanted // 200, 10)
    start = datetime(2019, 10, 1)
    span = 30 * 86400
    sessions = max(rows_wanted // 5, 1)
    step = span / sessions
    heap = []
    written = 0
    seq = 0
    with gzip.open(out, "wt", compresslevel=1, newline="") as f:
        f.write(HEADER)
        for s in range(sessions):
            t0 = s * step
            # Everything before this session's start is final: write it.
            while heap and heap[0][0] < t0:
                f.write(heapq.heappop(heap)[2])
                written += 1
            user = 500000000 + rng.randrange(users)
            sid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            views = [int(products * rng.random() ** 3) for _ in range(rng.randint(1, 8))]
            events = [("view", p) for p in views]
            if rng.random() < 0.25:
                events.append(("cart", views[0]))
                if len(views) > 1:
                    events.append(("cart", views[-1]))
                    if rng.random() < 0.3:
                        events.append(("remove_from_cart", views[-1]))
                if rng.random() < 0.5:
                    events.append(("purchase", views[0]))
            t = t0
            for kind, p in events:
                t += rng.randint(5, 120)
                when = (start + timedelta(seconds=int(t))).strftime("%Y-%m-%d %H:%M:%S UTC")
                cat = p % 97
                price = f"{(p % 500) + 0.99:.2f}"
                line = f"{when},{kind},{1000000 + p},{2053013550000000000 + cat},{CODES[cat % len(CODES)]},{BRANDS[p % len(BRANDS)]},{price},{user},{sid}\n"
                if rng.random() < 0.0005:
                    line = rng.choice([line.replace(f",{price},", ",,"), line[: len(line) // 2] + "\n",
                                       line.replace(kind, "wishlist")])
                seq += 1
                heapq.heappush(heap, (t, seq, line))
        while heap:
            f.write(heapq.heappop(heap)[2])
            written += 1
    print(f"{written} rows, {users} users, {products} products, {sessions} sessions: {out}", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Dumps every lookup answer of a running aggregator, one line per request,
so two builds can be compared byte for byte (`cmp a.txt b.txt`).

Usage: scripts/dump-lookups.py http://127.0.0.1:8080 PRODUCTS USERS > out.txt

For each product 1..PRODUCTS: bought- and viewed-together with k=20, both
rankings, both spans; for each user 1..USERS: engagement; then the top pairs.
Only the standard library; one keep-alive connection.
"""
import http.client
import sys
import urllib.parse


def main():
    url = urllib.parse.urlparse(sys.argv[1])
    products, users = int(sys.argv[2]), int(sys.argv[3])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)

    def get(path):
        conn.request("GET", path)
        r = conn.getresponse()
        body = r.read().decode()
        print(f"{path} {r.status} {body}")

    for p in range(1, products + 1):
        for rel in ("bought-together", "viewed-together"):
            for ranking in ("llr", "count"):
                for span in ("window", "all-time"):
                    get(f"/v1/products/prod_{p:05d}/{rel}?k=20&ranking={ranking}&span={span}")
    for u in range(1, users + 1):
        get(f"/v1/users/user_{u:06d}/engagement")
    for rel in ("bought", "viewed"):
        for span in ("window", "all-time"):
            get(f"/v1/top-pairs?relation={rel}&k=100&span={span}")


if __name__ == "__main__":
    main()

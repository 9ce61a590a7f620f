"""Baseline for issue 5: what aggregating the ledger per request costs on the generated city.

    .venv/bin/python bench/ledger_sums_bench.py --runs 5          # on points_bench (bench/city_gen.py)

Each query is what a leaderboard or "my rank" would run if it had no maintained numbers:
- ``month``: Σ assessment scoring points per member over one city month, top 50 (a leaderboard page);
- ``year``: the same over one city year;
- ``rank_year``: one member's city rank for the year, 1 + COUNT(*) of members whose on-the-fly sum is higher;
- ``rank_totals_quarter``: the same rank as a plain COUNT(*) over the maintained ``point_totals`` rows of a
  quarter (no ledger scan, but still every row of the period: the "COUNT(*) of higher scores").
One unrecorded warm-up run, then ``--runs`` timed runs each; medians, min and max (client wall time,
results fetched). The plan of each query is printed once (EXPLAIN ANALYZE, BUFFERS) so the numbers can be
explained. Read-only; the database is left as it is.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time

import psycopg

SCORING = "('award', 'deduction', 'adjustment', 'reversal')"
MEMBER_ROWS = f"""
FROM ledger_entries WHERE subject_type = 'member' AND ledger = 'assessment' AND kind IN {SCORING}
  AND credited_at >= %(start)s AND credited_at < %(end)s"""
MEMBER_SUMS = f"SELECT subject_id, sum(points) AS score {MEMBER_ROWS} GROUP BY subject_id"
TOP_50 = f"SELECT subject_id, score FROM ({MEMBER_SUMS}) s ORDER BY score DESC, subject_id LIMIT 50"
RANK_FROM_LEDGER = f"""
SELECT 1 + count(*) FROM ({MEMBER_SUMS}) s WHERE score > (
    SELECT coalesce(sum(points), 0) FROM ledger_entries
    WHERE subject_type = 'member' AND subject_id = %(member)s AND ledger = 'assessment' AND kind IN {SCORING}
      AND credited_at >= %(start)s AND credited_at < %(end)s)"""
RANK_FROM_TOTALS = """
SELECT 1 + count(*) FROM point_totals
WHERE ledger = 'assessment' AND period = %(period)s AND subject_type = 'member'
  AND earned + deducted > (SELECT coalesce(sum(earned + deducted), 0) FROM point_totals
                           WHERE ledger = 'assessment' AND period = %(period)s AND subject_type = 'member'
                             AND subject_id = %(member)s)"""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--month", default="2026-10", help="a closed city month (Asia/Shanghai)")
    parser.add_argument("--year", default="2025", help="a closed city year")
    parser.add_argument("--quarter", default="2026-Q3")
    parser.add_argument("--seed", type=int, default=5)
    return parser.parse_args()


def local_bounds(key: str) -> dict:
    """[start, end) of a month or year key as naive UTC instants (the column's storage)."""
    from datetime import datetime, timedelta
    year, month = (int(key), None) if len(key) == 4 else map(int, key.split("-"))
    start = datetime(year, month or 1, 1)
    end = datetime(year + 1, 1, 1) if month is None else datetime(year + month // 12, month % 12 + 1, 1)
    return {"start": start - timedelta(hours=8), "end": end - timedelta(hours=8)}


def measure(conn, sql: str, params: dict, runs: int) -> dict:
    conn.execute(sql, params).fetchall()  # warm-up, unrecorded
    times = []
    for _ in range(runs):
        began = time.perf_counter()
        conn.execute(sql, params).fetchall()
        times.append((time.perf_counter() - began) * 1000)
    return {"median_ms": round(statistics.median(times), 1), "min_ms": round(min(times), 1),
            "max_ms": round(max(times), 1), "runs": runs}


def plan_summary(conn, sql: str, params: dict) -> str:
    rows = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}", params).fetchone()[0][0]
    nodes, stack = [], [rows["Plan"]]
    while stack:
        node = stack.pop()
        label = node["Node Type"] + (f" on {node['Relation Name']}" if "Relation Name" in node else "")
        if node.get("Index Name"):
            label += f" using {node['Index Name']}"
        nodes.append(label)
        stack.extend(reversed(node.get("Plans", [])))
    hit = rows["Plan"].get("Shared Hit Blocks", 0)
    read = rows["Plan"].get("Shared Read Blocks", 0)
    return f"{rows['Execution Time']:.0f} ms; {' > '.join(nodes)}; buffers hit {hit} read {read}"


def scalar(conn, sql: str):
    return conn.execute(sql).fetchone()[0]


def main() -> int:
    args = parse_args()
    with psycopg.connect(f"{args.pg}/{args.database}", autocommit=True) as conn:
        facts = {
            "entries": conn.execute("SELECT count(*) FROM ledger_entries").fetchone()[0],
            "members": conn.execute("SELECT count(*) FROM members").fetchone()[0],
            "database_size": scalar(conn, "SELECT pg_size_pretty(pg_database_size(current_database()))"),
            "ledger_size": scalar(conn, "SELECT pg_size_pretty(pg_total_relation_size('ledger_entries'))"),
            "postgresql": conn.execute("SHOW server_version").fetchone()[0],
            "shared_buffers": conn.execute("SHOW shared_buffers").fetchone()[0],
            "max_parallel_workers_per_gather": conn.execute("SHOW max_parallel_workers_per_gather").fetchone()[0],
        }
        month, year = local_bounds(args.month), local_bounds(args.year)
        active = conn.execute(f"SELECT subject_id FROM ({MEMBER_SUMS}) s ORDER BY subject_id", year).fetchall()
        member = random.Random(args.seed).choice(active)[0]
        facts.update(month=args.month, year=args.year, quarter=args.quarter, member=member,
                     month_rows=conn.execute(f"SELECT count(*) {MEMBER_ROWS}", month).fetchone()[0],
                     year_rows=conn.execute(f"SELECT count(*) {MEMBER_ROWS}", year).fetchone()[0])
        print(json.dumps(facts, ensure_ascii=False), flush=True)
        cases = [("month", TOP_50, month), ("year", TOP_50, year),
                 ("rank_year", RANK_FROM_LEDGER, {**year, "member": member}),
                 ("rank_totals_quarter", RANK_FROM_TOTALS, {"period": args.quarter, "member": member})]
        results = []
        for name, sql, params in cases:
            result = {"query": name, **measure(conn, sql, params, args.runs), "plan": plan_summary(conn, sql, params)}
            results.append(result)
            print(json.dumps(result, ensure_ascii=False), flush=True)
    print("\n| query | median ms | min ms | max ms | runs |\n|---|---|---|---|---|")
    for r in results:
        print(f"| {r['query']} | {r['median_ms']} | {r['min_ms']} | {r['max_ms']} | {r['runs']} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Do reads survive a check-in burst? Leaderboard pages and "my rank" over HTTP, fresh and right after N
check-ins through the service, on a city made by bench/city_gen.py (the same gunicorn serves both).

    .venv/bin/python bench/city_gen.py --scale 0.2 --database points_bench_burst     # 100,000 members
    .venv/bin/python bench/burst_bench.py --database points_bench_burst --checkins 100000

- Reads (serial, one client, ``--serial`` requests per scenario and round, ``--rounds`` rounds): the city's
  leaderboard page (top 50) for the quarter and the standing score, a district's page, and GET /me/rank
  (city-wide, standing and quarter) for random members — bench/rank_bench.py's scenarios without the baseline.
- Burst: ``--checkins`` check-ins by distinct (member, activity) pairs, posted by ``--concurrency`` clients
  through ``POST /api/v1/activities/{id}/checkins``, over fresh published activities (``--per-activity``
  members each) created in the city, with the live check-in code computed as the organizer's screen shows it.
- Then the reads again at once ("after"), then the ratio after / fresh of each scenario's p99 and p50.
- Checks: every check-in answered 201 and wrote its row; every read answered 200.
The activities and check-ins it adds are deleted at the end (VACUUM ANALYZE follows), so a re-run starts from
the same city. Target (issue 17): p99 after ≤ 1.5× fresh.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
from checkin_bench import VENUE_LAT, VENUE_LNG, Gunicorn, drive, machine, new_activities, server_env  # noqa: E402
from rank_bench import QUARTER, STANDING_BOARD, bearers  # noqa: E402


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkins", type=int, default=100_000)
    parser.add_argument("--per-activity", type=int, default=1000, help="members checking in to each activity")
    parser.add_argument("--concurrency", type=int, default=16, help="clients posting the burst")
    parser.add_argument("--serial", type=int, default=300, help="requests per read scenario and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--port", type=int, default=18761)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_burst")
    parser.add_argument("--seed", type=int, default=17)
    parser.add_argument("--json", type=Path)
    return parser.parse_args()


def readers(conn, rng: random.Random, count: int) -> dict:
    """A viewer with his district, and ``count`` random members with accounts on the standing board."""
    rows = conn.execute("SELECT b.subject_id, b.district_id, u.id FROM board_scores b JOIN users u ON "
                        "u.member_id = b.subject_id WHERE b.board = %s AND b.subject_type = 'member'",
                        (STANDING_BOARD,)).fetchall()
    sample = rng.sample(rows, min(count, len(rows)))
    return {"viewer_user": sample[0][2], "district": sample[0][1], "users": [user for _, _, user in sample]}


def read_scenarios(base: str, who: dict, tokens: dict, rng: random.Random) -> dict:
    """Tokens are looked up at call time: ``tokens`` is re-minted in place before each phase (they live 15 min)."""
    scenarios = {}
    for period in (QUARTER, "standing"):
        for scope in ("all", f"region:{who['district']}"):
            url = f"{base}/api/v1/leaderboards?scope={scope}&period={period}&page_size=50"
            scenarios[f"page {scope.split(':')[0]} {period}"] = lambda url=url: (
                "GET", url, {"headers": tokens[who["viewer_user"]]})
        scenarios[f"my rank {period}"] = lambda period=period: (
            "GET", f"{base}/api/v1/me/rank?scope=all&period={period}",
            {"headers": tokens[rng.choice(who["users"])]})
    return scenarios


def measure_reads(args, scenarios: dict, phase: str) -> list[dict]:
    runs = []
    for round_ in range(1, args.rounds + 1):
        for name, call in scenarios.items():
            _seconds, results = drive([call] * args.serial, 1)
            latencies = sorted(latency for _, latency in results)
            cuts = statistics.quantiles(latencies, n=100, method="inclusive")
            runs.append({"phase": phase, "scenario": name, "round": round_, "p50_ms": round(cuts[49] * 1000, 2),
                         "p99_ms": round(cuts[98] * 1000, 2), "errors": sum(s != 200 for s, _ in results),
                         "load": round(os.getloadavg()[0], 2)})
            print(json.dumps(runs[-1], ensure_ascii=False), flush=True)
    return runs


def burst_world(app, conn, args, rng: random.Random) -> tuple[list[tuple[int, str]], list[tuple[int, int]]]:
    """Fresh published activities (``new_activities``: open for check-in, nobody late) in one community, with
    their check-in secrets, and the (activity, user) pairs of the burst: distinct members per activity."""
    community = conn.execute("SELECT id FROM regions WHERE level = 'community' ORDER BY id LIMIT 1").fetchone()[0]
    users = [row[0] for row in conn.execute("SELECT u.id FROM users u JOIN members m ON m.id = u.member_id "
                                            "WHERE u.is_active AND m.is_active")]
    if len(users) < args.per_activity:
        raise SystemExit(f"the city has {len(users)} active members with accounts; --per-activity is larger")
    ids = new_activities(app, community, -(-args.checkins // args.per_activity))
    activities = conn.execute("SELECT id, checkin_secret FROM activities WHERE id = ANY(%s) ORDER BY id",
                              (ids,)).fetchall()
    conn.commit()
    pairs = [(activity_id, user) for activity_id, _ in activities
             for user in rng.sample(users, args.per_activity)][:args.checkins]
    rng.shuffle(pairs)
    return activities, pairs


def checkin_calls(app, base: str, activities, pairs, tokens) -> list:
    from points_service.db import utcnow
    from points_service.domain.checkin.tokens import make_token, step_of
    with app.app_context():
        from points_service.domain.checkin.scans import step_seconds
        step = step_seconds()
    secrets_of = dict(activities)

    def call(activity_id: int, user: int):
        def one():
            code = make_token(activity_id, secrets_of[activity_id], step_of(utcnow(), step))
            body = {"token": code, "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG, "accuracy": 20.0}
            return "POST", f"{base}/api/v1/activities/{activity_id}/checkins", {"json": body,
                                                                               "headers": tokens[user]}
        return one
    return [call(activity_id, user) for activity_id, user in pairs]


def cleanup(conn, activity_ids: list[int]) -> None:
    conn.execute("DELETE FROM checkins WHERE activity_id = ANY(%s)", (activity_ids,))
    conn.execute("DELETE FROM activities WHERE id = ANY(%s)", (activity_ids,))
    conn.commit()
    conn.autocommit = True
    conn.execute("VACUUM ANALYZE checkins")
    conn.execute("VACUUM ANALYZE activities")


def ratios(runs: list[dict]) -> list[dict]:
    rows = []
    for name in dict.fromkeys(r["scenario"] for r in runs):
        fresh = [r for r in runs if r["scenario"] == name and r["phase"] == "fresh"]
        after = [r for r in runs if r["scenario"] == name and r["phase"] == "after"]
        f99, a99 = (statistics.median(r["p99_ms"] for r in rs) for rs in (fresh, after))
        f50, a50 = (statistics.median(r["p50_ms"] for r in rs) for rs in (fresh, after))
        rows.append({"scenario": name, "fresh_p50": f50, "fresh_p99": f99, "after_p50": a50, "after_p99": a99,
                     "ratio_p99": round(a99 / f99, 2), "errors": sum(r["errors"] for r in fresh + after)})
    return rows


def table(rows: list[dict]) -> str:
    lines = ["| reads | fresh p50 / p99 ms | after the burst p50 / p99 ms | p99 after / fresh | errors |",
             "|---|---|---|---|---|"]
    lines += [f"| {r['scenario']} | {r['fresh_p50']:.1f} / {r['fresh_p99']:.1f} | {r['after_p50']:.1f} / "
              f"{r['after_p99']:.1f} | {r['ratio_p99']:.2f} | {r['errors']} |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    args = parse_args()
    env = server_env(args)  # the rate limits count in Redis, as in production
    os.environ.update({k: v for k, v in env.items() if k.startswith(("POINTS_", "BENCH_"))})
    from points_service import create_app
    app, rng, info = create_app(), random.Random(args.seed), machine()
    conn = psycopg.connect(f"{args.pg}/{args.database}")
    info["members"] = conn.execute("SELECT count(*) FROM members").fetchone()[0]
    print(json.dumps(info, ensure_ascii=False), flush=True)
    who = readers(conn, rng, 2000)
    activities, pairs = burst_world(app, conn, args, rng)
    users = sorted({*who["users"], who["viewer_user"], *(user for _, user in pairs)})
    tokens = bearers(app, users)
    logs = Path(tempfile.mkdtemp(prefix="burst_bench_"))
    service = Gunicorn(["wsgi:app"], args.port, args.workers, env, logs / "service.log")
    try:
        scenarios = read_scenarios(service.url, who, tokens, rng)
        for call in scenarios.values():  # warm-up, unrecorded
            drive([call] * 50, 2)
        runs = measure_reads(args, scenarios, "fresh")
        tokens.update(bearers(app, users))
        seconds, results = drive(checkin_calls(app, service.url, activities, pairs, tokens), args.concurrency)
        statuses = [status for status, _ in results]
        burst = {"checkins": len(pairs), "seconds": round(seconds, 1), "per_second": round(len(pairs) / seconds, 1),
                 "non_201": sum(s != 201 for s in statuses), "server_errors": sum(s >= 500 for s in statuses),
                 "rows": conn.execute("SELECT count(*) FROM checkins WHERE activity_id = ANY(%s)",
                                      ([a for a, _ in activities],)).fetchone()[0]}
        conn.commit()
        print(json.dumps({"burst": burst}), flush=True)
        tokens.update(bearers(app, [who["viewer_user"], *who["users"]]))  # the readers' only: read at once
        runs += measure_reads(args, scenarios, "after")
    finally:
        service.stop()
        cleanup(conn, [a for a, _ in activities])
    rows = ratios(runs)
    print(f"\n{info['members']:,} members; burst {burst}; serial reads, medians of {args.rounds} rounds of "
          f"{args.serial}; gunicorn -w {args.workers} (sync)\n")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "burst": burst, "runs": runs, "ratios": rows},
                                        ensure_ascii=False, indent=1))
    return 1 if burst["non_201"] or burst["rows"] != len(pairs) or any(r["errors"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())

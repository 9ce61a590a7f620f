"""Does a request that writes nothing slow the worker's next check-in?

    .venv/bin/python bench/rollback_bench.py --members 50 --rounds 12

In process, through Flask's test client (one worker, one database connection, as a gunicorn sync worker has),
on PostgreSQL. Check-ins by distinct members in blocks of --members, each block at a fresh activity; the
blocks alternate between check-ins alone (the baseline) and check-ins each followed by one request that
changes nothing:

- ``repeat``: the same member scans again (409 ``already_checked_in``);
- ``refused``: a scan with a wrong code (422, refused after the principal and the activity were read);
- ``read``: the member opens the activity's page (``GET /activities/{id}``, a read inside a transaction).

Only the check-ins are timed. Prints the median milliseconds per check-in of each kind of block over --rounds
and its ratio to the baseline of the same run. psycopg discards a connection's prepared statements on every
ROLLBACK; ``points_service/transactions.py`` ends a transaction that changed nothing with COMMIT instead. Each
kind also runs with ``end_transaction`` always rolling back (``rollback`` rows), interleaved with the service's
own (``commit`` rows), to show what the COMMIT saves. Then times reads of the activity's page back to back,
each ending with COMMIT or with ROLLBACK, in alternating blocks.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from checkin_bench import (  # noqa: E402  (the bench folder is not a package)
    VENUE_LAT,
    VENUE_LNG,
    bearer_tokens,
    in_process_app,
    new_activities,
    seed,
)

AFTER = {  # what follows each check-in: (method, path, body) given the check-in's path and body
    "repeat": lambda path, body: ("POST", path, body, 409),
    "refused": lambda path, body: ("POST", path, {**body, "token": "0" * len(body["token"])}, 422),
    "read": lambda path, body: ("GET", path.removesuffix("/checkins"), None, 200),
}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=50, help="check-ins per block")
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--database", default="points_bench_rollback")
    return parser.parse_args()


def main() -> int:
    args = parse_args()
    app, _, schema = in_process_app(args)
    print("schema:", schema, flush=True)
    kinds = [(kind, mode) for mode in ("commit", "rollback") for kind in ("alone", *AFTER)]
    blocks = 1 + len(kinds) * args.rounds
    world = seed(app, args.members * blocks)
    organizer = bearer_tokens(app, [world.admin_user_id])[world.admin_user_id]
    bearers = bearer_tokens(app, world.user_ids)
    activities = new_activities(app, world.community_id, blocks)
    client = app.test_client()
    block = Block(client, organizer, bearers, world.user_ids, args.members)
    block.run(activities[0], 0, "alone")  # warm-up
    spent = {kind: [] for kind in kinds}
    for round_ in range(args.rounds):
        for n, (kind, mode) in enumerate(kinds if round_ % 2 == 0 else reversed(kinds)):
            index = 1 + round_ * len(kinds) + n
            with ending(mode):
                spent[kind, mode].append(block.run(activities[index], index, kind))
    print(f"\nms per check-in, medians of {args.rounds} blocks of {args.members} (the followers are not timed)")
    for kind, mode in kinds:
        median, baseline = statistics.median(spent[kind, mode]), statistics.median(spent["alone", mode])
        print(f"  {mode:8s} {kind:8s} {median:6.2f} ms  ratio to alone {median / baseline:4.2f}")
    reads = {mode: [] for mode in ("commit", "rollback")}
    for round_ in range(args.rounds):
        for mode in reads if round_ % 2 == 0 else reversed(reads):
            with ending(mode):
                reads[mode].append(block.read(activities[1], world.user_ids[:args.members]))
    commit, rollback = (statistics.median(reads[mode]) for mode in ("commit", "rollback"))
    print(f"\nGET /activities/{{id}} back to back, ms per read, medians of {args.rounds} blocks of {args.members}:"
          f"\n  commit {commit:6.2f} ms   rollback {rollback:6.2f} ms   ratio {commit / rollback:4.2f}")
    return 0


@contextlib.contextmanager
def ending(mode: str):
    """``commit``: the service as it is; ``rollback``: every transaction that did not commit rolls back."""
    from points_service import transactions
    if mode == "commit":
        yield
        return
    own = transactions.end_transaction
    users = [module for module in list(sys.modules.values())  # every module that imported it by name
             if getattr(module, "end_transaction", None) is own]
    for module in users:
        module.end_transaction = _rollback
    try:
        yield
    finally:
        for module in users:
            module.end_transaction = own


def _rollback(session) -> None:
    session.rollback()


class Block:
    def __init__(self, client, organizer, bearers, user_ids, members):
        self.client, self.organizer, self.bearers = client, organizer, bearers
        self.user_ids, self.members = user_ids, members

    def run(self, activity_id: int, index: int, kind: str) -> float:
        token = self.client.get(f"/api/v1/activities/{activity_id}/checkin-code",
                                headers=self.organizer).get_json()["data"]["token"]
        path = f"/api/v1/activities/{activity_id}/checkins"
        body = {"token": token, "lat": VENUE_LAT + 0.0002, "lng": VENUE_LNG, "accuracy": 20.0}
        follower = AFTER[kind](path, body) if kind in AFTER else None
        spent = 0.0
        for user_id in self.user_ids[index * self.members:(index + 1) * self.members]:
            headers = self.bearers[user_id]
            started = time.perf_counter()
            status = self.client.post(path, json=body, headers=headers).status_code
            spent += time.perf_counter() - started
            _expect(status, 201, "check-in")
            if follower:
                method, url, json, expected = follower
                _expect(self.client.open(url, method=method, json=json, headers=headers).status_code, expected, kind)
        return spent / self.members * 1000


    def read(self, activity_id: int, user_ids: list[int]) -> float:
        path = f"/api/v1/activities/{activity_id}"
        started = time.perf_counter()
        for user_id in user_ids:
            _expect(self.client.get(path, headers=self.bearers[user_id]).status_code, 200, "read")
        return (time.perf_counter() - started) / len(user_ids) * 1000


def _expect(status: int, expected: int, what: str) -> None:
    if status != expected:
        raise SystemExit(f"{what}: {status}, expected {expected}")


if __name__ == "__main__":
    sys.exit(main())

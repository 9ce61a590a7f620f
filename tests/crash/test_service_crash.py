"""Crash safety over HTTP: the service under gunicorn on PostgreSQL takes awards (admin adjustments) and
check-ins from concurrent clients while workers, and twice the whole service, are killed with SIGKILL at random
moments. Every request the clients saw no answer for is replayed with its Idempotency-Key after the restart.

Then: every acknowledged write is in the database (0 lost), every request wrote exactly once (0 duplicates),
point_totals equal the ledger and the boards equal their rebuild. POINTS_CRASH_REQUESTS sets the number of
requests (``make crash``: 10,000; the PostgreSQL run of ``make test``: 1,000)."""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import requests
import sqlalchemy as sa
from flask_jwt_extended import create_access_token

from points_service.db import db, utcnow
from points_service.domain.boards.audit import rebuild_boards
from points_service.domain.checkin import tokens as rules
from points_service.domain.ledger.totals import rebuild_totals
from points_service.models import Checkin, EntryKind, LedgerEntry, Role
from tests.conftest import PG_URL
from tests.crash.service import Service, crash_schema, service_env
from tests.dbutil import app_on
from tests.factories import make_branch, make_city, make_department, make_member, make_user
from tests.factories.activities import STEP_SECONDS, make_activity, scan_body

pytestmark = [pytest.mark.postgres, pytest.mark.crash]

REQUESTS = int(os.environ.get("POINTS_CRASH_REQUESTS", "1000"))
MEMBERS, ACTIVITIES, CLIENTS = 200, 15, 12
LEASE_SECONDS = 3


@dataclass
class Call:
    kind: str  # adjustment | checkin
    key: str
    path: str
    body: dict
    headers: dict
    member_id: int
    activity: tuple | None = None  # (id, secret) of a check-in's activity
    answer: dict | None = field(default=None)  # the acknowledged response's data
    attempts: int = 0
    rescans: int = 0


@pytest.fixture
def crash_world(tmp_path):
    with crash_schema(PG_URL, f"crash_http_{os.getpid()}") as url:
        app = app_on(url)
        with app.app_context():
            calls = _seed(random.Random(20261206))
        yield app, url, calls
        with app.app_context():
            db.engine.dispose()


def _seed(rng: random.Random) -> list[Call]:
    city = make_city()
    branch = make_branch(make_department(city["north"]))
    members = [make_member(branch, city["north"], city["north_grid"]) for _ in range(MEMBERS)]
    users = [make_user(member=member) for member in members]
    admin = make_user((Role.ADMIN, None), username="crash_admin")
    activities = [make_activity(city["north"], utcnow() - timedelta(minutes=20), hours=4) for _ in range(ACTIVITIES)]
    db.session.commit()

    def bearer(user):
        return {"Authorization": f"Bearer {create_access_token(f'u:{user.id}', expires_delta=timedelta(hours=3))}"}

    admin_headers = bearer(admin)
    member_headers = [bearer(user) for user in users]
    pairs = [(m, a) for m in range(MEMBERS) for a in range(ACTIVITIES)]
    rng.shuffle(pairs)
    calls = []
    for n in range(REQUESTS):
        key = f"crash-{n:06d}-{rng.getrandbits(32):08x}"
        if n % 10 < 3 and pairs:
            m, a = pairs.pop()
            activity = activities[a]
            calls.append(Call("checkin", key, f"/api/v1/activities/{activity.id}/checkins", {}, member_headers[m],
                              members[m].id, (activity.id, activity.checkin_secret)))
        else:
            member = members[rng.randrange(MEMBERS)]
            body = {"subject_type": "member", "subject_id": member.id, "points": 1, "reason": f"崩溃测试 {n}"}
            calls.append(Call("adjustment", key, "/api/v1/adjustments", body, admin_headers, member.id))
    return calls


def _rescan(call: Call) -> None:
    """What the mini-program posts after scanning the organizer's code now. A replay resends the same body
    under the same key; once the code has expired (two steps) the member scans again, under a new key."""
    token = rules.issue_token(call.activity[0], call.activity[1], utcnow(), STEP_SECONDS).token
    call.body = scan_body(token)
    if call.attempts > 1:
        call.key, call.rescans = f"{call.key.split('_')[0]}_{call.rescans + 1}", call.rescans + 1


def _send(service: Service, call: Call) -> str:
    """One attempt: ``acked`` (2xx, or a check-in found already written on a replay), ``busy`` or ``lost``."""
    call.attempts += 1
    if call.kind == "checkin" and not call.body:
        _rescan(call)
    try:
        response = requests.post(service.base + call.path, json=call.body, timeout=30,
                                 headers={**call.headers, "Idempotency-Key": call.key})
    except requests.RequestException:
        return "lost"
    payload = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
    if 200 <= response.status_code < 300:
        call.answer = payload["data"]
        return "acked"
    if call.attempts > 1 and payload.get("code") == "already_checked_in":
        call.answer = {"already": True}  # the first attempt's write committed; its answer was lost with it
        return "acked"
    if payload.get("code") == "checkin_token_invalid" and call.attempts > 1 and call.rescans < 20:
        _rescan(call)  # the code shown when the answer was lost has expired: scan again, post at once
        return _send(service, call)
    if payload.get("code") == "idempotency_in_flight" or response.status_code >= 500:
        return "busy"
    raise AssertionError(f"{call.kind} {call.key}: unexpected {response.status_code} {payload}")


class Killer(threading.Thread):
    """Kills a worker every 1–3 s (the first within 0.5–1.5 s); kills the whole service as soon as the given
    fractions of the requests have been sent. Progress is looked at every 50 ms, so a fast service meets
    both service kills too (a 1,000-request run can take 15 s)."""

    def __init__(self, service: Service, progress, kill_all_at: tuple[float, ...], rng: random.Random) -> None:
        super().__init__(daemon=True)
        self.service, self.progress, self.kill_all_at, self.rng = service, progress, list(kill_all_at), rng
        self.stop, self.worker_kills, self.service_kills = threading.Event(), 0, 0

    def run(self) -> None:
        next_worker_kill = time.monotonic() + self.rng.uniform(0.5, 1.5)
        while not self.stop.wait(0.05):
            if self.kill_all_at and self.progress() >= self.kill_all_at[0]:
                self.kill_all_at.pop(0)
                self.service.kill_all()
                self.service_kills += 1
                time.sleep(self.rng.uniform(0.5, 1.5))
                self.service.start()
            elif time.monotonic() >= next_worker_kill:
                if self.service.kill_worker(self.rng.choice) is not None:
                    self.worker_kills += 1
                next_worker_kill = time.monotonic() + self.rng.uniform(1.0, 3.0)


def test_killed_workers_and_a_killed_service_lose_no_acknowledged_write_and_duplicate_none(crash_world, tmp_path):
    app, url, calls = crash_world
    service = Service(service_env(url, POINTS_IDEMPOTENCY_LEASE_SECONDS=str(LEASE_SECONDS)), tmp_path / "gunicorn.log")
    service.start()
    sent = Counter()
    killer = Killer(service, lambda: sent["n"] / len(calls), (0.35, 0.7), random.Random(7))
    started = time.monotonic()
    try:
        killer.start()

        def first_attempt(call):
            service.up.wait(timeout=120)
            outcome = _send(service, call)
            sent["n"] += 1
            return outcome

        with ThreadPoolExecutor(CLIENTS) as pool:
            first = Counter(pool.map(first_attempt, calls))
        killer.stop.set()
        killer.join()
        unacked = [call for call in calls if call.answer is None]
        replays = _replay_until_acknowledged(service, unacked)
    finally:
        killer.stop.set()
        service.stop()

    figures = {"requests": len(calls), "acknowledged_first_try": first["acked"], "unacknowledged": len(unacked),
               "replay_attempts": replays, "worker_kills": killer.worker_kills,
               "service_kills": killer.service_kills, "seconds": round(time.monotonic() - started, 1)}
    with app.app_context():
        figures.update(_check_every_write_once(calls))
    print("\ncrash figures:", json.dumps(figures))
    assert killer.worker_kills >= 1 and killer.service_kills == 2
    assert figures["lost"] == 0 and figures["duplicated"] == 0


def _replay_until_acknowledged(service: Service, unacked: list[Call]) -> int:
    """The killer restarted the service after its last kill: replay on it."""
    attempts, deadline = 0, time.monotonic() + 300 + len(unacked)
    pending = list(unacked)
    while pending and time.monotonic() < deadline:
        attempts += len(pending)
        with ThreadPoolExecutor(CLIENTS) as pool:
            outcomes = list(pool.map(lambda call: _send(service, call), pending))
        pending = [call for call, outcome in zip(pending, outcomes, strict=True) if outcome != "acked"]
        if pending:
            time.sleep(LEASE_SECONDS / 2)
    assert not pending, f"{len(pending)} request(s) never acknowledged"
    return attempts


def _check_every_write_once(calls: list[Call]) -> dict:
    adjustments = [call for call in calls if call.kind == "adjustment"]
    entries = db.session.execute(sa.select(LedgerEntry.id, LedgerEntry.subject_id, LedgerEntry.reason)
                                 .where(LedgerEntry.kind == EntryKind.ADJUSTMENT)).all()
    by_reason = Counter(reason for _, _, reason in entries)
    entry_ids = {entry_id for entry_id, _, _ in entries}
    lost = sum(1 for call in adjustments if call.answer["id"] not in entry_ids)
    duplicated = sum(count - 1 for count in by_reason.values() if count > 1)
    lost += sum(1 for call in adjustments if by_reason[call.body["reason"]] == 0)

    checkins = [call for call in calls if call.kind == "checkin"]
    rows = set(db.session.execute(sa.select(Checkin.member_id, Checkin.activity_id)).all())
    lost += sum(1 for call in checkins if (call.member_id, call.activity[0]) not in rows)
    duplicated += len(db.session.execute(sa.select(Checkin.id)).all()) - len(rows)
    late = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.source_type == "checkin"))
    totals, boards = rebuild_totals(fix=False), rebuild_boards(fix=False)
    assert len(entries) == len(adjustments) and len(rows) == len(checkins)
    assert totals == [] and boards == []
    return {"lost": lost, "duplicated": duplicated, "adjustment_entries": len(entries), "checkins": len(rows),
            "late_deductions": late, "totals_vs_ledger_differences": len(totals),
            "boards_vs_rebuild_differences": len(boards)}

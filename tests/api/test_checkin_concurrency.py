"""On PostgreSQL: a storm of retried check-ins of one member over HTTP ends in one check-in, one credit, and every
refusal names that check-in."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.checkin import scans as checkin_domain
from points_service.models import Checkin, LedgerEntry
from tests.concurrency import hammer
from tests.factories import auth_header, make_world
from tests.factories.activities import make_activity, scan_body

pytestmark = pytest.mark.postgres
SHARED_KEY = "mini-program-retry-0001"


def test_two_hundred_concurrent_check_ins_make_one_check_in_and_one_entry_per_ledger(app, monkeypatch):
    app.config["RATELIMIT_CHECKIN_PER_MEMBER"] = "1000 per minute"  # one member's 200 retries: not a limits test
    world = make_world()
    activity = make_activity(world["north"], utcnow() - timedelta(minutes=5))
    db.session.commit()
    alice, organizer = auth_header(world["users"]["alice"]), auth_header(world["users"]["community_admin"])
    code_url, url = f"/api/v1/activities/{activity.id}/checkin-code", f"/api/v1/activities/{activity.id}/checkins"
    body = scan_body(app.test_client().get(code_url, headers=organizer).get_json()["data"]["token"])
    keys = [SHARED_KEY if n % 2 == 0 else f"fresh-key-{n:04d}" for n in range(200)]

    def post(key):
        response = app.test_client().post(url, json=body, headers={**alice, "Idempotency-Key": key})
        payload = response.get_json() or {}
        replayed = response.headers.get("Idempotent-Replayed") == "true"
        return response.status_code, replayed, payload.get("code"), (payload.get("data") or {}).get("checkin_id")

    results = hammer(app, [lambda key=key: post(key) for key in keys])

    assert {status for status, *_ in results} <= {201, 409}, Counter(status for status, *_ in results)
    assert sum(1 for status, replayed, *_ in results if status == 201 and not replayed) == 1
    assert {code for status, _, code, _ in results if status == 409} <= {"already_checked_in", "idempotency_in_flight"}
    assert len({checkin_id for status, _, _, checkin_id in results if status == 201}) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Checkin)) == 1

    checkin_id = db.session.scalar(sa.select(Checkin.id))
    # Each one the UNIQUE key turned away, even while the winner was still committing, names the check-in kept.
    refused = [kept for status, _, code, kept in results if status == 409 and code == "already_checked_in"]
    assert refused and set(refused) == {checkin_id}
    later = utcnow() + timedelta(hours=2)
    monkeypatch.setattr(checkin_domain, "utcnow", lambda: later)
    token = app.test_client().get(code_url, headers=organizer).get_json()["data"]["token"]
    outs = hammer(app, [lambda: app.test_client().post(f"/api/v1/checkins/{checkin_id}/checkout",
                                                       json=scan_body(token), headers=alice).status_code] * 20,
                  workers=20)
    assert sorted(set(outs)) == [200, 409] and outs.count(200) == 1
    ledgers = db.session.scalars(sa.select(LedgerEntry.ledger).where(LedgerEntry.source_id == str(checkin_id))).all()
    assert sorted(ledgers) == ["assessment", "redeemable"]

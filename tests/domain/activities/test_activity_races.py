"""On PostgreSQL: cancelling or editing an activity while members check in. Both are allowed only while nobody
has checked in; each ends either done with no check-in, or refused with the check-ins kept — never cancelled or
moved with a check-in made against it as it was."""

from __future__ import annotations

import functools
import time
from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.activities import cancelling
from points_service.domain.activities import signups as activities
from points_service.domain.checkin import scans as checkin
from points_service.domain.errors import ServiceError
from points_service.models import Activity, ActivityStatus, Checkin
from tests.concurrency import hammer
from tests.factories import make_member, make_user, make_world
from tests.factories.activities import draft, make_activity, scan

pytestmark = pytest.mark.postgres
ROUNDS, MEMBERS = 6, 12


def outcome(call):
    try:
        call()
        return "ok"
    except ServiceError as exc:
        return exc.code


@pytest.fixture
def world(app):
    """``MEMBERS`` members and the community's organizer."""
    world = make_world()
    users = [make_user(member=make_member(world["fin1"], world["north"], None, name=f"党员{n}"))
             for n in range(MEMBERS)]
    db.session.commit()
    world["members"] = [principal_for(user) for user in users]
    world["organizer"] = principal_for(world["users"]["community_admin"])
    return world


def new_activity(world) -> Activity:
    """A published activity starting in 20 minutes: check-in is open, an edit or a cancel still allowed."""
    activity = make_activity(world["north"], utcnow() + timedelta(minutes=20))
    db.session.commit()
    return activity


@pytest.fixture
def slow_audit(monkeypatch):
    """The cancel's and the edit's audit row, between their check and their commit, takes 10 ms more: the
    window a check-in must not slip into, widened so that every round has check-ins arriving in it."""
    def slow(real):
        return lambda *args, **kwargs: time.sleep(0.01) or real(*args, **kwargs)

    monkeypatch.setattr(cancelling, "audit", slow(cancelling.audit))
    monkeypatch.setattr(activities, "audit", slow(activities.audit))


def race(app, round_, activity, members, organizer_call) -> tuple[str, list[str]]:
    """The members' check-ins, staggered 2 ms apart, and the organizer's call: 10 ms after the first check-in in
    even rounds (it finds check-ins), 10 ms before it in odd ones (it wins): both outcomes are raced."""
    now, activity_id = utcnow(), activity.id
    lead, organizer_lead = (0.0, 0.01) if round_ % 2 == 0 else (0.01, 0.0)
    scans = [scan(activity, now) for _ in members]
    calls = [lambda n=n, m=m, s=s: time.sleep(lead + n * 0.002) or outcome(lambda: checkin.check_in(m, activity_id, s))
             for n, (m, s) in enumerate(zip(members, scans, strict=True))]
    calls.append(lambda: time.sleep(organizer_lead) or outcome(organizer_call))
    results = hammer(app, calls, workers=len(calls))
    return results.pop(), results


def checkins_of(activity_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Checkin).where(Checkin.activity_id == activity_id))


def test_a_cancel_racing_check_ins_is_done_with_none_or_refused_with_them(app, world, slow_audit):
    seen, members, organizer = set(), world["members"], world["organizer"]
    for round_ in range(ROUNDS):
        activity = new_activity(world)
        cancel = functools.partial(cancelling.cancel_activity, organizer, activity.id, "暴雨预警")
        cancelled, checkins = race(app, round_, activity, members, cancel)
        db.session.expire_all()
        status, kept = db.session.get(Activity, activity.id).status, checkins_of(activity.id)
        assert cancelled in ("ok", "activity_not_cancellable"), (round_, cancelled)
        assert set(checkins) <= {"ok", "activity_cancelled"}, (round_, checkins)
        assert kept == checkins.count("ok"), (round_, kept, checkins)
        if cancelled == "ok":
            assert status == ActivityStatus.CANCELLED and kept == 0, (round_, checkins)
        else:
            assert status == ActivityStatus.PUBLISHED and kept > 0, (round_, checkins)
        seen.add((cancelled, *sorted(set(checkins))))
        db.session.rollback()
    print(f"cancel outcomes over {ROUNDS} rounds: {sorted(seen)}")


def test_an_edit_moving_the_start_racing_check_ins_is_done_with_none_or_refused_with_them(app, world, slow_audit):
    seen, members, organizer = set(), world["members"], world["organizer"]
    for round_ in range(ROUNDS):
        activity = new_activity(world)
        start, moved = activity.starts_at, activity.starts_at + timedelta(days=1)
        edit = functools.partial(activities.edit_activity, organizer, activity.id, draft(world["north"], moved))
        edited, checkins = race(app, round_, activity, members, edit)
        db.session.expire_all()
        starts_at, kept = db.session.get(Activity, activity.id).starts_at, checkins_of(activity.id)
        assert edited in ("ok", "activity_not_editable"), (round_, edited)
        # One that waited for the edit is judged by the activity as edited: its window has not opened yet.
        assert set(checkins) <= {"ok", "outside_time_window"}, (round_, checkins)
        assert kept == checkins.count("ok"), (round_, kept, checkins)
        if edited == "ok":
            assert starts_at == moved and kept == 0, (round_, checkins)
        else:
            assert starts_at == start and kept > 0, (round_, checkins)
        seen.add((edited, *sorted(set(checkins))))
        db.session.rollback()
    print(f"edit outcomes over {ROUNDS} rounds: {sorted(seen)}")

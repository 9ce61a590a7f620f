"""``flask notifications deliver`` sends what is due once (development: the log-only sender) and ``status``
counts the outbox; ``flask jobs run-once`` runs the unclaimed delivery job too."""

from __future__ import annotations

from points_service.db import db
from tests.factories import make_world
from tests.factories.notifications import enqueue, make_grant, on_wechat


def test_deliver_sends_the_due_rows_once_and_status_counts_them(app):
    world = make_world()
    on_wechat(world["users"]["alice"])
    make_grant(world["alice"], available=2)
    db.session.commit()
    enqueue(world["alice"], "a")
    runner = app.test_cli_runner()
    first = runner.invoke(args=["notifications", "deliver"])
    assert first.exit_code == 0 and "sent=1" in first.output
    assert "sent=0" in runner.invoke(args=["notifications", "deliver"]).output
    status = runner.invoke(args=["notifications", "status"]).output
    assert "sent" in status and " 1" in status.split("sent")[1].splitlines()[0]
    enqueue(world["alice"], "b")
    by_job = runner.invoke(args=["jobs", "run-once", "notification_delivery", "--period", "2026-11-01"])
    assert by_job.exit_code == 0 and "'sent': 1" in by_job.output

"""The delivery job against a fake WeChat (pytest-httpserver): the stable token cached and refreshed, WeChat's
error codes mapped to permanent or retried-with-backoff, at most one duplicate after a crash mid-send."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.notifications import delivery as outbox
from points_service.integrations import wechat
from points_service.models import Delivery, DeliveryPause, DeliveryState, SubscriptionGrant
from tests.factories import make_world
from tests.factories.notifications import enqueue, make_grant, on_wechat
from tests.fake_wechat import serve_fake_subscribe, wechat_config

OPENID = "oAlice0000000000000000000001"


@pytest.fixture
def world(app, httpserver):
    wechat.forget_tokens()
    app.config.update(wechat_config(httpserver), WECHAT_DEV_SEND=False)
    world = make_world()
    on_wechat(world["users"]["alice"], OPENID)
    make_grant(world["alice"], available=5)
    db.session.commit()
    world["wechat"] = serve_fake_subscribe(httpserver)
    yield world
    wechat.forget_tokens()


def row(delivery_id: int | None = None) -> Delivery:
    db.session.expire_all()
    statement = sa.select(Delivery).order_by(Delivery.id)
    return db.session.scalars(statement.where(Delivery.id == delivery_id) if delivery_id else statement).first()


def later(minutes: float):
    return utcnow() + timedelta(minutes=minutes)


def test_a_due_message_is_sent_to_the_members_openid_with_its_template_and_page(world):
    enqueue(world["alice"], "record:1:rejected", record_id=1)
    assert outbox.deliver_due() == {"sent": 1, "retry": 0, "deferred": 0, "failed": 0, "permanent_failed": 0}
    (sent,) = world["wechat"].sends
    assert (sent["touser"], sent["template_id"], sent["page"]) == (OPENID, "dev-record-decided",
                                                                   "/pages/report/report")
    assert sent["data"]["thing3"] == {"value": "照片不清晰"}
    delivered = row()
    assert (delivered.state, delivered.attempts, delivered.duplicate_possible) == (DeliveryState.SENT, 1, False)
    assert delivered.sent_at is not None
    assert outbox.deliver_due()["sent"] == 0  # nothing is sent twice


def test_the_stable_token_is_fetched_once_and_reused_across_sends(world):
    enqueue(world["alice"], "a")
    enqueue(world["alice"], "b")
    outbox.deliver_due()
    assert world["wechat"].tokens_issued == 1
    assert [send["access_token"] for send in world["wechat"].sends] == ["token-1", "token-1"]


def test_an_expired_token_is_refreshed_and_the_send_retried_once(world):
    enqueue(world["alice"], "a")
    outbox.deliver_due()
    world["wechat"].valid_token = "rotated-elsewhere"  # our cached token-1 is no longer valid (40001)
    enqueue(world["alice"], "b")
    assert outbox.deliver_due()["sent"] == 1
    assert [send["access_token"] for send in world["wechat"].sends] == ["token-1", "token-1", "token-2"]


@pytest.mark.parametrize("errcode", [43101, 40003])
def test_no_consent_or_a_bad_openid_is_recorded_as_permanent_and_never_retried(world, errcode):
    world["wechat"].script = [errcode]
    enqueue(world["alice"], "a")
    assert outbox.deliver_due()["permanent_failed"] == 1
    failed = row()
    assert (failed.state, failed.last_errcode, failed.attempts) == (DeliveryState.PERMANENT_FAILED, errcode, 1)
    assert outbox.deliver_due(now=later(600))["permanent_failed"] == 0
    assert len(world["wechat"].sends) == 1
    grants = db.session.scalar(sa.select(SubscriptionGrant.available))
    # WeChat says the member holds no grant: ours were stale. A refused message spent none: it is given back.
    assert grants == (0 if errcode == 43101 else 5)


@pytest.mark.parametrize("answer", [-1, "500"])
def test_busy_quota_or_server_errors_are_retried_with_exponential_backoff_then_failed(world, answer):
    world["wechat"].script = [answer] * 10
    enqueue(world["alice"], "a")
    start = utcnow()
    assert outbox.deliver_due(now=start)["retry"] == 1
    first = row()
    assert first.state == DeliveryState.PENDING and first.next_attempt_at == start + timedelta(seconds=60)
    assert outbox.deliver_due(now=start + timedelta(seconds=30))["retry"] == 0  # not due yet
    waits, at = [], start
    for _ in range(5):
        at = row().next_attempt_at
        outbox.deliver_due(now=at)
        waits.append(row().next_attempt_at - at)
    assert waits[:4] == [timedelta(seconds=s) for s in (120, 240, 480, 960)]
    final = row()
    assert (final.state, final.attempts) == (DeliveryState.FAILED, 6)  # max_attempts in the shipped config
    assert final.last_errcode == (-1 if answer == "500" else answer)
    assert len(world["wechat"].sends) == 6
    assert grants_left() == 5  # never delivered: the grant its enqueueing took is given back


SHANGHAI = ZoneInfo("Asia/Shanghai")


def shanghai(day: int, hour: int, minute: int = 0) -> datetime:
    """An instant on a coming day in Shanghai (day 10 is tomorrow there), so the rows enqueued now are due."""
    tomorrow = utcnow().astimezone(SHANGHAI).date() + timedelta(days=1)
    local = datetime.combine(tomorrow + timedelta(days=day - 10), time(hour, minute), tzinfo=SHANGHAI)
    return local.astimezone(UTC)


def enqueued_at(when: datetime) -> None:
    db.session.execute(sa.update(Delivery).values(created_at=when, next_attempt_at=when))
    db.session.commit()


def test_the_daily_quota_defers_to_after_shanghai_midnight_without_spending_a_try_and_stops_the_run(world):
    world["wechat"].script = [0, 45009]
    for key in "abcd":
        enqueue(world["alice"], key)
    enqueued_at(shanghai(10, 9))
    evening = shanghai(10, 15)  # 07:00 UTC; Shanghai's day ends at 16:00 UTC
    assert outbox.deliver_due(now=evening) == {"sent": 1, "retry": 0, "deferred": 1, "failed": 0,
                                               "permanent_failed": 0}
    assert len(world["wechat"].sends) == 2  # after 45009 the run sends nothing more
    sent, deferred, *untouched = rows()
    assert sent.state == DeliveryState.SENT
    assert (deferred.state, deferred.attempts, deferred.last_errcode) == (DeliveryState.PENDING, 0, 45009)
    assert deferred.next_attempt_at == shanghai(11, 0, 5)  # just after the next midnight in Shanghai
    assert [(r.state, r.attempts, r.last_errcode) for r in untouched] == [(DeliveryState.PENDING, 0, None)] * 2
    # Until 00:05 the runs send nothing; then every row waiting is sent.
    assert outbox.deliver_due(now=shanghai(10, 23, 59)) == NOTHING
    assert len(world["wechat"].sends) == 2
    assert outbox.deliver_due(now=shanghai(11, 0, 5))["sent"] == 3
    assert {r.state for r in rows()} == {DeliveryState.SENT}
    assert [r.attempts for r in rows()] == [1, 1, 1, 1]  # a deferral is not one of the transient tries
    assert grants_left() == 5 - 4


NOTHING = {"sent": 0, "retry": 0, "deferred": 0, "failed": 0, "permanent_failed": 0}


def test_after_the_quota_is_used_up_the_days_later_runs_send_nothing_until_the_next_shanghai_day(world):
    world["wechat"].script = [45009]
    for key in "abc":
        enqueue(world["alice"], key)
    enqueued_at(shanghai(10, 9))
    assert outbox.deliver_due(now=shanghai(10, 15))["deferred"] == 1
    for later in (shanghai(10, 15, 1), shanghai(10, 20), shanghai(10, 23, 59), shanghai(11, 0, 4)):
        assert outbox.deliver_due(now=later) == NOTHING
    assert len(world["wechat"].sends) == 1  # the one that met the quota
    assert [(r.state, r.attempts) for r in rows()] == [(DeliveryState.PENDING, 0)] * 3
    world["wechat"].script = [0, 0, 0]
    assert outbox.deliver_due(now=shanghai(11, 0, 5))["sent"] == 3  # the next quota day


def test_the_quota_mark_is_kept_in_the_database_so_a_restarted_deliverer_keeps_to_it(world):
    world["wechat"].script = [45009]
    enqueue(world["alice"], "a")
    enqueue(world["alice"], "b")
    enqueued_at(shanghai(10, 9))
    outbox.deliver_due(now=shanghai(10, 15))
    db.session.remove()  # a new process: nothing carried over but the database
    wechat.forget_tokens()
    assert outbox.deliver_due(now=shanghai(10, 16)) == NOTHING
    assert len(world["wechat"].sends) == 1
    (pause,) = db.session.scalars(sa.select(DeliveryPause)).all()
    assert (pause.paused_until, pause.errcode) == (shanghai(11, 0, 5), 45009)


def test_the_quota_used_up_again_the_next_day_pauses_the_runs_until_the_day_after(world):
    world["wechat"].script = [45009, 0, 45009]
    for key in "abc":
        enqueue(world["alice"], key)
    enqueued_at(shanghai(10, 9))
    outbox.deliver_due(now=shanghai(10, 15))
    assert outbox.deliver_due(now=shanghai(11, 0, 5)) == {**NOTHING, "sent": 1, "deferred": 1}
    assert outbox.deliver_due(now=shanghai(11, 12)) == NOTHING
    assert db.session.scalar(sa.select(DeliveryPause.paused_until)) == shanghai(12, 0, 5)


def test_the_quota_after_midnight_shanghai_defers_to_the_following_midnight(world):
    world["wechat"].script = [45009]
    enqueue(world["alice"], "a")
    enqueued_at(shanghai(10, 23))
    outbox.deliver_due(now=shanghai(11, 0, 30))  # 16:30 UTC the day before: already the 11th in Shanghai
    assert row().next_attempt_at == shanghai(12, 0, 5)


def test_a_delivery_the_quota_keeps_deferring_fails_after_two_days(world):
    world["wechat"].script = [45009] * 5
    enqueue(world["alice"], "a")
    enqueued_at(shanghai(10, 9))
    assert outbox.deliver_due(now=shanghai(10, 9))["deferred"] == 1
    assert outbox.deliver_due(now=shanghai(11, 0, 5))["deferred"] == 1
    assert row().next_attempt_at == shanghai(12, 0, 5)  # still within 2 days of its enqueueing
    assert outbox.deliver_due(now=shanghai(12, 0, 5))["failed"] == 1  # the next midnight is beyond them
    failed = row()
    assert (failed.state, failed.last_errcode, failed.attempts) == (DeliveryState.FAILED, 45009, 0)
    assert grants_left() == 5  # never delivered: the grant is given back


def test_transient_tries_and_quota_deferrals_are_counted_apart(world):
    world["wechat"].script = [-1, 45009, -1]
    enqueue(world["alice"], "a")
    enqueued_at(shanghai(10, 9))
    start = shanghai(10, 9)
    outbox.deliver_due(now=start)
    assert row().attempts == 1
    outbox.deliver_due(now=row().next_attempt_at)
    assert (row().attempts, row().next_attempt_at) == (1, shanghai(11, 0, 5))
    outbox.deliver_due(now=shanghai(11, 0, 5))
    assert (row().attempts, row().next_attempt_at) == (2, shanghai(11, 0, 5) + timedelta(seconds=120))


def rows() -> list[Delivery]:
    db.session.expire_all()
    return list(db.session.scalars(sa.select(Delivery).order_by(Delivery.id)))


def grants_left() -> int:
    db.session.expire_all()
    return db.session.scalar(sa.select(SubscriptionGrant.available))


def test_the_backoff_is_capped():
    settings = {"backoff_seconds": 60, "backoff_cap_seconds": 3600}
    assert outbox.backoff(1, settings) == timedelta(seconds=60)
    assert outbox.backoff(20, settings) == timedelta(seconds=3600)


def test_an_unreachable_wechat_is_transient(world, app):
    from tests.fake_wechat import closed_port_url

    app.config["WECHAT_API_BASE"] = closed_port_url()
    enqueue(world["alice"], "a")
    assert outbox.deliver_due()["retry"] == 1
    assert (row().state, row().last_errcode) == (DeliveryState.PENDING, -1)


class Killed(BaseException):
    """The process dying between WeChat's answer and our mark (not an Exception: nothing catches it)."""


def test_a_job_killed_between_send_and_mark_sends_at_most_one_duplicate_and_records_it(world, monkeypatch):
    enqueue(world["alice"], "a")
    real_mark = outbox.mark

    def killed(*_args, **_kwargs):
        raise Killed()

    monkeypatch.setattr(outbox, "mark", killed)
    with pytest.raises(Killed):
        outbox.deliver_due()
    db.session.rollback()
    assert len(world["wechat"].sends) == 1 and row().state == DeliveryState.SENDING
    monkeypatch.setattr(outbox, "mark", real_mark)
    assert outbox.deliver_due()["sent"] == 0  # within the lease: another sender may still be at it
    assert outbox.deliver_due(now=later(6))["sent"] == 1  # past the 5-minute lease: re-sent once
    resent = row()
    assert (resent.state, resent.attempts, resent.duplicate_possible) == (DeliveryState.SENT, 2, True)
    assert len(world["wechat"].sends) == 2
    outbox.deliver_due(now=later(60))
    assert len(world["wechat"].sends) == 2


def test_a_row_interrupted_twice_is_failed_instead_of_sent_a_third_time(world, monkeypatch):
    enqueue(world["alice"], "a")

    def killed(*_args, **_kwargs):
        raise Killed()

    monkeypatch.setattr(outbox, "mark", killed)
    with pytest.raises(Killed):
        outbox.deliver_due()
    db.session.rollback()
    with pytest.raises(Killed):
        outbox.deliver_due(now=later(6))
    db.session.rollback()
    assert outbox.deliver_due(now=later(12))["failed"] == 1
    failed = row()
    assert (failed.state, failed.duplicate_possible) == (DeliveryState.FAILED, True)
    assert "不再发送" in failed.last_error
    assert len(world["wechat"].sends) == 2
    assert grants_left() == 4  # a send that may have been accepted keeps its grant spent


def test_a_member_without_wechat_is_recorded_as_permanent_without_calling_wechat(world):
    enqueue(world["bob"], "a")  # no grant: inbox only
    make_grant(world["bob"])
    enqueue(world["bob"], "b")
    assert outbox.deliver_due()["permanent_failed"] == 1
    assert row().last_error == "党员未绑定微信" and world["wechat"].sends == []
    bobs = sa.select(SubscriptionGrant.available).where(SubscriptionGrant.member_id == world["bob"].id)
    assert db.session.scalar(bobs) == 1  # the grant the delivery took is given back: nothing was sent


def test_development_mode_logs_the_message_and_marks_it_sent_without_calling_wechat(world, app):
    app.config["WECHAT_DEV_SEND"] = True
    enqueue(world["alice"], "a")
    assert outbox.deliver_due()["sent"] == 1
    assert world["wechat"].sends == [] and row().state == DeliveryState.SENT


def test_the_access_token_never_appears_in_the_request_log(world, caplog, monkeypatch):
    from tests.fake_wechat import enable_client_logging

    enable_client_logging(monkeypatch)
    caplog.set_level("DEBUG", logger="urllib3.connectionpool")
    enqueue(world["alice"], "a")
    outbox.deliver_due()
    ours = " ".join(r.getMessage() for r in caplog.records if r.name.startswith(("urllib3", "points_service")))
    assert "token-1" not in ours and "access_token=***" in ours  # (the fake server's own log is not ours)

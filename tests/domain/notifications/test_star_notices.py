"""业务之星 runs tell their winners, in the inbox: publishing, that each is in publicity and until when; an upheld
objection, the winners it removes that the result changed."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.domain import notifications
from points_service.domain.access import principal_for
from points_service.domain.stars import runs as stars
from points_service.models import Delivery, InboxMessage, StarRun, StarRunStatus, SubscriptionGrant
from tests.domain.stars.test_runs import published, star_member, world  # noqa: F401  (the stars world fixture)
from tests.factories.ledger import local
from tests.factories.notifications import make_grant


def test_publishing_a_run_tells_each_winner_until_when_it_is_public(world):  # noqa: F811
    star_member(world["alice"], 4, 3)
    star_member(world["dave"], 4, 3)
    star_member(world["erin"], 1, 1)  # not selected
    run = published(world)
    notified = db.session.execute(sa.select(InboxMessage.member_id, InboxMessage.body)
                                  .where(InboxMessage.event == "star_published")).all()
    assert sorted(member_id for member_id, _ in notified) == sorted([world["alice"].id, world["dave"].id])
    assert f"公示至 {run.publicity_ends_on.isoformat()}" in notified[0][1]


def test_a_winner_brought_in_by_an_upheld_objection_is_told_until_when_he_is_public(world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, True, now=local(2026, 10, 13))

    notified = dict(db.session.execute(sa.select(InboxMessage.member_id, InboxMessage.body)
                                       .where(InboxMessage.event == "star_published")).all())
    assert sorted(notified) == sorted([world["alice"].id, world["dave"].id, world["erin"].id])
    assert "公示至 2026-10-20" in notified[world["erin"].id]  # the window restarted for him


def removed_notices() -> list[tuple[int, str, str, str]]:
    return [tuple(row) for row in db.session.execute(
        sa.select(InboxMessage.member_id, InboxMessage.source_key, InboxMessage.title, InboxMessage.body)
        .where(InboxMessage.event == "star_removed").order_by(InboxMessage.member_id))]


def uphold(world, member, *, decided_on=13):  # noqa: F811
    """Bob objects to ``member`` on Monday 2026-10-12 with a reason; the admin upholds it, with a comment, on
    ``decided_on`` (a day of October 2026)."""
    objection = stars.raise_objection(principal_for(world["users"]["bob"]), run_id(), member.id, "虚报服务时长",
                                      now=local(2026, 10, 12))
    return stars.decide_objection(world["admin"], run_id(), objection.id, True, "经核实属实",
                                  now=local(2026, 10, decided_on))


def run_id() -> int:
    return db.session.scalar(sa.select(StarRun.id).where(StarRun.status == StarRunStatus.PUBLISHED))


def test_a_winner_removed_by_an_upheld_objection_is_told_the_quarters_result_changed_and_nothing_of_the_objection(
        world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    uphold(world, world["alice"])

    ((member_id, source_key, title, body),) = removed_notices()
    assert (member_id, source_key) == (world["alice"].id, f"star_run:{run.id}:removed")
    assert "2026年第3季度" in body and "公示" in body and "变更" in title + body
    for secret in ("虚报服务时长", "经核实属实", world["bob"].name):  # neither why nor who objected
        assert secret not in title + body


def test_telling_a_removed_winner_again_writes_no_second_message(world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    uphold(world, world["alice"])
    notifications.star_winners_removed(run, [world["alice"].id])  # a replay of the same removal
    db.session.commit()
    assert len(removed_notices()) == 1


def test_a_removal_is_told_in_the_inbox_only_and_spends_no_grant(world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    make_grant(world["alice"], "star_published", available=2)
    db.session.commit()
    published(world)  # the publication's message takes one grant
    uphold(world, world["alice"])

    ((_, source_key, _, _),) = removed_notices()
    queued = db.session.scalars(sa.select(InboxMessage.source_key).join(Delivery, Delivery.message_id ==
                                                                        InboxMessage.id)).all()
    assert source_key not in queued
    assert db.session.scalar(sa.select(SubscriptionGrant.available)) == 1


def test_an_upheld_objection_against_a_member_who_did_not_win_and_a_dismissed_one_tell_nobody_he_was_removed(
        world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    uphold(world, world["erin"])  # not a winner
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, False, now=local(2026, 10, 13))
    assert removed_notices() == []


def extension_notices() -> list[tuple[int, str, str]]:
    return [tuple(row) for row in db.session.execute(
        sa.select(InboxMessage.member_id, InboxMessage.source_key, InboxMessage.body)
        .where(InboxMessage.event == "star_publicity_extended").order_by(InboxMessage.id))]


def test_when_a_winner_brought_in_restarts_the_window_the_winners_still_on_it_are_told_the_new_end_date(
        world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    make_grant(world["dave"], "star_published", available=2)
    db.session.commit()
    run = published(world)  # ends Friday 2026-10-16
    uphold(world, world["alice"])  # erin comes in on Tuesday 10-13: the window now ends 10-20

    ((member_id, source_key, body),) = extension_notices()  # not erin (told as at publication), not alice
    assert (member_id, source_key) == (world["dave"].id, f"star_run:{run.id}:extended:2026-10-20")
    assert "2026-10-20" in body
    sent = db.session.scalar(sa.select(Delivery.data).join(InboxMessage, InboxMessage.id == Delivery.message_id)
                             .where(InboxMessage.event == "star_publicity_extended"))
    assert sent == {"thing1": {"value": "2026-Q3 社区"}, "phrase2": {"value": "公示延长"},
                    "date3": {"value": "2026-10-20"}}  # 评选结果通知, as at publication


def test_each_later_extension_tells_the_winners_on_it_again_and_a_replay_writes_nothing_more(world):  # noqa: F811
    for name, hours in (("alice", 5), ("dave", 4), ("erin", 3), ("carol", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    uphold(world, world["alice"])  # erin in on 10-13: to 10-20
    uphold(world, world["dave"], decided_on=14)  # carol in on 10-14: to 10-21
    notifications.star_publicity_extended(run, {world["carol"].id})  # the second extension again
    db.session.commit()

    assert [(member_id, key.rsplit(":", 1)[1]) for member_id, key, _ in extension_notices()] == [
        (world["dave"].id, "2026-10-20"), (world["erin"].id, "2026-10-21")]


def test_a_window_restarted_again_the_same_day_ends_as_before_and_tells_nobody_twice(world):  # noqa: F811
    for name, hours in (("alice", 5), ("dave", 4), ("erin", 3), ("carol", 2)):
        star_member(world[name], 5, hours)
    published(world)
    uphold(world, world["alice"])  # erin in on 10-13: to 10-20; dave told
    uphold(world, world["dave"])  # carol in the same day: still 10-20, erin was told it as a newcomer
    assert [member_id for member_id, _, _ in extension_notices()] == [world["dave"].id]


def test_an_upheld_objection_that_brings_nobody_in_extends_nothing(world):  # noqa: F811
    for name, hours in (("alice", 4), ("dave", 3)):
        star_member(world[name], 5, hours)
    published(world)
    uphold(world, world["alice"])
    assert extension_notices() == []

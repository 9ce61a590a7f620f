"""Award points and withdrawals: a star or flag credited under the policy's optional events, withdrawn with a
reason, marked (never removed) in the lists, and its points reversed exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.annual.facts import YearWindow, stars_won
from points_service.domain.awards import withdrawals
from points_service.domain.errors import Forbidden
from points_service.domain.ledger.totals import total_of
from points_service.domain.red_flags import awards as red_flags
from points_service.domain.stars import reading as stars_reading
from points_service.domain.stars import runs as stars
from points_service.models import (
    AuditEntry,
    AwardWithdrawal,
    EntryKind,
    LedgerEntry,
    LedgerName,
    StarCandidate,
    SubjectType,
)
from tests.domain.red_flags.test_awards import report as report_h1
from tests.domain.stars.test_runs import AFTER_Q3, Q3, star_member
from tests.factories import make_member, make_world
from tests.factories.ledger import install_policy, local

FINAL_DAY = local(2026, 10, 30)


def with_award_items(document):
    document["stars"].update(quota=2)
    base = document["items"]["member.commend_city"]
    document["items"]["member.star"] = {**base, "name": "当选业务之星", "points": 6}
    document["items"]["org.red_flag"] = {**document["items"]["org.full_attendance"], "name": "获得流动红旗",
                                         "points": 4, "caps": {}}
    document["events"].update(star_award="member.star", red_flag_award="org.red_flag")


@pytest.fixture
def world(app):
    install_policy(with_award_items)
    world = make_world()
    world["dave"] = make_member(world["fin1"], world["north"], name="dave")
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def finalized_run(world):
    star_member(world["alice"], 3, 4)
    run = stars.propose_star_run(world["admin"], Q3, now=AFTER_Q3)
    stars.publish_star_run(world["admin"], run.id, now=AFTER_Q3)
    return stars.finalize_star_run(world["admin"], run.id, now=FINAL_DAY)


def winner_row(run, member) -> StarCandidate:
    return db.session.scalar(sa.select(StarCandidate).where(StarCandidate.run_id == run.id,
                                                            StarCandidate.member_id == member.id))


def entries_of(subject_type, subject_id, item_code) -> list[LedgerEntry]:
    return list(db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.subject_type == subject_type, LedgerEntry.subject_id == subject_id,
        LedgerEntry.item_code == item_code).order_by(LedgerEntry.id)))


def assessment(member, period="2026-10") -> Decimal:
    return total_of(SubjectType.MEMBER, member.id, LedgerName.ASSESSMENT, period).net


def test_finalizing_a_run_credits_each_winner_once_under_the_policys_star_item(world):
    run = finalized_run(world)
    [entry] = entries_of(SubjectType.MEMBER, world["alice"].id, "member.star")
    assert (entry.kind, entry.points, entry.source_id) == (EntryKind.AWARD, Decimal(6),
                                                           f"star:{winner_row(run, world['alice']).id}")
    assert assessment(world["alice"]) == Decimal(6)


def test_withdrawals_reverse_exactly_what_was_credited_once(world):
    run = finalized_run(world)
    row = winner_row(run, world["alice"])
    withdrawal = withdrawals.withdraw_star(world["admin"], row.id, "材料不实", now=local(2026, 11, 2))
    assert withdrawal.reversed_entries == 1
    [credited, reversal] = entries_of(SubjectType.MEMBER, world["alice"].id, "member.star")
    assert (reversal.kind, reversal.reverses_id, reversal.points) == (EntryKind.REVERSAL, credited.id, Decimal(-6))
    assert assessment(world["alice"]) + assessment(world["alice"], "2026-11") == 0
    written = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
    with pytest.raises(withdrawals.AlreadyWithdrawn):
        withdrawals.withdraw_star(world["admin"], row.id, "再次撤销")
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == written
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AwardWithdrawal)) == 1


def test_a_withdrawn_star_stays_on_the_public_list_marked_withdrawn_with_its_reason(world):
    run = finalized_run(world)
    row = winner_row(run, world["alice"])
    withdrawals.withdraw_star(world["admin"], row.id, "材料不实", now=local(2026, 11, 2))
    [shown] = stars_reading.describe_candidates(db.session.scalars(
        stars_reading.published_stars(world["admin"], Q3)).all())
    assert (shown["id"], shown["withdrawn"], shown["withdrawn_reason"]) == (row.id, True, "材料不实")
    assert shown["withdrawn_at"] == local(2026, 11, 2)
    audit = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "star.withdraw"))
    assert audit.detail["reason"] == "材料不实" and audit.detail["points"] == ["-6.00"]


def test_a_star_withdrawn_during_publicity_is_never_credited_at_finalization(world):
    star_member(world["alice"], 3, 4)
    run = stars.propose_star_run(world["admin"], Q3, now=AFTER_Q3)
    stars.publish_star_run(world["admin"], run.id, now=AFTER_Q3)
    withdrawal = withdrawals.withdraw_star(world["admin"], winner_row(run, world["alice"]).id, "公示期内撤销")
    assert withdrawal.reversed_entries == 0
    stars.finalize_star_run(world["admin"], run.id, now=FINAL_DAY)
    assert entries_of(SubjectType.MEMBER, world["alice"].id, "member.star") == []


def test_only_winners_of_published_or_finalized_runs_can_be_withdrawn_and_only_by_admins(world):
    star_member(world["alice"], 3, 4)
    run = stars.propose_star_run(world["admin"], Q3, now=AFTER_Q3)
    with pytest.raises(withdrawals.NotWithdrawable):  # only proposed
        withdrawals.withdraw_star(world["admin"], winner_row(run, world["alice"]).id, "理由")
    stars.publish_star_run(world["admin"], run.id, now=AFTER_Q3)
    with pytest.raises(withdrawals.NotWithdrawable):  # not a winner
        withdrawals.withdraw_star(world["admin"], winner_row(run, world["bob"]).id, "理由")
    with pytest.raises(Forbidden):
        withdrawals.withdraw_star(principal_for(world["users"]["alice"]), winner_row(run, world["alice"]).id, "理由")


def test_a_withdrawal_is_append_only(world):
    run = finalized_run(world)
    withdrawals.withdraw_star(world["admin"], winner_row(run, world["alice"]).id, "材料不实")
    with pytest.raises(DatabaseError):
        db.session.execute(sa.update(AwardWithdrawal).values(reason="改写"))
        db.session.flush()
    db.session.rollback()


@pytest.fixture
def flag(world):
    report_h1(world["alice"], world["bob"], world["carol"], world["dave"])
    star_member(world["carol"], 3, 4)  # 教育一支部 has the best per-capita points
    [award] = red_flags.award_red_flags(world["admin"], "2026-Q3", now=AFTER_Q3)
    assert award.organization_id == world["edu1"].id
    return award


def test_a_red_flag_credits_its_holder_and_its_withdrawal_reverses_that_once(world, flag):
    [credited] = entries_of(SubjectType.ORGANIZATION, world["edu1"].id, "org.red_flag")
    assert (credited.points, credited.source_id) == (Decimal(4), f"red_flag:{flag.id}")
    withdrawal = withdrawals.withdraw_red_flag(world["admin"], flag.id, "弄虚作假", now=local(2026, 11, 2))
    assert withdrawal.reversed_entries == 1
    with pytest.raises(withdrawals.AlreadyWithdrawn):
        withdrawals.withdraw_red_flag(world["admin"], flag.id, "再次撤销")
    [_, reversal] = entries_of(SubjectType.ORGANIZATION, world["edu1"].id, "org.red_flag")
    assert (reversal.reverses_id, reversal.points) == (credited.id, Decimal(-4))
    [shown] = red_flags.describe_awards(red_flags.list_red_flags(world["admin"], Q3))
    assert (shown["withdrawn"], shown["withdrawn_reason"], shown["organization"]["id"]) == (
        True, "弄虚作假", world["edu1"].id)


def test_a_withdrawn_star_is_not_counted_as_won_in_the_annual_statement(world):
    run = finalized_run(world)
    assert stars_won(YearWindow.of(2026), utcnow()) == {world["alice"].id: 1}
    withdrawals.withdraw_star(world["admin"], winner_row(run, world["alice"]).id, "材料不实")
    assert stars_won(YearWindow.of(2026), utcnow()) == {}

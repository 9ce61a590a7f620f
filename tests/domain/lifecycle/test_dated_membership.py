"""Organization-level counts follow the dated membership: a member counts for the periods that ended while he
belonged, and a closed period's head count, per-capita and flag figures do not change when he leaves later."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.annual.facts import YearWindow, members_at_cutoff
from points_service.domain.ledger.reading import member_rollup
from points_service.domain.lifecycle.membership import branch_at, placed_at
from points_service.domain.lifecycle.status import deactivate_member, reactivate_member
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.periods import LOCAL_TZ, parse_period
from points_service.domain.policy import policy_in_force
from points_service.domain.red_flags import awards as red_flags
from points_service.models import Affiliation, DeactivationReason, Member, Report, ReportStatus, SubjectType
from tests.factories import make_member, make_world
from tests.factories.boards import entry
from tests.factories.ledger import install_policy, local

LONG_AGO = datetime(2024, 1, 1, tzinfo=LOCAL_TZ)
NOW = datetime(2026, 12, 6, 10, tzinfo=LOCAL_TZ)
Q3, Q4 = parse_period("2026-Q3"), parse_period("2026-Q4")


@pytest.fixture
def world(app):
    install_policy()
    world = make_world()
    db.session.execute(sa.update(Affiliation).values(valid_from=LONG_AGO))
    entry(world["alice"], 6, local(2026, 8, 3, 9))
    entry(world["alice"], 2, local(2026, 11, 3, 9))
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def leave(world, who="alice", on=date(2026, 11, 10)):
    deactivate_member(world["admin"], world[who].id, DeactivationReason.RESIGNED, "离职", on, now=NOW)


def rollup(org, period):
    figures = member_rollup(org, period, now=NOW)
    return figures["member_count"], figures["total_points"], figures["per_capita_points"]


def test_a_member_who_left_mid_quarter_counts_for_the_quarters_that_ended_while_he_belonged(world):
    fin1 = world["fin1"]
    before_q3 = rollup(fin1, Q3)
    assert before_q3 == (1, Decimal(6), Decimal(6))
    leave(world)
    assert rollup(fin1, Q3) == before_q3  # a closed period: unchanged
    assert rollup(fin1, parse_period("2026-10"))[0] == 1  # October ended before he left
    assert rollup(fin1, Q4) == (0, Decimal(0), None)  # the quarter he left in: not at its end (now)


def test_a_transfer_keeps_closed_quarters_in_the_old_branch_and_the_open_one_in_the_new(world):
    transfer(world["admin"], world["alice"].id, branch_id=world["fin2"].id, effective_on=date(2026, 11, 10), now=NOW)
    assert rollup(world["fin1"], Q3)[0] == 1 and rollup(world["fin2"], Q3)[0] == 1  # bob was always in fin2
    assert rollup(world["fin1"], Q4)[0] == 0 and rollup(world["fin2"], Q4)[:2] == (2, Decimal(2))


def test_a_closed_quarters_flag_figures_do_not_change_when_someone_leaves_later(world):
    for name in ("alice", "bob", "carol"):
        member = world[name]
        db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                              half="2026-H1", status=ReportStatus.CONFIRMED, decided_at=local(2026, 3, 2)))
    db.session.commit()
    [award] = red_flags.award_red_flags(world["admin"], "2026-Q3", now=local(2026, 10, 9))
    before = {f.organization_id: f for f in red_flags.gather_branch_facts(Q3, policy_in_force(Q3.last_instant))}
    leave(world)
    after = {f.organization_id: f for f in red_flags.gather_branch_facts(Q3, policy_in_force(Q3.last_instant))}
    assert after == before and after[world["fin1"].id].members == 1
    assert red_flags.verify_red_flag_award(award)


def test_the_annual_head_count_of_a_closed_year_keeps_a_member_who_left_the_next_year(world):
    window = YearWindow.of(2025)
    before = members_at_cutoff(window)
    assert before[world["alice"].id] == (world["fin1"].id, world["north"].id)
    leave(world)
    assert members_at_cutoff(window) == before


def test_a_member_reactivated_later_does_not_count_for_the_periods_that_ended_while_he_was_gone(world):
    fin1 = world["fin1"]
    leave(world, on=date(2026, 6, 10))
    before = rollup(fin1, Q3), rollup(fin1, parse_period("2026-10"))
    assert before[0][0] == 0
    [award] = red_flags.award_red_flags(world["admin"], "2026-Q3", now=local(2026, 10, 9))
    reactivate_member(world["admin"], world["alice"].id, "返聘", now=NOW)
    assert (rollup(fin1, Q3), rollup(fin1, parse_period("2026-10"))) == before
    assert world["alice"].id in {row.member_id for row in db.session.execute(placed_at(NOW + timedelta(seconds=1)))}
    assert red_flags.verify_red_flag_award(award)


def test_a_member_enrolled_now_does_not_count_for_the_periods_that_ended_before(world):
    before = rollup(world["fin1"], Q3)
    newcomer = make_member(world["fin1"], world["north"], since=NOW)
    db.session.commit()
    assert rollup(world["fin1"], Q3) == before
    assert newcomer.id in {row.member_id for row in db.session.execute(placed_at(NOW + timedelta(seconds=1)))}


def test_a_member_without_any_affiliation_belongs_where_his_row_says(world):
    db.session.execute(sa.delete(Affiliation).where(Affiliation.member_id == world["bob"].id))
    placed = {row.member_id: row.branch_id for row in db.session.execute(placed_at(local(2025, 6, 30, 12)))}
    assert placed[world["bob"].id] == world["bob"].branch_id  # a roster loaded before affiliations were kept


def test_placing_one_member_in_hand_agrees_with_placing_them_all_in_sql(world):
    transfer(world["admin"], world["bob"].id, branch_id=world["edu1"].id, effective_on=date(2026, 10, 1), now=NOW)
    leave(world, on=date(2026, 9, 10))
    reactivate_member(world["admin"], world["alice"].id, now=local(2026, 10, 20, 9))
    make_member(world["fin1"], world["north"], since=local(2026, 11, 1))
    db.session.execute(sa.delete(Affiliation).where(Affiliation.member_id == world["carol"].id))
    members = {m.id: m for m in db.session.scalars(sa.select(Member))}
    affiliations = list(db.session.scalars(sa.select(Affiliation)))
    for at in (local(2026, 9, 30, 12), local(2026, 10, 15, 12), local(2026, 11, 30, 12), NOW):
        in_sql = {row.member_id: row.branch_id for row in db.session.execute(placed_at(at))}
        one_by_one = {member_id: branch_at([a for a in affiliations if a.member_id == member_id], member, at)
                      for member_id, member in members.items()}
        assert in_sql == {member_id: branch for member_id, branch in one_by_one.items() if branch is not None}

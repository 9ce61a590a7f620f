"""流动红旗 against the database: gates (report rate, unexcused absences), the per-capita ranking, 首次/保旗/夺旗,
no eligible holder, idempotent frozen awards, verification and the scheduled job."""

from __future__ import annotations

from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.awards import withdrawals
from points_service.domain.errors import Forbidden, ValidationFailed
from points_service.domain.ledger.corrections import reverse_entry
from points_service.domain.ledger.credit import award
from points_service.domain.periods import parse_period
from points_service.domain.policy import policy_in_force
from points_service.domain.red_flags import awards as red_flags
from points_service.domain.reports.rates import report_rate
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import RedFlagAward, RedFlagCandidate, RedFlagKind, Report, ReportStatus, SubjectType
from tests.factories import make_member, make_world
from tests.factories.ledger import install_policy, local, member_fact, org_fact

AFTER_Q3 = local(2026, 10, 9)


@pytest.fixture
def world(app):
    world = make_world()
    world["dave"] = make_member(world["fin1"], world["north"], name="dave")
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def report(*members, decided_at=None):
    decided_at = decided_at or local(2026, 3, 2)
    for member in members:
        db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                              half="2026-H1", status=ReportStatus.CONFIRMED, decided_at=decided_at))
    db.session.commit()


def earn(member, item="member.commend_city", *, month=8, day=3, year=2026):
    return award(member_fact(member, item), at=local(year, month, day, 9))


def flags(world, period="2026-Q3", now=AFTER_Q3):
    return red_flags.award_red_flags(world["admin"], period, now=now)


def candidate(award_row, org) -> RedFlagCandidate:
    return db.session.scalar(sa.select(RedFlagCandidate).where(RedFlagCandidate.award_id == award_row.id,
                                                               RedFlagCandidate.organization_id == org.id))


def codes(award_row, org) -> list[str]:
    return [r["code"] for r in candidate(award_row, org).reasons]


@pytest.fixture
def reported_world(world):
    report(world["alice"], world["bob"], world["carol"], world["dave"])
    earn(world["alice"])  # 财政一支部: 10 points over 2 members = 5.00
    earn(world["bob"], "member.commend_district")  # 财政二支部: 5.00 over 1 (report rate ties: id decides)
    earn(world["carol"], "member.commend_district")
    earn(world["carol"], "member.commend_community", day=4)  # 教育一支部: 8.00
    return world


def test_the_branch_with_the_best_per_capita_points_holds_the_flag_of_its_district_first_time(reported_world):
    world = reported_world
    [flag] = flags(world)
    assert flag.scope_key == f"district:{world['district'].id}" and flag.scope_region_id == world["district"].id
    assert (flag.organization_id, flag.kind, flag.score) == (world["edu1"].id, RedFlagKind.FIRST, Decimal(8))
    assert (flag.report_rate_bp, flag.unexcused_absences, flag.previous_holder_id) == (10000, 0, None)
    fin1 = candidate(flag, world["fin1"])
    assert (fin1.members, fin1.reported, fin1.score, fin1.position) == (2, 2, Decimal(5), 2)
    assert candidate(flag, world["fin2"]).position == 3  # same score as 财政一支部, larger id
    assert codes(flag, world["edu1"]) == ["holder"]


def test_a_branch_below_the_report_rate_cannot_win(world):
    report(world["alice"], world["bob"], world["dave"])
    report(world["carol"], decided_at=local(2026, 10, 2))  # confirmed after the cutoff
    earn(world["carol"])
    earn(world["bob"], "member.commend_community")
    [flag] = flags(world)
    assert flag.organization_id == world["fin2"].id
    assert codes(flag, world["edu1"]) == ["low_report_rate"]
    assert candidate(flag, world["edu1"]).reasons[0]["message"] == "党员报到率 0.00%，低于 95.00%"


def test_the_report_rate_is_the_one_the_secretary_sees(reported_world):
    world = reported_world
    extra = make_member(world["fin1"], world["north"], name="未报到")
    db.session.commit()
    [flag] = flags(world)
    assert Decimal(candidate(flag, world["fin1"]).report_rate_bp) / 10000 == report_rate(world["fin1"], "2026-H2")
    assert codes(flag, world["fin1"]) == ["low_report_rate"] and extra.id


def test_an_unexcused_absence_excludes_a_branch_unless_reversed_before_the_cutoff(reported_world):
    world = reported_world
    [no_show] = earn(world["carol"], "member.no_show", day=20)
    [flag] = flags(world)
    assert flag.organization_id == world["fin1"].id and codes(flag, world["edu1"]) == ["absences"]
    assert candidate(flag, world["edu1"]).unexcused_absences == 1

    reverse_entry(world["admin"], no_show.id, "请假已批准", at=local(2026, 9, 30))
    facts = red_flags.gather_branch_facts(parse_period("2026-Q3"), policy_in_force(local(2026, 9, 30)))
    assert {f.organization_id: f.absences for f in facts}[world["edu1"].id] == 0


def test_a_department_missing_a_community_meeting_counts_against_its_branches(reported_world):
    world = reported_world
    award(org_fact(world["education"], "org.meeting_absence"), at=local(2026, 9, 3))
    [flag] = flags(world)
    assert codes(flag, world["edu1"]) == ["absences"] and flag.organization_id == world["fin1"].id


def test_last_periods_holder_winning_again_retains_the_flag_and_another_winner_captures_it(reported_world):
    world = reported_world
    [q3] = flags(world)
    earn(world["carol"], month=11)
    [q4] = flags(world, "2026-Q4", now=local(2027, 1, 2))
    assert (q4.organization_id, q4.kind, q4.previous_holder_id) == (world["edu1"].id, RedFlagKind.RETAINED,
                                                                    world["edu1"].id)
    earn(world["bob"], month=2, year=2027)
    [q1] = flags(world, "2027-Q1", now=local(2027, 4, 2))
    assert (q1.organization_id, q1.kind, q1.previous_holder_id) == (world["fin2"].id, RedFlagKind.CAPTURED,
                                                                    world["edu1"].id)
    assert q3.kind == RedFlagKind.FIRST


@pytest.mark.parametrize("q4_winner", ["edu1", "fin2"])
def test_after_a_withdrawn_flag_the_next_holder_is_a_first_holder(reported_world, q4_winner):
    world = reported_world
    [q3] = flags(world)
    assert q3.organization_id == world["edu1"].id
    withdrawals.withdraw_red_flag(world["admin"], q3.id, "违纪", now=local(2026, 10, 20))
    earn(world["carol"] if q4_winner == "edu1" else world["bob"], month=11)
    [q4] = flags(world, "2026-Q4", now=local(2027, 1, 2))
    assert (q4.organization_id, q4.kind, q4.previous_holder_id) == (world[q4_winner].id, RedFlagKind.FIRST, None)
    assert red_flags.verify_red_flag_award(q4)


def test_without_an_eligible_branch_nobody_holds_the_flag_and_the_reason_is_recorded(world):
    earn(world["alice"])
    [flag] = flags(world)
    assert flag.organization_id is None and flag.kind is None and flag.candidate_count == 3
    assert flag.reason == "没有符合条件的党支部，本期流动红旗空缺"
    described = red_flags.describe_awards([flag])[0]
    assert described["organization"] is None and described["reason"] == flag.reason


def test_awarding_a_period_again_changes_nothing_and_awards_are_frozen(reported_world):
    world = reported_world
    [flag] = flags(world)
    earn(world["bob"], day=9)
    earn(world["bob"], month=9)
    [again] = flags(world)
    assert (again.id, again.organization_id, again.checksum) == (flag.id, flag.organization_id, flag.checksum)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RedFlagAward)) == 1
    for statement in (sa.update(RedFlagAward).values(organization_id=None), sa.delete(RedFlagCandidate)):
        with pytest.raises(DatabaseError):
            db.session.execute(statement)
        db.session.rollback()


def test_an_award_recomputed_at_its_cutoff_has_the_same_checksum(reported_world):
    world = reported_world
    [flag] = flags(world)
    earn(world["bob"], month=10, day=5)  # after the cutoff
    assert red_flags.verify_red_flag_award(flag)


def test_a_city_wide_scope_has_one_holder_for_the_whole_city(app):
    install_policy(lambda doc: doc["red_flag"].update(scope="city", period="month"))
    world = make_world()
    report(world["alice"], world["bob"], world["carol"])
    earn(world["bob"], month=9)
    admin = principal_for(world["users"]["admin"])
    [flag] = red_flags.award_red_flags(admin, "2026-09", now=AFTER_Q3)
    assert (flag.scope_key, flag.scope_region_id, flag.organization_id) == ("city", world["city"].id,
                                                                            world["fin2"].id)
    with pytest.raises(ValidationFailed):
        red_flags.award_red_flags(admin, "2026-Q3", now=AFTER_Q3)


def test_an_open_period_cannot_be_awarded_and_only_admins_award(world):
    with pytest.raises(red_flags.PeriodNotEnded):
        flags(world, "2026-Q4")
    with pytest.raises(Forbidden):
        red_flags.award_red_flags(principal_for(world["users"]["community_admin"]), "2026-Q3", now=AFTER_Q3)


def test_the_scheduled_job_awards_the_closed_period_as_the_system(reported_world):
    run = run_job(JOBS_BY_ID["red_flag_award"], parse_period("2026-Q3"))
    assert run.result == {"awards": 1, "holders": 1}
    flag = db.session.scalar(sa.select(RedFlagAward))
    assert flag.created_by_id is None and flag.organization_id == reported_world["edu1"].id

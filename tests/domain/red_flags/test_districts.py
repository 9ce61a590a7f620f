"""流动红旗 districts follow the pairings in force at the period's cutoff: a department re-paired into another
district afterwards leaves the period's awards — written before the re-pairing or after it — where they were."""

from __future__ import annotations

import pytest

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.periods import parse_period
from points_service.domain.policy import policy_in_force
from points_service.domain.red_flags import awards as red_flags
from points_service.domain.reports import reporting as reports
from points_service.models import RegionLevel, Role
from tests.domain.red_flags.test_awards import AFTER_Q3, earn, flags, report
from tests.factories import make_member, make_region, make_user, make_world
from tests.factories.ledger import local

LISTS = {"resources": ["法律咨询志愿服务"], "needs": [], "projects": ["共建“四点半课堂”"]}
Q3_END = local(2026, 10, 1)  # the cutoff of 2026-Q3


@pytest.fixture
def world(app):
    """Two districts: 财政局 (two branches) and 教育局 (one) paired in 任城区, 兖州区 with one community."""
    world = make_world()
    world["dave"] = make_member(world["fin1"], world["north"], name="dave")
    world["east_district"] = make_region(RegionLevel.DISTRICT, world["city"], name="兖州区")
    street = make_region(RegionLevel.STREET, world["east_district"], name="鼓楼街道")
    world["east"] = make_region(RegionLevel.COMMUNITY, street, name="东门社区")
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    report(world["alice"], world["bob"], world["carol"], world["dave"])
    earn(world["alice"])  # 财政一支部 5.00 per head, 财政二支部 5.00, 教育一支部 8.00: 教育 holds 任城区's flag
    earn(world["bob"], "member.commend_district")
    earn(world["carol"], "member.commend_district")
    earn(world["carol"], "member.commend_community", day=4)
    return world


def re_pair_finance_with_east(world, at):
    """财政局 reports to 东门社区 (兖州区) and its admin confirms: the 报到 that re-pairs a department."""
    org_admin = principal_for(make_user((Role.ORG_ADMIN, world["finance"].id)))
    east_admin = principal_for(make_user((Role.COMMUNITY_ADMIN, world["east"].id)))
    submitted = reports.submit_org_report(org_admin, world["finance"].id, world["east"].id, **LISTS, now=at)
    reports.confirm_report(east_admin, submitted.id, now=at)
    assert world["finance"].paired_community_id == world["east"].id


def by_scope(world, awards) -> dict[str, object]:
    names = {f"district:{world['district'].id}": "任城区", f"district:{world['east_district'].id}": "兖州区"}
    return {names[award.scope_key]: award for award in awards}


def districts_of(world, period: str) -> dict[int, int | None]:
    facts = red_flags.gather_branch_facts(parse_period(period), policy_in_force(AFTER_Q3))
    return {f.organization_id: f.district_id for f in facts}


def test_a_re_pairing_after_the_period_leaves_its_awards_verifiable(world):
    awarded = by_scope(world, flags(world))
    assert (awarded["任城区"].candidate_count, awarded["兖州区"].candidate_count) == (3, 0)

    re_pair_finance_with_east(world, local(2026, 11, 5, 9))
    assert all(red_flags.verify_red_flag_award(award) for award in awarded.values())


def test_a_late_award_places_the_branches_by_the_pairing_in_force_at_the_cutoff(world):
    re_pair_finance_with_east(world, local(2026, 11, 5, 9))  # before Q3 is awarded, after it ended
    awarded = by_scope(world, flags(world, now=local(2026, 12, 1)))
    assert (awarded["任城区"].candidate_count, awarded["任城区"].organization_id) == (3, world["edu1"].id)
    assert awarded["兖州区"].candidate_count == 0 and awarded["兖州区"].organization_id is None


def test_a_periods_districts_are_those_of_the_pairings_in_force_at_its_cutoff(world):
    re_pair_finance_with_east(world, local(2026, 11, 5, 9))  # during Q4
    ren_cheng, yan_zhou = world["district"].id, world["east_district"].id
    fin1, fin2, edu1 = world["fin1"].id, world["fin2"].id, world["edu1"].id
    assert districts_of(world, "2026-Q3") == {fin1: ren_cheng, fin2: ren_cheng, edu1: ren_cheng}
    assert districts_of(world, "2026-Q4") == {fin1: yan_zhou, fin2: yan_zhou, edu1: ren_cheng}
    q4 = by_scope(world, flags(world, "2026-Q4", now=local(2027, 1, 2)))
    assert (q4["任城区"].candidate_count, q4["兖州区"].candidate_count) == (1, 2)


def test_a_re_pairing_at_the_cutoff_instant_is_the_next_periods(world):
    re_pair_finance_with_east(world, Q3_END)  # the period is [start, end): its end is the next one's first instant
    assert districts_of(world, "2026-Q3")[world["fin1"].id] == world["district"].id
    assert districts_of(world, "2026-Q4")[world["fin1"].id] == world["east_district"].id

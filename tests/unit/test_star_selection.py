"""业务之星 selection as pure rules: each eligibility reason, quotas, and tie-breaks in the policy's order."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from points_service.domain.policy.model import StarRule
from points_service.domain.stars.rules import SelectionContext, StarFacts, canonical_row, checksum_of, select_stars

RULE = StarRule(scope="community", quota_kind="top_n", quota=Decimal(2), min_activities=2, min_points=Decimal(10),
                disqualifying_items=frozenset({"member.no_show"}), require_reported=True,
                tie_breaks=("hours", "micro_wishes", "reached_first", "id"), publicity_working_days=5)
CONTEXT = SelectionContext("2026-H2", ("报名后无故缺席",), "community")


def facts(member_id: int, points="20", *, scope_id=1, activities=3, hours="6", micro_wishes=0, disqualifying=0,
          reported=True, reached_day=1) -> StarFacts:
    return StarFacts(member_id, 100 + scope_id, scope_id, Decimal(points), activities, Decimal(hours), micro_wishes,
                     disqualifying, reported, datetime(2026, 9, reached_day, tzinfo=UTC))


def outcome_of(member_id, outcomes):
    return next(o for o in outcomes if o.facts.member_id == member_id)


def codes(outcome) -> list[str]:
    return [r["code"] for r in outcome.reasons]


@pytest.mark.parametrize(("changes", "code", "message"), [
    ({"activities": 1}, "min_activities", "本季度参加活动1次，少于2次"),
    ({"points": "9.5"}, "min_points", "本季度考核积分9.5分，低于10分"),
    ({"disqualifying": 1}, "disqualified_item", "本季度有报名后无故缺席记录，不具备评选资格"),
    ({"reported": False}, "not_reported", "2026-H2未到居住地社区报到（或报到未经社区确认）"),
])
def test_each_unmet_condition_makes_the_member_ineligible_with_its_code_and_message(changes, code, message):
    [outcome] = select_stars([facts(1, **changes)], RULE, CONTEXT)
    assert not outcome.eligible and not outcome.winner and outcome.position is None
    assert outcome.reasons == [{"code": code, "message": message}]


def test_an_upheld_objection_is_a_reason_of_its_own():
    [outcome] = select_stars([facts(1)], RULE, replace(CONTEXT, upheld=frozenset({1})))
    assert codes(outcome) == ["objection_upheld"] and not outcome.eligible


def test_every_failing_condition_is_listed_not_only_the_first():
    [outcome] = select_stars([facts(1, activities=0, points="0", reported=False)], RULE, CONTEXT)
    assert codes(outcome) == ["min_activities", "min_points", "not_reported"]


def test_reporting_is_not_checked_when_the_policy_does_not_require_it():
    [outcome] = select_stars([facts(1, reported=False)], replace(RULE, require_reported=False), CONTEXT)
    assert outcome.eligible


def test_top_n_selects_the_first_n_eligible_of_each_scope_and_explains_the_others():
    candidates = [facts(1, "30"), facts(2, "20"), facts(3, "25"), facts(4, "50", scope_id=2)]
    outcomes = select_stars(candidates, RULE, CONTEXT)
    assert [(o.facts.member_id, o.position, o.winner) for o in outcomes] == [
        (1, 1, True), (2, 3, False), (3, 2, True), (4, 1, True)]
    assert outcome_of(2, outcomes).reasons == [
        {"code": "outside_quota", "message": "符合条件，在本社区符合条件的党员中排名第3，名额2名，未当选"}]
    assert outcome_of(1, outcomes).reasons[0]["code"] == "selected"


def test_a_share_quota_takes_the_floor_of_the_share_of_the_eligible_but_at_least_one():
    rule = replace(RULE, quota_kind="share", quota=Decimal("0.3"))
    seven = [facts(i, str(20 + i)) for i in range(1, 8)]
    assert sum(o.winner for o in select_stars(seven, rule, CONTEXT)) == 2  # floor(0.3 * 7)
    two = [facts(1), facts(2)]
    assert sum(o.winner for o in select_stars(two, rule, CONTEXT)) == 1  # floor(0.6) = 0, raised to 1


def test_the_quota_counts_only_the_eligible():
    candidates = [facts(1, "30"), facts(2, "40", activities=0), facts(3, "20"), facts(4, "10")]
    winners = [o.facts.member_id for o in select_stars(candidates, RULE, CONTEXT) if o.winner]
    assert winners == [1, 3]


def test_ties_on_points_are_broken_by_hours_then_micro_wishes_then_who_reached_first_then_id():
    candidates = [
        facts(1, hours="5", micro_wishes=3, reached_day=1),
        facts(2, hours="6", micro_wishes=0, reached_day=9),   # most hours
        facts(3, hours="5", micro_wishes=3, reached_day=2),   # same as 1, reached later
        facts(4, hours="5", micro_wishes=4, reached_day=20),  # more micro-wishes than 1 and 3
        facts(5, hours="5", micro_wishes=3, reached_day=1),   # same as 1 in everything: id decides
    ]
    outcomes = select_stars(candidates, replace(RULE, quota=Decimal(5)), CONTEXT)
    assert sorted((o.position, o.facts.member_id) for o in outcomes) == [(1, 2), (2, 4), (3, 1), (4, 5), (5, 3)]


def test_the_tie_breaks_apply_in_the_order_the_policy_lists_them():
    candidates = [facts(1, hours="9", micro_wishes=0), facts(2, hours="1", micro_wishes=5)]
    hours_first = select_stars(candidates, replace(RULE, quota=Decimal(1)), CONTEXT)
    wishes_first = select_stars(candidates, replace(RULE, quota=Decimal(1), tie_breaks=("micro_wishes", "hours",
                                                                                        "id")), CONTEXT)
    assert [o.facts.member_id for o in hours_first if o.winner] == [1]
    assert [o.facts.member_id for o in wishes_first if o.winner] == [2]


def test_without_a_reached_time_a_member_ranks_after_one_who_reached_the_score():
    late = replace(facts(1), reached_at=None)
    outcomes = select_stars([late, facts(2)], replace(RULE, tie_breaks=("reached_first", "id")), CONTEXT)
    assert outcome_of(2, outcomes).position == 1


def test_the_checksum_changes_with_any_outcome_and_not_with_the_input_order():
    header = {"period": "2026-Q3"}
    a = [canonical_row(o) for o in select_stars([facts(1), facts(2)], RULE, CONTEXT)]
    b = [canonical_row(o) for o in select_stars([facts(2), facts(1)], RULE, CONTEXT)]
    c = [canonical_row(o) for o in select_stars([facts(1), facts(2, hours="7")], RULE, CONTEXT)]
    assert checksum_of(header, a) == checksum_of(header, iter(b)) != checksum_of(header, c)

"""The annual ranking and grading pipeline as pure functions: competition ranks, the documented tie order,
thresholds → vetoes → share cap per group, and the reasons given for each lowered grade."""

from __future__ import annotations

from decimal import Decimal

import pytest

from points_service.domain.annual.grading import Standing, competition_ranks, grade_year, order_key
from points_service.domain.policy.model import GradeBand, GradeRule, Veto
from tests.factories.ledger import local

RULE = GradeRule(
    bands=(GradeBand("优秀", Decimal(90)), GradeBand("较好", Decimal(75)), GradeBand("一般", Decimal(60)),
           GradeBand("差", Decimal(0))),
    excellent_share_cap=Decimal("0.20"), excellent_name="优秀",
    vetoes=(Veto("unexcused_absences", 2, "较好", "缺席两次"), Veto("not_reported", 1, "差", "未报到"),
            Veto("falsified", 1, "差", "弄虚作假")))


def s(subject_id: int, points, group=1, day=None) -> Standing:
    return Standing(subject_id, int(Decimal(points) * 100), local(2025, 1, day) if day else None, group)


def test_competition_ranks_of_90_80_80_70_are_1_2_2_4():
    ordered = sorted([s(1, 90), s(2, 80), s(3, 80), s(4, 70)], key=order_key)
    assert competition_ranks(ordered) == [1, 2, 2, 4]


def test_a_tie_is_ordered_by_who_reached_the_score_first_then_by_id():
    ordered = sorted([s(3, 80, day=5), s(2, 80, day=9), s(1, 80, day=5), s(4, 80)], key=order_key)
    assert [x.subject_id for x in ordered] == [4, 1, 3, 2]  # no entries: reached at the start


@pytest.mark.parametrize(("points", "grade"), [("90", "优秀"), ("89.99", "较好"), ("75", "较好"), ("74.99", "一般"),
                                               ("60", "一般"), ("59.99", "差"), ("-5", "差")])
def test_each_band_threshold(points, grade):
    result = grade_year([s(1, points)], {1: {}}, RULE)[1]
    assert result.grade_by_score == result.grade == grade


def test_the_cap_is_a_fifth_of_each_group_and_the_rest_drop_one_band_with_a_reason():
    standings = [s(n, 95 - n, group=1) for n in range(10)] + [s(100 + n, 95, group=2) for n in range(4)]
    graded = grade_year(standings, {}, RULE)
    assert [graded[n].grade for n in range(10)] == ["优秀"] * 2 + ["较好"] * 8
    assert [graded[100 + n].grade for n in range(4)] == ["优秀", "较好", "较好", "较好"]  # ⌊0.8⌋ → at least 1
    assert graded[2].reasons == ({"code": "excellent_share_cap", "message": "优秀名额已满（不超过本部门人数的 20%）"},)
    assert graded[100].rank_city == 1 and graded[100].rank_group == 1 and graded[103].rank_group == 1


def test_a_vetoed_member_does_not_use_up_the_quota():
    standings = [s(n, 99 - n) for n in range(5)]
    graded = grade_year(standings, {0: {"falsified": 1}}, RULE)
    assert graded[0].grade == "差" and graded[1].grade == "优秀" and graded[2].grade == "较好"
    assert graded[0].reasons == ({"code": "falsified", "message": "弄虚作假"},)


def test_several_vetoes_give_every_reason_and_the_lowest_grade():
    graded = grade_year([s(1, 95)], {1: {"unexcused_absences": 3, "not_reported": 1}}, RULE)[1]
    assert graded.grade == "差" and [r["code"] for r in graded.reasons] == ["unexcused_absences", "not_reported"]


def test_positions_are_unique_and_follow_the_order():
    graded = grade_year([s(2, 50), s(1, 50), s(3, 60)], {}, RULE)
    assert [graded[n].position for n in (3, 1, 2)] == [1, 2, 3]

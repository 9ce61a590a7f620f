"""The pure policy rules: caps, decay, grades, vetoes and star quotas, with exact decimals."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from points_service.domain.policy import Caps, DecayRule, GradeBand, GradeRule, StarRule, Veto
from points_service.domain.policy.rules import (
    DECAY_RULES,
    apply_caps,
    apply_vetoes,
    cap_excellent,
    decay_amount,
    grade_for,
    star_quota,
)

D = Decimal
NOTHING_USED: dict[str, Decimal] = {}


def grade_rule(share: str = "0.20") -> GradeRule:
    return GradeRule(
        bands=(GradeBand("优秀", D(90)), GradeBand("较好", D(75)), GradeBand("一般", D(60)), GradeBand("差", D(0))),
        excellent_share_cap=D(share),
        excellent_name="优秀",
        vetoes=(
            Veto("unexcused_absences", 2, "较好", "无故缺席 2 次及以上"),
            Veto("not_reported", 1, "差", "未报到"),
            Veto("falsified", 1, "差", "弄虚作假"),
        ),
    )


def star_rule(quota_kind: str = "top_n", quota: str = "3") -> StarRule:
    return StarRule(scope="community", quota_kind=quota_kind, quota=D(quota), min_activities=2, min_points=D(10),
                    disqualifying_items=frozenset({"member.no_show"}), require_reported=True,
                    tie_breaks=("hours", "id"), publicity_working_days=5)


def decay_rule(kind: str, *, half_life: str | None = None, per_period: str | None = None,
               floor: str = "0") -> DecayRule:
    return DecayRule(kind=kind, period="month", half_life_days=None if half_life is None else D(half_life),
                     points_per_period=None if per_period is None else D(per_period), floor=D(floor))


# ---------------------------------------------------------------- caps


def test_an_award_under_every_cap_is_granted_in_full():
    result = apply_caps(D(4), Caps(day=D(8), month=D(20)), {"day": D(2), "month": D(10)}, D(30), D(10))
    assert (result.granted, result.capped_by) == (D(4), None)


@pytest.mark.parametrize("window", ["day", "month", "quarter", "year"])
def test_each_cap_window_grants_only_what_remains(window):
    caps = Caps(**{window: D(10)})
    result = apply_caps(D(4), caps, {window: D(7)}, None, D(0))
    assert (result.granted, result.capped_by) == (D(3), f"item.{window}")


def test_an_exhausted_cap_grants_zero_never_a_negative_amount():
    result = apply_caps(D(5), Caps(month=D(10)), {"month": D(12)}, None, D(0))
    assert (result.granted, result.capped_by) == (D(0), "item.month")


def test_the_tightest_of_several_caps_decides():
    caps = Caps(day=D(8), month=D(20), year=D(100))
    result = apply_caps(D(6), caps, {"day": D(1), "month": D(18), "year": D(50)}, None, D(0))
    assert (result.granted, result.capped_by) == (D(2), "item.month")


def test_the_monthly_positive_cap_limits_the_sum_over_all_items():
    result = apply_caps(D(5), Caps(), NOTHING_USED, D(30), D(28))
    assert (result.granted, result.capped_by) == (D(2), "subject.month_positive")


def test_no_monthly_positive_cap_means_uncapped():
    assert apply_caps(D(5), Caps(), NOTHING_USED, None, D(10_000)).granted == D(5)


def test_deductions_are_never_capped():
    result = apply_caps(D(-5), Caps(day=D(1), month=D(1)), {"day": D(99), "month": D(99)}, D(1), D(99))
    assert (result.granted, result.capped_by) == (D(-5), None)


def test_caps_keep_exact_decimals():
    result = apply_caps(D("1.5"), Caps(day=D(8)), {"day": D("6.75")}, D(30), D("0.10"))
    assert result.granted == D("1.25") and isinstance(result.granted, Decimal)


# ---------------------------------------------------------------- decay


def test_no_decay_removes_nothing():
    assert decay_amount(D(100), decay_rule("none"), 30) == D(0)


def test_exponential_decay_halves_the_balance_over_one_half_life():
    assert decay_amount(D(100), decay_rule("exponential", half_life="180"), 180) == D("50.00")


def test_exponential_decay_over_a_month_is_rounded_to_cents():
    # 100 × (1 − 0.5^(30/180)) = 10.9101…
    assert decay_amount(D(100), decay_rule("exponential", half_life="180"), 30) == D("10.91")


def test_exponential_decay_only_touches_the_part_above_the_floor():
    assert decay_amount(D(100), decay_rule("exponential", half_life="180", floor="40"), 180) == D("30.00")


def test_decay_rounds_half_up():
    # 0.05 × 0.5 = 0.025 exactly: half-up gives 0.03 (banker's rounding would give 0.02).
    assert decay_amount(D("0.05"), decay_rule("exponential", half_life="30"), 30) == D("0.03")


def test_rounding_up_never_takes_more_than_the_balance():
    # 0.01 × 0.5 = 0.005 rounds up to 0.01, which is all there is.
    assert decay_amount(D("0.01"), decay_rule("exponential", half_life="30"), 30) == D("0.01")


def test_linear_decay_removes_a_fixed_amount_per_period():
    assert decay_amount(D(100), decay_rule("linear", per_period="5"), 31) == D(5)


def test_linear_decay_stops_at_the_floor():
    assert decay_amount(D(12), decay_rule("linear", per_period="5", floor="10"), 30) == D(2)


@pytest.mark.parametrize("kind", sorted(DECAY_RULES))
def test_a_balance_at_or_below_the_floor_never_decays(kind):
    rule = decay_rule(kind, half_life="180", per_period="5", floor="10")
    assert decay_amount(D(10), rule, 30) == D(0)
    assert decay_amount(D(-3), rule, 30) == D(0)


@given(
    balance=st.decimals(min_value=-100, max_value=100_000, places=2),
    floor=st.decimals(min_value=0, max_value=1_000, places=2),
    half_life=st.integers(min_value=1, max_value=3_650),
    per_period=st.decimals(min_value="0.01", max_value=1_000, places=2),
    days=st.integers(min_value=1, max_value=366),
    kind=st.sampled_from(sorted(DECAY_RULES)),
)
def test_decay_is_never_negative_never_below_the_floor_and_always_in_cents(balance, floor, half_life, per_period,
                                                                          days, kind):
    rule = DecayRule(kind=kind, period="month", half_life_days=D(half_life), points_per_period=per_period,
                     floor=floor)
    amount = decay_amount(balance, rule, days)
    assert D(0) <= amount <= max(D(0), balance - floor)
    assert amount == amount.quantize(D("0.01"))


# ---------------------------------------------------------------- grades


@pytest.mark.parametrize(("score", "grade"), [
    ("100", "优秀"), ("90", "优秀"), ("89.99", "较好"), ("75", "较好"), ("60", "一般"), ("59.99", "差"),
    ("0", "差"), ("-12", "差"),
])
def test_a_score_gets_the_best_band_it_reaches(score, grade):
    assert grade_for(D(score), grade_rule()) == grade


def test_the_excellent_share_cap_keeps_the_first_ones_in_ranking_order():
    ranked = [(f"m{i}", D(99 - i), "优秀") for i in range(5)] + [(f"m{i}", D(70), "一般") for i in range(5, 10)]
    grades = cap_excellent(ranked, grade_rule("0.20"))
    assert [grades[f"m{i}"] for i in range(10)] == ["优秀", "优秀", "较好", "较好", "较好"] + ["一般"] * 5


def test_a_small_group_may_still_have_one_excellent():
    grades = cap_excellent([("a", D(95), "优秀"), ("b", D(94), "优秀"), ("c", D(50), "差")], grade_rule("0.20"))
    assert grades == {"a": "优秀", "b": "较好", "c": "差"}


def test_the_share_cap_does_not_touch_groups_within_it():
    ranked = [("a", D(95), "优秀"), ("b", D(80), "较好"), ("c", D(70), "一般"), ("d", D(65), "一般"),
              ("e", D(10), "差")]
    assert cap_excellent(ranked, grade_rule("0.20")) == {"a": "优秀", "b": "较好", "c": "一般", "d": "一般", "e": "差"}


def test_an_empty_group_has_no_grades():
    assert cap_excellent([], grade_rule()) == {}


def test_two_unexcused_absences_keep_a_member_from_excellent():
    assert apply_vetoes("优秀", {"unexcused_absences": 2}, grade_rule()) == ("较好", ["无故缺席 2 次及以上"])


def test_one_unexcused_absence_changes_nothing():
    assert apply_vetoes("优秀", {"unexcused_absences": 1}, grade_rule()) == ("优秀", [])


@pytest.mark.parametrize("code", ["not_reported", "falsified"])
def test_not_reporting_or_falsifying_means_poor(code):
    grade, reasons = apply_vetoes("优秀", {code: 1}, grade_rule())
    assert grade == "差" and len(reasons) == 1


def test_a_veto_never_raises_a_grade_that_is_already_lower():
    assert apply_vetoes("一般", {"unexcused_absences": 3}, grade_rule()) == ("一般", ["无故缺席 2 次及以上"])


def test_every_triggered_veto_is_given_as_a_reason():
    grade, reasons = apply_vetoes("优秀", {"unexcused_absences": 2, "falsified": 1}, grade_rule())
    assert grade == "差" and reasons == ["无故缺席 2 次及以上", "弄虚作假"]


# ---------------------------------------------------------------- star quotas


@pytest.mark.parametrize(("eligible", "quota"), [(10, 3), (3, 3), (2, 2), (0, 0)])
def test_top_n_never_exceeds_the_eligible(eligible, quota):
    assert star_quota(star_rule("top_n", "3"), eligible) == quota


@pytest.mark.parametrize(("eligible", "quota"), [(25, 2), (30, 3), (5, 1), (0, 0)])
def test_a_share_is_rounded_down_with_at_least_one_winner(eligible, quota):
    assert star_quota(star_rule("share", "0.10"), eligible) == quota

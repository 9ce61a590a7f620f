"""The policy's rules as pure functions: numbers and counts in, numbers out; no database, nothing mutated.

Kinds are registries keyed by the name the policy file uses (like CTFd's dynamic_challenges/decay.py),
so a new decay kind is one function plus one entry, and the schema accepts exactly the registered names.

Rounding rule (all amounts): exact Decimal arithmetic, then ``quantize(Decimal("0.01"), ROUND_HALF_UP)``,
then clamped to what the rule allows, so a rounded amount can never break a cap or a floor.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import TypeVar

from points_service.domain.policy.model import Caps, DecayRule, GradeRule, StarRule

ZERO = Decimal(0)
CENT = Decimal("0.01")
HALF = Decimal("0.5")
CAP_WINDOWS = ("day", "month", "quarter", "year")
MONTH_POSITIVE = "subject.month_positive"

Key = TypeVar("Key", bound=Hashable)


def _cents(amount: Decimal) -> Decimal:
    return amount.quantize(CENT, rounding=ROUND_HALF_UP)


# ---------------------------------------------------------------- caps


@dataclass(frozen=True)
class CapResult:
    granted: Decimal
    capped_by: str | None  # "item.<window>" or "subject.month_positive"; None when nothing was cut


def apply_caps(asked: Decimal, caps: Caps, used: Mapping[str, Decimal], monthly_positive_cap: Decimal | None,
               used_positive_this_month: Decimal) -> CapResult:
    """How much of ``asked`` may be granted.

    ``used`` holds the points already granted for this item and subject in the window (day, month, quarter,
    year) containing the fact. Deductions (``asked <= 0``) are never capped. The grant is the smallest
    remainder of every cap, never below zero; ``capped_by`` names the cap that bit (the first in
    ``CAP_WINDOWS`` order, then the subject's monthly cap, when several leave the same remainder).
    """
    if asked <= 0:
        return CapResult(asked, None)
    granted, capped_by = asked, None
    limits = [(f"item.{window}", getattr(caps, window), used.get(window, ZERO)) for window in CAP_WINDOWS]
    limits.append((MONTH_POSITIVE, monthly_positive_cap, used_positive_this_month))
    for name, limit, spent in limits:
        if limit is None:
            continue
        remaining = max(ZERO, limit - spent)
        if remaining < granted:
            granted, capped_by = remaining, name
    return CapResult(granted, capped_by)


# ---------------------------------------------------------------- decay of the standing score

DecayFunction = Callable[[Decimal, DecayRule, int], Decimal]


def _no_decay(balance: Decimal, rule: DecayRule, period_days: int) -> Decimal:
    return ZERO


def _exponential(balance: Decimal, rule: DecayRule, period_days: int) -> Decimal:
    """The part above the floor halves every ``half_life_days``: above × (1 − 0.5^(days / half_life))."""
    above = balance - rule.floor
    return above * (1 - HALF ** (Decimal(period_days) / rule.half_life_days))


def _linear(balance: Decimal, rule: DecayRule, period_days: int) -> Decimal:
    """A fixed ``points_per_period`` each run, whatever the period's length (``period_days`` is unused)."""
    return rule.points_per_period


DECAY_RULES: dict[str, DecayFunction] = {
    "none": _no_decay,
    "exponential": _exponential,
    "linear": _linear,
}


def decay_amount(balance: Decimal, rule: DecayRule, period_days: int) -> Decimal:
    """Points to remove from a standing ``balance`` (taken at the period's cutoff) for one period.

    ``period_days`` is the length of the period being settled in local days (28–31 for a month, 90–92 for
    a quarter, 365/366 for a year); pass it explicitly so the rule stays a pure function of its inputs.
    The result is rounded to 0.01 (ROUND_HALF_UP) and clamped to [0, balance − floor]: decay never goes
    below the floor, never removes more than the balance holds, and is never negative.
    """
    room = balance - rule.floor
    if room <= 0:
        return ZERO
    amount = _cents(DECAY_RULES[rule.kind](balance, rule, period_days))
    return min(max(amount, ZERO), room)


# ---------------------------------------------------------------- grades


def _band_index(grade: str, rule: GradeRule) -> int:
    return next(index for index, band in enumerate(rule.bands) if band.name == grade)


def grade_for(score: Decimal, rule: GradeRule) -> str:
    """The best band whose ``min_score`` the score reaches; below every band, the lowest band."""
    for band in rule.bands:
        if score >= band.min_score:
            return band.name
    return rule.bands[-1].name


def excellent_quota(rule: GradeRule, count: int) -> int:
    """floor(share × count), but at least 1 when there is anyone: a branch of 3 may still have one 优秀."""
    if count <= 0:
        return 0
    return max(1, int(rule.excellent_share_cap * count))


def cap_excellent(ranked: Sequence[tuple[Key, Decimal, str]], rule: GradeRule) -> dict[Key, str]:
    """Apply the share cap on the top grade within one group (e.g. a department).

    ``ranked`` is (key, score, grade) in ranking order, best first, with the caller's tie-break already
    applied: among those graded excellent, the first ``excellent_quota(rule, len(ranked))`` keep it and the
    rest drop to the next band. Other grades are returned unchanged.
    """
    quota = excellent_quota(rule, len(ranked))
    next_band = rule.bands[1].name
    result: dict[Key, str] = {}
    kept = 0
    for key, _score, grade in ranked:
        if grade == rule.excellent_name:
            kept += 1
            grade = grade if kept <= quota else next_band
        result[key] = grade
    return result


def apply_vetoes(grade: str, facts: Mapping[str, int], rule: GradeRule) -> tuple[str, list[str]]:
    """Lower ``grade`` to at most each triggered veto's ``max_grade``; return it with the reasons.

    ``facts`` counts what the vetoes look at, e.g. {"unexcused_absences": 2, "not_reported": 1,
    "falsified": 0}; a veto triggers when its count reaches ``threshold``.
    """
    reasons = []
    for veto in rule.vetoes:
        if facts.get(veto.code, 0) >= veto.threshold:
            reasons.append(veto.reason)
            if _band_index(veto.max_grade, rule) > _band_index(grade, rule):
                grade = veto.max_grade
    return grade, reasons


# ---------------------------------------------------------------- stars


def star_quota(rule: StarRule, eligible_count: int) -> int:
    """How many 业务之星 a scope gets: top N (never more than the eligible), or floor(share × eligible)
    with at least 1 when anyone is eligible."""
    if eligible_count <= 0:
        return 0
    if rule.quota_kind == "top_n":
        return min(int(rule.quota), eligible_count)
    return max(1, int(rule.quota * eligible_count))

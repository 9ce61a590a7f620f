"""业务之星 selection as pure functions: facts in, one outcome per candidate out (no database).

The same functions serve the proposal, the recomputation after an upheld objection and ``verify_star_run``,
so a stored run can always be re-derived from the ledger at its cutoff.

Order inside a scope: points DESC, then the policy's ``tie_breaks`` in order (hours DESC, micro_wishes DESC,
reached_first = earlier last scoring entry first, id ASC), member id always last so the order is total.
Winners: the first ``star_quota(rule, n)`` of the eligible, where n counts the scope's members eligible on
their merits, upheld objections aside: the quota fixed when the run was proposed and publicized, so an upheld
objection replaces the member objected to and never shrinks a share quota (unseating a winner nobody objected
to). Every candidate gets reasons: why he is not eligible (all that apply), or his place and whether it was
within the quota.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import math
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import lru_cache

from points_service.domain.policy.model import StarRule
from points_service.domain.policy.rules import star_quota

SCOPE_LABELS = {"community": "社区", "street": "街道", "organization": "单位"}

MESSAGES = {
    "min_activities": "本季度参加活动{activities}次，少于{minimum}次",
    "min_points": "本季度考核积分{points}分，低于{minimum}分",
    "disqualified_item": "本季度有{items}记录，不具备评选资格",
    "not_reported": "{half}未到居住地社区报到（或报到未经社区确认）",
    "objection_upheld": "公示期间异议成立，取消评选资格",
    "selected": "当选：在本{scope}符合条件的党员中排名第{position}（名额{quota}名）",
    "outside_quota": "符合条件，在本{scope}符合条件的党员中排名第{position}，名额{quota}名，未当选",
}
ELIGIBILITY_CODES = ("min_activities", "min_points", "disqualified_item", "not_reported", "objection_upheld")


@dataclass(frozen=True, slots=True)
class StarFacts:
    member_id: int
    community_id: int
    scope_id: int
    points: Decimal
    activities: int
    hours: Decimal
    micro_wishes: int
    disqualifying: int
    reported: bool
    reached_at: datetime | None


@dataclass(slots=True)
class StarOutcome:
    facts: StarFacts
    eligible: bool
    reasons: list[dict]
    position: int | None = None
    winner: bool = False


@dataclass(frozen=True)
class SelectionContext:
    """What the messages need besides the facts: the half checked for reports, item names, the scope label."""

    half_key: str
    disqualifying_names: tuple[str, ...] = ()
    scope_type: str = "community"
    upheld: frozenset[int] = field(default_factory=frozenset)  # members excluded by an upheld objection


def _number(amount: Decimal) -> str:
    return str(amount.quantize(Decimal(1))) if amount == amount.to_integral_value() else str(amount.normalize())


def reason(code: str, **values) -> dict:
    """A reason; equal reasons are the same (never mutated) dict, so a city's run does not hold half a million
    copies of "本季度参加活动0次，少于2次"."""
    return _reason(code, tuple(sorted(values.items())))


@lru_cache(maxsize=100_000)
def _reason(code: str, values: tuple) -> dict:
    return {"code": code, "message": MESSAGES[code].format(**dict(values))}


def eligibility_reasons(facts: StarFacts, rule: StarRule, context: SelectionContext) -> list[dict]:
    """Every reason the member cannot be selected; empty when he is eligible."""
    reasons = []
    if facts.activities < rule.min_activities:
        reasons.append(reason("min_activities", activities=facts.activities, minimum=rule.min_activities))
    if facts.points < rule.min_points:
        reasons.append(reason("min_points", points=_number(facts.points), minimum=_number(rule.min_points)))
    if facts.disqualifying > 0:
        reasons.append(reason("disqualified_item", items="、".join(context.disqualifying_names) or "取消资格的扣分"))
    if rule.require_reported and not facts.reported:
        reasons.append(reason("not_reported", half=context.half_key))
    if facts.member_id in context.upheld:
        reasons.append(reason("objection_upheld"))
    return reasons


TIE_BREAK_KEYS: dict[str, Callable[[StarFacts], object]] = {
    "hours": lambda f: -f.hours,
    "micro_wishes": lambda f: -f.micro_wishes,
    "reached_first": lambda f: f.reached_at.timestamp() if f.reached_at is not None else math.inf,
    "id": lambda f: f.member_id,
}


def order_key(tie_breaks: Iterable[str]) -> Callable[[StarFacts], tuple]:
    """The sort key of the ranking order: points first, the policy's tie-breaks, then the member id."""
    keys = [TIE_BREAK_KEYS[name] for name in tie_breaks]
    return lambda f: (-f.points, *(key(f) for key in keys), f.member_id)


def select_stars(candidates: Iterable[StarFacts], rule: StarRule, context: SelectionContext) -> list[StarOutcome]:
    """The outcome of every candidate, in member id order."""
    outcomes = [StarOutcome(f, False, []) for f in candidates]
    by_scope: dict[int, list[StarOutcome]] = defaultdict(list)
    on_merits: Counter[int] = Counter()  # eligible but for upheld objections: what the quota was fixed from
    for outcome in outcomes:
        outcome.reasons = eligibility_reasons(outcome.facts, rule, context)
        outcome.eligible = not outcome.reasons
        if outcome.eligible or [r["code"] for r in outcome.reasons] == ["objection_upheld"]:
            on_merits[outcome.facts.scope_id] += 1
        if outcome.eligible:
            by_scope[outcome.facts.scope_id].append(outcome)
    key, label = order_key(rule.tie_breaks), SCOPE_LABELS.get(context.scope_type, "范围")
    for scope_id, eligible in by_scope.items():
        _place(eligible, min(star_quota(rule, on_merits[scope_id]), len(eligible)), key, label)
    return sorted(outcomes, key=lambda outcome: outcome.facts.member_id)


def _place(eligible: list[StarOutcome], quota: int, key: Callable[[StarFacts], tuple], label: str) -> None:
    """Rank one scope's eligible members; the first ``quota`` win."""
    eligible.sort(key=lambda outcome: key(outcome.facts))
    for position, outcome in enumerate(eligible, start=1):
        outcome.position, outcome.winner = position, position <= quota
        code = "selected" if outcome.winner else "outside_quota"
        outcome.reasons = [reason(code, scope=label, position=position, quota=quota)]


# ------------------------------------------------------------------------------------------- checksum

ROW_COLUMNS = ("member_id", "community_id", "scope_id", "points", "activities", "hours", "micro_wishes",
               "disqualifying", "reported", "reached_at", "eligible", "position", "winner", "reasons")


def canonical_values(outcome: StarOutcome) -> list:
    """One candidate as a JSON array in ``ROW_COLUMNS`` order: points and hours as "12.00", instants in UTC
    ISO 8601, reasons as their codes (the messages are derived from them and the policy)."""
    f = outcome.facts
    return [f.member_id, f.community_id, f.scope_id, f"{f.points:.2f}", f.activities, f"{f.hours:.2f}",
            f.micro_wishes, f.disqualifying, f.reported,
            None if f.reached_at is None else f.reached_at.astimezone(UTC).isoformat(),
            outcome.eligible, outcome.position, outcome.winner, [r["code"] for r in outcome.reasons]]


def canonical_row(outcome: StarOutcome) -> dict:
    return dict(zip(ROW_COLUMNS, canonical_values(outcome), strict=True))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True)


def checksum_of(header: Mapping, rows: Iterable) -> str:
    """sha256 of canonical JSON lines: the header object (sorted keys), then one line per row (an array in a
    fixed column order, or an object with sorted keys) in the given (id) order. Hashed line by line, so a
    city's half a million rows never sit in memory as one string."""
    digest = hashlib.sha256()
    for document in itertools.chain([header], rows):
        digest.update(_ENCODER.encode(document).encode())
        digest.update(b"\n")
    return digest.hexdigest()

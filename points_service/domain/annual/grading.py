"""Ranking and grading a year's subjects as pure functions (no database): the settlement and its
verification call exactly these, so a recomputation from the ledger gives the same statements.

Order (documented in API.md): points DESC, then who reached the score first (the latest scoring entry
of the year, earlier first; a subject without entries reached its score at the start), then id ASC.
Ranks are competition ranks: 1 + the number of subjects in the group with a strictly higher score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from points_service.domain.policy.model import GradeRule
from points_service.domain.policy.rules import apply_vetoes, cap_excellent, grade_for

NEVER = datetime.min.replace(tzinfo=UTC)
CAP_CODE = "excellent_share_cap"


@dataclass(frozen=True, slots=True)
class Standing:
    """One subject's score for ranking: ``group`` is where the share cap and the group rank apply."""

    subject_id: int
    score_cents: int
    reached_at: datetime | None
    group: int | None


@dataclass(frozen=True, slots=True)
class Grading:
    position: int  # 1..N in the order above, unique
    rank_city: int
    rank_group: int | None
    grade_by_score: str
    grade: str
    reasons: tuple[dict, ...]  # [{"code", "message"}]: vetoes, then the share cap


def order_key(standing: Standing) -> tuple:
    return (-standing.score_cents, standing.reached_at or NEVER, standing.subject_id)


def competition_ranks(ordered: Sequence[Standing]) -> list[int]:
    """Ranks of subjects already in ``order_key`` order: equal scores share a rank (1, 2, 2, 4)."""
    ranks: list[int] = []
    for index, standing in enumerate(ordered):
        tied = index and standing.score_cents == ordered[index - 1].score_cents
        ranks.append(ranks[-1] if tied else index + 1)
    return ranks


def _vetoed(standing: Standing, facts: Mapping[str, int], rule: GradeRule) -> tuple[str, str, list[dict]]:
    by_score = grade_for(Decimal(standing.score_cents) / 100, rule)
    grade, messages = apply_vetoes(by_score, facts, rule)
    triggered = [veto for veto in rule.vetoes if facts.get(veto.code, 0) >= veto.threshold]
    return by_score, grade, [{"code": veto.code, "message": message} for veto, message in zip(triggered, messages,
                                                                                              strict=True)]


def _vetoes_memoized(ordered: Sequence[Standing], facts: Mapping[int, Mapping[str, int]],
                     rule: GradeRule) -> dict[int, tuple[str, str, list[dict]]]:
    """The same (score, facts) always grades the same: compute each distinct pair once."""
    seen: dict[tuple, tuple[str, str, list[dict]]] = {}
    result = {}
    for standing in ordered:
        own = facts.get(standing.subject_id, {})
        key = (standing.score_cents, tuple(sorted(own.items())))
        if key not in seen:
            seen[key] = _vetoed(standing, own, rule)
        result[standing.subject_id] = seen[key]
    return result


def grade_year(standings: Iterable[Standing], facts: Mapping[int, Mapping[str, int]], rule: GradeRule,
               *, group_ranks: bool = True, group_label: str = "本部门人数") -> dict[int, Grading]:
    """Position, city and group ranks, and the grade of every subject: grade_for → vetoes → share cap
    on the top grade within each group (ranked in the order above)."""
    ordered = sorted(standings, key=order_key)
    city_ranks = competition_ranks(ordered)
    groups: dict[int | None, list[Standing]] = defaultdict(list)
    for standing in ordered:
        groups[standing.group].append(standing)
    vetoed = _vetoes_memoized(ordered, facts, rule)
    capped: dict[int, str] = {}
    group_rank: dict[int, int] = {}
    for members in groups.values():
        ranked = [(s.subject_id, Decimal(s.score_cents) / 100, vetoed[s.subject_id][1]) for s in members]
        capped.update(cap_excellent(ranked, rule))
        group_rank.update(zip((s.subject_id for s in members), competition_ranks(members), strict=True))
    result = {}
    for position, (standing, rank) in enumerate(zip(ordered, city_ranks, strict=True), start=1):
        by_score, grade, reasons = vetoed[standing.subject_id]
        final = capped[standing.subject_id]
        if final != grade:
            reasons = [*reasons, {"code": CAP_CODE, "message": _cap_message(rule, group_label)}]
        result[standing.subject_id] = Grading(position, rank, group_rank[standing.subject_id] if group_ranks else None,
                                              by_score, final, tuple(reasons))
    return result


def _cap_message(rule: GradeRule, group_label: str) -> str:
    share = (rule.excellent_share_cap * 100).normalize()
    return f"{rule.excellent_name}名额已满（不超过{group_label}的 {share:f}%）"

"""流动红旗: one holder per period (``RedFlagRule.period``) and scope (the city, or each district), re-won
every period, among the party branches (党支部) of the scope.

- A branch belongs to the district of the community its department was paired with (组织报到) at the cutoff (the
  dated pairings, ``structure.paired_communities_at``: a re-pairing after the period, even before a late award
  or a verification, changes nothing); branches of departments then unpaired take part only in a city-wide
  scope.
- Gates: the member report rate (confirmed reports decided before the cutoff, for the half containing the
  period's last day or an earlier one — the reading of ``reports.rates.report_rate``) reaches ``min_report_rate``,
  and unexcused absences — no-show deductions of its members plus meeting-absence deductions of the branch
  or its department, credited in the period and not reversed before the cutoff — are at most
  ``max_unexcused_absences``.
- Ranking measure (an assumption until the policy names one): the per-capita assessment net of the
  branch's members for the period (so a small branch is not buried by a large one); ties: report rate DESC,
  organization id ASC. Members are placed by their affiliation at the cutoff.
- Kind: 保旗 (retained) when last period's holder of the scope wins again, 夺旗 (captured) when another branch
  takes it, 首次 (first) when nobody held it last period (a flag withdrawn before the award was not held).
  No eligible branch: a row without holder, with the reason. Awards are frozen when written (append-only
  rows, no publicity step: the measure is a ranking of recorded facts, not a judgement); a (period, scope) is
  awarded once, so re-running changes nothing.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.awards.points import credit_red_flag
from points_service.domain.awards.withdrawals import withdrawal_fields, withdrawn_of
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.domain.ledger.reading import unreversed_deductions
from points_service.domain.periods import Period, PeriodKind, parse_period, period_containing
from points_service.domain.policy import Policy, RedFlagRule, policy_in_force
from points_service.domain.policy import policy_version as stored_policy
from points_service.domain.stars.facts import confirmed_reporters, period_net_from_totals, placements_at
from points_service.domain.stars.rules import checksum_of
from points_service.domain.structure import paired_communities_at
from points_service.models import (
    RED_FLAG_KIND_NAMES,
    AwardType,
    Organization,
    OrgKind,
    RedFlagAward,
    RedFlagCandidate,
    RedFlagKind,
    Region,
    RegionLevel,
    SubjectType,
)

CENT = Decimal("0.01")
BP = 10000  # report rates are kept in 1/10000, rounded down (never up past a threshold)

MESSAGES = {
    "no_members": "期末没有党员",
    "low_report_rate": "党员报到率 {rate}，低于 {minimum}",
    "absences": "本期无故缺席 {count} 次，超过允许的 {maximum} 次",
    "holder": "人均考核积分 {score} 分，排名第 1，获得流动红旗",
    "outranked": "符合条件，人均考核积分 {score} 分，排名第 {position}",
    "no_candidates": "本范围内没有党支部参评",
    "no_eligible": "没有符合条件的党支部，本期流动红旗空缺",
}


class PeriodNotEnded(Conflict):
    code, message = "period_not_ended", "该期间尚未结束，结束后才能评选"


@dataclass(frozen=True, slots=True)
class BranchFacts:
    organization_id: int
    district_id: int | None
    members: int
    reported: int
    absences: int
    net_cents: int

    @property
    def report_rate_bp(self) -> int:
        return self.reported * BP // self.members if self.members else 0

    @property
    def score(self) -> Decimal:
        if not self.members:
            return Decimal("0.00")
        return (Decimal(self.net_cents) / 100 / self.members).quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(slots=True)
class BranchOutcome:
    facts: BranchFacts
    eligible: bool
    reasons: list[dict]
    position: int | None = None


@dataclass(frozen=True)
class Scope:
    key: str  # "city" | "district:{id}"
    region_id: int | None
    district_id: int | None  # None: every branch of the city

    def contains(self, facts: BranchFacts) -> bool:
        return self.district_id is None or facts.district_id == self.district_id


def _reason(code: str, **values) -> dict:
    return {"code": code, "message": MESSAGES[code].format(**values)}


def _percent(bp: int | Decimal) -> str:
    return f"{Decimal(bp) / 100:.2f}%"


# ---------------------------------------------------------------------------------------- pure ranking

def gate_reasons(facts: BranchFacts, rule: RedFlagRule) -> list[dict]:
    if not facts.members:
        return [_reason("no_members")]
    reasons = []
    if Decimal(facts.report_rate_bp) / BP < rule.min_report_rate:
        reasons.append(_reason("low_report_rate", rate=_percent(facts.report_rate_bp),
                               minimum=_percent(rule.min_report_rate * BP)))
    if facts.absences > rule.max_unexcused_absences:
        reasons.append(_reason("absences", count=facts.absences, maximum=rule.max_unexcused_absences))
    return reasons


def rank_branches(candidates: list[BranchFacts], rule: RedFlagRule) -> list[BranchOutcome]:
    """Every candidate's outcome in organization id order; position 1 holds the flag."""
    outcomes = [BranchOutcome(f, False, gate_reasons(f, rule)) for f in sorted(candidates,
                                                                               key=lambda f: f.organization_id)]
    eligible = [o for o in outcomes if not o.reasons]
    eligible.sort(key=lambda o: (-o.facts.score, -o.facts.report_rate_bp, o.facts.organization_id))
    for position, outcome in enumerate(eligible, start=1):
        outcome.eligible, outcome.position = True, position
        code = "holder" if position == 1 else "outranked"
        outcome.reasons = [_reason(code, score=outcome.facts.score, position=position)]
    return outcomes


def kind_of(winner_id: int, previous_holder_id: int | None) -> RedFlagKind:
    if previous_holder_id is None:
        return RedFlagKind.FIRST
    return RedFlagKind.RETAINED if previous_holder_id == winner_id else RedFlagKind.CAPTURED


def canonical_row(outcome: BranchOutcome) -> dict:
    f = outcome.facts
    return {"organization_id": f.organization_id, "members": f.members, "reported": f.reported,
            "report_rate_bp": f.report_rate_bp, "absences": f.absences, "score": f"{f.score:.2f}",
            "eligible": outcome.eligible, "position": outcome.position,
            "reasons": [r["code"] for r in outcome.reasons]}


# ------------------------------------------------------------------------------------- gathering facts

def gather_branch_facts(period: Period, policy: Policy) -> list[BranchFacts]:
    """Every branch with its members' facts for the period: a handful of grouped queries for the city."""
    cutoff = period.end
    half = period_containing(period.last_instant, PeriodKind.HALF).key
    reporters = confirmed_reporters(cutoff, half, as_of=True)
    totals = period_net_from_totals(period)
    member_absences, org_absences = _absences(period, policy)
    members, reported, absences, net = (defaultdict(int) for _ in range(4))
    for placement in placements_at(cutoff):
        branch = placement.branch_id
        members[branch] += 1
        reported[branch] += placement.member_id in reporters
        absences[branch] += member_absences.get(placement.member_id, 0)
        net[branch] += totals.get(placement.member_id, 0)
    facts = []
    for branch_id, department_id, district_id in _branches(cutoff):
        facts.append(BranchFacts(branch_id, district_id, members[branch_id], reported[branch_id],
                                 absences[branch_id] + org_absences.get(branch_id, 0)
                                 + org_absences.get(department_id, 0), net[branch_id]))
    return facts


def _absences(period: Period, policy: Policy) -> tuple[dict[int, int], dict[int, int]]:
    """No-show deductions per member and meeting-absence deductions per organization, not reversed before
    the cutoff: one grouped query."""
    items = [policy.events[event] for event in ("no_show", "org_meeting_absence") if event in policy.events]
    members, orgs = defaultdict(int), defaultdict(int)
    for subject_type, subject_id, _item, count in unreversed_deductions(items, period.start, period.end):
        (members if subject_type == SubjectType.MEMBER else orgs)[subject_id] += count
    return dict(members), dict(orgs)


def _branches(cutoff: datetime) -> list[tuple[int, int, int | None]]:
    """(branch id, department id, district id or None) for every branch, from two small tables and the pairings
    in force at the cutoff: a department re-paired later leaves its branches where they were in the period."""
    regions = dict(db.session.execute(sa.select(Region.id, Region.path)).all())
    districts = set(db.session.scalars(sa.select(Region.id).where(Region.level == RegionLevel.DISTRICT)))
    pairing = paired_communities_at(cutoff)
    result = []
    for org_id, path in db.session.execute(sa.select(Organization.id, Organization.path)
                                           .where(Organization.kind == OrgKind.BRANCH)):
        department_id = int(path.strip("/").split("/")[0])
        community_path = regions.get(pairing.get(department_id))
        ancestors = [int(part) for part in community_path.strip("/").split("/")] if community_path else []
        result.append((org_id, department_id, next((a for a in ancestors if a in districts), None)))
    return sorted(result)


def scopes_for(rule: RedFlagRule) -> list[Scope]:
    if rule.scope == "city":
        city = db.session.scalar(sa.select(Region.id).where(Region.level == RegionLevel.CITY).order_by(Region.id))
        return [Scope("city", city, None)]
    districts = db.session.scalars(sa.select(Region.id).where(Region.level == RegionLevel.DISTRICT)
                                   .order_by(Region.id)).all()
    return [Scope(f"district:{district}", district, district) for district in districts]


# ------------------------------------------------------------------------------------------ awarding

def award_red_flags(actor: Principal, period: Period | str, *, now: datetime | None = None) -> list[RedFlagAward]:
    """Award the period's flags (admin); scopes already awarded are returned unchanged."""
    authorize(actor, "red_flag.award")
    awards = _award(actor, period if isinstance(period, Period) else parse_period(period), now or utcnow())
    db.session.commit()
    return awards


def award_red_flags_job(period: Period, policy: Policy | None = None) -> dict:
    """The ``red_flag_award`` job (inside the runner's transaction)."""
    awards = _award(None, period, utcnow())
    return {"awards": len(awards), "holders": sum(a.organization_id is not None for a in awards)}


def _award(actor: Principal | None, period: Period, now: datetime) -> list[RedFlagAward]:
    policy = policy_in_force(period.last_instant)
    rule = policy.red_flag
    if period.kind != rule.period:
        raise ValidationFailed({"period": [f"流动红旗按{'月' if rule.period == 'month' else '季度'}评选，期间有误"]})
    if now < period.end:
        raise PeriodNotEnded()
    done = {a.scope_key for a in awards_of(period)}
    missing = [scope for scope in scopes_for(rule) if scope.key not in done]
    if missing:
        facts = gather_branch_facts(period, policy)
        previous = previous_holders(period.previous())
        try:
            with db.session.begin_nested():
                for scope in missing:
                    _write_award(actor, period, policy, scope, facts, previous.get(scope.key), now)
        except IntegrityError:
            db.session.rollback()
            raise Conflict("该期流动红旗正在评选，请稍后查看", code="red_flag_in_progress") from None
    return awards_of(period)


def _write_award(actor, period: Period, policy: Policy, scope: Scope, facts: list[BranchFacts],
                 previous_holder: int | None, now: datetime) -> RedFlagAward:
    outcomes = rank_branches([f for f in facts if scope.contains(f)], policy.red_flag)
    winner = next((o for o in outcomes if o.position == 1), None)
    award = RedFlagAward(period=period.key, scope_key=scope.key, scope_region_id=scope.region_id,
                         cutoff_at=period.end, policy_version=policy.version, candidate_count=len(outcomes),
                         previous_holder_id=previous_holder, created_by_id=getattr(actor, "user_id", None),
                         created_at=now)
    if winner is not None:
        award.organization_id, award.kind = winner.facts.organization_id, kind_of(winner.facts.organization_id,
                                                                                  previous_holder)
        award.score, award.report_rate_bp = winner.facts.score, winner.facts.report_rate_bp
        award.unexcused_absences = winner.facts.absences
    else:
        award.reason = MESSAGES["no_candidates" if not outcomes else "no_eligible"]
    award.checksum = checksum_of(award_header(award), (canonical_row(o) for o in outcomes))
    db.session.add(award)
    db.session.flush()
    db.session.add_all(RedFlagCandidate(
        award_id=award.id, organization_id=o.facts.organization_id, members=o.facts.members,
        reported=o.facts.reported, report_rate_bp=o.facts.report_rate_bp, unexcused_absences=o.facts.absences,
        score=o.facts.score, eligible=o.eligible, position=o.position, reasons=o.reasons) for o in outcomes)
    db.session.flush()
    credit_red_flag(award, now)
    audit("red_flag.award", actor=actor, target=award, detail={
        "period": period.key, "scope": scope.key, "organization_id": award.organization_id,
        "kind": award.kind and str(award.kind), "candidates": len(outcomes), "checksum": award.checksum})
    return award


def award_header(award: RedFlagAward) -> dict:
    return {"period": award.period, "scope_key": award.scope_key, "policy_version": award.policy_version,
            "cutoff_at": award.cutoff_at.isoformat(), "organization_id": award.organization_id,
            "previous_holder_id": award.previous_holder_id}


def verify_red_flag_award(award: RedFlagAward) -> bool:
    """Recompute the award's candidates from the ledger and tables at its cutoff and compare checksums."""
    policy, period = stored_policy(award.policy_version), parse_period(award.period)
    scope = next(s for s in scopes_for(policy.red_flag) if s.key == award.scope_key)
    outcomes = rank_branches([f for f in gather_branch_facts(period, policy) if scope.contains(f)], policy.red_flag)
    return checksum_of(award_header(award), (canonical_row(o) for o in outcomes)) == award.checksum


# ------------------------------------------------------------------------------------------- reading

def previous_holders(period: Period) -> dict[str, int | None]:
    """Who holds each scope's flag of ``period``: a withdrawn flag was taken from its branch, so the scope has no
    holder and its next winner is 首次 (neither 保旗 nor 夺旗 against a branch that no longer holds it)."""
    awards = awards_of(period)
    withdrawn = withdrawn_of(AwardType.RED_FLAG, (a.id for a in awards))
    return {a.scope_key: a.organization_id for a in awards if a.id not in withdrawn}


def awards_of(period: Period) -> list[RedFlagAward]:
    return list(db.session.scalars(sa.select(RedFlagAward).where(RedFlagAward.period == period.key)
                                   .order_by(RedFlagAward.scope_key)))


def list_red_flags(actor: Principal, period: Period) -> list[RedFlagAward]:
    authorize(actor, "red_flags.view")
    return awards_of(period)


def award_candidates(actor: Principal, award_id: int) -> sa.Select:
    authorize(actor, "red_flag.award")
    if db.session.get(RedFlagAward, award_id) is None:
        raise NotFound("流动红旗评选记录不存在")
    return (sa.select(RedFlagCandidate).where(RedFlagCandidate.award_id == award_id)
            .order_by(RedFlagCandidate.position.is_(None), RedFlagCandidate.position,
                      RedFlagCandidate.organization_id))


def describe_awards(awards: list[RedFlagAward]) -> list[dict]:
    """Awards as the API shows them; organization and region names in two queries."""
    org_ids = {a.organization_id for a in awards} | {a.previous_holder_id for a in awards}
    orgs = dict(db.session.execute(sa.select(Organization.id, Organization.name)
                                   .where(Organization.id.in_(org_ids))).all())
    regions = dict(db.session.execute(sa.select(Region.id, Region.name).where(
        Region.id.in_({a.scope_region_id for a in awards}))).all())

    withdrawn = withdrawn_of(AwardType.RED_FLAG, (a.id for a in awards))

    def ref(org_id):
        return None if org_id is None else {"id": org_id, "name": orgs.get(org_id)}

    return [{
        "id": a.id, "period": a.period, **withdrawal_fields(withdrawn.get(a.id)),
        "scope": {"key": a.scope_key, "region_id": a.scope_region_id, "name": regions.get(a.scope_region_id)},
        "organization": ref(a.organization_id), "previous_holder": ref(a.previous_holder_id),
        "kind": a.kind, "kind_name": RED_FLAG_KIND_NAMES.get(a.kind) if a.kind else None,
        "score": a.score, "report_rate": None if a.report_rate_bp is None else Decimal(a.report_rate_bp) / BP,
        "unexcused_absences": a.unexcused_absences, "reason": a.reason, "candidate_count": a.candidate_count,
        "cutoff_at": a.cutoff_at, "policy_version": a.policy_version, "checksum": a.checksum,
    } for a in awards]

"""Reading 业务之星: runs and candidates for reviewers (admins; community admins for their communities), the
published winners for everyone signed in (names in one query per page, never one per row), and
``verify_star_run``, which recomputes a stored run from the ledger at its cutoff."""

from __future__ import annotations

from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import db
from points_service.domain.access import Principal, authorize, nodes_in_scope
from points_service.domain.awards.withdrawals import withdrawal_fields, withdrawn_of
from points_service.domain.periods import Period, parse_period
from points_service.domain.policy import policy_version as stored_policy
from points_service.domain.stars.facts import (
    confirmed_reporters,
    facts_from,
    ledger_facts,
    micro_wish_items,
    selection_context,
)
from points_service.domain.stars.rules import canonical_row, canonical_values, checksum_of, select_stars
from points_service.domain.stars.runs import find_run, publicity_deadline, run_header, stored_outcomes, upheld_members
from points_service.models import (
    AwardType,
    Member,
    Organization,
    Region,
    Role,
    StarCandidate,
    StarObjection,
    StarRun,
    StarRunStatus,
)

VISIBLE_STATUSES = (StarRunStatus.PUBLISHED, StarRunStatus.FINALIZED)
PUBLIC_STATUS = {StarRunStatus.PUBLISHED: "publicity", StarRunStatus.FINALIZED: "final"}


def get_star_run(actor: Principal, run_id: int) -> StarRun:
    authorize(actor, "star.review")  # before the lookup: others learn nothing about which runs exist
    return find_run(run_id)


def list_star_runs(actor: Principal, period: Period | None = None) -> sa.Select:
    authorize(actor, "star.review")
    statement = sa.select(StarRun).order_by(StarRun.id.desc())
    return statement if period is None else statement.where(StarRun.period == period.key)


def candidate_scope(actor: Principal) -> ColumnElement[bool]:
    """Admins see every candidate; community admins those living in the communities they cover."""
    if actor.is_admin:
        return sa.true()
    communities = nodes_in_scope(actor, Region, Role.COMMUNITY_ADMIN)
    return sa.false() if communities is None else StarCandidate.community_id.in_(communities)


def objection_scope(actor: Principal) -> ColumnElement[bool]:
    """The objections an actor may read: those about a candidate of the run he may see (``candidate_scope``)."""
    return sa.exists().where(StarCandidate.run_id == StarObjection.run_id,
                             StarCandidate.member_id == StarObjection.member_id, candidate_scope(actor))


def list_candidates(actor: Principal, run_id: int, *, scope_id: int | None = None, eligible: bool | None = None,
                    winner: bool | None = None) -> sa.Select:
    """A run's candidates with their reasons, by scope and place (the ineligible last, by member id)."""
    run = get_star_run(actor, run_id)
    statement = (sa.select(StarCandidate).where(StarCandidate.run_id == run.id, candidate_scope(actor))
                 .order_by(StarCandidate.scope_id, StarCandidate.position.is_(None), StarCandidate.position,
                           StarCandidate.member_id))
    for column, value in ((StarCandidate.scope_id, scope_id), (StarCandidate.eligible, eligible),
                          (StarCandidate.winner, winner)):
        if value is not None:
            statement = statement.where(column == value)
    return statement


def published_stars(actor: Principal, period: Period) -> sa.Select:
    """The winners of the quarter's published (in publicity) or finalized run, for everyone signed in."""
    authorize(actor, "stars.view")
    return (sa.select(StarCandidate).join(StarRun, StarRun.id == StarCandidate.run_id)
            .where(StarRun.period == period.key, StarRun.status.in_(VISIBLE_STATUSES), StarCandidate.winner)
            .order_by(StarCandidate.scope_id, StarCandidate.position))


# ------------------------------------------------------------------------------------------ describing

def _names(model, ids) -> dict[int, str]:
    ids = set(ids)
    if not ids:
        return {}
    return dict(db.session.execute(sa.select(model.id, model.name).where(model.id.in_(ids))).all())


def describe_candidates(rows: list[StarCandidate], run: StarRun | None = None) -> list[dict]:
    runs = {run.id: run} if run is not None else {
        r.id: r for r in db.session.scalars(sa.select(StarRun).where(StarRun.id.in_({c.run_id for c in rows})))}
    members = _names(Member, (c.member_id for c in rows))
    communities = _names(Region, (c.community_id for c in rows))
    scope_models = {"organization": Organization}
    scopes: dict[tuple[str, int], str] = {}
    for scope_type in {r.scope_type for r in runs.values()}:
        ids = (c.scope_id for c in rows if runs[c.run_id].scope_type == scope_type)
        scopes.update({(scope_type, i): n for i, n in _names(scope_models.get(scope_type, Region), ids).items()})
    withdrawn = withdrawn_of(AwardType.STAR, (c.id for c in rows if c.winner))
    return [{
        "id": c.id, **withdrawal_fields(withdrawn.get(c.id)),
        "member": {"id": c.member_id, "name": members.get(c.member_id)},
        "community": {"id": c.community_id, "name": communities.get(c.community_id)},
        "scope": {"type": runs[c.run_id].scope_type, "id": c.scope_id,
                  "name": scopes.get((runs[c.run_id].scope_type, c.scope_id))},
        "period": runs[c.run_id].period,
        "status": PUBLIC_STATUS.get(runs[c.run_id].status, str(runs[c.run_id].status)),
        "points": c.points, "activities": c.activities, "hours": c.hours, "micro_wishes": c.micro_wishes,
        "disqualifying": c.disqualifying, "reported": c.reported, "reached_at": c.reached_at,
        "eligible": c.eligible, "position": c.position, "winner": c.winner, "reasons": c.reasons,
    } for c in rows]


def describe_run(actor: Principal, run: StarRun) -> dict:
    """The run with the winners and objections the actor may see, narrowed as the candidates list is (community
    admins: their communities'); the counts are the whole run's."""
    winners = db.session.scalars(sa.select(StarCandidate).where(StarCandidate.run_id == run.id, StarCandidate.winner,
                                                                candidate_scope(actor))
                                 .order_by(StarCandidate.scope_id, StarCandidate.position)).all()
    objections = db.session.scalars(sa.select(StarObjection).where(StarObjection.run_id == run.id,
                                                                   objection_scope(actor))
                                    .order_by(StarObjection.id)).all()
    return {
        "id": run.id, "period": run.period, "scope_type": run.scope_type, "status": run.status,
        "policy_version": run.policy_version, "cutoff_at": run.cutoff_at, "checksum": run.checksum,
        "candidate_count": run.candidate_count, "eligible_count": run.eligible_count,
        "winner_count": run.winner_count, "publicity_ends_on": run.publicity_ends_on,
        "publicity_ends_at": publicity_deadline(run), "created_at": run.created_at, "published_at": run.published_at,
        "finalized_at": run.finalized_at, "winners": describe_candidates(list(winners), run),
        "objections": objections,
    }


# ---------------------------------------------------------------------------------------- verification

@dataclass(frozen=True)
class StarVerification:
    run_id: int
    matches: bool
    stored_checksum: str
    recomputed_checksum: str
    differences: list[dict] = field(default_factory=list)  # at most MAX_DIFFERENCES rows: stored vs recomputed


MAX_DIFFERENCES = 20


def verify_star_run(run: StarRun) -> StarVerification:
    """Recompute the run from the ledger at its cutoff (points summed from entries, not from totals), for the
    candidates and places it froze and the objections it upheld, and compare row by row and by checksum."""
    policy, period = stored_policy(run.policy_version), parse_period(run.period)
    stored = stored_outcomes(run)
    context = selection_context(period, policy, run.scope_type, upheld_members(run))
    ledger = ledger_facts(period, run.cutoff_at, micro_wish_items=micro_wish_items(policy),
                          disqualifying_items=policy.stars.disqualifying_items)
    reporters = confirmed_reporters(run.cutoff_at, context.half_key)
    recomputed = select_stars([
        facts_from(o.facts.member_id, o.facts.community_id, o.facts.scope_id,
                   ledger[o.facts.member_id].points if o.facts.member_id in ledger else 0,
                   ledger.get(o.facts.member_id), o.facts.member_id in reporters)
        for o in stored], policy.stars, context)
    header = run_header(run)
    differences = []
    for old, new in zip(stored, recomputed, strict=True):
        if len(differences) < MAX_DIFFERENCES and canonical_values(old) != canonical_values(new):
            differences.append({"stored": canonical_row(old), "recomputed": canonical_row(new)})
    checksum = checksum_of(header, (canonical_values(outcome) for outcome in recomputed))
    return StarVerification(run.id, checksum == run.checksum and not differences, run.checksum, checksum,
                            differences)


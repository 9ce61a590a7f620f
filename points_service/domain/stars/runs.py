"""业务之星: the quarterly run, its publicity (公示) with objections, and freezing it.

    proposed ──publish──> published ──finalize──> finalized        (frozen by database triggers)
    proposed ──(a new proposal for the same quarter)──> withdrawn   (kept, frozen)

- ``propose_star_run`` (admin) or the ``star_propose`` job (system actor, quarter day 1) computes a run for
  a CLOSED quarter: every active member is a candidate with his facts as of the cutoff (the quarter's end),
  eligibility reasons, place and winner flag (``rules``). Proposing again replaces a run that is only
  proposed (the old one becomes ``withdrawn``); once published or finalized the quarter is closed: 409
  ``star_run_exists`` and nothing changes. The job skips a quarter that already has a run.
- ``publish_star_run`` fixes the window: ``publicity_working_days`` working days after the publication day
  (``calendar``); objections are accepted until the end of its last day.
- ``decide_objection`` upheld: the member becomes ineligible (``objection_upheld``) and the winners of his
  scope are recomputed within the run, with the scope's quota as publicized (``rules``): the next eligible
  member replaces a winner objected to, and no other winner loses his place; the checksum follows. When that
  brings in a winner who was not publicized, the window is counted again after the decision day: every winner
  gets his full 公示 (the others are told the new end); a winner removed, that the result changed.
- ``finalize_star_run``: 409 ``objections_open`` while any objection is open, ``publicity_not_ended`` before the
  window has ended. ``reading.verify_star_run`` recomputes a run from the ledger at its cutoff.

Transitions are compare-and-set UPDATEs, so of two concurrent deciders exactly one wins. Each writes an audit row.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db, utcnow
from points_service.domain import notifications
from points_service.domain.access import Principal, allowed, authorize, authorize_or_hide
from points_service.domain.audit import audit
from points_service.domain.awards.points import credit_star_winners
from points_service.domain.calendar import working_days_after
from points_service.domain.errors import Conflict, InvalidTransition, NotFound, ValidationFailed
from points_service.domain.periods import LOCAL_TZ, Period, PeriodKind, local_midnight, parse_period
from points_service.domain.policy import Policy, policy_in_force
from points_service.domain.policy import policy_version as stored_policy
from points_service.domain.stars.facts import gather_facts, selection_context
from points_service.domain.stars.rules import (
    StarFacts,
    StarOutcome,
    canonical_values,
    checksum_of,
    select_stars,
)
from points_service.models import ObjectionStatus, StarCandidate, StarObjection, StarRun, StarRunStatus
from points_service.transactions import driver_cursor

INSERT_CHUNK = 5000

TRANSITIONS: dict[StarRunStatus, frozenset[StarRunStatus]] = {
    StarRunStatus.PROPOSED: frozenset({StarRunStatus.PUBLISHED, StarRunStatus.WITHDRAWN}),
    StarRunStatus.PUBLISHED: frozenset({StarRunStatus.FINALIZED}),
    StarRunStatus.FINALIZED: frozenset(),
    StarRunStatus.WITHDRAWN: frozenset(),
}


class PeriodNotEnded(Conflict):
    code, message = "period_not_ended", "该季度尚未结束，结束后才能评选"


class StarRunExists(Conflict):
    code, message = "star_run_exists", "该季度的评选已公示或已确定，不能重新评选"


class ObjectionsOpen(Conflict):
    code, message = "objections_open", "还有未处理的异议，处理后才能确定结果"


class PublicityNotEnded(Conflict):
    code, message = "publicity_not_ended", "公示期尚未结束，不能确定结果"


# ------------------------------------------------------------------------------------ the state machine

def can_transition(start: StarRunStatus, end: StarRunStatus) -> bool:
    return end in TRANSITIONS.get(StarRunStatus(start), frozenset())


def publicity_deadline(run: StarRun) -> datetime | None:
    """The instant publicity ends: midnight after its last working day (Asia/Shanghai)."""
    return None if run.publicity_ends_on is None else local_midnight(run.publicity_ends_on + timedelta(days=1))


def in_publicity(run: StarRun, now: datetime) -> bool:
    return run.status == StarRunStatus.PUBLISHED and now < publicity_deadline(run)


def open_objections(run: StarRun) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(StarObjection).where(
        StarObjection.run_id == run.id, StarObjection.status == ObjectionStatus.OPEN))


def can_publish(actor: Principal, run: StarRun) -> bool:
    return allowed(actor, "star.run", run) and can_transition(run.status, StarRunStatus.PUBLISHED)


def can_raise_objection(actor: Principal, run: StarRun, now: datetime) -> bool:
    return allowed(actor, "star.object", run) and in_publicity(run, now)


def can_decide_objection(actor: Principal, run: StarRun, objection: StarObjection) -> bool:
    return (allowed(actor, "star.run", run) and run.status == StarRunStatus.PUBLISHED
            and objection.status == ObjectionStatus.OPEN)


def can_finalize(actor: Principal, run: StarRun, now: datetime) -> bool:
    return (allowed(actor, "star.run", run) and can_transition(run.status, StarRunStatus.FINALIZED)
            and now >= publicity_deadline(run) and open_objections(run) == 0)


def _move(run: StarRun, start: StarRunStatus, end: StarRunStatus, **values) -> None:
    """Compare-and-set: exactly one of two concurrent movers changes the row."""
    result = db.session.execute(sa.update(StarRun).where(StarRun.id == run.id, StarRun.status == start)
                                .values(status=end, **values).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise InvalidTransition("评选状态已变化，请刷新后重试")
    db.session.refresh(run)


# ------------------------------------------------------------------------------------------- proposing

def quarter_of(period: Period | str) -> Period:
    period = parse_period(period) if isinstance(period, str) else period
    if period.kind != PeriodKind.QUARTER:
        raise ValidationFailed({"period": ["业务之星按季度评选，期间应为如 2026-Q3"]})
    return period


def live_run(period: Period) -> StarRun | None:
    return db.session.scalar(sa.select(StarRun).where(StarRun.period == period.key,
                                                      StarRun.status != StarRunStatus.WITHDRAWN))


def propose_star_run(actor: Principal, period: Period | str, *, scope_type: str | None = None,
                     now: datetime | None = None) -> StarRun:
    """Compute the quarter's run (admin). Replaces a run that is only proposed; 409 once published."""
    authorize(actor, "star.run")
    run = _propose(actor, quarter_of(period), scope_type, now or utcnow())
    db.session.commit()
    return run


def propose_quarter_stars(period: Period, policy: Policy | None = None) -> dict:
    """The ``star_propose`` job (inside the runner's transaction): propose unless the quarter has a run."""
    existing = live_run(period)
    if existing is not None:
        return {"run_id": existing.id, "skipped": True}
    run = _propose(None, period, None, utcnow())
    return {"run_id": run.id, "candidates": run.candidate_count, "winners": run.winner_count}


def _propose(actor: Principal | None, period: Period, scope_type: str | None, now: datetime) -> StarRun:
    if now < period.end:
        raise PeriodNotEnded()
    existing = live_run(period)
    if existing is not None and existing.status != StarRunStatus.PROPOSED:
        raise StarRunExists()
    policy = policy_in_force(period.last_instant)
    scope_type = scope_type or policy.stars.scope
    outcomes = select_stars(gather_facts(period, policy, scope_type), policy.stars,
                            selection_context(period, policy, scope_type))
    if existing is not None:
        _move(existing, StarRunStatus.PROPOSED, StarRunStatus.WITHDRAWN)
        audit("star_run.withdraw", actor=actor, target=existing, detail={"period": period.key, "replaced": True})
    run = StarRun(period=period.key, scope_type=scope_type, status=StarRunStatus.PROPOSED,
                  policy_version=policy.version, cutoff_at=period.end, created_by_id=getattr(actor, "user_id", None),
                  created_at=now, checksum="")
    _summarize(run, outcomes)
    try:
        with db.session.begin_nested():
            db.session.add(run)
            db.session.flush()
    except IntegrityError:
        db.session.rollback()
        raise StarRunExists("该季度正在评选，请勿重复提交") from None
    _insert_candidates(run, outcomes)
    audit("star_run.propose", actor=actor, target=run, detail={
        "period": period.key, "scope_type": scope_type, "candidates": run.candidate_count,
        "winners": run.winner_count, "policy_version": run.policy_version, "checksum": run.checksum})
    return run


def run_header(run: StarRun) -> dict:
    return {"period": run.period, "scope_type": run.scope_type, "policy_version": run.policy_version,
            "cutoff_at": run.cutoff_at.isoformat()}


def _summarize(run: StarRun, outcomes: list[StarOutcome]) -> None:
    run.candidate_count = len(outcomes)
    run.eligible_count = sum(outcome.eligible for outcome in outcomes)
    run.winner_count = sum(outcome.winner for outcome in outcomes)
    run.checksum = checksum_of(run_header(run), (canonical_values(outcome) for outcome in outcomes))


def _insert_candidates(run: StarRun, outcomes: list[StarOutcome]) -> None:
    if db.session.get_bind().dialect.name == "postgresql":
        _copy_candidates(run, outcomes)
        return
    for start in range(0, len(outcomes), INSERT_CHUNK):
        db.session.execute(sa.insert(StarCandidate), [_candidate_values(run.id, outcome)
                                                      for outcome in outcomes[start:start + INSERT_CHUNK]])


COPY_COLUMNS = ("run_id", "member_id", "community_id", "scope_id", "points", "activities", "hours", "micro_wishes",
                "disqualifying", "reported", "reached_at", "eligible", "position", "winner", "reasons")


def _copy_candidates(run: StarRun, outcomes: list[StarOutcome]) -> None:
    """PostgreSQL COPY in the use case's own transaction: a city's half a million rows in seconds, where row
    inserts take minutes. Values as the column types store them (hundredths, naive UTC, JSON text)."""
    encoded: dict[tuple[int, ...], str] = {}  # equal reasons are shared dicts (rules.reason): encode once
    cursor = driver_cursor(db.session.connection())
    with cursor.copy(f"COPY {StarCandidate.__tablename__} ({', '.join(COPY_COLUMNS)}) FROM STDIN") as copy:
        for outcome in outcomes:
            f, key = outcome.facts, tuple(map(id, outcome.reasons))
            if key not in encoded:
                encoded[key] = json.dumps(outcome.reasons, ensure_ascii=False)
            reached = None if f.reached_at is None else f.reached_at.astimezone(UTC).replace(tzinfo=None)
            copy.write_row((run.id, f.member_id, f.community_id, f.scope_id, int(f.points * 100), f.activities,
                            int(f.hours * 100), f.micro_wishes, f.disqualifying, f.reported, reached,
                            outcome.eligible, outcome.position, outcome.winner, encoded[key]))


def _candidate_values(run_id: int, outcome: StarOutcome) -> dict:
    f = outcome.facts
    return {"run_id": run_id, "member_id": f.member_id, "community_id": f.community_id, "scope_id": f.scope_id,
            "points": f.points, "activities": f.activities, "hours": f.hours, "micro_wishes": f.micro_wishes,
            "disqualifying": f.disqualifying, "reported": f.reported, "reached_at": f.reached_at,
            "eligible": outcome.eligible, "position": outcome.position, "winner": outcome.winner,
            "reasons": outcome.reasons}


# ------------------------------------------------------------------------------------------ publicity

def find_run(run_id: int, *, lock: bool = False) -> StarRun:
    """The run; ``lock``: under its row lock, re-read, held to the commit (PostgreSQL; SQLite serializes writers)."""
    run = db.session.get(StarRun, run_id, with_for_update=lock or None, populate_existing=lock)
    if run is None:
        raise NotFound("评选不存在")
    return run


def publish_star_run(actor: Principal, run_id: int, *, now: datetime | None = None) -> StarRun:
    now = now or utcnow()
    authorize(actor, "star.run")  # before the lookup: others learn nothing about which runs exist
    run = find_run(run_id)
    if not can_transition(run.status, StarRunStatus.PUBLISHED):
        raise InvalidTransition("只有待发布的评选可以公示")
    ends_on, days = _publicity_window(run, now)
    _move(run, StarRunStatus.PROPOSED, StarRunStatus.PUBLISHED, published_at=now, publicity_ends_on=ends_on)
    audit("star_run.publish", actor=actor, target=run, detail={"publicity_ends_on": ends_on.isoformat(),
                                                              "working_days": days})
    notifications.star_run_published(run)
    db.session.commit()
    return run


def _publicity_window(run: StarRun, start: datetime) -> tuple[date, int]:
    """(last day, working days) of a publicity window counted from the day after ``start``'s (Asia/Shanghai)."""
    days = stored_policy(run.policy_version).stars.publicity_working_days
    return working_days_after(start.astimezone(LOCAL_TZ).date(), days), days


def raise_objection(actor: Principal, run_id: int, member_id: int, reason: str, *,
                    now: datetime | None = None) -> StarObjection:
    """Anyone signed in may object to a candidate while the run is in publicity."""
    now = now or utcnow()
    run = find_run(run_id)
    authorize_or_hide(actor, "star.object", run, NotFound("评选不存在"))  # unpublished: like a missing one
    if not in_publicity(run, now):
        raise InvalidTransition("不在公示期内，不能提出异议")
    if _candidate(run, member_id) is None:
        raise ValidationFailed({"member_id": ["该党员不是本次评选的候选人"]})
    objection = StarObjection(run_id=run.id, member_id=member_id, reason=reason, raised_by_id=actor.user_id,
                              raised_at=now, status=ObjectionStatus.OPEN)
    db.session.add(objection)
    db.session.flush()
    audit("star_objection.raise", actor=actor, target=objection, detail={"run_id": run.id, "member_id": member_id})
    db.session.commit()
    return objection


def decide_objection(actor: Principal, run_id: int, objection_id: int, upheld: bool, comment: str = "", *,
                     now: datetime | None = None) -> StarObjection:
    now = now or utcnow()
    authorize(actor, "star.run")
    run = find_run(run_id, lock=True)  # deciders of one run in turn: each reselects from the other's winners
    objection = db.session.get(StarObjection, objection_id)
    if objection is None or objection.run_id != run.id:
        raise NotFound("异议不存在")
    if run.status != StarRunStatus.PUBLISHED:
        raise InvalidTransition("评选不在公示中，不能处理异议")
    status = ObjectionStatus.UPHELD if upheld else ObjectionStatus.DISMISSED
    result = db.session.execute(sa.update(StarObjection).where(
        StarObjection.id == objection.id, StarObjection.status == ObjectionStatus.OPEN,
    ).values(status=status, decided_by_id=actor.user_id, decided_at=now, comment=comment)
     .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        db.session.rollback()
        raise InvalidTransition("该异议已处理")
    db.session.refresh(objection)
    before = run.winner_count
    newcomers, unseated = (_reselect_scope(run, _candidate(run, objection.member_id).scope_id) if upheld
                           else (set(), set()))
    _tell_changed_winners(run, newcomers, unseated, now)
    audit("star_objection.decide", actor=actor, target=objection, detail={
        "run_id": run.id, "member_id": objection.member_id, "upheld": upheld, "comment": comment,
        "winners_before": before, "winners_after": run.winner_count, "checksum": run.checksum,
        "new_winners": sorted(newcomers), "removed_winners": sorted(unseated),
        "publicity_ends_on": run.publicity_ends_on.isoformat()})
    db.session.commit()
    return objection


def _tell_changed_winners(run: StarRun, newcomers: set[int], unseated: set[int], now: datetime) -> None:
    """The winners removed learn that the result changed (never who objected, nor why); winners brought in were
    not publicized, so the window starts again: they learn until when, the winners still on it its new end."""
    notifications.star_winners_removed(run, unseated)
    if not newcomers:
        return
    previous_end, run.publicity_ends_on = run.publicity_ends_on, _publicity_window(run, now)[0]
    notifications.star_run_published(run, newcomers)
    if run.publicity_ends_on != previous_end:  # not when a decision earlier that day moved it there already
        notifications.star_publicity_extended(run, newcomers)


def finalize_star_run(actor: Principal, run_id: int, *, now: datetime | None = None) -> StarRun:
    now = now or utcnow()
    authorize(actor, "star.run")
    run = find_run(run_id)
    if not can_transition(run.status, StarRunStatus.FINALIZED):
        raise InvalidTransition("只有公示中的评选可以确定结果")
    if open_objections(run):
        raise ObjectionsOpen()
    if now < publicity_deadline(run):
        raise PublicityNotEnded(f"公示期至 {run.publicity_ends_on.isoformat()} 结束，之后才能确定结果")
    _move(run, StarRunStatus.PUBLISHED, StarRunStatus.FINALIZED, finalized_at=now)
    credited = credit_star_winners(run, now)
    audit("star_run.finalize", actor=actor, target=run, detail={"checksum": run.checksum,
                                                               "winners": run.winner_count, "credited": credited})
    db.session.commit()
    return run


def _candidate(run: StarRun, member_id: int) -> StarCandidate | None:
    return db.session.scalar(sa.select(StarCandidate).where(StarCandidate.run_id == run.id,
                                                            StarCandidate.member_id == member_id))


def upheld_members(run: StarRun) -> frozenset[int]:
    return frozenset(db.session.scalars(sa.select(StarObjection.member_id).where(
        StarObjection.run_id == run.id, StarObjection.status == ObjectionStatus.UPHELD)))


def _reselect_scope(run: StarRun, scope_id: int) -> tuple[set[int], set[int]]:
    """Re-run the selection of one scope from its stored facts with the upheld objections, then the summary;
    returns the members who became winners and those who stopped being winners (named in the audit row)."""
    policy = stored_policy(run.policy_version)
    rows = db.session.scalars(sa.select(StarCandidate).where(
        StarCandidate.run_id == run.id, StarCandidate.scope_id == scope_id).order_by(StarCandidate.member_id)).all()
    context = selection_context(parse_period(run.period), policy, run.scope_type, upheld_members(run))
    outcomes = select_stars([facts_of(row) for row in rows], policy.stars, context)
    pairs = list(zip(rows, outcomes, strict=True))
    newcomers = {row.member_id for row, outcome in pairs if outcome.winner and not row.winner}
    unseated = {row.member_id for row, outcome in pairs if row.winner and not outcome.winner}
    for row, outcome in pairs:
        row.eligible, row.position, row.winner, row.reasons = (outcome.eligible, outcome.position, outcome.winner,
                                                               outcome.reasons)
    db.session.flush()
    _summarize(run, stored_outcomes(run))
    return newcomers, unseated


def facts_of(row) -> StarFacts:
    return StarFacts(row.member_id, row.community_id, row.scope_id, row.points, row.activities, row.hours,
                     row.micro_wishes, row.disqualifying, row.reported, row.reached_at)


def stored_outcomes(run: StarRun) -> list[StarOutcome]:
    """The run's candidate rows as outcomes, in member id order: plain columns (no ORM object per row), and
    each distinct reasons text decoded once (a city has a few thousand distinct ones for 500,000 rows)."""
    c = StarCandidate
    rows = db.session.execute(sa.select(c.member_id, c.community_id, c.scope_id, c.points, c.activities, c.hours,
                                        c.micro_wishes, c.disqualifying, c.reported, c.reached_at, c.eligible,
                                        sa.cast(c.reasons, sa.Text), c.position, c.winner)
                              .where(c.run_id == run.id).order_by(c.member_id).execution_options(yield_per=10000))
    decoded: dict[str, list] = {}
    outcomes = []
    for *facts, eligible, reasons, position, winner in rows:
        if reasons not in decoded:
            decoded[reasons] = json.loads(reasons)
        outcomes.append(StarOutcome(StarFacts(*facts), eligible, decoded[reasons], position, winner))
    return outcomes

"""Withdrawing a 业务之星 or 流动红旗 award (admins), with a reason.

The award rows stay as they were (a finalized run and red-flag awards are frozen by the database); an
append-only ``AwardWithdrawal`` (one per award, UNIQUE) marks it, lists show it as withdrawn, and any points
the award credited are reversed by ledger entries in the same transaction — exactly once: a second
withdrawal is 409 ``award_already_withdrawn`` and writes nothing, and the database allows one reversal per entry.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.awards.points import source_id
from points_service.domain.errors import Conflict, NotFound
from points_service.domain.ledger.corrections import award_entries, reverse_entries
from points_service.models import AwardType, AwardWithdrawal, RedFlagAward, StarCandidate, StarRun, StarRunStatus

WITHDRAWABLE_RUNS = (StarRunStatus.PUBLISHED, StarRunStatus.FINALIZED)


class AlreadyWithdrawn(Conflict):
    code, message = "award_already_withdrawn", "该荣誉已撤销"


class NotWithdrawable(Conflict):
    code, message = "award_not_withdrawable", "只有已公示或已确定的当选者、已评出的流动红旗可以撤销"


def withdraw_star(actor: Principal, candidate_id: int, reason: str, *, now: datetime | None = None) -> AwardWithdrawal:
    """Withdraw a winner (his ``star_candidates`` row) of a published or finalized run."""
    authorize(actor, "star.run")
    candidate = db.session.get(StarCandidate, candidate_id)
    if candidate is None:
        raise NotFound("业务之星当选记录不存在")
    run = db.session.get(StarRun, candidate.run_id)
    if not candidate.winner or run.status not in WITHDRAWABLE_RUNS:
        raise NotWithdrawable()
    return _withdraw(actor, AwardType.STAR, candidate, reason, now or utcnow(),
                     {"run_id": run.id, "period": run.period, "member_id": candidate.member_id})


def withdraw_red_flag(actor: Principal, award_id: int, reason: str, *,
                      now: datetime | None = None) -> AwardWithdrawal:
    """Withdraw a flag from its holder (an award without a holder has nothing to withdraw)."""
    authorize(actor, "red_flag.award")
    award = db.session.get(RedFlagAward, award_id)
    if award is None:
        raise NotFound("流动红旗评选记录不存在")
    if award.organization_id is None:
        raise NotWithdrawable()
    return _withdraw(actor, AwardType.RED_FLAG, award, reason, now or utcnow(),
                     {"period": award.period, "scope": award.scope_key, "organization_id": award.organization_id})


def _withdraw(actor: Principal, award_type: AwardType, award, reason: str, now: datetime,
              detail: dict) -> AwardWithdrawal:
    if withdrawn_of(award_type, [award.id]):
        raise AlreadyWithdrawn()
    reversals = reverse_entries(award_entries(source_id(award_type, award.id)), actor,
                                f"撤销荣誉：{reason}"[:200], now)
    withdrawal = AwardWithdrawal(award_type=award_type, award_id=award.id, reason=reason,
                                 reversed_entries=len(reversals), withdrawn_by_id=actor.user_id, withdrawn_at=now)
    try:
        with db.session.begin_nested():
            db.session.add(withdrawal)
            db.session.flush()
    except IntegrityError:  # a concurrent withdrawal got there first: nothing of this one is kept
        db.session.rollback()
        raise AlreadyWithdrawn() from None
    audit(f"{award_type}.withdraw", actor=actor, target=award, detail={
        **detail, "reason": reason, "withdrawal_id": withdrawal.id,
        "reversals": [r.id for r in reversals], "points": [str(r.points) for r in reversals]})
    db.session.commit()
    return withdrawal


def withdrawn_of(award_type: AwardType, award_ids) -> dict[int, AwardWithdrawal]:
    """The withdrawals of these awards, by award id (one query)."""
    ids = set(award_ids)
    if not ids:
        return {}
    rows = db.session.scalars(sa.select(AwardWithdrawal).where(AwardWithdrawal.award_type == award_type,
                                                               AwardWithdrawal.award_id.in_(ids)))
    return {row.award_id: row for row in rows}


def withdrawal_fields(withdrawal: AwardWithdrawal | None) -> dict:
    """What a list shows of an award's withdrawal."""
    return {"withdrawn": withdrawal is not None, "withdrawn_reason": withdrawal and withdrawal.reason,
            "withdrawn_at": withdrawal and withdrawal.withdrawn_at}

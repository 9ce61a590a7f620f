"""Corrections by admins: a reversal entry pointing at its entry, or an audited adjustment.

Nothing is ever edited: a wrong entry stays, and its reversal (same ledger, opposite points) is a new
entry. The database refuses a second reversal of one entry and any reversal of a reversal.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.domain.ledger.credit import insert_entry, lock_subject
from points_service.domain.ledger.settlement import expire_refunded
from points_service.domain.periods import Period
from points_service.domain.policy import policy_in_force
from points_service.models import SETTLEMENT_KINDS, EntryKind, LedgerEntry, LedgerName, SourceType, SubjectType

MAX_ADJUSTMENT = Decimal("1000")
ADJUSTMENT_ITEM = "admin.adjustment"
REVERSAL_ITEM = "admin.reversal"


class AlreadyReversed(Conflict):
    code, message = "already_reversed", "该积分记录已被冲正"


class NotReversible(Conflict):
    code, message = "not_reversible", "冲正记录不能再次冲正"


class OrderEntryNotReversible(Conflict):
    code, message = "order_entry_not_reversible", "该记录属于积分超市订单，不能冲正；未取货的订单请取消订单退还积分"


class SettlementEntryNotReversible(Conflict):
    code = "settlement_entry_not_reversible"
    message = "衰减、清零和过期记录由结算任务按积分政策生成，不能冲正；如有错误请通过积分调整更正"


def reverse_entry(actor: Principal, entry_id: int, reason: str, *, at: datetime | None = None) -> LedgerEntry:
    authorize(actor, "ledger.correct")
    entry = db.session.get(LedgerEntry, entry_id)
    if entry is None:
        raise NotFound("积分记录不存在")
    if entry.source_type == SourceType.ORDER:
        # The order's refund is the one reversal its debit may have (UNIQUE reverses_id): reversed here, the
        # order would stay open with a refund that can never be written, and its cancel or expiry would fail.
        raise OrderEntryNotReversible()
    if entry.kind in SETTLEMENT_KINDS:
        # Reversed, a decay, reset or expiry would come back as a scoring entry (earned in its own period, on the
        # boards, on the standing score): the jobs' entries follow from the policy, so an adjustment corrects them.
        raise SettlementEntryNotReversible()
    if entry.kind == EntryKind.REVERSAL:
        raise NotReversible()
    lock_subject(entry.subject_type, entry.subject_id)
    reversal = _reversal_of(entry, actor, reason, f"reversal:{entry.id}", at or utcnow())
    if insert_entry(reversal) is not reversal:  # the key was taken: this entry is already reversed
        db.session.rollback()
        raise AlreadyReversed()
    expire_refunded(reversal, entry.credited_at)  # a debit undone: its points keep their original expiry
    audit("ledger.reverse", actor=actor, target=entry, detail={"reversal_id": reversal.id, "reason": reason})
    db.session.commit()
    return reversal


def _reversal_of(entry: LedgerEntry, actor: Principal, reason: str, key: str, at: datetime) -> LedgerEntry:
    return LedgerEntry(
        subject_type=entry.subject_type, subject_id=entry.subject_id, ledger=entry.ledger,
        kind=EntryKind.REVERSAL, item_code=entry.item_code, points=-entry.points,
        points_requested=-entry.points, occurred_at=entry.occurred_at, credited_at=at,
        policy_version=entry.policy_version, source_type=SourceType.ADMIN, source_id=str(entry.id),
        actor_id=actor.user_id, reason=reason, idempotency_key=key, reverses_id=entry.id,
        reverses_kind=entry.kind,
    )


def adjust(actor: Principal, subject_type: SubjectType, subject_id: int, points: Decimal, reason: str, *,
           ledger: LedgerName = LedgerName.ASSESSMENT, request_key: str, at: datetime | None = None,
           period: Period | None = None) -> LedgerEntry:
    """An audited manual adjustment. ``request_key`` makes a retried request write one entry. ``period``: the past
    period it corrects (stored on the entry; the annual statement of that year shows it as its correction)."""
    authorize(actor, "ledger.correct")
    at = at or utcnow()
    _check_adjustment(points, ledger, period, at)
    lock_subject(subject_type, subject_id)
    entry = insert_entry(LedgerEntry(
        subject_type=subject_type, subject_id=subject_id, ledger=ledger, kind=EntryKind.ADJUSTMENT,
        item_code=ADJUSTMENT_ITEM, points=points, points_requested=points, occurred_at=at, credited_at=at,
        policy_version=policy_in_force(at).version, source_type=SourceType.ADMIN, source_id=request_key,
        actor_id=actor.user_id, reason=reason, idempotency_key=f"adjustment:{actor.user_id}:{request_key}",
        corrects_period=period and period.key,
    ))
    audit("ledger.adjust", actor=actor, target_type="ledger_entries", target_id=entry.id,
          detail={"subject": f"{subject_type}:{subject_id}", "points": str(points), "reason": reason,
                  **({"corrects_period": period.key} if period else {})})
    db.session.commit()
    return entry


def _check_adjustment(points: Decimal, ledger: LedgerName, period: Period | None, at: datetime) -> None:
    if points == 0 or abs(points) > MAX_ADJUSTMENT:
        raise ValidationFailed({"points": [f"调整分值须为非零且绝对值不超过 {MAX_ADJUSTMENT}"]})
    if ledger == LedgerName.STANDING:
        raise ValidationFailed({"ledger": ["活跃指数不能直接调整"]})
    if period is not None and period.start > at:
        raise ValidationFailed({"period": ["更正的期间尚未开始"]})
    if period is not None and ledger != LedgerName.ASSESSMENT:
        raise ValidationFailed({"period": ["只有考核积分的调整可以指定更正的期间"]})


def award_entries(source_id: str) -> list[LedgerEntry]:
    """The entries an award credited (``source_id`` like ``star:12``), in id order."""
    return list(db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.source_type == SourceType.ADMIN, LedgerEntry.source_id == source_id,
        LedgerEntry.kind == EntryKind.AWARD).order_by(LedgerEntry.id)))


def reverse_entries(entries: list[LedgerEntry], actor: Principal, reason: str, at: datetime) -> list[LedgerEntry]:
    """Flush-level: one reversal per entry not reversed yet (the database allows one per entry, so a reversal
    already written is found under its key and not counted). Returns the reversals written now."""
    written = []
    for entry in entries:
        lock_subject(entry.subject_type, entry.subject_id)
        reversal = _reversal_of(entry, actor, reason, f"reversal:{entry.id}", at)
        if insert_entry(reversal) is reversal:
            expire_refunded(reversal, entry.credited_at)
            written.append(reversal)
    return written

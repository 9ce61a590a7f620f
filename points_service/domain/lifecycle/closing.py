"""What a deactivation closes: the member's pending reports and records, his sign-ups to activities that have not
ended, and (through ``close_open_orders``) his open 积分超市 orders. Flushes only; the use case commits.

Reports and records waiting for a decision are closed as ``rejected`` with the deactivation's reason, each with
its ``ApprovalEvent`` (a record returned for more information is closed too: nobody will resubmit it).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import Principal
from points_service.domain.market.orders import cancel_open_orders
from points_service.models import (
    Activity,
    ApprovalEvent,
    Member,
    Record,
    RecordStatus,
    Report,
    ReportStatus,
    Signup,
    SignupStatus,
    SubjectType,
)

OPEN_RECORD_STATUSES = (RecordStatus.PENDING, RecordStatus.NEEDS_INFO)


def close_open_orders(actor: Principal, member: Member, reason: str, now: datetime) -> int:
    """His open 积分超市 orders are cancelled with the reason and refunded (stock released)."""
    return cancel_open_orders(member.id, actor, reason, now)


def close_open_items(actor: Principal, member: Member, reason: str, now: datetime) -> dict:
    """Close everything of the member's still waiting; returns how many of each were closed."""
    reports = _close(Report, ReportStatus.PENDING, "report", member, actor, reason, now,
                     {"reason": reason[:200]})
    records = _close(Record, OPEN_RECORD_STATUSES, "record", member, actor, reason, now,
                     {"decision_comment": reason[:200]})
    signups = _withdraw_signups(member, now)
    orders = close_open_orders(actor, member, reason, now)
    return {"reports_closed": reports, "records_closed": records, "signups_withdrawn": signups,
            "orders_cancelled": orders}


def _close(model, statuses, target_type: str, member: Member, actor: Principal, reason: str, now: datetime,
           comment_column: dict) -> int:
    statuses = (statuses,) if isinstance(statuses, str) else statuses
    waiting = db.session.execute(sa.select(model.id, model.status).where(
        model.subject_type == SubjectType.MEMBER, model.subject_id == member.id,
        model.status.in_(statuses)).order_by(model.id).with_for_update()).all()
    for target_id, status in waiting:
        # Compare-and-set like every decision: a decider who got there first keeps his decision.
        result = db.session.execute(sa.update(model).where(model.id == target_id, model.status == status).values(
            status="rejected", decided_by_id=actor.user_id, decided_at=now, **comment_column))
        if result.rowcount == 1:
            db.session.add(ApprovalEvent(target_type=target_type, target_id=target_id, from_status=str(status),
                                         to_status="rejected", actor_id=actor.user_id, at=now, comment=reason[:200]))
    return len(waiting)


def _withdraw_signups(member: Member, now: datetime) -> int:
    not_ended = sa.select(Activity.id).where(Activity.ends_at > now)
    result = db.session.execute(sa.update(Signup).where(
        Signup.member_id == member.id, Signup.status == SignupStatus.SIGNED_UP,
        Signup.activity_id.in_(not_ended)).values(status=SignupStatus.WITHDRAWN))
    return result.rowcount

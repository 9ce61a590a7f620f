"""The events other use cases report, each one call inside their transaction (flushes only).

Each turns a domain object into the event's values (config.EVENT_VALUES) and a source key that makes a
retried event one message: ``record:12:approved``, ``record:12:needs_info:2`` (its second send-back),
``order:7:cancelled``, ``activity:3:cancelled``, ``activity:3:moved:41`` (the edit's audit row),
``star_run:5:removed``, ``star_run:5:extended:2026-10-20``.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.notifications.outbox import notify
from points_service.domain.policy import policy_in_force
from points_service.models import (
    Activity,
    ApprovalEvent,
    AuditEntry,
    MarketOrder,
    OrderState,
    Record,
    RecordStatus,
    Region,
    Report,
    ReportStatus,
    Signup,
    SignupStatus,
    StarCandidate,
    StarRun,
    SubjectType,
)

_RECORD_EVENTS = {RecordStatus.APPROVED: ("record_approved", "已通过"),
                  RecordStatus.REJECTED: ("record_rejected", "未通过"),
                  RecordStatus.NEEDS_INFO: ("record_needs_info", "需补充")}
_REPORT_EVENTS = {ReportStatus.CONFIRMED: ("report_confirmed", "已确认"),
                  ReportStatus.REJECTED: ("report_rejected", "未通过")}
_ORDER_EVENTS = {OrderState.PLACED: "order_ready", OrderState.CANCELLED: "order_cancelled",
                 OrderState.EXPIRED: "order_expired"}
_SCOPES = {"community": "社区", "street": "街道", "organization": "单位"}


def record_decided(target, comment: str = "") -> None:
    """A member's record approved, rejected or sent back for more information (with the reason or what to add);
    other targets are ignored."""
    if not isinstance(target, Record) or target.subject_type != SubjectType.MEMBER:
        return
    if target.status not in _RECORD_EVENTS:
        return
    event, result = _RECORD_EVENTS[target.status]
    source_key, decided_at = f"record:{target.id}:{target.status}", target.decided_at
    if target.status == RecordStatus.NEEDS_INFO:
        source_key, decided_at = _send_back(target)
    item = policy_in_force(target.occurred_at).items.get(target.item_code)
    notify(target.subject_id, event, source_key, {
        "record_id": target.id, "item_name": item.name if item else target.item_code, "result": result,
        "reason": comment or "-", "decided_at": decided_at or utcnow()})


def _send_back(record: Record) -> tuple[str, datetime | None]:
    """The latest request for more information on the record: its key and time. A record may be sent back,
    answered and sent back again, each its own notice (``record:12:needs_info:2``, the second); the same one
    reported again keeps its number, so it writes nothing more."""
    count, at = db.session.execute(sa.select(sa.func.count(), sa.func.max(ApprovalEvent.at)).where(
        ApprovalEvent.target_type == "record", ApprovalEvent.target_id == record.id,
        ApprovalEvent.to_status == str(RecordStatus.NEEDS_INFO))).one()
    return f"record:{record.id}:{RecordStatus.NEEDS_INFO}:{count}", at


def report_decided(report: Report, comment: str = "") -> None:
    """A member's 报到 confirmed or rejected (with the reason)."""
    if report.subject_type != SubjectType.MEMBER or report.status not in _REPORT_EVENTS:
        return
    event, result = _REPORT_EVENTS[report.status]
    community = db.session.get(Region, report.community_id)
    notify(report.subject_id, event, f"report:{report.id}:{report.status}", {
        "report_id": report.id, "community_name": community.name if community else "", "result": result,
        "reason": comment or "-", "decided_at": report.decided_at or utcnow()})


def star_run_published(run: StarRun, winners: Iterable[int] | None = None) -> None:
    """Every winner of a published 业务之星 run learns he is in publicity, and until when; ``winners``: only
    these (those an upheld objection brought in, whose publicity starts again)."""
    if winners is None:
        winners = db.session.scalars(sa.select(StarCandidate.member_id).where(
            StarCandidate.run_id == run.id, StarCandidate.winner.is_(True))).all()
    winners = sorted(winners)
    selection = _selection(run)
    for member_id in winners:
        notify(member_id, "star_published", f"star_run:{run.id}", {
            "run_id": run.id, "selection": selection, "result": "公示中",
            "publicity_ends_on": run.publicity_ends_on})


def star_publicity_extended(run: StarRun, newcomers: Iterable[int]) -> None:
    """The winners still on a run whose 公示 window started again (a winner came in) learn its new end; not the
    ``newcomers``, told as at publication. Keyed by the new end: each extension once, a replay nothing more."""
    winners = db.session.scalars(sa.select(StarCandidate.member_id).where(
        StarCandidate.run_id == run.id, StarCandidate.winner.is_(True),
        StarCandidate.member_id.not_in(sorted(newcomers))).order_by(StarCandidate.member_id)).all()
    ends_on = run.publicity_ends_on
    for member_id in winners:
        notify(member_id, "star_publicity_extended", f"star_run:{run.id}:extended:{ends_on.isoformat()}", {
            "run_id": run.id, "selection": _selection(run), "result": "公示延长", "publicity_ends_on": ends_on})


def star_winners_removed(run: StarRun, members: Iterable[int]) -> None:
    """Winners an upheld objection took off a published run learn that the quarter's result changed after its
    公示 review; never who objected or why (the objection's text is the objector's, and names him to the member)."""
    for member_id in sorted(members):
        notify(member_id, "star_removed", f"star_run:{run.id}:removed", {
            "run_id": run.id, "selection": _selection(run), "quarter": _quarter_name(run.period)})


def _selection(run: StarRun) -> str:
    return f"{run.period} {_SCOPES.get(run.scope_type, '')}"


def _quarter_name(period_key: str) -> str:
    """``2026-Q3`` as a member reads it: 2026年第3季度."""
    year, _, quarter = period_key.partition("-Q")
    return f"{year}年第{quarter}季度"


def order_moved(order: MarketOrder, to_state: OrderState, reason: str = "") -> None:
    """A 积分超市 order placed (ready for pick-up), cancelled or expired (refunded)."""
    event = _ORDER_EVENTS.get(to_state)
    if event is None:
        return
    notify(order.member_id, event, f"order:{order.id}:{to_state}", {
        "order_id": order.id, "item_name": order.item.name, "pickup_code": order.pickup_code,
        "pickup_deadline": order.pickup_deadline, "reason": reason or "-", "points": order.points})


def activity_cancelled(activity: Activity, reason: str) -> None:
    """Every member signed up (not withdrawn) for a cancelled activity learns it, with the reason; once each."""
    for member_id in _signed_up(activity):
        notify(member_id, "activity_cancelled", f"activity:{activity.id}:cancelled", {
            "activity_id": activity.id, "activity_title": activity.title, "starts_at": activity.starts_at,
            "reason": reason or "-"})


def activity_moved(activity: Activity, edit: AuditEntry, venue_moved: bool) -> None:
    """Every member signed up (not withdrawn) for a published activity an edit moved (its time or its venue)
    learns the new time and place. Keyed by the edit's audit row, so each move once, and a move back is a move."""
    db.session.flush()  # the edit's audit row gets its id
    community = db.session.get(Region, activity.community_id)
    # An activity's venue is coordinates only (no address): the community names the place, and whether the
    # check-in spot (shown on the activity's page) moved.
    place = f"{community.name}，签到位置{'已调整' if venue_moved else '不变'}"
    for member_id in _signed_up(activity):
        notify(member_id, "activity_moved", f"activity:{activity.id}:moved:{edit.id}", {
            "activity_id": activity.id, "activity_title": activity.title, "starts_at": activity.starts_at,
            "ends_at": activity.ends_at, "place": place})


def _signed_up(activity: Activity) -> list[int]:
    return db.session.scalars(sa.select(Signup.member_id).where(
        Signup.activity_id == activity.id, Signup.status == SignupStatus.SIGNED_UP).order_by(Signup.member_id)).all()

"""The members file's optional status columns (状态, 状态生效日期, 状态说明): a deactivation or reactivation per
row, checked at planning time (row-level errors) and applied through ``domain/lifecycle`` with the rest of the file.
A deactivation dated after today is scheduled, as through the API.
"""

from __future__ import annotations

from points_service.db import utcnow
from points_service.domain.access import Principal, allowed
from points_service.domain.errors import ServiceError
from points_service.domain.lifecycle.scheduled import ChangeAlreadyScheduled, has_waiting_change, schedule
from points_service.domain.lifecycle.status import (
    apply_deactivation,
    apply_reactivation,
    effective_instant,
    local_today,
)
from points_service.domain.roster.rows import ACTIVE, MemberRow, RowError
from points_service.models import DeactivationReason, Member, ScheduledChangeKind

STATUS = "状态"


def status_change_step(row: MemberRow, member: Member | None, actor: Principal, other_changes: bool,
                       moves: bool = False):
    """None (nothing to change), a RowError, or a Step applying the row's status change. ``other_changes``: the
    row renames or moves the member; ``moves``: it moves him (another branch, community or grid)."""
    from points_service.domain.roster.plans import SCHEDULED, UPDATED, Step  # plans imports this module

    if row.status is None or (member is not None and (row.status == ACTIVE) == member.is_active):
        if member is not None and not member.is_active and other_changes:
            return RowError(row.row, "已停用的党员不能转接或改名；请先在“状态”列填“在册”恢复", STATUS)
        return None
    if member is None:
        return RowError(row.row, "名册中没有该党员，不能以停用状态导入", STATUS)
    if not allowed(actor, "member.manage_status", member):
        return RowError(row.row, "无权变更该党员的状态：不在您管理的组织范围内", STATUS)
    now = utcnow()
    if row.status == ACTIVE:
        if moves:  # the move would run on him while inactive: his old branch counted off twice, two affiliations
            return RowError(row.row, "恢复与转接请分两次导入：本行的支部、社区或网格与名册不同", STATUS)
        return Step(row.row, UPDATED, lambda: apply_reactivation(actor, member, row.status_reason, now), member.id)
    if other_changes:
        return RowError(row.row, "停用与转接请分两次导入：本行的支部、社区或网格与名册不同", STATUS)
    reason_code = DeactivationReason(row.status)
    if row.status_on > local_today(now):  # as through the API: stored, applied on its date by the job
        if has_waiting_change(member.id):
            return RowError(row.row, ChangeAlreadyScheduled.message, "状态生效日期")
        return Step(row.row, SCHEDULED, lambda: schedule(actor, member, ScheduledChangeKind.DEACTIVATE, row.status_on,
                                                         now, reason_code=reason_code, reason=row.status_reason),
                    member.id)
    try:
        effective_instant(member, row.status_on, now)
    except ServiceError as exc:
        return RowError(row.row, "；".join(exc.data["errors"]["effective_on"]), "状态生效日期")
    return Step(row.row, UPDATED, lambda: apply_deactivation(actor, member, reason_code, row.status_reason,
                                                             row.status_on, now), member.id)

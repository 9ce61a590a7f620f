"""Member lifecycle: POST /members/{id}/deactivate, /reactivate, /transfer, GET /members/{id}/status-changes, and
the future-dated changes waiting for their date: GET /members/{id}/scheduled-changes, POST .../{id}/cancel; and
POST /members/{id}/unbind-wechat (解绑微信), asked of the same people (``domain/accounts/unbinding``).

A deactivation or transfer dated after today answers 202 with the scheduled change instead of applying it."""

from __future__ import annotations

import marshmallow as ma
from flask import jsonify

from points_service.api.core import Blueprint, envelope
from points_service.api.fields import CleanString, Day, Instant, RowId
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.api.structure import RosterMemberSchema
from points_service.domain.accounts.unbinding import unbind_wechat
from points_service.domain.lifecycle import due, status
from points_service.domain.lifecycle import transfer as transfers
from points_service.models import (
    DEACTIVATION_REASON_NAMES,
    DeactivationReason,
    ScheduledChangeKind,
    ScheduledChangeStatus,
    ScheduledMemberChange,
    StatusChangeKind,
)

blp = Blueprint("lifecycle", __name__, description="党员状态：停用（离职、退休、组织关系转出）、恢复与转接")

REASONS = "、".join(f"{code.value}（{name}）" for code, name in DEACTIVATION_REASON_NAMES.items())


class DeactivateArgs(ma.Schema):
    reason_code = ma.fields.Enum(DeactivationReason, by_value=True, required=True,
                                 metadata={"description": REASONS})
    reason = CleanString(required=True, max_length=200, metadata={"description": "停用说明"})
    effective_on = Day(required=True, metadata={"description": "生效日期；晚于今天则预约，到期自动生效"})


class ReactivateArgs(ma.Schema):
    reason = CleanString(load_default="", min_length=0, max_length=200)


class TransferArgs(ma.Schema):
    branch_id = RowId(load_default=None, strict=True, metadata={"description": "转入党支部"})
    community_id = RowId(load_default=None, strict=True, metadata={"description": "新居住社区"})
    grid_id = RowId(load_default=None, strict=True, metadata={"description": "新网格（属于该社区）"})
    effective_on = Day(load_default=None, metadata={"description": "生效日期，默认今天；晚于今天则预约"})
    reason = CleanString(load_default="", min_length=0, max_length=200)

    @ma.validates_schema
    def something_moves(self, data, **_kwargs):
        if data["branch_id"] is None and data["community_id"] is None and data["grid_id"] is None:
            raise ma.ValidationError("请至少指定转入的支部、社区或网格", "branch_id")


class UnbindWechatArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200, metadata={"description": "解绑原因（记入审计）"})


class StatusChangeSchema(ma.Schema):
    id = ma.fields.Integer()
    member_id = ma.fields.Integer()
    kind = ma.fields.Enum(StatusChangeKind, by_value=True)
    reason_code = ma.fields.Enum(DeactivationReason, by_value=True, allow_none=True)
    reason = ma.fields.String()
    effective_on = ma.fields.Date()
    effective_at = Instant()
    actor_id = ma.fields.Integer(allow_none=True)
    created_at = Instant()


class ScheduledChangeSchema(ma.Schema):
    id = ma.fields.Integer()
    member_id = ma.fields.Integer()
    kind = ma.fields.Enum(ScheduledChangeKind, by_value=True, metadata={"description": "deactivate / transfer"})
    status = ma.fields.Enum(ScheduledChangeStatus, by_value=True, metadata={
        "description": "scheduled 待生效 / applied 已生效 / cancelled 已取消 / failed 未能生效"})
    reason_code = ma.fields.Enum(DeactivationReason, by_value=True, allow_none=True)
    reason = ma.fields.String()
    effective_on = ma.fields.Date()
    branch_id = ma.fields.Integer(allow_none=True)
    community_id = ma.fields.Integer(allow_none=True)
    grid_id = ma.fields.Integer(allow_none=True)
    actor_id = ma.fields.Integer(allow_none=True)
    created_at = Instant()
    settled_at = Instant(allow_none=True)
    outcome = ma.fields.String(metadata={"description": "取消或未能生效的原因"})


class CancelArgs(ma.Schema):
    reason = CleanString(load_default="", min_length=0, max_length=200)


def _scheduled_or(result):
    """A change dated after today was only scheduled: 202 with the scheduled change."""
    if isinstance(result, ScheduledMemberChange):
        return jsonify(envelope(ScheduledChangeSchema().dump(result))), 202
    return result


@blp.route("/members/<int:member_id>/deactivate", methods=["POST"])
@login_required
@authorize_first("member.manage_status")
@blp.arguments(DeactivateArgs)
@blp.response(201, StatusChangeSchema)
@blp.alt_response(202, schema=ScheduledChangeSchema, description="生效日期晚于今天：已预约，到期由任务自动停用")
def deactivate(args, member_id):
    """停用党员：自生效日期起不能登录、不再积分，退出未结束周期的排行榜；历史、已公布结果与年度考核不变"""
    return _scheduled_or(status.deactivate_member(current_principal(), member_id, args["reason_code"],
                                                  args["reason"], args["effective_on"]))


@blp.route("/members/<int:member_id>/reactivate", methods=["POST"])
@login_required
@authorize_first("member.manage_status")
@blp.arguments(ReactivateArgs)
@blp.response(201, StatusChangeSchema)
def reactivate(args, member_id):
    """恢复已停用的党员：重新登录、积分，并回到排行榜"""
    return status.reactivate_member(current_principal(), member_id, args["reason"])


@blp.route("/members/<int:member_id>/transfer", methods=["POST"])
@login_required
@authorize_first("member.manage_status")
@blp.arguments(TransferArgs)
@blp.response(200, RosterMemberSchema)
@blp.alt_response(202, schema=ScheduledChangeSchema, description="生效日期晚于今天：已预约，到期由任务自动转接")
def transfer(args, member_id):
    """转接党员的组织关系和/或居住社区（按生效日期记入任职历史）"""
    return _scheduled_or(transfers.transfer(current_principal(), member_id, **args))


@blp.route("/members/<int:member_id>/status-changes")
@login_required
@blp.response(200, StatusChangeSchema(many=True))
def status_changes(member_id):
    """党员状态变更历史"""
    return status.status_history(current_principal(), member_id)


@blp.route("/members/<int:member_id>/scheduled-changes")
@login_required
@blp.response(200, ScheduledChangeSchema(many=True))
def scheduled_changes(member_id):
    """预约生效的停用与转接（含已生效、已取消和未能生效的）"""
    return due.scheduled_changes(current_principal(), member_id)


@blp.route("/members/<int:member_id>/scheduled-changes/<int:change_id>/cancel", methods=["POST"])
@login_required
@authorize_first("member.manage_status")
@blp.arguments(CancelArgs)
@blp.response(200, ScheduledChangeSchema)
def cancel_scheduled(args, member_id, change_id):
    """取消尚未生效的预约变更；已生效或已取消的 409 invalid_transition"""
    return due.cancel_scheduled(current_principal(), member_id, change_id, args["reason"])


@blp.route("/members/<int:member_id>/unbind-wechat", methods=["POST"])
@login_required
@authorize_first("member.manage_status")
@blp.arguments(UnbindWechatArgs)
@blp.response(200, RosterMemberSchema)
def unbind(args, member_id):
    """解绑党员的微信：该微信下次登录为未绑定，党员可用新微信重新绑定；该账号的登录状态全部失效

    未绑定微信的党员 409 wechat_not_bound。"""
    return unbind_wechat(current_principal(), member_id, args["reason"])

"""The approvals queue (records and proposed activities) and decisions, one at a time or in a batch.

Ids are typed: ``record:12`` for a self-report or organization record, ``activity:5`` for a proposal.
"""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, PointsField
from points_service.api.pagination import PageArgs, page_of
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.api.structure import NodeRefSchema
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals import queue as approval_queue
from points_service.domain.approvals.decisions import MAX_BATCH, Decision
from points_service.models import RecordStatus

blp = Blueprint("approvals", __name__, description="审批：自主上报、组织记录与活动申请")


class ApprovalQueueArgs(PageArgs):
    status = ma.fields.Enum(RecordStatus, by_value=True, load_default=RecordStatus.PENDING,
                            metadata={"description": "活动申请只在 pending 下列出"})
    item_code = ma.fields.String(load_default=None, validate=ma.validate.Length(max=64))
    start = Instant(data_key="from", load_default=None, metadata={"description": "发生时间（活动开始时间）不早于"})
    end = Instant(data_key="to", load_default=None, metadata={"description": "发生时间（活动开始时间）早于"})


class ApprovalSubjectSchema(ma.Schema):
    type = ma.fields.String(metadata={"description": "member / organization"})
    id = ma.fields.Integer()
    name = ma.fields.String()
    phone = ma.fields.String(allow_none=True, metadata={"description": "党员的脱敏手机号，如 139****0001"})


class QueueItemSchema(ma.Schema):
    id = ma.fields.String(metadata={"example": "record:12", "description": "record:<id> 或 activity:<id>"})
    kind = ma.fields.String(metadata={"description": "record / activity"})
    status = ma.fields.String(metadata={"description": "pending / needs_info / approved / rejected"})
    step = ma.fields.String(allow_none=True, metadata={"description": "活动申请待审环节：organization / community"})
    item_code = ma.fields.String()
    item_name = ma.fields.String()
    subject = ma.fields.Nested(ApprovalSubjectSchema)
    occurred_at = Instant()
    ends_at = Instant(allow_none=True)
    units = PointsField(allow_none=True)
    description = ma.fields.String()
    evidence = ma.fields.List(ma.fields.String())
    submitted_at = Instant()
    community = ma.fields.Nested(NodeRefSchema, allow_none=True)
    comment = ma.fields.String()
    actions = ma.fields.List(ma.fields.String(), metadata={"description": "当前用户可执行的操作"})


class ApprovalCommentArgs(ma.Schema):
    comment = CleanString(load_default="", min_length=0, max_length=200)


class ApprovalRejectArgs(ma.Schema):
    reason = CleanString(required=True, max_length=200)


class ApprovalRequestInfoArgs(ma.Schema):
    comment = CleanString(required=True, max_length=200, metadata={"description": "需要补充的内容"})


class ApprovalBatchArgs(ma.Schema):
    ids = ma.fields.List(ma.fields.String(validate=ma.validate.Length(max=32)), required=True,
                         validate=ma.validate.Length(min=1, max=MAX_BATCH), metadata={"example": ["record:12"]})
    decision = ma.fields.Enum(Decision, by_value=True, required=True,
                              validate=ma.validate.OneOf([Decision.APPROVE, Decision.REJECT]))
    comment = CleanString(load_default="", min_length=0, max_length=200)
    reason = CleanString(load_default="", min_length=0, max_length=200, metadata={"description": "驳回时必填"})


class ApprovalBatchResultSchema(ma.Schema):
    decision = ma.fields.String()
    count = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(QueueItemSchema))


@blp.route("/approvals")
@login_required
@blp.arguments(ApprovalQueueArgs, location="query")
@blp.response(200, page_of(QueueItemSchema))
def queue(args):
    """待我审批的事项（total 即待审数量）：支部书记看本支部党员的上报，社区管理员看本社区的，另含活动申请"""
    filters = approval_queue.QueueFilter(args.pop("status"), args.pop("item_code"), args.pop("start"), args.pop("end"))
    return approval_queue.approval_queue(current_principal(), filters, **args)


def _decided(target) -> approval_queue.QueueItem:
    return approval_queue.describe(current_principal(), [target])[0]


@blp.route("/approvals/<approval_id>/approve", methods=["POST"])
@login_required
@authorize_first("approvals.list")
@blp.arguments(ApprovalCommentArgs)
@blp.response(200, QueueItemSchema)
def approve(args, approval_id):
    """审核通过（记录在同一事务中计分；活动申请进入下一环节或发布）"""
    return _decided(approvals.decide(current_principal(), approval_id, Decision.APPROVE, args["comment"]))


@blp.route("/approvals/<approval_id>/reject", methods=["POST"])
@login_required
@authorize_first("approvals.list")
@blp.arguments(ApprovalRejectArgs)
@blp.response(200, QueueItemSchema)
def reject(args, approval_id):
    """驳回（须填写理由）"""
    return _decided(approvals.decide(current_principal(), approval_id, Decision.REJECT, args["reason"]))


@blp.route("/approvals/<approval_id>/request-info", methods=["POST"])
@login_required
@authorize_first("approvals.list")
@blp.arguments(ApprovalRequestInfoArgs)
@blp.response(200, QueueItemSchema)
def request_info(args, approval_id):
    """退回补充材料（needs_info），党员补充后重新提交"""
    return _decided(approvals.decide(current_principal(), approval_id, Decision.REQUEST_INFO, args["comment"]))


@blp.route("/approvals/batch", methods=["POST"])
@login_required
@authorize_first("approvals.list")
@blp.arguments(ApprovalBatchArgs)
@blp.response(200, ApprovalBatchResultSchema)
def batch(args):
    """批量审批（最多 100 项）：全部成功或全部不变；失败时 data.errors 按编号列出原因"""
    decision = args["decision"]
    note = args["reason"] if decision == Decision.REJECT else args["comment"]
    decided = approvals.decide_batch(current_principal(), args["ids"], decision, note)
    return {"decision": decision, "count": len(decided), "items": approval_queue.describe(current_principal(), decided)}

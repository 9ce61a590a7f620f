"""Self-reported service (虚拟上报), organization records, one's own records and resubmission."""

from __future__ import annotations

from dataclasses import replace

import marshmallow as ma

from points_service import ratelimit
from points_service.api.core import Blueprint
from points_service.api.fields import CleanString, Instant, ItemName, PointsField
from points_service.api.idempotency import client_key, idempotent
from points_service.api.pagination import PageArgs, page_of, paginate
from points_service.api.security import acting_member_required, authorize_first, current_principal, login_required
from points_service.api.uploads import own_upload_link
from points_service.domain.approvals import records
from points_service.domain.approvals.records import MAX_DESCRIPTION, MAX_EVIDENCE, MAX_EVIDENCE_URL_LENGTH, Submission
from points_service.models import RecordStatus, SubjectType
from points_service.transactions import autocommitted

blp = Blueprint("records", __name__, description="自主上报与组织记录（待审核，审核通过后计分）")


class EvidenceLink(ma.fields.String):
    """An https link, or a link to one's photo uploaded here (POST /uploads/evidence)."""

    https = ma.validate.URL(schemes={"https"}, require_tld=True, error="须为 https 开头的有效链接，或本人上传的照片")
    too_long = ma.validate.Length(max=MAX_EVIDENCE_URL_LENGTH)

    def _deserialize(self, value, attr, data, **kwargs):
        text = super()._deserialize(value, attr, data, **kwargs)
        self.too_long(text)
        return text if own_upload_link(text) else self.https(text)


def evidence_field(**kwargs) -> ma.fields.List:
    return ma.fields.List(EvidenceLink(), validate=ma.validate.Length(max=MAX_EVIDENCE), metadata={
        "description": f"佐证材料：https 链接或 POST /uploads/evidence 返回的本人照片链接，最多 {MAX_EVIDENCE} 项"},
        **kwargs)


class OrganizationRecordArgs(ma.Schema):
    item_code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64),
                                 metadata={"example": "org.project_done"})
    occurred_at = Instant(required=True)
    description = CleanString(required=True, max_length=MAX_DESCRIPTION)
    evidence = evidence_field(load_default=list)

    @ma.post_load
    def to_submission(self, data, **_kwargs) -> Submission:
        return Submission(evidence=tuple(data.pop("evidence")), **data)


class MemberRecordArgs(OrganizationRecordArgs):
    item_code = ma.fields.String(required=True, validate=ma.validate.Length(min=1, max=64),
                                 metadata={"example": "member.self_service_hour"})
    hours = PointsField(load_default=None, metadata={"description": "按小时计分的项目必填（0–24），其他不填",
                                                     "example": 2})


class RecordResubmitArgs(ma.Schema):
    description = CleanString(load_default=None, max_length=MAX_DESCRIPTION)
    evidence = evidence_field(load_default=None)


class RecordListArgs(PageArgs):
    status = ma.fields.Enum(RecordStatus, by_value=True, load_default=None)


class RecordSchema(ma.Schema):
    id = ma.fields.Integer()
    approval_id = ma.fields.Function(lambda record: f"record:{record.id}",
                                     metadata={"description": "审批接口使用的编号"})
    subject_type = ma.fields.Enum(SubjectType, by_value=True)
    subject_id = ma.fields.Integer()
    item_code = ma.fields.String()
    item_name = ItemName(dump_only=True)
    occurred_at = Instant()
    units = PointsField(metadata={"description": "按小时项目为时长，按次项目为 1"})
    description = ma.fields.String()
    evidence = ma.fields.List(ma.fields.String())
    status = ma.fields.Enum(RecordStatus, by_value=True)
    route_role = ma.fields.String(metadata={"description": "审核人角色：branch_secretary / community_admin"})
    submitted_at = Instant()
    decided_at = Instant(allow_none=True)
    decision_comment = ma.fields.String(metadata={"description": "审核意见、驳回理由或需补充的内容"})


@blp.route("/records", methods=["POST"])
@autocommitted
@acting_member_required
@ratelimit.limit("RATELIMIT_SELF_REPORT_PER_MEMBER", ratelimit.by_account)
@idempotent
@blp.arguments(MemberRecordArgs)
@blp.response(201, RecordSchema)
@blp.alt_response(409, description="member_inactive：党员身份已停用")
def submit_member_record(submission):
    """党员自主上报服务（待审核）；可带 Idempotency-Key 防重复提交"""
    return records.submit_member_record(current_principal(), replace(submission, request_key=client_key()))


@blp.route("/organizations/<int:org_id>/records", methods=["POST"])
@login_required
@authorize_first("organization.manage")
@idempotent
@blp.arguments(OrganizationRecordArgs)
@blp.response(201, RecordSchema)
def submit_organization_record(submission, org_id):
    """部门党组织上报共建成果（项目完成、解决难题、投入资源），由结对社区审核"""
    return records.submit_organization_record(current_principal(), org_id, replace(submission,
                                                                                   request_key=client_key()))


@blp.route("/records")
@login_required
@blp.arguments(RecordListArgs, location="query")
@blp.response(200, page_of(RecordSchema))
def own_records(args):
    """我的上报记录（本人的，以及本人代组织提交的），最新的在前"""
    return paginate(records.own_records(current_principal(), args.pop("status")), **args)


@blp.route("/records/<int:record_id>/resubmit", methods=["POST"])
@login_required
@ratelimit.limit("RATELIMIT_SELF_REPORT_PER_MEMBER", ratelimit.by_account)
@idempotent
@blp.arguments(RecordResubmitArgs)
@blp.response(200, RecordSchema)
def resubmit(args, record_id):
    """按审核人要求补充材料后重新提交（needs_info → pending）；可带 Idempotency-Key，丢失应答后重发得到原应答"""
    return records.resubmit_record(current_principal(), record_id, **args)

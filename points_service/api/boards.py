"""GET /leaderboards and GET /members/{id}/ranks: maintained boards, never a ledger scan per request."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.dumping import CompiledList
from points_service.api.fields import Instant, PointsField
from points_service.api.pagination import PageArgs
from points_service.api.security import current_principal, login_required
from points_service.db import reads_without_transaction
from points_service.domain.boards import pages
from points_service.domain.boards.keys import BOARD_PERIOD_KINDS, STANDING, ScopeKind
from points_service.domain.boards.rank import Measure
from points_service.domain.periods import BadPeriod, parse_period
from points_service.models import OrgKind, SubjectType

blp = Blueprint("boards", __name__, description="排行榜与名次")

PERIOD_HELP = "2026-07（月）、2026-Q3（季度）、2026-H2（半年）、2026（年度），或 standing（活跃指数）"


class BoardPeriod(ma.fields.String):
    """A month, quarter, half or year key, or ``standing`` (the decayed standing score)."""

    def _deserialize(self, value, attr, data, **kwargs):
        key = super()._deserialize(value, attr, data, **kwargs)
        if key == STANDING:
            return STANDING
        try:
            period = parse_period(key)
        except BadPeriod as exc:
            raise ma.ValidationError(f"无法识别的期间，应为 {PERIOD_HELP}") from exc
        if period.kind not in BOARD_PERIOD_KINDS:
            raise ma.ValidationError(f"排行榜不按日排名，期间应为 {PERIOD_HELP}")
        return period

    def _serialize(self, value, attr, obj, **kwargs):
        return None if value is None else str(value)


class LeaderboardArgs(PageArgs):
    subject = ma.fields.Enum(SubjectType, by_value=True, load_default=SubjectType.MEMBER)
    scope = ma.fields.String(load_default="all", validate=ma.validate.Length(max=40), metadata={
        "description": "all | region:{id}（区县/街道/社区/网格）| community:{id} | "
                       "organization:{id}（部门党组织/党支部）"})
    period = BoardPeriod(load_default=None, metadata={"description": PERIOD_HELP + "；默认本季度"})
    measure = ma.fields.Enum(Measure, by_value=True, load_default=Measure.OWN, metadata={
        "description": "组织排行：own 自身积分 | per_capita 党员人均积分 | participation 党员参与率"})


class RanksArgs(ma.Schema):
    period = BoardPeriod(load_default=None, metadata={"description": PERIOD_HELP + "；默认本季度"})


class MyRankArgs(ma.Schema):
    period = BoardPeriod(load_default=None, metadata={"description": PERIOD_HELP + "；默认本季度"})
    scope = ma.fields.Enum(ScopeKind, by_value=True, load_default=ScopeKind.ALL, metadata={
        "description": "本人所在的哪一级范围：all 全市 | district 区县 | street 街道 | community 社区 | grid 网格 | "
                       "branch 党支部 | department 部门党组织"})


class OrgRefSchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()


class BoardSubjectSchema(ma.Schema):
    id = ma.fields.Integer(allow_none=True, metadata={"description": "null for a member hidden from boards"})
    name = ma.fields.String(metadata={"description": "党员（已隐藏） for a hidden member"})
    hidden = ma.fields.Boolean()
    organization = ma.fields.Nested(OrgRefSchema, allow_none=True, metadata={"description": "members: branch"})
    kind = ma.fields.Enum(OrgKind, by_value=True, metadata={"description": "organizations only"})


class MemberFiguresSchema(ma.Schema):
    count = ma.fields.Integer(metadata={"description": "在册党员数"})
    points = PointsField(metadata={"description": "本组织党员积分之和"})
    participants = ma.fields.Integer(metadata={"description": "本期有积分的党员数"})


class BoardItemSchema(ma.Schema):
    rank = ma.fields.Integer(metadata={"description": "competition rank: 1, 2, 2, 4"})
    subject = ma.fields.Nested(BoardSubjectSchema)
    points = PointsField(metadata={"description": "the subject's own points on this board"})
    value = ma.fields.Decimal(as_string=False, metadata={
        "description": "what the board is ranked by (measure): points, per-capita points, or a 0..1 share"})
    reached_at = Instant(allow_none=True, metadata={"description": "when the score was reached: the tie order"})
    members = ma.fields.Nested(MemberFiguresSchema, metadata={"description": "organizations only"})


class MyPlaceSchema(ma.Schema):
    rank = ma.fields.Integer()
    points = PointsField()


class LeaderboardSchema(ma.Schema):
    items = CompiledList(ma.fields.Nested(BoardItemSchema))  # the hottest list: dumped by compiled fields
    total = ma.fields.Integer()
    page = ma.fields.Integer()
    page_size = ma.fields.Integer()
    me = ma.fields.Nested(MyPlaceSchema, allow_none=True)
    board = ma.fields.String()
    period = ma.fields.String()
    scope = ma.fields.String()
    measure = ma.fields.Enum(Measure, by_value=True)
    label = ma.fields.String()


class ScopeRankSchema(ma.Schema):
    scope = ma.fields.String(metadata={"example": "community:12"})
    kind = ma.fields.Enum(ScopeKind, by_value=True)
    scope_id = ma.fields.Integer(allow_none=True)
    label = ma.fields.String(metadata={"example": "社区"})
    rank = ma.fields.Integer()


class RanksSchema(ma.Schema):
    period = ma.fields.String(metadata={"example": "2026-Q3"})
    board = ma.fields.String()
    on_board = ma.fields.Boolean()
    points = PointsField()
    reached_at = Instant(allow_none=True)
    ranks = ma.fields.List(ma.fields.Nested(ScopeRankSchema))


class MyRankSchema(ma.Schema):
    period = ma.fields.String(metadata={"example": "2026-Q3"})
    board = ma.fields.String()
    kind = ma.fields.Enum(ScopeKind, by_value=True)
    label = ma.fields.String(metadata={"example": "社区"})
    scope = ma.fields.String(allow_none=True, metadata={
        "description": "the caller's own scope of that kind, e.g. community:12; null when he has none or is "
                       "not on the board"})
    on_board = ma.fields.Boolean(metadata={"description": "false: no points on this board yet"})
    rank = ma.fields.Integer(allow_none=True, metadata={"description": "competition rank: 1, 2, 2, 4"})
    points = PointsField()
    total = ma.fields.Integer(allow_none=True, metadata={"description": "how many are ranked in that scope"})


class MyRanksSchema(ma.Schema):
    quarter = ma.fields.Nested(RanksSchema)
    standing = ma.fields.Nested(RanksSchema)


@blp.route("/leaderboards")
@reads_without_transaction
@login_required
@blp.arguments(LeaderboardArgs, location="query")
@blp.response(200, LeaderboardSchema)
def leaderboard(args):
    """排行榜：党员或组织，任一期间与范围；并列同名次（1、2、2、4），附本人名次"""
    return pages.leaderboard(current_principal(), args["subject"], args["scope"],
                             args["period"] or pages.current_quarter(), args["measure"],
                             args["page"], args["page_size"])


@blp.route("/members/<int:member_id>/ranks")
@reads_without_transaction
@login_required
@blp.arguments(RanksArgs, location="query")
@blp.response(200, RanksSchema)
def member_ranks(args, member_id):
    """党员在其所属各范围（网格、社区、街道、区县、全市、支部、部门）的名次"""
    return pages.member_ranks_view(current_principal(), member_id, args["period"])


@blp.route("/me/rank")
@reads_without_transaction
@login_required
@blp.arguments(MyRankArgs, location="query")
@blp.response(200, MyRankSchema)
def my_rank(args):
    """本人名次：在本人所在的某一级范围（默认全市）的名次、积分与参与排名人数（单个名次卡片）"""
    return pages.my_rank(current_principal(), args["period"] or pages.current_quarter(), args["scope"])

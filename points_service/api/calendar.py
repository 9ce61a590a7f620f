"""The working-day calendar behind publicity windows: holidays on weekdays and 调休 weekend working days (admins)."""

from __future__ import annotations

import marshmallow as ma

from points_service.api.core import Blueprint
from points_service.api.fields import CleanString
from points_service.api.security import authorize_first, current_principal, login_required
from points_service.domain import calendar

blp = Blueprint("calendar", __name__, description="工作日历：节假日与调休（用于公示期计算）")


class CalendarQueryArgs(ma.Schema):
    year = ma.fields.Integer(required=True, validate=ma.validate.Range(min=2000, max=2200))


class CalendarDayArgs(ma.Schema):
    working = ma.fields.Boolean(required=True, truthy={True}, falsy={False},
                                metadata={"description": "false：该工作日放假；true：该周末调休上班"})
    name = CleanString(load_default="", min_length=0, max_length=50, metadata={"example": "国庆节"})


class CalendarDaySchema(ma.Schema):
    day = ma.fields.Date()
    working = ma.fields.Boolean()
    name = ma.fields.String()


class CalendarListSchema(ma.Schema):
    year = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(CalendarDaySchema))


@blp.route("/calendar/days")
@login_required
@blp.arguments(CalendarQueryArgs, location="query")
@blp.response(200, CalendarListSchema)
def list_days(args):
    """某年设置过的节假日与调休日（其余日期：周一至周五为工作日）"""
    return {"year": args["year"], "items": calendar.list_calendar_days(current_principal(), args["year"])}


@blp.route("/calendar/days/<day>", methods=["PUT"])
@login_required
@authorize_first("calendar.manage")
@blp.arguments(CalendarDayArgs)
@blp.response(200, CalendarDaySchema)
def set_day(args, day):
    """设置某天（如 2026-10-08）为节假日（working=false）或调休上班日（working=true）；设为其本来状态即取消设置"""
    return calendar.set_calendar_day(current_principal(), calendar.parse_day(day), args["working"], args["name"])

"""党员 and 组织: the members in the user's scope, a member's points (the three ledgers kept apart) and
ledger, and an organization's points with its members' roll-up — the API's reading use cases.

Both pages draw a line chart of points per month (``ledger/monthly``: the month totals, no ledger scan)."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from points_service.console.charts import line_chart
from points_service.console.pages import page_number, paginate
from points_service.console.site import current_principal
from points_service.domain.errors import ServiceError
from points_service.domain.ledger import monthly, reading
from points_service.domain.periods import Period, parse_period
from points_service.domain.structure import get_member, get_organization, list_members
from points_service.models import LedgerName, SubjectType

blp = Blueprint("people", __name__)

LEDGER_NAMES = {LedgerName.ASSESSMENT: "考核积分", LedgerName.REDEEMABLE: "公益积分", LedgerName.STANDING: "活跃指数"}


def _period() -> Period | None:
    raw = request.args.get("period")
    if not raw:
        return None
    try:
        return parse_period(raw)
    except (ServiceError, ValueError):
        return None


@blp.route("/members")
def members():
    name = (request.args.get("name") or "").strip()[:50] or None
    page = paginate(list_members(current_principal(), name=name), page_number())
    return render_template("console/people/members.html", page=page, name=name or "")


@blp.route("/members/<int:member_id>")
def member(member_id: int):
    principal, period = current_principal(), _period()
    subject = get_member(principal, member_id)
    points = reading.member_points(principal, member_id, period)
    ledger = paginate(reading.ledger_page(principal, SubjectType.MEMBER, member_id, None, None), page_number())
    return render_template("console/people/member.html", member=subject, points=points, ledger=ledger,
                           names=reading.item_names(), ledgers=LEDGER_NAMES,
                           trend=_chart(monthly.member_trend(principal, member_id)))


@blp.route("/organizations/<int:org_id>")
def organization(org_id: int):
    principal, period = current_principal(), _period()
    points = reading.organization_points(principal, org_id, period)
    ledger = paginate(reading.ledger_page(principal, SubjectType.ORGANIZATION, org_id, None, None), page_number())
    return render_template("console/people/organization.html", org=get_organization(principal, org_id),
                           points=points, ledger=ledger, names=reading.item_names(), ledgers=LEDGER_NAMES,
                           trend=_chart(monthly.organization_trend(principal, org_id)))


def _chart(trend: dict) -> dict:
    return line_chart(trend["months"], trend["series"])

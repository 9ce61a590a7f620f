"""党员 and 组织: the members in the user's scope, a member's points (the three ledgers kept apart) and
ledger, and an organization's points with its members' roll-up — the API's reading use cases. On a member's
page, those who manage his status (admins; HR and org admins over his branch) deactivate, reactivate or transfer
him with a reason, and cancel a change scheduled for a later date — ``domain/lifecycle``, which authorizes; they
also unbind his WeChat identity with a reason (解绑微信, ``domain/accounts/unbinding``).

Both pages draw a line chart of points per month (``ledger/monthly``: the month totals, no ledger scan)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service.console.charts import line_chart
from points_service.console.forms import DeactivateForm, ReasonForm, TransferForm, UnbindWechatForm, choices
from points_service.console.pages import page_number, paginate
from points_service.console.site import current_principal
from points_service.domain.access import allowed
from points_service.domain.accounts.unbinding import unbind_wechat
from points_service.domain.errors import ServiceError
from points_service.domain.ledger import monthly, reading
from points_service.domain.lifecycle import due, status, transfer
from points_service.domain.periods import Period, PeriodKind, parse_period
from points_service.domain.structure import get_member, get_organization, list_members
from points_service.models import DeactivationReason, LedgerName, SubjectType

blp = Blueprint("people", __name__)

LEDGER_NAMES = {LedgerName.ASSESSMENT: "考核积分", LedgerName.REDEEMABLE: "公益积分", LedgerName.STANDING: "活跃指数"}


def _period() -> Period | None:
    """The page's period; none (this year) when it is missing, unreadable or a single day, for which no totals
    are kept."""
    raw = request.args.get("period")
    if not raw:
        return None
    try:
        period = parse_period(raw)
    except (ServiceError, ValueError):
        return None
    return None if period.kind == PeriodKind.DAY else period


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
                           trend=_chart(monthly.member_trend(principal, member_id)), **_status_panel(subject))


def _status_panel(subject) -> dict:
    """The status actions and history, for those who manage his status."""
    principal = current_principal()
    if not allowed(principal, "member.manage_status", subject):
        return {"can_manage": False}
    move = TransferForm()
    branches, communities = transfer.transfer_targets(principal)
    move.branch_id.choices = choices([("", "不变"), *((b.id, b.name) for b in branches)])
    move.community_id.choices = choices([("", "不变"), *((c.id, c.name) for c in communities)])
    return {"can_manage": True, "deactivate_form": DeactivateForm(), "reason_form": ReasonForm(),
            "transfer_form": move, "unbind_form": UnbindWechatForm(),
            "history": status.status_history(principal, subject.id),
            "scheduled": due.scheduled_changes(principal, subject.id)}


@blp.route("/members/<int:member_id>/deactivate", methods=["POST"])
def deactivate(member_id: int):
    form = DeactivateForm()
    if _valid(form):
        reason_code = DeactivationReason(form.reason_code.data)
        _attempt(lambda: status.deactivate_member(current_principal(), member_id, reason_code, form.reason.data,
                                                  form.effective_on.data), "已停用（或已预约）")
    return redirect(url_for(".member", member_id=member_id))


@blp.route("/members/<int:member_id>/reactivate", methods=["POST"])
def reactivate(member_id: int):
    form = ReasonForm()
    if _valid(form):
        _attempt(lambda: status.reactivate_member(current_principal(), member_id, form.reason.data or ""), "已恢复")
    return redirect(url_for(".member", member_id=member_id))


@blp.route("/members/<int:member_id>/transfer", methods=["POST"])
def transfer_member(member_id: int):
    form = TransferForm()
    form.branch_id.choices = form.community_id.choices = []  # any id: the use case checks it and the scope
    if _valid(form):
        _attempt(lambda: transfer.transfer(
            current_principal(), member_id, branch_id=form.branch_id.data, community_id=form.community_id.data,
            grid_id=form.grid_id.data, effective_on=form.effective_on.data, reason=form.reason.data or ""),
            "已转接（或已预约）")
    return redirect(url_for(".member", member_id=member_id))


@blp.route("/members/<int:member_id>/scheduled-changes/<int:change_id>/cancel", methods=["POST"])
def cancel_scheduled(member_id: int, change_id: int):
    form = ReasonForm()
    if _valid(form):
        _attempt(lambda: due.cancel_scheduled(current_principal(), member_id, change_id, form.reason.data or ""),
                 "已取消预约的变更")
    return redirect(url_for(".member", member_id=member_id))


@blp.route("/members/<int:member_id>/unbind-wechat", methods=["POST"])
def unbind(member_id: int):
    form = UnbindWechatForm()
    if _valid(form):
        _attempt(lambda: unbind_wechat(current_principal(), member_id, form.reason.data),
                 "已解绑微信，该账号的登录状态已全部失效")
    return redirect(url_for(".member", member_id=member_id))


def _valid(form) -> bool:
    if form.validate():
        return True
    flash("；".join(e for errors in form.errors.values() for e in errors), "error")
    return False


def _attempt(action, success: str) -> None:
    try:
        action()
    except ServiceError as error:
        errors = (error.data or {}).get("errors")
        details = "；".join(str(m) for messages in errors.values() for m in (
            messages if isinstance(messages, list) else [messages])) if isinstance(errors, dict) else ""
        flash(f"{error.message}：{details}" if details else error.message, "error")
    else:
        flash(success, "ok")


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

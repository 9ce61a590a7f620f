"""审批: the scoped queue (filters: status, item, date), one item's detail, and decisions one at a time
(htmx swaps the row and the pending badge) or in a batch. Decisions are ``domain.approvals.decide`` and
``decide_batch``, exactly as the API's."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service.console import nav, reads
from points_service.console.forms import ApproveForm, EmptyForm, RejectForm
from points_service.console.pages import LOCAL, Page, is_htmx, page_number
from points_service.console.site import back_to, current_principal
from points_service.domain import periods
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals import queue as approval_queue
from points_service.domain.approvals.decisions import Decision
from points_service.domain.errors import Forbidden, NotFound, ServiceError
from points_service.domain.ledger.reading import item_names
from points_service.models import Record, RecordStatus

blp = Blueprint("approvals", __name__, url_prefix="/approvals")

STATUS_NAMES = {RecordStatus.PENDING: "待审批", RecordStatus.NEEDS_INFO: "待补充材料",
                RecordStatus.APPROVED: "已通过", RecordStatus.REJECTED: "已驳回"}


def _day(raw: str | None) -> date | None:
    """A filter's day; outside the service's years none (9999-12-31's next day, which ``to`` needs, overflows)."""
    try:
        day = date.fromisoformat(raw) if raw else None
    except ValueError:
        return None
    return day if day is not None and periods.within_years(day) else None


def _filters() -> tuple[approval_queue.QueueFilter, dict]:
    """The query string as the domain's filter (unknown values fall back to the defaults)."""
    args = request.args
    status = args.get("status", RecordStatus.PENDING.value)
    status = RecordStatus(status) if status in RecordStatus._value2member_map_ else RecordStatus.PENDING
    start, end = _day(args.get("from")), _day(args.get("to"))
    item_code = args.get("item_code") or None
    shown = {"status": status.value, "item_code": item_code or "", "from": start or "", "to": end or ""}
    return approval_queue.QueueFilter(
        status, item_code,
        datetime.combine(start, datetime.min.time(), LOCAL) if start else None,
        datetime.combine(end + timedelta(days=1), datetime.min.time(), LOCAL) if end else None,  # `to` is inclusive
    ), shown


@blp.route("")
def queue():
    filters, shown = _filters()
    page = approval_queue.approval_queue(current_principal(), filters, page=page_number())
    return render_template("console/approvals/queue.html", page=Page(**page), filters=shown,
                           statuses=STATUS_NAMES, items=item_names(), forms=_row_forms())


def _row_forms() -> dict:
    return {"approve": ApproveForm(), "reject": RejectForm(), "batch": EmptyForm()}


@blp.route("/<approval_id>")
def detail(approval_id: str):
    principal = current_principal()
    target = approvals.find_target(approval_id)
    if target is None or not approvals.may_see(principal, target):  # outside his scope: like a missing one
        raise NotFound("审批事项不存在")
    if not approvals.may_decide(principal, target):
        raise Forbidden("无权审批此事项（本人提交或不在本环节）")
    item = approval_queue.describe(principal, [target])[0]
    kind = "record" if isinstance(target, Record) else "activity"
    return render_template("console/approvals/detail.html", item=item, events=reads.approval_events(kind, target.id),
                           statuses=STATUS_NAMES, forms=_row_forms())


@blp.route("/<approval_id>/approve", methods=["POST"])
def approve(approval_id: str):
    form = ApproveForm()
    return _decide(approval_id, Decision.APPROVE, form.comment.data or "", form)


@blp.route("/<approval_id>/reject", methods=["POST"])
def reject(approval_id: str):
    form = RejectForm()
    return _decide(approval_id, Decision.REJECT, form.reason.data or "", form)


def _decide(approval_id: str, decision: Decision, note: str, form):
    principal, error = current_principal(), None
    if not form.validate():
        error = "；".join(message for messages in form.errors.values() for message in messages)
    else:
        try:
            approvals.decide(principal, approval_id, decision, note)
        except ServiceError as exc:
            error = exc.message
    if not is_htmx():
        flash(error or ("已通过" if decision == Decision.APPROVE else "已驳回"), "error" if error else "ok")
        return redirect(back_to(url_for(".detail", approval_id=approval_id)))
    target = approvals.find_target(approval_id)
    seen = target is not None and approvals.may_see(principal, target)
    item = approval_queue.describe(principal, [target])[0] if seen else None
    return render_template("console/approvals/_row_decided.html", item=item, error=error, statuses=STATUS_NAMES,
                           forms=_row_forms(), pending=nav.pending_approvals(principal), approval_id=approval_id)


@blp.route("/batch", methods=["POST"])
def batch():
    ids = request.form.getlist("ids")
    decision = Decision.REJECT if request.form.get("decision") == "reject" else Decision.APPROVE
    reason = (request.form.get("reason") or "").strip()[:200]
    back = back_to(url_for(".queue"))
    if not ids:
        flash("请先勾选要审批的事项", "error")
    elif decision == Decision.REJECT and not reason:
        flash("批量驳回须填写驳回理由", "error")
    else:
        try:
            decided = approvals.decide_batch(current_principal(), ids, decision, reason)
            flash(f"已{'驳回' if decision == Decision.REJECT else '通过'} {len(decided)} 项", "ok")
        except ServiceError as exc:
            details = (exc.data or {}).get("errors") or {}
            flash(exc.message + "".join(f"；{key}：{' '.join(v)}" for key, v in details.items()), "error")
    return redirect(back)

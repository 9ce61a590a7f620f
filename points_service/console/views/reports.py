"""报到: members' and organizations' reports in the user's scope (an organization's with its three lists);
the community admin confirms (optionally assigning a grid) or rejects with a reason — the API's use cases."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service.console import reads
from points_service.console.forms import ConfirmReportForm, RejectForm
from points_service.console.pages import page_number, paginate
from points_service.console.site import back_to, current_principal
from points_service.db import reads_without_transaction
from points_service.domain.access import allowed
from points_service.domain.errors import ServiceError
from points_service.domain.reports import reporting as reports
from points_service.models import Report, ReportStatus, SubjectType

blp = Blueprint("reports", __name__, url_prefix="/reports")

STATUS_NAMES = {ReportStatus.PENDING: "待确认", ReportStatus.CONFIRMED: "已确认", ReportStatus.REJECTED: "已驳回"}
SUBJECT_NAMES = {SubjectType.MEMBER: "党员报到", SubjectType.ORGANIZATION: "组织报到"}


def _enum(enum_type, raw: str | None, default):
    if raw == "all":
        return None
    return enum_type(raw) if raw in enum_type._value2member_map_ else default


@blp.route("")
@reads_without_transaction
def index():
    principal = current_principal()
    status = _enum(ReportStatus, request.args.get("status"), ReportStatus.PENDING)
    subject_type = _enum(SubjectType, request.args.get("subject_type"), None)
    page = paginate(reports.list_reports(principal, status=status, subject_type=subject_type), page_number())
    rows = reports.describe(page.items)
    decidable = {report.id for report in page.items if allowed(principal, "report.decide", report)}
    grids = {row["community"].id: reads.grids_of(row["community"].id) for row in rows
             if row["id"] in decidable and row["subject"]["type"] == SubjectType.MEMBER}
    return render_template("console/reports/index.html", page=page, rows=rows, decidable=decidable, grids=grids,
                           filters={"status": status.value if status else "all",
                                    "subject_type": subject_type.value if subject_type else ""},
                           statuses=STATUS_NAMES, subjects=SUBJECT_NAMES,
                           confirm_form=ConfirmReportForm(), reject_form=RejectForm())


@blp.route("/<int:report_id>/confirm", methods=["POST"])
def confirm(report_id: int):
    form = ConfirmReportForm()
    form.grid_id.choices = []
    if form.validate():
        _attempt(lambda: reports.confirm_report(current_principal(), report_id, grid_id=form.grid_id.data),
                 "已确认报到，积分已按政策记入")
    return redirect(back_to(url_for(".index")))


@blp.route("/<int:report_id>/reject", methods=["POST"])
def reject(report_id: int):
    form = RejectForm()
    if form.validate():
        _attempt(lambda: reports.reject_report(current_principal(), report_id, form.reason.data), "已驳回报到")
    else:
        flash("驳回须填写理由", "error")
    return redirect(back_to(url_for(".index")))


def _attempt(action, success: str) -> Report | None:
    try:
        result = action()
    except ServiceError as exc:
        flash(exc.message, "error")
        return None
    flash(success, "ok")
    return result

"""年度考核: the frozen annual statements of the organizations in the user's HR scope, a chart of the grades,
and the XLSX/CSV download — the same export builder, writers and audit rows as ``GET /annual/{year}/scores``
(``open_export`` authorizes ``hr.export`` / ``hr.export_own_scope`` exactly as the API does)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template, request

from points_service.console.charts import bar_chart
from points_service.console.pages import Page, page_number
from points_service.console.site import current_principal
from points_service.db import db, reads_without_transaction, utcnow
from points_service.domain.access import Principal
from points_service.domain.annual import settlement as annual
from points_service.domain.exports import annual as rows
from points_service.domain.periods import LOCAL_TZ
from points_service.downloads import send_annual_export
from points_service.models import Organization, OrgKind, Role, SubjectType

blp = Blueprint("hr", __name__, url_prefix="/hr")

PAGE_SIZE = 20
SUBJECT_NAMES = {SubjectType.MEMBER: "党员", SubjectType.ORGANIZATION: "部门党组织"}
VIA = "console"  # the audit row names the channel, like the API's "api" and the CLI's "cli"


def _year() -> int:
    raw = request.args.get("year", "")
    # ASCII digits only: isdigit() alone passes "²⁰²⁶", which int() refuses.
    return int(raw) if raw.isascii() and raw.isdigit() and len(raw) == 4 else utcnow().astimezone(LOCAL_TZ).year - 1


def _selection() -> tuple[SubjectType, int | None]:
    subject = request.args.get("subject")
    raw = request.args.get("organization_id", "")
    return (SubjectType(subject) if subject in SubjectType._value2member_map_ else SubjectType.MEMBER,
            int(raw) if raw.isascii() and raw.isdigit() and len(raw) < 12 else None)


@blp.route("")
@reads_without_transaction
def statements():
    principal, year = current_principal(), _year()
    subject, org_id = _selection()
    context = {"year": year, "filters": {"subject": subject.value, "organization_id": org_id},
               "subjects": SUBJECT_NAMES, "organizations": organization_choices(principal)}
    try:
        export = rows.open_export(principal, year, subject, org_id)
    except annual.NotSettled as exc:
        return render_template("console/hr/statements.html", settlement=None, notice=exc.message, **context)
    page = page_number()
    items = list(rows.annual_rows(export, page=page, page_size=PAGE_SIZE))
    rows.record_export(principal, export, "html", len(items), via=VIA, page=page)  # a page read is an export too
    grades = rows.grade_distribution(export)
    chart = bar_chart([name for name, _ in grades], [count for _, count in grades], name="人数", horizontal=False)
    return render_template("console/hr/statements.html", settlement=export.settlement, export=export,
                           page=Page(items, page, PAGE_SIZE, export.total), grades=grades, chart=chart, **context)


@blp.route("/<int:year>/scores.<fmt>")
@reads_without_transaction
def download(year: int, fmt: str):
    if fmt not in ("csv", "xlsx"):
        abort(404)
    principal = current_principal()
    subject, org_id = _selection()
    export = rows.open_export(principal, year, subject, org_id)
    rows.record_export(principal, export, fmt, export.total, via=VIA)
    return send_annual_export(export, fmt)


def organization_choices(principal: Principal) -> list[Organization]:
    """The organizations offered to narrow an export to: HR's and org admins' grants (admins: departments).
    Offering is not permitting: ``open_export`` decides."""
    if principal.is_admin:
        statement = sa.select(Organization).where(Organization.kind == OrgKind.DEPARTMENT)
    else:
        ids = [g.scope_id for g in principal.scopes(Role.HR, Role.ORG_ADMIN) if g.scope_id is not None]
        if not ids:
            return []
        paths = [org.path for org in db.session.scalars(sa.select(Organization).where(Organization.id.in_(ids)))]
        statement = sa.select(Organization).where(sa.or_(*(Organization.path.startswith(p) for p in paths)))
    return list(db.session.scalars(statement.order_by(Organization.path).limit(300)))

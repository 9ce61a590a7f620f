"""花名册导入: upload → dry run (every row error in a table, nothing written) → confirm → import. Both steps
are ``domain.roster_import.import_roster``, the API's use case (admins: all kinds; HR: members of its own
branches)."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from points_service import ratelimit
from points_service.console import uploads
from points_service.console.forms import EmptyForm, RosterUploadForm
from points_service.console.site import current_principal
from points_service.domain.access import authorize
from points_service.domain.errors import ServiceError
from points_service.domain.roster.importing import import_roster

blp = Blueprint("admin_roster", __name__, url_prefix="/admin/roster")

KIND_NAMES = {"members": "党员花名册", "organizations": "组织", "regions": "区划"}


def _run(kind: str, content: bytes, filename: str, *, dry_run: bool) -> tuple[dict | None, ServiceError | None]:
    try:
        report = import_roster(current_principal(), kind, content, filename,
                               phone_key=current_app.config["PHONE_HASH_KEY"], dry_run=dry_run)
    except ServiceError as exc:
        return (exc.data if exc.data and "errors" in exc.data else None), exc
    return report.as_dict(), None


@blp.route("", methods=["GET", "POST"])
def upload():
    authorize(current_principal(), "roster.import", "members")
    form = RosterUploadForm()
    report = error = None
    if form.validate_on_submit():
        ratelimit.hit("RATELIMIT_UPLOAD_PER_USER", current_principal().user_id)
        file = form.file.data
        content, filename = file.read(), file.filename or ""
        report, error = _run(form.kind.data, content, filename, dry_run=True)
        if error is None:
            uploads.stage(form.kind.data, content, filename)
    return render_template("console/admin/roster.html", form=form, report=report, error=error,
                           staged=uploads.staged() if report and error is None else None, kinds=KIND_NAMES,
                           confirm_form=EmptyForm())


@blp.route("/confirm", methods=["POST"])
def confirm():
    entry = uploads.staged()
    if entry is None:
        flash("没有待确认的导入（可能已导入或已过期），请重新上传", "error")
        return redirect(url_for(".upload"))
    report, error = _run(entry["kind"], uploads.read_staged(entry), entry["filename"], dry_run=False)
    uploads.discard()
    if error is not None:
        flash(f"导入未完成：{error.message}", "error")
    else:
        flash(f"已导入{KIND_NAMES[entry['kind']]}：新增 {report['created']}，更新 {report['updated']}，"
              f"未变 {report['unchanged']}", "ok")
    return redirect(url_for(".upload"))

"""积分政策: the stored versions, one version's items, and a candidate document (uploaded or pasted YAML)
either previewed (what-if: rank changes over a past period, nothing written) or published. Validation is the
policy schema's: a refused document shows each field path with its Chinese message."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service.console import reads
from points_service.console.forms import PolicyForm
from points_service.console.pages import apply_field_errors, local_datetime
from points_service.console.site import current_principal
from points_service.domain.access import authorize
from points_service.domain.errors import ServiceError, ValidationFailed
from points_service.domain.ledger.preview import preview_candidate
from points_service.domain.periods import parse_period
from points_service.domain.policy import PolicyInvalid, load_policy_text, policy_version, publish_policy_version
from points_service.models import SubjectType

blp = Blueprint("admin_policy", __name__, url_prefix="/admin/policy")


def _document(form: PolicyForm) -> dict:
    upload = form.file.data
    content = upload.read() if upload and getattr(upload, "filename", "") else (form.text.data or "").encode()
    if not content.strip():
        raise ValidationFailed({"file": ["请上传政策文件或粘贴政策内容"]})
    return load_policy_text(content)


def _preview(form: PolicyForm, document: dict) -> dict:
    try:
        period = parse_period((form.period.data or "").strip())
    except (ServiceError, ValueError):
        raise ValidationFailed({"period": ["请填写期间，如 2026、2026-H2、2026-Q3、2026-11"]}) from None
    return preview_candidate(current_principal(), document, period, SubjectType(form.subject_type.data), limit=200)


def _publish(form: PolicyForm, document: dict):
    if form.effective_from.data is None:
        raise ValidationFailed({"effective_from": ["请填写生效时间"]})
    return publish_policy_version(current_principal(), document, local_datetime(form.effective_from.data),
                                  (form.note.data or "").strip())


@blp.route("", methods=["GET", "POST"])
def versions():
    principal = current_principal()
    authorize(principal, "policy.publish")
    form, preview, policy_errors = PolicyForm(), None, None
    if form.validate_on_submit():
        try:
            document = _document(form)
            if request.form.get("action") == "publish":
                row = _publish(form, document)
                flash(f"已发布第 {row.version} 版积分政策", "ok")
                return redirect(url_for(".versions"))
            preview = _preview(form, document)
        except PolicyInvalid as exc:
            policy_errors = (exc.data or {}).get("errors") or {}
        except ServiceError as exc:
            apply_field_errors(form, exc)
    return render_template("console/admin/policy.html", form=form, versions=reads.policy_versions(principal),
                           preview=preview, policy_errors=policy_errors), 422 if policy_errors else 200


@blp.route("/<int:version>")
def version(version: int):
    authorize(current_principal(), "policy.publish")
    return render_template("console/admin/policy_version.html", policy=policy_version(version))

"""评选: 业务之星 runs (review every candidate's reasons, publish, objections and their decisions, finalize)
and 流动红旗 awards — the same use cases as ``api/stars.py`` and ``api/red_flags.py``, which authorize
(``star.run``, ``star.review``, ``star.object``, ``stars.view``, ``red_flag.award``, ``red_flags.view``)."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service.console.forms import (
    AwardFlagsForm,
    DecisionForm,
    EmptyForm,
    ObjectionForm,
    ProposeStarsForm,
    WithdrawForm,
)
from points_service.console.pages import page_number, paginate
from points_service.console.site import current_principal
from points_service.db import db, utcnow
from points_service.domain.access import allowed
from points_service.domain.awards import withdrawals
from points_service.domain.boards.pages import current_quarter
from points_service.domain.errors import ServiceError
from points_service.domain.periods import BadPeriod, Period, PeriodKind, parse_period
from points_service.domain.red_flags import awards as red_flags
from points_service.domain.stars import reading as stars_reading
from points_service.domain.stars import runs as stars
from points_service.models import Organization, StarRunStatus

blp = Blueprint("selections", __name__, url_prefix="/selections")

RUN_STATUS_NAMES = {StarRunStatus.PROPOSED: "待发布", StarRunStatus.PUBLISHED: "公示中",
                    StarRunStatus.FINALIZED: "已确定", StarRunStatus.WITHDRAWN: "已撤回"}
OBJECTION_NAMES = {"open": "待处理", "upheld": "成立", "dismissed": "不成立"}
SCOPE_NAMES = {"community": "社区", "street": "街道", "organization": "单位"}


def _period(raw: str | None, kinds: tuple[PeriodKind, ...], default: Period) -> Period:
    try:
        period = parse_period(raw) if raw else default
    except BadPeriod:
        return default
    return period if period.kind in kinds else default


@blp.route("")
def index():
    principal = current_principal()
    last_quarter = current_quarter().previous()
    quarter = _period(request.args.get("quarter"), (PeriodKind.QUARTER,), last_quarter)
    flag_period = _period(request.args.get("flag_period"), (PeriodKind.MONTH, PeriodKind.QUARTER), quarter)
    runs = (list(paginate(stars_reading.list_star_runs(principal, quarter), 1, 50).items)
            if allowed(principal, "star.review") else [])
    winners = stars_reading.describe_candidates(paginate(stars_reading.published_stars(principal, quarter),
                                                         page_number(), 50).items)
    awards = red_flags.describe_awards(red_flags.list_red_flags(principal, flag_period))
    return render_template(
        "console/selections/index.html", quarter=quarter, flag_period=flag_period, runs=runs, winners=winners,
        awards=awards, can_run=allowed(principal, "star.run"), can_award=allowed(principal, "red_flag.award"),
        propose_form=ProposeStarsForm(period=quarter.key), award_form=AwardFlagsForm(period=flag_period.key),
        withdraw_form=WithdrawForm(), statuses=RUN_STATUS_NAMES, scope_names=SCOPE_NAMES)


@blp.route("/runs", methods=["POST"])
def propose():
    form = ProposeStarsForm()
    if not form.validate():
        flash("；".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for(".index"))
    run = _attempt(lambda: stars.propose_star_run(current_principal(), form.period.data,
                                                  scope_type=form.scope.data or None),
                   "已生成评选结果，请审核后发布公示")
    return redirect(url_for(".run", run_id=run.id) if run else url_for(".index", quarter=form.period.data))


@blp.route("/runs/<int:run_id>")
def run(run_id: int):
    principal = current_principal()
    found = stars_reading.get_star_run(principal, run_id)
    filters = {name: _flag(request.args.get(name)) for name in ("eligible", "winner")}
    page = paginate(stars_reading.list_candidates(principal, run_id, **filters), page_number(), 50)
    return render_template(
        "console/selections/run.html", run=stars_reading.describe_run(principal, found), page=page,
        candidates=stars_reading.describe_candidates(page.items, found), filters=request.args,
        can_run=allowed(principal, "star.run"), in_publicity=stars.in_publicity(found, utcnow()),
        button_form=EmptyForm(), objection_form=ObjectionForm(), decision_form=DecisionForm(),
        withdraw_form=WithdrawForm(),
        statuses=RUN_STATUS_NAMES, objection_names=OBJECTION_NAMES, scope_names=SCOPE_NAMES)


def _flag(raw: str | None) -> bool | None:
    return {"1": True, "0": False}.get(raw or "")


@blp.route("/runs/<int:run_id>/publish", methods=["POST"])
def publish(run_id: int):
    if EmptyForm().validate():
        _attempt(lambda: stars.publish_star_run(current_principal(), run_id), "已发布公示")
    return redirect(url_for(".run", run_id=run_id))


@blp.route("/runs/<int:run_id>/finalize", methods=["POST"])
def finalize(run_id: int):
    if EmptyForm().validate():
        _attempt(lambda: stars.finalize_star_run(current_principal(), run_id), "已确定评选结果并冻结")
    return redirect(url_for(".run", run_id=run_id))


@blp.route("/runs/<int:run_id>/objections", methods=["POST"])
def raise_objection(run_id: int):
    form = ObjectionForm()
    if form.validate():
        _attempt(lambda: stars.raise_objection(current_principal(), run_id, form.member_id.data, form.reason.data),
                 "已登记异议")
    else:
        flash("异议须选择候选人并填写理由", "error")
    return redirect(url_for(".run", run_id=run_id))


@blp.route("/runs/<int:run_id>/objections/<int:objection_id>/decision", methods=["POST"])
def decide_objection(run_id: int, objection_id: int):
    form = DecisionForm()
    if form.validate():
        _attempt(lambda: stars.decide_objection(current_principal(), run_id, objection_id, form.upheld.data == "1",
                                                form.comment.data or ""), "已处理异议")
    return redirect(url_for(".run", run_id=run_id))


@blp.route("/stars/<int:award_id>/withdraw", methods=["POST"])
def withdraw_star(award_id: int):
    _withdraw(lambda reason: withdrawals.withdraw_star(current_principal(), award_id, reason))
    run_id = request.form.get("run_id", type=int)
    return redirect(url_for(".run", run_id=run_id) if run_id else _back_to_index())


@blp.route("/red-flags/<int:award_id>/withdraw", methods=["POST"])
def withdraw_flag(award_id: int):
    _withdraw(lambda reason: withdrawals.withdraw_red_flag(current_principal(), award_id, reason))
    return redirect(_back_to_index())


def _withdraw(action) -> None:
    form = WithdrawForm()
    if form.validate():
        _attempt(lambda: action(form.reason.data), "已撤销，其所得积分已冲正")
    else:
        flash("撤销须填写理由", "error")


def _back_to_index() -> str:
    """The selections page showing the periods the form came from (kept only when they parse)."""
    keep = {}
    for name, kinds in (("quarter", (PeriodKind.QUARTER,)), ("flag_period", (PeriodKind.MONTH, PeriodKind.QUARTER))):
        raw = request.form.get(name)
        if raw and _period(raw, kinds, None) is not None:
            keep[name] = raw
    return url_for(".index", **keep)


@blp.route("/red-flags", methods=["POST"])
def award_flags():
    form = AwardFlagsForm()
    if not form.validate():
        flash("；".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for(".index"))
    _attempt(lambda: red_flags.award_red_flags(current_principal(), form.period.data), "已评出流动红旗")
    return redirect(url_for(".index", flag_period=form.period.data))


@blp.route("/red-flags/<int:award_id>")
def flag_candidates(award_id: int):
    page = paginate(red_flags.award_candidates(current_principal(), award_id), page_number(), 50)
    ids = {candidate.organization_id for candidate in page.items}
    names = dict(db.session.execute(sa.select(Organization.id, Organization.name)
                                    .where(Organization.id.in_(ids))).all())
    return render_template("console/selections/flag.html", page=page, award_id=award_id, names=names)


def _attempt(action, success: str):
    try:
        result = action()
    except ServiceError as exc:
        flash(_message(exc), "error")
        return None
    flash(success, "ok")
    return result


def _message(error: ServiceError) -> str:
    """The use case's message, with its field errors (e.g. a period the policy does not award) appended."""
    errors = (error.data or {}).get("errors")
    if not isinstance(errors, dict) or not errors:
        return error.message
    details = "；".join(m for messages in errors.values() for m in (messages if isinstance(messages, list)
                                                                   else [str(messages)]))
    return f"{error.message}：{details}"

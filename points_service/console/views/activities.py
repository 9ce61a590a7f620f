"""活动: the list, publishing, editing and cancelling (community admins), and the organizer's full-screen
check-in page: a QR code of the rotating token (rendered here with segno), refreshed by htmx polling before it
expires, with a live count of check-ins."""

from __future__ import annotations

from datetime import timedelta

import segno
import sqlalchemy as sa
from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for

from points_service.console import reads
from points_service.console.forms import ActivityForm, CancelActivityForm, choices
from points_service.console.pages import LOCAL, apply_field_errors, local_datetime, page_number, paginate
from points_service.console.site import current_principal
from points_service.db import db, utcnow
from points_service.domain.access import Principal, allowed
from points_service.domain.activities import cancelling
from points_service.domain.activities import signups as activities
from points_service.domain.activities.signups import ActivityDraft, Venue
from points_service.domain.checkin import scans as checkin
from points_service.domain.errors import ServiceError
from points_service.models import Activity, ActivityStatus, CheckinStatus

blp = Blueprint("activities", __name__, url_prefix="/activities")
DRAFT_FIELDS = {"location": "radius_m"}  # the use case judges the venue as one "location"

STATUS_NAMES = {ActivityStatus.PROPOSED: "待审批", ActivityStatus.PUBLISHED: "已发布",
                ActivityStatus.REJECTED: "未通过", ActivityStatus.CANCELLED: "已取消"}


@blp.route("")
def index():
    show_past = request.args.get("past") == "1"
    start = None if show_past else utcnow() - timedelta(days=1)
    page = paginate(activities.list_activities(current_principal(), start=start), page_number())
    principal, now = current_principal(), utcnow()
    return render_template("console/activities/index.html", page=page, statuses=STATUS_NAMES, show_past=show_past,
                           can_publish=bool(reads.communities_for_publishing(principal)),
                           may_edit=lambda activity: activities.may_edit(principal, activity),
                           can_cancel=lambda activity: cancelling.can_cancel(principal, activity, now),
                           shows_code=lambda activity: shows_checkin_code(principal, activity),
                           cancel_form=CancelActivityForm())


def shows_checkin_code(principal: Principal, activity: Activity) -> bool:
    """Whether his link to the activity is its check-in screen: a published activity he manages (the screen's own
    rule, ``activity.manage``); everyone else is linked to the list."""
    return activity.status == ActivityStatus.PUBLISHED and allowed(principal, "activity.manage", activity)


def _form(activity=None) -> ActivityForm:
    form = ActivityForm()
    communities = [activity.community] if activity else reads.communities_for_publishing(current_principal())
    form.community_id.choices = choices((c.id, c.name) for c in communities)
    form.item_code.choices = choices((item.code, item.name) for item in activities.activity_items())
    if activity is not None and request.method == "GET":
        form.process(data={
            "community_id": activity.community_id, "title": activity.title, "item_code": activity.item_code,
            "starts_at": local_naive(activity.starts_at), "ends_at": local_naive(activity.ends_at),
            "lat": activity.venue_lat, "lng": activity.venue_lng, "radius_m": activity.radius_m,
            "capacity": activity.capacity})
    return form


def local_naive(instant):
    return instant.astimezone(LOCAL).replace(tzinfo=None)


def _draft(form: ActivityForm) -> ActivityDraft:
    return ActivityDraft(
        community_id=form.community_id.data, title=form.title.data.strip(), item_code=form.item_code.data,
        starts_at=local_datetime(form.starts_at.data), ends_at=local_datetime(form.ends_at.data),
        venue=Venue(form.lat.data, form.lng.data, form.radius_m.data), capacity=form.capacity.data)


@blp.route("/new", methods=["GET", "POST"])
def new():
    form = _form()
    if form.validate_on_submit():
        try:
            activity = activities.publish_activity(current_principal(), _draft(form))
        except ServiceError as exc:
            apply_field_errors(form, exc, DRAFT_FIELDS)
        else:
            flash(f"活动“{activity.title}”已发布", "ok")
            return redirect(url_for(".index"))
    return render_template("console/activities/form.html", form=form, activity=None)


@blp.route("/<int:activity_id>/edit", methods=["GET", "POST"])
def edit(activity_id: int):
    activity = activities.get_activity(current_principal(), activity_id)
    if not activities.may_edit(current_principal(), activity):  # the form would only be refused when sent
        raise activities.PublishedActivityHostOnly()
    form = _form(activity)
    if form.validate_on_submit():
        try:
            activities.edit_activity(current_principal(), activity_id, _draft(form))
        except ServiceError as exc:
            apply_field_errors(form, exc, DRAFT_FIELDS)
        else:
            flash("活动已修改", "ok")
            return redirect(url_for(".index"))
    return render_template("console/activities/form.html", form=form, activity=activity)


@blp.route("/<int:activity_id>/cancel", methods=["POST"])
def cancel(activity_id: int):
    form = CancelActivityForm()
    if not form.validate():
        flash("；".join(e for errors in form.errors.values() for e in errors), "error")
        return redirect(url_for(".index"))
    try:
        activity = cancelling.cancel_activity(current_principal(), activity_id, form.reason.data.strip())
    except ServiceError as exc:
        if exc.status != 409:
            raise  # 403 and 404 answer as any console page does
        flash(exc.message, "error")
    else:
        flash(f"活动“{activity.title}”已取消，已通知报名的党员", "ok")
    return redirect(url_for(".index"))


@blp.route("/<int:activity_id>/checkin")
def checkin_screen(activity_id: int):
    """The full-screen page; its code and count come from ``checkin_live`` (polled)."""
    activity = activities.get_activity(current_principal(), activity_id)
    checkin.checkin_code(current_principal(), activity_id)  # authorizes (organizers only) and refuses proposals
    return render_template("console/activities/checkin.html", activity=activity, poll=_poll_seconds())


def _poll_seconds() -> int:
    # Well inside one step: the code on the screen is always one the server still accepts.
    step = checkin.step_seconds()
    return max(1, min(int(current_app.config.get("CONSOLE_LIVE_POLL_SECONDS", 5)), step // 3 or 1))


@blp.route("/<int:activity_id>/checkin/live")
def checkin_live(activity_id: int):
    principal = current_principal()
    issued = checkin.checkin_code(principal, activity_id)
    checkins = checkin.list_checkins(principal, activity_id).subquery()
    counts = dict(db.session.execute(sa.select(checkins.c.status, sa.func.count()).group_by(checkins.c.status)).all())
    qr = segno.make(issued.token, error="m")
    return render_template("console/activities/_checkin_live.html", token=issued.token, expires_at=issued.expires_at,
                           qr_svg=qr.svg_inline(scale=10, dark="#111", light="#fff", border=2, omitsize=True),
                           total=sum(counts.values()), checked_out=counts.get(CheckinStatus.CHECKED_OUT, 0),
                           review=counts.get(CheckinStatus.REVIEW, 0))

"""消息通知: the outbox for admins — counts by state, the latest deliveries with why they failed, by state."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from points_service.console.pages import paginate
from points_service.console.site import current_principal
from points_service.db import reads_without_transaction
from points_service.domain.notifications import report
from points_service.models import DELIVERY_STATE_NAMES, DeliveryState

blp = Blueprint("notifications", __name__, url_prefix="/notifications")


@blp.route("")
@reads_without_transaction
def index():
    principal = current_principal()
    raw = request.args.get("state") or ""
    state = DeliveryState(raw) if raw in set(DeliveryState) else None
    summary = report.outbox_summary(principal)  # authorizes notifications.monitor
    page = paginate(report.deliveries(principal, state), scalars=False)
    return render_template("console/notifications/index.html", summary=summary, page=page,
                           state=state.value if state else "", states=DELIVERY_STATE_NAMES)

"""积分超市: the items of the admin's scopes with pictures, stock and sales, the open orders, and a pick-up form
large enough for a tablet at the community's desk — the API's use cases."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from points_service.console.charts import bar_chart
from points_service.console.site import current_principal
from points_service.db import db, utcnow
from points_service.domain.errors import ServiceError
from points_service.domain.market import catalogue, orders
from points_service.domain.market.report import monthly_report
from points_service.domain.periods import BadPeriod, PeriodKind, parse_period, period_containing

blp = Blueprint("market", __name__, url_prefix="/market")


class PickupForm(FlaskForm):
    code = StringField("取货码", validators=[DataRequired("请输入取货码"), Length(max=16)])


@blp.route("")
def index():
    principal = current_principal()
    items = db.session.scalars(catalogue.admin_items(principal).limit(200)).all()
    queue = db.session.scalars(orders.order_queue(principal).limit(200)).all()
    return render_template("console/market/index.html", items=items, queue=queue, form=PickupForm())


@blp.route("/pickup", methods=["POST"])
def pickup():
    form = PickupForm()
    if form.validate():
        try:
            order = orders.pick_up(current_principal(), form.code.data)
            flash(f"已交付：{order.member.name} · {order.item.name} × {order.quantity}", "ok")
        except ServiceError as exc:
            flash(exc.message, "error")
    else:
        flash("请输入取货码", "error")
    return redirect(url_for(".index"))


@blp.route("/report")
def report():
    """Redemptions per community in a month (``?month=2026-11``; this month by default)."""
    try:
        month = parse_period(request.args.get("month", ""))
    except BadPeriod:
        month = period_containing(utcnow(), PeriodKind.MONTH)
    rows = monthly_report(current_principal(), month)
    chart = bar_chart([row.community for row in rows], [row.points for row in rows], name="兑换积分")
    return render_template("console/market/report.html", month=month, rows=rows, chart=chart)

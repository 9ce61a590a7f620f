"""积分超市: the items of the admin's scopes with pictures, stock and sales (created and edited here, pictures
uploaded, stock adjusted with a reason), the open orders with each one's pick-up QR, and a pick-up form large
enough for a tablet at the community's desk (a scanner types into it) — all through the API's use cases."""

from __future__ import annotations

import segno
from flask import Blueprint, flash, redirect, render_template, request, url_for

from points_service import ratelimit
from points_service.console.charts import bar_chart
from points_service.console.forms import choices
from points_service.console.market_forms import ItemForm, PickupForm, StockForm
from points_service.console.pages import LOCAL, apply_field_errors, local_datetime
from points_service.console.site import current_principal
from points_service.db import db, reads_without_transaction, utcnow
from points_service.domain.errors import ServiceError
from points_service.domain.market import catalogue, orders
from points_service.domain.market.catalogue import ItemDraft
from points_service.domain.market.report import monthly_report
from points_service.domain.periods import BadPeriod, PeriodKind, parse_period, period_containing
from points_service.models import REGION_LEVEL_NAMES, LimitPeriod, MarketItem, OrderState

blp = Blueprint("market", __name__, url_prefix="/market")
STATE_NAMES = {OrderState.PLACED: "待取货", OrderState.PICKED_UP: "已取货", OrderState.CANCELLED: "已取消",
               OrderState.EXPIRED: "已过期"}
FORM_FIELDS = ("name", "description", "price", "limit_per_member", "limit_period", "visible_from", "visible_until",
               "on_shelf")


@blp.route("")
def index():
    principal = current_principal()
    items = db.session.scalars(catalogue.admin_items(principal).limit(200)).all()
    queue = db.session.scalars(orders.order_queue(principal).limit(200)).all()
    return render_template("console/market/index.html", items=items, queue=queue, form=PickupForm(),
                           can_add=bool(catalogue.offering_regions(principal)))


@blp.route("/pickup", methods=["POST"])
def pickup():
    """The desk: a typed code, or what a scanner typed from a QR (the use case reads the code out of it)."""
    form = PickupForm()
    if form.validate():
        try:
            order = orders.pick_up(current_principal(), form.code.data)
            flash(f"已交付：{order.member.name} · {order.item.name} × {order.quantity}", "ok")
        except ServiceError as exc:
            flash(exc.message, "error")
    else:
        flash("；".join(form.code.errors) or "请输入或扫描取货码", "error")
    return redirect(url_for(".index"))


@blp.route("/orders/<int:order_id>")
def order_page(order_id: int):
    """One order with its pick-up code as a QR (inline SVG) and a button to hand it over."""
    order = orders.order_for_desk(current_principal(), order_id)
    qr = None
    if order.open_code:
        qr = segno.make(order.open_code, error="m").svg_inline(scale=8, dark="#111", light="#fff", border=2,
                                                              omitsize=True)
    return render_template("console/market/order.html", order=order, qr_svg=qr, form=PickupForm(),
                           states=STATE_NAMES)


# ------------------------------------------------------------------------------------------------- items

def _item_form(item: MarketItem | None = None, *, from_item: bool = False) -> ItemForm:
    """The item form; for an edit without its region (fixed) and stock (adjusted with a reason), filled from
    the item on a GET (or when ``from_item``)."""
    if item is None:
        form = ItemForm()
        form.region_id.choices = choices((r.id, f"{r.name}（{REGION_LEVEL_NAMES[r.level]}）")
                                         for r in catalogue.offering_regions(current_principal()))
        return form
    if request.method == "GET" or from_item:
        form = ItemForm(formdata=None, data={name: _shown(getattr(item, name)) for name in FORM_FIELDS})
    else:
        form = ItemForm()
    del form.region_id, form.stock
    return form


def _shown(value):
    """An item's value as the form shows it (times in Asia/Shanghai, enums by value)."""
    if isinstance(value, LimitPeriod):
        return value.value
    return value.astimezone(LOCAL).replace(tzinfo=None) if hasattr(value, "astimezone") else value


def _values(form: ItemForm) -> dict:
    return {"name": form.name.data.strip(), "description": (form.description.data or "").strip(),
            "price": form.price.data, "limit_per_member": form.limit_per_member.data,
            "limit_period": LimitPeriod(form.limit_period.data), "visible_from": local_datetime(form.visible_from.data),
            "visible_until": local_datetime(form.visible_until.data), "on_shelf": form.on_shelf.data}


def _upload(form: ItemForm) -> bytes | None:
    """The chosen picture's bytes, counted like POST /shop/items/{id}/picture (429 past the user's limit)."""
    file = form.picture.data
    if file is None or not getattr(file, "filename", ""):
        return None
    ratelimit.hit("RATELIMIT_UPLOAD_PER_USER", current_principal().user_id)
    return file.read()


def _item_page(form: ItemForm, item: MarketItem | None, stock_form: StockForm | None = None, status: int = 200):
    return render_template("console/market/item_form.html", form=form, item=item,
                           stock_form=stock_form or StockForm()), status


@blp.route("/items/new", methods=["GET", "POST"])
def new_item():
    form = _item_form()
    if not form.validate_on_submit():
        return _item_page(form, None, status=422 if form.is_submitted() else 200)
    draft = ItemDraft(region_id=form.region_id.data, stock=form.stock.data, **_values(form))
    try:
        item = catalogue.create_item(current_principal(), draft, _upload(form))
    except ServiceError as exc:
        apply_field_errors(form, exc)
        return _item_page(form, None, status=exc.status)
    flash(f"商品“{item.name}”已添加", "ok")
    return redirect(url_for(".index"))


@blp.route("/items/<int:item_id>/edit", methods=["GET", "POST"])
def edit_item(item_id: int):
    item = catalogue.item_for_admin(current_principal(), item_id)
    form = _item_form(item)
    if not form.validate_on_submit():
        return _item_page(form, item, status=422 if form.is_submitted() else 200)
    changes = {name: value for name, value in _values(form).items() if getattr(item, name) != value}
    try:
        catalogue.update_item(current_principal(), item_id, changes, _upload(form))
    except ServiceError as exc:
        db.session.rollback()
        apply_field_errors(form, exc)
        return _item_page(form, item, status=exc.status)
    flash(f"商品“{item.name}”已保存", "ok")
    return redirect(url_for(".edit_item", item_id=item_id))


@blp.route("/items/<int:item_id>/stock", methods=["POST"])
def adjust_stock(item_id: int):
    item = catalogue.item_for_admin(current_principal(), item_id)
    stock_form = StockForm()
    status = 422
    if stock_form.validate_on_submit():
        try:
            item = catalogue.adjust_stock(current_principal(), item_id, stock_form.delta.data,
                                          stock_form.reason.data.strip())
        except ServiceError as exc:
            apply_field_errors(stock_form, exc)
            status = exc.status
        else:
            flash(f"库存已调整为 {item.stock}", "ok")
            return redirect(url_for(".edit_item", item_id=item_id))
    item = catalogue.item_for_admin(current_principal(), item_id)
    return _item_page(_item_form(item, from_item=True), item, stock_form, status)


@blp.route("/report")
@reads_without_transaction
def report():
    """Redemptions per community in a month (``?month=2026-11``; this month by default, and for any key that is
    no month: orders are kept by month, a year or a quarter would match none)."""
    try:
        month = parse_period(request.args.get("month", ""))
    except BadPeriod:
        month = None
    if month is None or month.kind != PeriodKind.MONTH:
        month = period_containing(utcnow(), PeriodKind.MONTH)
    rows = monthly_report(current_principal(), month)
    chart = bar_chart([row.label for row in rows], [row.points for row in rows], name="兑换积分")
    return render_template("console/market/report.html", month=month, rows=rows, chart=chart)

"""The 积分超市 console's forms: an item (create and edit), a stock adjustment and the pick-up desk. Fields check
only the shape of the input (as the API's schemas do); the use cases in ``domain/market`` decide the rest.
Their parse errors are WTForms' own, in Chinese."""

from __future__ import annotations

from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    DecimalField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.meta import DefaultMeta
from wtforms.validators import DataRequired, InputRequired, Length, NumberRange, Optional, ValidationError

from points_service.console.forms import LOCAL_MINUTE, REQUIRED, ROW_ID, choices, finite, within_years

LIMIT_PERIODS = choices([("month", "每月"), ("quarter", "每季度"), ("year", "每年")])
MAX_STOCK = 1_000_000
SCAN_MAX = 200  # a scanner may type a whole URL; the use case reads the code out of it


class ChineseForm(FlaskForm):
    class Meta(FlaskForm.Meta):
        locales = ("zh",)

        def get_translations(self, form):
            return DefaultMeta.get_translations(self, form)  # WTForms' bundled catalogue (no Flask-Babel here)


def two_places(_form, field) -> None:
    """Checked only on a price the range accepted: quantizing one of 29 or more digits (1e400) raises."""
    if field.errors:
        return
    if field.data is not None and field.data != field.data.quantize(Decimal("0.01")):
        raise ValidationError("积分最多两位小数")


class ItemForm(ChineseForm):
    region_id = SelectField("提供范围", coerce=int, validators=[InputRequired(REQUIRED), ROW_ID], validate_choice=False)
    name = StringField("名称", validators=[DataRequired(REQUIRED), Length(max=60)])
    description = TextAreaField("说明（可选）", validators=[Optional(), Length(max=500)])
    price = DecimalField("兑换积分", places=None, validators=[
        InputRequired(REQUIRED), finite, NumberRange(Decimal("0.01"), Decimal(100_000), "应在 0.01–100000 之间"),
        two_places])
    stock = IntegerField("库存（留空为不限，如服务类）",
                         validators=[Optional(), NumberRange(0, MAX_STOCK, "应在 0–1000000 之间")])
    limit_per_member = IntegerField("每人限兑件数（留空为不限）",
                                    validators=[Optional(), NumberRange(1, 1000, "应在 1–1000 之间")])
    limit_period = SelectField("限兑周期", choices=LIMIT_PERIODS, default="month")
    visible_from = DateTimeLocalField("上架时间（可选）", format=LOCAL_MINUTE, validators=[Optional(), within_years])
    visible_until = DateTimeLocalField("下架时间（可选）", format=LOCAL_MINUTE, validators=[Optional(), within_years])
    on_shelf = BooleanField("在架", default=True)
    picture = FileField("图片（可选；JPEG、PNG 或 WebP，不超过 2 MB）")


class StockForm(ChineseForm):
    delta = IntegerField("调整件数（正数增加，负数减少）",
                         validators=[InputRequired(REQUIRED), NumberRange(-MAX_STOCK, MAX_STOCK, "超出范围")])
    reason = StringField("原因", validators=[DataRequired("请填写调整原因"), Length(max=200)])


class PickupForm(ChineseForm):
    code = StringField("取货码", validators=[DataRequired("请输入或扫描取货码"), Length(max=SCAN_MAX)])

"""The console's forms (Flask-WTF: each carries its CSRF token). Fields check only the shape of the input;
business rules stay in the use cases, whose field errors are shown under these fields."""

from __future__ import annotations

import math
from decimal import Decimal

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    DateField,
    DateTimeLocalField,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import (
    DataRequired,
    InputRequired,
    Length,
    NumberRange,
    Optional,
    Regexp,
    StopValidation,
    ValidationError,
)

from points_service.db import MAX_ROW_ID
from points_service.domain import periods
from points_service.domain.accounts.users import USERNAME, USERNAME_RULE
from points_service.domain.activities.signups import MAX_RADIUS_M, MIN_RADIUS_M
from points_service.models import DEACTIVATION_REASON_NAMES, Role

REQUIRED = "此项必填"
LOCAL_MINUTE = "%Y-%m-%dT%H:%M"  # a datetime-local input's value
ROLE_NAMES = {
    Role.BRANCH_SECRETARY: "支部书记", Role.ORG_ADMIN: "部门党组织管理员", Role.COMMUNITY_ADMIN: "社区管理员",
    Role.HR: "单位人事", Role.ADMIN: "系统管理员",
}


# An id beyond a row id's range names no row (sent to PostgreSQL it would fail "out of range", a 500).
ROW_ID = NumberRange(1, MAX_ROW_ID, message="编号不存在")


def within_years(_form, field) -> None:
    """A day or a time within the years the service keys periods by (beyond them it cannot be converted)."""
    if field.data is not None and not periods.within_years(field.data):
        raise ValidationError(periods.OUTSIDE_YEARS)


def finite(_form, field) -> None:
    """Put before NumberRange on a DecimalField or FloatField: they parse "NaN", "sNaN" and "Infinity", and
    NumberRange cannot judge them (``math.isnan`` raises on a signalling NaN: a 500), nor can a rounding check
    (an infinity cannot be quantized). Stopping here leaves one Chinese error and runs nothing after."""
    data = field.data
    if data is not None and not (data.is_finite() if isinstance(data, Decimal) else math.isfinite(data)):
        raise StopValidation("请输入有效的数字")


def choices(pairs) -> list[SelectChoice]:
    """(value, label) pairs as WTForms 3.3 wants select options."""
    return [SelectChoice(value, label) for value, label in pairs]


ROLE_CHOICES = choices((role.value, name) for role, name in ROLE_NAMES.items())


class LoginForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(REQUIRED), Length(max=64)])
    password = PasswordField("密码", validators=[DataRequired(REQUIRED), Length(max=128)])
    next = HiddenField()


class ApproveForm(FlaskForm):
    comment = StringField("审核意见（可选）", validators=[Optional(), Length(max=200)])


class RejectForm(FlaskForm):
    reason = StringField("驳回理由", validators=[DataRequired("请填写驳回理由"), Length(max=200)])


class ConfirmReportForm(FlaskForm):
    grid_id = SelectField("分配网格（可选）", coerce=lambda v: int(v) if v else None, validate_choice=False,
                          validators=[Optional(), ROW_ID])


class ActivityForm(FlaskForm):
    community_id = SelectField("社区", coerce=int, validators=[InputRequired(REQUIRED), ROW_ID], validate_choice=False)
    title = StringField("活动名称", validators=[DataRequired(REQUIRED), Length(max=100)])
    item_code = SelectField("积分项目", validators=[DataRequired(REQUIRED)], validate_choice=False)
    starts_at = DateTimeLocalField("开始时间", format=LOCAL_MINUTE, validators=[InputRequired(REQUIRED), within_years])
    ends_at = DateTimeLocalField("结束时间", format=LOCAL_MINUTE, validators=[InputRequired(REQUIRED), within_years])
    lat = FloatField("纬度（gcj02）",
                     validators=[InputRequired(REQUIRED), finite, NumberRange(3.8, 53.6, "应在 3.8–53.6 之间")])
    lng = FloatField("经度（gcj02）",
                     validators=[InputRequired(REQUIRED), finite, NumberRange(73.5, 135.1, "应在 73.5–135.1 之间")])
    radius_m = IntegerField("签到范围（米）", default=100,
                            validators=[InputRequired(REQUIRED), NumberRange(MIN_RADIUS_M, MAX_RADIUS_M)])
    capacity = IntegerField("人数上限（留空为不限）", validators=[Optional(), NumberRange(1, 100_000)])


class CancelActivityForm(FlaskForm):
    reason = StringField("取消原因", validators=[DataRequired("请填写取消原因"), Length(max=200)])


ROSTER_KINDS = [("members", "党员花名册"), ("organizations", "组织"), ("regions", "区划")]


class RosterUploadForm(FlaskForm):
    kind = SelectField("导入内容", choices=choices(ROSTER_KINDS))
    file = FileField(".xlsx 或 .csv 文件", validators=[FileRequired("请选择文件")])


class PolicyForm(FlaskForm):
    file = FileField("政策文件（YAML）")
    text = TextAreaField("或直接粘贴政策内容（YAML）")
    effective_from = DateTimeLocalField("生效时间", format="%Y-%m-%dT%H:%M", validators=[Optional(), within_years])
    note = StringField("说明", validators=[Optional(), Length(max=200)])
    period = StringField("预览期间", default="", validators=[Optional(), Length(max=16)],
                         description="如 2026、2026-H2、2026-Q3、2026-11")
    subject_type = SelectField("预览对象", choices=choices([("member", "党员"), ("organization", "组织")]),
                               default="member")


class UserForm(FlaskForm):
    username = StringField("用户名", validators=[DataRequired(REQUIRED), Regexp(USERNAME, message=USERNAME_RULE)])
    display_name = StringField("姓名", validators=[Optional(), Length(max=50)])
    password = PasswordField("初始密码", validators=[DataRequired(REQUIRED), Length(max=128)])
    role = SelectField("角色", choices=ROLE_CHOICES)
    scope = StringField("范围（组织或区划的编码；系统管理员留空）", validators=[Optional(), Length(max=64)])


class GrantForm(FlaskForm):
    role = SelectField("角色", choices=ROLE_CHOICES)
    scope = StringField("范围编码", validators=[Optional(), Length(max=64)])


class EmptyForm(FlaskForm):
    """A form with nothing but the CSRF token (buttons that post)."""


STAR_SCOPE_CHOICES = choices([("", "按积分政策"), ("community", "社区"), ("street", "街道"), ("organization", "单位")])


# Period keys in ASCII digits: \d also matches "２０２６", which parse_period refuses (a 500 after the form).
QUARTER_KEY = r"^[0-9]{4}-Q[1-4]$"
FLAG_PERIOD_KEY = r"^[0-9]{4}-(Q[1-4]|0[1-9]|1[0-2])$"


def known_period(_form, field) -> None:
    """After the key's shape: a key of a year the service does not keep periods for (2201-Q1) parses to nothing."""
    if field.errors:
        return  # the shape's message says it all
    try:
        periods.parse_period(field.data)
    except periods.BadPeriod:
        raise ValidationError(periods.OUTSIDE_YEARS) from None


class ProposeStarsForm(FlaskForm):
    period = StringField("季度", validators=[DataRequired(REQUIRED), Regexp(QUARTER_KEY, message="如 2026-Q3"),
                                           known_period])
    scope = SelectField("评选范围", choices=STAR_SCOPE_CHOICES, default="")


class ObjectionForm(FlaskForm):
    member_id = IntegerField("候选人编号", validators=[InputRequired(REQUIRED), ROW_ID])
    reason = TextAreaField("异议理由", validators=[DataRequired("请填写异议理由"), Length(max=500)])


class WithdrawForm(FlaskForm):
    reason = StringField("撤销理由", validators=[DataRequired("请填写撤销理由"), Length(max=200)])


class DecisionForm(FlaskForm):
    upheld = SelectField("处理结果", choices=choices([("0", "异议不成立（维持）"), ("1", "异议成立（取消资格）")]))
    comment = StringField("处理意见", validators=[Optional(), Length(max=200)])


class AwardFlagsForm(FlaskForm):
    period = StringField("期间", validators=[DataRequired(REQUIRED),
                                            Regexp(FLAG_PERIOD_KEY, message="如 2026-11 或 2026-Q3"), known_period])


def _optional_id(value):
    return int(value) if value not in (None, "") else None


class DeactivateForm(FlaskForm):
    reason_code = SelectField("停用原因", choices=choices((code.value, name)
                                                        for code, name in DEACTIVATION_REASON_NAMES.items()))
    reason = StringField("说明", validators=[DataRequired("请填写停用说明"), Length(max=200)])
    effective_on = DateField("生效日期", validators=[InputRequired(REQUIRED), within_years],
                             description="今天或更早立即生效；晚于今天则预约，到期自动生效")


class ReasonForm(FlaskForm):
    """Reactivation and cancelling a scheduled change: an optional reason."""

    reason = StringField("说明（可选）", validators=[Optional(), Length(max=200)])


class UnbindWechatForm(FlaskForm):
    """解绑微信: the reason is required (it goes into the audit row)."""

    reason = StringField("解绑原因", validators=[DataRequired("请填写解绑原因"), Length(max=200)])


class TransferForm(FlaskForm):
    branch_id = SelectField("转入党支部", coerce=_optional_id, validate_choice=False, validators=[Optional(), ROW_ID])
    community_id = SelectField("新居住社区", coerce=_optional_id, validate_choice=False,
                               validators=[Optional(), ROW_ID])
    grid_id = IntegerField("新网格编号（可选）", validators=[Optional(), ROW_ID])
    effective_on = DateField("生效日期", validators=[Optional(), within_years], description="默认今天；晚于今天则预约")
    reason = StringField("说明（可选）", validators=[Optional(), Length(max=200)])

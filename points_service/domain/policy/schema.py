"""The marshmallow schema of a policy document, and the canonical form that is stored and checksummed.

Every mistake is reported under the dotted path of the field that holds it, e.g.
``items.member.activity_hour.points``, with a Chinese message. Unknown keys are refused at every level,
so a misspelt key never silently falls back to a default.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from types import MappingProxyType

import marshmallow as ma
import yaml

from points_service.domain.policy.fields import (
    CodeSet,
    Flag,
    KeyedMap,
    Nest,
    Number,
    Sequence,
    StrictSchema,
    Text,
    Whole,
    one_of,
)
from points_service.domain.policy.model import (
    APPROVALS,
    DEFAULT_REDEMPTION,
    ITEM_KINDS,
    LEDGERS,
    POLICY_TIMEZONE,
    TIE_BREAKS,
    UNITS,
    VETO_CODES,
    Caps,
    DecayRule,
    ExpiryRule,
    GradeBand,
    GradeRule,
    Policy,
    PolicyInvalid,
    PolicyItem,
    RedemptionRule,
    RedFlagRule,
    ResetRule,
    StarRule,
    SubjectKind,
    Veto,
)
from points_service.domain.policy.references import reference_errors
from points_service.domain.policy.rules import DECAY_RULES

ITEM_CODE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")

class CapsSchema(StrictSchema):
    day = Number(load_default=None, allow_none=True)
    month = Number(load_default=None, allow_none=True)
    quarter = Number(load_default=None, allow_none=True)
    year = Number(load_default=None, allow_none=True)

    @ma.validates_schema
    def positive(self, data, **_kwargs):
        errors = {name: ["上限应大于 0"] for name, cap in data.items() if cap is not None and cap <= 0}
        if errors:
            raise ma.ValidationError(errors)

    @ma.post_load
    def make(self, data, **_kwargs):
        return Caps(**data)


class ItemSchema(StrictSchema):
    name = Text(required=True, max_length=50)
    subject = Text(required=True, validate=one_of([kind.value for kind in SubjectKind]))
    kind = Text(required=True, validate=one_of(ITEM_KINDS))
    points = Number(required=True)
    unit = Text(load_default="times", validate=one_of(UNITS))
    max_units_per_fact = Number(load_default=None, allow_none=True)
    ledgers = CodeSet(Text(validate=one_of(LEDGERS)), load_default=frozenset({"assessment"}))
    approval = Text(required=True, validate=one_of(APPROVALS))
    caps = Nest(CapsSchema, load_default=Caps())
    category = Text(required=True, max_length=20)

    @ma.validates_schema
    def consistent(self, data, **_kwargs):
        errors: dict[str, list[str]] = {}
        kind, points = data.get("kind"), data.get("points")
        if kind == "award" and points is not None and points <= 0:
            errors["points"] = ["加分项的分值必须大于 0"]
        if kind == "deduction" and points is not None and points >= 0:
            errors["points"] = ["扣分项的分值必须小于 0（写成负数，如 -5）"]
        if kind == "deduction" and data.get("caps", Caps()) != Caps():
            errors["caps"] = ["扣分项不设上限：扣分从不封顶"]
        limit = data.get("max_units_per_fact")
        if limit is not None and limit <= 0:
            errors["max_units_per_fact"] = ["每次上限应大于 0，或写 null 表示不限"]
        if "ledgers" in data and "assessment" not in data["ledgers"]:
            errors["ledgers"] = ["必须包含 assessment（考核积分）"]
        if errors:
            raise ma.ValidationError(errors)


class DecaySchema(StrictSchema):
    kind = Text(required=True, validate=one_of(sorted(DECAY_RULES)))
    period = Text(required=True, validate=one_of(["month", "quarter", "year"]))
    half_life_days = Number(load_default=None, allow_none=True)
    points_per_period = Number(load_default=None, allow_none=True)
    floor = Number(load_default=Decimal(0), validate=ma.validate.Range(min=0, error="不能小于 {min}"))

    @ma.validates_schema
    def parameters(self, data, **_kwargs):
        needed = {"exponential": "half_life_days", "linear": "points_per_period"}.get(data.get("kind"))
        if needed and (data.get(needed) is None or data[needed] <= 0):
            raise ma.ValidationError(f"衰减方式 {data['kind']} 需要大于 0 的 {needed}", needed)

    @ma.post_load
    def make(self, data, **_kwargs):
        return DecayRule(**data)


class ResetSchema(StrictSchema):
    every = Text(required=True, validate=one_of(["none", "year", "half", "quarter"]))

    @ma.post_load
    def make(self, data, **_kwargs):
        return ResetRule(**data)


class ExpirySchema(StrictSchema):
    validity_months = Whole(required=True, allow_none=True,
                            validate=ma.validate.Range(min=1, max=120, error="应在 {min}–{max} 个月之间"))

    @ma.post_load
    def make(self, data, **_kwargs):
        return ExpiryRule(**data)


class RedemptionSchema(StrictSchema):
    minimum_balance = Number(required=True, validate=ma.validate.Range(min=0, max=100_000,
                                                                       error="应在 {min}–{max} 之间"))
    monthly_ceiling = Number(required=True, allow_none=True,
                             validate=ma.validate.Range(min=0, min_inclusive=False, max=1_000_000,
                                                        error="应大于 0 且不超过 {max}，或写 null 表示不限"))
    pickup_window_days = Whole(required=True,
                               validate=ma.validate.Range(min=1, max=90, error="应在 {min}–{max} 天之间"))

    @ma.post_load
    def make(self, data, **_kwargs):
        return RedemptionRule(**data)


class BandSchema(StrictSchema):
    name = Text(required=True, max_length=10)
    min_score = Number(required=True)

    @ma.post_load
    def make(self, data, **_kwargs):
        return GradeBand(**data)


class VetoSchema(StrictSchema):
    code = Text(required=True, validate=one_of(VETO_CODES))
    threshold = Whole(required=True, validate=ma.validate.Range(min=1, error="应不小于 {min}"))
    max_grade = Text(required=True, max_length=10)
    reason = Text(required=True, max_length=100)

    @ma.post_load
    def make(self, data, **_kwargs):
        return Veto(**data)


class GradesSchema(StrictSchema):
    bands = Sequence(Nest(BandSchema), required=True, validate=ma.validate.Length(min=2, error="至少两个等次"))
    excellent_share_cap = Number(required=True, validate=ma.validate.Range(
        min=0, max=1, min_inclusive=False, error="应大于 0 且不大于 1"))
    excellent_name = Text(required=True, max_length=10)
    vetoes = Sequence(Nest(VetoSchema), load_default=())

    @ma.validates_schema
    def bands_in_order(self, data, **_kwargs):
        bands = data.get("bands") or []
        names = [band.name for band in bands]
        if len(set(names)) != len(names):
            raise ma.ValidationError("等次名称不能重复", "bands")
        if any(a.min_score <= b.min_score for a, b in zip(bands, bands[1:], strict=False)):
            raise ma.ValidationError("等次应按最低分从高到低排列，且分数线不能相同", "bands")
        errors: dict[str, list[str]] = {}
        if bands and data.get("excellent_name") not in (None, names[0]):
            errors["excellent_name"] = [f"应为最高等次“{names[0]}”"]
        for index, veto in enumerate(data.get("vetoes") or []):
            if bands and isinstance(veto, Veto) and veto.max_grade not in names:
                errors[f"vetoes.{index}.max_grade"] = [f"应为等次之一：{'、'.join(names)}"]
        if errors:
            raise ma.ValidationError(errors)

    @ma.post_load
    def make(self, data, **_kwargs):
        return GradeRule(bands=tuple(data["bands"]), excellent_share_cap=data["excellent_share_cap"],
                         excellent_name=data["excellent_name"], vetoes=tuple(data["vetoes"]))


class StarsSchema(StrictSchema):
    scope = Text(required=True, validate=one_of(["community", "street", "organization"]))
    quota_kind = Text(required=True, validate=one_of(["top_n", "share"]))
    quota = Number(required=True)
    min_activities = Whole(load_default=0, validate=ma.validate.Range(min=0, error="不能小于 {min}"))
    min_points = Number(load_default=Decimal(0))
    disqualifying_items = CodeSet(Text(max_length=64), load_default=frozenset())
    require_reported = Flag(load_default=True)
    tie_breaks = Sequence(Text(validate=one_of(TIE_BREAKS)), required=True)
    publicity_working_days = Whole(required=True, validate=ma.validate.Range(min=0, max=30,
                                                                              error="应在 {min}–{max} 个工作日之间"))

    @ma.validates_schema
    def quota_and_order(self, data, **_kwargs):
        errors: dict[str, list[str]] = {}
        quota, kind = data.get("quota"), data.get("quota_kind")
        if quota is not None and kind == "top_n" and (quota < 1 or quota != quota.to_integral_value()):
            errors["quota"] = ["按名额评选时应为不小于 1 的整数"]
        if quota is not None and kind == "share" and not 0 < quota <= 1:
            errors["quota"] = ["按比例评选时应大于 0 且不大于 1"]
        ties = data.get("tie_breaks")
        if ties is not None and (len(set(ties)) != len(ties) or not ties or ties[-1] != "id"):
            errors["tie_breaks"] = ["不能重复，且最后一项必须是 id（保证排序唯一）"]
        if errors:
            raise ma.ValidationError(errors)

    @ma.post_load
    def make(self, data, **_kwargs):
        return StarRule(**{**data, "tie_breaks": tuple(data["tie_breaks"])})


class RedFlagSchema(StrictSchema):
    period = Text(required=True, validate=one_of(["month", "quarter"]))
    scope = Text(required=True, validate=one_of(["city", "district"]))
    min_report_rate = Number(required=True, validate=ma.validate.Range(min=0, max=1, error="应在 {min}–{max} 之间"))
    max_unexcused_absences = Whole(required=True, validate=ma.validate.Range(min=0, error="不能小于 {min}"))

    @ma.post_load
    def make(self, data, **_kwargs):
        return RedFlagRule(**data)


class PolicySchema(StrictSchema):
    name = Text(required=True, max_length=100)
    timezone = Text(required=True, validate=one_of([POLICY_TIMEZONE]))
    items = KeyedMap(Nest(ItemSchema), key_pattern=ITEM_CODE, required=True)
    monthly_positive_cap = KeyedMap(Number(allow_none=True), load_default=MappingProxyType({}))
    events = KeyedMap(Text(max_length=64), required=True)
    minimums = KeyedMap(Whole(validate=ma.validate.Range(min=0, error="不能小于 {min}")),
                        load_default=MappingProxyType({}))
    standing = Nest(DecaySchema, required=True)
    assessment_reset = Nest(ResetSchema, required=True)
    redeemable_expiry = Nest(ExpirySchema, required=True)
    redemption = Nest(RedemptionSchema, load_default=DEFAULT_REDEMPTION)
    grades = Nest(GradesSchema, required=True)
    stars = Nest(StarsSchema, required=True)
    red_flag = Nest(RedFlagSchema, required=True)

    @ma.validates_schema(skip_on_field_errors=False)
    def references(self, data, **_kwargs):
        errors = reference_errors(data)
        if errors:
            raise ma.ValidationError(errors)

    @ma.post_load
    def make(self, data, **_kwargs):
        items = {code: PolicyItem(code=code, **fields) for code, fields in data.pop("items").items()}
        given = data.pop("monthly_positive_cap")
        caps = {kind.value: given.get(kind.value) for kind in SubjectKind}
        return Policy(version=None, items=MappingProxyType(items), monthly_positive_cap=MappingProxyType(caps),
                      **data)


def flatten_errors(messages, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested error dict -> ``{"items.member.report.points": [...]}``."""
    if not isinstance(messages, dict):
        return {prefix or "_document": [str(m) for m in messages] if isinstance(messages, list) else [str(messages)]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = prefix if key == "_schema" else f"{prefix}.{key}" if prefix else str(key)
        for field, texts in flatten_errors(value, path).items():
            flat.setdefault(field, []).extend(texts)
    return flat


def parse_policy(document: dict, version: int | None = None) -> Policy:
    """Validate a policy document and build the immutable ``Policy``; raises ``PolicyInvalid``."""
    if not isinstance(document, dict):
        raise PolicyInvalid({"_document": ["政策文档应为映射（键: 值）"]})
    try:
        policy = PolicySchema().load(document)
    except ma.ValidationError as exc:
        raise PolicyInvalid(flatten_errors(exc.messages)) from None
    except RecursionError:
        raise PolicyInvalid({"_document": ["政策文档嵌套过深"]}) from None
    return policy if version is None else replace(policy, version=version)


def canonical_document(policy: Policy) -> dict:
    """The fully expanded, JSON-safe document: what is stored, so defaults in code never change a version."""
    return PolicySchema().dump(policy)


def checksum(document: dict) -> str:
    text = json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class _PolicyLoader(yaml.SafeLoader):
    """safe_load with exact decimals (``0.95`` is never a float) and without anchors/aliases (no YAML bombs)."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            mark = self.peek_event().start_mark
            raise yaml.MarkedYAMLError(problem="不支持 YAML 别名（*name）", problem_mark=mark)
        return super().compose_node(parent, index)

    def construct_yaml_float(self, node):
        text = self.construct_scalar(node).replace("_", "")
        try:
            return Decimal(text)
        except InvalidOperation:  # .inf, .nan: left as floats, which the schema then refuses
            return super().construct_yaml_float(node)


_PolicyLoader.add_constructor("tag:yaml.org,2002:float", _PolicyLoader.construct_yaml_float)


def load_policy_text(text: str | bytes) -> dict:
    """YAML (or JSON, which is read the same way) -> dict; unparsable text -> ``PolicyInvalid``."""
    try:
        if isinstance(text, bytes):
            text = text.decode("utf-8-sig")
        document = yaml.load(text, Loader=_PolicyLoader)  # noqa: S506 - a SafeLoader subclass
    except UnicodeDecodeError:
        raise PolicyInvalid({"_document": ["政策文档不是 UTF-8 文本"]}) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"第 {mark.line + 1} 行第 {mark.column + 1} 列：" if mark else ""
        raise PolicyInvalid({"_document": [f"无法解析政策文档，{where}{exc.problem}"]}) from None
    except (yaml.YAMLError, RecursionError):
        raise PolicyInvalid({"_document": ["无法解析政策文档"]}) from None
    if not isinstance(document, dict):
        raise PolicyInvalid({"_document": ["政策文档应为映射（键: 值）"]})
    return document

"""The points policy as immutable values: items, caps, decay, reset, expiry, grades, stars, red flags.

A ``Policy`` is built only by ``schema.parse_policy`` (so every instance has been validated) and never
changes afterwards: a change of policy is a new stored version, never an edit of this object.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from points_service.domain.errors import ServiceError, ValidationFailed
from points_service.models.ledger import SubjectType as LedgerSubjectType

SubjectType = Literal["member", "organization"]


# The ledger's subject types, under the name the policy has always used for them.
SubjectKind = LedgerSubjectType


LEDGERS = ("assessment", "redeemable")  # 考核积分 feeds grades and HR; 公益积分 is spent in the points store
ITEM_KINDS = ("award", "deduction")
UNITS = ("times", "hours")
APPROVALS = ("auto", "branch_secretary", "community_admin")
VETO_CODES = ("unexcused_absences", "not_reported", "falsified")
TIE_BREAKS = ("hours", "micro_wishes", "reached_first", "id")
POLICY_TIMEZONE = "Asia/Shanghai"


class PolicyInvalid(ValidationFailed):
    """A policy document was refused; ``data.errors`` maps dotted field paths to Chinese messages."""

    code, message = "policy_invalid", "积分政策有误，请按提示修改"


class UnknownItem(ServiceError, KeyError):
    status, code = 422, "unknown_item"

    def __init__(self, code: str) -> None:
        super().__init__(f"积分政策中没有积分项“{code}”")
        self.item_code = code

    def __str__(self) -> str:  # KeyError would quote the message
        return self.message


@dataclass(frozen=True)
class Caps:
    """Max points GRANTED per period for one item and one subject; None means uncapped."""

    day: Decimal | None = None
    month: Decimal | None = None
    quarter: Decimal | None = None
    year: Decimal | None = None


@dataclass(frozen=True)
class PolicyItem:
    code: str  # ascii, "member.activity_hour"
    name: str  # Chinese, "志愿服务（每小时）"
    subject: str  # SubjectType
    kind: str  # "award" | "deduction"
    points: Decimal  # per unit: > 0 for awards, < 0 for deductions
    unit: str  # "times" | "hours"
    max_units_per_fact: Decimal | None
    ledgers: frozenset[str]  # always contains "assessment"
    approval: str  # who confirms: "auto" | "branch_secretary" | "community_admin"
    caps: Caps
    category: str  # Chinese grouping label: 报到 / 服务 / 微心愿 / 网格 / 表彰 / 扣分 / 共建 ...


@dataclass(frozen=True)
class DecayRule:
    """How the standing score (活跃指数) fades; the decay job runs once per ``period``."""

    kind: str  # "none" | "exponential" | "linear"
    period: str  # "month" | "quarter" | "year"
    half_life_days: Decimal | None
    points_per_period: Decimal | None
    floor: Decimal


@dataclass(frozen=True)
class ResetRule:
    every: str  # "none" | "year" | "half" | "quarter"


@dataclass(frozen=True)
class ExpiryRule:
    validity_months: int | None  # redeemable points expire oldest first; None = never


@dataclass(frozen=True)
class RedemptionRule:
    """积分超市: what a member may redeem."""

    minimum_balance: Decimal  # the balance an order must leave at least (0: all may be spent)
    monthly_ceiling: Decimal | None  # points a member may redeem per calendar month; None = no ceiling
    pickup_window_days: int  # an order not collected within this many days is cancelled and refunded


DEFAULT_REDEMPTION = RedemptionRule(minimum_balance=Decimal(0), monthly_ceiling=None, pickup_window_days=14)


@dataclass(frozen=True)
class GradeBand:
    name: str
    min_score: Decimal


@dataclass(frozen=True)
class Veto:
    code: str  # one of VETO_CODES
    threshold: int  # triggered when the fact count reaches this
    max_grade: str  # the best grade still possible once triggered
    reason: str  # Chinese, shown to the member and HR


@dataclass(frozen=True)
class GradeRule:
    bands: tuple[GradeBand, ...]  # best first, strictly descending min_score
    excellent_share_cap: Decimal
    excellent_name: str
    vetoes: tuple[Veto, ...]


@dataclass(frozen=True)
class StarRule:
    """业务之星 each quarter."""

    scope: str  # "community" | "street" | "organization"
    quota_kind: str  # "top_n" | "share"
    quota: Decimal
    min_activities: int
    min_points: Decimal
    disqualifying_items: frozenset[str]
    require_reported: bool
    tie_breaks: tuple[str, ...]  # "id" always last, so the order is total
    publicity_working_days: int


@dataclass(frozen=True)
class RedFlagRule:
    """流动红旗 for organizations."""

    period: str  # "month" | "quarter"
    scope: str  # "city" | "district"
    min_report_rate: Decimal
    max_unexcused_absences: int


@dataclass(frozen=True)
class Policy:
    version: int | None  # None for a candidate not stored yet
    name: str
    timezone: str
    items: Mapping[str, PolicyItem]
    monthly_positive_cap: Mapping[str, Decimal | None]  # per subject type, on the SUM of positive points
    events: Mapping[str, str]  # named hooks the workflow uses -> item code
    minimums: Mapping[str, int]
    standing: DecayRule
    assessment_reset: ResetRule
    redeemable_expiry: ExpiryRule
    grades: GradeRule
    stars: StarRule
    red_flag: RedFlagRule
    # Set when the policy comes from the store; a candidate has neither.
    effective_from: datetime | None = None
    checksum: str | None = None
    redemption: RedemptionRule = DEFAULT_REDEMPTION

    def item(self, code: str) -> PolicyItem:
        try:
            return self.items[code]
        except KeyError:
            raise UnknownItem(code) from None

    def event_item(self, event: str) -> PolicyItem:
        """The item a named workflow event (``"no_show"``, ``"activity_hours"``) is scored with."""
        return self.item(self.events[event])

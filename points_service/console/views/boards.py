"""排行榜: any board the user may see (``pages.leaderboard`` authorizes ``leaderboard.view`` exactly as
``GET /leaderboards`` does), members or organizations (own / per-capita / participation), a bar chart of the
top, and the period's 业务之星 and 流动红旗 (the API's reading use cases)."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa
from flask import Blueprint, render_template, request

from points_service.console.charts import bar_chart
from points_service.console.pages import Page
from points_service.console.site import current_principal, error_page
from points_service.db import db, reads_without_transaction
from points_service.domain.access import Principal
from points_service.domain.boards import pages
from points_service.domain.boards.keys import BOARD_PERIOD_KINDS, STANDING
from points_service.domain.boards.rank import Measure
from points_service.domain.errors import ValidationFailed
from points_service.domain.periods import BadPeriod, Period, PeriodKind, parse_period, period_containing
from points_service.domain.red_flags import awards as red_flags
from points_service.domain.stars import reading as stars_reading
from points_service.models import Member, Organization, OrgKind, Region, RegionLevel, ScopeType, SubjectType

blp = Blueprint("boards", __name__, url_prefix="/boards")

PAGE_SIZE = 20
CHART_TOP = 10
SUBJECT_NAMES = {SubjectType.MEMBER: "党员", SubjectType.ORGANIZATION: "组织"}
MEASURE_NAMES = {Measure.OWN: "自身积分", Measure.PER_CAPITA: "党员人均积分", Measure.PARTICIPATION: "党员参与率"}
LEVEL_NAMES = {RegionLevel.DISTRICT: "区县", RegionLevel.STREET: "街道", RegionLevel.COMMUNITY: "社区",
               RegionLevel.GRID: "网格"}
ADMIN_SCOPE_LIMIT = 200  # an admin's pick list; any other board is one typed scope away (?scope=region:{id})


def board_period(raw: str | None) -> Period | str:
    """``standing`` or a month/quarter/half/year key, as ``GET /leaderboards`` accepts; default this quarter."""
    if not raw:
        return pages.current_quarter()
    if raw == STANDING:
        return STANDING
    try:
        period = parse_period(raw)
    except BadPeriod:
        period = None
    if period is None or period.kind not in BOARD_PERIOD_KINDS:
        raise ValidationFailed({"period": ["期间应为 2026-07、2026-Q3、2026-H2、2026 或 standing"]})
    return period


def _enum(enum_type, raw, default):
    return enum_type(raw) if raw in enum_type._value2member_map_ else default


@blp.errorhandler(ValidationFailed)
def bad_board_arguments(error: ValidationFailed):
    """A mistyped period or scope in the address: the page says which and how to write it."""
    errors = (error.data or {}).get("errors") or {}
    details = "；".join(m for messages in errors.values() for m in messages) if isinstance(errors, dict) else ""
    return error_page(422, details or error.message)


@blp.route("")
@reads_without_transaction
def leaderboard():
    principal = current_principal()
    subject = _enum(SubjectType, request.args.get("subject"), SubjectType.MEMBER)
    measure = _enum(Measure, request.args.get("measure"), Measure.OWN) \
        if subject == SubjectType.ORGANIZATION else Measure.OWN
    scope = (request.args.get("scope") or "all")[:40]
    period = board_period(request.args.get("period"))
    page = _page_number()
    board = pages.leaderboard(principal, subject, scope, period, measure, page, PAGE_SIZE)
    top = board["items"][:CHART_TOP] if page == 1 else []
    chart = bar_chart([item["subject"]["name"] for item in top], [item["value"] for item in top],
                      name=MEASURE_NAMES[measure] if subject == SubjectType.ORGANIZATION else "积分") if top else None
    quarter, flag_periods = selection_periods(period)
    return render_template(
        "console/boards/leaderboard.html", board=board, chart=chart,
        listing=Page(board["items"], page, PAGE_SIZE, min(board["total"], pages.MAX_DEPTH)),
        filters={"subject": subject.value, "scope": scope, "period": str(period), "measure": measure.value},
        scopes=scope_choices(principal, scope), subjects=SUBJECT_NAMES, measures=MEASURE_NAMES,
        quarter=quarter, stars=_stars(principal, quarter), flags=_flags(principal, flag_periods))


def _page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isascii() and raw.isdigit() and 0 < int(raw) <= pages.MAX_DEPTH // PAGE_SIZE else 1


def selection_periods(period: Period | str) -> tuple[Period, list[Period]]:
    """The quarter whose 业务之星 a board shows, and the periods whose 流动红旗 (monthly or quarterly per the
    policy): the board's own month or quarter; for a half, a year or the standing score, the last closed
    quarter (within the period)."""
    if isinstance(period, Period) and period.kind == PeriodKind.MONTH:
        quarter = _quarter_of(period)
        return quarter, [period, quarter]
    if isinstance(period, Period) and period.kind == PeriodKind.QUARTER:
        return period, [period]
    current = pages.current_quarter()
    end = min(period.end, current.start) if isinstance(period, Period) else current.start
    quarter = period_containing(end - timedelta(seconds=1), PeriodKind.QUARTER)
    return quarter, [quarter, *_months_of(quarter)]


def _quarter_of(month: Period) -> Period:
    return period_containing(month.start, PeriodKind.QUARTER)


def _months_of(quarter: Period) -> list[Period]:
    first = parse_period(f"{quarter.start_date.year}-{quarter.start_date.month:02d}")
    return [first, first.next(), first.next().next()]


def _stars(principal: Principal, quarter: Period) -> list[dict]:
    rows = db.session.scalars(stars_reading.published_stars(principal, quarter).limit(100)).all()
    return stars_reading.describe_candidates(list(rows))


def _flags(principal: Principal, periods: list[Period]) -> list[dict]:
    awards = [award for period in periods for award in red_flags.list_red_flags(principal, period)]
    return red_flags.describe_awards(awards)


def scope_choices(principal: Principal, current: str) -> list[tuple[str, str]]:
    """The boards offered in the pick list: the city, the user's own places and grants (admins: districts,
    streets, communities and departments). Offering is not permitting: the use case decides."""
    choices: dict[str, str] = {"all": "全市"}
    if principal.member_id is not None:
        member = db.session.get(Member, principal.member_id)
        if member is not None:
            choices[f"region:{member.community_id}"] = f"社区 · {member.community.name}"
            choices[f"organization:{member.branch_id}"] = f"党支部 · {member.branch.name}"
    for grant in principal.grants:
        if grant.scope_id is None:
            continue
        if grant.scope_type == ScopeType.REGION:
            region = db.session.get(Region, grant.scope_id)
            if region is not None and region.level in LEVEL_NAMES:
                choices[f"region:{region.id}"] = f"{LEVEL_NAMES[region.level]} · {region.name}"
        elif grant.scope_type == ScopeType.ORGANIZATION:
            org = db.session.get(Organization, grant.scope_id)
            if org is not None:
                choices[f"organization:{org.id}"] = f"{_org_label(org)} · {org.name}"
    if principal.is_admin:
        choices.update(_admin_choices())
    if current not in choices:
        choices[current] = current
    return list(choices.items())


def _admin_choices() -> dict[str, str]:
    regions = db.session.scalars(sa.select(Region).where(Region.level.in_(
        [RegionLevel.DISTRICT, RegionLevel.STREET, RegionLevel.COMMUNITY])).order_by(Region.path)
        .limit(ADMIN_SCOPE_LIMIT))
    departments = db.session.scalars(sa.select(Organization).where(Organization.kind == OrgKind.DEPARTMENT)
                                     .order_by(Organization.name).limit(ADMIN_SCOPE_LIMIT))
    return {**{f"region:{r.id}": f"{LEVEL_NAMES[r.level]} · {r.name}" for r in regions},
            **{f"organization:{o.id}": f"{_org_label(o)} · {o.name}" for o in departments}}


def _org_label(org: Organization) -> str:
    return "部门党组织" if org.kind == OrgKind.DEPARTMENT else "党支部"

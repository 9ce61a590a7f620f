"""Reading points: the three figures users confuse, kept apart — what was earned in a period (HR),
the decayed standing score (general boards), and the redeemable balance (points store)."""

from __future__ import annotations

import functools
import operator
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.db import cents, core_execute, db, from_cents, sql_constant, utcnow
from points_service.domain.access import Principal
from points_service.domain.ledger.settlement import (
    expiring_amount,
    expiring_sums_sql,
    expiry_window,
    last_expiry_instants,
    last_expiry_validity,
    unsettled_expiry_sql,
    unsettled_params_under,
)
from points_service.domain.ledger.totals import total_of
from points_service.domain.lifecycle.membership import placed_at
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.policy import policy_for_reading, policy_in_force
from points_service.domain.structure import get_member, get_organization
from points_service.models import (
    ALL_TIME,
    PENDING,
    SCORING_KINDS,
    EntryKind,
    InboxMessage,
    LedgerEntry,
    LedgerName,
    MarketItem,
    MarketOrder,
    OrderState,
    Organization,
    PointTotal,
    Record,
    Report,
    SourceType,
    SubjectType,
)

SYSTEM_ITEM_NAMES = {
    "admin.adjustment": "管理员调整",
    "standing.decay": "活跃指数衰减",
    "assessment.reset": "考核积分清零",
    "redeemable.expiry": "公益积分过期",
    "market.redemption": "积分超市兑换",
}
LABELS = {
    "assessment": "考核积分：本期获得（扣分后），用于评级和单位考核",
    "standing": "活跃指数：累计考核积分按政策衰减后的分值，用于总榜",
    "redeemable": "公益积分余额：可在积分超市兑换，按政策过期",
}


def item_names(at: datetime | None = None) -> dict[str, str]:
    """Chinese names of every item code a ledger entry may carry, under the policy in force (at ``at``)."""
    policy = policy_in_force(at or utcnow())
    return {**SYSTEM_ITEM_NAMES, **{code: item.name for code, item in policy.items.items()}}


def _summary(subject_type: SubjectType, subject_id: int, period: Period) -> dict:
    assessment = total_of(subject_type, subject_id, LedgerName.ASSESSMENT, period.key)
    return {
        "period": period,
        "assessment": {"earned": assessment.earned, "deducted": assessment.deducted, "net": assessment.net},
        "standing": total_of(subject_type, subject_id, LedgerName.STANDING, ALL_TIME).balance,
        "redeemable": total_of(subject_type, subject_id, LedgerName.REDEEMABLE, ALL_TIME).balance,
        "by_item": _by_item(subject_type, subject_id, period),
        "labels": LABELS,
    }


def _by_item(subject_type: SubjectType, subject_id: int, period: Period) -> list[dict]:
    rows = db.session.execute(
        sa.select(LedgerEntry.item_code, sa.func.sum(cents(LedgerEntry.points)),
                  sa.func.count())
        .where(*_subject_ledger(subject_type, subject_id, LedgerName.ASSESSMENT), *_within(period),
               LedgerEntry.kind.in_(SCORING_KINDS))
        .group_by(LedgerEntry.item_code).order_by(LedgerEntry.item_code))
    names = item_names()
    return [{"item_code": code, "name": names.get(code, code), "points": from_cents(total), "count": count}
            for code, total, count in rows]


def _subject_ledger(subject_type, subject_id, ledger=None) -> list:
    clauses = [LedgerEntry.subject_type == subject_type, LedgerEntry.subject_id == subject_id]
    return clauses + ([LedgerEntry.ledger == ledger] if ledger else [])


def _within(period: Period | None) -> list:
    return [] if period is None else [LedgerEntry.credited_at >= period.start, LedgerEntry.credited_at < period.end]


def unreversed_deductions(item_codes, start: datetime, cutoff: datetime) -> list[tuple[SubjectType, int, str, int]]:
    """(subject type, subject id, item code, count) of the assessment deductions of ``item_codes`` credited in
    [start, cutoff) and not reversed before the cutoff: one grouped query. Each deduction is joined to its own
    reversal, so a reversal in the window of a deduction from before it cancels nothing here."""
    entry, reversal = aliased(LedgerEntry), aliased(LedgerEntry)
    rows = db.session.execute(
        sa.select(entry.subject_type, entry.subject_id, entry.item_code, sa.func.count(entry.id))
        .outerjoin(reversal, sa.and_(reversal.reverses_id == entry.id, reversal.credited_at < cutoff))
        .where(reversal.id.is_(None), entry.ledger == LedgerName.ASSESSMENT, entry.kind == EntryKind.DEDUCTION,
               entry.item_code.in_(sorted(item_codes) or [""]), entry.credited_at >= start,
               entry.credited_at < cutoff)
        .group_by(entry.subject_type, entry.subject_id, entry.item_code))
    return [(SubjectType(subject_type), subject_id, item_code, count)
            for subject_type, subject_id, item_code, count in rows]


def default_period() -> Period:
    return period_containing(utcnow(), PeriodKind.YEAR)


def member_points(principal: Principal, member_id: int, period: Period | None) -> dict:
    member = get_member(principal, member_id)
    return _summary(SubjectType.MEMBER, member.id, period or default_period())


def organization_points(principal: Principal, org_id: int, period: Period | None) -> dict:
    org = get_organization(principal, org_id)
    period = period or default_period()
    return {**_summary(SubjectType.ORGANIZATION, org.id, period), "members": member_rollup(org, period)}


def home_summary(member_id: int, now: datetime | None = None) -> dict:
    """The mini-program's home screen figures for one member in one statement: maintained totals (no ledger
    scan), the pending count, and what the expiry run at the end of this month will take."""
    now = now or utcnow()
    months = policy_for_reading(now).redeemable_expiry.validity_months
    last_months = last_expiry_validity(*(policy_for_reading(instant) for instant in last_expiry_instants(now)))
    statement, params = home_query(member_id, months, last_months, now)
    return home_figures(core_execute(statement, params).one(), now)


def home_query(member_id: int, months: int | None, last_months: int | None,
               now: datetime) -> tuple[sa.Select, dict]:
    """The home figures' statement and its parameters, for a policy whose redeemable points stay valid
    ``months`` (None: forever) and last month's expiry run with the validity ``last_months`` (None: it expires
    nothing; ``settlement.last_expiry_validity``). GET /me runs it inside its one statement."""
    keys = {kind: period_containing(now, PeriodKind(kind)).key for kind in ("month", "quarter", "year")}
    window = {}
    if months is not None:
        window = dict(zip(("threshold", "cutoff"), expiry_window(period_containing(now, PeriodKind.MONTH), months),
                          strict=True))
    if last_months is not None:
        window.update(unsettled_params_under((SubjectType.MEMBER.value, member_id), now, last_months))
    return _home_statement(months is not None, last_months is not None), {"member_id": member_id, **keys, **window}


def home_figures(row, now: datetime) -> dict:
    """The figures of a row of ``home_query``'s statement. What expired at last month's end but the expiry job
    has not written yet is neither redeemable nor expiring again (orders do not spend it either)."""
    expiring = "old_credits" in row._fields
    held = row.unsettled if "unsettled" in row._fields else 0
    return {
        **{kind: from_cents(getattr(row, kind)) for kind in ("month", "quarter", "year")},
        "standing": from_cents(row.standing),
        "redeemable": from_cents((row.redeemable or 0) - held),
        "pending": row.pending_records + row.pending_reports,
        "open_orders": row.open_orders,
        "unread_messages": row.unread_messages,
        "expiring": {"points": expiring_amount(row.old_credits, row.debits - held) if expiring else Decimal(0),
                     "on": period_containing(now, PeriodKind.MONTH).end},
        "labels": LABELS,
    }


@functools.cache
def _home_statement(with_expiry: bool, with_unsettled: bool) -> sa.Select:
    """Bind parameters ``member_id``, ``month``, ``quarter``, ``year`` (period keys), with the expiry
    ``threshold`` and ``cutoff``, and with what last month's run has not written yet those of
    ``unsettled_params_under``; amounts in hundredths."""
    member = sa.bindparam("member_id")

    def total(ledger: LedgerName, period, *columns) -> sa.ScalarSelect:
        return sa.select(functools.reduce(operator.add, map(cents, columns))).where(
            PointTotal.subject_type == sql_constant(SubjectType.MEMBER), PointTotal.subject_id == member,
            PointTotal.ledger == sql_constant(ledger), PointTotal.period == period).scalar_subquery()

    def pending(model) -> sa.ScalarSelect:
        return sa.select(sa.func.count()).select_from(model).where(
            model.subject_type == sql_constant(SubjectType.MEMBER), model.subject_id == member,
            PENDING).scalar_subquery()

    net, balance = (PointTotal.earned, PointTotal.deducted), (PointTotal.earned, PointTotal.deducted,
                                                              PointTotal.settled)
    old_credits, debits = expiring_sums_sql(sql_constant(SubjectType.MEMBER), member)
    expiry = (old_credits.label("old_credits"), debits.label("debits")) if with_expiry else ()
    if with_unsettled:
        expiry += (unsettled_expiry_sql(sql_constant(SubjectType.MEMBER), member).label("unsettled"),)
    return sa.select(
        *(total(LedgerName.ASSESSMENT, sa.bindparam(kind), *net).label(kind) for kind in ("month", "quarter", "year")),
        total(LedgerName.STANDING, sql_constant(ALL_TIME), *balance).label("standing"),
        total(LedgerName.REDEEMABLE, sql_constant(ALL_TIME), *balance).label("redeemable"),
        pending(Record).label("pending_records"), pending(Report).label("pending_reports"),
        sa.select(sa.func.count()).select_from(MarketOrder).where(
            MarketOrder.member_id == member, MarketOrder.state == sql_constant(OrderState.PLACED),
        ).scalar_subquery().label("open_orders"),
        sa.select(sa.func.count()).select_from(InboxMessage).where(
            InboxMessage.member_id == member, InboxMessage.read_at.is_(None),
        ).scalar_subquery().label("unread_messages"),
        *expiry)


def member_rollup(org: Organization, period: Period, now: datetime | None = None) -> dict:
    """The organization's members, clearly labelled as theirs (not the organization's own points): those who
    belonged to it at the end of the period (now, for a period not over) — the dated membership, so a closed
    period's head count, participation and per-capita figures do not change when someone leaves or moves later."""
    in_org = sa.select(Organization.id).where(Organization.path.startswith(org.path))
    placed = placed_at(min(period.end, now or utcnow())).subquery()
    members = sa.select(placed.c.member_id).where(placed.c.branch_id.in_(in_org))
    count = db.session.scalar(sa.select(sa.func.count()).select_from(members.subquery()))
    net = cents(PointTotal.earned) + cents(PointTotal.deducted)
    total_cents, participating = db.session.execute(
        sa.select(sa.func.coalesce(sa.func.sum(net), 0), sa.func.count().filter(PointTotal.earned > 0))
        .where(PointTotal.subject_type == SubjectType.MEMBER, PointTotal.subject_id.in_(members),
               PointTotal.ledger == LedgerName.ASSESSMENT, PointTotal.period == period.key)).one()
    total = from_cents(total_cents)
    return {
        "label": "本组织党员的积分汇总（不计入组织自身积分）",
        "member_count": count,
        "participating_members": participating,
        "participation_rate": (Decimal(participating) / count).quantize(Decimal("0.0001")) if count else None,
        "total_points": total,
        "per_capita_points": (total / count).quantize(Decimal("0.01")) if count else None,
    }


def ledger_page(principal: Principal, subject_type: SubjectType, subject_id: int, period: Period | None,
                ledger: LedgerName | None) -> sa.Select:
    if subject_type == SubjectType.MEMBER:
        get_member(principal, subject_id)
    else:
        get_organization(principal, subject_id)
    return (sa.select(LedgerEntry).where(*_subject_ledger(subject_type, subject_id, ledger), *_within(period))
            .order_by(LedgerEntry.credited_at.desc(), LedgerEntry.id.desc()))


def attach_market_items(page: dict) -> dict:
    """Redemption and refund entries name the 积分超市 item they were for (``market_item``; one query a page)."""
    entries = page["items"]
    order_ids = {int(entry.source_id) for entry in entries if entry.source_type == SourceType.ORDER}
    items = {} if not order_ids else {
        order_id: {"id": item_id, "name": name, "order_id": order_id}
        for order_id, item_id, name in db.session.execute(
            sa.select(MarketOrder.id, MarketItem.id, MarketItem.name)
            .join(MarketItem, MarketItem.id == MarketOrder.item_id).where(MarketOrder.id.in_(order_ids)))}
    for entry in entries:
        entry.market_item = items.get(int(entry.source_id)) if entry.source_type == SourceType.ORDER else None
    return page

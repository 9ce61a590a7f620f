"""Crediting points: the one path by which any feature turns a confirmed fact into ledger entries.

``credit`` (flush-level) is called inside the confirming use case's transaction — an approval, a
check-out, a report confirmation — so the fact's state change and its points commit together.
``award`` is the same as a use case of its own, owning its commit.

Exactly-once: each (source fact, item, ledger) has a unique idempotency key in the database. The
subject's row is locked first (PostgreSQL serializes concurrent credits to one subject, which also
keeps caps honest); the insert is ``INSERT … ON CONFLICT (idempotency_key) DO NOTHING``, so that a duplicate
that slips past the check (SQLite has no row locks) ends as "already credited", never as a second entry or a
500. A reversal, which can also collide on ``reverses_id``, is inserted in a SAVEPOINT instead.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import aliased

from points_service.db import (
    RoutingSession,
    attach_written,
    cents,
    core_execute,
    db,
    from_cents,
    insert_rows_unless_exist,
    insert_unless_exists,
    to_points,
    utcnow,
)
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.domain.ledger.totals import bump_totals, bump_totals_of
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.policy import Policy, PolicyItem, policy_in_force
from points_service.domain.policy.rules import CAP_WINDOWS, apply_caps
from points_service.models import (
    EntryKind,
    LedgerEntry,
    LedgerName,
    Member,
    Organization,
    SourceType,
    SubjectType,
)
from points_service.transactions import column_values

SUBJECT_MODELS = {SubjectType.MEMBER: Member, SubjectType.ORGANIZATION: Organization}


@dataclass(frozen=True)
class Fact:
    """A confirmed thing that earns or costs points under one policy item."""

    subject_type: SubjectType
    subject_id: int
    item_code: str
    source_type: SourceType
    source_id: str
    occurred_at: datetime
    units: Decimal = Decimal(1)
    reason: str = ""

    def key(self, ledger: LedgerName) -> str:
        return f"{self.source_type}:{self.source_id}:{self.item_code}:{ledger}"


class MemberInactive(Conflict):
    code, message = "member_inactive", "该党员已停用（离职、退休或组织关系转出），不能再获得积分"


def lock_subject(subject_type: SubjectType, subject_id: int):
    """SELECT ... FOR UPDATE the member or organization row (a no-op lock on SQLite), once per transaction.

    Lock order: a use case that changes a subject's records, reports or orders and credits him locks him first
    (approvals, report confirmations, orders), as his deactivation does before closing them; one that took a
    record's row first and then waited for him would deadlock with it. A use case may therefore lock him early
    and credit later: the row, held since, cannot have changed, so the second call sends nothing."""
    key = (SubjectType(subject_type), subject_id)
    locked = db.session.info.setdefault(_LOCKED, {})
    if key not in locked:
        subject = db.session.scalar(_lock_statement(key[0]), {"subject_id": subject_id})
        if subject is None:
            raise NotFound("积分对象不存在")
        locked[key] = subject
    return locked[key]


LOCK_CHUNK = 500  # ids per statement: far below SQLite's and psycopg's parameter limits


def lock_subjects(subjects: Iterable[tuple[SubjectType, int]]) -> None:
    """``lock_subject`` for several ``(subject type, id)``, sorted: the order every writer holding several subjects
    takes them in (a batch of decisions, the roster import; the member-changes job applies its changes in it), so
    no two of them wait on each other in a cycle. One statement per type and chunk of ids, not one per subject
    (an import may change 5,000 members): PostgreSQL locks the rows as its ORDER BY returns them."""
    locked = db.session.info.setdefault(_LOCKED, {})
    wanted = sorted({(SubjectType(t), i) for t, i in subjects} - locked.keys())
    if len(wanted) == 1:
        lock_subject(*wanted[0])
        return
    for subject_type, keys in itertools.groupby(wanted, key=lambda key: key[0]):
        ids = [subject_id for _, subject_id in keys]
        for start in range(0, len(ids), LOCK_CHUNK):
            chunk = ids[start:start + LOCK_CHUNK]
            rows = db.session.scalars(_lock_many_statement(subject_type), {"subject_ids": chunk}).all()
            locked.update(((subject_type, row.id), row) for row in rows)
            if len(rows) < len(chunk):
                raise NotFound("积分对象不存在")


_LOCKED = "points_locked_subjects"


@sa.event.listens_for(RoutingSession, "after_transaction_end")
def _forget_locks(session, transaction) -> None:
    """Row locks end with the transaction, and those taken in a SAVEPOINT with its rollback: lock again after the
    transaction or any SAVEPOINT ends (a flush's inner transaction is neither)."""
    if transaction.parent is None or transaction.nested:
        session.info.pop(_LOCKED, None)


@functools.cache
def _lock_statement(subject_type: SubjectType) -> sa.Select:
    model = SUBJECT_MODELS[subject_type]
    # populate_existing: an instance the session loaded before the lock (a check-out's member) is refreshed from
    # the locked row, so the checks below see what the lock holds (a deactivation committed meanwhile).
    return (sa.select(model).where(model.id == sa.bindparam("subject_id")).with_for_update()
            .execution_options(populate_existing=True))


@functools.cache
def _lock_many_statement(subject_type: SubjectType) -> sa.Select:
    model = SUBJECT_MODELS[subject_type]
    return (sa.select(model).where(model.id.in_(sa.bindparam("subject_ids", expanding=True)))
            .order_by(model.id).with_for_update().execution_options(populate_existing=True))


def credit(fact: Fact, *, actor_id: int | None = None, at: datetime | None = None,
           policy: Policy | None = None) -> list[LedgerEntry]:
    """Write the fact's entries (one per ledger the item feeds) unless already written. Flushes only."""
    at = at or utcnow()
    policy = policy or policy_in_force(at)
    item = policy.item(fact.item_code)
    if item.subject != fact.subject_type:
        raise ValidationFailed({"item_code": [f"积分项目 {item.code} 不适用于{_subject_label(fact.subject_type)}"]})
    subject = lock_subject(fact.subject_type, fact.subject_id)
    if fact.subject_type == SubjectType.MEMBER and not subject.is_active:
        raise MemberInactive()
    keys = [fact.key(LedgerName(ledger)) for ledger in item.ledgers]
    usage = _usage(fact, keys, at)
    existing = _entries_with_keys(keys) if usage.written else []
    if len(existing) == len(item.ledgers):
        return existing
    units = _units(item, fact.units)
    asked = to_points(item.points * units)
    granted, capped_by = _capped(item, policy, asked, usage, fact.subject_type)
    written = {e.ledger for e in existing}
    return list(existing) + _insert_all([LedgerEntry(
        subject_type=fact.subject_type, subject_id=fact.subject_id, ledger=LedgerName(ledger),
        kind=EntryKind.AWARD if asked >= 0 else EntryKind.DEDUCTION, item_code=item.code,
        units=units, points=granted, points_requested=asked, capped_by=capped_by, occurred_at=fact.occurred_at,
        credited_at=at, policy_version=policy.version, source_type=fact.source_type,
        source_id=fact.source_id, actor_id=actor_id, reason=fact.reason[:200],
        idempotency_key=fact.key(LedgerName(ledger)),
    ) for ledger in sorted(item.ledgers) if ledger not in written])


def award(fact: Fact, *, actor_id: int | None = None, at: datetime | None = None) -> list[LedgerEntry]:
    """Credit one fact as a use case of its own: one transaction, safe to retry."""
    try:
        entries = credit(fact, actor_id=actor_id, at=at)
        db.session.commit()
    except IntegrityError:
        # A concurrent writer committed the same fact between our check and our insert.
        db.session.rollback()
        keys = [fact.key(LedgerName(ledger)) for ledger in LedgerName]
        entries = _entries_with_keys(keys)
        if not entries:
            raise
    return entries


def insert_entry(entry: LedgerEntry) -> LedgerEntry:
    """Insert a ledger entry and bump its totals, or return the entry already written under its key."""
    return _insert_once(entry)


def _insert_once(entry: LedgerEntry) -> LedgerEntry:
    if entry.reverses_id is not None:  # a reversal can also collide on ``reverses_id``: keep the SAVEPOINT
        return _insert_in_savepoint(entry)
    row = column_values(entry)
    entry_id = insert_unless_exists(LedgerEntry, row, ("idempotency_key",))
    if entry_id is None:  # the key is taken: that entry, written earlier or by a concurrent transaction
        return _entry_with_key(entry.idempotency_key)
    entry.id = entry_id
    attach_written(entry)
    bump_totals(entry)
    return entry


def _insert_all(entries: list[LedgerEntry]) -> list[LedgerEntry]:
    """Insert entries (none a reversal) in one statement and bump their totals in one upsert; an entry whose
    key is taken is replaced by the entry written under it."""
    if not entries:
        return []
    ids = insert_rows_unless_exist(LedgerEntry, [column_values(entry) for entry in entries], "idempotency_key")
    fresh = [entry for entry in entries if entry.idempotency_key in ids]
    for entry in fresh:
        entry.id = ids[entry.idempotency_key]
        attach_written(entry)
    if fresh:
        bump_totals_of(fresh)
    taken = [entry.idempotency_key for entry in entries if entry.idempotency_key not in ids]
    found = {e.idempotency_key: e for e in _entries_with_keys(taken)} if taken else {}
    return [entry if entry.idempotency_key in ids else found[entry.idempotency_key] for entry in entries]


def _insert_in_savepoint(entry: LedgerEntry) -> LedgerEntry:
    try:
        with db.session.begin_nested():
            db.session.add(entry)
            db.session.flush()
            bump_totals(entry)
    except IntegrityError:
        found = _entry_with_key(entry.idempotency_key)
        if found is None:
            raise
        return found
    return entry


def _entries_with_keys(keys: list[str]) -> list[LedgerEntry]:
    return list(db.session.scalars(_entries_by_key(), {"keys": keys}))


def _entry_with_key(key: str) -> LedgerEntry | None:
    found = _entries_with_keys([key])
    return found[0] if found else None


@functools.cache
def _entries_by_key() -> sa.Select:
    return sa.select(LedgerEntry).where(LedgerEntry.idempotency_key.in_(sa.bindparam("keys", expanding=True)))


def _units(item: PolicyItem, units: Decimal) -> Decimal:
    """Units counted for one fact: positive, at most the item's per-fact maximum (e.g. 4 hours)."""
    if isinstance(units, float) or units <= 0:
        raise ValidationFailed({"units": ["数量必须为正数"]})
    return to_points(units if item.max_units_per_fact is None else min(units, item.max_units_per_fact))


def _capped(item: PolicyItem, policy: Policy, asked: Decimal, usage: Usage,
            subject_type: SubjectType) -> tuple[Decimal, str | None]:
    if asked < 0:
        return asked, None
    result = apply_caps(asked, item.caps, usage.windows, policy.monthly_positive_cap.get(str(subject_type)),
                        usage.month_positive)
    return result.granted, result.capped_by


@dataclass(frozen=True)
class Usage:
    windows: dict[str, Decimal]  # per cap window of the credit: what the item's awards granted, less those reversed
    month_positive: Decimal  # what awards granted the subject in the credit's month, less those reversed
    written: int  # the fact's entries already in the ledger (a replay): read with the sums, one round trip


def _usage(fact: Fact, keys: list[str], at: datetime) -> Usage:
    """What the caps need (points the item's awards granted this subject in each cap window containing ``at``,
    and what the month's awards granted him, both less the awards reversed since) and how many of ``keys`` are
    written, in one statement."""
    windows = {name: period_containing(at, PeriodKind(name)) for name in CAP_WINDOWS}
    params = {f"{name}_{edge}": getattr(p, edge) for name, p in windows.items() for edge in ("start", "end")}
    *sums, month_granted, written = core_execute(_usage_statement(), {
        **params, "subject_type": fact.subject_type, "subject_id": fact.subject_id, "item_code": fact.item_code,
        "keys": keys, "from": min(p.start for p in windows.values()), "to": max(p.end for p in windows.values()),
    }).one()
    return Usage({name: from_cents(value) for name, value in zip(windows, sums, strict=True)},
                 from_cents(month_granted), written)


def _edge(name: str) -> sa.BindParameter:
    return sa.bindparam(name, type_=LedgerEntry.credited_at.type)


@functools.cache
def _usage_statement() -> sa.Select:
    """Built once (the credit path runs it on every award): one sum per cap window, the month's granted awards
    and the count of the fact's entries already written.

    An item's cap windows count what its awards credited in the window granted, less the awards reversed since,
    as the monthly cap does: a reversed award gives its room back to its own windows, and its reversal, credited
    later, gives none to the windows it falls in."""
    raw, at = cents(LedgerEntry.points), LedgerEntry.credited_at
    columns = [sa.func.coalesce(sa.func.sum(sa.case(
        (sa.and_(at >= _edge(f"{name}_start"), at < _edge(f"{name}_end")), raw), else_=0)), 0)
        for name in CAP_WINDOWS]
    subject_type = sa.bindparam("subject_type", type_=LedgerEntry.subject_type.type)
    written = (sa.select(sa.func.count()).select_from(LedgerEntry)
               .where(LedgerEntry.idempotency_key.in_(sa.bindparam("keys", expanding=True))).scalar_subquery())
    reversal = aliased(LedgerEntry)
    return sa.select(*columns, _month_granted(subject_type), written).where(
        LedgerEntry.subject_type == subject_type, LedgerEntry.subject_id == sa.bindparam("subject_id"),
        LedgerEntry.ledger == LedgerName.ASSESSMENT, LedgerEntry.item_code == sa.bindparam("item_code"),
        LedgerEntry.kind == EntryKind.AWARD, ~sa.exists().where(reversal.reverses_id == LedgerEntry.id),
        at >= _edge("from"), at < _edge("to"))


def _month_granted(subject_type: sa.BindParameter) -> sa.ScalarSelect:
    """The subject's monthly positive cap counts the points awards granted him in the month, less the awards
    reversed since (a reversed award gives its room back to its own month). Not the month's ``earned`` total:
    that also holds the +5 of a reversed wrong deduction, which would cost him room for an admin's correction,
    and positive adjustments, which are corrections too and never capped."""
    award, reversal = aliased(LedgerEntry), aliased(LedgerEntry)
    return sa.select(sa.func.coalesce(sa.func.sum(cents(award.points)), 0)).where(
        award.subject_type == subject_type, award.subject_id == sa.bindparam("subject_id"),
        award.ledger == LedgerName.ASSESSMENT, award.kind == EntryKind.AWARD,
        award.credited_at >= _edge("month_start"), award.credited_at < _edge("month_end"),
        ~sa.exists().where(reversal.reverses_id == award.id)).scalar_subquery()


def _subject_label(subject_type) -> str:
    return "党员" if subject_type == SubjectType.MEMBER else "组织"

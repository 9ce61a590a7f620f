"""Annual settlement (年度结算): freeze each member's and each organization's year into a statement.

Set-based: a handful of grouped queries over the year (``facts``), ranking and grading as pure
functions over all subjects at once (``grading``), then chunked bulk inserts — never a query per member.
Everything is taken at the cutoff (the year's end, Asia/Shanghai) under the policy in force just before it,
so ``recompute_statements`` at any later time yields the same rows and the same checksum.

Statements never change (append-only tables). A later correction is a ledger adjustment or reversal;
``corrections_after_settlement`` shows it next to the statement with its audit reference.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from itertools import groupby

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from points_service.db import db, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.annual import facts
from points_service.domain.annual.facts import YearWindow
from points_service.domain.annual.grading import Grading, Standing, grade_year
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.domain.ledger.reading import SYSTEM_ITEM_NAMES
from points_service.domain.periods import ONE_TICK, BadPeriod, Period
from points_service.domain.policy import Policy, policy_in_force
from points_service.models import (
    AnnualSettlement,
    AnnualStatement,
    AuditEntry,
    EntryKind,
    LedgerEntry,
    LedgerName,
    OrgKind,
    SubjectType,
)
from points_service.transactions import driver_cursor

CHUNK = 5000


class AlreadySettled(Conflict):
    code, message = "already_settled", "该年度已结算，结算结果不可更改；如需更正请使用积分调整"


class YearNotEnded(Conflict):
    code, message = "year_not_ended", "该年度尚未结束，不能结算"


class NotSettled(NotFound):
    code, message = "not_settled", "该年度尚未结算"


class _System:
    """The scheduler acting on its own: not a user, so its rows carry no user id."""

    user_id = None
    request_id = None
    is_admin = True

    def __repr__(self) -> str:
        return "SYSTEM"


SYSTEM = _System()


def year_window(year: int) -> YearWindow:
    try:
        return YearWindow.of(year)
    except BadPeriod:
        raise ValidationFailed({"year": ["年度应在 2000 至 2200 之间"]}) from None


def settlement_of(year: int) -> AnnualSettlement | None:
    return db.session.scalar(sa.select(AnnualSettlement).where(AnnualSettlement.year == year))


def require_settlement(year: int) -> AnnualSettlement:
    settlement = settlement_of(year)
    if settlement is None:
        raise NotSettled(f"{year} 年度尚未结算")
    return settlement


# ------------------------------------------------------------------------------------ use cases


def get_settlement(actor: Principal, year: int) -> AnnualSettlement:
    authorize(actor, "hr.export_own_scope")
    year_window(year)
    return require_settlement(year)


def settle_year(actor: Principal | _System, year: int, *, now: datetime | None = None) -> AnnualSettlement:
    """Freeze ``year`` (admins; the scheduled job passes SYSTEM). 409 ``already_settled`` the second time."""
    if actor is not SYSTEM:
        authorize(actor, "annual.settle")
    window = year_window(year)
    if (now or utcnow()) < window.cutoff:
        raise YearNotEnded(f"{year} 年度尚未结束，不能结算")
    settlement = write_settlement(actor, window)
    audit("annual.settle", actor=None if actor is SYSTEM else actor, target=settlement,
          detail={"year": year, "policy_version": settlement.policy_version, "checksum": settlement.checksum,
                  "members": settlement.member_count, "organizations": settlement.organization_count})
    db.session.commit()
    return settlement


def write_settlement(actor: Principal | _System, window: YearWindow) -> AnnualSettlement:
    """Compute and insert every statement, then the settlement row with their checksum. Flushes only."""
    if settlement_of(window.year) is not None:
        raise AlreadySettled(f"{window.year} 年度已结算，结算结果不可更改；如需更正请使用积分调整")
    policy, settled_at = policy_at_cutoff(window), utcnow()
    digest, counts = hashlib.sha256(), {}
    try:
        for subject_type in (SubjectType.MEMBER, SubjectType.ORGANIZATION):
            counts[subject_type] = _insert_chunks(recompute_statements(window, policy, subject_type, settled_at),
                                                  digest)
        settlement = AnnualSettlement(
            year=window.year, cutoff_at=window.cutoff, policy_version=policy.version,
            settled_by_id=actor.user_id, settled_at=settled_at, checksum=digest.hexdigest(),
            member_count=counts[SubjectType.MEMBER], organization_count=counts[SubjectType.ORGANIZATION])
        db.session.add(settlement)
        db.session.flush()
    except IntegrityError:  # another settlement of this year committed first
        db.session.rollback()
        raise AlreadySettled() from None
    return settlement


def policy_at_cutoff(window: YearWindow) -> Policy:
    return policy_in_force(window.cutoff - ONE_TICK)


def _insert_chunks(rows: Iterable[dict], digest) -> int:
    count, chunk = 0, []
    for row in rows:
        digest.update(canonical_line(row))
        chunk.append(row)
        if len(chunk) == CHUNK:
            count += _insert(chunk)
            chunk = []
    return count + (_insert(chunk) if chunk else 0)


def _insert(chunk: list[dict]) -> int:
    """One chunk: PostgreSQL COPY (a city is half a million rows), a plain executemany elsewhere."""
    connection = db.session.connection()
    if connection.dialect.name != "postgresql":
        db.session.execute(sa.insert(AnnualStatement), chunk)
        return len(chunk)
    columns = ", ".join(ROW_FIELDS)
    cursor = driver_cursor(connection)
    with cursor, cursor.copy(f"COPY {AnnualStatement.__tablename__} ({columns}) FROM STDIN") as copy:
        for row in chunk:
            copy.write_row([_copy_value(name, row[name]) for name in ROW_FIELDS])
    return len(chunk)


def _cents(value: Decimal) -> int:
    return int(value * 100)


def _json_text(value: list) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def _naive_utc(value: datetime | None):
    return None if value is None else value.astimezone(UTC).replace(tzinfo=None)


# What the column types would bind, per column: points as hundredths, JSON as text, instants as naive UTC.
_COPY_CONVERTERS = {"total": _cents, "hours": _cents, "by_item": _json_text, "grade_reasons": _json_text,
                    "reached_at": _naive_utc, "subject_type": str}


def _copy_value(name: str, value):
    convert = _COPY_CONVERTERS.get(name)
    return value if convert is None else convert(value)


def verify_settlement(year: int) -> dict:
    """Recompute the year from the ledger at its cutoff and compare with the stored checksum and rows."""
    settlement = require_settlement(year)
    window = year_window(year)
    policy = policy_in_force(window.cutoff - ONE_TICK)
    recomputed, stored = hashlib.sha256(), hashlib.sha256()
    for subject_type in (SubjectType.MEMBER, SubjectType.ORGANIZATION):
        for row in recompute_statements(window, policy, subject_type, settlement.settled_at):
            recomputed.update(canonical_line(row))
        for statement in stored_statements(year, subject_type):
            stored.update(canonical_line(statement_row(statement)))
    return {"year": year, "checksum": settlement.checksum, "recomputed": recomputed.hexdigest(),
            "stored_rows": stored.hexdigest(),
            "equal": settlement.checksum == recomputed.hexdigest() == stored.hexdigest()}


def settle_year_job(period: Period, _policy: Policy) -> dict:
    """The ``annual_settlement`` job: settle the year that ended, unless an admin already did."""
    window = year_window(int(period.key))
    if settlement_of(window.year) is not None:
        return {"skipped": "already_settled"}
    settlement = write_settlement(SYSTEM, window)
    return {"members": settlement.member_count, "organizations": settlement.organization_count,
            "checksum": settlement.checksum}


# ------------------------------------------------------------------------------------ statements


def recompute_statements(window: YearWindow, policy: Policy, subject_type: SubjectType,
                         settled_at: datetime) -> Iterator[dict]:
    """The statement rows of one subject type, ordered by subject id, from the ledger at the cutoff (and the stars
    as they stood when the year was settled)."""
    orgs = facts.organizations()
    members = facts.members_at_cutoff(window)
    service = facts.member_service(window)
    if subject_type == SubjectType.MEMBER:
        subjects = {member_id: _member_place(branch_id, community_id, orgs)
                    for member_id, (branch_id, community_id) in members.items()}
        activity = service
        stars = facts.stars_won(window, settled_at)
    else:
        scored = facts.scored_subject_ids(subject_type, window)
        subjects = {org.id: _org_place(org) for org in orgs.values()
                    if org.kind == OrgKind.DEPARTMENT or org.id in scored}
        activity = _department_service(members, service, orgs)
        stars = {}
    scores = facts.assessment_scores(subject_type, window)
    gradings = grade_year(
        (Standing(subject_id, *scores.get(subject_id, (0, None)), place["department_id"]
                  if subject_type == SubjectType.MEMBER else None) for subject_id, place in subjects.items()),
        _Facts(facts.veto_item_counts(subject_type, policy, window), facts.reported_subjects(subject_type, window)),
        policy.grades, group_ranks=subject_type == SubjectType.MEMBER,
        group_label="本部门人数" if subject_type == SubjectType.MEMBER else "参评组织数")
    names = {**SYSTEM_ITEM_NAMES, **{code: item.name for code, item in policy.items.items()}}
    breakdown = _by_subject(sorted(subjects), facts.item_breakdown(subject_type, window))
    for subject_id, items in breakdown:
        total, reached = scores.get(subject_id, (0, None))
        activities, hours = activity.get(subject_id, (0, 0))
        yield _row(window.year, subject_type, subject_id, subjects[subject_id], gradings[subject_id], total=total,
                   reached_at=reached, activities=activities, hours=hours, stars=stars.get(subject_id, 0),
                   by_item=[{"item_code": code, "name": names.get(code, code), "points": _points(cents),
                             "count": count} for _id, code, cents, count in items])


def _by_subject(subject_ids: list[int], rows: Iterator[tuple]) -> Iterator[tuple[int, list[tuple]]]:
    """Merge the sorted subject ids with the item rows (sorted by subject id) without holding the rows."""
    groups = groupby(rows, key=lambda row: row[0])
    current = next(groups, None)
    for subject_id in subject_ids:
        while current is not None and current[0] < subject_id:  # entries of a subject not settled
            current = next(groups, None)
        if current is not None and current[0] == subject_id:
            yield subject_id, list(current[1])
            current = next(groups, None)
        else:
            yield subject_id, []


class _Facts(Mapping):
    """Veto facts per subject, built on demand so that half a million subjects need no dict each."""

    def __init__(self, counts: dict[int, dict[str, int]], reported: set[int]) -> None:
        self.counts, self.reported = counts, reported

    def __getitem__(self, subject_id: int) -> dict[str, int]:
        return {**self.counts.get(subject_id, {}), "not_reported": 0 if subject_id in self.reported else 1}

    def get(self, subject_id, default=None):
        return self[subject_id]

    def __iter__(self):
        return iter(self.counts)

    def __len__(self) -> int:
        return len(self.counts)


def _member_place(branch_id: int, community_id: int, orgs: dict) -> dict:
    branch = orgs.get(branch_id)
    return {"department_id": branch.department_id if branch else None, "branch_id": branch_id,
            "community_id": community_id, "org_path": branch.path if branch else ""}


def _org_place(org) -> dict:
    return {"department_id": org.department_id, "branch_id": None, "community_id": None, "org_path": org.path}


def _department_service(members: dict, service: dict, orgs: dict) -> dict[int, tuple[int, int]]:
    """An organization's activities and hours: those of the members in its subtree at the cutoff."""
    totals: dict[int, list[int]] = {}
    for member_id, (branch_id, _community) in members.items():
        branch = orgs.get(branch_id)
        if branch is None or member_id not in service:
            continue
        row = totals.setdefault(branch.department_id, [0, 0])
        row[0] += service[member_id][0]
        row[1] += service[member_id][1]
    return {org_id: (count, hours) for org_id, (count, hours) in totals.items()}


def _points(cents: int) -> str:
    return f"{Decimal(cents) / 100:.2f}"


def _row(year: int, subject_type: SubjectType, subject_id: int, place: dict, grading: Grading, *, total: int,
         reached_at, activities: int, hours: int, stars: int, by_item: list[dict]) -> dict:
    return {
        "year": year, "subject_type": subject_type, "subject_id": subject_id, "position": grading.position,
        **place, "total": Decimal(total) / 100, "by_item": by_item, "activities": activities,
        "hours": Decimal(hours) / 100, "reached_at": reached_at, "rank_city": grading.rank_city,
        "rank_group": grading.rank_group, "stars": stars, "grade_by_score": grading.grade_by_score,
        "grade": grading.grade, "grade_reasons": list(grading.reasons),
    }


ROW_FIELDS = ("year", "subject_type", "subject_id", "position", "department_id", "branch_id", "community_id",
              "org_path", "total", "by_item", "activities", "hours", "reached_at", "rank_city", "rank_group",
              "stars", "grade_by_score", "grade", "grade_reasons")


def statement_row(statement: AnnualStatement) -> dict:
    return {name: getattr(statement, name) for name in ROW_FIELDS}


def canonical_line(row: dict) -> bytes:
    """One statement as canonical JSON (sorted keys, points with two decimals, instants in UTC ISO)."""
    def encode(value):
        if isinstance(value, Decimal):
            return f"{value:.2f}"
        if isinstance(value, datetime):
            return value.isoformat()
        raise TypeError(type(value))

    plain = {name: str(row[name]) if name == "subject_type" else row[name] for name in ROW_FIELDS}
    return (json.dumps(plain, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=encode)
            + "\n").encode()


def stored_statements(year: int, subject_type: SubjectType) -> Iterator[AnnualStatement]:
    statement = (sa.select(AnnualStatement)
                 .where(AnnualStatement.year == year, AnnualStatement.subject_type == subject_type)
                 .order_by(AnnualStatement.subject_id))
    yield from db.session.scalars(statement.execution_options(yield_per=CHUNK))


# ------------------------------------------------------------------------------------ corrections


def corrections_after_settlement(settlement: AnnualSettlement, subject_type: SubjectType,
                                 subject_ids: Iterable[int]) -> dict[int, dict]:
    """Per subject, what changed in the ledger after the year was settled, with the audit reference:
    reversals (any time later) of entries credited in the year; adjustments naming a period of the year they
    correct (``corrects_period``: exactly, whenever credited); and adjustments naming no period, credited after
    the cutoff and before the next year's end."""
    ids = list(subject_ids)
    if not ids:
        return {}
    window = year_window(settlement.year)
    original = sa.orm.aliased(LedgerEntry)
    adjustment, period = LedgerEntry.kind == EntryKind.ADJUSTMENT, LedgerEntry.corrects_period
    of_year = sa.or_(period == str(settlement.year), period.startswith(f"{settlement.year}-"))
    rows = db.session.execute(
        sa.select(LedgerEntry).outerjoin(original, original.id == LedgerEntry.reverses_id)
        .where(LedgerEntry.subject_type == subject_type, LedgerEntry.subject_id.in_(ids),
               LedgerEntry.ledger == LedgerName.ASSESSMENT, LedgerEntry.credited_at >= settlement.cutoff_at,
               sa.or_(sa.and_(adjustment, of_year),
                      sa.and_(adjustment, period.is_(None), LedgerEntry.credited_at < window.next_cutoff),
                      sa.and_(LedgerEntry.kind == EntryKind.REVERSAL, original.credited_at >= window.start,
                              original.credited_at < window.cutoff)))
        .order_by(LedgerEntry.id)).scalars().all()
    audits = _audit_ids(rows)
    found: dict[int, dict] = {}
    for entry in rows:
        row = found.setdefault(entry.subject_id, {"points": Decimal("0.00"), "entries": []})
        row["points"] += entry.points
        row["entries"].append({"entry_id": entry.id, "kind": str(entry.kind), "points": entry.points,
                               "credited_at": entry.credited_at, "reason": entry.reason,
                               "corrects_period": entry.corrects_period, "audit_id": audits.get(entry.id)})
    return found


def _audit_ids(entries: list[LedgerEntry]) -> dict[int, int]:
    """ledger entry id → the audit row that wrote it (adjust: its own id; reverse: the reversed entry)."""
    if not entries:
        return {}
    target_of = {entry.id: (entry.reverses_id if entry.kind == EntryKind.REVERSAL else entry.id) for entry in entries}
    action_of = {entry.id: "ledger.reverse" if entry.kind == EntryKind.REVERSAL else "ledger.adjust"
                 for entry in entries}
    rows = db.session.execute(
        sa.select(AuditEntry.id, AuditEntry.action, AuditEntry.target_id)
        .where(AuditEntry.action.in_(("ledger.adjust", "ledger.reverse")),
               AuditEntry.target_id.in_({str(target) for target in target_of.values()})))
    by_target = {(action, target_id): audit_id for audit_id, action, target_id in rows}
    return {entry_id: by_target.get((action_of[entry_id], str(target))) for entry_id, target in target_of.items()}

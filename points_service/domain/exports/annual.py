"""The one builder of annual score rows for HR: JSON pages, CSV, XLSX, the CLI and the annual job all
read ``annual_rows`` and (for files) the one column tuple ``ANNUAL_COLUMNS``.

Rows come from the frozen statements (never the live ledger), walked by keyset on the city-wide
position in chunks, with names and the masked phone joined (never the phone hash), plus the ledger
corrections made after the settlement. Every export is audited with who, year, subject, scope,
format and row count.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.db import db
from points_service.domain.access import Principal, authorize
from points_service.domain.annual.settlement import (
    SYSTEM,
    corrections_after_settlement,
    require_settlement,
    year_window,
)
from points_service.domain.audit import audit
from points_service.domain.errors import NotFound
from points_service.domain.periods import to_rfc3339
from points_service.domain.policy import policy_version
from points_service.models import AnnualSettlement, AnnualStatement, Member, Organization, Role, SubjectType

CHUNK = 2000
SUBJECT_NAMES = {SubjectType.MEMBER: "党员", SubjectType.ORGANIZATION: "部门党组织"}
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class AnnualRow:
    year: int
    subject_type: SubjectType
    subject_id: int
    name: str
    code: str  # the organization's code for organizations; "" for members
    phone_masked: str  # members only, e.g. 139****0001; "" for organizations
    department: dict | None  # {"id", "name"}
    branch: dict | None
    total: Decimal
    by_item: list
    activities: int
    hours: Decimal
    rank_city: int
    rank_group: int | None
    stars: int
    grade_by_score: str
    grade: str
    grade_reasons: list
    corrections: dict = field(default_factory=lambda: {"points": Decimal("0.00"), "entries": []})


@dataclass(frozen=True)
class AnnualExport:
    """What one export reads: a settled year, a subject type and the caller's scope (None = everything)."""

    settlement: AnnualSettlement
    subject: SubjectType
    paths: tuple[str, ...] | None
    organization: Organization | None
    total: int


# ------------------------------------------------------------------------------------ scope and audit


def open_export(actor: Principal, year: int, subject: SubjectType, organization_id: int | None = None) -> AnnualExport:
    """Authorize and resolve the scope: a named organization must be within the caller's HR scope (403);
    without one, HR sees its own subtrees and admins everything."""
    year_window(year)
    organization = None
    if organization_id is not None:
        organization = db.session.get(Organization, organization_id)
        if organization is None:
            raise NotFound("组织不存在")
        authorize(actor, "hr.export", organization)
        paths = (organization.path,)
    else:
        authorize(actor, "hr.export_own_scope")
        paths = None if actor.is_admin else tuple(g.scope_path for g in actor.scopes(Role.HR, Role.ORG_ADMIN))
    return _export(year, subject, paths, organization)


def system_export(year: int, subject: SubjectType) -> AnnualExport:
    """The whole city, for the annual job and the operator's CLI (no user: the audit row names the channel)."""
    return _export(year, subject, None, None)


def _export(year: int, subject: SubjectType, paths, organization) -> AnnualExport:
    settlement = require_settlement(year)
    total = db.session.scalar(sa.select(sa.func.count()).select_from(AnnualStatement)
                              .where(*_selection(year, subject, paths)))
    return AnnualExport(settlement, subject, paths, organization, total)


def record_export(actor, export: AnnualExport, fmt: str, rows: int, *, via: str = "api", page: int | None = None,
                  commit: bool = True) -> None:
    scope = "all" if export.paths is None else (
        f"organization:{export.organization.id}" if export.organization else "hr_scope")
    detail = {"year": export.settlement.year, "subject": str(export.subject), "scope": scope, "format": fmt,
              "rows": rows, "via": via}
    if page is not None:
        detail["page"] = page
    audit("annual.export", actor=None if actor is SYSTEM else actor, target_type="annual_settlements",
          target_id=export.settlement.id, detail=detail)
    if commit:
        db.session.commit()


# ------------------------------------------------------------------------------------ rows


def _selection(year: int, subject: SubjectType, paths) -> list:
    clauses = [AnnualStatement.year == year, AnnualStatement.subject_type == subject]
    if paths is not None:
        clauses.append(sa.or_(*(AnnualStatement.org_path.startswith(path) for path in paths)) if paths else sa.false())
    return clauses


def _statement(export: AnnualExport) -> sa.Select:
    department, branch = aliased(Organization), aliased(Organization)
    own = Member if export.subject == SubjectType.MEMBER else aliased(Organization)
    columns = ([own.name, sa.literal("").label("code"), own.phone_masked] if own is Member
               else [own.name, own.code.label("code"), sa.literal("").label("phone_masked")])
    return (sa.select(*(getattr(AnnualStatement, name) for name in STATEMENT_FIELDS), *columns,
                      department.name.label("department_name"), branch.name.label("branch_name"))
            .outerjoin(own, own.id == AnnualStatement.subject_id)
            .outerjoin(department, department.id == AnnualStatement.department_id)
            .outerjoin(branch, branch.id == AnnualStatement.branch_id)
            .where(*_selection(export.settlement.year, export.subject, export.paths)))


STATEMENT_FIELDS = ("position", "year", "subject_type", "subject_id", "department_id", "branch_id", "total",
                    "by_item", "activities", "hours", "rank_city", "rank_group", "stars", "grade_by_score", "grade",
                    "grade_reasons")


def annual_rows(export: AnnualExport, *, page: int | None = None, page_size: int = 20) -> Iterator[AnnualRow]:
    """The rows in ranking order: one page (JSON), or all of them by keyset in chunks (files)."""
    statement = _statement(export).order_by(AnnualStatement.position)
    if page is not None:
        yield from _shape(export, db.session.execute(statement.limit(page_size).offset((page - 1) * page_size)).all())
        return
    after = 0
    while True:
        chunk = db.session.execute(statement.where(AnnualStatement.position > after).limit(CHUNK)).all()
        if not chunk:
            return
        yield from _shape(export, chunk)
        after = chunk[-1].position


def _shape(export: AnnualExport, chunk: list) -> Iterator[AnnualRow]:
    corrections = corrections_after_settlement(export.settlement, export.subject, [row.subject_id for row in chunk])
    for row in chunk:
        yield AnnualRow(
            year=row.year, subject_type=row.subject_type, subject_id=row.subject_id, name=row.name or "",
            code=row.code or "", phone_masked=row.phone_masked or "",
            department=_ref(row.department_id, row.department_name), branch=_ref(row.branch_id, row.branch_name),
            total=row.total, by_item=row.by_item, activities=row.activities, hours=row.hours,
            rank_city=row.rank_city, rank_group=row.rank_group, stars=row.stars,
            grade_by_score=row.grade_by_score, grade=row.grade, grade_reasons=row.grade_reasons,
            **({"corrections": corrections[row.subject_id]} if row.subject_id in corrections else {}))


def _ref(node_id: int | None, name: str | None) -> dict | None:
    return None if node_id is None else {"id": node_id, "name": name or ""}


# ------------------------------------------------------------------------------------ columns and cells


@dataclass(frozen=True)
class Column:
    header: str  # Chinese, as HR reads it
    kind: str  # "text" | "int" | "points"
    value: Callable[[AnnualRow], object]
    width: int = 12


def _items_text(row: AnnualRow) -> str:
    return "；".join(f"{item['name']} {item['points']}（{item['count']}条）" for item in row.by_item)


def _corrections_text(row: AnnualRow) -> str:
    return "；".join(
        f"台账#{entry['entry_id']}（审计#{entry['audit_id'] or '-'}）{entry['points']:+.2f} "
        f"{to_rfc3339(entry['credited_at'])}{_corrected(entry)} {entry['reason']}"
        for entry in row.corrections["entries"])


def _corrected(entry: dict) -> str:
    return f" 更正{entry['corrects_period']}" if entry.get("corrects_period") else ""



ANNUAL_COLUMNS: tuple[Column, ...] = (
    Column("年度", "int", lambda r: r.year, 8),
    Column("对象类型", "text", lambda r: SUBJECT_NAMES[SubjectType(r.subject_type)], 10),
    Column("编号", "text", lambda r: str(r.subject_id), 10),  # an identifier: a text cell, never a number
    Column("姓名/名称", "text", lambda r: r.name, 16),
    Column("组织编码", "text", lambda r: r.code, 12),
    Column("手机号（脱敏）", "text", lambda r: r.phone_masked, 14),
    Column("部门党组织", "text", lambda r: r.department["name"] if r.department else "", 20),
    Column("党支部", "text", lambda r: r.branch["name"] if r.branch else "", 20),
    Column("年度积分", "points", lambda r: r.total),
    Column("活动次数", "int", lambda r: r.activities, 10),
    Column("服务时长（小时）", "points", lambda r: r.hours),
    Column("全市排名", "int", lambda r: r.rank_city, 10),
    Column("部门内排名", "int", lambda r: r.rank_group, 10),
    Column("业务之星（次）", "int", lambda r: r.stars, 10),
    Column("按分数等次", "text", lambda r: r.grade_by_score, 10),
    Column("评定等次", "text", lambda r: r.grade, 10),
    Column("等次说明", "text", lambda r: "；".join(reason["message"] for reason in r.grade_reasons), 30),
    Column("分项积分", "text", _items_text, 40),
    Column("结算后更正（分）", "points", lambda r: r.corrections["points"]),
    Column("更正记录", "text", _corrections_text, 40),
)
HEADERS = tuple(column.header for column in ANNUAL_COLUMNS)


def guard_text(text: str) -> str:
    """Formula-injection guard (OWASP CSV injection): text a spreadsheet would run gets a leading '."""
    return "'" + text if text.startswith(FORMULA_PREFIXES) else text


def to_cells(row: AnnualRow) -> list:
    """The row's cells in column order: text guarded, numbers left as numbers (Decimal/int), None empty."""
    cells = []
    for column in ANNUAL_COLUMNS:
        value = column.value(row)
        if column.kind == "text":
            value = guard_text("" if value is None else str(value))
        cells.append(value)
    return cells


def row_as_json(row: AnnualRow) -> dict:
    """The JSON item of one row (the API schema dumps it)."""
    return {
        "year": row.year, "subject_type": row.subject_type, "subject": {"id": row.subject_id, "name": row.name,
                                                                         "code": row.code or None},
        "phone_masked": row.phone_masked or None, "department": row.department, "branch": row.branch,
        "total": row.total, "by_item": [{**item, "points": Decimal(item["points"])} for item in row.by_item],
        "activities": row.activities, "hours": row.hours,
        "rank_city": row.rank_city, "rank_group": row.rank_group, "stars": row.stars,
        "grade_by_score": row.grade_by_score, "grade": row.grade, "grade_reasons": row.grade_reasons,
        "corrections_after_settlement": row.corrections,
    }



def json_page(actor: Principal, export: AnnualExport, page: int, page_size: int) -> dict:
    """One JSON page of the rows (the API's ``format=json``), audited like a file."""
    items = [row_as_json(row) for row in annual_rows(export, page=page, page_size=page_size)]
    record_export(actor, export, "json", len(items), page=page)
    return {"items": items, "page": page, "page_size": page_size, "total": export.total}


def grade_distribution(export: AnnualExport) -> list[tuple[str, int]]:
    """How many statements of the export's selection got each grade, in the settled policy's band order
    (best first; grades with no one count 0) — what the HR page charts beside the download."""
    settlement = export.settlement
    counts = dict(db.session.execute(
        sa.select(AnnualStatement.grade, sa.func.count())
        .where(*_selection(settlement.year, export.subject, export.paths))
        .group_by(AnnualStatement.grade)).all())
    bands = [band.name for band in policy_version(settlement.policy_version).grades.bands]
    return [(name, counts.pop(name, 0)) for name in bands] + sorted(counts.items())

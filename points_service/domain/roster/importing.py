"""Roster import (regions, organizations, members) for admins and HR: every row valid, or nothing written.

The file is read, every row validated and resolved against the database into a plan of steps, and only
a fully valid plan is applied, in one transaction: a bad row never leaves half a roster behind. A dry run
stops after planning. Re-importing updates by code (regions, organizations) or by phone hash (members);
a member whose branch, community or grid changes is transferred, so affiliation history is kept.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.exc import IntegrityError

from points_service.db import db
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.boards.maintain import bumps_deferred
from points_service.domain.errors import Conflict, ServiceError, ValidationFailed
from points_service.domain.ledger.credit import lock_subjects
from points_service.domain.roster.plans import (
    CREATED,
    SCHEDULED,
    UNCHANGED,
    UPDATED,
    Step,
    plan_members,
    plan_organizations,
    plan_regions,
)
from points_service.domain.roster.rows import KINDS, RowError, by_row, parse_sheet, read_table
from points_service.models import SubjectType

# Per upload: about 10 s of writing on SQLite (enroll_member flushes per member). The CLI has no cap.
MAX_ROWS = 5_000


class ImportInvalid(ServiceError):
    status, code, message = 422, "import_invalid", "文件中有错误，未导入任何数据"


@dataclass
class ImportReport:
    kind: str
    dry_run: bool
    created: int = 0
    updated: int = 0
    scheduled: int = 0  # members' deactivations dated after today, stored to be applied on their date
    unchanged: int = 0
    errors: list[RowError] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict:
        return {"kind": self.kind, "dry_run": self.dry_run, "created": self.created, "updated": self.updated,
                "scheduled": self.scheduled, "unchanged": self.unchanged,
                "errors": [error.as_dict() for error in self.errors]}


def import_roster(actor: Principal, kind: str, content: bytes, filename: str, *, phone_key: str,
                  dry_run: bool = False, max_rows: int | None = MAX_ROWS) -> ImportReport:
    """Validate a roster file and, unless ``dry_run``, write it whole; raises ImportInvalid with every
    row error otherwise. ``filename`` only chooses the format (.xlsx or .csv)."""
    if kind not in KINDS:
        raise ValidationFailed({"kind": [f"导入类型只能是 {'、'.join(KINDS)}"]})
    authorize(actor, "roster.import", kind)
    rows, errors = parse_sheet(kind, read_table(content, filename), max_rows)
    steps, plan_errors = _plan(kind, rows, actor, phone_key)
    report = _report(kind, dry_run, steps, by_row(errors + plan_errors))
    if not report.valid:
        _audit(actor, report, "invalid")
        db.session.commit()  # the audit row only: validation wrote nothing else
        raise ImportInvalid(f"文件中有 {len(report.errors)} 处错误，未导入任何数据", data=report.as_dict())
    try:
        if not dry_run:
            _apply(steps)
        _audit(actor, report, "ok")
        db.session.commit()
    except (IntegrityError, Conflict) as exc:
        # Someone wrote the same codes or phones, or changed a member's status, between our checks and our
        # writes: nothing is kept.
        db.session.rollback()
        raise Conflict("导入期间名册被其他操作修改，请重新导入", code="import_conflict") from exc
    return report


def _plan(kind: str, rows: list, actor: Principal, phone_key: str) -> tuple[list[Step], list[RowError]]:
    if kind == "regions":
        return plan_regions(rows)
    if kind == "organizations":
        return plan_organizations(rows)
    return plan_members(rows, actor, phone_key)


def _report(kind: str, dry_run: bool, steps: list[Step], errors: list[RowError]) -> ImportReport:
    outcomes = [step.outcome for step in steps]
    return ImportReport(kind, dry_run, created=outcomes.count(CREATED), updated=outcomes.count(UPDATED),
                        scheduled=outcomes.count(SCHEDULED), unchanged=outcomes.count(UNCHANGED), errors=errors)


def _apply(steps: list[Step]) -> None:
    # The members the file changes are locked first, by id (``lock_subjects``): in the file's order they would
    # be taken, with their board rows, against a batch approval's order, and the two could deadlock.
    lock_subjects((SubjectType.MEMBER, step.member_id) for step in steps if step.apply and step.member_id)
    # Each member or code appears once per file, so no step's query needs another step's pending rows and they
    # may run in any order; without autoflush, 5,000 transfers take seconds instead of a flush before every lookup.
    # The boards' organization rows, histograms and head counts are written once, summed over the steps
    # (bumps_deferred), after the 积分超市 items of the orders its deactivations cancel: in the order a deactivation
    # through the API takes them, so the two never deadlock.
    with db.session.no_autoflush, bumps_deferred():
        for step in steps:
            if step.apply is not None:
                step.apply()


def _audit(actor: Principal, report: ImportReport, result: str) -> None:
    detail = report.as_dict()
    detail["errors"] = len(report.errors)  # counts only: the rows themselves may carry personal data
    audit("roster.import", actor=actor, target_type="roster", target_id=report.kind, result=result,
          detail=detail)


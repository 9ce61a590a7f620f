"""What the annual settlement reads, each as ONE grouped query over the year (never a query per subject).

All windows are the year's [start, cutoff) in Asia/Shanghai by ``credited_at`` (the ledger's period rule),
so a statement always equals the year's PointTotal net and a recomputation from the ledger.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.db import cents, db
from points_service.domain.ledger.reading import unreversed_deductions
from points_service.domain.periods import Period, PeriodKind, parse_period
from points_service.domain.policy import Policy
from points_service.domain.reports.rates import confirmed_subjects
from points_service.models import (
    SCORING_KINDS,
    Affiliation,
    EntryKind,
    LedgerEntry,
    LedgerName,
    Member,
    Organization,
    OrgKind,
    SourceType,
    SubjectType,
)
from points_service.models.selections import AwardType, AwardWithdrawal, StarCandidate, StarRun, StarRunStatus

# Which policy event scores each veto's fact, per subject type ("not_reported" comes from reports).
VETO_EVENTS = {
    SubjectType.MEMBER: {"unexcused_absences": "no_show", "falsified": "falsified"},
    SubjectType.ORGANIZATION: {"unexcused_absences": "org_meeting_absence", "falsified": "falsified"},
}


@dataclass(frozen=True)
class YearWindow:
    year: int
    start: datetime
    cutoff: datetime  # the year's end, exclusive
    next_cutoff: datetime  # the following year's end: the window in which adjustments count as corrections

    @classmethod
    def of(cls, year: int) -> YearWindow:
        period: Period = parse_period(str(year))
        assert period.kind is PeriodKind.YEAR
        return cls(year, period.start, period.end, period.next().end)


def _scoring(subject_type: SubjectType, window: YearWindow) -> list:
    """The year's scoring entries: credited in it, except adjustments correcting a period of another year
    (those belong to that year, as its corrections)."""
    period = LedgerEntry.corrects_period
    return [LedgerEntry.subject_type == subject_type, LedgerEntry.ledger == LedgerName.ASSESSMENT,
            LedgerEntry.kind.in_(SCORING_KINDS), LedgerEntry.credited_at >= window.start,
            LedgerEntry.credited_at < window.cutoff,
            sa.or_(period.is_(None), period == str(window.year), period.startswith(f"{window.year}-"))]


def assessment_scores(subject_type: SubjectType, window: YearWindow) -> dict[int, tuple[int, datetime]]:
    """subject id → (net of the year in cents, credited_at of its latest scoring entry)."""
    rows = db.session.execute(
        sa.select(LedgerEntry.subject_id, sa.func.sum(cents(LedgerEntry.points)), sa.func.max(LedgerEntry.credited_at))
        .where(*_scoring(subject_type, window)).group_by(LedgerEntry.subject_id))
    return {subject_id: (int(total or 0), _aware(reached)) for subject_id, total, reached in rows}


def _aware(value) -> datetime | None:
    """MAX() over a UTCDateTime comes back as the raw driver value on some engines."""
    if value is None or isinstance(value, datetime) and value.tzinfo is not None:
        return value
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC)


def item_breakdown(subject_type: SubjectType, window: YearWindow) -> Iterator[tuple[int, str, int, int]]:
    """(subject id, item code, cents, entries) ordered by subject id, streamed in chunks."""
    statement = (sa.select(LedgerEntry.subject_id, LedgerEntry.item_code, sa.func.sum(cents(LedgerEntry.points)),
                           sa.func.count())
                 .where(*_scoring(subject_type, window))
                 .group_by(LedgerEntry.subject_id, LedgerEntry.item_code)
                 .order_by(LedgerEntry.subject_id, LedgerEntry.item_code))
    for subject_id, item_code, total, count in db.session.execute(statement.execution_options(yield_per=5000)):
        yield subject_id, item_code, int(total or 0), count


def veto_item_counts(subject_type: SubjectType, policy: Policy, window: YearWindow) -> dict[int, dict[str, int]]:
    """subject id → {veto code: deductions of its item credited in the year and not reversed before the cutoff}.

    Each deduction is matched with its own reversal: a reversal credited in the year of a deduction from an
    earlier year corrects that year and cancels none of this year's."""
    codes = {}
    for veto_code, event in VETO_EVENTS[subject_type].items():
        item_code = policy.events.get(event)
        if item_code in policy.items and policy.items[item_code].subject == subject_type:
            codes[item_code] = veto_code
    if not codes:
        return {}
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for entry_type, subject_id, item_code, count in unreversed_deductions(codes, window.start, window.cutoff):
        if entry_type == subject_type:
            counts[subject_id][codes[item_code]] = count
    return counts


def reported_subjects(subject_type: SubjectType, window: YearWindow) -> set[int]:
    """Subjects with a report confirmed before the cutoff for a half up to the year's second half: the shared
    report rule (``reports.rates.confirmed_subjects``), as ``report_rate`` counts "reported as of the half"."""
    half_key = parse_period(f"{window.year}-H2").key
    return set(db.session.scalars(
        confirmed_subjects(subject_type, half_key, as_of=True, decided_before=window.cutoff).distinct()))


def member_service(window: YearWindow) -> dict[int, tuple[int, int]]:
    """member id → (activities, hours in cents): the check-in awards credited in the year and not reversed before
    the cutoff — the ledger, not the check-in rows, whose state may still change after the cutoff (a review
    approved in January credits its hours then), as the 业务之星 facts read them."""
    entry, reversal = aliased(LedgerEntry), aliased(LedgerEntry)
    rows = db.session.execute(
        sa.select(entry.subject_id, sa.func.count(), sa.func.sum(cents(entry.units)))
        .outerjoin(reversal, sa.and_(reversal.reverses_id == entry.id, reversal.credited_at < window.cutoff))
        .where(reversal.id.is_(None), entry.subject_type == SubjectType.MEMBER,
               entry.ledger == LedgerName.ASSESSMENT, entry.kind == EntryKind.AWARD,
               entry.source_type == SourceType.CHECKIN, entry.credited_at >= window.start,
               entry.credited_at < window.cutoff)
        .group_by(entry.subject_id))
    return {member_id: (count, int(hours or 0)) for member_id, count, hours in rows}


def members_at_cutoff(window: YearWindow) -> dict[int, tuple[int, int]]:
    """member id → (branch id, community id) at the cutoff, for members who belonged at the cutoff (an affiliation
    covering it: the dated membership of ``lifecycle.membership``, so a member deactivated or moved later still
    counts where he was), active members without any affiliation enrolled before the cutoff (rosters imported
    before affiliations were kept: placed by their branch and community), and members with scoring entries in the
    year, placed by their last affiliation begun before the cutoff. Nothing here depends on what happened to a
    member after the cutoff, so a recomputation gives the same members in the same places."""
    began = sa.and_(Affiliation.member_id == Member.id, Affiliation.valid_from < window.cutoff)
    covers = sa.or_(Affiliation.valid_to.is_(None), Affiliation.valid_to >= window.cutoff)
    never_affiliated = ~sa.exists().where(aliased(Affiliation).member_id == Member.id)
    # A correlated EXISTS probes ix_ledger_subject_time per remaining member; ``id IN (subquery)`` over the
    # year's ~1.4M scoring entries degraded to a re-scanned, non-hashed subplan at the default work_mem and did
    # not finish at city scale (docs/benchmarks.md).
    scored = sa.exists().where(LedgerEntry.subject_id == Member.id, *_scoring(SubjectType.MEMBER, window))
    rows = db.session.execute(
        sa.select(Member.id, sa.func.coalesce(Affiliation.branch_id, Member.branch_id),
                  sa.func.coalesce(Affiliation.community_id, Member.community_id))
        .outerjoin(Affiliation, began)
        .where(sa.or_(sa.and_(Affiliation.id.is_not(None), covers),
                      sa.and_(Member.is_active, Member.created_at < window.cutoff, never_affiliated), scored))
        .order_by(Member.id, Affiliation.valid_from.desc()))
    found: dict[int, tuple[int, int]] = {}
    for member_id, branch_id, community_id in rows:
        found.setdefault(member_id, (branch_id, community_id))
    return found


@dataclass(frozen=True)
class OrgNode:
    id: int
    kind: OrgKind
    path: str

    @property
    def department_id(self) -> int:
        return int(self.path.strip("/").split("/")[0])


def organizations() -> dict[int, OrgNode]:
    """Every organization (a city has a few thousand): enough to find each branch's department."""
    rows = db.session.execute(sa.select(Organization.id, Organization.kind, Organization.path))
    return {org_id: OrgNode(org_id, OrgKind(kind), path) for org_id, kind, path in rows}


def scored_subject_ids(subject_type: SubjectType, window: YearWindow) -> set[int]:
    return set(db.session.scalars(sa.select(LedgerEntry.subject_id).distinct().where(*_scoring(subject_type, window))))


def stars_won(window: YearWindow, as_of: datetime) -> dict[int, int]:
    """member id → 业务之星 won in the year as of ``as_of`` (the settlement's instant): winners of the year's
    quarterly runs finalized by then (a run in publicity may still change, so it does not count yet), except those
    withdrawn by then — so a star finalized or withdrawn after the settlement leaves its recomputation as it was."""
    withdrawn = sa.select(AwardWithdrawal.award_id).where(AwardWithdrawal.award_type == AwardType.STAR,
                                                          AwardWithdrawal.withdrawn_at <= as_of)
    rows = db.session.execute(
        sa.select(StarCandidate.member_id, sa.func.count())
        .join(StarRun, StarRun.id == StarCandidate.run_id)
        .where(StarRun.status == StarRunStatus.FINALIZED, StarRun.finalized_at <= as_of,
               StarRun.period.like(f"{window.year}-Q%"), StarCandidate.winner.is_(True),
               StarCandidate.id.not_in(withdrawn))
        .group_by(StarCandidate.member_id))
    return {member_id: count for member_id, count in rows}

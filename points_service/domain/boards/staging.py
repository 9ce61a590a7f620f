"""Staging what the boards should hold (I7), set-wise: a handful of INSERT … SELECT statements (no Python loop
over subjects) write into temporary tables shaped like the live ones — ``reached_at`` from one pass over the
ledger, board rows from ``point_totals``, organization rollups, histograms and member counts from the staged
rows. ``domain/boards/audit.py`` compares them with the live tables or replaces the live rows by them.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import cents, db
from points_service.domain.boards.keys import BOARD_PERIOD_KINDS, STANDING_BOARD, bucket_sql
from points_service.domain.boards.placement import region_ancestry
from points_service.domain.periods import BadPeriod, parse_period
from points_service.models import (
    ALL_TIME,
    SCORING_KINDS,
    Affiliation,
    BoardBucket,
    BoardFine,
    BoardOrgMembers,
    BoardScore,
    LedgerEntry,
    LedgerName,
    Member,
    Organization,
    OrgKind,
    PointTotal,
    SubjectType,
)
from points_service.models.boards import SCOPE_COLUMNS

HISTOGRAM_COLUMNS = {"city": None, "district": "district_id", "street": "street_id", "department": "department_id"}
ASSESSMENT_PREFIX = f"{LedgerName.ASSESSMENT}:"
LIVE_TABLES = (BoardScore.__table__, BoardBucket.__table__, BoardFine.__table__, BoardOrgMembers.__table__)
# A total puts its subject on its board once an entry of non-zero points moved it (``keys.board_deltas``): not one
# holding only zero-point entries, nor an assessment period's holding only the yearly reset (``settled``).
ON_BOARD = {LedgerName.ASSESSMENT: sa.or_(PointTotal.earned != 0, PointTotal.deducted != 0),
            LedgerName.STANDING: sa.or_(PointTotal.earned != 0, PointTotal.deducted != 0, PointTotal.settled != 0)}


def _stage_table(live: sa.Table) -> sa.Table:
    """A temporary table with the live table's columns and types (no keys, no CHECKs)."""
    columns = []
    for column in live.columns:
        kind = column.type.copy()
        if isinstance(kind, sa.Enum):
            kind.create_constraint = False
        columns.append(sa.Column(column.name, kind))
    return sa.Table(f"stage_{live.name}", sa.MetaData(), *columns, prefixes=["TEMPORARY"])


STAGE = {live.name: _stage_table(live) for live in LIVE_TABLES}
SCORES, BUCKETS, FINE, ORG_MEMBERS = (STAGE[t.name] for t in LIVE_TABLES)
REACHED = sa.Table("stage_reached", sa.MetaData(), sa.Column("subject_type", sa.String(16)),
                   sa.Column("subject_id", sa.Integer), sa.Column("board", sa.String(24)),
                   sa.Column("at", BoardScore.__table__.c.reached_at.type), prefixes=["TEMPORARY"])
MONTHS = sa.Table("stage_months", sa.MetaData(), sa.Column("subject_type", sa.String(16)),
                  sa.Column("subject_id", sa.Integer), sa.Column("month", sa.String(7)),
                  sa.Column("at", LedgerEntry.__table__.c.credited_at.type),
                  sa.Column("standing_at", LedgerEntry.__table__.c.credited_at.type), prefixes=["TEMPORARY"])
WORK_TABLES = (MONTHS, REACHED, *STAGE.values())


def stage(now: datetime) -> int:
    """Write the expected boards into the stage tables; returns the number of staged board rows."""
    db.session.flush()
    connection = db.session.connection()
    drop_work_tables()
    for table in WORK_TABLES:
        table.create(connection)
    if is_postgresql():
        db.session.execute(sa.text("SET LOCAL work_mem = '512MB'"))  # hash joins and aggregates over the totals
    _stage_reached_at()
    regions, orgs = _region_values(), _org_values()
    _insert_member_rows(_period_ends(now), regions, orgs)
    _insert_organization_rows(orgs)
    _insert_histograms()
    _insert_member_counts(orgs)
    return db.session.scalar(sa.select(sa.func.count()).select_from(SCORES))


def drop_work_tables() -> None:
    for table in WORK_TABLES:
        db.session.execute(sa.text(f"DROP TABLE IF EXISTS {table.name}"))


def analyze(table: sa.Table) -> None:
    """Fresh statistics for the planner: the staged tables are joined right after they are filled."""
    if is_postgresql():
        db.session.execute(sa.text(f"ANALYZE {table.name}"))


def _values(name: str, columns: list[str], rows: list[tuple]) -> sa.CTE:
    """Integer rows as a CTE. PostgreSQL types a VALUES column holding only NULLs as text (an empty city, or no
    organization paired with a community), so every column is cast; no rows at all become one that matches
    nothing."""
    rows = rows or [tuple([-1] * len(columns))]
    raw = sa.values(*(sa.column(c, sa.Integer) for c in columns), name=f"{name}_raw",
                    literal_binds=True).data(rows).cte(f"{name}_raw")
    return sa.select(*(sa.cast(raw.c[c], sa.Integer).label(c) for c in columns)).cte(name)


def _period_ends(now: datetime) -> sa.CTE:
    """(period, ends_at, closed) for every assessment period with totals; open periods use current scopes."""
    keys = db.session.scalars(sa.select(PointTotal.period).distinct().where(
        PointTotal.ledger == LedgerName.ASSESSMENT, PointTotal.period != ALL_TIME)).all()
    rows = []
    for key in keys:
        try:
            period = parse_period(key)
        except BadPeriod:
            continue
        if period.kind in BOARD_PERIOD_KINDS:
            end = period.end
            rows.append((key, end.replace(tzinfo=None), end <= now))
    rows = rows or [("-", datetime(2000, 1, 1), False)]
    return sa.values(sa.column("period", sa.String), sa.column("ends_at", sa.DateTime),
                     sa.column("closed", sa.Boolean), name="ends", literal_binds=True).data(rows).cte("ends")


def _region_values() -> sa.CTE:
    rows = [(rid, a.get("district"), a.get("street")) for rid, a in region_ancestry().items()]
    return _values("rg", ["region_id", "district_id", "street_id"], rows)


def _org_values() -> sa.CTE:
    """(org, department, branch, paired community, its district, its street) for every organization."""
    ancestry = region_ancestry()
    orgs = db.session.execute(sa.select(Organization.id, Organization.kind, Organization.path,
                                        Organization.paired_community_id)).all()
    paired = {org_id: community for org_id, _, _, community in orgs}
    rows = []
    for org_id, kind, path, community in orgs:
        department = int(path.strip("/").split("/")[0]) if path.strip("/") else org_id
        community = community or paired.get(department)
        where = ancestry.get(community, {})
        rows.append((org_id, department, org_id if kind == OrgKind.BRANCH else None, community,
                     where.get("district"), where.get("street")))
    return _values("og", ["org_id", "department_id", "branch_id", "community_id", "district_id", "street_id"], rows)


def _insert_member_rows(ends: sa.CTE, regions: sa.CTE, orgs: sa.CTE) -> None:
    net = cents(PointTotal.earned) + cents(PointTotal.deducted)
    standing = net + cents(PointTotal.settled)
    assessment = _member_select(sa.literal(ASSESSMENT_PREFIX) + PointTotal.period, net, ends, regions, orgs).where(
        PointTotal.ledger == LedgerName.ASSESSMENT, ON_BOARD[LedgerName.ASSESSMENT])
    standing_rows = _member_select(sa.literal(STANDING_BOARD), standing, None, regions, orgs).where(
        PointTotal.ledger == LedgerName.STANDING, PointTotal.period == ALL_TIME, ON_BOARD[LedgerName.STANDING])
    for select in (assessment, standing_rows):
        db.session.execute(sa.insert(SCORES).from_select(_scores_columns(), _with_reached_at(select)))
    analyze(SCORES)


def _scores_columns() -> list[str]:
    return ["board", "subject_type", "subject_id", "score", "member_points", "participants", *SCOPE_COLUMNS,
            "reached_at"]


def _with_reached_at(select: sa.Select) -> sa.Select:
    """Adds ``reached_at`` by joining the staged latest moves on (board, subject): no UPDATE afterwards."""
    rows = select.subquery("rows")
    return sa.select(*rows.c, REACHED.c.at).select_from(rows.outerjoin(REACHED, sa.and_(
        REACHED.c.board == rows.c.board, REACHED.c.subject_type == rows.c.subject_type,
        REACHED.c.subject_id == rows.c.subject_id)))


def _member_select(board, score, ends: sa.CTE | None, regions: sa.CTE, orgs: sa.CTE) -> sa.Select:
    """Member rows: scopes of the affiliation in force at a closed period's end, else the member's current."""
    statement = sa.select(PointTotal.subject_id).join(Member, Member.id == PointTotal.subject_id)
    if ends is not None:
        # Literal VALUES hold text: PostgreSQL wants it cast; SQLite compares the ISO text as it is stored.
        ends_at = sa.cast(ends.c.ends_at, sa.DateTime) if is_postgresql() else ends.c.ends_at
        statement = statement.join(ends, ends.c.period == PointTotal.period).outerjoin(Affiliation, sa.and_(
            ends.c.closed, Affiliation.member_id == PointTotal.subject_id, Affiliation.valid_from < ends_at,
            sa.or_(Affiliation.valid_to.is_(None), Affiliation.valid_to >= ends_at)))
        then = sa.and_(Affiliation.id.is_not(None))

        def pick(column: str):
            return sa.case((then, getattr(Affiliation, column)), else_=getattr(Member, column))
    else:
        def pick(column: str):
            return getattr(Member, column)
    community, branch = pick("community_id"), pick("branch_id")
    # A deactivated member is off the standing board and the boards of periods ending after his deactivation.
    gone = Member.inactive_since.is_not(None)
    statement = statement.where(sa.not_(gone) if ends is None else sa.or_(sa.not_(gone),
                                                                          ends_at <= Member.inactive_since))
    statement = statement.outerjoin(regions, regions.c.region_id == community).outerjoin(
        orgs, orgs.c.org_id == branch)
    return statement.with_only_columns(
        board.label("board"), sa.literal(SubjectType.MEMBER.value).label("subject_type"),
        PointTotal.subject_id.label("subject_id"), score.label("score"), sa.literal(0).label("member_points"),
        sa.literal(0).label("participants"), regions.c.district_id.label("district_id"),
        regions.c.street_id.label("street_id"), community.label("community_id"), pick("grid_id").label("grid_id"),
        branch.label("branch_id"), orgs.c.department_id.label("department_id"),
    ).where(PointTotal.subject_type == SubjectType.MEMBER)


def _insert_organization_rows(orgs: sa.CTE) -> None:
    """Own points from the totals plus members' rollups by branch and by department, one row per (board, org)."""
    net = cents(PointTotal.earned) + cents(PointTotal.deducted)
    own = sa.select(
        sa.case((PointTotal.ledger == LedgerName.STANDING, sa.literal(STANDING_BOARD)),
                else_=sa.literal(ASSESSMENT_PREFIX) + PointTotal.period).label("board"),
        PointTotal.subject_id.label("org_id"),
        sa.case((PointTotal.ledger == LedgerName.STANDING, net + cents(PointTotal.settled)), else_=net).label("score"),
        sa.literal(0).label("member_points"), sa.literal(0).label("participants"),
    ).where(PointTotal.subject_type == SubjectType.ORGANIZATION, sa.or_(
        sa.and_(PointTotal.ledger == LedgerName.ASSESSMENT, PointTotal.period != ALL_TIME,
                ON_BOARD[LedgerName.ASSESSMENT]),
        sa.and_(PointTotal.ledger == LedgerName.STANDING, PointTotal.period == ALL_TIME,
                ON_BOARD[LedgerName.STANDING])))
    members = [
        sa.select(SCORES.c.board, SCORES.c[column].label("org_id"), sa.literal(0),
                  sa.func.sum(SCORES.c.score), sa.func.count().filter(SCORES.c.score > 0))
        .where(SCORES.c.subject_type == SubjectType.MEMBER, SCORES.c[column].is_not(None))
        .group_by(SCORES.c.board, SCORES.c[column])
        for column in ("branch_id", "department_id")
    ]
    parts = sa.union_all(own, *members).subquery("parts")
    combined = sa.select(parts.c.board, parts.c.org_id, sa.func.sum(parts.c.score).label("score"),
                         sa.func.sum(parts.c.member_points).label("member_points"),
                         sa.func.sum(parts.c.participants).label("participants"),
                         ).group_by(parts.c.board, parts.c.org_id).subquery("combined")
    select = sa.select(combined.c.board.label("board"),
                       sa.literal(SubjectType.ORGANIZATION.value).label("subject_type"),
                       combined.c.org_id.label("subject_id"), combined.c.score, combined.c.member_points,
                       combined.c.participants, orgs.c.district_id, orgs.c.street_id, orgs.c.community_id,
                       sa.cast(sa.null(), sa.Integer).label("grid_id"), orgs.c.branch_id, orgs.c.department_id,
                       ).join(orgs, orgs.c.org_id == combined.c.org_id)
    db.session.execute(sa.insert(SCORES).from_select(_scores_columns(), _with_reached_at(select)))


def is_postgresql() -> bool:
    return db.session.get_bind().dialect.name == "postgresql"


def _local_month(column) -> sa.ColumnElement:
    """The Asia/Shanghai month (``2026-09``) of a naive-UTC instant column (UTC+8, no DST since 1991)."""
    if is_postgresql():
        return sa.func.to_char(column + sa.text("interval '8 hours'"), "YYYY-MM")
    return sa.func.strftime("%Y-%m", column, "+8 hours")


def _period_of_month(month, kind) -> sa.ColumnElement:
    year = sa.func.substr(month, 1, 4, type_=sa.String)
    number = sa.cast(sa.func.substr(month, 6, 2, type_=sa.String), sa.Integer)
    if kind == "year":
        return year
    span, letter = (3, "Q") if kind == "quarter" else (6, "H")
    return year + sa.literal(f"-{letter}") + sa.cast((number + span - 1) // span, sa.String)


def _stage_reached_at() -> None:
    """``reached_at`` per (board, subject) = the latest credited_at of a non-zero entry that moved the score:
    one pass over the ledger to month maxima (assessment scoring / anything that moves the standing score),
    then quarters, halves and years from the months, and the standing board from all months."""
    moved = sa.and_(LedgerEntry.ledger == LedgerName.ASSESSMENT, LedgerEntry.kind.in_(SCORING_KINDS))
    standing = sa.or_(moved, LedgerEntry.ledger == LedgerName.STANDING)
    month = _local_month(LedgerEntry.credited_at).label("month")
    db.session.execute(sa.insert(MONTHS).from_select(
        ["subject_type", "subject_id", "month", "at", "standing_at"],
        sa.select(LedgerEntry.subject_type, LedgerEntry.subject_id, month,
                  sa.func.max(LedgerEntry.credited_at).filter(moved),
                  sa.func.max(LedgerEntry.credited_at).filter(standing))
        .where(LedgerEntry.points != 0, standing)
        .group_by(LedgerEntry.subject_type, LedgerEntry.subject_id, sa.literal_column("month"))))
    analyze(MONTHS)
    parts = [sa.select(MONTHS.c.subject_type, MONTHS.c.subject_id,
                       (sa.literal(ASSESSMENT_PREFIX) + MONTHS.c.month).label("board"), MONTHS.c.at)
             .where(MONTHS.c.at.is_not(None))]
    for kind in ("quarter", "half", "year"):
        # Grouped by the output name: PostgreSQL cannot match an expression with bound literals twice.
        key = (sa.literal(ASSESSMENT_PREFIX) + _period_of_month(MONTHS.c.month, kind)).label("board")
        parts.append(sa.select(MONTHS.c.subject_type, MONTHS.c.subject_id, key, sa.func.max(MONTHS.c.at))
                     .where(MONTHS.c.at.is_not(None))
                     .group_by(MONTHS.c.subject_type, MONTHS.c.subject_id, sa.literal_column("board")))
    parts.append(sa.select(MONTHS.c.subject_type, MONTHS.c.subject_id, sa.literal(STANDING_BOARD),
                           sa.func.max(MONTHS.c.standing_at)).where(MONTHS.c.standing_at.is_not(None))
                 .group_by(MONTHS.c.subject_type, MONTHS.c.subject_id))
    db.session.execute(sa.insert(REACHED).from_select(["subject_type", "subject_id", "board", "at"],
                                                      sa.union_all(*parts)))
    analyze(REACHED)


def _insert_histograms() -> None:
    for table, value in ((BUCKETS, bucket_sql(SCORES.c.score)), (FINE, SCORES.c.score)):
        for name, column in HISTOGRAM_COLUMNS.items():
            if column is None:
                key, present = sa.literal("city"), sa.true()
            else:
                scope_id = SCORES.c[column]
                key, present = sa.literal(f"{name}:").concat(sa.cast(scope_id, sa.String)), scope_id.is_not(None)
            select = (sa.select(SCORES.c.board, key.label("scope_key"), value.label("histogram_value"),
                                sa.func.count())
                      .where(SCORES.c.subject_type == SubjectType.MEMBER, present)
                      .group_by(SCORES.c.board, sa.literal_column("scope_key"),
                                sa.literal_column("histogram_value")))
            value_name = "bucket" if table is BUCKETS else "score"
            db.session.execute(sa.insert(table).from_select(["board", "scope_key", value_name, "n"], select))


def _insert_member_counts(orgs: sa.CTE) -> None:
    """Active members per branch and per department (the per-capita denominator)."""
    active = sa.select(Member.branch_id).where(Member.is_active).subquery("active")
    per_branch = sa.select(active.c.branch_id.label("org_id"))
    per_department = sa.select(orgs.c.department_id).join(active, active.c.branch_id == orgs.c.org_id).where(
        orgs.c.department_id != active.c.branch_id)
    both = sa.union_all(per_branch, per_department).subquery("both")
    select = sa.select(both.c.org_id, sa.func.count()).group_by(both.c.org_id)
    db.session.execute(sa.insert(ORG_MEMBERS).from_select(["organization_id", "members"], select))

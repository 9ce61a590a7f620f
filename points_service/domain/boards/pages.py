"""Reading boards: a page of a leaderboard (with the caller's own place), and a member's ranks in every scope.

Who may view which board (``leaderboard.view`` in ``domain/access/rules.py``): every signed-in user the whole-city
board; a member the boards of the regions he lives in (district, street, community, grid) and of the
organizations he belongs to (branch, department); community admins the regions they administer; secretaries,
org admins and HR the organizations they cover; admins every board.
Hidden members (``show_on_boards = false``) keep their rank; others see them as "党员（已隐藏）" with no id.
"""

from __future__ import annotations

import functools
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import core_execute, from_cents, utcnow
from points_service.domain.access import BoardNode, Principal, authorize
from points_service.domain.boards.keys import (
    CITY,
    HIDDEN_NAME,
    SCOPE_NAMES,
    STANDING,
    STANDING_BOARD,
    Scope,
    ScopeKind,
    board_key,
    competition_ranks,
    placement_of_row,
)
from points_service.domain.boards.rank import (
    MEASURE_LABELS,
    Measure,
    _with_members,
    board_rows,
    measure_expression,
    member_ranks,
    own_rank,
    rank_at,
    rank_of,
    scope_total,
    scope_total_sql,
    viewer_columns,
)
from points_service.domain.errors import Forbidden, ValidationFailed
from points_service.domain.periods import Period, PeriodKind, period_containing
from points_service.domain.structure import get_member
from points_service.models import (
    BoardOrgMembers,
    BoardScore,
    Member,
    Organization,
    OrgKind,
    Region,
    RegionLevel,
    SubjectType,
)

MAX_DEPTH = 1000  # nobody needs position 1,001 of a list; "me" gives one's own place anywhere
REGION_KINDS = {RegionLevel.DISTRICT: ScopeKind.DISTRICT, RegionLevel.STREET: ScopeKind.STREET,
                RegionLevel.COMMUNITY: ScopeKind.COMMUNITY, RegionLevel.GRID: ScopeKind.GRID}


NO_SUCH_NODE = {"region": "区划不存在", "community": "社区不存在", "organization": "组织不存在"}


def resolve_scope(text: str, principal: Principal | None = None) -> tuple[Scope, BoardNode | None]:
    """``all``, ``region:{id}``, ``community:{id}`` or ``organization:{id}`` → the scope and what authorizing
    it needs of its node (None for the whole city). The viewer's own places (grid, community, street,
    district, branch, department) come with his principal; any other node is looked up: the boards members
    open most need no lookup."""
    if text == "all":
        return CITY, None
    kind, _, raw_id = text.partition(":")
    # str.isdigit() also accepts '²' (int() refuses it) and '١٢' (int() reads 12): ASCII digits only
    node_id = int(raw_id) if raw_id.isascii() and raw_id.isdigit() and len(raw_id) < 12 else None
    if kind not in NO_SUCH_NODE or node_id is None:
        raise ValidationFailed({"scope": ["范围应为 all、region:{id}、community:{id} 或 organization:{id}"]})
    is_region = kind != "organization"
    node = principal.home(is_region, node_id) if principal is not None else None
    if node is None:
        node = core_execute(_node_statement(Region if is_region else Organization), {"id": node_id}).first()
    if node is None or (kind == "community" and node.kind != RegionLevel.COMMUNITY):
        raise ValidationFailed({"scope": [NO_SUCH_NODE[kind]]})
    return _scope_of_node(is_region, node.kind, node_id, node.path)


def _scope_of_node(is_region: bool, kind: str, node_id: int, path: str) -> tuple[Scope, BoardNode | None]:
    """A region (by its level) or an organization (by its kind) as a board scope; the city is the city board."""
    if is_region:
        level = RegionLevel(kind)
        return (CITY, None) if level == RegionLevel.CITY else \
            (Scope(REGION_KINDS[level], node_id), BoardNode(is_region=True, path=path))
    scope_kind = ScopeKind.DEPARTMENT if kind == OrgKind.DEPARTMENT else ScopeKind.BRANCH
    return Scope(scope_kind, node_id), BoardNode(is_region=False, path=path)


@functools.cache
def _node_statement(model: type[Region] | type[Organization]) -> sa.Select:
    """A region's level or an organization's kind (as ``kind``) and its path, by ``id``: built once."""
    kind = Region.level if model is Region else Organization.kind
    return sa.select(kind.label("kind"), model.path).where(model.id == sa.bindparam("id"))


def leaderboard(principal: Principal, subject_type: SubjectType, scope_text: str, period: Period | str,
                measure: Measure, page: int, page_size: int) -> dict:
    """One page of a board, with ``me`` (the caller's rank and points when he is on it)."""
    scope, node = resolve_scope(scope_text, principal)
    authorize(principal, "leaderboard.view", node)
    if subject_type == SubjectType.MEMBER and measure is not Measure.OWN:
        raise ValidationFailed({"measure": ["党员排行榜只按本人积分排名（人均、参与率仅用于组织）"]})
    if page * page_size > MAX_DEPTH:
        raise ValidationFailed({"page": [f"排行榜只提供前 {MAX_DEPTH} 名，本人名次见 me"]})
    board = board_key(period)
    viewer = principal.member_id if subject_type == SubjectType.MEMBER else None
    rows = _page_rows(board, subject_type, scope, measure, (page - 1) * page_size, page_size, viewer)
    items = _ranked(board, subject_type, scope, measure, rows, principal, (page - 1) * page_size)
    total = rows[0].total if rows else scope_total(board, subject_type, scope)
    me = _me_of_row(rows[0]) if rows and viewer is not None else _me(viewer, board, scope)
    return {"items": items, "total": total, "page": page, "page_size": page_size,
            "me": me, "board": board, "period": str(period),
            "scope": str(scope), "measure": measure, "label": MEASURE_LABELS[measure]
            if subject_type == SubjectType.ORGANIZATION else "党员本人积分"}


@functools.cache
def _page_statement(subject_type: SubjectType, kind: ScopeKind, measure: Measure, with_me: bool) -> sa.Select:
    """A page of one shape of board, with the scope's total (and the viewer's ``me_rank``/``me_points`` when
    ``with_me``) on every row, built once: bind parameters ``board``, ``scope_id``, ``histogram_key``,
    ``offset``, ``limit`` (and ``viewer_id``). A page is the most requested read: one round trip.

    OFFSET and LIMIT are written into the SQL text when it runs (``literal_execute``): with them as parameters
    PostgreSQL's generic plan assumes a tenth of the board, so a prepared page was planned afresh on every call
    (0.9 ms, more than running it); with them in the text the common pages reuse one plan."""
    board = sa.bindparam("board")
    value = measure_expression(measure).label("value")
    total = scope_total_sql(board, subject_type, kind, sa.bindparam("scope_id"),
                            sa.bindparam("histogram_key")).label("total")
    me = viewer_columns(kind) if with_me else ()
    own = (BoardScore.subject_id, BoardScore.score, BoardScore.reached_at, BoardScore.branch_id, value, total, *me)
    if subject_type == SubjectType.MEMBER:
        statement = (sa.select(*own, Member.name, Member.show_on_boards, Organization.name.label("org"))
                     .join_from(BoardScore, Member, Member.id == BoardScore.subject_id)
                     .outerjoin(Organization, Organization.id == BoardScore.branch_id))
    else:
        statement = _with_members(sa.select(*own, BoardScore.member_points, BoardScore.participants,
                                            Organization.name, Organization.kind, BoardOrgMembers.members),
                                  Measure.PER_CAPITA)
        statement = statement.join(Organization, Organization.id == BoardScore.subject_id)
    tie = ([BoardScore.reached_at.asc().nulls_last()] if measure is Measure.OWN else [])
    return (statement.where(*board_rows(board, subject_type, kind, sa.bindparam("scope_id")))
            .order_by(value.desc(), *tie, BoardScore.subject_id)
            .offset(sa.bindparam("offset", type_=sa.Integer, literal_execute=True))
            .limit(sa.bindparam("limit", type_=sa.Integer, literal_execute=True)))


def _page_rows(board: str, subject_type: SubjectType, scope: Scope, measure: Measure, offset: int, limit: int,
               viewer_id: int | None = None):
    """The page's rows; with a ``viewer_id`` (a member) each row also carries his ``me_rank``/``me_points``."""
    params = {"board": board, "scope_id": scope.id, "histogram_key": scope.histogram_key,
              "offset": offset, "limit": limit}
    if viewer_id is not None:
        params["viewer_id"] = viewer_id
    return core_execute(_page_statement(subject_type, scope.kind, measure, viewer_id is not None), params).all()


def _ranked(board: str, subject_type: SubjectType, scope: Scope, measure: Measure, rows, principal,
            offset: int) -> list[dict]:
    """Rows tied with the page's first row share its rank (which may start on an earlier page); any later
    row's rank is its position in the whole list, since every row before it scores strictly more."""
    if not rows:
        return []
    first = 1 if offset == 0 else rank_at(board, subject_type, scope, rows[0].value, measure)
    local = competition_ranks([row.value for row in rows])
    return [{"rank": first if rank == 1 else offset + rank, **_item(subject_type, measure, row, principal)}
            for row, rank in zip(rows, local, strict=True)]


def _item(subject_type: SubjectType, measure: Measure, row, principal: Principal) -> dict:
    if subject_type == SubjectType.MEMBER:
        visible = row.show_on_boards or row.subject_id == principal.member_id
        subject = ({"id": row.subject_id, "name": row.name, "hidden": False,
                    "organization": {"id": row.branch_id, "name": row.org} if row.branch_id else None}
                   if visible else {"id": None, "name": HIDDEN_NAME, "hidden": True, "organization": None})
        return {"subject": subject, "points": from_cents(row.score), "value": from_cents(row.value),
                "reached_at": row.reached_at}
    members = row.members or 0
    return {"subject": {"id": row.subject_id, "name": row.name, "kind": row.kind, "hidden": False},
            "points": from_cents(row.score), "value": measure_value(measure, row.value),
            "reached_at": row.reached_at,
            "members": {"count": members, "points": from_cents(row.member_points),
                        "participants": row.participants}}


def measure_value(measure: Measure, value: int) -> Decimal:
    """Points for own and per-capita; a share 0..1 (four places) for participation."""
    return (Decimal(value) / 10000).quantize(Decimal("0.0001")) if measure is Measure.PARTICIPATION \
        else from_cents(value)


def _me_of_row(row) -> dict | None:
    return None if row.me_rank is None else {"rank": row.me_rank, "points": from_cents(row.me_points)}


def _me(viewer_id: int | None, board: str, scope: Scope) -> dict | None:
    """The viewer's place when his page came back empty (past the last page, or an empty board)."""
    found = None if viewer_id is None else rank_of(board, SubjectType.MEMBER, viewer_id, scope)
    return None if found is None else {"rank": found[0], "points": from_cents(found[1])}


def my_rank(principal: Principal, period: Period | str, kind: ScopeKind) -> dict:
    """The caller's rank in his own scope of ``kind`` (his community, his branch, ...) with the scope's size:
    the mini-program's rank card, one statement. Members who hide from boards still see their own rank."""
    if principal.member_id is None:
        raise Forbidden("只有党员有个人名次", code="member_required")
    board = board_key(period)
    found = own_rank(board, principal.member_id, kind, with_total=True)
    scope = next((s for s in placement_of_row(found).scopes() if s.kind is kind), None) if found else None
    return {"period": str(period), "board": board, "kind": kind, "label": SCOPE_NAMES[kind],
            "scope": str(scope) if scope else None, "on_board": found is not None,
            "rank": found.rank if scope else None, "points": from_cents(found.score if found else 0),
            "total": found.total if scope else None}


def current_quarter(now: datetime | None = None) -> Period:
    return period_containing(now or utcnow(), PeriodKind.QUARTER)


def rank_summary(member_id: int, periods: list[Period | str]) -> list[dict]:
    """The member's points and rank in every scope he sits in, per period (one statement in all)."""
    return summaries_of_ranks(member_ranks(member_id, [board_key(period) for period in periods]), periods)


def summaries_of_ranks(found: dict[str, dict], periods: list[Period | str]) -> list[dict]:
    """``rank_summary`` of what ``member_ranks`` (or ``member_ranks_of_rows``) found."""
    summaries = []
    for period in periods:
        board = board_key(period)
        entry = found.get(board)
        summaries.append({
            "period": str(period), "board": board, "on_board": entry is not None,
            "points": from_cents(entry["points"]) if entry else Decimal(0),
            "reached_at": entry["reached_at"] if entry else None,
            "ranks": [{"scope": str(scope), "kind": scope.kind, "scope_id": scope.id,
                       "label": SCOPE_NAMES[scope.kind], "rank": rank} for scope, rank in entry["ranks"]]
            if entry else [],
        })
    return summaries


def home_periods(now: datetime | None = None) -> list[Period | str]:
    """The boards GET /me ranks the member on: this quarter's and the standing score's."""
    return [current_quarter(now), STANDING]


def my_ranks(member_id: int, now: datetime | None = None) -> dict:
    """For GET /me: ranks for the current quarter and for the standing score."""
    periods = home_periods(now)
    return my_ranks_of(member_ranks(member_id, [board_key(period) for period in periods]), periods)


def my_ranks_of(found: dict[str, dict], periods: list[Period | str]) -> dict:
    quarter, standing = summaries_of_ranks(found, periods)
    return {"quarter": quarter, "standing": standing}


def member_ranks_view(principal: Principal, member_id: int, period: Period | str | None) -> dict:
    member = get_member(principal, member_id)
    return rank_summary(member.id, [period or current_quarter()])[0]


__all__ = ["STANDING_BOARD", "home_periods", "leaderboard", "member_ranks_view", "my_rank", "my_ranks", "my_ranks_of",
           "rank_summary", "resolve_scope", "summaries_of_ranks"]

"""GET /me: who the caller is, what he may do, where he belongs and — for a member — the mini-program's home
screen (his figures and his rank in every scope), in two statements after the principal.

The home screen is the most frequent call of the mini-program, so its reads are statements built once and run
side by side: the account, its member with his current places, every affiliation with its places' names and the
policy version in force (one row per affiliation); then the home figures joined with the ranks on both boards
(one row per board). Each part keeps its own shaping function, shared with the views that read it alone.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from points_service.db import core_execute, db, utcnow
from points_service.domain.access import Principal
from points_service.domain.boards.keys import board_key
from points_service.domain.boards.pages import home_periods, my_ranks_of
from points_service.domain.boards.rank import member_ranks_of_rows, own_ranks_statement
from points_service.domain.ledger.reading import home_figures, home_query
from points_service.domain.policy import Policy, in_force_key_subquery, policy_of_key
from points_service.models import Affiliation, Member, Organization, Region, ScopeType, User

_PLACES = {"branch": Organization.__table__, "community": Region.__table__, "grid": Region.__table__}
_POLICY_KEY = ("version", "checksum", "effective_from")


def describe_me(principal: Principal) -> dict:
    now = utcnow()
    rows = core_execute(_profile_statement(), {"user_id": principal.user_id, "at": now}).all()
    member = _member_of(rows[0])
    return {
        "user": {"id": rows[0].user_id, "username": rows[0].username, "display_name": rows[0].display_name},
        "member": member,
        "roles": [
            {"role": grant.role, "scope_type": grant.scope_type, "scope_id": grant.scope_id,
             "scope_name": _scope_name(grant.scope_type, grant.scope_id)}
            for grant in principal.grants
        ],
        "affiliations": [_affiliation_of(row) for row in rows if row.valid_from is not None],
        **(_home_screen(member["id"], _policy_of(rows[0]), now) if member else {"points": None, "ranks": None}),
    }


def _home_screen(member_id: int, policy: Policy, now) -> dict:
    figures, params = home_query(member_id, policy, now)
    periods = home_periods(now)
    params["boards"] = [board_key(period) for period in periods]
    rows = core_execute(_home_screen_statement(figures), params).all()
    ranks = member_ranks_of_rows([row for row in rows if row.board is not None])
    return {"points": home_figures(rows[0], now), "ranks": my_ranks_of(ranks, periods)}


@functools.cache
def _home_screen_statement(figures: sa.Select) -> sa.Select:
    """The home figures (one row) with the member's rows on the boards and his ranks (none to two rows): LEFT
    JOIN ON TRUE keeps the figures when he is on no board yet."""
    figures_row, rank_rows = figures.subquery("figures"), own_ranks_statement().subquery("ranks")
    return sa.select(figures_row, rank_rows).select_from(figures_row.outerjoin(rank_rows, sa.true()))


@functools.cache
def _profile_statement() -> sa.Select:
    """One row per affiliation (one, NULLs, for a staff account), each with the in-force policy key."""
    users, members, affiliations = User.__table__, Member.__table__, Affiliation.__table__
    policy = in_force_key_subquery()
    joined = (users.outerjoin(members, members.c.id == users.c.member_id)
              .outerjoin(affiliations, affiliations.c.member_id == members.c.id)
              .outerjoin(policy, sa.true()))
    columns = [users.c.id.label("user_id"), users.c.username, users.c.display_name, members.c.id.label("member_id"),
               members.c.name, members.c.phone_masked, members.c.show_on_boards, affiliations.c.valid_from,
               affiliations.c.valid_to, *(policy.c[name].label(f"policy_{name}") for name in _POLICY_KEY)]
    for owner, prefix in ((members, "current"), (affiliations, "past")):
        for place, table in _PLACES.items():
            node = table.alias(f"{prefix}_{place}")
            joined = joined.outerjoin(node, node.c.id == owner.c[f"{place}_id"])
            columns += [node.c.id.label(f"{prefix}_{place}_id"), node.c.name.label(f"{prefix}_{place}_name")]
    return (sa.select(*columns).select_from(joined).where(users.c.id == sa.bindparam("user_id"))
            .order_by(affiliations.c.valid_from))


def _policy_of(row) -> Policy:
    key = tuple(row._mapping[f"policy_{name}"] for name in _POLICY_KEY)
    return policy_of_key(None if key[0] is None else key)


def _places(row, prefix: str) -> dict:
    return {place: None if row[f"{prefix}_{place}_id"] is None
            else {"id": row[f"{prefix}_{place}_id"], "name": row[f"{prefix}_{place}_name"]} for place in _PLACES}


def _member_of(row) -> dict | None:
    if row.member_id is None:
        return None
    return {"id": row.member_id, "name": row.name, "phone_masked": row.phone_masked,
            "show_on_boards": row.show_on_boards, **_places(row._mapping, "current")}


def _affiliation_of(row) -> dict:
    return {"valid_from": row.valid_from, "valid_to": row.valid_to, **_places(row._mapping, "past")}


def _scope_name(scope_type: ScopeType, scope_id: int | None) -> str:
    model = {ScopeType.ORGANIZATION: Organization, ScopeType.REGION: Region}.get(scope_type)
    if model is None:
        return "全市"
    node = db.session.get(model, scope_id) if scope_id is not None else None
    return node.name if node else "（范围已不存在）"

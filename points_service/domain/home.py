"""GET /me: who the caller is, what he may do, where he belongs and — for a member — the mini-program's home
screen (his figures and his rank in every scope), in one statement after the principal.

The home screen is the most frequent call of the mini-program, so it is one statement built once: the account,
its member with his current places, every affiliation with its places' names and the policy version in force,
joined with the home figures and the member's rows on the boards with their ranks (one row per affiliation and
board). Each part keeps its own shaping function, shared with the views that read it alone.

The figures depend on the policy in force (how long redeemable points stay valid) and, for what expired at last
month's end but the expiry job has not written yet, on the policies that decide last month's run
(``settlement.last_expiry_validity``); the same statement reads the three versions' keys. So it is built with
the validities this process last found and checks them against the versions it reads: when a version with
another validity has taken effect since, the home screen is read again with them (and again, should yet another
version be published between the two reads). A stale guess costs one statement, never a wrong figure.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from points_service.db import core_execute, db, utcnow
from points_service.domain.access import Principal
from points_service.domain.boards.keys import board_key
from points_service.domain.boards.pages import home_periods, my_ranks_of
from points_service.domain.boards.rank import board_params, member_ranks_of_rows, own_ranks_statement
from points_service.domain.errors import ServiceUnavailable
from points_service.domain.ledger.reading import home_figures, home_query
from points_service.domain.ledger.settlement import last_expiry_instants, last_expiry_validity
from points_service.domain.policy import Policy, in_force_key_subquery, policy_of_key
from points_service.models import Affiliation, Member, Organization, Region, ScopeType, User

_PLACES = {"branch": Organization.__table__, "community": Region.__table__, "grid": Region.__table__}
_POLICY_KEY = ("version", "checksum", "effective_from")
# The redeemable validity (months; None: forever) of the version this process last found in force, and the
# validity last month's expiry run applies (None: it expires nothing).
_validity_seen: dict[str, int | None] = {"months": None, "last_months": None}
# The versions in force at these instants (bind parameters), besides ``at``: last month's run's (its last
# instant, this month's start: ``settlement.last_expiry_instants``).
_LAST_EXPIRY_POLICIES = (("last_instant", "policy_last_instant"), ("month_start", "policy_month_start"))
# Each read after the second needs yet another version published in the milliseconds between two statements.
_READS_AT_MOST = 4


def describe_me(principal: Principal) -> dict:
    now = utcnow()
    if principal.member_id is None:
        rows = core_execute(_profile_statement(), {"user_id": principal.user_id, "at": now}).all()
        return {**_profile(rows, principal), "points": None, "ranks": None}
    rows = _member_rows(principal, now)
    first = rows[0]
    boards = [row for row in rows if row.affiliation_id == first.affiliation_id and row.board is not None]
    return {**_profile([row for row in rows if row.board == first.board], principal),
            "points": home_figures(first, now),
            "ranks": my_ranks_of(member_ranks_of_rows(boards), home_periods(now))}


def _member_rows(principal: Principal, now) -> list:
    """The member's statement, read again while the policies it reads have other validities than it was built
    with: a version published between two reads (effective up to the publish slack before it) changes them."""
    expected = (_validity_seen["months"], _validity_seen["last_months"])
    for _ in range(_READS_AT_MOST):
        rows = _read_member(principal, expected, now)
        found = _validities_of(rows[0])
        if found == expected:
            return rows
        _validity_seen.update(months=found[0], last_months=found[1])
        expected = found
    raise ServiceUnavailable("积分政策正在更新，请稍后再试")


def _read_member(principal: Principal, validities: tuple[int | None, int | None], now) -> list:
    figures, params = home_query(principal.member_id, *validities, now)
    boards = [board_key(period) for period in home_periods(now)]
    instants = dict(zip((name for name, _ in _LAST_EXPIRY_POLICIES), last_expiry_instants(now), strict=True))
    params.update(user_id=principal.user_id, at=now, **instants, **board_params(boards))
    return core_execute(_member_statement(figures, len(boards)), params).all()


def _validities_of(row) -> tuple[int | None, int | None]:
    """The validity in force now and the one last month's expiry run applies, from the versions ``row`` read."""
    last_run = (_policy_of(row, f"{name}_") for _, name in _LAST_EXPIRY_POLICIES)
    return _policy_of(row).redeemable_expiry.validity_months, last_expiry_validity(*last_run)


def _profile(rows: list, principal: Principal) -> dict:
    """The account, member, roles and affiliations of the profile rows (one per affiliation)."""
    first = rows[0]
    return {
        "user": {"id": first.user_id, "username": first.username, "display_name": first.display_name},
        "member": _member_of(first),
        "roles": [
            {"role": grant.role, "scope_type": grant.scope_type, "scope_id": grant.scope_id,
             "scope_name": _scope_name(grant.scope_type, grant.scope_id)}
            for grant in principal.grants
        ],
        "affiliations": [_affiliation_of(row) for row in rows if row.valid_from is not None],
    }


@functools.cache
def _member_statement(figures: sa.Select, boards: int) -> sa.Select:
    """The profile rows × the home figures (one row) with the member's rows on the boards and his ranks (none
    to ``boards`` rows). LEFT JOIN ON TRUE keeps the figures when he is on no board yet."""
    profile = _profile_select().subquery("profile")
    figures_row, rank_rows = figures.subquery("figures"), own_ranks_statement(boards).subquery("ranks")
    joined = profile.join(figures_row, sa.true()).outerjoin(rank_rows, sa.true())
    keys = []
    for at, name in _LAST_EXPIRY_POLICIES:
        policy = in_force_key_subquery(at, name)
        joined = joined.outerjoin(policy, sa.true())
        keys += [policy.c[column].label(f"{name}_{column}") for column in _POLICY_KEY]
    return (sa.select(profile, figures_row, *keys, rank_rows).select_from(joined)
            .order_by(profile.c.valid_from, profile.c.affiliation_id, rank_rows.c.board))


@functools.cache
def _profile_statement() -> sa.Select:
    """One row per affiliation (one, NULLs, for a staff account), oldest first."""
    profile = _profile_select().subquery("profile")
    return sa.select(profile).order_by(profile.c.valid_from, profile.c.affiliation_id)


def _profile_select() -> sa.Select:
    """The account, its member and current places, and one row per affiliation, each with the in-force policy
    key (bind parameters ``user_id``, ``at``)."""
    users, members, affiliations = User.__table__, Member.__table__, Affiliation.__table__
    policy = in_force_key_subquery()
    joined = (users.outerjoin(members, members.c.id == users.c.member_id)
              .outerjoin(affiliations, affiliations.c.member_id == members.c.id)
              .outerjoin(policy, sa.true()))
    columns = [users.c.id.label("user_id"), users.c.username, users.c.display_name, members.c.id.label("member_id"),
               members.c.name, members.c.phone_masked, members.c.show_on_boards,
               affiliations.c.id.label("affiliation_id"), affiliations.c.valid_from, affiliations.c.valid_to,
               *(policy.c[name].label(f"policy_{name}") for name in _POLICY_KEY)]
    for owner, prefix in ((members, "current"), (affiliations, "past")):
        for place, table in _PLACES.items():
            node = table.alias(f"{prefix}_{place}")
            joined = joined.outerjoin(node, node.c.id == owner.c[f"{place}_id"])
            columns += [node.c.id.label(f"{prefix}_{place}_id"), node.c.name.label(f"{prefix}_{place}_name")]
    return sa.select(*columns).select_from(joined).where(users.c.id == sa.bindparam("user_id"))


def _policy_of(row, prefix: str = "policy_") -> Policy:
    key = tuple(row._mapping[f"{prefix}{name}"] for name in _POLICY_KEY)
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

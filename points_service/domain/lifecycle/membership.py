"""Who belonged where at an instant: the dated membership that organization-level counts follow.

A member belongs to a branch and community at instant ``at`` when one of his affiliations covers it
(``valid_from < at <= valid_to``, or still open). A deactivation closes his affiliation at its effective instant
and a transfer closes the old one and opens the new one there, so a period's figures taken at its end keep the
members who belonged when it ended, whatever happened later (the boards apply the same rule: boards of periods
ending by a deactivation or transfer keep him where he was). An active member without any affiliation (rosters
loaded before affiliations were kept) belongs where the member row says; one whose affiliations do not cover
``at`` belonged nowhere then (enrolled after it, or deactivated then and reactivated since).
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.orm import aliased

from points_service.models import Affiliation, Member


def covering(at: datetime) -> sa.ColumnElement[bool]:
    """The join condition of a member's affiliation covering ``at``."""
    return sa.and_(Affiliation.member_id == Member.id, Affiliation.valid_from < at,
                   sa.or_(Affiliation.valid_to.is_(None), Affiliation.valid_to >= at))


def placed_at(at: datetime) -> sa.Select:
    """member_id, branch_id, community_id of every member belonging somewhere at ``at`` (one row each)."""
    return (sa.select(Member.id.label("member_id"),
                      sa.func.coalesce(Affiliation.branch_id, Member.branch_id).label("branch_id"),
                      sa.func.coalesce(Affiliation.community_id, Member.community_id).label("community_id"))
            .outerjoin(Affiliation, covering(at))
            .where(sa.or_(Affiliation.id.is_not(None), sa.and_(Member.is_active, ~_any_affiliation()))))


def _any_affiliation() -> sa.Exists:
    other = aliased(Affiliation)  # not the outer query's covering affiliation
    return sa.exists().where(other.member_id == Member.id)


def branch_at(affiliations, member, at: datetime) -> int | None:
    """``placed_at``'s rule for one member already in hand — his affiliations (rows with ``branch_id``,
    ``valid_from``, ``valid_to``) and his row (``branch_id``, ``is_active``): the branch he belonged to at ``at``,
    None if he belonged nowhere. For a few thousand members read by index, where ``placed_at`` would scan every
    member and affiliation."""
    for affiliation in affiliations:
        if affiliation.valid_from < at and (affiliation.valid_to is None or affiliation.valid_to >= at):
            return affiliation.branch_id
    return member.branch_id if member.is_active and not affiliations else None

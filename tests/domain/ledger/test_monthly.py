"""Points per month for the charts: an organization's members' sum follows who belonged at each month's end."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.monthly import organization_trend
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.lifecycle.transfer import transfer
from points_service.models import Affiliation, DeactivationReason
from tests.factories import make_world
from tests.factories.boards import entry
from tests.factories.ledger import local

NOW = local(2026, 11, 20, 10)


def members_sum(world, org: str) -> dict[str, int]:
    trend = organization_trend(principal_for(world["users"]["admin"]), world[org].id, now=NOW)
    (series,) = [s for s in trend["series"] if s["name"] == "本组织党员积分之和"]
    return {month: int(value) for month, value in zip(trend["months"], series["values"], strict=True) if value}


def test_a_closed_month_keeps_the_members_who_belonged_at_its_end_and_the_running_month_counts_todays(app):
    world = make_world()
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))  # all members since 2025
    for who, points in (("alice", 3), ("bob", 5)):
        entry(world[who], points, local(2026, 9, 15, 9))  # September: both in the finance department
        entry(world[who], points * 10, local(2026, 11, 3, 9))  # November, the running month
    db.session.commit()
    admin = principal_for(world["users"]["admin"])
    transfer(admin, world["alice"].id, branch_id=world["edu1"].id, effective_on=date(2026, 10, 1), now=NOW)
    deactivate_member(admin, world["bob"].id, DeactivationReason.RETIRED, "到龄退休", date(2026, 11, 10), now=NOW)

    # Alice left for education on 1 October, Bob retired on 10 November: September still counts both.
    assert members_sum(world, "finance") == {"2026-09": 8}
    assert members_sum(world, "education") == {"2026-11": 30}

from __future__ import annotations

import pytest

from points_service.db import db
from points_service.models import Role
from tests.factories import make_user, make_world


@pytest.fixture
def world(app):
    world = make_world()
    users = world["users"]
    users["south_admin"] = make_user((Role.COMMUNITY_ADMIN, world["south"].id), username="south_admin")
    users["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    users["fin2_secretary"] = make_user((Role.BRANCH_SECRETARY, world["fin2"].id), username="fin2_secretary")
    db.session.commit()
    return world

"""A deactivated member's console session ends at his next request, and he cannot sign in again."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.periods import LOCAL_TZ
from points_service.models import Affiliation, DeactivationReason, Role
from tests.console.helpers import sign_in
from tests.factories import make_user


def test_a_secretary_who_retires_is_signed_out_and_refused(client, world):
    make_user((Role.BRANCH_SECRETARY, world["edu1"].id), username="carol_secretary", member=world["carol"])
    db.session.execute(sa.update(Affiliation).values(valid_from=datetime(2025, 1, 1, tzinfo=LOCAL_TZ)))
    db.session.commit()
    assert sign_in(client, "carol_secretary").headers["Location"] == "/console/"
    assert client.get("/console/").status_code == 200
    deactivate_member(principal_for(world["users"]["admin"]), world["carol"].id, DeactivationReason.RETIRED,
                      "到龄退休", date(2026, 11, 1))
    assert client.get("/console/").status_code == 302
    again = sign_in(client, "carol_secretary")
    assert again.status_code == 403 and "党员身份已停用" in again.get_data(as_text=True)  # the form, with why

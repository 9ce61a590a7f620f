"""Concurrent withdrawals on PostgreSQL: of admins withdrawing one flag at once, one succeeds, the others get 409
``award_already_withdrawn``, and exactly one reversal is written."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.awards import withdrawals
from points_service.domain.errors import ServiceError
from points_service.models import AwardWithdrawal, EntryKind, LedgerEntry, Role, User
from tests.concurrency import hammer
from tests.domain.awards.test_withdrawals import flag, world  # noqa: F401 (fixtures)
from tests.factories import make_user

pytestmark = pytest.mark.postgres


def withdrawing(user_id: int, award_id: int):
    def call():
        try:
            withdrawals.withdraw_red_flag(principal_for(db.session.get(User, user_id)), award_id, "弄虚作假")
            return "ok"
        except ServiceError as error:
            return (error.status, error.code)
    return call


def test_admins_withdrawing_one_flag_at_once_write_one_withdrawal_and_one_reversal(app, world, flag):  # noqa: F811
    admins = [make_user((Role.ADMIN, None), username=f"admin_{n}").id for n in range(6)]
    db.session.commit()
    results = hammer(app, [withdrawing(admin, flag.id) for admin in admins])
    assert sorted(results, key=str) == [(409, "award_already_withdrawn")] * 5 + ["ok"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AwardWithdrawal)) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.kind == EntryKind.REVERSAL)) == 1

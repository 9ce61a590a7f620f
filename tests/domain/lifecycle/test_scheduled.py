"""Future-dated deactivations and transfers: stored as scheduled, nothing changes until their date, then the
``member_changes`` job applies them once (or marks one that can no longer apply as failed)."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.boards.audit import compare_boards
from points_service.domain.errors import InvalidTransition
from points_service.domain.lifecycle.due import apply_due_changes, cancel_scheduled
from points_service.domain.lifecycle.scheduled import ChangeAlreadyScheduled
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.periods import PeriodKind, period_containing
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import (
    Affiliation,
    BoardScore,
    DeactivationReason,
    MemberStatusChange,
    ScheduledChangeStatus,
    ScheduledMemberChange,
    SubjectType,
)
from tests.factories import make_world
from tests.factories.boards import entry
from tests.factories.ledger import install_policy, local

RETIRED = DeactivationReason.RETIRED


ASKED = local(2026, 11, 20, 10)  # when the admin schedules the changes below
LONG_AGO = local(2025, 1, 1)


@pytest.fixture
def world(app):
    install_policy()
    world = make_world()
    db.session.execute(sa.update(Affiliation).values(valid_from=LONG_AGO))
    entry(world["alice"], 3, local(2026, 11, 5, 9))
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def day_before(on: date):
    """The period the job settles when it fires just after the local midnight starting ``on``."""
    return period_containing(local(on.year, on.month, on.day, 0, 5), PeriodKind.DAY).previous()


def run_for(on: date, now: datetime | None = None) -> dict:
    result = apply_due_changes(day_before(on), now=now or local(on.year, on.month, on.day, 0, 5))
    db.session.commit()
    return result


def boards_of(member) -> set[str]:
    return set(db.session.scalars(sa.select(BoardScore.board).where(
        BoardScore.subject_type == SubjectType.MEMBER, BoardScore.subject_id == member.id)))


def test_a_future_dated_deactivation_is_stored_as_scheduled_and_changes_nothing_until_its_date(world):
    alice, before = world["alice"], boards_of(world["alice"])
    change = deactivate_member(world["admin"], alice.id, RETIRED, "到龄退休", date(2026, 12, 1), now=ASKED)
    assert isinstance(change, ScheduledMemberChange) and change.status == ScheduledChangeStatus.SCHEDULED
    assert run_for(date(2026, 11, 30)) == {"due": 0, "applied": 0, "failed": 0}
    db.session.refresh(alice)
    assert alice.is_active and boards_of(alice) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MemberStatusChange)) == 0


def test_on_its_date_the_job_deactivates_him_from_that_local_midnight_like_a_deactivation_made_then(world):
    alice = world["alice"]
    deactivate_member(world["admin"], alice.id, RETIRED, "到龄退休", date(2026, 12, 1), now=ASKED)
    assert run_for(date(2026, 12, 1)) == {"due": 1, "applied": 1, "failed": 0}
    db.session.refresh(alice)
    assert not alice.is_active and alice.inactive_since == local(2026, 12, 1)
    [recorded] = db.session.scalars(sa.select(MemberStatusChange)).all()
    assert (recorded.effective_on, recorded.reason, recorded.actor_id) == (
        date(2026, 12, 1), "到龄退休", world["users"]["admin"].id)
    assert "assessment:2026-11" in boards_of(alice) and "assessment:2026-Q4" not in boards_of(alice)
    assert compare_boards() == []
    assert run_for(date(2026, 12, 1)) == {"due": 0, "applied": 0, "failed": 0}  # applied changes are not picked again


def test_a_future_dated_transfer_moves_him_on_its_date(world):
    alice = world["alice"]
    change = transfer(world["admin"], alice.id, branch_id=world["fin2"].id, effective_on=date(2026, 12, 1), now=ASKED)
    assert change.status == ScheduledChangeStatus.SCHEDULED and alice.branch_id == world["fin1"].id
    run_for(date(2026, 12, 1))
    db.session.refresh(alice)
    assert alice.branch_id == world["fin2"].id
    current = db.session.scalar(sa.select(Affiliation).where(Affiliation.member_id == alice.id,
                                                             Affiliation.valid_to.is_(None)))
    assert current.valid_from == local(2026, 12, 1)
    assert compare_boards() == []


def test_one_change_waits_per_member_and_a_cancelled_one_never_applies(world):
    alice = world["alice"]
    change = deactivate_member(world["admin"], alice.id, RETIRED, "", date(2026, 12, 1), now=ASKED)
    with pytest.raises(ChangeAlreadyScheduled):
        transfer(world["admin"], alice.id, branch_id=world["fin2"].id, effective_on=date(2026, 12, 2), now=ASKED)
    cancel_scheduled(world["admin"], alice.id, change.id, "暂缓退休")
    with pytest.raises(InvalidTransition):
        cancel_scheduled(world["admin"], alice.id, change.id)
    assert run_for(date(2026, 12, 1))["due"] == 0
    db.session.refresh(alice)
    assert alice.is_active and change.status == ScheduledChangeStatus.CANCELLED and change.outcome == "暂缓退休"


def test_a_transfer_now_waits_for_the_scheduled_change_to_be_cancelled_so_it_never_applies_over_it(world):
    alice = world["alice"]
    change = transfer(world["admin"], alice.id, branch_id=world["fin2"].id, effective_on=date(2026, 12, 1),
                      now=ASKED)
    moving_now = {"branch_id": world["edu1"].id, "community_id": world["south"].id, "now": local(2026, 11, 21, 10)}
    with pytest.raises(ChangeAlreadyScheduled):
        transfer(world["admin"], alice.id, **moving_now)
    db.session.rollback()
    cancel_scheduled(world["admin"], alice.id, change.id, "改为即时转接")
    transfer(world["admin"], alice.id, **moving_now)
    assert run_for(date(2026, 12, 1))["due"] == 0
    db.session.refresh(alice)
    assert (alice.branch_id, alice.community_id) == (world["edu1"].id, world["south"].id)
    assert compare_boards() == []


def test_a_change_that_can_no_longer_apply_is_marked_failed_and_the_others_still_apply(world):
    alice, bob = world["alice"], world["bob"]
    moving = transfer(world["admin"], alice.id, branch_id=world["fin2"].id, effective_on=date(2026, 12, 1),
                      now=ASKED)
    leaving = deactivate_member(world["admin"], bob.id, RETIRED, "", date(2026, 12, 1), now=ASKED)
    deactivate_member(world["admin"], alice.id, RETIRED, "提前离开", date(2026, 11, 25), now=local(2026, 11, 25, 9))
    assert run_for(date(2026, 12, 1)) == {"due": 2, "applied": 1, "failed": 1}
    db.session.refresh(moving)
    db.session.refresh(leaving)
    assert moving.status == ScheduledChangeStatus.FAILED and "停用" in moving.outcome
    assert leaving.status == ScheduledChangeStatus.APPLIED and not bob.is_active


def test_the_scheduled_job_applies_a_day_once(world):
    deactivate_member(world["admin"], world["alice"].id, RETIRED, "", date(2026, 12, 1), now=ASKED)
    spec = JOBS_BY_ID["member_changes"]
    assert run_job(spec, day_before(date(2026, 12, 1))).result == {"due": 1, "applied": 1, "failed": 0}
    assert run_job(spec, day_before(date(2026, 12, 1))) is None


def test_the_job_writes_the_organizations_board_rows_and_head_counts_once_for_all_its_changes(world, statements):
    """A day of many changes between a few branches: each organization row is written once, summed, as by a roster
    import (once per change in one transaction would grow with the square of the changes on PostgreSQL)."""
    for member in (world["bob"], world["carol"]):
        entry(member, 2, local(2026, 11, 6, 9))
    for member in (world["alice"], world["bob"]):
        deactivate_member(world["admin"], member.id, RETIRED, "", date(2026, 12, 1), now=ASKED)
    transfer(world["admin"], world["carol"].id, branch_id=world["fin1"].id, effective_on=date(2026, 12, 1), now=ASKED)
    statements.clear()

    assert run_for(date(2026, 12, 1)) == {"due": 3, "applied": 3, "failed": 0}

    writes = [s for s in statements if s.lstrip().startswith("INSERT INTO")]
    assert len([s for s in writes if "board_org_members" in s]) == 1
    assert len([s for s in writes if "board_scores" in s and "member_points" in s]) == 1  # the rollups
    assert compare_boards() == []

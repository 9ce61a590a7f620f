"""Member lifecycle: deactivation and reactivation on the boards, sign-in, crediting, closing what waits; transfers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import load_principal, principal_for
from points_service.domain.accounts.signin import MemberDeactivated, login_with_wechat
from points_service.domain.activities.signups import sign_up
from points_service.domain.approvals.records import submit_member_record
from points_service.domain.boards.audit import compare_boards
from points_service.domain.errors import Forbidden, NotFound
from points_service.domain.ledger.credit import MemberInactive, credit
from points_service.domain.lifecycle.guard import MemberInactive as GuardedInactive
from points_service.domain.lifecycle.status import (
    AlreadyInactive,
    apply_deactivation,
    deactivate_member,
    reactivate_member,
)
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.periods import LOCAL_TZ
from points_service.domain.reports.reporting import submit_member_report
from points_service.integrations.wechat import WechatSession
from points_service.models import (
    Affiliation,
    ApprovalEvent,
    AuditEntry,
    BoardOrgMembers,
    BoardScore,
    DeactivationReason,
    LedgerEntry,
    Member,
    MemberStatusChange,
    Record,
    RecordStatus,
    Report,
    Signup,
    SubjectType,
)
from tests.factories import make_wechat_identity, make_world
from tests.factories.activities import make_activity
from tests.factories.boards import entry
from tests.factories.ledger import install_policy, local, member_fact
from tests.factories.records import self_report, submission

MEMBER = SubjectType.MEMBER
LONG_AGO = datetime(2025, 1, 1, tzinfo=LOCAL_TZ)


@pytest.fixture
def world(app):
    install_policy()
    world = make_world()
    # The roster was loaded long before the periods these tests score.
    db.session.execute(sa.update(Affiliation).values(valid_from=LONG_AGO))
    entry(world["alice"], 3, local(2026, 10, 20, 9))  # October (closed before November)
    entry(world["alice"], 4, local(2026, 11, 5, 9))  # November: after the deactivation below
    entry(world["bob"], 2, local(2026, 10, 21, 9))
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def boards_of(member) -> set[str]:
    return set(db.session.scalars(sa.select(BoardScore.board).where(
        BoardScore.subject_type == MEMBER, BoardScore.subject_id == member.id)))


def head_count(org) -> int:
    return db.session.scalar(sa.select(BoardOrgMembers.members).where(BoardOrgMembers.organization_id == org.id))


def leave(world, who="alice", on=date(2026, 11, 1), reason_code=DeactivationReason.RETIRED, reason="到龄退休"):
    return deactivate_member(world["admin"], world[who].id, reason_code, reason, on)


def test_a_deactivated_member_leaves_the_boards_ending_after_the_effective_date_and_keeps_the_earlier_ones(world):
    assert {"assessment:2026-10", "assessment:2026-11", "assessment:2026-Q4", "standing:all"} <= boards_of(
        world["alice"])
    leave(world)
    kept = boards_of(world["alice"])
    assert kept == {"assessment:2026-10"}  # October ended at the effective date: its board is closed with him
    assert compare_boards() == []


def test_a_deactivation_lowers_the_branch_head_count_and_the_rollups_like_a_rebuild(world):
    before = head_count(world["fin1"])
    leave(world)
    assert head_count(world["fin1"]) == before - 1
    rollup = db.session.scalar(sa.select(BoardScore.member_points).where(
        BoardScore.board == "assessment:2026-Q4", BoardScore.subject_type == SubjectType.ORGANIZATION,
        BoardScore.subject_id == world["fin1"].id))
    assert rollup in (None, 0)
    assert compare_boards() == []


def test_history_and_totals_stay_after_a_deactivation(world):
    leave(world)
    entries = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry).where(
        LedgerEntry.subject_type == MEMBER, LedgerEntry.subject_id == world["alice"].id))
    assert entries == 2
    closed = db.session.scalar(sa.select(Affiliation).where(Affiliation.member_id == world["alice"].id))
    assert closed.valid_to == datetime(2026, 11, 1, tzinfo=LOCAL_TZ)


def test_a_deactivation_reads_his_current_affiliation_once_to_check_its_date_and_close_it(world, statements):
    leave(world)
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM affiliations" in s]
    assert len(reads) == 1  # a roster file of 5,000 deactivations sends 5,000 statements fewer
    closed = db.session.scalar(sa.select(Affiliation).where(Affiliation.member_id == world["alice"].id))
    assert closed.valid_to == datetime(2026, 11, 1, tzinfo=LOCAL_TZ)


def test_a_deactivation_is_recorded_with_its_reason_and_audited(world):
    change = leave(world)
    assert (change.kind, change.reason_code, change.reason, change.effective_on) == (
        "deactivate", DeactivationReason.RETIRED, "到龄退休", date(2026, 11, 1))
    row = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "member.deactivate"))
    assert row.target_id == str(world["alice"].id) and row.detail["reason"] == "到龄退休"


def test_a_member_cannot_be_deactivated_twice(world):
    leave(world)
    with pytest.raises(AlreadyInactive):
        leave(world)


def test_only_admins_and_hr_over_his_branch_manage_a_members_status(world):
    with pytest.raises(Forbidden):
        deactivate_member(principal_for(world["users"]["secretary"]), world["alice"].id,
                          DeactivationReason.RESIGNED, "离职", date(2026, 11, 1))
    hr = principal_for(world["users"]["hr"])  # HR of the finance department
    deactivate_member(hr, world["alice"].id, DeactivationReason.RESIGNED, "离职", date(2026, 11, 1))
    with pytest.raises(NotFound):  # a member outside HR's departments answers like a missing one
        deactivate_member(hr, world["carol"].id, DeactivationReason.RESIGNED, "离职", date(2026, 11, 1))


def test_a_deactivated_member_earns_nothing(world):
    leave(world)
    with pytest.raises(MemberInactive):
        credit(member_fact(world["alice"], source_id="after-leaving"))


def test_an_entry_that_still_reaches_a_deactivated_member_moves_no_board_he_left(world):
    leave(world)
    entry(world["alice"], "-1", local(2026, 11, 20, 9))  # e.g. a withdrawal's reversal
    db.session.commit()
    assert boards_of(world["alice"]) == {"assessment:2026-10"}
    assert compare_boards() == []


def test_a_deactivated_member_cannot_sign_in_and_his_tokens_fail_at_once(world):
    identity = make_wechat_identity(user=world["users"]["alice"])
    db.session.commit()
    leave(world)

    class Wechat:
        def code2session(self, code):
            return WechatSession(openid=identity.openid, session_key="k", unionid=None)

    with pytest.raises(MemberDeactivated) as refused:
        login_with_wechat("code", Wechat())
    assert refused.value.code == "member_deactivated"
    assert load_principal(world["users"]["alice"].id) is None


def test_a_deactivation_closes_his_pending_records_with_the_reason(world):
    record = self_report(world["users"]["alice"])
    leave(world)
    db.session.refresh(record)
    assert record.status == RecordStatus.REJECTED and "到龄退休" in record.decision_comment
    event = db.session.scalar(sa.select(ApprovalEvent).where(ApprovalEvent.target_id == record.id,
                                                             ApprovalEvent.to_status == "rejected"))
    assert event is not None and "退休" in event.comment


def test_what_he_submits_with_a_principal_read_before_his_deactivation_is_refused_and_nothing_is_written(world):
    """His token was checked before the deactivation committed: the write itself finds him inactive."""
    his_principal = principal_for(world["users"]["alice"])
    activity = make_activity(world["north"], utcnow() + timedelta(days=1))
    leave(world)
    counts = [db.session.scalar(sa.select(sa.func.count()).select_from(m)) for m in (Record, ApprovalEvent, Report,
                                                                                     Signup)]
    for submit in (lambda: submit_member_record(his_principal, submission()),
                   lambda: submit_member_report(his_principal, world["north"].id),
                   lambda: sign_up(his_principal, activity.id)):
        with pytest.raises(GuardedInactive) as refused:
            submit()
        db.session.rollback()
        assert refused.value.code == "member_inactive" and refused.value.status == 409
    assert [db.session.scalar(sa.select(sa.func.count()).select_from(m))
            for m in (Record, ApprovalEvent, Report, Signup)] == counts


def test_a_reactivated_member_returns_to_the_boards_he_left_equal_to_a_rebuild(world):
    before = {row.board: row.score for row in db.session.execute(sa.select(BoardScore.board, BoardScore.score).where(
        BoardScore.subject_type == MEMBER, BoardScore.subject_id == world["alice"].id))}
    count = head_count(world["fin1"])
    leave(world)
    change = reactivate_member(world["admin"], world["alice"].id, "返聘")
    after = {row.board: row.score for row in db.session.execute(sa.select(BoardScore.board, BoardScore.score).where(
        BoardScore.subject_type == MEMBER, BoardScore.subject_id == world["alice"].id))}
    assert after == before and head_count(world["fin1"]) == count
    assert change.kind == "reactivate"
    assert load_principal(world["users"]["alice"].id) is not None
    assert compare_boards() == []
    assert [c.kind for c in db.session.scalars(sa.select(MemberStatusChange))] == ["deactivate", "reactivate"]


def scope_of(member, board) -> tuple:
    return db.session.execute(sa.select(BoardScore.branch_id, BoardScore.community_id).where(
        BoardScore.board == board, BoardScore.subject_type == MEMBER, BoardScore.subject_id == member.id)).one()


def test_a_transfer_mid_quarter_moves_the_quarter_and_keeps_the_closed_month_in_the_old_scope(world):
    transfer(world["admin"], world["alice"].id, branch_id=world["fin2"].id, community_id=world["south"].id,
             effective_on=date(2026, 11, 1))
    assert scope_of(world["alice"], "assessment:2026-10") == (world["fin1"].id, world["north"].id)
    assert scope_of(world["alice"], "assessment:2026-Q4") == (world["fin2"].id, world["south"].id)
    assert scope_of(world["alice"], "assessment:2026-11") == (world["fin2"].id, world["south"].id)
    q4 = {org_id: points for org_id, points in db.session.execute(
        sa.select(BoardScore.subject_id, BoardScore.member_points).where(
            BoardScore.board == "assessment:2026-Q4", BoardScore.subject_type == SubjectType.ORGANIZATION))}
    assert q4.get(world["fin1"].id, 0) == 0 and q4[world["fin2"].id] == 700 + 200  # alice 7 + bob 2
    assert compare_boards() == []


def test_a_dated_transfer_reads_his_current_affiliation_once_to_check_its_date_and_close_it(world, statements):
    transfer(world["admin"], world["alice"].id, branch_id=world["fin2"].id, effective_on=date(2026, 11, 1))
    reads = [s for s in statements if s.lstrip().startswith("SELECT") and "FROM affiliations" in s]
    assert len(reads) == 1
    rows = db.session.execute(sa.select(Affiliation.branch_id, Affiliation.valid_to).where(
        Affiliation.member_id == world["alice"].id).order_by(Affiliation.valid_from)).all()
    assert rows == [(world["fin1"].id, datetime(2026, 11, 1, tzinfo=LOCAL_TZ)), (world["fin2"].id, None)]


def test_a_transfer_to_a_branch_outside_ones_scope_is_refused(world):
    with pytest.raises(Forbidden):
        transfer(principal_for(world["users"]["hr"]), world["alice"].id, branch_id=world["edu1"].id)


def test_a_deactivation_cancels_his_open_orders_and_refunds_them(world):
    from decimal import Decimal

    from points_service.domain.market.orders import OrderRequest, place_order
    from points_service.domain.market.standing import balance_of
    from points_service.models import MarketOrder, MarketOrderEvent, OrderState
    from tests.factories.market import fund, make_item

    item = make_item(world["north"], price=Decimal(10), stock=3)
    db.session.commit()
    fund(world["alice"], 30)
    order = place_order(principal_for(world["users"]["alice"]), OrderRequest(item.id, 2))
    assert balance_of(world["alice"].id) == Decimal(10)

    leave(world)

    order = db.session.get(MarketOrder, order.id)
    assert order.state is OrderState.CANCELLED and order.refund_entry_id is not None
    assert "到龄退休" in order.close_reason
    assert balance_of(world["alice"].id) == Decimal(30)
    assert db.session.get(type(item), item.id).stock == 3
    deactivation = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "member.deactivate")).one()
    assert deactivation.detail["orders_cancelled"] == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrderEvent).where(
        MarketOrderEvent.order_id == order.id, MarketOrderEvent.to_state == OrderState.CANCELLED)) == 1


def test_a_deactivation_planned_from_a_row_read_before_another_one_committed_is_refused(world):
    """The roster import and the scheduled-change job apply changes planned from rows read earlier: the member
    is read again under his lock, so one deactivated meanwhile is not deactivated (and counted off) twice."""
    alice = world["alice"]
    assert alice.is_active  # as the plan read him
    db.session.connection().execute(sa.update(Member.__table__).where(Member.id == alice.id).values(
        is_active=False, inactive_since=local(2026, 11, 1)))  # another deactivation, behind the plan's back
    with pytest.raises(AlreadyInactive):
        apply_deactivation(world["admin"], alice, DeactivationReason.RETIRED, "到龄退休", date(2026, 11, 1),
                           local(2026, 11, 20, 9))

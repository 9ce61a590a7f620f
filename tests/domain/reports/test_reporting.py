"""双报到 use cases: submitting, confirming with points, rejecting, re-reporting per half, the report rate."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import allowed, principal_for, report_decide_scope
from points_service.domain.boards.audit import compare_boards
from points_service.domain.errors import Forbidden, InvalidTransition, ValidationFailed
from points_service.domain.lifecycle.due import cancel_scheduled
from points_service.domain.lifecycle.scheduled import ChangeAlreadyScheduled
from points_service.domain.lifecycle.status import deactivate_member
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.periods import parse_period
from points_service.domain.reports import rates
from points_service.domain.reports import reporting as reports
from points_service.models import (
    Affiliation,
    ApprovalEvent,
    AuditEntry,
    BoardScore,
    DeactivationReason,
    LedgerEntry,
    Report,
    ReportStatus,
    Role,
    SourceType,
    SubjectType,
    User,
)
from tests.concurrency import hammer
from tests.factories import ROSTER_LOADED, make_member, make_user, make_world, pairing_history
from tests.factories.boards import entry
from tests.factories.ledger import local

H1 = local(2026, 3, 10, 9)
H1_LATER = local(2026, 3, 12, 15)
H2 = local(2026, 9, 10, 9)
H2_LATER = local(2026, 9, 11, 10)
LISTS = {"resources": ["法律咨询志愿服务"], "needs": ["老旧小区加装电梯"], "projects": ["共建“四点半课堂”"]}


@pytest.fixture
def world(app):
    return make_world()


def actor(world, name: str):
    return principal_for(world["users"][name])


def report_of(world, name: str = "alice", community: str = "north", now=H2):
    return reports.submit_member_report(actor(world, name), world[community].id, now=now)


def entries_for(report: Report) -> list[LedgerEntry]:
    return list(db.session.scalars(sa.select(LedgerEntry).where(
        LedgerEntry.source_type == SourceType.REPORT, LedgerEntry.source_id == str(report.id))
        .order_by(LedgerEntry.ledger)))


def test_a_member_report_is_pending_in_the_half_year_of_shanghai_time(world):
    # 00:30 on 1 July in Shanghai is still 30 June in UTC: the half is decided in local time.
    report = report_of(world, now=local(2026, 7, 1, 0, 30))
    assert report.status == ReportStatus.PENDING and report.half == "2026-H2"
    assert (report.subject_type, report.subject_id) == ("member", world["alice"].id)
    assert report.submitted_by_id == world["users"]["alice"].id


def test_a_second_live_report_in_one_half_is_refused_but_a_rejected_one_may_be_resubmitted(world):
    first = report_of(world)
    with pytest.raises(reports.AlreadyReported):
        report_of(world, community="south")
    reports.reject_report(actor(world, "community_admin"), first.id, "社区信息填写有误", now=H2_LATER)
    again = report_of(world, now=H2_LATER)
    assert again.status == ReportStatus.PENDING and again.id != first.id


def test_confirming_credits_the_member_report_item_once_with_an_event_and_an_audit_row(world):
    report = report_of(world)
    reports.confirm_report(actor(world, "community_admin"), report.id, now=H2_LATER)
    entries = entries_for(report)
    assert [(e.ledger, e.item_code, e.points) for e in entries] == [
        ("assessment", "member.report", Decimal(3)), ("redeemable", "member.report", Decimal(3))]
    assert report.status == ReportStatus.CONFIRMED and report.decided_at == H2_LATER
    event = db.session.scalars(sa.select(ApprovalEvent).where(ApprovalEvent.target_type == "report")).one()
    assert (event.target_id, event.from_status, event.to_status) == (report.id, "pending", "confirmed")
    audited = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.target_id == str(report.id))).all()
    assert sorted(audited) == ["report.confirm", "report.submit"]


def test_a_decided_report_cannot_be_decided_again_and_earns_nothing_more(world):
    report = report_of(world)
    admin = actor(world, "community_admin")
    reports.confirm_report(admin, report.id, now=H2_LATER)
    with pytest.raises(InvalidTransition):
        reports.confirm_report(admin, report.id, now=H2_LATER)
    with pytest.raises(InvalidTransition):
        reports.reject_report(admin, report.id, "重复", now=H2_LATER)
    assert len(entries_for(report)) == 2
    assert db.session.get(Report, report.id).status == ReportStatus.CONFIRMED


def test_the_first_confirmed_report_earns_member_report_and_a_later_half_member_rereport(world):
    admin = actor(world, "community_admin")
    first = reports.confirm_report(admin, report_of(world, now=H1).id, now=H1_LATER)
    later = reports.confirm_report(admin, report_of(world, now=H2).id, now=H2_LATER)
    assert (first.half, later.half) == ("2026-H1", "2026-H2")
    assert {e.item_code for e in entries_for(first)} == {"member.report"}
    assert [(e.item_code, e.points) for e in entries_for(later)] == [("member.rereport", Decimal(1))]


def test_a_rejected_report_never_earns_and_a_pending_one_never_counts(world):
    rejected = report_of(world, now=H1)
    reports.reject_report(actor(world, "community_admin"), rejected.id, "  非本社区居民  ", now=H1_LATER)
    pending = report_of(world, now=H2)
    assert rejected.status == ReportStatus.REJECTED and rejected.reason == "非本社区居民"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 0
    assert rates.report_rate(world["fin1"], "2026-H2") == 0 and pending.status == ReportStatus.PENDING


def test_rejecting_requires_a_reason(world):
    report = report_of(world)
    with pytest.raises(ValidationFailed) as refused:
        reports.reject_report(actor(world, "community_admin"), report.id, "   ")
    assert "reason" in refused.value.data["errors"]
    assert db.session.get(Report, report.id).status == ReportStatus.PENDING


def test_confirmation_moves_the_member_to_the_community_and_grid_keeping_his_history(world):
    south_admin = principal_for(make_user((Role.COMMUNITY_ADMIN, world["south"].id)))
    report = reports.submit_member_report(actor(world, "alice"), world["south"].id)
    reports.confirm_report(south_admin, report.id, grid_id=world["south_grid"].id)
    alice = world["alice"]
    assert (alice.community_id, alice.grid_id, report.grid_id) == (
        world["south"].id, world["south_grid"].id, world["south_grid"].id)
    history = db.session.scalars(sa.select(Affiliation).where(Affiliation.member_id == alice.id)
                                 .order_by(Affiliation.valid_from)).all()
    assert [(a.community_id, a.valid_to is None) for a in history] == [
        (world["north"].id, False), (world["south"].id, True)]


def test_a_confirmation_that_would_move_a_member_whose_transfer_waits_is_refused_until_it_is_cancelled(world):
    alice, asked = world["alice"], local(2026, 11, 20, 10)
    change = transfer(actor(world, "admin"), alice.id, branch_id=world["fin2"].id, effective_on=date(2026, 12, 1),
                      now=asked)
    south_admin = principal_for(make_user((Role.COMMUNITY_ADMIN, world["south"].id)))
    report = reports.submit_member_report(actor(world, "alice"), world["south"].id, now=asked)
    with pytest.raises(ChangeAlreadyScheduled):
        reports.confirm_report(south_admin, report.id, grid_id=world["south_grid"].id, now=asked)
    db.session.rollback()
    assert (db.session.get(Report, report.id).status, alice.community_id) == (ReportStatus.PENDING, world["north"].id)
    cancel_scheduled(actor(world, "admin"), alice.id, change.id, "先确认报到")
    reports.confirm_report(south_admin, report.id, grid_id=world["south_grid"].id, now=asked)
    assert alice.community_id == world["south"].id


def test_confirming_without_a_grid_keeps_the_members_grid_in_the_same_community(world):
    reports.confirm_report(actor(world, "community_admin"), report_of(world).id, now=H2_LATER)
    assert world["alice"].grid_id == world["north_grid"].id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Affiliation)
                             .where(Affiliation.member_id == world["alice"].id)) == 1


def test_a_grid_of_another_community_is_refused_and_nothing_changes(world):
    report = report_of(world)
    with pytest.raises(ValidationFailed) as refused:
        reports.confirm_report(actor(world, "community_admin"), report.id, grid_id=world["south_grid"].id)
    assert "grid_id" in refused.value.data["errors"]
    assert db.session.get(Report, report.id).status == ReportStatus.PENDING and entries_for(report) == []


def test_only_a_community_can_be_reported_to(world):
    with pytest.raises(ValidationFailed) as refused:
        reports.submit_member_report(actor(world, "alice"), world["street"].id)
    assert "社区" in refused.value.data["errors"]["community_id"][0]


def test_a_community_admin_cannot_confirm_his_own_member_report(world):
    admin_user = world["users"]["community_admin"]
    admin_user.member_id = make_member(world["fin1"], world["north"]).id
    db.session.commit()
    own = reports.submit_member_report(principal_for(admin_user), world["north"].id)
    with pytest.raises(Forbidden):
        reports.confirm_report(principal_for(admin_user), own.id)


def test_the_reports_one_may_decide_in_sql_are_those_the_decision_allows(world):
    admin_user = world["users"]["community_admin"]
    admin_user.member_id = make_member(world["fin1"], world["north"]).id
    db.session.commit()
    report_of(world)
    report_of(world, "bob", "south")
    reports.submit_member_report(principal_for(admin_user), world["north"].id, now=H2)  # his own
    reports.submit_org_report(actor(world, "admin"), world["finance"].id, world["north"].id, now=H2, **LISTS)
    every = db.session.scalars(sa.select(Report)).all()
    for user in world["users"].values():
        principal = principal_for(user)
        listed = set(db.session.scalars(sa.select(Report.id).where(report_decide_scope(principal))))
        assert listed == {r.id for r in every if allowed(principal, "report.decide", r)}, user.username
    assert len(set(db.session.scalars(sa.select(Report.id).where(
        report_decide_scope(principal_for(admin_user)))))) == 2  # alice's and the organization's, not his own


def test_only_a_department_organization_reports_and_it_brings_a_project_or_a_resource(world):
    admin = actor(world, "admin")
    with pytest.raises(ValidationFailed) as branch:
        reports.submit_org_report(admin, world["fin1"].id, world["north"].id, **LISTS)
    assert "organization_id" in branch.value.data["errors"]
    with pytest.raises(ValidationFailed) as empty:
        reports.submit_org_report(admin, world["finance"].id, world["north"].id, resources=[],
                                  needs=["需求"], projects=[])
    assert "projects" in empty.value.data["errors"]


def test_confirming_an_organization_report_credits_org_report_and_pairs_the_community(world):
    org_admin = principal_for(make_user((Role.ORG_ADMIN, world["finance"].id)))
    south_admin = principal_for(make_user((Role.COMMUNITY_ADMIN, world["south"].id)))
    report = reports.submit_org_report(org_admin, world["finance"].id, world["south"].id, **LISTS, now=H2)
    assert (report.resources, report.needs, report.projects) == (
        LISTS["resources"], LISTS["needs"], LISTS["projects"])
    reports.confirm_report(south_admin, report.id, now=H2_LATER)
    assert [(e.subject_type, e.subject_id, e.item_code, e.points) for e in entries_for(report)] == [
        ("organization", world["finance"].id, "org.report", Decimal(5))]
    assert world["finance"].paired_community_id == world["south"].id
    assert pairing_history(world["finance"]) == [(world["north"].id, ROSTER_LOADED, H2_LATER),
                                                 (world["south"].id, H2_LATER, None)]


def test_confirming_an_organization_report_to_its_paired_community_keeps_its_pairing(world):
    org_admin = principal_for(make_user((Role.ORG_ADMIN, world["finance"].id)))
    report = reports.submit_org_report(org_admin, world["finance"].id, world["north"].id, **LISTS, now=H2)
    reports.confirm_report(actor(world, "community_admin"), report.id, now=H2_LATER)
    assert pairing_history(world["finance"]) == [(world["north"].id, ROSTER_LOADED, None)]


def test_a_new_pairing_moves_the_departments_and_its_branches_board_rows_to_the_new_community(world):
    entry(world["alice"], 5, H2)  # fin1's and finance's rollup rows
    entry(world["finance"], 3, H2, subject_type=SubjectType.ORGANIZATION)
    db.session.commit()
    org_admin = principal_for(make_user((Role.ORG_ADMIN, world["finance"].id)))
    south_admin = principal_for(make_user((Role.COMMUNITY_ADMIN, world["south"].id)))
    report = reports.submit_org_report(org_admin, world["finance"].id, world["south"].id, **LISTS, now=H2)
    reports.confirm_report(south_admin, report.id, now=H2_LATER)
    assert compare_boards() == []
    communities = set(db.session.scalars(sa.select(BoardScore.community_id).where(
        BoardScore.subject_type == SubjectType.ORGANIZATION,
        BoardScore.subject_id.in_([world["finance"].id, world["fin1"].id]))))
    assert communities == {world["south"].id}


def test_the_report_rate_counts_members_confirmed_as_of_the_half_or_within_it(world):
    admin = actor(world, "community_admin")
    reports.confirm_report(admin, report_of(world, now=H1).id, now=H1_LATER)  # alice, 2026-H1
    report_of(world, "bob", "south", now=H2)  # pending: never counts
    h2 = parse_period("2026-H2")
    assert rates.report_rate(world["finance"], h2) == Decimal("0.5")
    assert rates.report_rate(world["finance"], h2, this_half_only=True) == 0
    assert rates.report_rate(world["fin1"], h2) == 1 and rates.report_rate(world["fin2"], h2) == 0
    assert rates.report_rate(world["finance"], "2025-H2") == 0  # before alice ever reported


def test_the_status_lists_every_member_with_whether_he_reported(world):
    admin = actor(world, "community_admin")
    reports.confirm_report(admin, report_of(world, now=H2).id, now=H2_LATER)
    summary, members = rates.report_status(actor(world, "hr"), world["finance"].id, parse_period("2026-H2"))
    rows = {row["member"]["name"]: row for row in db.session.scalars(members)}
    assert rows["张晓丽"]["reported_this_half"] and rows["张晓丽"]["last_reported_half"] == "2026-H2"
    assert not rows["李·建国"]["reported_ever"] and rows["李·建国"]["half_status"] is None
    assert (summary["member_count"], summary["reported_count"], summary["report_rate"]) == (2, 1, Decimal("0.5"))
    assert [(b["organization"].name, b["report_rate"]) for b in summary["branches"]] == [
        ("财政局第一党支部", 1), ("财政局第二党支部", 0)]


def test_a_closed_halfs_status_counts_who_belonged_at_its_end_and_the_running_halfs_todays_members(world):
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))  # all members since 2025
    db.session.commit()
    deactivate_member(actor(world, "admin"), world["bob"].id, DeactivationReason.RETIRED, "到龄退休",
                      date(2026, 11, 1), now=local(2026, 11, 2, 9))  # left after 2026-H1 ended

    def counted(half: str, now) -> tuple[int, set[str]]:
        summary, members = rates.report_status(actor(world, "hr"), world["finance"].id, parse_period(half),
                                                 now=now)
        return summary["member_count"], {row["member"]["name"] for row in db.session.scalars(members)}

    now = local(2026, 11, 2, 10)
    assert counted("2026-H1", now) == (2, {world["alice"].name, world["bob"].name})
    assert counted("2026-H2", now) == (1, {world["alice"].name})
    assert rates.report_rate(world["finance"], "2026-H1", now=now) == 0  # over the two who belonged then


def test_a_closed_halfs_status_reads_the_decisions_made_by_its_end(world):
    db.session.execute(sa.update(Affiliation).values(valid_from=local(2025, 1, 1)))  # all members since 2025
    db.session.commit()
    admin = actor(world, "community_admin")
    reports.confirm_report(admin, report_of(world, now=H1).id, now=local(2026, 7, 2, 9))  # after 2026-H1 ended
    now = local(2026, 7, 3, 9)

    summary, members = rates.report_status(actor(world, "hr"), world["finance"].id, parse_period("2026-H1"),
                                             now=now)
    alice = next(row for row in db.session.scalars(members) if row["member"]["name"] == world["alice"].name)
    assert (summary["reported_count"], summary["reported_this_half_count"], summary["report_rate"]) == (0, 0, 0)
    assert (alice["half_status"], alice["reported_this_half"], alice["reported_ever"]) == ("pending", False, False)
    assert rates.report_rate(world["finance"], "2026-H1", now=now) == 0  # as the 流动红旗 gate reads it
    summary, _ = rates.report_status(actor(world, "hr"), world["finance"].id, parse_period("2026-H2"), now=now)
    assert summary["reported_count"] == 1  # the running half counts him


def test_a_secretary_sees_the_status_of_his_branch_only(world):
    secretary = actor(world, "secretary")
    summary, _ = rates.report_status(secretary, world["fin1"].id, now=H2)
    assert summary["half"] == "2026-H2" and summary["member_count"] == 1
    for org in ("fin2", "finance"):
        with pytest.raises(Forbidden):
            rates.report_status(secretary, world[org].id)


@pytest.mark.postgres
def test_concurrent_reports_of_one_member_leave_one_live_report(app, world):
    alice_id, north = world["users"]["alice"].id, world["north"].id

    def submit():
        try:
            return reports.submit_member_report(principal_for(db.session.get(User, alice_id)), north).id
        except reports.AlreadyReported:
            return "already_reported"

    results = hammer(app, [submit] * 30, workers=30)
    assert len([r for r in results if r != "already_reported"]) == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Report)) == 1


@pytest.mark.postgres
def test_two_admins_confirming_at_once_leave_one_decision_and_one_award(app, world):
    report_id = report_of(world).id
    user_ids = [world["users"]["community_admin"].id, world["users"]["admin"].id] * 10

    def confirm(user_id):
        def call():
            try:
                reports.confirm_report(principal_for(db.session.get(User, user_id)), report_id)
                return "confirmed"
            except InvalidTransition:
                return "invalid_transition"
        return call

    results = hammer(app, [confirm(user_id) for user_id in user_ids], workers=20)
    assert sorted(set(results)) == ["confirmed", "invalid_transition"] and results.count("confirmed") == 1
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == 2
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApprovalEvent)) == 1

"""Annual settlement: frozen statements per member and organization, ranks, grades with the share cap and
vetoes, settling once, corrections beside (never inside) the statement, equality with the ledger."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.annual.settlement import (
    AlreadySettled,
    YearNotEnded,
    corrections_after_settlement,
    settle_year,
    verify_settlement,
)
from points_service.domain.awards import withdrawals
from points_service.domain.checkin.scans import check_in, check_out, resolve_review
from points_service.domain.errors import Forbidden
from points_service.domain.ledger.corrections import reverse_entry
from points_service.domain.ledger.totals import total_of
from points_service.domain.lifecycle.status import deactivate_member, reactivate_member
from points_service.domain.lifecycle.transfer import transfer
from points_service.domain.periods import parse_period
from points_service.models import (
    SCORING_KINDS,
    AnnualSettlement,
    AnnualStatement,
    DeactivationReason,
    LedgerEntry,
    LedgerName,
    Report,
    ReportStatus,
    SubjectType,
)
from points_service.models.selections import StarCandidate, StarRun, StarRunStatus
from tests.factories import make_branch, make_department, make_member, make_world
from tests.factories.activities import make_activity, scan
from tests.factories.annual import YEAR, admin_of, deduct, department_of, reported, score, settled
from tests.factories.ledger import install_policy, local


@pytest.fixture
def world(app):
    world = make_world()
    reported(world["alice"], world["bob"], world["carol"])
    return world


def statement(subject, subject_type=SubjectType.MEMBER) -> AnnualStatement:
    return db.session.scalar(sa.select(AnnualStatement).where(
        AnnualStatement.year == YEAR, AnnualStatement.subject_type == subject_type,
        AnnualStatement.subject_id == subject.id))


def test_a_statement_freezes_total_items_ranks_grade_and_the_cutoff(world):
    score(world, world["alice"], 92)
    score(world, world["bob"], 80, at=local(YEAR, 12, 31, 23, 59))
    score(world, world["bob"], 50, at=local(YEAR + 1, 1, 1, 0, 0))  # the next year already
    world["carol"].created_at = local(YEAR, 3, 1)  # enrolled in the year, no points
    db.session.commit()
    settlement = settled(world)
    assert settlement.cutoff_at == local(YEAR + 1, 1, 1) and settlement.policy_version == 1
    assert len(settlement.checksum) == 64 and settlement.member_count == 3
    alice, bob, carol = (statement(world[name]) for name in ("alice", "bob", "carol"))
    assert (alice.total, alice.rank_city, alice.rank_group, alice.grade) == (Decimal("92.00"), 1, 1, "优秀")
    assert (bob.total, bob.rank_city, bob.rank_group, bob.grade) == (Decimal("80.00"), 2, 2, "较好")
    assert (carol.total, carol.rank_city, carol.rank_group, carol.grade) == (0, 3, 1, "差")  # alone in 教育局
    assert alice.by_item == [{"item_code": "admin.adjustment", "name": "管理员调整", "points": "92.00", "count": 1}]
    assert alice.department_id == world["finance"].id and alice.branch_id == world["fin1"].id
    assert alice.reached_at == local(YEAR, 6, 1, 9)


def test_ties_share_a_rank_and_are_ordered_by_who_reached_the_score_first_then_id(world):
    score(world, world["carol"], 70, at=local(YEAR, 3, 1))
    score(world, world["bob"], 70, at=local(YEAR, 2, 1))
    score(world, world["alice"], 70, at=local(YEAR, 3, 1))
    settled(world)
    rows = db.session.scalars(sa.select(AnnualStatement).order_by(AnnualStatement.position)).all()
    assert [(r.subject_id, r.rank_city) for r in rows if r.subject_type == SubjectType.MEMBER] == [
        (world["bob"].id, 1), (world["alice"].id, 1), (world["carol"].id, 1)]


def test_the_share_cap_keeps_excellent_for_the_first_fifth_of_each_department(world):
    big = make_department(world["north"], name="市税务局党委")
    small = make_department(world["north"], name="市档案馆党支部")
    ten = department_of(world, big, make_branch(big), world["north"], [99, 98, 97, 96, 95, 94, 93, 92, 91, 90])
    three = department_of(world, small, make_branch(small), world["north"], [95, 94, 93])
    settled(world)
    assert [statement(m).grade for m in ten] == ["优秀", "优秀"] + ["较好"] * 8
    assert [statement(m).grade for m in three] == ["优秀", "较好", "较好"]  # ⌊20 % × 3⌋ = 0, but at least one
    capped = statement(ten[2])
    assert capped.grade_by_score == "优秀" and capped.rank_group == 3
    assert capped.grade_reasons == [
        {"code": "excellent_share_cap", "message": "优秀名额已满（不超过本部门人数的 20%）"}]


def test_the_cap_goes_to_who_reached_the_score_first_within_a_tie(world):
    dept = make_department(world["north"])
    members = department_of(world, dept, make_branch(dept), world["north"], [0] * 5)
    for member, day in zip(members, (5, 4, 3, 2, 1), strict=True):
        score(world, member, 95, at=local(YEAR, 7, day))
    settled(world)
    assert [statement(m).grade for m in members] == ["较好"] * 4 + ["优秀"]


@pytest.mark.parametrize(("setup", "grade", "code", "message"), [
    (lambda m: [deduct(m, "member.no_show"), deduct(m, "member.no_show", at=local(YEAR, 6, 2))], "较好",
     "unexcused_absences", "全年无故缺席活动 2 次及以上，不得评为优秀"),
    (lambda m: deduct(m, "member.falsified"), "差", "falsified", "存在弄虚作假行为"),
    (None, "差", "not_reported", "未到居住地社区报到"),
])
def test_each_veto_lowers_the_grade_and_says_why(world, setup, grade, code, message):
    dept = make_department(world["north"])
    member = department_of(world, dept, make_branch(dept), world["north"], [120], report=setup is not None)[0]
    if setup:
        setup(member)
    settled(world)
    row = statement(member)
    assert (row.grade_by_score, row.grade) == ("优秀", grade)
    assert row.grade_reasons == [{"code": code, "message": message}]


def test_the_report_veto_reads_reports_confirmed_before_the_cutoff_for_any_half_up_to_the_years_second(world):
    dept = make_department(world["north"])
    late, earlier = department_of(world, dept, make_branch(dept), world["north"], [120, 110], report=False)
    for member, half, decided in ((late, f"{YEAR}-H2", local(YEAR + 1, 1, 5)),  # confirmed after the cutoff
                                  (earlier, f"{YEAR - 1}-H2", local(YEAR - 1, 9, 1))):  # reported the year before
        db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id,
                              community_id=member.community_id, half=half, status=ReportStatus.CONFIRMED,
                              decided_at=decided))
    db.session.commit()
    settled(world)
    assert [r["code"] for r in statement(late).grade_reasons] == ["not_reported"]
    assert statement(earlier).grade_reasons == []


def test_one_no_show_or_a_reversed_one_does_not_veto(world):
    dept = make_department(world["north"])
    member = department_of(world, dept, make_branch(dept), world["north"], [110])[0]
    deduct(member, "member.no_show")
    second = deduct(member, "member.no_show", at=local(YEAR, 6, 2))[0]
    reverse_entry(admin_of(world), second.id, "误判缺席", at=local(YEAR, 6, 3))
    settled(world)
    assert statement(member).grade == "优秀" and statement(member).grade_reasons == []


def test_a_reversal_of_last_years_no_show_cancels_none_of_this_years(world):
    dept = make_department(world["north"])
    member = department_of(world, dept, make_branch(dept), world["north"], [120])[0]
    last_year = deduct(member, "member.no_show", at=local(YEAR - 1, 12, 20, 9))[0]
    deduct(member, "member.no_show")
    deduct(member, "member.no_show", at=local(YEAR, 6, 2))
    reverse_entry(admin_of(world), last_year.id, "上年缺席经核实为请假", at=local(YEAR, 1, 15, 9))
    settled(world)
    row = statement(member)
    assert (row.grade_by_score, row.grade) == ("优秀", "较好")
    assert [reason["code"] for reason in row.grade_reasons] == ["unexcused_absences"]
    assert verify_settlement(YEAR)["equal"] is True


def test_settling_twice_is_refused_and_changes_nothing(world):
    score(world, world["alice"], 91)
    first = settled(world)
    with pytest.raises(AlreadySettled) as refused:
        settled(world)
    assert refused.value.status == 409 and refused.value.code == "already_settled"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AnnualSettlement)) == 1
    assert db.session.scalar(sa.select(AnnualSettlement.checksum)) == first.checksum


def test_a_year_is_settled_only_after_it_ends_and_only_by_an_admin(world):
    with pytest.raises(YearNotEnded):
        settle_year(admin_of(world), YEAR, now=local(YEAR, 12, 31, 23, 59))
    from points_service.domain.access import principal_for

    with pytest.raises(Forbidden):
        settle_year(principal_for(world["users"]["hr"]), YEAR)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(AnnualStatement)) == 0


def test_an_adjustment_after_settlement_leaves_the_statement_and_shows_as_a_correction(world):
    score(world, world["alice"], 85)
    entry = score(world, world["bob"], 60)
    settlement = settled(world)
    before = verify_settlement(YEAR)
    fix = score(world, world["alice"], 6, at=local(YEAR + 1, 2, 1))
    reversal = reverse_entry(admin_of(world), entry.id, "重复加分", at=local(YEAR + 1, 2, 2))
    score(world, world["alice"], 3, at=local(YEAR + 2, 2, 1))  # two years on: not a correction of this year
    assert statement(world["alice"]).total == Decimal("85.00") and statement(world["alice"]).grade == "较好"
    found = corrections_after_settlement(settlement, SubjectType.MEMBER, [world["alice"].id, world["bob"].id])
    assert found[world["alice"].id]["points"] == Decimal("6.00")
    assert [e["entry_id"] for e in found[world["alice"].id]["entries"]] == [fix.id]
    assert found[world["alice"].id]["entries"][0]["audit_id"] is not None
    assert found[world["bob"].id]["points"] == Decimal("-60.00")
    assert found[world["bob"].id]["entries"][0]["entry_id"] == reversal.id
    assert verify_settlement(YEAR) == before and before["equal"]


def test_statements_are_append_only_in_the_database(world):
    score(world, world["alice"], 91)
    settled(world)
    with pytest.raises(DatabaseError):
        db.session.execute(sa.update(AnnualStatement).values(grade="优秀"))
        db.session.flush()
    db.session.rollback()
    with pytest.raises(DatabaseError):
        db.session.execute(sa.delete(AnnualSettlement))
        db.session.flush()
    db.session.rollback()


def naive_year(subject_type: str) -> dict[int, tuple[Decimal, dict]]:
    """Totals and by-item sums straight from every ledger entry, in Python."""
    totals: dict[int, Decimal] = defaultdict(Decimal)
    items: dict[int, dict] = defaultdict(lambda: defaultdict(Decimal))
    for entry in db.session.scalars(sa.select(LedgerEntry)):
        inside = local(YEAR, 1, 1) <= entry.credited_at < local(YEAR + 1, 1, 1)
        if (inside and entry.subject_type == subject_type and entry.ledger == LedgerName.ASSESSMENT
                and entry.kind in SCORING_KINDS):
            totals[entry.subject_id] += entry.points
            items[entry.subject_id][entry.item_code] += entry.points
    return {key: (totals[key], dict(items[key])) for key in totals}


def test_the_statements_equal_a_recomputation_from_the_ledger(world):
    score(world, world["alice"], "45.50", at=local(YEAR, 1, 1, 0, 0))
    deduct(world["alice"], "member.no_show")
    deduct(world["bob"], "member.late")
    score(world, world["carol"], 12, at=local(YEAR - 1, 12, 31, 23, 59))  # the year before
    score(world, world["finance"], 30, subject_type=SubjectType.ORGANIZATION)
    settled(world)
    for subject_type in ("member", "organization"):
        expected = naive_year(subject_type)
        rows = db.session.scalars(sa.select(AnnualStatement).where(AnnualStatement.subject_type == subject_type))
        for row in rows:
            total, items = expected.get(row.subject_id, (Decimal(0), {}))
            assert row.total == total == total_of(subject_type, row.subject_id, LedgerName.ASSESSMENT, "2025").net
            assert {i["item_code"]: Decimal(i["points"]) for i in row.by_item} == items
    assert verify_settlement(YEAR)["equal"] is True


def test_verification_notices_a_ledger_change_inside_the_settled_year(world):
    score(world, world["alice"], 40)
    settled(world)
    score(world, world["alice"], 1, at=local(YEAR, 12, 1))  # back-dated into the settled year
    report = verify_settlement(YEAR)
    assert report["equal"] is False and report["stored_rows"] == report["checksum"] != report["recomputed"]


def test_organizations_get_statements_with_their_members_service_and_a_city_wide_cap(world):
    score(world, world["finance"], 95, subject_type=SubjectType.ORGANIZATION)
    score(world, world["education"], 96, subject_type=SubjectType.ORGANIZATION)
    reported(world["finance"], world["education"], subject_type=SubjectType.ORGANIZATION)
    settled(world)
    finance, education = (statement(world[n], SubjectType.ORGANIZATION) for n in ("finance", "education"))
    assert (education.rank_city, education.grade) == (1, "优秀")
    assert (finance.rank_city, finance.grade, finance.rank_group) == (2, "较好", None)
    assert finance.grade_reasons[0]["message"] == "优秀名额已满（不超过参评组织数的 20%）"
    assert finance.org_path == world["finance"].path


def star_won(world, member, period, status=StarRunStatus.FINALIZED, finalized_at=None) -> StarCandidate:
    """A run of ``period`` (finalized in the quarter after it unless told otherwise) that ``member`` won."""
    finalized_at = finalized_at or (parse_period(period).end + timedelta(days=20)
                                    if status == StarRunStatus.FINALIZED else None)
    run = StarRun(period=period, scope_type="community", status=status, cutoff_at=parse_period(period).end,
                  checksum="x", finalized_at=finalized_at)
    db.session.add(run)
    db.session.flush()
    winner = StarCandidate(
        run_id=run.id, member_id=member.id, community_id=world["north"].id, scope_id=world["north"].id,
        points=Decimal(10), activities=2, hours=Decimal(4), micro_wishes=0, disqualifying=0, reported=True,
        eligible=True, position=1, winner=True)
    db.session.add(winner)
    db.session.commit()
    return winner


def test_stars_count_the_winners_of_the_years_finalized_runs_only(world):
    score(world, world["alice"], 10)
    score(world, world["bob"], 10)
    for period, status in (("2025-Q1", StarRunStatus.FINALIZED), ("2025-Q2", StarRunStatus.FINALIZED),
                           ("2025-Q3", StarRunStatus.PUBLISHED), ("2024-Q4", StarRunStatus.FINALIZED)):
        star_won(world, world["alice"], period, status)
    settled(world)
    assert statement(world["alice"]).stars == 2 and statement(world["bob"]).stars == 0


def test_a_star_finalized_or_withdrawn_after_the_settlement_leaves_the_year_verifying_as_settled(world):
    score(world, world["alice"], 10)
    spring = star_won(world, world["alice"], "2025-Q1")
    settled(world)
    withdrawals.withdraw_star(admin_of(world), spring.id, "材料不实")
    star_won(world, world["bob"], "2025-Q4", finalized_at=utcnow())
    assert statement(world["alice"]).stars == 1 and statement(world["bob"]).stars == 0
    assert verify_settlement(YEAR)["equal"]


def test_grades_follow_the_policy_in_force_at_the_cutoff_not_a_later_one(world):
    score(world, world["alice"], 80)

    def stricter(document):
        document["grades"]["bands"][1]["min_score"] = 85

    install_policy(stricter, effective_from=local(YEAR + 1, 1, 1))
    settlement = settled(world)
    assert settlement.policy_version == 1 and statement(world["alice"]).grade == "较好"


def test_a_member_transferred_after_the_cutoff_is_settled_where_he_was(world):
    from points_service.domain.structure import transfer_member

    score(world, world["alice"], 50)
    alice = world["alice"]
    # Enrolment affiliations start now (2026), so give alice a 2025 one and move her in 2026.
    from points_service.models import Affiliation

    db.session.add(Affiliation(member_id=alice.id, branch_id=world["fin1"].id, community_id=world["north"].id,
                               valid_from=local(YEAR, 1, 1), valid_to=local(YEAR + 1, 3, 1)))
    db.session.commit()
    transfer_member(alice, world["edu1"], world["south"], None)
    db.session.commit()
    settled(world)
    assert statement(alice).branch_id == world["fin1"].id and statement(alice).department_id == world["finance"].id


def test_members_enrolled_after_the_cutoff_without_points_get_no_statement(world):
    late = make_member(world["fin1"], world["north"], since=utcnow())
    db.session.commit()
    settled(world)
    assert statement(late) is None


def _left_in_the_year(world, *, on=date(YEAR, 6, 1)):
    """A member on the roster since before the year who left during it, with no points in it."""
    gone = make_member(world["fin1"], world["north"])
    gone.created_at = local(YEAR - 1, 1, 1)
    db.session.commit()
    deactivate_member(admin_of(world), gone.id, DeactivationReason.RESIGNED, "离职", on, now=local(YEAR, 6, 1, 10))
    return gone


def test_a_member_who_left_during_the_year_and_came_back_after_it_gets_no_statement_for_it(world):
    gone = _left_in_the_year(world)
    reactivate_member(admin_of(world), gone.id, "返聘", now=local(YEAR + 1, 1, 5, 9))
    settlement = settled(world)
    assert statement(gone) is None and settlement.member_count == 3


def test_a_settled_year_still_verifies_after_a_member_who_had_left_comes_back_and_moves(world):
    gone = _left_in_the_year(world)
    scored = _left_in_the_year(world)
    score(world, scored, 30, at=local(YEAR, 3, 1))
    settled(world)
    assert statement(gone) is None and statement(scored).branch_id == world["fin1"].id
    for member in (gone, scored):
        reactivate_member(admin_of(world), member.id, "返聘", now=local(YEAR + 1, 2, 1, 9))
        transfer(admin_of(world), member.id, branch_id=world["edu1"].id, effective_on=date(YEAR + 1, 3, 1))
    assert verify_settlement(YEAR)["equal"]


def served(world, member, day, *, accuracy=None):
    """Two hours of service on ``day`` of December, checked in and out on time; a poor ``accuracy`` leaves the
    check-in under review (nothing credited until a community admin approves it)."""
    activity = make_activity(world["north"], local(YEAR, 12, day, 14))
    db.session.commit()
    principal = principal_for(world["users"][member])
    checkin = check_in(principal, activity.id, scan(activity, activity.starts_at, accuracy=accuracy),
                       now=activity.starts_at)
    return check_out(principal, checkin.id, scan(activity, activity.ends_at), now=activity.ends_at)


def test_activities_and_hours_are_the_check_ins_credited_in_the_year_and_stay_so_after_a_late_review(world):
    served(world, "alice", 20)
    under_review = served(world, "bob", 30, accuracy=500)
    settled(world)
    resolve_review(principal_for(world["users"]["community_admin"]), under_review.id, True,
                   now=local(YEAR + 1, 1, 5, 9))
    assert (statement(world["alice"]).activities, statement(world["alice"]).hours) == (1, Decimal(2))
    assert (statement(world["bob"]).activities, statement(world["bob"]).hours) == (0, 0)
    assert verify_settlement(YEAR)["equal"]

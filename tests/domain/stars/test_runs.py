"""业务之星 runs against the database: facts as of the cutoff, reasons for every member, publicity with
objections, finalizing, frozen rows, re-runs, the scheduled proposal, and verification from the ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import DatabaseError

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.errors import Forbidden, InvalidTransition, ValidationFailed
from points_service.domain.ledger.corrections import reverse_entry
from points_service.domain.ledger.credit import award
from points_service.domain.periods import parse_period
from points_service.domain.stars import reading as stars_reading
from points_service.domain.stars import runs as stars
from points_service.domain.structure import transfer_member
from points_service.jobs.runner import run_job
from points_service.jobs.schedule import JOBS_BY_ID
from points_service.models import (
    AuditEntry,
    CalendarDay,
    LedgerEntry,
    Report,
    ReportStatus,
    SourceType,
    StarCandidate,
    StarRun,
    StarRunStatus,
    SubjectType,
)
from tests.factories import make_member, make_world
from tests.factories.ledger import install_policy, local, member_fact

Q3 = parse_period("2026-Q3")
AFTER_Q3 = local(2026, 10, 9, 10)  # a Friday


@pytest.fixture
def world(app):
    install_policy(lambda doc: doc["stars"].update(quota=2))
    world = make_world()
    for name in ("dave", "erin"):
        world[name] = make_member(world["fin1"], world["north"], name=name)
    db.session.commit()
    world["admin"] = principal_for(world["users"]["admin"])
    return world


def serve(member, activities=3, hours=2, *, month=8, day=1):
    """Checked-out activities credited in the quarter (one a day, so no daily cap bites)."""
    for n in range(activities):
        award(member_fact(member, "member.activity_hour", units=hours, source_type=SourceType.CHECKIN),
              at=local(2026, month, day + n, 18))


def report(member, *, half="2026-H2", decided_at=None):
    db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                          half=half, status=ReportStatus.CONFIRMED, decided_at=decided_at or local(2026, 7, 2)))
    db.session.commit()


def star_member(member, activities=3, hours=2, **kwargs):
    serve(member, activities, hours, **kwargs)
    report(member)


def candidate(run, member) -> StarCandidate:
    return db.session.scalar(sa.select(StarCandidate).where(StarCandidate.run_id == run.id,
                                                            StarCandidate.member_id == member.id))


def codes(run, member) -> list[str]:
    return [r["code"] for r in candidate(run, member).reasons]


def propose(world, **kwargs):
    return stars.propose_star_run(world["admin"], "2026-Q3", now=AFTER_Q3, **kwargs)


def published(world, run=None):
    run = run or propose(world)
    return stars.publish_star_run(world["admin"], run.id, now=AFTER_Q3)


def test_a_run_records_every_active_member_with_his_facts_and_why_he_is_or_is_not_selected(world):
    star_member(world["alice"], 3, 2)  # 6 points
    award(member_fact(world["alice"], "member.micro_wish"), at=local(2026, 9, 20, 9))  # 11 points
    star_member(world["dave"], 4, 3)  # 12 points
    star_member(world["erin"], 4, 2)  # 8 points: below 10
    serve(world["carol"], 5, 3)  # 15 points but never reported
    star_member(world["bob"], 1, 4, month=9)  # one activity only (south) ...
    award(member_fact(world["bob"], "member.commend_city"), at=local(2026, 9, 5))  # ... though 14 points
    run = propose(world)

    assert (run.status, run.candidate_count, run.eligible_count, run.winner_count) == ("proposed", 5, 2, 2)
    alice = candidate(run, world["alice"])
    assert (alice.points, alice.activities, alice.hours, alice.micro_wishes, alice.reported) == (
        Decimal(11), 3, Decimal(6), 1, True)
    assert alice.reached_at == local(2026, 9, 20, 9) and alice.scope_id == world["north"].id
    assert (alice.position, alice.winner) == (2, True) and codes(run, world["alice"]) == ["selected"]
    assert (candidate(run, world["dave"]).position, codes(run, world["dave"])) == (1, ["selected"])
    assert codes(run, world["erin"]) == ["min_points"]
    assert codes(run, world["carol"]) == ["not_reported"]
    assert codes(run, world["bob"]) == ["min_activities"]
    assert candidate(run, world["erin"]).reasons[0]["message"] == "本季度考核积分8分，低于10分"


def test_only_quarter_entries_count_and_a_late_report_or_a_later_entry_does_not(world):
    star_member(world["alice"], 3, 4)
    serve(world["alice"], 2, 4, month=10, day=2)  # next quarter
    serve(world["dave"], 3, 4)
    report(world["dave"], decided_at=local(2026, 10, 2))  # confirmed after the cutoff
    run = propose(world)
    assert candidate(run, world["alice"]).points == Decimal(12)
    assert codes(run, world["dave"]) == ["not_reported"]


def test_a_disqualifying_deduction_excludes_a_member_unless_it_was_reversed_before_the_cutoff(world):
    star_member(world["alice"], 4, 4)  # 16 points, 11 after the deduction
    star_member(world["dave"], 3, 4)
    [no_show] = award(member_fact(world["alice"], "member.no_show"), at=local(2026, 8, 20))
    [falsified] = award(member_fact(world["dave"], "member.falsified"), at=local(2026, 8, 21))
    reverse_entry(world["admin"], falsified.id, "误录", at=local(2026, 9, 1))
    run = propose(world)
    assert codes(run, world["alice"]) == ["disqualified_item"] and candidate(run, world["alice"]).disqualifying == 1
    assert codes(run, world["dave"]) == ["selected"]
    assert no_show.kind == "deduction"


def test_the_scope_is_the_community_the_member_belonged_to_at_the_cutoff(world):
    star_member(world["alice"], 3, 4)
    db.session.get(type(world["alice"]), world["alice"].id).affiliations[0].valid_from = local(2026, 1, 1)
    db.session.commit()
    alice = world["alice"]
    transfer_member(alice, alice.branch, world["south"], None, when=local(2026, 10, 3))
    db.session.commit()
    run = propose(world)
    assert candidate(run, alice).community_id == world["north"].id


def test_a_street_scope_groups_the_communities_of_a_street(world):
    star_member(world["alice"], 3, 4)
    star_member(world["bob"], 3, 4)
    run = propose(world, scope_type="street")
    assert run.scope_type == "street"
    assert {candidate(run, world[n]).scope_id for n in ("alice", "bob")} == {world["street"].id}


def test_an_open_quarter_cannot_be_proposed(world):
    with pytest.raises(stars.PeriodNotEnded):
        stars.propose_star_run(world["admin"], "2026-Q4", now=AFTER_Q3)
    with pytest.raises(ValidationFailed):
        stars.propose_star_run(world["admin"], "2026-09", now=AFTER_Q3)


def test_only_admins_propose(world):
    with pytest.raises(Forbidden):
        stars.propose_star_run(principal_for(world["users"]["community_admin"]), "2026-Q3", now=AFTER_Q3)


def test_proposing_again_withdraws_a_run_that_is_only_proposed(world):
    first = propose(world)
    star_member(world["alice"], 3, 4)
    second = propose(world)
    assert db.session.get(StarRun, first.id).status == StarRunStatus.WITHDRAWN
    assert second.status == StarRunStatus.PROPOSED and candidate(second, world["alice"]).winner
    assert not candidate(first, world["alice"]).winner


def test_a_published_quarter_is_closed_proposing_again_changes_nothing(world):
    star_member(world["alice"], 3, 4)
    run = published(world)
    before = (run.checksum, db.session.scalar(sa.select(sa.func.count()).select_from(StarCandidate)))
    star_member(world["dave"], 5, 4)
    with pytest.raises(stars.StarRunExists):
        propose(world)
    db.session.refresh(run)
    assert (run.checksum, db.session.scalar(sa.select(sa.func.count()).select_from(StarCandidate))) == before
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarRun)) == 1


def test_publishing_fixes_the_window_in_working_days_skipping_weekends_and_holidays(world):
    db.session.add(CalendarDay(day=date(2026, 10, 13), working=False, name="假日"))
    db.session.commit()
    run = published(world)  # Friday 2026-10-09: Mon 12, (Tue 13 off), Wed 14, Thu 15, Fri 16, Mon 19
    assert run.status == StarRunStatus.PUBLISHED and run.publicity_ends_on == date(2026, 10, 19)
    assert stars.publicity_deadline(run) == local(2026, 10, 20)
    with pytest.raises(InvalidTransition):
        stars.publish_star_run(world["admin"], run.id, now=AFTER_Q3)


def test_a_policy_of_zero_publicity_days_makes_the_publication_day_the_whole_window(world):
    install_policy(lambda doc: doc["stars"].update(quota=2, publicity_working_days=0))
    star_member(world["alice"], 3, 4)
    run = published(world)  # Friday 2026-10-09
    assert run.publicity_ends_on == date(2026, 10, 9) and stars.publicity_deadline(run) == local(2026, 10, 10)
    stars.raise_objection(world["admin"], run.id, world["alice"].id, "质疑", now=local(2026, 10, 9, 23))
    with pytest.raises(InvalidTransition):
        stars.raise_objection(world["admin"], run.id, world["alice"].id, "质疑", now=local(2026, 10, 10))


def test_objections_are_accepted_only_during_publicity(world):
    star_member(world["alice"], 3, 4)
    run = propose(world)
    with pytest.raises(InvalidTransition):
        stars.raise_objection(world["admin"], run.id, world["alice"].id, "尚未公示", now=AFTER_Q3)
    published(world, run)
    bob = principal_for(world["users"]["bob"])
    objection = stars.raise_objection(bob, run.id, world["alice"].id, "服务时长有虚报", now=local(2026, 10, 16, 23))
    assert objection.status == "open" and objection.raised_by_id == world["users"]["bob"].id
    with pytest.raises(InvalidTransition):
        stars.raise_objection(bob, run.id, world["alice"].id, "太晚了", now=local(2026, 10, 17, 0, 1))
    with pytest.raises(ValidationFailed):
        stars.raise_objection(bob, run.id, 999999, "不是候选人", now=local(2026, 10, 12))


def test_an_upheld_objection_makes_the_member_ineligible_and_recomputes_the_winners(world):
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)
    assert [m for m in ("alice", "dave", "erin") if candidate(run, world[m]).winner] == ["alice", "dave"]
    checksum = run.checksum
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, True, "经核实属实", now=local(2026, 10, 13))

    db.session.refresh(run)
    assert codes(run, world["alice"]) == ["objection_upheld"] and not candidate(run, world["alice"]).eligible
    assert [m for m in ("alice", "dave", "erin") if candidate(run, world[m]).winner] == ["dave", "erin"]
    assert candidate(run, world["dave"]).position == 1 and run.winner_count == 2 and run.checksum != checksum
    assert stars_reading.verify_star_run(run).matches
    with pytest.raises(InvalidTransition):
        stars.decide_objection(world["admin"], run.id, objection.id, False, now=local(2026, 10, 13))


def test_an_upheld_objection_that_brings_in_a_new_winner_restarts_the_publicity_window(world):
    for name, hours in (("alice", 4), ("dave", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    run = published(world)  # Friday 2026-10-09: the window ends Friday 10-16
    assert run.publicity_ends_on == date(2026, 10, 16)
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, True, now=local(2026, 10, 13))

    db.session.refresh(run)  # erin was not publicized: five working days from Tuesday 10-13
    assert candidate(run, world["erin"]).winner and run.publicity_ends_on == date(2026, 10, 20)
    assert stars.in_publicity(run, local(2026, 10, 19, 12))
    with pytest.raises(stars.PublicityNotEnded):
        stars.finalize_star_run(world["admin"], run.id, now=local(2026, 10, 17))
    detail = db.session.scalar(sa.select(AuditEntry.detail).where(AuditEntry.action == "star_objection.decide"))
    assert detail["new_winners"] == [world["erin"].id] and detail["publicity_ends_on"] == "2026-10-20"


def test_an_upheld_objection_that_only_removes_a_winner_keeps_the_window(world):
    for name, hours in (("alice", 4), ("dave", 3)):
        star_member(world[name], 5, hours)
    run = published(world)
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, True, now=local(2026, 10, 13))

    db.session.refresh(run)
    assert run.winner_count == 1 and run.publicity_ends_on == date(2026, 10, 16)


def share_quota_run(world):
    """Half the eligible win: alice and dave of alice, dave, carol and erin (all of north)."""
    install_policy(lambda doc: doc["stars"].update(quota_kind="share", quota=0.5))
    for name, hours in (("alice", 5), ("dave", 4), ("carol", 3), ("erin", 2)):
        star_member(world[name], 5, hours)
    return published(world)


def uphold(world, run, member):
    objection = stars.raise_objection(world["admin"], run.id, member.id, "虚报", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, True, now=local(2026, 10, 13))
    db.session.refresh(run)
    return db.session.scalar(sa.select(AuditEntry.detail).where(AuditEntry.action == "star_objection.decide")
                             .order_by(AuditEntry.id.desc()).limit(1))


def north_winners(run, world):
    return [m for m in ("alice", "dave", "carol", "erin") if candidate(run, world[m]).winner]


def test_a_share_quota_stays_as_publicized_when_an_objection_against_a_non_winner_is_upheld(world):
    run = share_quota_run(world)
    assert north_winners(run, world) == ["alice", "dave"]
    detail = uphold(world, run, world["erin"])

    assert north_winners(run, world) == ["alice", "dave"] and run.winner_count == 2
    assert codes(run, world["dave"]) == ["selected"]
    assert "名额2名" in candidate(run, world["dave"]).reasons[0]["message"]
    assert (detail["new_winners"], detail["removed_winners"]) == ([], [])
    assert run.publicity_ends_on == date(2026, 10, 16) and stars_reading.verify_star_run(run).matches


def test_under_a_share_quota_an_upheld_objection_replaces_the_winner_objected_to(world):
    run = share_quota_run(world)
    detail = uphold(world, run, world["alice"])

    assert north_winners(run, world) == ["dave", "carol"] and run.winner_count == 2
    assert (detail["new_winners"], detail["removed_winners"]) == ([world["carol"].id], [world["alice"].id])
    assert run.publicity_ends_on == date(2026, 10, 20) and stars_reading.verify_star_run(run).matches


def test_a_dismissed_objection_changes_no_winner(world):
    star_member(world["alice"], 3, 4)
    run = published(world)
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "质疑", now=local(2026, 10, 12))
    stars.decide_objection(world["admin"], run.id, objection.id, False, "不属实", now=local(2026, 10, 13))
    assert candidate(run, world["alice"]).winner and objection.status == "dismissed"


def test_finalizing_is_refused_while_an_objection_is_open_or_before_the_window_ends(world):
    star_member(world["alice"], 3, 4)
    run = published(world)
    objection = stars.raise_objection(world["admin"], run.id, world["alice"].id, "质疑", now=local(2026, 10, 12))
    with pytest.raises(stars.ObjectionsOpen):
        stars.finalize_star_run(world["admin"], run.id, now=local(2026, 10, 21))
    stars.decide_objection(world["admin"], run.id, objection.id, False, now=local(2026, 10, 14))
    with pytest.raises(stars.PublicityNotEnded):
        stars.finalize_star_run(world["admin"], run.id, now=local(2026, 10, 16, 23, 59))
    final = stars.finalize_star_run(world["admin"], run.id, now=local(2026, 10, 17))
    assert final.status == StarRunStatus.FINALIZED and final.finalized_at == local(2026, 10, 17)
    actions = db.session.scalars(sa.select(AuditEntry.action).where(AuditEntry.action.like("star_%"))
                                 .order_by(AuditEntry.id)).all()
    assert actions == ["star_run.propose", "star_run.publish", "star_objection.raise", "star_objection.decide",
                       "star_run.finalize"]


def finalized(world):
    run = published(world)
    return stars.finalize_star_run(world["admin"], run.id, now=local(2026, 10, 30))


def test_a_finalized_run_and_its_candidates_are_frozen_by_the_database(world):
    star_member(world["alice"], 3, 4)
    run = finalized(world)
    for statement in (sa.update(StarRun).where(StarRun.id == run.id).values(checksum="x"),
                      sa.update(StarCandidate).where(StarCandidate.run_id == run.id).values(winner=False),
                      sa.delete(StarCandidate).where(StarCandidate.run_id == run.id)):
        with pytest.raises(DatabaseError):
            db.session.execute(statement)
        db.session.rollback()
    with pytest.raises(InvalidTransition):
        stars.raise_objection(world["admin"], run.id, world["alice"].id, "太晚", now=local(2026, 10, 30))
    with pytest.raises(stars.StarRunExists):
        propose(world)
    assert candidate(run, world["alice"]).winner


def test_a_finalized_run_recomputed_from_the_ledger_at_its_cutoff_has_the_same_checksum(world):
    star_member(world["alice"], 3, 4)
    star_member(world["dave"], 3, 2)
    award(member_fact(world["dave"], "member.micro_wish"), at=local(2026, 9, 2))
    run = finalized(world)
    serve(world["erin"], 4, 4, month=10, day=10)  # after the cutoff: changes nothing
    report(world["erin"], decided_at=local(2026, 10, 11))
    result = stars_reading.verify_star_run(run)
    assert result.matches and result.recomputed_checksum == run.checksum and result.differences == []


def test_verification_names_the_rows_that_no_longer_match_the_ledger(world):
    star_member(world["alice"], 3, 4)
    run = propose(world)
    db.session.execute(sa.update(StarCandidate).where(StarCandidate.run_id == run.id,
                                                      StarCandidate.member_id == world["alice"].id)
                       .values(points=Decimal(99)))
    db.session.commit()
    result = stars_reading.verify_star_run(run)
    assert not result.matches and result.recomputed_checksum == run.checksum
    [difference] = result.differences
    assert (difference["stored"]["points"], difference["recomputed"]["points"]) == ("99.00", "12.00")


def test_the_scheduled_job_proposes_the_closed_quarter_once_as_the_system(world):
    star_member(world["alice"], 3, 4)
    run_job(JOBS_BY_ID["star_propose"], Q3)
    run = db.session.scalar(sa.select(StarRun))
    assert run.created_by_id is None and run.status == StarRunStatus.PROPOSED and run.winner_count == 1
    assert stars.propose_quarter_stars(Q3) == {"run_id": run.id, "skipped": True}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(StarRun)) == 1
    assert JOBS_BY_ID["star_propose"].period_for(local(2027, 1, 1, 2), None).key == "2026-Q4"


def test_the_ledger_is_untouched_by_a_run(world):
    star_member(world["alice"], 3, 4)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
    finalized(world)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == before


def test_the_can_predicates_follow_the_state_and_the_window(world):
    star_member(world["alice"], 3, 4)
    admin, bob = world["admin"], principal_for(world["users"]["bob"])
    run = propose(world)
    assert stars.can_publish(admin, run) and not stars.can_publish(bob, run)
    assert not stars.can_raise_objection(bob, run, AFTER_Q3)
    published(world, run)
    assert not stars.can_publish(admin, run) and stars.can_raise_objection(bob, run, local(2026, 10, 16))
    objection = stars.raise_objection(bob, run.id, world["alice"].id, "质疑", now=local(2026, 10, 12))
    assert stars.can_decide_objection(admin, run, objection) and not stars.can_decide_objection(bob, run, objection)
    assert not stars.can_finalize(admin, run, local(2026, 10, 30))
    stars.decide_objection(admin, run.id, objection.id, False, now=local(2026, 10, 13))
    assert not stars.can_finalize(admin, run, local(2026, 10, 16)) and stars.can_finalize(admin, run,
                                                                                             local(2026, 10, 17))
    assert not stars.can_raise_objection(bob, run, local(2026, 10, 17))

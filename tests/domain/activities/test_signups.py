"""Publishing and proposing activities, who sees them, and members signing up and withdrawing."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.activities import signups as activities
from points_service.domain.activities.signups import (
    ActivityFull,
    ActivityNotOpen,
    AlreadySignedUp,
    NotSignedUp,
    SignupClosed,
    Venue,
)
from points_service.domain.approvals import decisions as approvals
from points_service.domain.approvals.decisions import Decision, Stage, stage_of
from points_service.domain.checkin import scans as checkin
from points_service.domain.errors import Conflict, Forbidden, InvalidTransition, NotFound, ValidationFailed
from points_service.models import ActivityStatus, ApprovalEvent, AuditEntry, Role, Signup, SignupStatus
from points_service.models.service import ProposalStep
from tests.factories import make_member, make_user, make_world
from tests.factories.activities import draft, make_activity, scan
from tests.factories.ledger import local

NOW = local(2026, 11, 10, 8)
TOMORROW = local(2026, 11, 11, 9)


@pytest.fixture
def world(app):
    return make_world()


def who(world, name):
    return principal_for(world["users"][name])


def test_a_community_admin_publishes_an_activity_in_his_community(world):
    activity = activities.publish_activity(who(world, "community_admin"), draft(world["north"], TOMORROW), now=NOW)
    assert activity.status == ActivityStatus.PUBLISHED and activity.community_id == world["north"].id
    assert len(activity.checkin_secret) == 64 and activity.proposed_by_org_id is None
    assert db.session.scalar(sa.select(AuditEntry.action).where(AuditEntry.target_id == str(activity.id))) \
        == "activity.publish"


def test_each_activity_gets_its_own_checkin_secret(world):
    admin = who(world, "admin")
    first = activities.publish_activity(admin, draft(world["north"], TOMORROW), now=NOW)
    second = activities.publish_activity(admin, draft(world["south"], TOMORROW), now=NOW)
    assert first.checkin_secret != second.checkin_secret


@pytest.mark.parametrize("user", ["community_admin", "alice", "secretary", "hr"])
def test_only_the_communitys_admin_or_an_admin_may_publish_there(world, user):
    with pytest.raises(Forbidden):
        activities.publish_activity(who(world, user), draft(world["south"], TOMORROW), now=NOW)


@pytest.mark.parametrize("item_code", [
    "member.self_service_hour",  # hours, but approved by a secretary
    "member.micro_wish",  # counted in times
    "org.project_done",  # an organization's item
    "member.no_such_item",
])
def test_the_item_must_be_an_automatically_confirmed_hourly_member_item(world, item_code):
    with pytest.raises(ValidationFailed) as failure:
        activities.publish_activity(who(world, "admin"), draft(world["north"], TOMORROW, item_code=item_code),
                                    now=NOW)
    assert set(failure.value.data["errors"]) == {"item_code"}


@pytest.mark.parametrize("overrides,field", [
    ({"ends_at": TOMORROW}, "ends_at"),
    ({"ends_at": TOMORROW + timedelta(hours=25)}, "ends_at"),
    ({"starts_at": NOW - timedelta(hours=3), "ends_at": NOW - timedelta(hours=1)}, "ends_at"),
    ({"venue": Venue(35.4, 116.6, 5)}, "location"),
    ({"capacity": 0}, "capacity"),
])
def test_impossible_times_radii_and_capacities_are_refused_naming_the_field(world, overrides, field):
    values = {"starts_at": TOMORROW, **overrides}
    with pytest.raises(ValidationFailed) as failure:
        activities.publish_activity(who(world, "admin"), draft(world["north"], **values), now=NOW)
    assert field in failure.value.data["errors"]


def test_an_activity_is_published_proposed_or_moved_only_to_a_start_still_ahead(world):
    # Published at 08:00 as having started at 07:00, every member checking in would be "late" (−1), though
    # nobody could check in before it existed.
    underway = draft(world["north"], NOW - timedelta(hours=1), ends_at=NOW + timedelta(hours=2))
    with pytest.raises(ValidationFailed) as refused:
        activities.publish_activity(who(world, "community_admin"), underway, now=NOW)
    assert set(refused.value.data["errors"]) == {"starts_at"}
    with pytest.raises(ValidationFailed):
        activities.propose_activity(who(world, "secretary"), world["fin1"], underway, now=NOW)
    activity = activities.publish_activity(who(world, "community_admin"), draft(world["north"], TOMORROW), now=NOW)
    with pytest.raises(ValidationFailed):
        activities.edit_activity(who(world, "community_admin"), activity.id, underway, now=NOW)
    db.session.refresh(activity)
    assert activity.starts_at == TOMORROW


def test_an_activity_can_only_be_held_in_a_community(world):
    with pytest.raises(ValidationFailed) as failure:
        activities.publish_activity(who(world, "admin"), draft(world["north_grid"], TOMORROW), now=NOW)
    assert set(failure.value.data["errors"]) == {"community_id"}


def test_a_branch_secretary_proposes_an_activity_which_waits_with_an_approval_event(world):
    activity = activities.propose_activity(who(world, "secretary"), world["fin1"], draft(world["north"], TOMORROW),
                                           now=NOW)
    assert activity.status == ActivityStatus.PROPOSED and activity.proposed_by_org_id == world["fin1"].id
    event = db.session.scalar(sa.select(ApprovalEvent).where(ApprovalEvent.target_id == activity.id))
    assert (event.target_type, event.from_status, event.to_status, event.actor_id) == (
        "activity", "", "proposed", world["users"]["secretary"].id)


def test_a_secretary_cannot_propose_for_another_branch(world):
    with pytest.raises(NotFound):  # a branch outside his scope answers like a missing one
        activities.propose_activity(who(world, "secretary"), world["fin2"].id, draft(world["north"], TOMORROW),
                                    now=NOW)


def test_members_see_published_activities_and_managers_also_their_proposals(world):
    published = make_activity(world["north"], TOMORROW)
    proposed = make_activity(world["north"], TOMORROW, status=ActivityStatus.PROPOSED, proposed_by=world["fin1"])
    db.session.commit()

    def listed(user):
        return [a.id for a in db.session.scalars(activities.list_activities(who(world, user)))]

    assert listed("alice") == [published.id]
    assert sorted(listed("secretary")) == sorted(listed("community_admin")) == [published.id, proposed.id]
    with pytest.raises(NotFound):
        activities.get_activity(who(world, "alice"), proposed.id)
    assert activities.get_activity(who(world, "secretary"), proposed.id) is proposed


def test_the_list_filters_by_community_and_by_overlap_with_the_asked_interval(world):
    early = make_activity(world["north"], local(2026, 11, 11, 9))
    late = make_activity(world["north"], local(2026, 11, 20, 9))
    make_activity(world["south"], local(2026, 11, 11, 9))
    db.session.commit()
    statement = activities.list_activities(who(world, "alice"), community_id=world["north"].id,
                                           start=local(2026, 11, 11, 10), end=local(2026, 11, 12))
    assert [a.id for a in db.session.scalars(statement)] == [early.id]
    statement = activities.list_activities(who(world, "alice"), community_id=world["north"].id)
    assert [a.id for a in db.session.scalars(statement)] == [early.id, late.id]


def test_a_member_signs_up_once(world):
    activity = make_activity(world["north"], TOMORROW)
    db.session.commit()
    signup = activities.sign_up(who(world, "alice"), activity.id, now=NOW)
    assert signup.status == SignupStatus.SIGNED_UP and signup.member_id == world["alice"].id
    with pytest.raises(AlreadySignedUp):
        activities.sign_up(who(world, "alice"), activity.id, now=NOW)


def test_a_full_activity_refuses_one_more(world):
    activity = make_activity(world["north"], TOMORROW, capacity=2)
    db.session.commit()
    activities.sign_up(who(world, "alice"), activity.id, now=NOW)
    activities.sign_up(who(world, "bob"), activity.id, now=NOW)
    carol = make_user(member=world["carol"])
    with pytest.raises(ActivityFull):
        activities.sign_up(principal_for(carol), activity.id, now=NOW)


def test_a_withdrawn_seat_is_free_again_and_the_member_may_sign_up_again(world):
    activity = make_activity(world["north"], TOMORROW, capacity=1)
    db.session.commit()
    activities.sign_up(who(world, "alice"), activity.id, now=NOW)
    assert activities.withdraw(who(world, "alice"), activity.id, now=NOW).status == SignupStatus.WITHDRAWN
    activities.sign_up(who(world, "bob"), activity.id, now=NOW)
    with pytest.raises(ActivityFull):
        activities.sign_up(who(world, "alice"), activity.id, now=NOW)
    rows = db.session.scalars(sa.select(Signup.status).where(Signup.activity_id == activity.id)).all()
    assert sorted(rows) == [SignupStatus.SIGNED_UP, SignupStatus.WITHDRAWN]


def test_withdrawing_and_signing_up_close_when_the_activity_starts(world):
    activity = make_activity(world["north"], TOMORROW)
    db.session.commit()
    activities.sign_up(who(world, "alice"), activity.id, now=NOW)
    with pytest.raises(SignupClosed):
        activities.withdraw(who(world, "alice"), activity.id, now=TOMORROW)
    with pytest.raises(SignupClosed):
        activities.sign_up(who(world, "bob"), activity.id, now=TOMORROW)


def test_withdrawing_without_a_signup_is_not_found(world):
    activity = make_activity(world["north"], TOMORROW)
    db.session.commit()
    with pytest.raises(NotSignedUp):
        activities.withdraw(who(world, "alice"), activity.id, now=NOW)


def test_only_published_activities_take_signups(world):
    proposed = make_activity(world["north"], TOMORROW, status=ActivityStatus.PROPOSED, proposed_by=world["fin1"])
    cancelled = make_activity(world["north"], TOMORROW, status=ActivityStatus.CANCELLED)
    db.session.commit()
    with pytest.raises(NotFound):
        activities.sign_up(who(world, "alice"), proposed.id, now=NOW)
    with pytest.raises(ActivityNotOpen):
        activities.sign_up(who(world, "alice"), cancelled.id, now=NOW)


def test_a_console_user_without_a_member_cannot_sign_up(world):
    activity = make_activity(world["north"], TOMORROW)
    db.session.commit()
    with pytest.raises(Forbidden):
        activities.sign_up(who(world, "community_admin"), activity.id, now=NOW)


def test_a_member_who_is_also_a_community_admin_signs_up_as_himself(world):
    dave = make_member(world["fin1"], world["north"], name="赵大卫")
    user = make_user((Role.COMMUNITY_ADMIN, world["north"].id), member=dave)
    activity = make_activity(world["north"], TOMORROW)
    db.session.commit()
    assert activities.sign_up(principal_for(user), activity.id, now=NOW).member_id == dave.id


def test_a_capacity_below_the_members_signed_up_is_refused_naming_how_many(world):
    activity = activities.publish_activity(who(world, "community_admin"), draft(world["north"], TOMORROW, capacity=5),
                                           now=NOW)
    for name in ("alice", "bob"):
        activities.sign_up(who(world, name), activity.id, now=NOW)
    activities.sign_up(principal_for(make_user(member=world["carol"])), activity.id, now=NOW)
    activities.withdraw(who(world, "bob"), activity.id, now=NOW)  # a withdrawn seat does not count
    with pytest.raises(Conflict) as refused:
        activities.edit_activity(who(world, "community_admin"), activity.id,
                                 draft(world["north"], TOMORROW, capacity=1, title="改小"), now=NOW)
    assert (refused.value.status, refused.value.code, refused.value.data) == (
        409, "capacity_below_signups", {"signed_up": 2})
    assert "已有 2 人报名" in refused.value.message
    db.session.refresh(activity)
    assert (activity.capacity, activity.title) == (5, "固定服务日")
    edited = activities.edit_activity(who(world, "community_admin"), activity.id,
                                      draft(world["north"], TOMORROW, capacity=2), now=NOW)
    assert edited.capacity == 2
    with pytest.raises(ActivityFull):
        activities.sign_up(who(world, "bob"), activity.id, now=NOW)
    assert activities.edit_activity(who(world, "community_admin"), activity.id,
                                    draft(world["north"], TOMORROW, capacity=None), now=NOW).capacity is None


# ------------------------------------------------------------------------------------------ editing proposals

def approve(world, name, activity):
    approvals.decide(who(world, name), f"activity:{activity.id}", Decision.APPROVE, "同意", now=NOW)


def proposal_approved_by_its_organization(world):
    world["users"]["org_admin"] = make_user((Role.ORG_ADMIN, world["finance"].id), username="finance_org_admin")
    db.session.commit()
    proposal = activities.propose_activity(who(world, "secretary"), world["fin1"], draft(world["north"], TOMORROW),
                                           now=NOW)
    approve(world, "org_admin", proposal)
    assert stage_of(proposal) == Stage.ORG_APPROVED
    return proposal


def test_an_edit_after_the_organizations_approval_sends_the_proposal_back_to_the_organization(world):
    proposal = proposal_approved_by_its_organization(world)
    moved = draft(world["north"], TOMORROW + timedelta(days=10), title="改了的活动", venue=Venue(39.9, 116.4, 5000))
    activities.edit_activity(who(world, "secretary"), proposal.id, moved, now=NOW)
    assert stage_of(proposal) == Stage.PROPOSED and proposal.approval_step == ProposalStep.ORGANIZATION
    event = db.session.scalars(sa.select(ApprovalEvent).where(ApprovalEvent.target_id == proposal.id)
                               .order_by(ApprovalEvent.id.desc())).first()
    assert (event.from_status, event.to_status, event.actor_id) == (
        "org_approved", "proposed", world["users"]["secretary"].id)
    audit = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "activity.edit")).one()
    assert audit.detail == {"from_stage": "org_approved", "stage": "proposed"}
    with pytest.raises(Forbidden):  # the community's step has not come yet: the organization approves first
        approve(world, "community_admin", proposal)
    approve(world, "org_admin", proposal)
    approve(world, "community_admin", proposal)
    assert proposal.status == ActivityStatus.PUBLISHED and proposal.radius_m == 5000


def test_an_edit_before_any_approval_keeps_the_proposal_at_the_organizations_step(world):
    proposal = activities.propose_activity(who(world, "secretary"), world["fin1"], draft(world["north"], TOMORROW),
                                           now=NOW)
    activities.edit_activity(who(world, "secretary"), proposal.id, draft(world["north"], TOMORROW, title="新名字"),
                             now=NOW)
    assert stage_of(proposal) == Stage.PROPOSED and proposal.title == "新名字"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(ApprovalEvent).where(
        ApprovalEvent.target_id == proposal.id)) == 1  # its proposal only: no transition


def test_an_activity_someone_has_checked_in_to_is_no_longer_edited(world):
    # Check-in opens half an hour before the start. Moved a week later after Alice checked in, her check-in would
    # stay: checking out at the new end, she would be credited every hour of the new window without being there.
    activity = activities.publish_activity(who(world, "community_admin"), draft(world["north"], TOMORROW), now=NOW)
    early = TOMORROW - timedelta(minutes=20)
    checkin.check_in(who(world, "alice"), activity.id, scan(activity, early), now=early)
    with pytest.raises(Conflict) as refused:
        activities.edit_activity(who(world, "community_admin"), activity.id,
                                 draft(world["north"], TOMORROW + timedelta(days=7)), now=early + timedelta(minutes=5))
    assert (refused.value.status, refused.value.code) == (409, "activity_not_editable")
    db.session.refresh(activity)
    assert activity.starts_at == TOMORROW


def test_a_proposal_that_has_started_is_not_accepted_and_waits_to_be_rejected(world):
    proposal = proposal_approved_by_its_organization(world)
    with pytest.raises(InvalidTransition):
        approvals.decide(who(world, "community_admin"), f"activity:{proposal.id}", Decision.APPROVE, "同意",
                         now=TOMORROW + timedelta(minutes=20))
    db.session.refresh(proposal)
    assert stage_of(proposal) == Stage.ORG_APPROVED
    approvals.decide(who(world, "community_admin"), f"activity:{proposal.id}", Decision.REJECT, "已过开始时间",
                     now=TOMORROW + timedelta(minutes=20))
    assert proposal.status == ActivityStatus.REJECTED


def test_after_publication_only_the_host_communitys_admins_edit_it(world):
    proposal = proposal_approved_by_its_organization(world)
    approve(world, "community_admin", proposal)
    for name in ("secretary", "org_admin"):
        with pytest.raises(Forbidden) as refused:
            activities.edit_activity(who(world, name), proposal.id, draft(world["north"], TOMORROW, title="再次修改"),
                                     now=NOW)
        assert (refused.value.status, refused.value.code) == (403, "activity_host_only")
        assert not activities.may_edit(who(world, name), proposal)
    db.session.refresh(proposal)
    assert proposal.title == "固定服务日"
    activities.edit_activity(who(world, "community_admin"), proposal.id,
                             draft(world["north"], TOMORROW, title="社区调整"), now=NOW)
    assert proposal.status == ActivityStatus.PUBLISHED and proposal.title == "社区调整"

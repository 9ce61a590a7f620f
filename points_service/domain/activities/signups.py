"""Activities (服务活动): community admins publish them, branch or department organizations propose them,
members sign up and withdraw.

An activity scores a policy item counted in hours and confirmed automatically by verified check-in and
check-out (``approval: auto``), e.g. ``member.activity_hour``. A proposal waits in status ``proposed``;
its approval (branch secretary, then the community accepting to host) belongs to the approvals flow.
Signing up is optional for checking in (walk-ins are common); it is what the no-show deduction counts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import with_expression
from sqlalchemy.sql.elements import ColumnElement

from points_service.db import db, utcnow
from points_service.domain import notifications
from points_service.domain.access import ORG_MANAGERS, Principal, allowed, authorize, authorize_or_hide, nodes_in_scope
from points_service.domain.approvals.decisions import Stage, move_activity, stage_of
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, Forbidden, NotFound, ValidationFailed
from points_service.domain.lifecycle.guard import lock_active_member
from points_service.domain.policy import UnknownItem, policy_in_force
from points_service.domain.structure import find_community, find_organization
from points_service.models import (
    Activity,
    ActivityStatus,
    ApprovalEvent,
    Checkin,
    Organization,
    Region,
    Role,
    Signup,
    SignupStatus,
)

MIN_RADIUS_M, MAX_RADIUS_M = 10, 5000
MAX_DURATION = timedelta(hours=24)  # one activity is one service session, settled on the day it ends
# What everyone sees: a published activity, and one cancelled since (only a published activity is cancelled).
PUBLIC_STATUSES = (ActivityStatus.PUBLISHED, ActivityStatus.CANCELLED)


class AlreadySignedUp(Conflict):
    code, message = "already_signed_up", "已报名该活动"


class ActivityFull(Conflict):
    code, message = "activity_full", "活动报名人数已满"


class ActivityNotOpen(Conflict):
    code, message = "activity_not_open", "活动尚未发布或已取消"


class ActivityCancelled(ActivityNotOpen):
    code, message = "activity_cancelled", "活动已取消"


class SignupClosed(Conflict):
    code, message = "signup_closed", "活动已开始，不能再报名或取消报名"


class CapacityBelowSignups(Conflict):
    """A capacity below the members signed up: their seats are kept, so the capacity may not go under them."""

    code = "capacity_below_signups"

    def __init__(self, signed_up: int) -> None:
        super().__init__(f"已有 {signed_up} 人报名，人数上限不能少于 {signed_up}", data={"signed_up": signed_up})


class PublishedActivityHostOnly(Forbidden):
    code, message = "activity_host_only", "活动已发布，只有承办社区的管理员可以修改"


class NotSignedUp(NotFound):
    code, message = "not_signed_up", "未报名该活动"


@dataclass(frozen=True)
class Venue:
    """Where the activity happens (gcj02, as the mini-program reports), and how far away counts as there."""

    lat: float
    lng: float
    radius_m: int


@dataclass(frozen=True)
class ActivityDraft:
    community_id: int
    title: str
    item_code: str
    starts_at: datetime
    ends_at: datetime
    venue: Venue
    capacity: int | None = None


def publish_activity(actor: Principal, draft: ActivityDraft, *, now: datetime | None = None) -> Activity:
    """A community admin (or an admin) publishes an activity in a community he administers."""
    community = find_community(draft.community_id)
    authorize(actor, "activity.create", community)
    activity = _add_activity(actor, community, draft, ActivityStatus.PUBLISHED, now or utcnow())
    audit("activity.publish", actor=actor, target=activity, detail={"community_id": community.id})
    db.session.commit()
    return activity


def propose_activity(actor: Principal, org: Organization | int, draft: ActivityDraft, *,
                     now: datetime | None = None) -> Activity:
    """A branch or department organization proposes an activity at a community (status ``proposed``)."""
    org = org if isinstance(org, Organization) else find_organization(org)
    authorize_or_hide(actor, "organization.view", org, NotFound("组织不存在"))  # unseen: like a missing one
    authorize(actor, "organization.manage", org)
    community = find_community(draft.community_id)
    activity = _add_activity(actor, community, draft, ActivityStatus.PROPOSED, now or utcnow())
    activity.proposed_by_org_id = org.id
    db.session.add(ApprovalEvent(target_type="activity", target_id=activity.id, from_status="",
                                 to_status=ActivityStatus.PROPOSED, actor_id=actor.user_id))
    audit("activity.propose", actor=actor, target=activity, detail={"organization_id": org.id})
    db.session.commit()
    return activity


def _add_activity(actor: Principal, community: Region, draft: ActivityDraft, status: ActivityStatus,
                  now: datetime) -> Activity:
    _validate(draft, now)
    activity = Activity(
        community_id=community.id, title=draft.title, item_code=draft.item_code, starts_at=draft.starts_at,
        ends_at=draft.ends_at, venue_lat=draft.venue.lat, venue_lng=draft.venue.lng,
        radius_m=draft.venue.radius_m, capacity=draft.capacity, status=status, created_by_id=actor.user_id,
        created_at=now, checkin_secret=secrets.token_hex(32),
    )
    db.session.add(activity)
    db.session.flush()
    return activity


def _validate(draft: ActivityDraft, now: datetime) -> None:
    errors: dict[str, list[str]] = {}
    item_problem = _item_problem(draft.item_code, now)
    if item_problem:
        errors["item_code"] = [item_problem]
    if draft.starts_at <= now:  # nobody could have checked in at a start already past: all would be late
        errors["starts_at"] = ["开始时间已过：活动须在开始之前发布或修改"]
    if draft.ends_at <= draft.starts_at:
        errors["ends_at"] = ["结束时间须晚于开始时间"]
    elif draft.ends_at - draft.starts_at > MAX_DURATION:
        errors["ends_at"] = ["单次活动不能超过 24 小时"]
    elif draft.ends_at <= now:
        errors["ends_at"] = ["活动结束时间已过"]
    if not MIN_RADIUS_M <= draft.venue.radius_m <= MAX_RADIUS_M:
        errors["location"] = [f"签到范围须在 {MIN_RADIUS_M}–{MAX_RADIUS_M} 米之间"]
    if draft.capacity is not None and draft.capacity < 1:
        errors["capacity"] = ["人数上限须大于 0"]
    if errors:
        raise ValidationFailed(errors)


def _item_problem(item_code: str, now: datetime) -> str | None:
    """Why this policy item cannot score an activity (None if it can)."""
    try:
        item = policy_in_force(now).item(item_code)
    except UnknownItem as exc:
        return exc.message
    if item.subject != "member" or item.unit != "hours":
        return f"积分项目“{item.name}”不是按小时计的党员服务项目"
    if item.approval != "auto":
        return f"积分项目“{item.name}”需要人工审核，不能用于扫码签到的活动"
    return None


def edit_activity(actor: Principal, activity_id: int, draft: ActivityDraft, *,
                  now: datetime | None = None) -> Activity:
    """Change an activity before it starts. The community stays: an activity moved to another community is a
    new activity there. The same checks as publishing apply. A proposal its organization has approved goes back
    to the organization's step, so each approver approves what is held; a published one is the host's, and its
    members signed up are told when its time or venue moves."""
    now = now or utcnow()
    activity = get_activity(actor, activity_id)  # 404 unless he may see it, then 403 unless he manages it
    authorize(actor, "activity.manage", activity)
    lock_activity(activity, reread=True)  # before counting check-ins and sign-ups: none slips in before the commit
    if activity.status not in (ActivityStatus.PUBLISHED, ActivityStatus.PROPOSED) or activity.starts_at <= now:
        raise Conflict("活动已开始、已结束或已取消，不能再修改", code="activity_not_editable")
    if has_checkins(activity.id):  # check-in opens before the start: those made stay with the activity as it was
        raise Conflict("已有党员签到，活动不能再修改", code="activity_not_editable")
    if not may_edit(actor, activity):
        raise PublishedActivityHostOnly()
    if draft.community_id != activity.community_id:
        raise ValidationFailed({"community_id": ["活动所在社区不能修改"]})
    _validate(draft, now)
    _require_seats_for_signups(activity, draft.capacity)
    before = stage_of(activity)
    if before == Stage.ORG_APPROVED:
        move_activity(activity, Stage.PROPOSED, actor, comment="活动内容已修改，重新审批", now=now)
    times_moved, venue_moved = _apply(activity, draft)
    edit = audit("activity.edit", actor=actor, target=activity,
                 detail={"from_stage": str(before), "stage": str(stage_of(activity))})
    if activity.status == ActivityStatus.PUBLISHED and (times_moved or venue_moved):
        notifications.activity_moved(activity, edit, venue_moved)  # a proposal has nobody signed up
    db.session.commit()
    return activity


def _apply(activity: Activity, draft: ActivityDraft) -> tuple[bool, bool]:
    """Write the draft into the activity: (whether its time changed, whether its venue moved). The radius is
    not a move: members go to the same spot."""
    times_moved = (activity.starts_at, activity.ends_at) != (draft.starts_at, draft.ends_at)
    venue_moved = (activity.venue_lat, activity.venue_lng) != (draft.venue.lat, draft.venue.lng)
    activity.title, activity.item_code = draft.title, draft.item_code
    activity.starts_at, activity.ends_at, activity.capacity = draft.starts_at, draft.ends_at, draft.capacity
    activity.venue_lat, activity.venue_lng, activity.radius_m = draft.venue.lat, draft.venue.lng, draft.venue.radius_m
    return times_moved, venue_moved


def _require_seats_for_signups(activity: Activity, capacity: int | None) -> None:
    """A capacity is the sign-ups' limit: it may not go below the members signed up (409 naming how many). The
    caller has locked the activity row (``lock_activity``), as a sign-up locks it to count the seats: none slips in
    between."""
    if capacity is None:
        return
    if (taken := _seats_taken(activity.id)) > capacity:
        raise CapacityBelowSignups(taken)


def lock_activity(activity: Activity, *, reread: bool) -> None:
    """Lock the activity's row FOR UPDATE (PostgreSQL), for a change allowed only while nobody has checked in (an
    edit, a cancel): a check-in's INSERT reads the row FOR SHARE, only while it is published as the check-in was
    judged (``checkin.scans``), so a check-in counted after this lock is committed already and one not yet written
    waits for the change and then sees it. A sign-up locks it too, to count the seats. ``reread``: load the row
    as locked into ``activity`` (else it keeps what was read, for a compare-and-set to decide on)."""
    if reread:
        db.session.refresh(activity, with_for_update=True)
    else:
        db.session.execute(sa.select(Activity.id).where(Activity.id == activity.id).with_for_update())


def may_edit(actor: Principal, activity: Activity) -> bool:
    """Whether this manager of the activity may change it: a proposal, its managers (the proposing
    organization's and the host community's); a published activity, only the host community's admins, since
    the proposing organization would otherwise change what the community accepted."""
    if activity.status == ActivityStatus.PUBLISHED:
        return allowed(actor, "activity.accept", activity)
    return allowed(actor, "activity.manage", activity)


def activity_items(now: datetime | None = None) -> list:
    """The policy items an activity may score now (what a publishing form offers)."""
    items = policy_in_force(now or utcnow()).items
    return [item for code, item in items.items() if _item_problem(code, now or utcnow()) is None]


def visible_activities(principal: Principal) -> ColumnElement[bool]:
    """SQL filter: published (and cancelled) activities for everyone; the others to those who manage them."""
    if principal.is_admin:
        return sa.true()
    clauses: list[ColumnElement[bool]] = [Activity.status.in_(PUBLIC_STATUSES)]
    if (regions := nodes_in_scope(principal, Region, Role.COMMUNITY_ADMIN)) is not None:
        clauses.append(Activity.community_id.in_(regions))
    if (orgs := nodes_in_scope(principal, Organization, *ORG_MANAGERS)) is not None:
        clauses.append(Activity.proposed_by_org_id.in_(orgs))
    return sa.or_(*clauses)


def list_activities(principal: Principal, *, community_id: int | None = None, start: datetime | None = None,
                    end: datetime | None = None) -> sa.Select:
    """Activities overlapping [start, end), soonest first."""
    statement = sa.select(Activity).where(visible_activities(principal)).order_by(Activity.starts_at, Activity.id)
    if community_id is not None:
        statement = statement.where(Activity.community_id == community_id)
    if start is not None:
        statement = statement.where(Activity.ends_at > start)
    if end is not None:
        statement = statement.where(Activity.starts_at < end)
    return statement


def signed_up_by(principal: Principal) -> ColumnElement[bool]:
    """SQL: whether the principal's member has a live sign-up for the activity (a withdrawn one is kept with
    status withdrawn, so it does not count). Always false for an account that is no member (staff)."""
    if principal.member_id is None:
        return sa.false()
    return sa.exists().where(Signup.activity_id == Activity.id, Signup.member_id == principal.member_id,
                             Signup.status == SignupStatus.SIGNED_UP)


def with_signed_up(statement: sa.Select, principal: Principal) -> sa.Select:
    """The statement loading ``Activity.signed_up`` for the principal in the same query (an EXISTS on the
    UNIQUE(activity, member) index per row). Loaded activities are refreshed: one already in the session
    would otherwise keep an unloaded ``signed_up``."""
    return (statement.options(with_expression(Activity.signed_up, signed_up_by(principal)))
            .execution_options(populate_existing=True))


def get_activity(principal: Principal, activity_id: int) -> Activity:
    return _seen_by(principal, db.session.get(Activity, activity_id))


def view_activity(principal: Principal, activity_id: int) -> Activity:
    """``get_activity`` with ``signed_up`` loaded for the principal, in the same query."""
    statement = with_signed_up(sa.select(Activity).where(Activity.id == activity_id), principal)
    return _seen_by(principal, db.session.scalar(statement))


def _seen_by(principal: Principal, activity: Activity | None) -> Activity:
    # An activity the caller may not see does not exist for him (no existence leak).
    if activity is None or not (activity.status in PUBLIC_STATUSES
                                or allowed(principal, "activity.manage", activity)):
        raise NotFound("活动不存在")
    return activity


def sign_up(actor: Principal, activity_id: int, *, now: datetime | None = None) -> Signup:
    """Sign the acting member up. The activity row is locked while the seats are counted (PostgreSQL),
    so concurrent sign-ups never exceed the capacity; UNIQUE(activity, member) refuses doubles."""
    member_id, now = acting_member(actor), now or utcnow()
    activity = _open_activity(activity_id, now, lock=True)
    lock_active_member(member_id)  # after the activity, as an activity's consequences lock its members
    signup = db.session.scalar(sa.select(Signup).where(Signup.activity_id == activity.id,
                                                       Signup.member_id == member_id))
    if signup is not None and signup.status == SignupStatus.SIGNED_UP:
        raise AlreadySignedUp()
    if activity.capacity is not None and _seats_taken(activity.id) >= activity.capacity:
        raise ActivityFull()
    if signup is None:
        signup = Signup(activity_id=activity.id, member_id=member_id, created_at=now)
        db.session.add(signup)
    signup.status = SignupStatus.SIGNED_UP  # a withdrawn member may sign up again
    try:
        db.session.commit()
    except IntegrityError:
        db.session.rollback()
        raise AlreadySignedUp() from None
    return signup


def withdraw(actor: Principal, activity_id: int, *, now: datetime | None = None) -> Signup:
    """Withdraw the acting member's sign-up; only before the activity starts."""
    member_id = acting_member(actor)
    activity = _open_activity(activity_id, now or utcnow(), lock=False)
    withdrawn = db.session.execute(sa.update(Signup).where(
        Signup.activity_id == activity.id, Signup.member_id == member_id,
        Signup.status == SignupStatus.SIGNED_UP,
    ).values(status=SignupStatus.WITHDRAWN))
    if withdrawn.rowcount != 1:
        raise NotSignedUp()
    db.session.commit()
    return db.session.scalar(sa.select(Signup).where(Signup.activity_id == activity.id,
                                                     Signup.member_id == member_id))


def acting_member(actor: Principal) -> int:
    if actor is None or actor.member_id is None:
        raise Forbidden("仅党员本人可以操作", code="member_required")
    return actor.member_id


def _open_activity(activity_id: int, now: datetime, *, lock: bool) -> Activity:
    statement = sa.select(Activity).where(Activity.id == activity_id)
    activity = db.session.scalar(statement.with_for_update() if lock else statement)
    if activity is None:
        raise NotFound("活动不存在")
    require_published(activity)
    if now >= activity.starts_at:
        raise SignupClosed()
    return activity


def require_published(activity) -> None:
    """Sign-ups and check-ins go to a published activity: a proposal answers like a missing one, a cancelled
    activity 409 ``activity_cancelled``, a rejected one 409 ``activity_not_open``."""
    if activity.status == ActivityStatus.PROPOSED:
        raise NotFound("活动不存在")
    if activity.status == ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    if activity.status != ActivityStatus.PUBLISHED:
        raise ActivityNotOpen()


def has_checkins(activity_id: int) -> bool:
    return db.session.scalar(sa.select(sa.exists().where(Checkin.activity_id == activity_id)))


def _seats_taken(activity_id: int) -> int:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Signup).where(
        Signup.activity_id == activity_id, Signup.status == SignupStatus.SIGNED_UP))

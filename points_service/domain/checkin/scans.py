"""Verified check-in and check-out (扫码签到/签退), and the review of suspicious check-ins.

The organizer's screen shows a rotating signed token (``checkin_code``); the member posts it with his
location. The server checks, on its own clock only: the token (constant time, this activity, current or
previous step), the time window, and the geofence (haversine distance ≤ radius). One check-in per
member and activity is guaranteed by UNIQUE(activity_id, member_id), not by a check in Python.

Raw coordinates are used for one distance and dropped: only the rounded distance and the verdict are
stored. A plausible but suspicious check-in (poor accuracy, two far-apart venues within minutes) is
accepted in status ``review`` and credits nothing until a community admin approves it.

Check-out credits the hours (see ``tokens.service_hours``) in the same transaction, through
the points engine, which applies the item's per-activity maximum and caps. Signing up beforehand is
not required (walk-ins are common).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, fields
from datetime import datetime, timedelta

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import joinedload
from sqlalchemy.orm.attributes import set_committed_value

from points_service.db import (
    UTCDateTime,
    commit_keeping,
    compiled_text,
    core_execute,
    db,
    dialect_insert,
    to_points,
    utcnow,
)
from points_service.domain.access import Principal, authorize, authorize_or_hide
from points_service.domain.activities.signups import (
    ActivityCancelled,
    acting_member,
    get_activity,
    require_published,
)
from points_service.domain.audit import audit
from points_service.domain.checkin import tokens as rules
from points_service.domain.errors import Conflict, Forbidden, InvalidTransition, NotFound, ServiceError
from points_service.domain.ledger.credit import Fact, credit
from points_service.domain.policy import Policy, policy_in_force
from points_service.models import (
    Activity,
    ActivityStatus,
    ApprovalEvent,
    Checkin,
    CheckinStatus,
    Member,
    SourceType,
    SubjectType,
)
from points_service.transactions import end_transaction, writes_together

MAX_TRUSTED_ACCURACY_M = 200  # a fix worse than this cannot tell whether the member was really there
IMPOSSIBLE_TRAVEL_M = 5000  # another venue this far away ...
IMPOSSIBLE_TRAVEL_WINDOW = timedelta(minutes=30)  # ... within this long is implausible
DEFAULT_STEP_SECONDS = 30
# What a check-in is judged by that an edit may change: its INSERT writes only while the activity still holds them.
HELD_RULES = ("starts_at", "ends_at", "venue_lat", "venue_lng", "radius_m")
CHECKIN_ATTEMPTS = 3  # a scan judged anew after an edit, at most this often
CHECKIN_WITH_ACTIVITY_AND_MEMBER = (joinedload(Checkin.activity), joinedload(Checkin.member))


@dataclass(frozen=True)
class CheckinRules:
    """What the check-in rules read of an activity (the attributes ``_verify_token`` and the others read of an
    ``Activity`` on the check-out's path)."""

    id: int
    status: ActivityStatus
    checkin_secret: str
    starts_at: datetime
    ends_at: datetime
    venue_lat: float
    venue_lng: float
    radius_m: int


CHECKIN_RULE_COLUMNS = tuple(field.name for field in fields(CheckinRules))


@dataclass(frozen=True)
class CheckedIn:
    """A check-in as its INSERT wrote it: the answer, dumped like a ``Checkin``."""

    id: int
    activity_id: int
    member_id: int
    member_name: str
    status: CheckinStatus
    checked_in_at: datetime
    checkin_distance_m: int
    review_reason: str
    checked_out_at: None = None
    checkout_distance_m: None = None
    hours: None = None


class CheckinTokenInvalid(ServiceError):
    status, code, message = 422, "checkin_token_invalid", "签到码无效或已过期，请重新扫码"


class OutsideGeofence(ServiceError):
    status, code, message = 422, "outside_geofence", "您不在活动地点范围内"


class OutsideTimeWindow(ServiceError):
    status, code, message = 422, "outside_time_window", "不在签到或签退时间内"


class AlreadyCheckedIn(Conflict):
    """Carries the existing check-in's id (``data.checkin_id``): a phone that lost the first answer, or another
    phone, learns what to check out."""

    code, message = "already_checked_in", "您已签到，请勿重复签到"


class ActivityChanged(Conflict):
    """The activity's time or venue was edited again each time the scan was judged anew (``CHECKIN_ATTEMPTS``)."""

    code, message = "activity_changed", "活动时间或地点刚刚修改，请重新扫码签到"


class AlreadyCheckedOut(Conflict):
    code, message = "already_checked_out", "您已签退"


@dataclass(frozen=True)
class Scan:
    """What the mini-program posts after scanning: the token and where the phone is (never stored)."""

    token: str
    lat: float
    lng: float
    accuracy_m: float | None = None


def step_seconds() -> int:
    return int(current_app.config.get("CHECKIN_TOKEN_STEP_SECONDS", DEFAULT_STEP_SECONDS))


def checkin_code(actor: Principal, activity_id: int, *, now: datetime | None = None) -> rules.IssuedToken:
    """The token the organizer's screen shows now (as a QR or mini-program code)."""
    activity = _managed_activity(actor, activity_id)
    if activity.status == ActivityStatus.CANCELLED:
        raise ActivityCancelled()
    if activity.status != ActivityStatus.PUBLISHED:
        raise InvalidTransition("活动尚未发布，不能签到")
    return rules.issue_token(activity.id, activity.checkin_secret, now or utcnow(), step_seconds())


def check_in(actor: Principal, activity_id: int, scan: Scan, *, now: datetime | None = None) -> CheckedIn:
    """One round trip reads what the rules need, one INSERT … SELECT … ON CONFLICT DO NOTHING writes, one commit;
    the answer is what was written. The INSERT selects from the activity's row, locked FOR SHARE, only while it is
    published with the rules it was checked against (``_insert_checkin``): a cancel or an edit, which lock it FOR
    UPDATE before counting check-ins, is waited for, and one written meanwhile leaves nothing written. The UNIQUE
    key decides a repeated or concurrent check-in (409 with the id of the one kept). The API runs it
    ``autocommitted``: the INSERT alone commits as it runs; with a review event or a deduction,
    ``writes_together`` makes them one transaction."""
    member_id, now = acting_member(actor), now or utcnow()
    activity, member_name, recent_venues = _checkin_context(activity_id, member_id, now)
    for _ in range(CHECKIN_ATTEMPTS):
        checkin = _write_check_in(actor, activity, member_id, member_name, recent_venues, scan, now)
        if checkin is not None:
            return checkin
        # Nothing written: checked in already, or the activity changed since it was read (rare: read it again).
        activity, member_name, recent_venues = _not_written(activity_id, member_id, now)
    raise ActivityChanged()


def _write_check_in(actor: Principal, activity: CheckinRules, member_id: int, member_name: str,
                    recent_venues: list, scan: Scan, now: datetime) -> CheckedIn | None:
    """The check-in verified against ``activity`` and written, or None when its INSERT wrote nothing."""
    _verify_token(activity, scan, now)
    if not rules.checkin_open(activity.starts_at, activity.ends_at, now):
        raise OutsideTimeWindow(f"不在签到时间内（开始前 {_minutes(rules.CHECKIN_OPENS_BEFORE_START)} 分钟至结束）")
    distance = _verify_geofence(activity, scan)
    reason, late = _review_reason(activity, scan, recent_venues), rules.is_late(activity.starts_at, now)
    if reason or late:  # the check-in with its review event or its deduction: one transaction
        writes_together(db.session())
    values = {"activity_id": activity.id, "member_id": member_id, "checked_in_at": now,
              "checkin_distance_m": round(distance), "review_reason": reason,
              "status": CheckinStatus.REVIEW if reason else CheckinStatus.CHECKED_IN}
    checkin_id = _insert_checkin(values, activity)
    if checkin_id is None:
        return None
    checkin = CheckedIn(id=checkin_id, member_name=member_name, **values)
    if reason:
        _event(checkin, "", CheckinStatus.REVIEW, actor, reason)
    if late:
        deduct(checkin.member_id, "late", SourceType.CHECKIN, str(checkin.id), occurred_at=now, at=now,
               actor=actor)
    db.session.commit()
    return checkin


def _insert_checkin(values: dict, activity: CheckinRules) -> int | None:
    """INSERT the check-in (``values``) selecting from its activity's row, locked FOR SHARE, while it is published
    with the rules ``activity`` holds (``HELD_RULES``); ON CONFLICT (activity, member) DO NOTHING; RETURNING its
    id, or None when nothing was written. One statement, compiled once. A writer holding the row FOR UPDATE (a
    cancel, an edit) is waited for and the row read as it left it (PostgreSQL re-checks the conditions on it).
    SQLite ignores FOR SHARE: its writers are serialized."""
    dialect_name = db.session.get_bind().dialect.name
    held = {f"held_{name}": getattr(activity, name) for name in HELD_RULES}
    return core_execute(_checkin_insert(dialect_name, tuple(values)), values | held).scalar()


@functools.cache
def _checkin_insert(dialect_name: str, columns: tuple[str, ...]) -> sa.TextClause:
    checkins, activities = Checkin.__table__, Activity.__table__
    values = {name: sa.bindparam(name, type_=checkins.c[name].type) for name in columns}
    while_held = sa.select(*values.values()).where(
        activities.c.id == values["activity_id"], activities.c.status == ActivityStatus.PUBLISHED,
        *(activities.c[name] == sa.bindparam(f"held_{name}", type_=activities.c[name].type) for name in HELD_RULES),
    ).with_for_update(read=True)
    statement = (dialect_insert(dialect_name, Checkin).from_select(list(columns), while_held)
                 .on_conflict_do_nothing(index_elements=["activity_id", "member_id"]).returning(checkins.c.id))
    return compiled_text(statement, dialect_name)


def _not_written(activity_id: int, member_id: int, now: datetime) -> tuple[CheckinRules, str, list]:
    """Why a check-in's INSERT wrote nothing, on this path only: his check-in is there (the UNIQUE key: 409
    ``already_checked_in`` naming it; the INSERT waited for a concurrent one to commit, so the row is there to
    read), the activity is no longer published (cancelled while he scanned: ``require_published``'s answer), or
    it was edited meanwhile: its rules as they are now, to judge the scan again."""
    existing = db.session.scalar(sa.select(Checkin.id).where(Checkin.activity_id == activity_id,
                                                             Checkin.member_id == member_id))
    if existing is not None:
        end_transaction(db.session())  # it wrote nothing: a COMMIT keeps the worker's prepared statements
        raise AlreadyCheckedIn(data={"checkin_id": existing})
    try:
        return _checkin_context(activity_id, member_id, now)
    finally:
        end_transaction(db.session())  # and the next INSERT is its transaction's one write (``autocommitted``)


def check_out(actor: Principal, checkin_id: int, scan: Scan, *, now: datetime | None = None) -> Checkin:
    """Check out; credits the hours at once unless the check-in is under review."""
    member_id, now = acting_member(actor), now or utcnow()
    # One statement for the check-in, its activity (the rules) and its member (the answer).
    checkin = db.session.get(Checkin, checkin_id, options=CHECKIN_WITH_ACTIVITY_AND_MEMBER)
    if checkin is None or checkin.member_id != member_id:
        raise NotFound("签到记录不存在")
    if checkin.checked_out_at is not None:
        raise AlreadyCheckedOut()
    if checkin.status not in (CheckinStatus.CHECKED_IN, CheckinStatus.REVIEW):
        raise InvalidTransition("该签到已结束，不能签退")
    activity = checkin.activity
    if activity.status == ActivityStatus.CANCELLED:  # a check-in that slipped in while it was being cancelled
        raise ActivityCancelled()
    _verify_token(activity, scan, now)
    if not rules.checkout_open(activity.starts_at, activity.ends_at, checkin.checked_in_at, now):
        raise OutsideTimeWindow(
            f"不在签退时间内（活动开始后至结束后 {_minutes(rules.CHECKOUT_CLOSES_AFTER_END)} 分钟内）")
    distance = _verify_geofence(activity, scan)
    hours = to_points(rules.service_hours(activity.starts_at, activity.ends_at, checkin.checked_in_at, now))
    # A check-in under review stays in review: its hours are kept and credited on approval.
    target = CheckinStatus.CHECKED_OUT if checkin.status == CheckinStatus.CHECKED_IN else CheckinStatus.REVIEW
    if not _transition(checkin, checkin.status, target, Checkin.checked_out_at.is_(None), checked_out_at=now,
                       checkout_distance_m=round(distance), hours=hours):
        raise AlreadyCheckedOut()
    if target == CheckinStatus.CHECKED_OUT:
        _credit_hours(checkin, actor, now)
    commit_keeping(checkin, activity, checkin.member)  # the answer is dumped from them, not reloaded
    return checkin


def resolve_review(actor: Principal, checkin_id: int, approve: bool, *, comment: str = "",
                   now: datetime | None = None) -> Checkin:
    """A community admin approves (hours credited if already checked out) or rejects (nothing credited)."""
    now = now or utcnow()
    checkin = db.session.get(Checkin, checkin_id)
    if checkin is None:
        raise NotFound("签到记录不存在")
    own = actor.member_id is not None and actor.member_id == checkin.member_id
    if not own:  # another community's check-in answers like a missing one
        authorize_or_hide(actor, "region.administer", checkin.activity.community, NotFound("签到记录不存在"))
    if own:
        raise Forbidden("不能审核自己的签到", code="self_review")
    checked_out = checkin.checked_out_at is not None
    if not approve:
        target = CheckinStatus.REJECTED
    else:
        target = CheckinStatus.CHECKED_OUT if checked_out else CheckinStatus.CHECKED_IN
    # The decision holds only for the check-out state it was made on (a concurrent check-out loses or wins).
    same_checkout = Checkin.checked_out_at.is_not(None) if checked_out else Checkin.checked_out_at.is_(None)
    if not _transition(checkin, CheckinStatus.REVIEW, target, same_checkout):
        raise InvalidTransition("该签到不在待审核状态")
    _event(checkin, CheckinStatus.REVIEW, target, actor, comment)
    audit("checkin.review", actor=actor, target=checkin, detail={"decision": str(target), "comment": comment})
    if target == CheckinStatus.CHECKED_OUT:
        _credit_hours(checkin, actor, now)
    db.session.commit()
    return checkin


def list_checkins(actor: Principal, activity_id: int, status: CheckinStatus | None = None) -> sa.Select:
    """The organizer's view of an activity's check-ins (with the review queue as ``status=review``)."""
    activity = _managed_activity(actor, activity_id)
    statement = sa.select(Checkin).where(Checkin.activity_id == activity.id).order_by(Checkin.id)
    return statement if status is None else statement.where(Checkin.status == status)


def _managed_activity(actor: Principal, activity_id: int) -> Activity:
    """An activity its caller manages: 404 when he may not even see it, 403 when he sees but does not manage it."""
    activity = get_activity(actor, activity_id)
    authorize(actor, "activity.manage", activity)
    return activity


def _activity(activity_id: int) -> Activity:
    activity = db.session.get(Activity, activity_id)
    if activity is None:
        raise NotFound("活动不存在")
    return activity


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)


def _verify_token(activity: Activity | CheckinRules, scan: Scan, now: datetime) -> None:
    if not rules.token_is_valid(scan.token, activity.id, activity.checkin_secret, now, step_seconds()):
        raise CheckinTokenInvalid()


def _verify_geofence(activity: Activity | CheckinRules, scan: Scan) -> float:
    distance = rules.haversine_m(activity.venue_lat, activity.venue_lng, scan.lat, scan.lng)
    if distance > activity.radius_m:
        raise OutsideGeofence(f"您距活动地点约 {round(distance)} 米，超出 {activity.radius_m} 米的签到范围")
    return distance


def _review_reason(activity: Activity | CheckinRules, scan: Scan, recent_venues: list[tuple[float, float]]) -> str:
    reasons = []
    if scan.accuracy_m is not None and scan.accuracy_m > MAX_TRUSTED_ACCURACY_M:
        reasons.append(f"定位精度差（±{round(scan.accuracy_m)} 米）")
    far = max((rules.haversine_m(activity.venue_lat, activity.venue_lng, lat, lng) for lat, lng in recent_venues),
              default=0.0)
    if far > IMPOSSIBLE_TRAVEL_M:
        reasons.append(f"30 分钟内曾在相距约 {far / 1000:.1f} 公里的另一活动签到")
    return "；".join(reasons)


def _checkin_context(activity_id: int, member_id: int, now: datetime) -> tuple[CheckinRules, str, list]:
    """What the rules read of the published activity, the member's name (for the answer), and the venues of
    the member's other check-ins of the last ``IMPOSSIBLE_TRAVEL_WINDOW`` (for the impossible-travel rule), in
    one statement of plain rows: the hot path loads no ORM object."""
    rows = core_execute(_checkin_context_statement(), {
        "activity_id": activity_id, "member_id": member_id, "since": now - IMPOSSIBLE_TRAVEL_WINDOW, "now": now,
    }).all()
    if not rows:
        raise NotFound("活动不存在")
    activity = CheckinRules(*rows[0][:len(CHECKIN_RULE_COLUMNS)])
    require_published(activity)
    return activity, rows[0].member_name, [(row.other_lat, row.other_lng) for row in rows if row.other_lat is not None]


@functools.cache
def _checkin_context_statement() -> sa.Select:
    activities, members = Activity.__table__, Member.__table__
    other, venue = Checkin.__table__.alias("other"), activities.alias("venue")
    joined = (activities.outerjoin(members, members.c.id == sa.bindparam("member_id"))
              .outerjoin(other, sa.and_(other.c.member_id == members.c.id, other.c.activity_id != activities.c.id,
                                        other.c.checked_in_at > sa.bindparam("since", type_=UTCDateTime()),
                                        other.c.checked_in_at <= sa.bindparam("now", type_=UTCDateTime())))
              .outerjoin(venue, venue.c.id == other.c.activity_id))
    return (sa.select(*(activities.c[name] for name in CHECKIN_RULE_COLUMNS), members.c.name.label("member_name"),
                      venue.c.venue_lat.label("other_lat"), venue.c.venue_lng.label("other_lng"))
            .select_from(joined).where(activities.c.id == sa.bindparam("activity_id")))


def _transition(checkin: Checkin, expected: CheckinStatus, target: CheckinStatus, *conditions, **values) -> bool:
    """Compare-and-set on the status (plus ``conditions``): of two concurrent writers one wins, on
    SQLite as on PostgreSQL, without relying on row locks."""
    changed = db.session.execute(
        sa.update(Checkin).where(Checkin.id == checkin.id, Checkin.status == expected, *conditions)
        .values(status=target, **values).execution_options(synchronize_session=False))
    if changed.rowcount != 1:
        return False
    for name, value in {"status": target, **values}.items():  # what the UPDATE wrote: no reload
        set_committed_value(checkin, name, value)
    return True


def _credit_hours(checkin: Checkin, actor: Principal | None, now: datetime) -> None:
    if not checkin.hours:  # under half an hour inside the window: nothing to credit
        return
    policy = policy_in_force(now)
    credit(Fact(SubjectType.MEMBER, checkin.member_id, _hours_item(checkin.activity, policy), SourceType.CHECKIN,
                str(checkin.id), occurred_at=checkin.checked_out_at, units=checkin.hours),
           actor_id=actor.user_id if actor else None, at=now, policy=policy)


def _hours_item(activity: Activity, policy: Policy) -> str:
    # A later policy version may have dropped the activity's item: fall back to the workflow hook.
    return activity.item_code if activity.item_code in policy.items else policy.events["activity_hours"]


def deduct(member_id: int, event: str, source_type: SourceType, source_id: str, *, occurred_at: datetime,
           at: datetime | None = None, actor: Principal | None = None, policy: Policy | None = None) -> None:
    """Credit the policy's item for a workflow event (late, no_show, no_checkout) once per source. Flushes."""
    policy = policy or policy_in_force(at or utcnow())
    credit(Fact(SubjectType.MEMBER, member_id, policy.events[event], source_type, source_id, occurred_at=occurred_at),
           actor_id=actor.user_id if actor else None, at=at, policy=policy)


def _event(checkin: Checkin | CheckedIn, from_status: str, to_status: str, actor: Principal | None,
           comment: str) -> None:
    db.session.add(ApprovalEvent(target_type="checkin", target_id=checkin.id, from_status=str(from_status),
                                 to_status=str(to_status), actor_id=actor.user_id if actor else None,
                                 comment=comment[:200]))

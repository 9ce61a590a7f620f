"""The demo's recent past: confirmed reports, finished activities with check-ins, approved records.

Everything goes through the real models and the ledger's ``credit`` (caps, totals, idempotency keys), so
the demo's points are consistent with its facts: every award has its confirmed report, checked-out
check-in or approved record. Dates fall in the last ``HISTORY_DAYS`` days, never in the future.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.ledger.credit import Fact, credit
from points_service.domain.periods import PeriodKind, period_containing
from points_service.domain.policy import policy_in_force
from points_service.models import (
    Activity,
    ActivityStatus,
    Checkin,
    CheckinStatus,
    Record,
    RecordStatus,
    Report,
    ReportStatus,
    SourceType,
    SubjectType,
    User,
)

HISTORY_DAYS = 120
SHARE_REPORTED = 0.6
ACTIVITIES_PER_COMMUNITY = 3
ATTENDEES_PER_ACTIVITY = (5, 12)
SELF_REPORTS = 200
SELF_REPORT_ITEMS = ("member.micro_wish", "member.pairing_visit", "member.grid_problem")


def seed_history(city) -> None:
    now = utcnow().replace(microsecond=0)
    policy = policy_in_force(now)
    _confirmed_reports(city, now)
    _finished_activities(city, now)
    # Records need a submitting account; the demo's first console account stands in for the members.
    submitter = db.session.scalar(sa.select(User.id).where(User.username == city.accounts[0].username))
    _approved_records(city, now, policy, submitter)
    db.session.flush()


def _past(city, now, max_days: int = HISTORY_DAYS):
    return now - timedelta(days=city.rng.randint(1, max_days), minutes=city.rng.randint(0, 600))


def _confirmed_reports(city, now) -> None:
    for member in city.rng.sample(city.members, int(len(city.members) * SHARE_REPORTED)):
        at = _past(city, now)
        report = Report(subject_type=SubjectType.MEMBER, subject_id=member.id, community_id=member.community_id,
                        half=period_containing(at, PeriodKind.HALF).key, status=ReportStatus.CONFIRMED,
                        submitted_at=at - timedelta(days=1), decided_at=at)
        db.session.add(report)
        db.session.flush()
        _credit(SubjectType.MEMBER, member.id, "member.report", SourceType.REPORT, report.id, at, 1)


def _finished_activities(city, now) -> None:
    residents: dict[int, list] = {}
    for member in city.members:
        residents.setdefault(member.community_id, []).append(member)
    for community in city.communities:
        for _ in range(ACTIVITIES_PER_COMMUNITY):
            starts = (now - timedelta(days=city.rng.randint(2, HISTORY_DAYS))).replace(hour=1, minute=0, second=0)
            activity = Activity(community_id=community.id, title=city.rng.choice(ACTIVITY_TITLES),
                                item_code="member.activity_hour", starts_at=starts, ends_at=starts + timedelta(hours=3),
                                venue_lat=35.41 + city.rng.random() / 10, venue_lng=116.58 + city.rng.random() / 10,
                                radius_m=200, capacity=None, status=ActivityStatus.PUBLISHED,
                                checkin_secret=secrets.token_hex(32))
            db.session.add(activity)
            db.session.flush()
            pool = residents.get(community.id, [])
            for member in city.rng.sample(pool, min(len(pool), city.rng.randint(*ATTENDEES_PER_ACTIVITY))):
                _attend(city, activity, member)


def _attend(city, activity, member) -> None:
    hours = Decimal(city.rng.choice([1, 1.5, 2, 2.5, 3]))
    checkin = Checkin(activity_id=activity.id, member_id=member.id, status=CheckinStatus.CHECKED_OUT,
                      checked_in_at=activity.starts_at, checkin_distance_m=city.rng.randint(0, 150),
                      checked_out_at=activity.starts_at + timedelta(hours=float(hours)),
                      checkout_distance_m=city.rng.randint(0, 150), hours=hours)
    db.session.add(checkin)
    db.session.flush()
    _credit(SubjectType.MEMBER, member.id, "member.activity_hour", SourceType.CHECKIN, checkin.id,
            checkin.checked_out_at, hours)


def _approved_records(city, now, policy, submitter: int) -> None:
    for member in city.rng.sample(city.members, min(SELF_REPORTS, len(city.members))):
        item = policy.item(city.rng.choice(SELF_REPORT_ITEMS))
        at = _past(city, now)
        route = member.branch_id if item.approval == "branch_secretary" else member.community_id
        record = Record(subject_type=SubjectType.MEMBER, subject_id=member.id, item_code=item.code,
                        occurred_at=at - timedelta(days=1), units=Decimal(1), description=city.rng.choice(RECORD_TEXTS),
                        evidence=[], status=RecordStatus.APPROVED, route_role=item.approval, route_scope_id=route,
                        submitted_by_id=submitter, submitted_at=at - timedelta(hours=20), decided_at=at)
        db.session.add(record)
        db.session.flush()
        _credit(SubjectType.MEMBER, member.id, item.code, SourceType.RECORD, record.id, at, 1)


def _credit(subject_type, subject_id, item_code, source_type, source_id, at, units) -> None:
    credit(Fact(subject_type, subject_id, item_code, source_type, str(source_id), at, Decimal(units)), at=at)


ACTIVITY_TITLES = ("固定服务日：清理楼道杂物", "文明城市创建志愿服务", "关爱独居老人上门走访", "社区垃圾分类宣传",
                   "反诈宣传进小区", "防汛隐患排查", "义诊进社区", "四点半课堂辅导")
RECORD_TEXTS = ("帮助独居老人购买生活用品", "为困难家庭孩子送去学习用品", "巡查发现楼道堵塞并协调清理",
                "走访结对帮扶户，了解生活需求", "协助调解邻里纠纷")

"""Factories for records and approvals tests: submissions, submitted records and proposed activities."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from points_service.db import db, utcnow
from points_service.domain.access import Principal, principal_for
from points_service.domain.approvals import records
from points_service.domain.approvals.records import Submission
from points_service.models import (
    ROLE_SCOPE,
    Activity,
    ActivityStatus,
    Organization,
    Record,
    Region,
    Role,
    RoleGrant,
    User,
)
from tests.factories.activities import make_activity
from tests.factories.ledger import local

NOW = local(2026, 11, 10, 10)
YESTERDAY = NOW - timedelta(days=1)
EVIDENCE = ("https://img.example.cn/wish/1.jpg",)


def as_user(user: User) -> Principal:
    return principal_for(user)


def grant(user: User, role: Role, scope_id: int | None) -> User:
    """Give an existing account one more role (e.g. a member who is also his branch's secretary)."""
    db.session.add(RoleGrant(user_id=user.id, role=role, scope_type=ROLE_SCOPE[role], scope_id=scope_id))
    db.session.commit()
    db.session.refresh(user)
    return user


def submission(item_code: str = "member.self_service_hour", *, hours=2, occurred_at: datetime = YESTERDAY,
               description: str = "为独居老人代购药品", evidence: tuple[str, ...] = EVIDENCE,
               request_key: str | None = None) -> Submission:
    return Submission(item_code=item_code, occurred_at=occurred_at, description=description, evidence=evidence,
                      hours=None if hours is None else Decimal(str(hours)), request_key=request_key)


def self_report(user: User, item_code: str = "member.self_service_hour", **overrides) -> Record:
    """``user`` (a member's account) self-reports; hours are dropped for items counted in times."""
    overrides.setdefault("hours", 2 if item_code.endswith("_hour") else None)
    now = overrides.pop("now", NOW)
    return records.submit_member_record(as_user(user), submission(item_code, **overrides), now=now)


def org_record(user: User, org: Organization, item_code: str = "org.project_done", **overrides) -> Record:
    now = overrides.pop("now", NOW)
    return records.submit_organization_record(as_user(user), org.id, submission(item_code, hours=None, **overrides),
                                              now=now)


def make_proposal(community: Region, org: Organization, *, created_by: User | None = None,
                  starts_at: datetime | None = None) -> Activity:
    """A proposed activity as the activities use case leaves it (status proposed, waiting for step 1), starting
    three days after ``NOW`` or after the clock, whichever is later: a proposal is approved before it starts."""
    starts_at = starts_at or max(NOW, utcnow()) + timedelta(days=3)
    activity = make_activity(community, starts_at, status=ActivityStatus.PROPOSED, proposed_by=org)
    activity.created_by_id = created_by.id if created_by else None
    db.session.commit()
    return activity

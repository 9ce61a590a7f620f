"""Factories for annual settlement and export tests: scores in 2025, reports, and a settled year."""

from __future__ import annotations

import uuid
from decimal import Decimal

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.annual.settlement import settle_year
from points_service.domain.ledger.corrections import adjust
from points_service.domain.ledger.credit import award
from points_service.models import Member, Report, ReportStatus, SubjectType
from tests.factories import make_member
from tests.factories.ledger import local, member_fact

YEAR = 2025


def admin_of(world):
    return principal_for(world["users"]["admin"])


def score(world, subject, points, at=None, subject_type: SubjectType = SubjectType.MEMBER):
    """An exact score for ``subject`` in 2025 (an audited admin adjustment credited at ``at``)."""
    return adjust(admin_of(world), subject_type, subject.id, Decimal(points), "年度测试加分",
                  request_key=uuid.uuid4().hex, at=at or local(YEAR, 6, 1, 9))


def deduct(member, item_code: str, at=None):
    """A policy deduction (no-show, falsified record) credited in 2025."""
    return award(member_fact(member, item_code, occurred_at=at or local(YEAR, 5, 1, 9)), at=at or local(YEAR, 5, 1, 9))


def reported(*subjects: Member, subject_type: SubjectType = SubjectType.MEMBER, half: str = f"{YEAR}-H1"):
    """A report confirmed in 2025 (members not reported are graded 差 by the veto)."""
    for subject in subjects:
        community_id = subject.community_id if subject_type == SubjectType.MEMBER else subject.paired_community_id
        db.session.add(Report(subject_type=subject_type, subject_id=subject.id, community_id=community_id,
                              half=half, status=ReportStatus.CONFIRMED, decided_at=local(YEAR, 3, 1)))
    db.session.commit()


def department_of(world, department, branch, community, scores: list, *, report: bool = True) -> list[Member]:
    """Members of ``branch`` with the given 2025 scores, reported unless told otherwise."""
    members = [make_member(branch, community) for _ in scores]
    db.session.commit()
    for member, points in zip(members, scores, strict=True):
        if points:
            score(world, member, points)
    if report:
        reported(*members)
    return members


def settled(world, year: int = YEAR):
    return settle_year(admin_of(world), year)

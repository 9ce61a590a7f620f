"""Outcome data on top of the browser seed (for screenshots): points over the last months for the board and
the monthly line, a proposed 业务之星 run for the last closed quarter, and a settled year for HR."""

from __future__ import annotations

from datetime import timedelta

import sqlalchemy as sa

from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.boards.pages import current_quarter
from points_service.domain.stars import runs as stars
from points_service.models import Member, Organization, Report, ReportStatus, SourceType, SubjectType, User
from tests.factories import make_member
from tests.factories.annual import YEAR, reported, score, settled
from tests.factories.boards import entry
from tests.factories.ledger import member_fact

NAMES = ["陈志强", "刘芳", "杨帆", "赵敏", "黄磊", "周婷", "吴昊", "徐静"]


def seed_outcomes(app) -> dict:
    with app.app_context():
        members = {m.name: m for m in db.session.scalars(sa.select(Member))}
        branches = {o.name: o for o in db.session.scalars(sa.select(Organization))}
        alice = members["张晓丽"]
        extra = [make_member(branches["财政局第一党支部" if n % 2 else "财政局第二党支部"], alice.community,
                             name=name) for n, name in enumerate(NAMES)]
        db.session.commit()
        everyone = [alice, members["李·建国"], members["王𠮷"], *extra]
        _monthly_points(everyone)
        world = {"users": {"admin": db.session.scalar(sa.select(User).where(User.username == "admin"))}}
        for n, member in enumerate(everyone):
            score(world, member, 96 - 6 * n)
        reported(*everyone[:-2])
        settled(world)
        quarter = current_quarter().previous()
        _quarter_service(everyone, quarter)
        run = stars.propose_star_run(principal_for(world["users"]["admin"]), quarter)
        return {"star_run": run.id, "year": YEAR}


def _monthly_points(members) -> None:
    now = utcnow()
    for months_back in range(6):
        for n, member in enumerate(members):
            points = (len(members) - n) * (months_back % 3 + 1) // 2 + 1
            entry(member, points, now - timedelta(days=30 * months_back))
    db.session.commit()


def _quarter_service(members, quarter) -> None:
    from points_service.domain.ledger.credit import award

    for n, member in enumerate(members):
        for day in range(max(1, 4 - n // 3)):
            award(member_fact(member, "member.activity_hour", units=2 + n % 3, source_type=SourceType.CHECKIN),
                  at=quarter.start + timedelta(days=10 + day, hours=10))
        if n % 4 != 3 and not _has_report(member, _half_of(quarter)):
            db.session.add(Report(subject_type=SubjectType.MEMBER, subject_id=member.id,
                                  community_id=member.community_id, half=_half_of(quarter),
                                  status=ReportStatus.CONFIRMED, decided_at=quarter.start + timedelta(days=1)))
    db.session.commit()


def _half_of(quarter) -> str:
    return f"{quarter.start_date.year}-H{1 if quarter.start_date.month <= 6 else 2}"


def _has_report(member, half: str) -> bool:
    return db.session.scalar(sa.select(sa.func.count()).select_from(Report).where(
        Report.subject_type == SubjectType.MEMBER, Report.subject_id == member.id, Report.half == half)) > 0

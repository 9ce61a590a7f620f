"""Factories for 业务之星 and 流动红旗 tests: a member who qualifies in 2026-Q3, and that quarter's run and flags
taken through the use cases. The facts are dated in 2026-Q3; proposing, publishing and awarding happen now (the
quarter has closed), so a run published here is in its publicity window."""

from __future__ import annotations

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.access import principal_for
from points_service.domain.ledger.credit import award
from points_service.domain.red_flags.awards import award_red_flags
from points_service.domain.reports.reporting import confirm_report, submit_member_report
from points_service.domain.stars import runs as stars
from points_service.models import Member, RedFlagAward, SourceType, StarCandidate, StarRun, User
from tests.factories.ledger import local, member_fact

QUARTER = "2026-Q3"


def qualify_for_stars(member_user: User, admin: User, *, activities: int = 3, hours: int = 4) -> Member:
    """The user's member qualifies for 2026-Q3's stars: checked-out activities in August (``hours`` points each)
    and his 2026-H2 report, submitted on 1 July and confirmed on 2 July (before the cutoff)."""
    member = db.session.get(Member, member_user.member_id)
    for day in range(1, activities + 1):
        award(member_fact(member, "member.activity_hour", units=hours, source_type=SourceType.CHECKIN),
              at=local(2026, 8, day, 18))
    report = submit_member_report(principal_for(member_user), member.community_id, now=local(2026, 7, 1, 9))
    confirm_report(principal_for(admin), report.id, now=local(2026, 7, 2, 9))
    return member


def published_star_run(admin: User, period: str = QUARTER) -> StarRun:
    """The quarter's run, proposed and published now: objections are open for its publicity window."""
    run = stars.propose_star_run(principal_for(admin), period)
    return stars.publish_star_run(principal_for(admin), run.id)


def star_award(run: StarRun, member: Member) -> StarCandidate:
    """The member's candidate row in the run (a winner's row is the award that withdrawals name)."""
    return db.session.scalar(sa.select(StarCandidate).where(StarCandidate.run_id == run.id,
                                                            StarCandidate.member_id == member.id))


def red_flag_of(admin: User, period: str = QUARTER) -> RedFlagAward:
    """The period's flag awarded now (the test city has one district, so one flag)."""
    [flag] = award_red_flags(principal_for(admin), period)
    return flag

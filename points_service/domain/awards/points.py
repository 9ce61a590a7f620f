"""Points for an award, when the policy names an item for it.

The optional policy events ``star_award`` (a member item) and ``red_flag_award`` (an organization item) name the
items: a 业务之星 winner is credited when the run is finalized, a 流动红旗 holder when the flag is awarded (awards
are frozen when written). Each goes through ``ledger.credit`` inside the caller's transaction, keyed by the award
(``star:{candidate id}``, ``red_flag:{award id}``), so it is written once; a withdrawal reverses exactly those
entries. A winner no longer active earns nothing (``ledger.credit`` refuses him), so he is skipped.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import Fact, credit
from points_service.domain.policy import policy_in_force
from points_service.models import (
    AwardType,
    AwardWithdrawal,
    Member,
    RedFlagAward,
    SourceType,
    StarCandidate,
    StarRun,
    SubjectType,
)

STAR_EVENT, RED_FLAG_EVENT = "star_award", "red_flag_award"


def source_id(award_type: AwardType, award_id: int) -> str:
    return f"{award_type}:{award_id}"


def credit_star_winners(run: StarRun, at: datetime) -> int:
    """Credit the run's winners (not withdrawn, still active) under the policy's ``star_award`` item; flushes."""
    policy = policy_in_force(at)
    item_code = policy.events.get(STAR_EVENT)
    if item_code is None:
        return 0
    withdrawn = sa.select(AwardWithdrawal.award_id).where(AwardWithdrawal.award_type == AwardType.STAR)
    winners = db.session.scalars(
        sa.select(StarCandidate).join(Member, Member.id == StarCandidate.member_id)
        .where(StarCandidate.run_id == run.id, StarCandidate.winner, Member.is_active,
               StarCandidate.id.not_in(withdrawn)).order_by(StarCandidate.id)).all()
    for winner in winners:
        credit(Fact(SubjectType.MEMBER, winner.member_id, item_code, SourceType.ADMIN,
                    source_id(AwardType.STAR, winner.id), at, reason=f"{run.period} 业务之星"), at=at, policy=policy)
    return len(winners)


def credit_red_flag(award: RedFlagAward, at: datetime) -> bool:
    """Credit the holder under the policy's ``red_flag_award`` item; flushes. False when nothing is credited."""
    policy = policy_in_force(at)
    item_code = policy.events.get(RED_FLAG_EVENT)
    if item_code is None or award.organization_id is None:
        return False
    credit(Fact(SubjectType.ORGANIZATION, award.organization_id, item_code, SourceType.ADMIN,
                source_id(AwardType.RED_FLAG, award.id), at, reason=f"{award.period} 流动红旗"), at=at, policy=policy)
    return True

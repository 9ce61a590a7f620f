"""What a member opens only while he is active: a self-report, a 报到, a sign-up.

His deactivation closes what he has open under his row lock (``closing``). A submission that credits nothing
would otherwise not touch his row, so one written after the deactivation read his open items, or after it
committed (his token was checked before), stayed open for a member who is gone. Each such write therefore takes
his row FOR SHARE, in its own statement where it is one (``ACTIVE_MEMBER`` for ``transactions.insert_together``)
or before it writes: it waits for a deactivation holding the row, reads the row as the deactivation left it, and
is refused; a deactivation that comes second waits for it and then closes what it wrote. Credits lock him FOR
UPDATE (``ledger.credit.lock_subject``), which a submission waits for too: both are short.
"""

from __future__ import annotations

import functools

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.errors import Conflict, NotFound
from points_service.models import Member

# ``transactions.insert_together``'s guard: the member's row, locked FOR SHARE, only while it is active.
ACTIVE_MEMBER = Member.__table__.c.is_active


class MemberInactive(Conflict):
    code, message = "member_inactive", "您的党员身份已停用，不能再上报、报到或报名"


def lock_active_member(member_id: int) -> Member:
    """The member re-read FOR SHARE, held to the end of the transaction; ``MemberInactive`` if he is not active."""
    member = db.session.scalar(_share_lock(), {"member_id": member_id})
    if member is None:
        raise NotFound("党员不存在")
    if not member.is_active:
        raise MemberInactive()
    return member


@functools.cache
def _share_lock() -> sa.Select:
    # populate_existing: a member the session loaded before the lock is refreshed from the row the lock holds.
    return (sa.select(Member).where(Member.id == sa.bindparam("member_id")).with_for_update(read=True)
            .execution_options(populate_existing=True))

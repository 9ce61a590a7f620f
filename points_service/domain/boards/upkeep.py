"""The weekly board audit (job ``boards_audit``): drop emptied histogram rows, then prove I7 — every board row,
histogram and member count equals a set-wise rebuild from ``point_totals``.

Differences are reported (the job's result and an error in the log), never repaired silently: a difference
means a bug in the write path, and ``flask boards rebuild --fix`` is an operator's decision after reading it.
"""

from __future__ import annotations

import logging

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.boards.audit import compare_boards
from points_service.domain.periods import Period
from points_service.domain.policy import Policy
from points_service.models import BoardBucket, BoardFine, BoardOrgMembers

log = logging.getLogger(__name__)
REPORTED = 20  # differences named in the job's result; the CLI lists them all


def prune_empty_rows() -> int:
    """Histogram buckets, exact scores and member counts that fell back to zero count as absent (ranks and the
    audit read them so); deleting them keeps the rank scans short. Safe beside writers: a concurrent bump
    either re-inserts the row or, committed first, makes the DELETE skip it."""
    pruned = 0
    for model, column in ((BoardBucket, BoardBucket.n), (BoardFine, BoardFine.n),
                          (BoardOrgMembers, BoardOrgMembers.members)):
        pruned += db.session.execute(sa.delete(model).where(column == 0)).rowcount
    db.session.flush()
    return pruned


def audit_boards_job(period: Period, policy: Policy) -> dict:
    """Prune, then compare with the rebuild; the runner commits the pruning with the job's claim."""
    pruned = prune_empty_rows()
    differences = compare_boards()
    if differences:
        log.error("boards_audit %s: %d board row(s) differ from the rebuild of point_totals, first %s; "
                  "read them with `flask boards rebuild`", period.key, len(differences), differences[0]["key"])
    return {"pruned": pruned, "differences": len(differences),
            "first": [" ".join(map(str, difference["key"])) for difference in differences[:REPORTED]]}

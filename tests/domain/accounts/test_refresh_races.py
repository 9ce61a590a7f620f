"""Refreshes racing each other on PostgreSQL (``domain.accounts.tokens.refresh_tokens``): whatever the interleaving,
a family never holds two live refresh tokens. A refresh locks its token (FOR UPDATE) and a retry then locks the
successor it replaces, so of two refreshes of one token the second waits and then retries; a retry racing a
rotation of that successor ends as reuse, whichever commits first."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from flask_jwt_extended import decode_token
from sqlalchemy.exc import DBAPIError

from points_service.api.errors import is_transient
from points_service.db import db
from points_service.domain.accounts.tokens import TokenReused, issue_tokens, refresh_tokens
from points_service.models import AuditEntry, RefreshToken
from tests.concurrency import hammer
from tests.factories import make_world

TRIALS = 10


def live(family: str) -> list[str]:
    db.session.expire_all()
    return db.session.scalars(sa.select(RefreshToken.jti).where(
        RefreshToken.family == family, RefreshToken.used_at.is_(None), RefreshToken.revoked_at.is_(None))).all()


def refresher(claims: dict):
    def refresh() -> str:
        try:
            return refresh_tokens(claims, grace_seconds=30).refresh_token
        except TokenReused:
            return "reused"
        except DBAPIError as error:  # answered 503 database_busy: rolled back whole, the phone sends it again
            assert is_transient(error)
            return "busy"
    return refresh


@pytest.mark.postgres
def test_simultaneous_refreshes_of_one_token_leave_one_live_token(app):
    """The phone's refresh and its retry arrive together: both are answered, only the last pair stays usable."""
    subject = f"u:{make_world()['users']['alice'].id}"
    for _ in range(TRIALS):
        claims = decode_token(issue_tokens(subject).refresh_token)
        db.session.commit()
        answers = hammer(app, [refresher(claims)] * 4, workers=4)
        assert "reused" not in answers and "busy" not in answers and len(set(answers)) == 4
        [survivor] = live(claims["fam"])
        assert survivor in {decode_token(answer)["jti"] for answer in answers}
    retries = db.session.scalars(sa.select(AuditEntry).where(AuditEntry.action == "token.refresh_retry")).all()
    assert len(retries) == 3 * TRIALS


@pytest.mark.postgres
def test_a_retry_racing_the_rotation_of_its_successor_ends_the_family(app):
    """Someone refreshes with the successor while the old token is retried: two holders, so whichever commits
    first, the other is reuse and the family ends (never two live tokens)."""
    subject = f"u:{make_world()['users']['alice'].id}"
    for _ in range(TRIALS):
        first = decode_token(issue_tokens(subject).refresh_token)
        db.session.commit()
        successor = decode_token(refresh_tokens(first, grace_seconds=30).refresh_token)
        answers = hammer(app, [refresher(first), refresher(successor)], workers=2)
        assert "reused" in answers
        assert live(first["fam"]) == []


@pytest.mark.postgres
def test_many_retries_and_rotations_at_once_never_leave_two_live_tokens(app):
    """Holders of the old token and of its successor refreshing at once: each is a retry, a rotation or reuse.
    A family revocation (reuse) locks the family's rows in no set order while a retry holds its token and waits
    for the successor, so PostgreSQL may abort one of them as a deadlock (503, nothing half-done)."""
    subject = f"u:{make_world()['users']['alice'].id}"
    for _ in range(TRIALS):
        first = decode_token(issue_tokens(subject).refresh_token)
        db.session.commit()
        successor = decode_token(refresh_tokens(first, grace_seconds=30).refresh_token)
        hammer(app, [refresher(first)] * 3 + [refresher(successor)] * 3, workers=6)
        assert len(live(first["fam"])) <= 1

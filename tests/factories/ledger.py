"""Factories for points tests: a stored policy built from the default file, and facts to credit."""

from __future__ import annotations

import copy
import itertools
from datetime import datetime
from decimal import Decimal

import sqlalchemy as sa

from points_service.db import db
from points_service.domain.ledger.credit import Fact
from points_service.domain.periods import LOCAL_TZ
from points_service.domain.policy import canonical_document, checksum, default_policy_document, parse_policy
from points_service.models import PolicyVersion, SourceType, SubjectType

_facts = itertools.count(1)
LONG_AGO = datetime(2000, 1, 1, tzinfo=LOCAL_TZ)


def install_policy(mutate=None, effective_from: datetime = LONG_AGO):
    """Store the default policy (changed by ``mutate(document)``) as the next version; returns it parsed."""
    document = copy.deepcopy(default_policy_document())
    if mutate is not None:
        mutate(document)
    canonical = canonical_document(parse_policy(document))
    version = (db.session.scalar(sa.select(sa.func.max(PolicyVersion.version))) or 0) + 1
    db.session.add(PolicyVersion(version=version, effective_from=effective_from, document=canonical,
                                 checksum=checksum(canonical)))
    db.session.commit()
    return parse_policy(canonical, version=version)


def local(*args) -> datetime:
    return datetime(*args, tzinfo=LOCAL_TZ)


def member_fact(member, item_code: str = "member.activity_hour", *, units=1, source_id: str | None = None,
                occurred_at: datetime | None = None, source_type: SourceType = SourceType.RECORD) -> Fact:
    return Fact(SubjectType.MEMBER, member.id, item_code, source_type, source_id or f"f{next(_facts)}",
                occurred_at or local(2026, 11, 1, 9), Decimal(units))


def org_fact(org, item_code: str = "org.project_done", **kwargs) -> Fact:
    fact = member_fact(org, item_code, **kwargs)
    return Fact(SubjectType.ORGANIZATION, org.id, item_code, fact.source_type, fact.source_id, fact.occurred_at,
                fact.units)

"""Stored policy versions: which one is in force, publishing a new one, and the start-up check.

Versions are immutable rows (the table is append-only), so a parsed version is cached in-process by
(version, checksum, effective_from) and never goes stale. The first lookup on an empty database seeds version 1 from the
default YAML file, effective since 2000-01-01 so that every fact ever recorded has a policy.
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from flask import current_app

from points_service.db import core_execute, db, sql_constant, utcnow
from points_service.domain.access import Principal, authorize
from points_service.domain.audit import audit
from points_service.domain.errors import Conflict, NotFound, ValidationFailed
from points_service.domain.periods import LOCAL_TZ, to_rfc3339
from points_service.domain.policy.model import Policy, PolicyInvalid
from points_service.domain.policy.schema import canonical_document, checksum, load_policy_text, parse_policy
from points_service.models import PolicyVersion
from points_service.transactions import transaction_cache, writes_together

SEED_EFFECTIVE_FROM = datetime(2000, 1, 1, tzinfo=LOCAL_TZ)
# A request may take a moment to arrive: "now" is accepted, anything older is the past.
PUBLISH_CLOCK_SLACK = timedelta(minutes=1)

_parsed: dict[tuple[int, str, datetime], Policy] = {}


class PolicyFileInvalid(RuntimeError):
    """The default policy file cannot be used; raised by ``create_app`` so the service never starts with it."""


def read_policy_file(path: str | Path) -> dict:
    try:
        text = Path(path).read_bytes()
    except OSError as exc:
        raise PolicyFileInvalid(f"cannot read the policy file {path}: {exc}") from exc
    return load_policy_text(text)


def default_policy_document() -> dict:
    return read_policy_file(current_app.config["POLICY_FILE"])


def init_app(app) -> None:
    """Refuse to start with an invalid default policy, naming each bad field."""
    path = app.config["POLICY_FILE"]
    try:
        parse_policy(read_policy_file(path))
    except PolicyInvalid as exc:
        problems = "; ".join(f"{field}: {' '.join(texts)}" for field, texts in exc.data["errors"].items())
        raise PolicyFileInvalid(f"invalid policy file {path}: {problems}") from exc


def _policy_of(row: PolicyVersion) -> Policy:
    key = (row.version, row.checksum, row.effective_from)
    if key not in _parsed:
        policy = parse_policy(row.document, version=row.version)
        _parsed[key] = replace(policy, effective_from=row.effective_from, checksum=row.checksum)
    return _parsed[key]


def _cached_or_load(key) -> Policy:
    cached = _parsed.get(tuple(key))
    if cached is not None:
        return cached
    return _policy_of(db.session.scalar(sa.select(PolicyVersion).where(PolicyVersion.version == key[0])))


def ensure_policy_seeded() -> bool:
    """Store the default file as version 1 when no version exists yet; True if it did. Flushes only.

    Inside a savepoint, so that two processes seeding at once leave one row and no failed transaction.
    """
    if db.session.scalar(sa.select(sa.func.count()).select_from(PolicyVersion)):
        return False
    writes_together(db.session())  # asked under ``autocommitted``: the seed and the request's writes, one transaction
    document = canonical_document(parse_policy(default_policy_document()))
    seed = PolicyVersion(version=1, effective_from=SEED_EFFECTIVE_FROM, document=document,
                         checksum=checksum(document), note="默认政策（随系统发布的配置文件）")
    try:
        with db.session.begin_nested():
            db.session.add(seed)
    except sa.exc.IntegrityError:
        pass  # another process seeded it first (from the same file)
    return True


@functools.cache
def _in_force_statement(at: str = "at") -> sa.Select:
    return (sa.select(PolicyVersion.version, PolicyVersion.checksum, PolicyVersion.effective_from)
            .where(PolicyVersion.effective_from <= sa.bindparam(at))
            .order_by(PolicyVersion.effective_from.desc(), PolicyVersion.version.desc())
            .limit(sql_constant(1)))


def _in_force_key(at: datetime):
    """Every point written and the home screen ask this: a statement built once, run through Core."""
    return core_execute(_in_force_statement(), {"at": at}).first()


IN_FORCE_SPANS = "points_policy_in_force"


def _in_force_key_in_transaction(at: datetime) -> tuple | None:
    """``_in_force_key``, read once per transaction for every instant the found version covers (from its
    ``effective_from`` until the next version's): a write that asks for the policy at its own time and at the
    fact's (an approval's credit and its notice) reads it once. The spans are forgotten when the transaction
    ends, so a version published meanwhile is seen by the next transaction."""
    spans = transaction_cache(IN_FORCE_SPANS)
    for (start, until), key in spans.items():
        if start <= at and (until is None or at < until):
            return key
    row = core_execute(_in_force_until_statement(), {"at": at}).first()
    if row is None:
        return None
    key = spans[(row.effective_from, row.until)] = (row.version, row.checksum, row.effective_from)
    return key


@functools.cache
def _in_force_until_statement() -> sa.Select:
    later = (sa.select(sa.func.min(PolicyVersion.effective_from))
             .where(PolicyVersion.effective_from > sa.bindparam("at")))
    return _in_force_statement().add_columns(later.scalar_subquery().label("until"))


def policy_in_force(at: datetime) -> Policy:
    """The stored version with the greatest ``effective_from`` <= ``at`` (the later version on a tie)."""
    found = _in_force_key_in_transaction(at)
    if found is None:  # read again even when another process seeded it since the read, not only when we did
        ensure_policy_seeded()
        found = _in_force_key_in_transaction(at)
    if found is None:
        raise NotFound(f"{to_rfc3339(at)} 时没有生效的积分政策", code="policy_not_found")
    return _cached_or_load(found)


def policy_for_reading(at: datetime) -> Policy:
    """``policy_in_force`` for views that must not write: before anything stored a version, the default file's
    policy (what seeding will store as version 1), without seeding it."""
    return policy_of_key(_in_force_key(at))


def in_force_key_subquery(at: str = "at", name: str = "policy_in_force") -> sa.Subquery:
    """The key (``version``, ``checksum``, ``effective_from``) of the version in force at the bind parameter
    ``at`` as a derived table ``name``, for a read that fetches it with its other rows in one statement (GET
    /me)."""
    return _in_force_statement(at).subquery(name)


def policy_of_key(key) -> Policy:
    """The policy of an in-force key a statement fetched; None (nothing stored yet): the default file's."""
    return _cached_or_load(key) if key is not None else parse_policy(default_policy_document(), version=1)


def policy_version(version: int) -> Policy:
    """One stored version by number; version 1 exists as soon as anything asks for it."""
    row = db.session.scalar(sa.select(PolicyVersion).where(PolicyVersion.version == version))
    if row is None and version == 1:  # as in policy_in_force: another process may have seeded it meanwhile
        ensure_policy_seeded()
        row = db.session.scalar(sa.select(PolicyVersion).where(PolicyVersion.version == version))
    if row is None:
        raise NotFound(f"积分政策第 {version} 版不存在", code="policy_not_found")
    return _policy_of(row)


def find_policy(version: int | None = None) -> Policy:
    """The version asked for, or the one in force now (what GET /policy shows)."""
    return policy_in_force(utcnow()) if version is None else policy_version(version)


def publish_policy_version(actor: Principal, document: dict, effective_from: datetime,
                           note: str = "") -> PolicyVersion:
    """Validate and store a new version taking effect at ``effective_from`` (now or later).

    The past is never rescored silently: entries keep the version that produced them, and a version
    cannot take effect before it was published.
    """
    authorize(actor, "policy.publish")
    if effective_from.tzinfo is None:
        raise ValidationFailed({"effective_from": ["生效时间须带时区，如 2027-01-01T00:00:00+08:00"]})
    if effective_from < utcnow() - PUBLISH_CLOCK_SLACK:
        raise ValidationFailed({"effective_from": ["生效时间不能早于当前时间：已记的积分不会被悄悄按新政策重算"]})
    canonical = canonical_document(parse_policy(document))
    ensure_policy_seeded()
    latest = db.session.scalar(sa.select(sa.func.max(PolicyVersion.version))) or 0
    row = PolicyVersion(version=latest + 1, effective_from=effective_from, document=canonical,
                        checksum=checksum(canonical), published_by_id=actor.user_id, published_at=utcnow(),
                        note=note)
    try:
        with db.session.begin_nested():
            db.session.add(row)
    except sa.exc.IntegrityError:
        db.session.rollback()
        raise Conflict("另一位管理员刚刚发布了新版本，请刷新后重试", code="policy_version_conflict") from None
    audit("policy.publish", actor=actor, target=row,
          detail={"version": row.version, "effective_from": to_rfc3339(effective_from), "checksum": row.checksum,
                  "note": note})
    db.session.commit()
    return row

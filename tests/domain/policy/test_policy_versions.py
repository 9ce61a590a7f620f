"""Stored policy versions: seeding, lookup by date, immutability, publishing rules, audit and checksum."""

from __future__ import annotations

from datetime import timedelta

import pytest
import sqlalchemy as sa

import config.settings as config_settings
from config.settings import DEFAULT_POLICY_FILE
from points_service import create_app
from points_service.db import db, utcnow
from points_service.domain.access import principal_for
from points_service.domain.errors import Forbidden, NotFound, ValidationFailed
from points_service.domain.policy import (
    PolicyFileInvalid,
    PolicyInvalid,
    checksum,
    load_policy_text,
    policy_in_force,
    policy_version,
    publish_policy_version,
    store,
)
from points_service.domain.policy.store import SEED_EFFECTIVE_FROM
from points_service.models import AuditEntry, PolicyVersion
from tests.factories import make_world


def default_document() -> dict:
    return load_policy_text(DEFAULT_POLICY_FILE.read_bytes())


def document_with_hour_points(points: int) -> dict:
    document = default_document()
    document["items"]["member.activity_hour"]["points"] = points
    return document


@pytest.fixture
def world(app):
    return make_world()


@pytest.fixture
def admin(world):
    return principal_for(world["users"]["admin"])


def stored_versions() -> list[int]:
    return list(db.session.scalars(sa.select(PolicyVersion.version).order_by(PolicyVersion.version)))


# ---------------------------------------------------------------- seeding and lookup


def test_the_first_lookup_seeds_version_one_from_the_default_file(app):
    policy = policy_in_force(utcnow())
    assert policy.version == 1 and policy.effective_from == SEED_EFFECTIVE_FROM
    assert policy.item("member.activity_hour").points == 1
    assert stored_versions() == [1]


def test_seeding_happens_once(app):
    policy_in_force(utcnow())
    db.session.commit()
    policy_in_force(utcnow())
    assert stored_versions() == [1]


def test_version_one_can_be_asked_for_before_anything_was_stored(app):
    assert policy_version(1).version == 1


def test_an_absent_version_is_not_found(app):
    with pytest.raises(NotFound):
        policy_version(99)


def test_the_version_in_force_is_the_latest_effective_at_that_moment(admin):
    starts = utcnow() + timedelta(days=3)
    publish_policy_version(admin, document_with_hour_points(2), starts)
    assert policy_in_force(utcnow()).version == 1
    assert policy_in_force(starts - timedelta(microseconds=1)).version == 1
    assert policy_in_force(starts).version == 2
    assert policy_in_force(starts + timedelta(days=400)).item("member.activity_hour").points == 2


def test_of_two_versions_effective_at_the_same_moment_the_later_wins(admin):
    starts = utcnow() + timedelta(days=3)
    publish_policy_version(admin, document_with_hour_points(2), starts)
    publish_policy_version(admin, document_with_hour_points(3), starts)
    assert policy_in_force(starts).version == 3


def test_a_version_is_parsed_once_and_then_served_from_the_cache(app):
    assert policy_in_force(utcnow()) is policy_in_force(utcnow() + timedelta(seconds=1))


def test_one_transaction_reads_the_version_in_force_once_for_the_instants_it_covers(app, statements):
    policy_in_force(utcnow())
    db.session.commit()
    statements.clear()
    assert policy_in_force(utcnow()) is policy_in_force(utcnow() - timedelta(days=30))
    assert len(statements) == 1
    db.session.commit()
    policy_in_force(utcnow())
    assert len(statements) == 2  # a new transaction reads it again


def test_a_version_stored_after_a_transaction_read_the_policy_is_seen_by_the_next_transaction(admin):
    starts = utcnow() + timedelta(days=3)
    assert policy_in_force(starts).version == 1  # version 1 then covered every later instant
    publish_policy_version(admin, document_with_hour_points(2), starts)  # commits
    assert policy_in_force(starts).version == 2
    assert policy_in_force(utcnow()).version == 1


@pytest.mark.parametrize("lookup", [lambda: policy_in_force(utcnow()), lambda: policy_version(1)],
                         ids=["in force", "by number"])
def test_a_first_lookup_finds_version_one_that_another_process_seeded_after_it_looked(app, monkeypatch,
                                                                                     lookup):
    seed = store.ensure_policy_seeded

    def seeded_meanwhile_by_another_process() -> bool:
        seed()  # the row exists now, but this call is not the one that stored it
        return False

    monkeypatch.setattr(store, "ensure_policy_seeded", seeded_meanwhile_by_another_process)
    assert lookup().version == 1


def test_before_the_seed_date_no_policy_is_in_force(app):
    with pytest.raises(NotFound):
        policy_in_force(SEED_EFFECTIVE_FROM - timedelta(seconds=1))


# ---------------------------------------------------------------- immutability


def test_a_stored_version_cannot_be_updated_in_the_database(app):
    policy_in_force(utcnow())
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.update(PolicyVersion).values(note="悄悄改"))
    db.session.rollback()
    assert db.session.scalar(sa.select(PolicyVersion.note)) != "悄悄改"


def test_a_stored_version_cannot_be_deleted_in_the_database(app):
    policy_in_force(utcnow())
    db.session.commit()
    with pytest.raises(sa.exc.DBAPIError):
        db.session.execute(sa.delete(PolicyVersion))
    db.session.rollback()
    assert stored_versions() == [1]


# ---------------------------------------------------------------- publishing


def test_an_admin_publishes_the_next_version(admin):
    row = publish_policy_version(admin, document_with_hour_points(2), utcnow() + timedelta(days=1), "提高志愿服务分值")
    assert (row.version, row.note, row.published_by_id) == (2, "提高志愿服务分值", admin.user_id)
    assert stored_versions() == [1, 2]


@pytest.mark.parametrize("who", ["alice", "secretary", "community_admin", "hr"])
def test_only_admins_may_publish(world, who):
    with pytest.raises(Forbidden):
        publish_policy_version(principal_for(world["users"][who]), default_document(), utcnow() + timedelta(days=1))
    assert stored_versions() == []


def test_a_version_cannot_take_effect_in_the_past(admin):
    with pytest.raises(ValidationFailed) as caught:
        publish_policy_version(admin, default_document(), utcnow() - timedelta(minutes=5))
    assert "effective_from" in caught.value.data["errors"]
    assert stored_versions() == []


def test_now_is_not_the_past(admin):
    assert publish_policy_version(admin, default_document(), utcnow()).version == 2


def test_an_effective_date_without_a_time_zone_is_refused(admin):
    with pytest.raises(ValidationFailed):
        publish_policy_version(admin, default_document(), (utcnow() + timedelta(days=1)).replace(tzinfo=None))


def test_an_invalid_document_is_refused_and_nothing_is_stored(admin):
    with pytest.raises(PolicyInvalid) as caught:
        publish_policy_version(admin, document_with_hour_points(-1), utcnow() + timedelta(days=1))
    assert "items.member.activity_hour.points" in caught.value.data["errors"]
    assert stored_versions() == []


def test_publishing_writes_an_audit_row(admin):
    row = publish_policy_version(admin, default_document(), utcnow() + timedelta(days=1))
    entry = db.session.scalar(sa.select(AuditEntry).where(AuditEntry.action == "policy.publish"))
    assert (entry.actor_id, entry.target_type, entry.target_id) == (admin.user_id, "policy_versions", str(row.id))
    assert entry.detail["version"] == 2 and entry.detail["checksum"] == row.checksum


def test_the_checksum_is_the_sha256_of_the_stored_canonical_document(admin):
    row = publish_policy_version(admin, default_document(), utcnow() + timedelta(days=1))
    db.session.expire_all()
    stored = db.session.get(PolicyVersion, row.id)
    assert stored.checksum == checksum(stored.document) and len(stored.checksum) == 64
    seed = db.session.scalar(sa.select(PolicyVersion).where(PolicyVersion.version == 1))
    assert seed.checksum == stored.checksum  # the same document, the same checksum


def test_the_stored_document_is_fully_expanded(admin):
    document = default_document()
    del document["items"]["member.report"]["ledgers"]
    row = publish_policy_version(admin, document, utcnow() + timedelta(days=1))
    assert row.document["items"]["member.report"]["ledgers"] == ["assessment"]
    assert row.document["grades"]["excellent_share_cap"] == "0.2"  # decimals stored as exact text


# ---------------------------------------------------------------- start-up


def test_the_service_refuses_to_start_with_an_invalid_policy_file_naming_the_field(tmp_path):
    bad = tmp_path / "policy.yaml"
    bad.write_text(DEFAULT_POLICY_FILE.read_text(encoding="utf-8").replace("timezone: Asia/Shanghai", "timezone: UTC"),
                   encoding="utf-8")
    settings = config_settings.Testing()
    settings.POLICY_FILE = str(bad)
    with pytest.raises(PolicyFileInvalid, match="timezone"):
        create_app(settings)


def test_the_service_refuses_to_start_without_its_policy_file(tmp_path):
    settings = config_settings.Testing()
    settings.POLICY_FILE = str(tmp_path / "missing.yaml")
    with pytest.raises(PolicyFileInvalid):
        create_app(settings)

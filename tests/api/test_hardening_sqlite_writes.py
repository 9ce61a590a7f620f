"""SQLite (the embedded default) under concurrent writes: writers queue on the busy timeout, none answers 500."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa

from points_service import create_app
from points_service.db import db
from points_service.models import LedgerEntry
from tests.conftest import PG_URL
from tests.conftest import test_settings as settings_for_tests
from tests.factories import auth_header, make_world

pytestmark = pytest.mark.skipif(bool(PG_URL), reason="SQLite's locking; PostgreSQL locks rows")


@pytest.fixture
def file_app(tmp_path):
    settings = settings_for_tests()
    settings.SQLALCHEMY_DATABASE_URI = f"sqlite:///{tmp_path / 'points.db'}"
    app = create_app(settings)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        db.engine.dispose()


def adjust_concurrently(app, headers: dict, payloads: list[dict], workers: int) -> list[int]:
    barrier = threading.Barrier(workers)

    def post_all(chunk: list[dict]) -> list[int]:
        client = app.test_client()
        barrier.wait(timeout=30)
        return [client.post("/api/v1/adjustments", json=p, headers=headers).status_code for p in chunk]

    chunks = [payloads[i::workers] for i in range(workers)]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return [status for statuses in pool.map(post_all, chunks) for status in statuses]


@pytest.mark.parametrize("workers", [2, 8])
def test_concurrent_adjustments_on_a_file_database_all_commit(file_app, workers):
    world = make_world()
    headers = auth_header(world["users"]["admin"])
    payloads = [{"subject_type": "member", "subject_id": world["alice"].id, "points": 1, "reason": f"补录{n}"}
                for n in range(3 * workers)]
    db.session.remove()
    statuses = adjust_concurrently(file_app, headers, payloads, workers)
    assert statuses == [201] * len(payloads)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == len(payloads)


def test_autocommit_reads_begin_no_transaction_and_do_not_wait_for_a_writer(file_app):
    headers = auth_header(make_world()["users"]["alice"])
    db.session.remove()
    writer = db.engine.connect()
    writer.begin()  # holds the write lock (BEGIN IMMEDIATE) until it ends
    try:
        response = file_app.test_client().get("/api/v1/me", headers=headers)
        assert response.status_code == 200
    finally:
        writer.rollback()
        writer.close()

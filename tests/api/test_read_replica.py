"""Read replicas against a real hot standby made on this machine (tests/pgcluster.py): the read-only views
(boards, GET /me, the annual exports, the console's report pages) run on the standby, an export's audit row
on the primary; a member's own figures right after his own write come from the primary even while the
standby is frozen behind; with the standby stopped, reads fall back to the primary with a warning.

Skipped with the reason when no standby can be made here; required (a failure) when CI=true."""

from __future__ import annotations

import logging
import os
import time
from decimal import Decimal

import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.models import AuditEntry, Member
from tests.console.helpers import sign_in
from tests.dbutil import app_on
from tests.factories import PASSWORD, auth_header, make_member, make_world
from tests.factories.annual import YEAR, reported, score, settled
from tests.factories.market import fund, make_item
from tests.pgcluster import ClusterUnavailable, start_streaming_pair

pytestmark = pytest.mark.postgres
WINDOW = 3.0


@pytest.fixture(scope="module")
def pair():
    try:
        pair = start_streaming_pair()
    except (ClusterUnavailable, OSError) as exc:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI needs the replica test's standby: {exc}")
        pytest.skip(f"no hot standby can be made on this machine: {exc}")
    yield pair
    pair.stop()


@pytest.fixture
def replica_app(pair):
    app = app_on(pair.primary_url, REPLICA_DATABASE_URL=pair.standby_url, REPLICA_READ_YOUR_WRITES_SECONDS=WINDOW,
                 REPLICA_RETRY_SECONDS=60.0)
    replica = app.extensions["points_replica"]
    seen = {"replica": 0}

    def count(*_args):
        seen["replica"] += 1
    sa.event.listen(replica.engine, "before_cursor_execute", count)
    with app.app_context():
        world = make_world()
        world["bag"] = make_item(world["north"], name="环保购物袋", price=Decimal(10), stock=5)
        db.session.commit()
        fund(world["alice"], 30)
        world["h"] = {name: auth_header(user) for name, user in world["users"].items()}
        world["alice_id"], world["bag_id"] = world["alice"].id, world["bag"].id
        db.session.remove()
        pair.wait_replayed()
        yield app, world, seen, pair
        db.session.remove()
        db.drop_all()
        db.engine.dispose()
    replica.engine.dispose()


def _me(app, headers) -> dict:
    db.session.remove()  # the view runs on its own connection, as in production
    response = app.test_client().get("/api/v1/me", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["data"]


def test_the_read_views_run_on_the_standby_which_shows_a_primary_write_after_its_lag(replica_app):
    app, world, seen, pair = replica_app
    before = seen["replica"]
    assert _me(app, world["h"]["alice"])["points"]["redeemable"] == 30
    db.session.remove()
    board = app.test_client().get("/api/v1/me/rank", headers=world["h"]["bob"])
    assert board.status_code == 200 and seen["replica"] > before

    fund(db.session.get(Member, world["alice_id"]), 5)  # written on the primary by someone else (an admin's credit)
    lag = pair.wait_replayed()
    print(f"\nreplica lag observed: {lag * 1000:.1f} ms")
    assert _me(app, world["h"]["alice"])["points"]["redeemable"] == 35


def test_a_members_own_figures_right_after_his_own_write_come_from_the_primary(replica_app):
    app, world, seen, pair = replica_app
    standby = sa.create_engine(pair.standby_url)
    with standby.connect() as connection:
        connection.execute(sa.text("SELECT pg_wal_replay_pause()"))  # the standby now stays behind
    try:
        db.session.remove()
        placed = app.test_client().post("/api/v1/shop/orders", json={"item_id": world["bag_id"], "quantity": 1},
                                        headers=world["h"]["alice"])
        assert placed.status_code == 201
        before = seen["replica"]

        mine = _me(app, world["h"]["alice"])["points"]

        assert (mine["redeemable"], mine["open_orders"]) == (20, 1) and seen["replica"] == before
        with standby.connect() as connection:  # what the standby would have answered
            assert connection.scalar(sa.text("SELECT count(*) FROM market_orders")) == 0
        _me(app, world["h"]["bob"])  # others still read on the standby
        assert seen["replica"] > before
        time.sleep(WINDOW)
        before = seen["replica"]
        _me(app, world["h"]["alice"])  # the window is over: back on the standby
        assert seen["replica"] > before
    finally:
        with standby.connect() as connection:
            connection.execute(sa.text("SELECT pg_wal_replay_resume()"))
        standby.dispose()


def test_an_account_just_bound_or_signed_in_again_reads_its_new_tokens_on_the_primary(replica_app):
    app, world, seen, pair = replica_app
    make_member(db.session.merge(world["fin1"]), db.session.merge(world["north"]), name="张晓红", phone="13800138000")
    db.session.commit()
    pair.wait_replayed()
    client = app.test_client()
    standby = sa.create_engine(pair.standby_url)
    with standby.connect() as connection:
        connection.execute(sa.text("SELECT pg_wal_replay_pause()"))  # the standby now stays behind
    try:
        db.session.remove()
        unbound = client.post("/api/v1/auth/wechat", json={"code": "dev:oHong00001"}).get_json()["data"]
        bound = client.post("/api/v1/auth/bind", json={"name": "张晓红", "phone": "13800138000"},
                            headers={"Authorization": f"Bearer {unbound['access_token']}"}).get_json()["data"]
        assert _me(app, {"Authorization": f"Bearer {bound['access_token']}"})["member"]["name"] == "张晓红"

        first = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).get_json()["data"]
        assert client.post("/api/v1/auth/logout",
                           headers={"Authorization": f"Bearer {first['refresh_token']}"}).status_code == 200
        again = client.post("/api/v1/auth/login", json={"username": "admin", "password": PASSWORD}).get_json()["data"]
        assert _me(app, {"Authorization": f"Bearer {again['access_token']}"})["user"]["username"] == "admin"
    finally:
        with standby.connect() as connection:
            connection.execute(sa.text("SELECT pg_wal_replay_resume()"))
        standby.dispose()


def test_with_the_standby_down_reads_fall_back_to_the_primary_with_a_warning(replica_app, caplog):
    app, world, seen, pair = replica_app
    _me(app, world["h"]["bob"])  # a pooled connection to the standby exists
    pair.stop_standby()
    try:
        with caplog.at_level(logging.WARNING, logger="points_service.replicas"):
            assert _me(app, world["h"]["alice"])["points"]["redeemable"] == 30
            assert _me(app, world["h"]["bob"])["points"] is not None
        warnings = [record for record in caplog.records if "read replica unavailable" in record.getMessage()]
        assert len(warnings) == 1  # then the replica is left alone for REPLICA_RETRY_SECONDS
    finally:
        pair.start_standby()


# ------------------------------------------------------------------ exports and the console's report pages

RENAMED = "张晓丽（已改名）"


@pytest.fixture
def settled_app(replica_app):
    app, world, seen, pair = replica_app
    for name in ("alice", "bob", "carol"):
        world[name] = db.session.merge(world[name])
    world["users"]["admin"] = db.session.merge(world["users"]["admin"])
    for name, points in (("alice", 92), ("bob", 80), ("carol", 70)):
        score(world, world[name], points)
    reported(world["alice"], world["bob"], world["carol"])
    settled(world)
    db.session.remove()
    pair.wait_replayed()
    return replica_app


def _signed_in(app, username: str):
    client = app.test_client()
    db.session.remove()
    assert sign_in(client, username).status_code == 302
    return client


def _get(client, url: str, **kwargs) -> str:
    db.session.remove()  # the request runs on its own session, as in production
    response = client.get(url, **kwargs)
    body = response.get_data(as_text=True)
    response.close()  # a streamed body's routing ends with the response
    assert response.status_code == 200, body[:300]
    return body


def _exports_on(engine) -> int:
    with engine.connect() as connection:
        return connection.scalar(sa.select(sa.func.count()).select_from(AuditEntry)
                                 .where(AuditEntry.action == "annual.export"))


def test_exports_and_console_reports_are_read_on_the_standby_and_audited_on_the_primary(settled_app):
    app, world, seen, pair = settled_app
    hr, admin = _signed_in(app, "finance_hr"), _signed_in(app, "admin")
    standby = sa.create_engine(pair.standby_url)
    with standby.connect() as connection:
        connection.execute(sa.text("SELECT pg_wal_replay_pause()"))  # the standby now stays behind
    try:
        db.session.get(Member, world["alice_id"]).name = RENAMED  # on the primary only
        db.session.commit()
        before = seen["replica"]

        exported = _get(app.test_client(), f"/api/v1/annual/{YEAR}/scores?format=csv", headers=world["h"]["hr"])
        statements = _get(hr, f"/console/hr?year={YEAR}")
        downloaded = _get(hr, f"/console/hr/{YEAR}/scores.csv")
        board = _get(admin, "/console/boards?period=standing")
        for page in (exported, statements, downloaded, board):
            assert "张晓丽" in page and RENAMED not in page  # the standby's name, not the primary's
        assert seen["replica"] > before
        for url in ("/console/market/report", "/console/reports?status=all", "/console/notifications"):
            before = seen["replica"]
            _get(admin, url)
            assert seen["replica"] > before, url

        db.session.remove()
        assert _exports_on(db.engine) == 3  # each export's audit row went to the primary
        assert _exports_on(standby) == 0
    finally:
        with standby.connect() as connection:
            connection.execute(sa.text("SELECT pg_wal_replay_resume()"))
        standby.dispose()


def test_with_the_standby_down_exports_and_console_reports_fall_back_to_the_primary(settled_app, caplog):
    app, world, seen, pair = settled_app
    hr = _signed_in(app, "finance_hr")
    _get(hr, f"/console/hr?year={YEAR}")  # a pooled connection to the standby exists
    pair.stop_standby()
    try:
        with caplog.at_level(logging.WARNING, logger="points_service.replicas"):
            assert "张晓丽" in _get(hr, f"/console/hr/{YEAR}/scores.csv")
            assert "张晓丽" in _get(app.test_client(), f"/api/v1/annual/{YEAR}/scores?format=csv",
                                   headers=world["h"]["hr"])
            assert "张晓丽" in _get(hr, f"/console/hr?year={YEAR}")
        warnings = [record for record in caplog.records if "read replica unavailable" in record.getMessage()]
        assert len(warnings) == 1
        db.session.remove()
        assert _exports_on(db.engine) == 4  # audited once each: the failed attempt wrote nothing
    finally:
        pair.start_standby()

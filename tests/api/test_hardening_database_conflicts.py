"""A transient database conflict (a deadlock, a serialization failure, a lock wait given up, SQLite's busy
timeout) answers 503 ``database_busy`` with ``Retry-After``, and the request's transaction is rolled back whole;
any other database error is still a 500."""

from __future__ import annotations

import sqlite3
from decimal import Decimal

import psycopg
import pytest
import sqlalchemy as sa

from points_service.db import db
from points_service.domain.market import orders
from points_service.domain.market.standing import balance_of
from points_service.models import LedgerEntry, MarketItem, MarketOrder
from tests.factories import auth_header, make_world
from tests.factories.market import fund, make_item


@pytest.fixture
def world(app):
    world = make_world()
    world["bag"] = make_item(world["north"], price=Decimal(10), stock=2)
    db.session.commit()
    fund(world["alice"], 30)
    return world


def order_failing_last_with(client, world, monkeypatch, driver_error: Exception):
    """Place an order whose last write (the stock reservation) fails with ``driver_error``."""
    def fail(_item, _quantity):
        raise sa.exc.OperationalError("UPDATE market_items …", {}, driver_error)
    monkeypatch.setattr(orders, "_reserve_stock", fail)
    return client.post("/api/v1/shop/orders", json={"item_id": world["bag"].id},
                       headers=auth_header(world["users"]["alice"]))


@pytest.mark.parametrize("driver_error", [
    psycopg.errors.DeadlockDetected("deadlock detected"),
    psycopg.errors.SerializationFailure("could not serialize access due to concurrent update"),
    psycopg.errors.LockNotAvailable("canceling statement due to lock timeout"),
    sqlite3.OperationalError("database is locked"),
], ids=["deadlock", "serialization", "lock-timeout", "sqlite-busy"])
def test_a_transient_conflict_answers_503_and_writes_nothing(client, world, monkeypatch, driver_error):
    entries_before = db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry))
    response = order_failing_last_with(client, world, monkeypatch, driver_error)
    body = response.get_json()
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert body["code"] == "database_busy" and "重试" in body["message"]
    db.session.expire_all()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 0
    assert db.session.scalar(sa.select(sa.func.count()).select_from(LedgerEntry)) == entries_before
    assert balance_of(world["alice"].id) == Decimal(30) and db.session.get(MarketItem, world["bag"].id).sold == 0


def test_any_other_database_error_is_still_an_internal_error(client, world, monkeypatch):
    response = order_failing_last_with(client, world, monkeypatch, psycopg.errors.AdminShutdown("terminating"))
    assert response.status_code == 500 and response.get_json()["code"] == "internal_error"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 0

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


def test_the_same_order_sent_again_with_its_idempotency_key_after_a_503_is_placed_once(client, world, monkeypatch):
    headers = {**auth_header(world["users"]["alice"]), "Idempotency-Key": "order-after-deadlock-1"}
    reserve = orders._reserve_stock
    failures = [psycopg.errors.DeadlockDetected("deadlock detected")]

    def fail_once(item, quantity):
        if failures:
            raise sa.exc.OperationalError("UPDATE market_items …", {}, failures.pop())
        return reserve(item, quantity)
    monkeypatch.setattr(orders, "_reserve_stock", fail_once)
    send = lambda: client.post("/api/v1/shop/orders", json={"item_id": world["bag"].id}, headers=headers)  # noqa: E731
    assert send().status_code == 503
    placed, replayed = send(), send()
    assert placed.status_code == 201 and replayed.status_code == 201
    assert replayed.headers.get("Idempotent-Replayed") == "true"
    assert replayed.get_json()["data"]["id"] == placed.get_json()["data"]["id"]
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 1
    assert balance_of(world["alice"].id) == Decimal(20)


@pytest.mark.postgres
def test_a_real_lock_wait_given_up_answers_503_and_the_order_sent_again_is_placed_once(client, world, monkeypatch):
    """Another transaction holds the item's row past the order's lock_timeout: PostgreSQL cancels the order's
    stock UPDATE (55P03), the order rolls back whole, and the same request sent again later is placed."""
    headers = {**auth_header(world["users"]["alice"]), "Idempotency-Key": "order-after-lock-timeout"}
    reserve = orders._reserve_stock

    def with_a_short_lock_timeout(item, quantity):
        db.session.execute(sa.text("SET LOCAL lock_timeout = '200ms'"))
        return reserve(item, quantity)
    monkeypatch.setattr(orders, "_reserve_stock", with_a_short_lock_timeout)
    send = lambda: client.post("/api/v1/shop/orders", json={"item_id": world["bag"].id}, headers=headers)  # noqa: E731
    with db.engine.connect() as other:  # e.g. an admin's stock adjustment, still open
        other.execute(sa.text("UPDATE market_items SET stock = stock WHERE id = :id"), {"id": world["bag"].id})
        busy = send()
        other.rollback()
    assert busy.status_code == 503 and busy.get_json()["code"] == "database_busy"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 0
    assert send().status_code == 201
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MarketOrder)) == 1
    assert balance_of(world["alice"].id) == Decimal(20)

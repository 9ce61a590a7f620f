"""How a transaction that changed nothing ends: with COMMIT, not ROLLBACK.

psycopg discards every prepared statement of a connection on ROLLBACK (and sends ``DEALLOCATE ALL``): a
rolled-back transaction might have dropped what they refer to. Many requests end without their use case's
commit: a read outside ``reads_without_transaction``, a refused request (every 4xx after the principal was
read), a repeated check-in. Were they rolled back, the worker's next requests would plan their statements
again: the principal's alone takes 0.6–1 ms to plan, against 0.07 ms to run prepared.

So the primary engine notes, per connection, whether the transaction may have changed anything: any statement
but a ``SELECT``, an INSERT, UPDATE or DELETE that touched a row (the schema has no statement-level
triggers; on SQLite any of them), a failed statement, a COPY (``driver_cursor``). A transaction that did not
ends with COMMIT, which for it is the same as a ROLLBACK (its locks and snapshot are released alike; one that
locked rows FOR UPDATE writes a commit record) and keeps the prepared statements. Objects changed in the
session but not flushed, or any doubt, roll back.

A request whose use case usually writes one statement (a check-in, a self-report) can run ``autocommitted``: no
BEGIN, no COMMIT round trip, its one write committing as it runs; a use case that writes more calls
``writes_together``. ``insert_together`` writes a row and one that names it (a record and its approval event) as
one statement on PostgreSQL.
"""

from __future__ import annotations

import functools
import logging
import re

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.orm import Session

from points_service.db import RoutingSession, compiled_text, core_execute, db, dialect_insert, end_read_transaction

log = logging.getLogger(__name__)
_CHANGED = "points_transaction_changed"
_CONNECTIONS = "points_transaction_connections"
_ROW_WRITES = ("INSERT", "UPDATE", "DELETE")
_VERB = re.compile(r"\s*([A-Za-z]+)")


def init_app(app) -> None:
    """Watch the primary engine's statements; end each request's open transaction by ``end_transaction``
    (registered after Flask-SQLAlchemy, so it runs before the session is removed)."""
    with app.app_context():
        _watch(db.engine)
        app.extensions[_AUTOCOMMIT_ENGINE] = _autocommit_engine(db.engine)

    @app.teardown_appcontext
    def _end_request_transaction(exc):
        if exc is None and db.session.registry.has():
            try:
                end_transaction(db.session())
            except sa.exc.SQLAlchemyError:  # the answer is made: nothing here was to be kept, remove() cleans up
                log.warning("could not end the request's transaction", exc_info=True)


def end_transaction(session: Session) -> None:
    """End ``session``'s transaction: COMMIT when it changed nothing and nothing is pending (a COMMIT would
    flush it), else ROLLBACK. Either way the loaded objects are expired, not detached. A session without a
    connection has nothing to end."""
    connections = session.info.get(_CONNECTIONS)
    if not connections or session.new or session.dirty or session.deleted or \
            any(c.closed or c.invalidated or c.info.get(_CHANGED, True) for c in connections):
        session.rollback()
        return
    session.commit()


class MoreThanOneWrite(RuntimeError):
    """A use case under ``autocommitted`` wrote a second statement without ``writes_together`` (each would be
    committed on its own), or locked rows (the lock would end with its statement)."""


def autocommitted(view):
    """For a view whose use case usually writes one statement (a check-in's INSERT … ON CONFLICT): run the
    request on autocommit connections of the primary. Its reads (the principal, the rules' context) need no
    BEGIN and its one write commits as it runs: two round trips fewer than BEGIN … COMMIT. PostgreSQL's READ
    COMMITTED gives each statement its own snapshot anyway, so the reads see what they would inside a
    transaction; none of them may lock rows (the lock would end with its statement).

    Each of the session's transactions here (the Idempotency-Key's claim is one, the use case another) may send
    one statement that is not a SELECT: a second raises ``MoreThanOneWrite`` before it runs, as does a SELECT …
    FOR UPDATE/SHARE. The first write is then committed already: the guard makes a forgotten
    ``writes_together`` fail loudly, the tests of every multi-statement path make it fail in CI. A use case that
    writes several calls ``writes_together`` first. A session already in a transaction (a test's) keeps it."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        session = db.session()
        if session.in_transaction():
            return view(*args, **kwargs)
        session.info[_AUTOCOMMIT_BIND] = current_app.extensions[_AUTOCOMMIT_ENGINE]
        try:
            return view(*args, **kwargs)
        finally:
            session.info.pop(_AUTOCOMMIT_BIND, None)

    return wrapper


def writes_together(session: Session) -> None:
    """Before a write of several statements: under ``autocommitted``, the rest of the request runs in
    transactions as usual (the next statement begins one, the use case's commit ends it), and what the reads
    loaded stays loaded. Elsewhere there is nothing to do."""
    if session.info.pop(_AUTOCOMMIT_BIND, None) is None or not session.in_transaction():
        return
    if not end_read_transaction(session):
        raise MoreThanOneWrite("objects were changed before writes_together: they would be written apart")


def insert_row(model, row: dict) -> int:
    """INSERT one row as a Core statement, not through the unit of work, and return its new id (RETURNING):
    the hot writes' rows that nothing updates later in their transaction. Flushes pending changes first."""
    return core_execute(_insert_returning_id(model.__table__), row).scalar_one()


def column_values(instance) -> dict:
    """Every column of a new instance but its id, as the row a Core INSERT writes; the columns' Python defaults
    are filled in on the instance too, so that once written it holds what the row does."""
    row = {}
    for column in type(instance).__table__.columns:
        if column.primary_key:
            continue
        value = getattr(instance, column.key)
        if value is None and column.default is not None:
            value = column.default.arg(None) if column.default.is_callable else column.default.arg
        setattr(instance, column.key, value)
        row[column.key] = value
    return row


@functools.cache
def _insert_returning_id(table: sa.Table) -> sa.Insert:
    return sa.insert(table).returning(table.c.id)  # the columns come from each call's row (SQLAlchemy caches)


def insert_together(parent, parent_row: dict, child, child_row: dict, link: str, *,
                    guard: tuple[sa.Column, int] | None = None, unique: tuple[str, ...] | None = None) -> int | None:
    """INSERT ``parent_row`` and ``child_row`` with its ``link`` column naming the new parent; return the
    parent's id. On PostgreSQL one statement (the child's INSERT selects from the parent's INSERT … RETURNING in
    a CTE): one round trip, and under ``autocommitted`` the one write that commits both. Elsewhere two INSERTs
    in one transaction (``writes_together``). Flushes pending changes first.

    ``guard`` (a boolean column, the id of its row): write only while that row's column is true, reading the row
    FOR SHARE in the parent's INSERT itself (a writer holding it FOR UPDATE is waited for and the row read as it
    left it); None, and nothing written, when it is not. ``unique`` (the columns of a unique index of the
    parent): None, and nothing written, when a parent with the same values exists (ON CONFLICT DO NOTHING)."""
    session = db.session()
    guard_column, guard_params = (guard[0], {"guard_id": guard[1]}) if guard is not None else (None, {})
    dialect_name = session.get_bind().dialect.name
    if dialect_name != "postgresql":
        writes_together(session)
        parent_id = core_execute(_insert_parent(dialect_name, parent.__table__, tuple(parent_row), guard_column,
                                                unique),
                                 {f"p_{c}": v for c, v in parent_row.items()} | guard_params).scalar()
        if parent_id is not None:
            insert_row(child, {**child_row, link: parent_id})
        return parent_id
    statement = _insert_pair(parent.__table__, tuple(parent_row), child.__table__, tuple(child_row), link,
                             guard_column, unique)
    params = {f"p_{c}": v for c, v in parent_row.items()} | {f"c_{c}": v for c, v in child_row.items()}
    return core_execute(statement, params | guard_params).scalar()


@functools.cache
def _insert_parent(dialect_name: str, parent: sa.Table, parent_columns: tuple, guard: sa.Column | None,
                   unique: tuple[str, ...] | None) -> sa.Executable:
    """INSERT the parent's row (parameters ``p_<column>``), only while ``guard``'s row holds and no row shares its
    ``unique`` columns, RETURNING its id. With ``unique`` compiled once into text (an ON CONFLICT clause has no
    cache key in SQLAlchemy), else a Core statement (which a CTE can hold)."""
    statement = _parent_insert(dialect_name, parent, parent_columns, guard, unique)
    return statement if unique is None else compiled_text(statement, dialect_name)


def _parent_insert(dialect_name: str, parent: sa.Table, parent_columns: tuple, guard: sa.Column | None,
                   unique: tuple[str, ...] | None) -> sa.Insert:
    values = [sa.bindparam(f"p_{c}", type_=parent.c[c].type) for c in parent_columns]
    insert = sa.insert(parent) if unique is None else dialect_insert(dialect_name, parent)
    if guard is None:
        statement = insert.values(dict(zip(parent_columns, values, strict=True)))
    else:
        statement = insert.from_select(list(parent_columns), sa.select(*values).where(
            guard.table.c.id == sa.bindparam("guard_id"), guard.is_(True)).with_for_update(read=True))
    if unique is not None:
        statement = statement.on_conflict_do_nothing(index_elements=list(unique))
    return statement.returning(parent.c.id)


@functools.cache
def _insert_pair(parent: sa.Table, parent_columns: tuple, child: sa.Table, child_columns: tuple,
                 link: str, guard: sa.Column | None, unique: tuple[str, ...] | None) -> sa.Executable:
    written = _parent_insert("postgresql", parent, parent_columns, guard, unique).cte("written")
    linked = sa.select(written.c.id, *(sa.bindparam(f"c_{c}", type_=child.c[c].type) for c in child_columns))
    child_insert = sa.insert(child).from_select([link, *child_columns], linked).cte("linked")
    statement = sa.select(written.c.id).add_cte(child_insert)
    return statement if unique is None else compiled_text(statement, "postgresql")


_AUTOCOMMIT_BIND = "autocommit_bind"
_AUTOCOMMIT_ENGINE = "points_autocommit_engine"
_WROTE = "points_autocommit_wrote"
_ROW_LOCK = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b", re.IGNORECASE)


def _autocommit_engine(engine: sa.Engine) -> sa.Engine:
    """``engine`` on autocommit connections (its pool), with the guard: the guard's listeners are its own."""
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    sa.event.listen(autocommit, "begin", _no_write_yet)
    sa.event.listen(autocommit, "before_cursor_execute", _one_write_only)
    return autocommit


def _no_write_yet(connection) -> None:
    connection.info[_WROTE] = False


def _one_write_only(connection, _cursor, statement: str, *_args) -> None:
    """Any statement but a SELECT counts as a write (a read starting ``WITH`` is refused too: loud, never
    silent); a SELECT that locks rows is refused, its lock would end with it."""
    if _verb(statement) == "SELECT":
        if _ROW_LOCK.search(statement):
            raise MoreThanOneWrite(f"a row lock in an autocommitted transaction would end at once: {statement[:80]}")
        return
    if connection.info.get(_WROTE):
        raise MoreThanOneWrite(f"a second write in one autocommitted transaction: {statement[:80]}")
    connection.info[_WROTE] = True


def driver_cursor(connection: sa.Connection):
    """The driver's own cursor on ``connection``, for what SQLAlchemy cannot send (PostgreSQL's COPY). Its
    statements pass no engine event, so the transaction counts as changed from here on."""
    connection.info[_CHANGED] = True
    return connection.connection.driver_connection.cursor()


def _watch(engine: sa.Engine) -> None:
    if sa.event.contains(engine, "begin", _fresh):
        return
    sa.event.listen(engine, "begin", _fresh)
    sa.event.listen(engine, "after_cursor_execute", _note)
    sa.event.listen(engine, "handle_error", _note_failure)


def _fresh(connection) -> None:
    connection.info[_CHANGED] = False


def _note(connection, cursor, statement: str, _parameters, _context, _executemany) -> None:
    # psycopg has the row count from the command tag once the statement ran; sqlite3 counts a RETURNING
    # statement's rows only as they are fetched, after this event, so there no row count is trusted.
    rowcount = cursor.rowcount if connection.dialect.name == "postgresql" else -1
    if not connection.info.get(_CHANGED) and _may_have_changed(statement, rowcount):
        connection.info[_CHANGED] = True


def _may_have_changed(statement: str, rowcount: int) -> bool:
    verb = _verb(statement)
    if verb == "SELECT":
        return False
    return not (verb in _ROW_WRITES and rowcount == 0)


def _verb(statement: str) -> str:
    found = _VERB.match(statement)  # a match, not a split: GET /me's statement is 10 KB
    return found.group(1).upper() if found else ""


def _note_failure(context) -> None:
    if context.connection is not None:
        context.connection.info[_CHANGED] = True


@sa.event.listens_for(RoutingSession, "after_begin")
def _remember_connection(session, _transaction, connection) -> None:
    session.info.setdefault(_CONNECTIONS, []).append(connection)


def transaction_cache(name: str) -> dict:
    """A dict kept in the session until its transaction ends: for what cannot change while the transaction runs,
    read once however often its use case asks (the policy version in force at an instant, an organization's
    department, a member's placement: paths are set when a node is created and never change)."""
    _CACHES.add(name)
    return db.session.info.setdefault(name, {})


_CACHES: set[str] = set()


def per_transaction(function):
    """``function`` of hashable arguments, computed once per transaction (``transaction_cache``): for what cannot
    change while it runs."""
    name = f"points_per_transaction:{function.__module__}.{function.__qualname__}"

    @functools.wraps(function)
    def once(*args):
        known = transaction_cache(name)
        if args not in known:
            known[args] = function(*args)
        return known[args]
    return once


@sa.event.listens_for(RoutingSession, "after_transaction_end")
def _forget_transaction_state(session, transaction) -> None:
    if transaction.parent is None:  # the session's own transaction, not a flush's or a savepoint's inside it
        for name in (_CONNECTIONS, *_CACHES):
            session.info.pop(name, None)

"""The SQLAlchemy handle, the declarative base and the column types every model shares."""

from __future__ import annotations

import enum
import functools
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_sqlalchemy.session import Session as FlaskSession
from psycopg.types.array import ListBinaryDumper
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from points_service.replicas import current_replica

# Stable constraint names make Alembic migrations reviewable and identical on SQLite and PostgreSQL.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


# Row ids are INTEGER on PostgreSQL (BIGINT only for the ledger's and the candidates' own ids): a number past
# 2^31 - 1 names no row, and sent to the database it would fail with "out of range" instead of finding nothing.
MAX_ROW_ID = 2**31 - 1


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


class RoutingSession(FlaskSession):
    """Flask-SQLAlchemy's session, whose reads go to ``info["read_bind"]`` when a read-only view set one.
    Writes never do: a flush (a report's audit row) and DML statements go to the primary, in a transaction of
    their own that the use case's commit ends. Under ``transactions.autocommitted`` everything goes to
    ``info["autocommit_bind"]``, the primary on autocommit connections."""

    def get_bind(self, mapper=None, clause=None, bind=None, **kwargs):
        if bind is None and self.info.get("autocommit_bind") is not None:  # transactions.autocommitted
            return self.info["autocommit_bind"]
        if bind is None and self.info.get("read_bind") is not None and not self._flushing \
                and not getattr(clause, "is_dml", False):
            return self.info["read_bind"]
        return super().get_bind(mapper=mapper, clause=clause, bind=bind, **kwargs)


db = SQLAlchemy(model_class=Base, session_options={"class_": RoutingSession})


def first_line(error: BaseException) -> str:
    """A database error's first line for a log message (its class name when it has no text)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def core_execute(statement: sa.Executable, params: dict) -> sa.CursorResult:
    """Run a statement built once (bind parameters, no ORM entities) on the session's connection, flushing
    pending changes first as ``Session.execute`` would. The hot reads use it: the ORM's per-call statement
    handling cost several times the database's time for them."""
    if db.session.autoflush:
        db.session.flush()
    return db.session.connection().execute(statement, params)


def upsert(model, rows: list[dict], conflict: tuple[str, ...], updates: Callable[[Any], dict],
           returning: tuple[str, ...] = ()) -> list | None:
    """INSERT … ON CONFLICT (``conflict``) DO UPDATE SET ``updates(excluded)`` of the rows, in their order
    (callers sort them, so concurrent writers take row locks in one order), as one statement; with
    ``returning``, those columns of every row as written (inserted or updated). Flushes only.

    SQLAlchemy 2.0 gives the dialects' ON CONFLICT statements no cache key and compiles them anew on every
    execution: on the write path (totals, board rows, histograms, rollups) that was about a third of a
    ledger credit's time in process. So each shape is compiled once, here, into text with typed parameters,
    which SQLAlchemy does cache. On PostgreSQL the rows travel as one array per column (``INSERT … SELECT
    FROM unnest(…)``): one statement text whatever the number of rows, with few parameters, which psycopg
    parses once and prepares (it re-parses, on every execution, a statement of over 50 parameters, as a
    board credit's multi-row VALUES was). On SQLite they are a multi-row VALUES with parameters
    ``r<row>_<column>``, ``VALUES_ROWS_AT_MOST`` rows a statement. ``updates`` is a plain function (no
    closure): its code and defaults are part of the shape."""
    if updates.__closure__:
        raise TypeError("upsert's updates must not be a closure: the statement is cached by its code")
    dialect_name, columns = db.session.get_bind().dialect.name, tuple(rows[0])
    arrays = dialect_name == "postgresql"
    if not arrays and len(rows) > VALUES_ROWS_AT_MOST:  # in order, so row locks are still taken in the callers'
        parts = [upsert(model, rows[i:i + VALUES_ROWS_AT_MOST], conflict, updates, returning)
                 for i in range(0, len(rows), VALUES_ROWS_AT_MOST)]
        return [row for part in parts for row in part] if returning else None
    n = None if arrays else len(rows)
    shape = (dialect_name, model, conflict, columns, n, updates.__code__, updates.__defaults__, returning)
    statement = _upserts.get(shape)
    if statement is None:
        statement = _upsert_text(dialect_name, model, conflict, columns, n, updates, returning)
        if arrays or n <= MAX_CACHED_UPSERT_ROWS:  # a rare bulk call is not worth keeping
            _upserts[shape] = statement
    if arrays:
        params = {f"c_{column}": [row[column] for row in rows] for column in columns}
    else:
        params = {f"r{i}_{column}": row[column] for i, row in enumerate(rows) for column in columns}
    result = core_execute(statement, params)
    return result.all() if returning else None


_DIALECTS = {"postgresql": (postgresql.insert, postgresql.dialect), "sqlite": (sqlite.insert, sqlite.dialect)}
_upserts: dict[tuple, sa.TextClause | sa.TextualSelect] = {}
MAX_CACHED_UPSERT_ROWS = 64
VALUES_ROWS_AT_MOST = 1_000  # a multi-row VALUES within SQLite's 32,766 parameters for any table here


def dialect_insert(dialect_name: str, table):
    """The dialect's own INSERT on ``table`` (a table or a model: ``on_conflict_do_nothing`` and the like);
    compile what is built on it once with ``compiled_text``."""
    return _DIALECTS[dialect_name][0](table)


def _upsert_text(dialect_name: str, model, conflict: tuple[str, ...], columns: tuple[str, ...], n: int | None,
                 updates: Callable[[Any], dict], returning: tuple[str, ...]) -> sa.TextClause | sa.TextualSelect:
    """The upsert compiled to text: rows from ``unnest`` of one array per column when ``n`` is None (PostgreSQL),
    else ``n`` rows of VALUES."""
    table = model.__table__
    types = {}
    if n is None:  # the arrays' types are given to the text below; here they would render casts text() misreads
        types = {f"c_{c}": postgresql.ARRAY(table.c[c].type) for c in columns}
        rows = sa.func.unnest(*(sa.bindparam(name) for name in types))
        statement = dialect_insert(dialect_name, model).from_select(list(columns), sa.select(
            rows.table_valued(*columns).render_derived(with_types=False)))
    else:
        statement = dialect_insert(dialect_name, model).values(
            [{c: sa.bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in columns} for i in range(n)])
    statement = statement.on_conflict_do_update(index_elements=list(conflict), set_=updates(statement.excluded))
    if returning:
        statement = statement.returning(*(table.c[c] for c in returning))
    text = compiled_text(statement, dialect_name, types)  # the rows' parameters and the constants of ``updates``
    return text.columns(*(table.c[c] for c in returning)) if returning else text


def compiled_text(statement: sa.Executable, dialect_name: str, types: dict | None = None) -> sa.TextClause:
    """A statement compiled once into text with typed parameters (``types`` overrides some). SQLAlchemy gives the
    dialects' ON CONFLICT no cache key and would compile a statement holding one anew on every execution; the
    text it caches. Parameters keep the values given in the statement (constants) unless the call passes them."""
    compiled = statement.compile(dialect=_DIALECTS[dialect_name][1](paramstyle="named"))
    # A cast (``:data::JSON``) would read as a parameter named ``dat``: text() takes escaped colons literally.
    return sa.text(compiled.string.replace("::", r"\:\:")).bindparams(
        *(sa.bindparam(name, value=bind.value, type_=(types or {}).get(name, bind.type))
          for bind, name in compiled.bind_names.items()))


def insert_unless_exists(model, row: dict, conflict: tuple[str, ...] | None) -> int | None:
    """INSERT … ON CONFLICT (``conflict``; None: any unique key) DO NOTHING RETURNING id, compiled once per
    shape (as ``upsert``): the new row's id, or None when a row with the same key exists (or is being inserted
    by a concurrent transaction that then commits). The unique key decides; nothing is flushed or rolled back."""
    dialect_name, columns = db.session.get_bind().dialect.name, tuple(row)
    shape = (dialect_name, model, conflict, columns)
    statement = _inserts.get(shape)
    if statement is None:
        table = model.__table__
        statement = _inserts[shape] = compiled_text(
            dialect_insert(dialect_name, model).values({c: sa.bindparam(c, type_=table.c[c].type) for c in columns})
            .on_conflict_do_nothing(index_elements=list(conflict) if conflict else None).returning(table.c.id),
            dialect_name)
    return core_execute(statement, row).scalar()


_inserts: dict[tuple, sa.TextClause] = {}


def insert_rows_unless_exist(model, rows: list[dict], conflict: str) -> dict:
    """``insert_unless_exists`` of several rows in one statement: ``{conflict value: new id}`` of the rows
    written; a row whose ``conflict`` value exists (or is being inserted concurrently, then committed) is
    absent. Rows share their columns; compiled once per shape."""
    dialect_name, columns = db.session.get_bind().dialect.name, tuple(rows[0])
    shape = (dialect_name, model, conflict, columns, len(rows))
    statement = _inserts.get(shape)
    if statement is None:
        table = model.__table__
        values = [{c: sa.bindparam(f"r{i}_{c}", type_=table.c[c].type) for c in columns} for i in range(len(rows))]
        statement = compiled_text(
            dialect_insert(dialect_name, model).values(values)
            .on_conflict_do_nothing(index_elements=[conflict]).returning(table.c.id, table.c[conflict]),
            dialect_name)
        if len(rows) <= MAX_CACHED_UPSERT_ROWS:
            _inserts[shape] = statement
    params = {f"r{i}_{column}": row[column] for i, row in enumerate(rows) for column in columns}
    return {key: row_id for row_id, key in core_execute(statement, params)}


def deleted_in_batches(table: sa.Table, condition: sa.ColumnElement[bool], batch_size: int) -> Iterator[int]:
    """DELETE the rows of ``table`` matching ``condition``, at most ``batch_size`` per statement, walking the primary
    key upwards (one pass over it, however many batches); yields each statement's row count, and the caller
    commits between batches so that no transaction stays open across a large table. Each DELETE repeats the
    condition, so a row changed since its batch was chosen (on PostgreSQL, re-checked under READ COMMITTED) is
    kept if it no longer matches."""
    (key,) = table.primary_key.columns
    after = None
    while True:
        window = condition if after is None else sa.and_(condition, key > after)
        batch = sa.select(key).where(window).order_by(key).limit(batch_size).subquery()
        upto = db.session.scalar(sa.select(sa.func.max(batch.c[key.name])))
        if upto is None:
            return
        yield db.session.execute(table.delete().where(window, key <= upto)).rowcount
        after = upto


def purge_in_batches(table: sa.Table, condition: sa.ColumnElement[bool], batch_size: int) -> int:
    """``deleted_in_batches`` with each batch committed (a purge is no all-or-nothing write: what a batch removed
    stays removed if a later one fails); returns how many rows were deleted."""
    deleted = 0
    for count in deleted_in_batches(table, condition, batch_size):
        deleted += count
        db.session.commit()
    db.session.commit()  # the last batch's search, which found nothing
    return deleted


def attach_written(instance, **related):
    """A row a Core statement just wrote, as a persistent instance of the session with its attributes loaded
    (every column must be set, the primary key included) and ``related`` instances already loaded set as its
    relationships: no SELECT to load any of them back."""
    make_transient_to_detached(instance)
    for name, value in related.items():
        set_committed_value(instance, name, value)
    db.session.add(instance)
    return instance


def commit_keeping(*instances) -> None:
    """Commit, and expire everything the session holds except ``instances``, which keep what this transaction
    read and wrote: the response is dumped from them without reloading them (a plain commit would)."""
    session = db.session()
    kept, expire_on_commit = {id(instance) for instance in instances}, session.expire_on_commit
    session.expire_on_commit = False
    try:
        session.commit()
    finally:
        session.expire_on_commit = expire_on_commit
    if expire_on_commit:
        for instance in list(session.identity_map.values()):
            if id(instance) not in kept:
                session.expire(instance)


def reads_without_transaction(view):
    """For views that only read (the API's boards and GET /me, the exports, the console's report pages): run
    the request on an autocommit connection, which spares the BEGIN and ROLLBACK round trips (two of a rank
    card's four), on the read replica when one is configured and may serve this account (replicas.py).
    PostgreSQL's READ COMMITTED gives each statement its own snapshot anyway, so the reads see what they would
    inside a transaction. An audit row the view adds (an export's) is written on the primary (``RoutingSession``).
    Never for a view that otherwise writes (or may, like the first policy seeding's SAVEPOINT).

    A console page arrives with the session's transaction open: the signed-in user was read on the primary
    (a disabled account is refused at once, whatever the replica's lag). That read-only transaction is ended,
    keeping what it loaded, before the page's reads move to the replica. A streamed body (a CSV download) keeps
    reading on the replica until the response is closed; a failure then cannot fall back (its headers are sent)."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        session, replica = db.session(), current_replica()
        if session.in_transaction() and (replica is None or not end_read_transaction(session)):
            return view(*args, **kwargs)  # a test's session already holds its connection, or a write is pending
        if replica is not None:
            try:
                return _run_autocommit(view, args, kwargs, replica.engine)
            except sa.exc.OperationalError as exc:  # down or failing: the view only reads, so run it again
                replica.failed(exc)
        return _run_autocommit(view, args, kwargs, None)

    return wrapper


def end_read_transaction(session) -> bool:
    """Commit a transaction that only read, keeping what it loaded; False (nothing done) when objects are
    pending, which the commit would write."""
    if session.new or session.dirty or session.deleted:
        return False
    expire_on_commit, session.expire_on_commit = session.expire_on_commit, False
    try:
        session.commit()  # only read: nothing to write, and the loaded objects stay loaded
    finally:
        session.expire_on_commit = expire_on_commit
    return True


def _run_autocommit(view, args, kwargs, bind: sa.Engine | None):
    session = db.session()
    session.info["read_bind"] = bind
    streamed = False
    try:
        session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
        response = view(*args, **kwargs)  # flask-smorest has serialized the response inside
        streamed = not getattr(response, "is_sequence", True) and not response.direct_passthrough  # a generator
        if streamed:  # the body reads as it is sent: keep its routing until the response is closed
            response.call_on_close(lambda: _release(session))
        return response
    finally:
        if not streamed:
            _release(session)


def _release(session) -> None:
    session.rollback()  # hands the connection back now, its isolation level reset for the next use
    session.info.pop("read_bind", None)


_PLAIN = re.compile(r"[A-Za-z0-9:_-]*")


def sql_constant(value: int | str | enum.Enum) -> sa.ColumnElement:
    """One of our own constants (an enum's value, a period key such as ``all``, a number) written into the SQL
    text rather than sent as a bind parameter.

    The hot reads are statements built once that take only their real inputs as parameters. A constant sent as a
    parameter is paid for on every call: SQLAlchemy processes it (a ``Points`` zero goes through ``Decimal``),
    psycopg adapts it and re-scans the placeholders of any statement longer than its 4 KB cache (GET /me's is
    10 KB), and PostgreSQL's generic plan cannot see its value. Only for constants of the code, never for input:
    strings must be plain (letters, digits, ``:-_``)."""
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise TypeError(f"not an SQL constant: {value!r}")
    if isinstance(value, int):
        return sa.literal_column(str(value), sa.BigInteger)
    if not _PLAIN.fullmatch(value):
        raise ValueError(f"not a plain SQL string constant: {value!r}")
    return sa.literal_column(f"'{value}'", sa.String)


def cents(column):
    """A Points column as its raw integer hundredths, for exact SUMs in SQL (see ``from_cents``)."""
    return sa.type_coerce(column, sa.BigInteger)


def from_cents(value) -> Decimal:
    return Decimal(int(value or 0)) / 100


def enum_column(enum_class, name: str, length: int = 16) -> sa.Enum:
    """A VARCHAR enum storing values, with a CHECK constraint named after the column (two columns of
    one enum in a table need two names)."""
    return sa.Enum(enum_class, native_enum=False, length=length, create_constraint=True, name=name,
                   values_callable=enum_values)


def enum_values(enum_class) -> list[str]:
    """Store an enum's values ('reversal'), not its member names ('REVERSAL'), so SQL reads naturally."""
    return [member.value for member in enum_class]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(sa.TypeDecorator):
    """Stores instants as naive UTC (SQLite has no time zones) and always returns aware UTC."""

    impl = sa.DateTime
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are ambiguous; pass an aware instant")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


CENT = Decimal("0.01")


def to_points(value) -> Decimal:
    """Exact points with two decimals; floats are refused because they are not exact."""
    if isinstance(value, float):
        raise TypeError("points must be Decimal or int, never float")
    return Decimal(value).quantize(CENT, rounding=ROUND_HALF_UP)


class Points(sa.TypeDecorator):
    """Points as exact decimals with two places, stored as integer hundredths.

    Integers keep sums exact on every engine (SQLite would store NUMERIC as a float).
    """

    impl = sa.BigInteger
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        exact = to_points(value)
        if exact != Decimal(value):
            raise ValueError(f"points have at most two decimals: {value}")
        return int(exact * 100)

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return (Decimal(int(value)) / 100).quantize(CENT)

    def coerce_compared_value(self, op, value):
        return self


MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
migrate = Migrate(directory=str(MIGRATIONS_DIR), render_as_batch=True)


def init_app(app) -> None:
    from points_service import replicas

    db.init_app(app)
    migrate.init_app(app, db)
    replicas.init_app(app)
    with app.app_context():
        if db.engine.dialect.name == "sqlite":
            _enable_sqlite_foreign_keys(db.engine)
        elif db.engine.dialect.driver == "psycopg":
            _dump_lists_in_binary(db.engine)


def _dump_lists_in_binary(engine) -> None:
    """psycopg dumps a list (``upsert``'s arrays, its only lists) as text by default, quoting each element
    through a regular expression: about 5 % of a check-out's CPU. The binary form needs no quoting."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.adapters.register_dumper(list, ListBinaryDumper)


def _enable_sqlite_foreign_keys(engine) -> None:
    """SQLite enforces foreign keys only when asked, and pysqlite's own transaction handling breaks
    SAVEPOINTs; the SQLAlchemy-documented recipe hands BEGIN to SQLAlchemy instead.

    Transactions begin IMMEDIATE: a plain ``BEGIN`` takes its write lock only at the first write, and when
    another connection wrote meanwhile it cannot upgrade and fails at once with "database is locked",
    busy timeout or not. IMMEDIATE takes the lock up front, so concurrent writers queue on the busy timeout.
    Autocommit reads (``reads_without_transaction``) begin nothing and never wait."""

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection):
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")

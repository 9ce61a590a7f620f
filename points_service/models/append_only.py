"""Database-enforced append-only tables: UPDATE and DELETE raise in the engine itself.

The triggers are attached to the table's DDL so that ``create_all`` (tests) and the Alembic migrations
(which call ``append_only_ddl``) install the same guard on SQLite and PostgreSQL.
"""

from __future__ import annotations

import sqlalchemy as sa


def append_only_ddl(table_name: str, dialect: str) -> list[str]:
    if dialect == "postgresql":
        return [
            f"""CREATE OR REPLACE FUNCTION {table_name}_append_only() RETURNS trigger AS $$
            BEGIN RAISE EXCEPTION '{table_name} is append-only'; END; $$ LANGUAGE plpgsql""",
            f"""CREATE TRIGGER {table_name}_no_update_delete BEFORE UPDATE OR DELETE ON {table_name}
            FOR EACH ROW EXECUTE FUNCTION {table_name}_append_only()""",
        ]
    if dialect == "sqlite":
        return [
            f"""CREATE TRIGGER {table_name}_no_{op.lower()} BEFORE {op} ON {table_name}
            BEGIN SELECT RAISE(ABORT, '{table_name} is append-only'); END"""
            for op in ("UPDATE", "DELETE")
        ]
    raise NotImplementedError(f"append-only guard not written for {dialect}")


APPEND_ONLY_TABLES: set[str] = set()  # what a restored backup is checked for (flask ops restore-check)


def forbid_update_and_delete(table: sa.Table) -> None:
    APPEND_ONLY_TABLES.add(table.name)

    @sa.event.listens_for(table, "after_create")
    def _install(target, connection, **_kw):
        for statement in append_only_ddl(target.name, connection.dialect.name):
            connection.exec_driver_sql(statement)

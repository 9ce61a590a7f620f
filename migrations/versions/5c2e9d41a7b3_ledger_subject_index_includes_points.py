"""The ledger's subject index carries points (PostgreSQL INCLUDE): one subject's sums become index-only scans.

Revision ID: 5c2e9d41a7b3
Revises: 7b1c0e5a9f42
Create Date: 2026-11-22 06:05:00

SQLite has no INCLUDE; its index stays as it was.
"""
from alembic import op

revision = '5c2e9d41a7b3'
down_revision = '7b1c0e5a9f42'
branch_labels = None
depends_on = None

COLUMNS = ["subject_type", "subject_id", "ledger", "credited_at"]


def _recreate(include: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.drop_index("ix_ledger_subject_time", table_name="ledger_entries")
    op.create_index("ix_ledger_subject_time", "ledger_entries", COLUMNS, postgresql_include=include)


def upgrade():
    _recreate(["points"])


def downgrade():
    _recreate([])

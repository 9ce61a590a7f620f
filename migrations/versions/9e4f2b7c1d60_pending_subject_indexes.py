"""Partial indexes on a subject's pending reports and records: the home screen's pending count reads a small,
hot index instead of visiting every report and record the member ever made.

Revision ID: 9e4f2b7c1d60
Revises: 5c2e9d41a7b3
Create Date: 2026-11-22 09:10:00
"""
import sqlalchemy as sa
from alembic import op

revision = '9e4f2b7c1d60'
down_revision = '5c2e9d41a7b3'
branch_labels = None
depends_on = None

PENDING = sa.text("status = 'pending'")
TABLES = ("reports", "records")


def upgrade():
    for table in TABLES:
        op.create_index(f"ix_{table}_pending_subject", table, ["subject_type", "subject_id"],
                        postgresql_where=PENDING, sqlite_where=PENDING)


def downgrade():
    for table in TABLES:
        op.drop_index(f"ix_{table}_pending_subject", table_name=table)

"""Retention indexes: the daily retention job's batches find old Idempotency-Keys by their creation time and ended
WeChat deliveries by their outcome time, instead of walking the rest of each table by primary key.

Revision ID: d8f1b3e5a7c9
Revises: e3f7a9c1b5d2
Create Date: 2026-12-08 00:30:00
"""
from alembic import op

revision = 'd8f1b3e5a7c9'
down_revision = 'e3f7a9c1b5d2'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_idempotency_keys_created_at', 'idempotency_keys', ['created_at'], unique=False)
    op.create_index('ix_notification_deliveries_updated_at', 'notification_deliveries', ['updated_at'], unique=False)


def downgrade():
    op.drop_index('ix_notification_deliveries_updated_at', table_name='notification_deliveries')
    op.drop_index('ix_idempotency_keys_created_at', table_name='idempotency_keys')

"""Records remember their submission's Idempotency-Key: a submission re-run after its answer was lost (a crash or
a failure after the commit) is the record it already wrote, not a second one.

Revision ID: f2c8d4a6b913
Revises: e5a8c2d9f3b1
Create Date: 2026-12-07 10:30:00
"""
import sqlalchemy as sa
from alembic import op

revision = 'f2c8d4a6b913'
down_revision = 'e5a8c2d9f3b1'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('records') as batch_op:
        batch_op.add_column(sa.Column('request_key', sa.String(length=64), nullable=True))
    op.create_index('uq_records_submitter_request', 'records', ['submitted_by_id', 'request_key'], unique=True)


def downgrade():
    op.drop_index('uq_records_submitter_request', table_name='records')
    with op.batch_alter_table('records') as batch_op:
        batch_op.drop_column('request_key')

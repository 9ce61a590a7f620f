"""WeChat's daily quota used up (45009) pauses every delivery run until the next quota day: the pause is a row,
so every deliverer, and one restarted, keeps to it.

Revision ID: e3f7a9c1b5d2
Revises: d8b2e6f4a1c9
Create Date: 2026-12-08 00:50:00
"""
import sqlalchemy as sa
from alembic import op

import points_service.db

revision = 'e3f7a9c1b5d2'
down_revision = 'd8b2e6f4a1c9'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notification_pauses',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=40), nullable=False),
        sa.Column('paused_until', points_service.db.UTCDateTime(), nullable=False),
        sa.Column('errcode', sa.Integer(), nullable=True),
        sa.Column('reason', sa.String(length=300), nullable=False),
        sa.Column('updated_at', points_service.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notification_pauses')),
        sa.UniqueConstraint('channel', name=op.f('uq_notification_pauses_channel')),
    )


def downgrade():
    op.drop_table('notification_pauses')

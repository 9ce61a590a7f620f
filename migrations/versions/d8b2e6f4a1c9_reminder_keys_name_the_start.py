"""Activity reminders are keyed by the start they remind of (``activity:3:reminder:20261111T010000Z``), so an
activity moved to another start is reminded of again. The reminders already sent for activities still to come
were sent for their present start: their keys get it, or the first run after the upgrade would remind those
members a second time of the same start.

Revision ID: d8b2e6f4a1c9
Revises: c4d9e2a7f613
Create Date: 2026-12-08 00:40:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import points_service.db

revision = 'd8b2e6f4a1c9'
down_revision = 'c4d9e2a7f613'
branch_labels = None
depends_on = None

activities = sa.table('activities', sa.column('id', sa.Integer),
                      sa.column('starts_at', points_service.db.UTCDateTime))
messages = sa.table('notification_messages', sa.column('event', sa.String), sa.column('source_key', sa.String))


def _upcoming():
    """Activities not yet started: the only ones the reminder job still looks at (a few days' worth)."""
    return op.get_bind().execute(sa.select(activities.c.id, activities.c.starts_at)
                                 .where(activities.c.starts_at > datetime.now(UTC)).order_by(activities.c.id)).all()


def _rename(old: str, new: str) -> None:
    op.get_bind().execute(messages.update().where(messages.c.event == 'activity_reminder',
                                                  messages.c.source_key == old).values(source_key=new))


def upgrade():
    for activity_id, starts_at in _upcoming():
        _rename(f'activity:{activity_id}:reminder', f'activity:{activity_id}:reminder:{starts_at:%Y%m%dT%H%M%SZ}')


def downgrade():
    for activity_id, starts_at in _upcoming():
        _rename(f'activity:{activity_id}:reminder:{starts_at:%Y%m%dT%H%M%SZ}', f'activity:{activity_id}:reminder')

"""Dated pairings of organizations with communities: a re-pairing no longer rewrites the 流动红旗 districts of
periods that have ended.

Revision ID: c4d9e2a7f613
Revises: f2c8d4a6b913
Create Date: 2026-12-07 22:00:00
"""
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import points_service.db

revision = 'c4d9e2a7f613'
down_revision = 'f2c8d4a6b913'
branch_labels = None
depends_on = None

OPEN = sa.text("valid_to IS NULL")
# The backfilled pairings start before anything the service holds. Organizations keep no creation time, and the
# only record of a pairing was today's column, from which every 流动红旗 award so far was computed: a pairing in
# force "always" keeps each of them verifying and places a late award of an earlier period exactly as before the
# migration. A later start (the last confirmed 报到, say) would drop the department's branches from the
# districts of every period before it, though nothing says they were elsewhere.
BACKFILL_SINCE = datetime(2000, 1, 1, tzinfo=UTC)


def upgrade():
    op.create_table(
        'pairings',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('organization_id', sa.Integer(), nullable=False),
        sa.Column('community_id', sa.Integer(), nullable=False),
        sa.Column('valid_from', points_service.db.UTCDateTime(), nullable=False),
        sa.Column('valid_to', points_service.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint('valid_to IS NULL OR valid_to > valid_from', name=op.f('ck_pairings_valid_range')),
        sa.ForeignKeyConstraint(['community_id'], ['regions.id'], name=op.f('fk_pairings_community_id_regions')),
        sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'],
                                name=op.f('fk_pairings_organization_id_organizations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pairings')),
    )
    op.create_index('uq_pairings_open', 'pairings', ['organization_id'], unique=True,
                    postgresql_where=OPEN, sqlite_where=OPEN)
    _backfill_open_pairings()


def _backfill_open_pairings():
    """One open pairing per organization paired today."""
    organizations = sa.table('organizations', sa.column('id', sa.Integer()),
                             sa.column('paired_community_id', sa.Integer()))
    pairings = sa.table('pairings', sa.column('organization_id', sa.Integer()),
                        sa.column('community_id', sa.Integer()),
                        sa.column('valid_from', points_service.db.UTCDateTime()))
    op.execute(pairings.insert().from_select(
        ['organization_id', 'community_id', 'valid_from'],
        sa.select(organizations.c.id, organizations.c.paired_community_id,
                  sa.literal(BACKFILL_SINCE, points_service.db.UTCDateTime()))
        .where(organizations.c.paired_community_id.is_not(None))))


def downgrade():
    op.drop_index('uq_pairings_open', table_name='pairings', postgresql_where=OPEN, sqlite_where=OPEN)
    op.drop_table('pairings')

"""Lifecycle rest: future-dated member changes waiting for their date (scheduled_member_changes), withdrawn
业务之星 / 流动红旗 awards (append-only award_withdrawals), and the period an adjustment corrects
(ledger_entries.corrects_period).

Revision ID: b7e3c1f04a92
Revises: c7e1a9d3f5b2
Create Date: 2026-12-06 09:30:00
"""
import sqlalchemy as sa
from alembic import op

import points_service.db
from points_service.models.append_only import append_only_ddl

revision = 'b7e3c1f04a92'
down_revision = 'c7e1a9d3f5b2'
branch_labels = None
depends_on = None


def _enum(name, *values):
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=16)


def upgrade():
    op.create_table(
        'scheduled_member_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('kind', _enum('kind', 'deactivate', 'transfer'), nullable=False),
        sa.Column('status', _enum('status', 'scheduled', 'applied', 'cancelled', 'failed'), nullable=False),
        sa.Column('reason_code', _enum('reason_code', 'resigned', 'retired', 'transferred_out'), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('effective_on', sa.Date(), nullable=False),
        sa.Column('branch_id', sa.Integer(), nullable=True),
        sa.Column('community_id', sa.Integer(), nullable=True),
        sa.Column('grid_id', sa.Integer(), nullable=True),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('created_at', points_service.db.UTCDateTime(), nullable=False),
        sa.Column('settled_at', points_service.db.UTCDateTime(), nullable=True),
        sa.Column('outcome', sa.String(length=200), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_scheduled_member_changes_actor_id_users')),
        sa.ForeignKeyConstraint(['branch_id'], ['organizations.id'],
                                name=op.f('fk_scheduled_member_changes_branch_id_organizations')),
        sa.ForeignKeyConstraint(['community_id'], ['regions.id'],
                                name=op.f('fk_scheduled_member_changes_community_id_regions')),
        sa.ForeignKeyConstraint(['grid_id'], ['regions.id'], name=op.f('fk_scheduled_member_changes_grid_id_regions')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_scheduled_member_changes_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_scheduled_member_changes')),
    )
    op.create_index('uq_scheduled_member_changes_waiting', 'scheduled_member_changes', ['member_id'], unique=True,
                    sqlite_where=sa.text("status = 'scheduled'"), postgresql_where=sa.text("status = 'scheduled'"))
    op.create_index('ix_scheduled_member_changes_due', 'scheduled_member_changes', ['status', 'effective_on'])
    op.create_table(
        'award_withdrawals',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('award_type', _enum('award_type', 'star', 'red_flag'), nullable=False),
        sa.Column('award_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('reversed_entries', sa.Integer(), nullable=False),
        sa.Column('withdrawn_by_id', sa.Integer(), nullable=True),
        sa.Column('withdrawn_at', points_service.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['withdrawn_by_id'], ['users.id'],
                                name=op.f('fk_award_withdrawals_withdrawn_by_id_users')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_award_withdrawals')),
        sa.UniqueConstraint('award_type', 'award_id', name=op.f('uq_award_withdrawals_award_type_award_id')),
    )
    for statement in append_only_ddl('award_withdrawals', op.get_bind().dialect.name):
        op.execute(statement)
    # Plain ALTER TABLE on both engines: a batch table copy would drop the ledger's append-only triggers.
    op.add_column('ledger_entries', sa.Column('corrects_period', sa.String(length=12), nullable=True))


def downgrade():
    op.drop_column('ledger_entries', 'corrects_period')  # SQLite 3.35+ drops a column in place
    op.drop_table('award_withdrawals')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS award_withdrawals_append_only()")
    op.drop_index('ix_scheduled_member_changes_due', table_name='scheduled_member_changes')
    op.drop_index('uq_scheduled_member_changes_waiting', table_name='scheduled_member_changes')
    op.drop_table('scheduled_member_changes')

"""Member lifecycle: members.inactive_since and the append-only member_status_changes history.

Revision ID: a41c7e2d9b15
Revises: 4f8a1c2d9e07
Create Date: 2026-12-04 21:40:00
"""
import sqlalchemy as sa
from alembic import op

import points_service.db
from points_service.models.append_only import append_only_ddl

revision = 'a41c7e2d9b15'
down_revision = '4f8a1c2d9e07'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'member_status_changes',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('member_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.Enum('deactivate', 'reactivate', name='kind', native_enum=False,
                                  create_constraint=True, length=16), nullable=False),
        sa.Column('reason_code', sa.Enum('resigned', 'retired', 'transferred_out', name='reason_code',
                                         native_enum=False, create_constraint=True, length=16), nullable=True),
        sa.Column('reason', sa.String(length=200), nullable=False),
        sa.Column('effective_on', sa.Date(), nullable=False),
        sa.Column('effective_at', points_service.db.UTCDateTime(), nullable=False),
        sa.Column('actor_id', sa.Integer(), nullable=True),
        sa.Column('created_at', points_service.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(['actor_id'], ['users.id'], name=op.f('fk_member_status_changes_actor_id_users')),
        sa.ForeignKeyConstraint(['member_id'], ['members.id'],
                                name=op.f('fk_member_status_changes_member_id_members')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_member_status_changes')),
    )
    with op.batch_alter_table('member_status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_member_status_changes_member_id'), ['member_id'], unique=False)
    for statement in append_only_ddl('member_status_changes', op.get_bind().dialect.name):
        op.execute(statement)
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.add_column(sa.Column('inactive_since', points_service.db.UTCDateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('members', schema=None) as batch_op:
        batch_op.drop_column('inactive_since')
    op.drop_table('member_status_changes')
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("DROP FUNCTION IF EXISTS member_status_changes_append_only()")
